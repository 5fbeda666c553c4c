//! The QPACK static table (RFC 9204 Appendix A): 99 fixed (name, value) entries, indexed from 0.
//!
//! The table is data from the RFC, transcribed in order; [`get`] resolves a peer's index and
//! [`find`] picks the best entry for the encoder.

/// The static table, entry `i` at index `i`.
const TABLE: [(&str, &str); 99] = [
    (":authority", ""),
    (":path", "/"),
    ("age", "0"),
    ("content-disposition", ""),
    ("content-length", "0"),
    ("cookie", ""),
    ("date", ""),
    ("etag", ""),
    ("if-modified-since", ""),
    ("if-none-match", ""),
    ("last-modified", ""),
    ("link", ""),
    ("location", ""),
    ("referer", ""),
    ("set-cookie", ""),
    (":method", "CONNECT"),
    (":method", "DELETE"),
    (":method", "GET"),
    (":method", "HEAD"),
    (":method", "OPTIONS"),
    (":method", "POST"),
    (":method", "PUT"),
    (":scheme", "http"),
    (":scheme", "https"),
    (":status", "103"),
    (":status", "200"),
    (":status", "304"),
    (":status", "404"),
    (":status", "503"),
    ("accept", "*/*"),
    ("accept", "application/dns-message"),
    ("accept-encoding", "gzip, deflate, br"),
    ("accept-ranges", "bytes"),
    ("access-control-allow-headers", "cache-control"),
    ("access-control-allow-headers", "content-type"),
    ("access-control-allow-origin", "*"),
    ("cache-control", "max-age=0"),
    ("cache-control", "max-age=2592000"),
    ("cache-control", "max-age=604800"),
    ("cache-control", "no-cache"),
    ("cache-control", "no-store"),
    ("cache-control", "public, max-age=31536000"),
    ("content-encoding", "br"),
    ("content-encoding", "gzip"),
    ("content-type", "application/dns-message"),
    ("content-type", "application/javascript"),
    ("content-type", "application/json"),
    ("content-type", "application/x-www-form-urlencoded"),
    ("content-type", "image/gif"),
    ("content-type", "image/jpeg"),
    ("content-type", "image/png"),
    ("content-type", "text/css"),
    ("content-type", "text/html; charset=utf-8"),
    ("content-type", "text/plain"),
    ("content-type", "text/plain;charset=utf-8"),
    ("range", "bytes=0-"),
    ("strict-transport-security", "max-age=31536000"),
    (
        "strict-transport-security",
        "max-age=31536000; includesubdomains",
    ),
    (
        "strict-transport-security",
        "max-age=31536000; includesubdomains; preload",
    ),
    ("vary", "accept-encoding"),
    ("vary", "origin"),
    ("x-content-type-options", "nosniff"),
    ("x-xss-protection", "1; mode=block"),
    (":status", "100"),
    (":status", "204"),
    (":status", "206"),
    (":status", "302"),
    (":status", "400"),
    (":status", "403"),
    (":status", "421"),
    (":status", "425"),
    (":status", "500"),
    ("accept-language", ""),
    ("access-control-allow-credentials", "FALSE"),
    ("access-control-allow-credentials", "TRUE"),
    ("access-control-allow-headers", "*"),
    ("access-control-allow-methods", "get"),
    ("access-control-allow-methods", "get, post, options"),
    ("access-control-allow-methods", "options"),
    ("access-control-expose-headers", "content-length"),
    ("access-control-request-headers", "content-type"),
    ("access-control-request-method", "get"),
    ("access-control-request-method", "post"),
    ("alt-svc", "clear"),
    ("authorization", ""),
    (
        "content-security-policy",
        "script-src 'none'; object-src 'none'; base-uri 'none'",
    ),
    ("early-data", "1"),
    ("expect-ct", ""),
    ("forwarded", ""),
    ("if-range", ""),
    ("origin", ""),
    ("purpose", "prefetch"),
    ("server", ""),
    ("timing-allow-origin", "*"),
    ("upgrade-insecure-requests", "1"),
    ("user-agent", ""),
    ("x-forwarded-for", ""),
    ("x-frame-options", "deny"),
    ("x-frame-options", "sameorigin"),
];

/// The (name, value) at `index`, or `None` past the end of the table.
pub(super) fn get(index: u64) -> Option<(&'static [u8], &'static [u8])> {
    let index = usize::try_from(index).ok()?;
    TABLE
        .get(index)
        .map(|(name, value)| (name.as_bytes(), value.as_bytes()))
}

/// What the static table offers the encoder for one field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Match {
    /// An entry with this name and this value.
    Full(u64),
    /// An entry with this name (the first one), but no entry with this value.
    Name(u64),
    /// No entry has this name.
    None,
}

/// Orders two byte strings as slices do, in a `const` context.
const fn cmp_bytes(a: &[u8], b: &[u8]) -> std::cmp::Ordering {
    use std::cmp::Ordering::{Equal, Greater, Less};
    let mut i = 0;
    while i < a.len() && i < b.len() {
        if a[i] != b[i] {
            return if a[i] < b[i] { Less } else { Greater };
        }
        i += 1;
    }
    if a.len() < b.len() {
        Less
    } else if a.len() > b.len() {
        Greater
    } else {
        Equal
    }
}

