//! QPACK field sections (RFC 9204) without a dynamic table: what a HEADERS frame carries.
//!
//! This module owns the encoding and decoding of one *field section* (RFC 9204 §4.5): the
//! section prefix, the field line representations, QPACK prefixed integers (RFC 7541 §5.1) and
//! string literals with optional Huffman coding (RFC 7541 §5.2, Appendix B). It does not own the
//! HEADERS frame around it ([`crate::frame`]) nor the meaning of the fields ([`crate::connect`]).
//!
//! We advertise `SETTINGS_QPACK_MAX_TABLE_CAPACITY = 0` and `SETTINGS_QPACK_BLOCKED_STREAMS = 0`,
//! so a peer may use only the static table (RFC 9204 Appendix A) and literals:
//!
//! - [`encode`] writes the prefix `0x00 0x00` (Required Insert Count 0, Delta Base 0), then for
//!   each field an indexed field line (§4.5.2) when the static table has the name and value, a
//!   literal with a static name reference (§4.5.4) when it has the name, and a literal with a
//!   literal name (§4.5.6) otherwise. Strings are written as they are, never Huffman-coded: a
//!   session's request and response are sent once and fit one packet either way, and Huffman
//!   would cost both ends CPU for a few bytes (the decoder then also checks the code, below).
//!   This is the subset every implementation, Chromium's included, must accept.
//! - [`decode`] accepts exactly those representations. A non-zero Required Insert Count, a
//!   negative Base (§4.5.1.2), and every dynamic-table form (indexed or name reference with
//!   `T = 0`, the post-base forms of §4.5.3 and §4.5.5) are [`Error::Qpack`], as is any
//!   truncation: a field section is always a whole frame payload, so running out of bytes means
//!   the section is malformed, never [`Error::Incomplete`].
//!
//! **Bounds.** Prefixed integers above [`MAX_INTEGER`] are rejected before they can overflow.
//! Decoded fields count against [`Limits`] as RFC 9114 §4.2.2 counts them (name + value + 32
//! bytes per field); a string is checked against what is left of the budget before it is
//! allocated (Huffman output is at most 8/5 of its input, since no code is shorter than 5 bits).
//!
//! **Field validity.** Decoded names must be lowercase tokens, optionally after one leading `:`
//! (RFC 9114 §4.2: uppercase names make a message malformed), and values must not contain NUL,
//! CR or LF (RFC 9114 §10.3). Those failures are [`Error::Message`] (H3_MESSAGE_ERROR, a stream
//! error), not [`Error::Qpack`]: the compression was fine, the message is not. Which
//! pseudo-headers are allowed is left to [`crate::connect`]. [`encode`] does not validate: it
//! writes whatever fields it is given.
//!
//! **Huffman.** The `httlib-huffman` crate does the bit work. Its decoder rejects the EOS symbol
//! but checks the padding only by value, so it accepts zero-bit padding (`0x00` decodes to
//! `"0"`) and some padding that is not a prefix of EOS. Rather than replace it we check its
//! result: a valid Huffman string is exactly the canonical encoding of what it decodes to (the
//! code is prefix-free and the padding is fixed to fewer than 8 one bits), so [`decode`]
//! re-encodes every Huffman string and rejects it unless the bytes are identical. That also
//! covers padding of 8 bits or more and any decoder defect that would accept invalid input.
//!
//! ```
//! use bytes::BytesMut;
//! use wt_proto::qpack::{decode, encode, Field, Limits};
//!
//! let fields = vec![
//!     Field::new(":method", "CONNECT"),
//!     Field::new(":protocol", "webtransport"),
//! ];
//! let mut block = BytesMut::new();
//! encode(&fields, &mut block);
//! // Prefix 0x00 0x00, then static entry 15 (`:method: CONNECT`) as an indexed field line.
//! assert_eq!(&block[..3], &[0x00, 0x00, 0xc0 | 15]);
//! assert_eq!(decode(&block, &Limits::default())?, fields);
//! # Ok::<(), wt_proto::Error>(())
//! ```

mod static_table;

use bytes::{BufMut, Bytes, BytesMut};
use httlib_huffman::DecoderSpeed;

use crate::Error;

/// The largest prefixed integer [`decode`] accepts (2^32 - 1): far above any index or length a
/// bounded field section can hold, and small enough that accumulating it cannot overflow.
pub const MAX_INTEGER: u64 = u32::MAX as u64;

