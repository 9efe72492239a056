//! Raw query-string handling.
//!
//! `info_hash` and `peer_id` are arbitrary bytes, so the query is split and
//! percent-decoded straight to bytes; decoding through UTF-8 (as
//! `Url::query_pairs` does) would corrupt them. Clients escape differently
//! (upper or lower case hex, some characters left raw), and every form of the
//! same bytes decodes to the same value here.

use std::borrow::Cow;
use std::fmt;

/// Longest raw query we read. Real announces are well under 1 KiB; a scrape
/// of many hashes is the largest legitimate request.
pub const MAX_QUERY_LEN: usize = 16 * 1024;

/// Most `key=value` pairs a query may hold.
pub const MAX_PARAMS: usize = 256;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueryError {
    TooLong,
    TooManyParams,
    BadEscape { param: String },
    /// A parameter that must have one value was given different ones.
    Repeated { param: String },
}

impl fmt::Display for QueryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            QueryError::TooLong => write!(f, "query string too long (max {MAX_QUERY_LEN} bytes)"),
            QueryError::TooManyParams => write!(f, "too many query parameters (max {MAX_PARAMS})"),
            QueryError::BadEscape { param } => {
                write!(f, "invalid percent-encoding in parameter '{param}'")
            }
            QueryError::Repeated { param } => {
                write!(f, "parameter '{param}' given more than once with different values")
            }
        }
    }
}

/// A decoded key or value: borrowed from the raw query unless it held an
/// escape or a `+`.
type Decoded<'a> = Cow<'a, [u8]>;

/// A query string split into decoded `(key, value)` byte pairs, in order.
/// A side with nothing to decode borrows the raw query: an announce's
/// keys and most of its values cost no allocation.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct QueryPairs<'a> {
    pairs: Vec<(Decoded<'a>, Decoded<'a>)>,
}

impl<'a> QueryPairs<'a> {
    /// Splits `raw` (the part after `?`, without the `#fragment`) on `&`
    /// and `=`, then percent-decodes each side. `+` means space, as in forms.
    pub fn parse(raw: &'a [u8]) -> Result<Self, QueryError> {
        if raw.len() > MAX_QUERY_LEN {
            return Err(QueryError::TooLong);
        }
        // An announce has about ten parameters: no regrowth on the hot path.
        let mut pairs = Vec::with_capacity(16);
        for part in raw.split(|&b| b == b'&' || b == b';') {
            if part.is_empty() {
                continue;
            }
            if pairs.len() == MAX_PARAMS {
                return Err(QueryError::TooManyParams);
            }
            let (key, value) = match part.iter().position(|&b| b == b'=') {
                Some(i) => (&part[..i], &part[i + 1..]),
                None => (part, &b""[..]),
            };
            let key = decoded(key).ok_or_else(|| QueryError::BadEscape {
                param: String::from_utf8_lossy(key).chars().take(32).collect(),
            })?;
            let value = decoded(value).ok_or_else(|| QueryError::BadEscape {
                param: String::from_utf8_lossy(&key).chars().take(32).collect(),
            })?;
            pairs.push((key, value));
        }
        Ok(QueryPairs { pairs })
    }

    /// The first value of `key`.
    pub fn first(&self, key: &str) -> Option<&[u8]> {
        self.pairs.iter().find(|(k, _)| **k == *key.as_bytes()).map(|(_, v)| &**v)
    }

    /// The value of a single-valued `key`. Repeating it with the same value
    /// is harmless; different values are ambiguous (which one would a proxy
    /// or cache in front have looked at?) and refused.
    pub fn only<'s>(&'s self, key: &'s str) -> Result<Option<&'s [u8]>, QueryError> {
        let mut values = self.all(key);
        let first = values.next();
        match first {
            Some(v) if values.any(|other| other != v) => Err(QueryError::Repeated { param: key.to_string() }),
            _ => Ok(first),
        }
    }

