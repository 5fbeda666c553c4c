//! The incremental type-length-value reader shared by [`crate::frame::FrameDecoder`] (HTTP/3
//! frames, RFC 9114 §7.1) and [`crate::capsule::CapsuleDecoder`] (capsules, RFC 9297 §3.2):
//! both are a varint type, a varint length and that many bytes of value.
//!
//! The owner of the reader decides, once per item and before any of its value is read, how the
//! value is consumed ([`Mode`]): buffered whole (bounded by the owner's limit), streamed out in
//! zero-copy pieces as they arrive, or skipped without being kept. So no item, however long its
//! announced length, costs more memory than the owner's limit.

use bytes::{Buf, Bytes, BytesMut};

use crate::error::Error;
use crate::varint;

/// How the value of one item is consumed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Wait until the whole value is in the input, then hand it out as one [`Item::Whole`]. The
    /// owner has checked the length against its limit.
    Buffer,
    /// Hand the value out in [`Item::Piece`]s as bytes arrive.
    Stream,
    /// Discard the value as it arrives, then report [`Item::Skipped`].
    Skip,
}

/// What the reader produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Item {
    /// The complete value of a [`Mode::Buffer`] item.
    Whole { ty: u64, value: Bytes },
    /// The next non-empty piece of a [`Mode::Stream`] item's value.
    Piece(Bytes),
    /// A [`Mode::Skip`] item whose value has been discarded entirely.
    Skipped { ty: u64, len: u64 },
}

/// The item being read: its type, announced length, and how much of the value is still to come.
#[derive(Debug, Clone, Copy)]
struct Body {
    ty: u64,
    len: u64,
    remaining: u64,
    mode: Mode,
}

/// An incremental reader of varint-type, varint-length, value items.
#[derive(Debug, Default)]
pub(crate) struct TlvReader {
    body: Option<Body>,
}

impl TlvReader {
    /// True between items: no header has been read whose value is still outstanding. (Bytes of a
    /// partial header are left in the caller's buffer, so the caller also checks that it is empty.)
    pub(crate) fn is_idle(&self) -> bool {
        self.body.is_none()
    }

    /// Reads from the front of `buf` until an item is ready or more input is needed.
    ///
    /// `classify(ty, len)` picks the [`Mode`] of each new item, or rejects it. Headers that are
    /// not complete yet, and values of buffered items, stay in `buf`; everything else is consumed.
    pub(crate) fn next(
        &mut self,
        buf: &mut BytesMut,
        mut classify: impl FnMut(u64, u64) -> Result<Mode, Error>,
    ) -> Result<Option<Item>, Error> {
        loop {
            let mut body = match self.body {
                Some(body) => body,
                None => {
                    let Some((ty, len)) = take_header(buf) else {
                        return Ok(None);
                    };
                    let mode = classify(ty, len)?;
                    Body {
                        ty,
                        len,
                        remaining: len,
                        mode,
                    }
                }
            };
            let item = body.advance(buf)?;
            self.body = (body.remaining > 0).then_some(body);
            match item {
                Some(item) => return Ok(Some(item)),
                // A streamed item with an empty value ends without producing anything.
                None if self.body.is_none() => continue,
                None => return Ok(None),
            }
        }
    }
}

impl Body {
    /// Consumes what it can of the value from `buf`; `remaining` reaches 0 when the item is done.
    fn advance(&mut self, buf: &mut BytesMut) -> Result<Option<Item>, Error> {
        match self.mode {
            Mode::Buffer => {
                let len = usize::try_from(self.remaining).map_err(|_| too_large(self.remaining))?;
                if buf.len() < len {
                    return Ok(None);
                }
                self.remaining = 0;
                Ok(Some(Item::Whole {
                    ty: self.ty,
                    value: buf.split_to(len).freeze(),
                }))
            }
            Mode::Stream => {
                let n = self.available(buf);
                if n == 0 {
                    return Ok(None);
                }
                self.remaining -= n as u64;
                Ok(Some(Item::Piece(buf.split_to(n).freeze())))
            }
            Mode::Skip => {
                let n = self.available(buf);
                buf.advance(n);
                self.remaining -= n as u64;
                Ok((self.remaining == 0).then_some(Item::Skipped {
                    ty: self.ty,
                    len: self.len,
                }))
            }
        }
    }