/// True when entry `a` sorts before entry `b`: by name, then value, then index.
const fn entry_before(a: usize, b: usize) -> bool {
    let (an, av) = TABLE[a];
    let (bn, bv) = TABLE[b];
    match cmp_bytes(an.as_bytes(), bn.as_bytes()) {
        std::cmp::Ordering::Less => true,
        std::cmp::Ordering::Greater => false,
        std::cmp::Ordering::Equal => match cmp_bytes(av.as_bytes(), bv.as_bytes()) {
            std::cmp::Ordering::Less => true,
            std::cmp::Ordering::Greater => false,
            std::cmp::Ordering::Equal => a < b,
        },
    }
}

/// The table's indices sorted by (name, value, index), computed at compile time, so that the
/// encoder's lookup is a binary search rather than a scan of 99 names (a scan cost about 1 k
/// instructions per field, 6 k per CONNECT request).
const SORTED: [u8; TABLE.len()] = {
    let mut order = [0u8; TABLE.len()];
    let mut i = 0;
    while i < TABLE.len() {
        order[i] = i as u8;
        i += 1;
    }
    // Insertion sort: 99 entries, once, in the compiler.
    let mut i = 1;
    while i < TABLE.len() {
        let mut j = i;
        while j > 0 && entry_before(order[j] as usize, order[j - 1] as usize) {
            let t = order[j];
            order[j] = order[j - 1];
            order[j - 1] = t;
            j -= 1;
        }
        i += 1;
    }
    order
};

/// The best entry for `(name, value)`: a full match if one exists, else the name's entry with
/// the lowest index.
pub(super) fn find(name: &[u8], value: &[u8]) -> Match {
    let entry = |i: &u8| TABLE[usize::from(*i)];
    let start = SORTED.partition_point(|i| entry(i).0.as_bytes() < name);
    let mut best = Match::None;
    for i in SORTED[start..]
        .iter()
        .take_while(|i| entry(i).0.as_bytes() == name)
    {
        // Sorted by value, then index: the first equal value is the lowest full match.
        if entry(i).1.as_bytes() == value {
            return Match::Full(u64::from(*i));
        }
        best = match best {
            Match::Name(b) if b < u64::from(*i) => best,
            _ => Match::Name(u64::from(*i)),
        };
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_has_the_rfc_size_and_anchors() {
        assert_eq!(TABLE.len(), 99);
        // Spot checks against RFC 9204 Appendix A.
        assert_eq!(get(0), Some((&b":authority"[..], &b""[..])));
        assert_eq!(get(1), Some((&b":path"[..], &b"/"[..])));
        assert_eq!(get(15), Some((&b":method"[..], &b"CONNECT"[..])));
        assert_eq!(get(23), Some((&b":scheme"[..], &b"https"[..])));
        assert_eq!(get(25), Some((&b":status"[..], &b"200"[..])));
        assert_eq!(get(90), Some((&b"origin"[..], &b""[..])));
        assert_eq!(get(98), Some((&b"x-frame-options"[..], &b"sameorigin"[..])));
        assert_eq!(get(99), None);
        assert_eq!(get(u64::MAX), None);
    }

    #[test]
    fn names_are_lowercase() {
        for (name, _) in TABLE {
            assert!(!name.bytes().any(|b| b.is_ascii_uppercase()), "{name}");
        }
    }

    /// The straightforward definition `find` must agree with: the first full match in table
    /// order, else the first entry with the name.
    fn find_by_scan(name: &[u8], value: &[u8]) -> Match {
        let mut best = Match::None;
        for (index, (n, v)) in (0u64..).zip(TABLE.iter()) {
            if n.as_bytes() != name {
                continue;
            }
            if v.as_bytes() == value {
                return Match::Full(index);
            }
            if best == Match::None {
                best = Match::Name(index);
            }
        }
        best
    }

    #[test]
    fn sorted_index_is_a_sorted_permutation() {
        let mut seen = [false; TABLE.len()];
        for &i in &SORTED {
            assert!(!std::mem::replace(&mut seen[usize::from(i)], true));
        }
        for pair in SORTED.windows(2) {
            let key = |i: u8| (TABLE[usize::from(i)], i);
            assert!(
                key(pair[0]) < key(pair[1]),
                "{:?} then {:?}",
                key(pair[0]),
                key(pair[1])
            );
        }
    }

    #[test]
    fn find_agrees_with_a_scan_for_every_entry_and_other_values() {
        for (name, value) in TABLE {
            for v in [value.as_bytes(), b"", b"x", b"zzzz", b"0"] {
                assert_eq!(
                    find(name.as_bytes(), v),
                    find_by_scan(name.as_bytes(), v),
                    "{name}: {v:?}"
                );
            }
        }
        for name in [&b""[..], b":", b"zzz", b":pathx", b"accept-"] {
            assert_eq!(find(name, b""), Match::None);
        }
    }

    #[test]
    fn find_prefers_full_matches() {
        assert_eq!(find(b":method", b"CONNECT"), Match::Full(15));
        assert_eq!(find(b":status", b"500"), Match::Full(71));
        assert_eq!(find(b":status", b"201"), Match::Name(24));
        assert_eq!(find(b":authority", b"example.com"), Match::Name(0));
        assert_eq!(find(b":protocol", b"webtransport"), Match::None);
    }
}