/// The per-field overhead in the size of a field section (RFC 9114 §4.2.2, RFC 9204 §3.2.1).
pub const FIELD_OVERHEAD: usize = 32;

/// One field line: a name and a value, both raw bytes as they are on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    /// The field name, e.g. `:method` or `origin`.
    pub name: Bytes,
    /// The field value.
    pub value: Bytes,
}

impl Field {
    /// A field from anything that converts into [`Bytes`] (`&'static str`, `Vec<u8>`, …).
    pub fn new(name: impl Into<Bytes>, value: impl Into<Bytes>) -> Self {
        Field {
            name: name.into(),
            value: value.into(),
        }
    }

    /// The size this field counts for against [`Limits::max_bytes`]: name + value + 32.
    pub fn size(&self) -> usize {
        self.name
            .len()
            .saturating_add(self.value.len())
            .saturating_add(FIELD_OVERHEAD)
    }
}

/// How much one decoded field section may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The most field lines in one section.
    pub max_fields: usize,
    /// The most decoded bytes, counted as the sum of [`Field::size`] (RFC 9114 §4.2.2); this is
    /// what we would advertise as `SETTINGS_MAX_FIELD_SECTION_SIZE`.
    pub max_bytes: usize,
}

impl Default for Limits {
    /// 64 fields and 16 KiB: ample for a CONNECT request or its response.
    fn default() -> Self {
        Limits {
            max_fields: 64,
            max_bytes: 16 * 1024,
        }
    }
}

/// Appends the field section for `fields` to `out`: the `0x00 0x00` prefix, then one field line
/// per field, in order, using only the static table and literals (see the module comment).
///
/// The fields are not validated; callers encode only fields they built or checked.
pub fn encode(fields: &[Field], out: &mut BytesMut) {
    // Required Insert Count 0 (8-bit prefix), then Sign 0 and Delta Base 0 (7-bit prefix).
    out.put_u8(0x00);
    out.put_u8(0x00);
    for field in fields {
        encode_field(field, out);
    }
}

/// Decodes one whole field section (a HEADERS frame payload) into its fields, in order.
///
/// Errors: [`Error::Qpack`] for anything that is not a complete, static-only field section;
/// [`Error::TooLarge`] when the section exceeds `limits`; [`Error::Message`] for a field name or
/// value that HTTP/3 forbids (see the module comment).
pub fn decode(block: &[u8], limits: &Limits) -> Result<Vec<Field>, Error> {
    let mut buf = block;
    decode_prefix(&mut buf)?;
    let mut budget = Budget {
        used: 0,
        limit: limits.max_bytes,
    };
    let mut fields = Vec::new();
    while !buf.is_empty() {
        if fields.len() >= limits.max_fields {
            return Err(Error::TooLarge {
                what: "field section line count",
                len: to_u64(fields.len().saturating_add(1)),
                limit: to_u64(limits.max_fields),
            });
        }
        budget.take(FIELD_OVERHEAD)?;
        let field = decode_line(&mut buf, &mut budget)?;
        check_field(&field)?;
        fields.push(field);
    }
    Ok(fields)
}

// ---- encoding ----------------------------------------------------------------------------------

/// First-byte patterns of the field line representations we emit (RFC 9204 §4.5.2, §4.5.4,
/// §4.5.6), with `T = 1` (static) and `N = 0` (we ask no intermediary to avoid indexing).
const INDEXED_STATIC: u8 = 0b1100_0000;
const NAME_REF_STATIC: u8 = 0b0101_0000;
const LITERAL_NAME: u8 = 0b0010_0000;

fn encode_field(field: &Field, out: &mut BytesMut) {
    match static_table::find(&field.name, &field.value) {
        static_table::Match::Full(index) => put_int(out, INDEXED_STATIC, 6, index),
        static_table::Match::Name(index) => {
            put_int(out, NAME_REF_STATIC, 4, index);
            put_string(out, 0, 7, &field.value);
        }
        static_table::Match::None => {
            put_string(out, LITERAL_NAME, 3, &field.name);
            put_string(out, 0, 7, &field.value);
        }
    }
}