    /// How many bytes of the value `buf` holds: at most `remaining`.
    fn available(&self, buf: &BytesMut) -> usize {
        usize::try_from(self.remaining).map_or(buf.len(), |r| r.min(buf.len()))
    }
}

/// Reads and consumes a type and a length varint, or returns `None` (consuming nothing) when
/// `buf` does not hold both yet.
fn take_header(buf: &mut BytesMut) -> Option<(u64, u64)> {
    let (ty, n) = varint::decode(buf).ok()?;
    let (len, m) = varint::decode(buf.get(n..)?).ok()?;
    buf.advance(n + m);
    Some((ty, len))
}

/// The value of a payload that must be exactly one varint, or `None`.
pub(crate) fn exact_varint(payload: &[u8]) -> Option<u64> {
    match varint::decode(payload) {
        Ok((value, n)) if n == payload.len() => Some(value),
        _ => None,
    }
}

/// A length that does not fit this platform's memory (only reachable on 32-bit targets).
fn too_large(len: u64) -> Error {
    Error::TooLarge {
        what: "buffered value",
        len,
        limit: usize::MAX as u64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn classify(ty: u64, _len: u64) -> Result<Mode, Error> {
        Ok(match ty {
            0 => Mode::Stream,
            1 => Mode::Buffer,
            _ => Mode::Skip,
        })
    }

    #[test]
    fn modes() {
        let mut r = TlvReader::default();
        let mut buf = BytesMut::from(&[0x00, 0x03, b'a', b'b'][..]);
        assert_eq!(
            r.next(&mut buf, classify),
            Ok(Some(Item::Piece(Bytes::from_static(b"ab"))))
        );
        assert!(!r.is_idle());
        buf.extend_from_slice(&[b'c', 0x01, 0x02, b'x']);
        assert_eq!(
            r.next(&mut buf, classify),
            Ok(Some(Item::Piece(Bytes::from_static(b"c"))))
        );
        assert!(r.is_idle());
        // The buffered value stays in `buf` until complete.
        assert_eq!(r.next(&mut buf, classify), Ok(None));
        assert_eq!(&buf[..], b"x");
        buf.extend_from_slice(&[b'y', 0x05, 0x02, 0xff]);
        assert_eq!(
            r.next(&mut buf, classify),
            Ok(Some(Item::Whole {
                ty: 1,
                value: Bytes::from_static(b"xy")
            }))
        );
        assert_eq!(r.next(&mut buf, classify), Ok(None));
        assert!(buf.is_empty());
        buf.extend_from_slice(&[0xff]);
        assert_eq!(
            r.next(&mut buf, classify),
            Ok(Some(Item::Skipped { ty: 5, len: 2 }))
        );
        // An empty streamed value produces nothing and the reader moves on.
        buf.extend_from_slice(&[0x00, 0x00, 0x05, 0x00]);
        assert_eq!(
            r.next(&mut buf, classify),
            Ok(Some(Item::Skipped { ty: 5, len: 0 }))
        );
        assert!(r.is_idle() && buf.is_empty());
    }

    #[test]
    fn partial_header_stays_in_buffer() {
        let mut r = TlvReader::default();
        let mut buf = BytesMut::from(&[0x40][..]);
        assert_eq!(r.next(&mut buf, classify), Ok(None));
        assert_eq!(buf.len(), 1);
        buf.extend_from_slice(&[0x05]);
        assert_eq!(r.next(&mut buf, classify), Ok(None));
        assert_eq!(buf.len(), 2);
        assert!(r.is_idle());
    }

    #[test]
    fn exact_varints() {
        assert_eq!(exact_varint(&[0x25]), Some(37));
        assert_eq!(exact_varint(&[0x40, 0x25]), Some(37));
        assert_eq!(exact_varint(&[]), None);
        assert_eq!(exact_varint(&[0x40]), None);
        assert_eq!(exact_varint(&[0x25, 0x00]), None);
    }

    #[test]
    fn huge_skip_is_streamed() {
        let mut r = TlvReader::default();
        let mut buf = BytesMut::new();
        varint::encode(7, &mut buf);
        varint::encode(varint::MAX, &mut buf);
        buf.extend_from_slice(&[0; 100]);
        assert_eq!(r.next(&mut buf, classify), Ok(None));
        assert!(buf.is_empty() && !r.is_idle());
    }
}