    /// Every value of `key`, in order (scrape repeats `info_hash`).
    pub fn all<'s>(&'s self, key: &'s str) -> impl Iterator<Item = &'s [u8]> + 's {
        self.pairs.iter().filter(move |(k, _)| **k == *key.as_bytes()).map(|(_, v)| &**v)
    }

    /// Every decoded `(key, value)` pair, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.pairs.iter().map(|(k, v)| (&**k, &**v))
    }

    pub fn len(&self) -> usize {
        self.pairs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }
}

/// `input` decoded, borrowed when it holds no escape and no `+`.
fn decoded(input: &[u8]) -> Option<Decoded<'_>> {
    if input.iter().any(|&b| b == b'%' || b == b'+') {
        percent_decode(input).map(Cow::Owned)
    } else {
        Some(Cow::Borrowed(input))
    }
}

/// Percent-decodes to bytes; `None` on a truncated or non-hex escape.
pub fn percent_decode(input: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        match input[i] {
            b'%' => {
                let hi = hex_value(*input.get(i + 1)?)?;
                let lo = hex_value(*input.get(i + 2)?)?;
                out.push(hi << 4 | lo);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    Some(out)
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Percent-encodes every byte outside the RFC 3986 unreserved set.
pub fn percent_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 3);
    for &b in bytes {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push('%');
            out.push(char::from_digit((b >> 4) as u32, 16).unwrap_or('0').to_ascii_uppercase());
            out.push(char::from_digit((b & 15) as u32, 16).unwrap_or('0').to_ascii_uppercase());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_upper_lower_and_raw_forms_to_the_same_bytes() {
        let a = QueryPairs::parse(b"info_hash=%AB%cd%2A!~").unwrap();
        let b = QueryPairs::parse(b"info_hash=%ab%CD*%21%7E").unwrap();
        assert_eq!(a.first("info_hash"), Some(&[0xab, 0xcd, b'*', b'!', b'~'][..]));
        assert_eq!(a.first("info_hash"), b.first("info_hash"));
    }

    #[test]
    fn keeps_every_byte_value() {
        let all: Vec<u8> = (0..=255).collect();
        let q = format!("x={}", percent_encode(&all));
        assert_eq!(QueryPairs::parse(q.as_bytes()).unwrap().first("x"), Some(&all[..]));
    }

    #[test]
    fn rejects_bad_escapes() {
        assert!(matches!(QueryPairs::parse(b"a=%zz"), Err(QueryError::BadEscape { .. })));
        assert!(matches!(QueryPairs::parse(b"a=%4"), Err(QueryError::BadEscape { .. })));
        assert!(matches!(QueryPairs::parse(b"a=abc%"), Err(QueryError::BadEscape { .. })));
    }

    #[test]
    fn bounds_length_and_count() {
        assert_eq!(QueryPairs::parse(&vec![b'a'; MAX_QUERY_LEN + 1]), Err(QueryError::TooLong));
        let many = "a=1&".repeat(MAX_PARAMS + 1);
        assert_eq!(QueryPairs::parse(many.as_bytes()), Err(QueryError::TooManyParams));
    }

    #[test]
    fn single_valued_keys_refuse_conflicting_repeats() {
        let q = QueryPairs::parse(b"port=1&port=1&left=1&left=2&left=1&x=").unwrap();
        assert_eq!(q.only("port"), Ok(Some(&b"1"[..])));
        assert_eq!(q.only("left"), Err(QueryError::Repeated { param: "left".into() }));
        assert_eq!(q.only("missing"), Ok(None));
        let q = QueryPairs::parse(b"port=1&port=").unwrap();
        assert!(q.only("port").unwrap_err().to_string().contains("'port' given more than once"));
    }

    #[test]
    fn repeated_keys_and_empty_parts() {
        let q = QueryPairs::parse(b"&info_hash=a&&info_hash=b&flag").unwrap();
        assert_eq!(q.all("info_hash").collect::<Vec<_>>(), vec![&b"a"[..], &b"b"[..]]);
        assert_eq!(q.first("flag"), Some(&b""[..]));
        assert_eq!(q.first("missing"), None);
    }
}