/// Writes `value` as a prefixed integer (RFC 7541 §5.1) whose first byte keeps the bits of
/// `flags` above the `prefix`-bit field.
fn put_int(out: &mut BytesMut, flags: u8, prefix: u32, value: u64) {
    let max = (1u64 << prefix) - 1;
    if value < max {
        // Fits the prefix; `value < max <= 255` so the cast is exact.
        out.put_u8(flags | value as u8);
        return;
    }
    out.put_u8(flags | max as u8);
    let mut rest = value - max;
    while rest >= 0x80 {
        out.put_u8(0x80 | (rest & 0x7f) as u8);
        rest >>= 7;
    }
    out.put_u8(rest as u8);
}

/// Writes a string literal without Huffman coding (H = 0, just above the `prefix`-bit length):
/// the length, then the bytes.
fn put_string(out: &mut BytesMut, flags: u8, prefix: u32, s: &[u8]) {
    put_int(out, flags, prefix, to_u64(s.len()));
    out.put_slice(s);
}

// ---- decoding ----------------------------------------------------------------------------------

const TRUNCATED: Error = Error::Qpack("truncated field section");

/// What is left of [`Limits::max_bytes`] while a section is decoded.
struct Budget {
    used: usize,
    limit: usize,
}

impl Budget {
    /// Accounts for `n` more decoded bytes, or fails if that would exceed the limit.
    fn take(&mut self, n: usize) -> Result<(), Error> {
        let used = self.used.saturating_add(n);
        if used > self.limit {
            return Err(Error::TooLarge {
                what: "decoded field section",
                len: to_u64(used),
                limit: to_u64(self.limit),
            });
        }
        self.used = used;
        Ok(())
    }

    fn remaining(&self) -> usize {
        self.limit.saturating_sub(self.used)
    }
}

/// Reads the Encoded Field Section Prefix (RFC 9204 §4.5.1) and insists on no dynamic state.
fn decode_prefix(buf: &mut &[u8]) -> Result<(), Error> {
    let first = take_u8(buf)?;
    if read_int(buf, first, 8)? != 0 {
        return Err(Error::Qpack(
            "Required Insert Count is not 0, but the dynamic table capacity is 0",
        ));
    }
    let second = take_u8(buf)?;
    // Any Delta Base is allowed when nothing references the dynamic table (§4.5.1.2), but a
    // Sign bit of 1 with Required Insert Count 0 means a negative Base, which is invalid.
    read_int(buf, second, 7)?;
    if second & 0x80 != 0 {
        return Err(Error::Qpack("negative Base in field section prefix"));
    }
    Ok(())
}

/// Decodes one field line, dispatching on the pattern of its first byte (RFC 9204 §4.5.2-6).
fn decode_line(buf: &mut &[u8], budget: &mut Budget) -> Result<Field, Error> {
    let first = take_u8(buf)?;
    match first {
        0x80..=0xff => {
            // Indexed field line: 1 T index(6+).
            require_static(
                first & 0x40,
                "indexed field line references the dynamic table",
            )?;
            let (name, value) = static_entry(read_int(buf, first, 6)?)?;
            budget.take(name.len().saturating_add(value.len()))?;
            Ok(Field::new(name, value))
        }
        0x40..=0x7f => {
            // Literal field line with name reference: 0 1 N T index(4+), then the value.
            require_static(
                first & 0x10,
                "literal field line with name reference references the dynamic table",
            )?;
            let (name, _) = static_entry(read_int(buf, first, 4)?)?;
            budget.take(name.len())?;
            let value = read_string(buf, 7, budget)?;
            Ok(Field::new(name, value))
        }
        0x20..=0x3f => {
            // Literal field line with literal name: 0 0 1 N H length(3+) name, then the value.
            let name = read_string_with(buf, first, 3, budget)?;
            let value = read_string(buf, 7, budget)?;
            Ok(Field::new(name, value))
        }
        0x10..=0x1f => Err(Error::Qpack(
            "indexed field line with post-base index references the dynamic table",
        )),
        _ => Err(Error::Qpack(
            "literal field line with post-base name reference references the dynamic table",
        )),
    }
}

/// Fails unless the T bit (already masked) says "static table".
fn require_static(t_bit: u8, error: &'static str) -> Result<(), Error> {
    if t_bit == 0 {
        return Err(Error::Qpack(error));
    }
    Ok(())
}

fn static_entry(index: u64) -> Result<(&'static [u8], &'static [u8]), Error> {
    static_table::get(index).ok_or(Error::Qpack("static table index out of range"))
}

fn take_u8(buf: &mut &[u8]) -> Result<u8, Error> {
    let (&byte, rest) = buf.split_first().ok_or(TRUNCATED)?;
    *buf = rest;
    Ok(byte)
}

fn take_bytes<'a>(buf: &mut &'a [u8], n: u64) -> Result<&'a [u8], Error> {
    let n = usize::try_from(n).map_err(|_| TRUNCATED)?;
    let (head, rest) = buf.split_at_checked(n).ok_or(TRUNCATED)?;
    *buf = rest;
    Ok(head)
}

/// Reads a prefixed integer (RFC 7541 §5.1) whose first byte, `first`, was already taken.
///
/// At most five continuation bytes: enough for any value up to [`MAX_INTEGER`] even after an
/// 8-bit prefix, and few enough that the sum fits in a `u64` (`255 + 127 * 2^28 < 2^36`).
fn read_int(buf: &mut &[u8], first: u8, prefix: u32) -> Result<u64, Error> {
    let max = (1u64 << prefix) - 1;
    let mut value = u64::from(first) & max;
    if value < max {
        return Ok(value);
    }
    for shift in [0u32, 7, 14, 21, 28] {
        let byte = take_u8(buf)?;
        value += u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return if value > MAX_INTEGER {
                Err(Error::Qpack("prefixed integer too large"))
            } else {
                Ok(value)
            };
        }
    }
    Err(Error::Qpack("prefixed integer too large"))
}

/// Reads a string literal whose H bit and length start a new byte (the value of a field line).
fn read_string(buf: &mut &[u8], prefix: u32, budget: &mut Budget) -> Result<Bytes, Error> {
    let first = take_u8(buf)?;
    read_string_with(buf, first, prefix, budget)
}

/// Reads a string literal whose first byte, `first`, holds the H bit (just above the
/// `prefix`-bit length) and was already taken.
fn read_string_with(
    buf: &mut &[u8],
    first: u8,
    prefix: u32,
    budget: &mut Budget,
) -> Result<Bytes, Error> {
    let huffman = first & (1u8 << prefix) != 0;
    let len = read_int(buf, first, prefix)?;
    let raw = take_bytes(buf, len)?;
    if !huffman {
        budget.take(raw.len())?;
        return Ok(Bytes::copy_from_slice(raw));
    }
    let decoded = huffman_decode(raw, budget.remaining())?;
    budget.take(decoded.len())?;
    Ok(Bytes::from(decoded))
}

/// Decodes a Huffman string of at most `budget` decoded bytes, rejecting invalid codes, the EOS
/// symbol and bad padding (RFC 7541 §5.2).
fn huffman_decode(src: &[u8], budget: usize) -> Result<Vec<u8>, Error> {
    // No code is longer than 30 bits, so at least this many symbols come out: reject early
    // rather than decode something that cannot fit.
    let min_len = src.len().saturating_mul(8).saturating_sub(7) / 30;
    if min_len > budget {
        return Err(Error::TooLarge {
            what: "decoded field section",
            len: to_u64(min_len),
            limit: to_u64(budget),
        });
    }
    // No code is shorter than 5 bits: the output is at most 8/5 of the input.
    let mut out = Vec::with_capacity(src.len().saturating_mul(8) / 5);
    httlib_huffman::decode(src, &mut out, DecoderSpeed::FourBits)
        .map_err(|_| Error::Qpack("invalid Huffman code"))?;
    // Canonical check (see the module comment): valid input re-encodes to itself.
    let mut again = Vec::with_capacity(src.len());
    if httlib_huffman::encode(&out, &mut again).is_err() || again != src {
        return Err(Error::Qpack("invalid Huffman padding"));
    }
    Ok(out)
}

/// Checks what HTTP/3 requires of every field, whatever the message (RFC 9114 §4.2, §10.3).
fn check_field(field: &Field) -> Result<(), Error> {
    let name = field.name.strip_prefix(b":").unwrap_or(&field.name);
    if name.is_empty() {
        return Err(Error::Message("empty field name"));
    }
    if name.iter().any(u8::is_ascii_uppercase) {
        return Err(Error::Message("uppercase character in field name"));
    }
    if !name.iter().copied().all(is_tchar) {
        return Err(Error::Message("invalid character in field name"));
    }
    if field.value.iter().any(|&b| matches!(b, 0 | b'\r' | b'\n')) {
        return Err(Error::Message("NUL, CR or LF in field value"));
    }
    Ok(())
}

/// `tchar` of RFC 9110 §5.6.2: the characters of a token, hence of a field name.
pub(crate) fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// `usize` to `u64`, exact on every platform Rust supports.
fn to_u64(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    fn big() -> Limits {
        Limits {
            max_fields: usize::MAX,
            max_bytes: usize::MAX,
        }
    }

    fn encoded(fields: &[Field]) -> BytesMut {
        let mut out = BytesMut::new();
        encode(fields, &mut out);
        out
    }

    /// RFC 7541 Appendix C.4 and C.6 Huffman-coded strings.
    const HUFFMAN_VECTORS: [(&str, &str); 8] = [
        ("www.example.com", "f1e3 c2e5 f23a 6ba0 ab90 f4ff"),
        ("no-cache", "a8eb 1064 9cbf"),
        ("custom-key", "25a8 49e9 5ba9 7d7f"),
        ("custom-value", "25a8 49e9 5bb8 e8b4 bf"),
        ("302", "6402"),
        ("private", "aec3 771a 4b"),
        (
            "Mon, 21 Oct 2013 20:13:21 GMT",
            "d07a be94 1054 d444 a820 0595 040b 8166 e082 a62d 1bff",
        ),
        (
            "https://www.example.com",
            "9d29 ad17 1863 c78f 0b97 c8e9 ae82 ae43 d3",
        ),
    ];

    #[test]
    fn huffman_known_answers() {
        for (text, code) in HUFFMAN_VECTORS {
            let code = hex(code);
            assert_eq!(huffman_decode(&code, usize::MAX).unwrap(), text.as_bytes());
            // We write the same text as it is: H = 0, its length, its bytes.
            let mut out = BytesMut::new();
            put_string(&mut out, 0, 7, text.as_bytes());
            assert_eq!(out[0], text.len() as u8, "{text}");
            assert_eq!(&out[1..], text.as_bytes(), "{text}");
        }
    }

    #[test]
    fn huffman_rejects_bad_padding_and_eos() {
        // '0' is the 5-bit code 00000: "0" is 0x07 (padding 111), never 0x00 (padding 000),
        // which the underlying crate alone accepts.
        assert_eq!(huffman_decode(&[0x07], 100).unwrap(), b"0");
        assert!(huffman_decode(&[0x00], 100).is_err());
        assert!(huffman_decode(&[0x03], 100).is_err()); // padding 011
                                                        // Padding of 8 bits or more.
        let mut long = hex("f1e3 c2e5 f23a 6ba0 ab90 f4ff");
        long.push(0xff);
        assert!(huffman_decode(&long, 100).is_err());
        assert!(huffman_decode(&[0xff], 100).is_err());
        // EOS (30 one bits) inside the string.
        assert!(huffman_decode(&[0xff, 0xff, 0xff, 0xff], 100).is_err());
        assert!(huffman_decode(&[0x07, 0xff, 0xff, 0xff, 0xff], 100).is_err());
    }

    #[test]
    fn huffman_is_bounded_by_the_budget() {
        // 'a' is 5 bits: 8 bytes decode to 12 symbols plus padding.
        let code = {
            let mut v = Vec::new();
            httlib_huffman::encode(b"aaaaaaaaaaaa", &mut v).unwrap();
            v
        };
        assert_eq!(huffman_decode(&code, 12).unwrap().len(), 12);
        let mut budget = Budget { used: 0, limit: 11 };
        let mut line = vec![0x80 | code.len() as u8];
        line.extend_from_slice(&code);
        let err = read_string(&mut &line[..], 7, &mut budget).unwrap_err();
        assert!(matches!(err, Error::TooLarge { .. }), "{err:?}");
        // A long string of 30-bit codes is refused before decoding when it cannot fit.
        assert!(matches!(
            huffman_decode(&[0xff; 1000], 10),
            Err(Error::TooLarge { .. })
        ));
    }

    /// RFC 7541 Appendix C.1 integer examples.
    #[test]
    fn prefixed_integer_known_answers() {
        let cases: [(u64, u32, &[u8]); 3] = [
            (10, 5, &[0x0a]),
            (1337, 5, &[0x1f, 0x9a, 0x0a]),
            (42, 8, &[0x2a]),
        ];
        for (value, prefix, wire) in cases {
            let mut out = BytesMut::new();
            put_int(&mut out, 0, prefix, value);
            assert_eq!(&out[..], wire);
            let mut buf = &wire[1..];
            assert_eq!(read_int(&mut buf, wire[0], prefix), Ok(value));
            assert!(buf.is_empty());
        }
    }

    #[test]
    fn prefixed_integers_are_bounded() {
        let mut out = BytesMut::new();
        put_int(&mut out, 0, 6, MAX_INTEGER);
        assert_eq!(read_int(&mut &out[1..], out[0], 6), Ok(MAX_INTEGER));
        let mut out = BytesMut::new();
        put_int(&mut out, 0, 6, MAX_INTEGER + 1);
        assert!(read_int(&mut &out[1..], out[0], 6).is_err());
        // Endless continuation bytes, and zero-valued padding continuation bytes.
        assert!(read_int(&mut &[0xff; 64][..], 0xff, 8).is_err());
        assert!(read_int(&mut &[0x80, 0x80, 0x80, 0x80, 0x80, 0x00][..], 0xff, 8).is_err());
        assert_eq!(read_int(&mut &[0x80, 0x00][..], 0x3f, 6), Ok(63));
        assert_eq!(read_int(&mut &[0x80][..], 0x3f, 6), Err(TRUNCATED));
    }

    /// A CONNECT request the way Chromium encodes one: static entries where possible, a literal
    /// name for `:protocol`, which the static table lacks.
    fn chromium_like_block() -> Vec<u8> {
        let mut b = vec![0x00, 0x00]; // Required Insert Count 0, Delta Base 0
        b.push(0xc0 | 15); // :method CONNECT (static 15)
        b.push(0xc0 | 23); // :scheme https (static 23)
        b.extend_from_slice(&[0x50, 11]); // :authority (static name 0), raw value
        b.extend_from_slice(b"example.com");
        b.push(0xc0 | 1); // :path / (static 1)
        b.extend_from_slice(&[0x27, 0x02]); // literal name, length 7 + 2 = 9
        b.extend_from_slice(b":protocol");
        b.push(12);
        b.extend_from_slice(b"webtransport");
        b.extend_from_slice(&[0x5f, 90 - 15]); // origin (static name 90)
        let mut code = Vec::new();
        httlib_huffman::encode(b"http://127.0.0.1:12345", &mut code).unwrap();
        assert_eq!(code.len(), 16);
        b.push(0x80 | 16); // Huffman value, 16 bytes (from 22)
        b.extend_from_slice(&code);
        b
    }

    fn chromium_like_fields() -> Vec<Field> {
        vec![
            Field::new(":method", "CONNECT"),
            Field::new(":scheme", "https"),
            Field::new(":authority", "example.com"),
            Field::new(":path", "/"),
            Field::new(":protocol", "webtransport"),
            Field::new("origin", "http://127.0.0.1:12345"),
        ]
    }

    #[test]
    fn decodes_a_chromium_like_connect() {
        let fields = decode(&chromium_like_block(), &Limits::default()).unwrap();
        assert_eq!(fields, chromium_like_fields());
    }

    #[test]
    fn encodes_with_static_references() {
        let block = encoded(&chromium_like_fields());
        assert_eq!(
            &block[..5],
            &[0x00, 0x00, 0xc0 | 15, 0xc0 | 23, 0x50] // 0x50: name reference to static 0
        );
        // `:authority` value "example.com", 11 bytes as they are (H = 0).
        assert_eq!(block[5], 11);
        assert_eq!(&block[6..17], b"example.com");
        assert_eq!(
            decode(&block, &Limits::default()).unwrap(),
            chromium_like_fields()
        );
        // The literal-name line for `:protocol`: pattern 001, N=0, H=0, name length 9, which
        // overflows the 3-bit prefix (7) and so takes a continuation byte of 2.
        let protocol = encoded(&[Field::new(":protocol", "webtransport")]);
        assert_eq!(&protocol[2..5], &[0x20 | 0x07, 0x02, b':']);
    }

    #[test]
    fn empty_section() {
        assert_eq!(decode(&[0x00, 0x00], &Limits::default()), Ok(vec![]));
        assert_eq!(&encoded(&[])[..], &[0x00, 0x00]);
        assert_eq!(decode(&[], &Limits::default()), Err(TRUNCATED));
        assert_eq!(decode(&[0x00], &Limits::default()), Err(TRUNCATED));
    }

    #[test]
    fn rejects_dynamic_table_references() {
        let cases: [&[u8]; 8] = [
            &[0x01, 0x00],             // Required Insert Count 1
            &[0xff, 0x80, 0x01, 0x00], // a large Required Insert Count
            &[0x00, 0x80],             // Sign 1: negative Base
            &[0x00, 0x00, 0x80],       // indexed, T=0 (dynamic)
            &[0x00, 0x00, 0x40, 0x00], // name reference, T=0
            &[0x00, 0x00, 0x10],       // indexed post-base
            &[0x00, 0x00, 0x00, 0x00], // name reference post-base
            &[0x00, 0x00, 0x08, 0x00], // name reference post-base with N=1
        ];
        for block in cases {
            let err = decode(block, &big()).unwrap_err();
            assert!(matches!(err, Error::Qpack(_)), "{block:02x?}: {err:?}");
        }
        // Any Delta Base with Sign 0 is fine when nothing is dynamic.
        assert_eq!(
            decode(&[0x00, 0x7f, 0x05, 0xc0 | 17], &big())
                .unwrap()
                .len(),
            1
        );
    }

    #[test]
    fn rejects_static_index_out_of_range() {
        // Index 99 as an indexed line (63 + 36) and as a name reference (15 + 84).
        for block in [&[0x00, 0x00, 0xff, 36][..], &[0x00, 0x00, 0x5f, 84, 0x00]] {
            assert_eq!(
                decode(block, &big()),
                Err(Error::Qpack("static table index out of range"))
            );
        }
        assert_eq!(decode(&[0x00, 0x00, 0xff, 35], &big()).unwrap().len(), 1);
    }

    #[test]
    fn rejects_invalid_names_and_values() {
        let cases = [
            (
                Field::new("Origin", "x"),
                "uppercase character in field name",
            ),
            (
                Field::new(":Path", "/"),
                "uppercase character in field name",
            ),
            (Field::new("", "x"), "empty field name"),
            (Field::new(":", "x"), "empty field name"),
            (Field::new("a b", "x"), "invalid character in field name"),
            (Field::new("a:b", "x"), "invalid character in field name"),
            (Field::new("x", "a\r\nb"), "NUL, CR or LF in field value"),
            (Field::new("x", "a\0b"), "NUL, CR or LF in field value"),
        ];
        for (field, why) in cases {
            let block = encoded(std::slice::from_ref(&field));
            assert_eq!(
                decode(&block, &big()),
                Err(Error::Message(why)),
                "{field:?}"
            );
        }
    }

    #[test]
    fn limits_are_enforced() {
        let fields = vec![Field::new("x-a", "1"); 3];
        let block = encoded(&fields);
        let exact = Limits {
            max_fields: 3,
            max_bytes: 3 * (3 + 1 + 32),
        };
        assert_eq!(decode(&block, &exact).unwrap(), fields);
        let few = Limits {
            max_fields: 2,
            ..exact
        };
        assert!(matches!(
            decode(&block, &few),
            Err(Error::TooLarge {
                len: 3,
                limit: 2,
                ..
            })
        ));
        let small = Limits {
            max_bytes: exact.max_bytes - 1,
            ..exact
        };
        assert!(matches!(
            decode(&block, &small),
            Err(Error::TooLarge { .. })
        ));
        // One big raw value, and one big Huffman value.
        for value in [vec![b'\x01'; 20_000], vec![b'a'; 20_000]] {
            let block = encoded(&[Field::new("x", value)]);
            let err = decode(&block, &Limits::default()).unwrap_err();
            assert!(
                matches!(err, Error::TooLarge { limit: 16384, .. }),
                "{err:?}"
            );
        }
        // Indexed lines count too: empty static entries still cost 32 bytes each.
        let block = encoded(&vec![Field::new("cookie", ""); 10]);
        let tight = Limits {
            max_fields: 100,
            max_bytes: 10 * (6 + 32) - 1,
        };
        assert!(matches!(
            decode(&block, &tight),
            Err(Error::TooLarge { .. })
        ));
    }

    #[test]
    fn default_limits() {
        assert_eq!(
            Limits::default(),
            Limits {
                max_fields: 64,
                max_bytes: 16384
            }
        );
        assert_eq!(Field::new("ab", "cde").size(), 37);
    }

    fn name() -> impl Strategy<Value = Bytes> {
        prop_oneof![
            prop::sample::select(vec![
                ":authority",
                ":path",
                ":method",
                ":scheme",
                ":status",
                ":protocol",
                "origin",
                "content-type",
                "x-frame-options",
            ])
            .prop_map(Bytes::from),
            ":?[a-z0-9!#$%&'*+.^_`|~-]{1,24}".prop_map(Bytes::from),
        ]
    }

    fn value() -> impl Strategy<Value = Bytes> {
        prop_oneof![
            prop::sample::select(vec!["", "/", "CONNECT", "https", "200", "sameorigin"])
                .prop_map(Bytes::from),
            prop::collection::vec(any::<u8>(), 0..48).prop_map(|v| v
                .into_iter()
                .filter(|b| !matches!(b, 0 | b'\r' | b'\n'))
                .collect::<Vec<u8>>()
                .into()),
            "[ -~]{0,300}".prop_map(Bytes::from),
        ]
    }

    fn fields() -> impl Strategy<Value = Vec<Field>> {
        prop::collection::vec((name(), value()).prop_map(|(n, v)| Field::new(n, v)), 0..12)
    }

    proptest! {
        #[test]
        fn fields_round_trip(fields in fields()) {
            prop_assert_eq!(decode(&encoded(&fields), &big())?, fields);
        }

        /// Cutting a section inside a field line is an error; cutting between lines yields
        /// the lines before the cut. Never a panic, never `Incomplete`.
        #[test]
        fn truncation_is_an_error(fields in fields()) {
            let mut block = BytesMut::new();
            encode(&[], &mut block);
            let mut boundaries = vec![block.len()];
            for field in &fields {
                encode_field(field, &mut block);
                boundaries.push(block.len());
            }
            for cut in 0..block.len() {
                let result = decode(&block[..cut], &big());
                match boundaries.iter().position(|&b| b == cut) {
                    Some(n) => prop_assert_eq!(result?, fields[..n].to_vec()),
                    None => prop_assert!(matches!(result, Err(Error::Qpack(_))), "cut {}: {:?}", cut, result),
                }
            }
        }

        #[test]
        fn arbitrary_bytes_never_panic(block in prop::collection::vec(any::<u8>(), 0..256)) {
            if let Ok(fields) = decode(&block, &Limits::default()) {
                prop_assert_eq!(decode(&encoded(&fields), &Limits::default())?, fields);
            }
        }

        #[test]
        fn arbitrary_field_lines_never_panic(tail in prop::collection::vec(any::<u8>(), 0..64)) {
            let mut block = vec![0x00, 0x00];
            block.extend_from_slice(&tail);
            let _ = decode(&block, &Limits::default());
        }

        #[test]
        fn huffman_round_trips(s in prop::collection::vec(any::<u8>(), 0..200)) {
            let mut code = Vec::new();
            httlib_huffman::encode(&s, &mut code).unwrap();
            prop_assert_eq!(huffman_decode(&code, usize::MAX)?, s);
        }

        /// Whatever the decoder accepts is the canonical code of its output. Runs of one bits
        /// are likely, to reach the long codes, EOS and the padding rules.
        #[test]
        fn huffman_accepts_only_canonical(code in prop::collection::vec(
            prop_oneof![3 => Just(0xffu8), 1 => Just(0xfe), 1 => Just(0x7f), 3 => any::<u8>()],
            0..24,
        )) {
            if let Ok(text) = huffman_decode(&code, usize::MAX) {
                let mut again = Vec::new();
                httlib_huffman::encode(&text, &mut again).unwrap();
                prop_assert_eq!(again, code);
            }
        }
    }

    #[test]
    fn every_single_byte_huffman_round_trips() {
        for b in 0..=255u8 {
            let mut code = Vec::new();
            httlib_huffman::encode(&[b], &mut code).unwrap();
            assert_eq!(huffman_decode(&code, 10).unwrap(), [b]);
        }
    }
}
