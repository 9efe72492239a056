//! Strict .torrent (metainfo) parsing: the exact bytes of the `info`
//! dictionary, its hashes, and rewriting the announce URL for a user.
//!
//! The info hash is a hash of the info dictionary *as uploaded*, so this
//! walks the bencode by hand to find that byte range; re-encoding a parsed
//! value could reorder or normalise it and change the hash.

use std::fmt;

use sha1::{Digest, Sha1};
use sha2::Sha256;

use crate::peer::InfoHash;

/// Deepest nesting accepted (real torrents use 5-6 levels).
pub const MAX_DEPTH: usize = 64;

/// Longest `info.name` accepted, in bytes (file systems allow 255 per
/// path component); the registry stores the name in a D1 row, which holds
/// at most 2 MB, so a 10 MiB upload must not be mostly name.
pub const MAX_NAME: usize = 1024;

/// Most values in one torrent. Each parsed value takes ~32 bytes, so 10 MiB
/// of `le` (5M empty lists, under the 10 MiB upload limit) would need 160 MB
/// and more while its list grows: more than an isolate's memory. A 10 MiB
/// torrent of real files (~140 bytes of path and length per file) holds
/// ~75k files of ~5 values each, well under this bound.
pub const MAX_VALUES: usize = 1_000_000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetainfoError(pub String);

impl fmt::Display for MetainfoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid torrent: {}", self.0)
    }
}

fn err<T>(msg: impl Into<String>) -> Result<T, MetainfoError> {
    Err(MetainfoError(msg.into()))
}

/// A bencoded value with the byte range it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value<'a> {
    Int(i64),
    Bytes(&'a [u8]),
    List(Vec<Value<'a>>),
    /// Keys in the (strictly increasing) order they appeared, with the raw
    /// bytes of each value.
    Dict(Vec<(&'a [u8], Value<'a>, &'a [u8])>),
}

impl<'a> Value<'a> {
    pub fn get(&self, key: &str) -> Option<&Value<'a>> {
        match self {
            Value::Dict(entries) => entries.iter().find(|(k, _, _)| *k == key.as_bytes()).map(|(_, v, _)| v),
            _ => None,
        }
    }

    pub fn raw(&self, key: &str) -> Option<&'a [u8]> {
        match self {
            Value::Dict(entries) => entries.iter().find(|(k, _, _)| *k == key.as_bytes()).map(|(_, _, r)| *r),
            _ => None,
        }
    }

    fn int(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            _ => None,
        }
    }

    fn bytes(&self) -> Option<&'a [u8]> {
        match self {
            Value::Bytes(b) => Some(b),
            _ => None,
        }
    }
}

/// Parses one complete bencoded value; trailing bytes are an error.
pub fn parse(input: &[u8]) -> Result<Value<'_>, MetainfoError> {
    let mut p = Parser { input, at: 0, values: 0 };
    let v = p.value(0)?;
    if p.at != input.len() {
        return err("trailing data after the top-level dictionary");
    }
    Ok(v)
}

struct Parser<'a> {
    input: &'a [u8],
    at: usize,
    values: usize,
}

impl<'a> Parser<'a> {
    fn peek(&self) -> Option<u8> {
        self.input.get(self.at).copied()
    }

    fn value(&mut self, depth: usize) -> Result<Value<'a>, MetainfoError> {
        if depth > MAX_DEPTH {
            return err("nested too deeply");
        }
        self.values += 1;
        if self.values > MAX_VALUES {
            return err(format!("more than {MAX_VALUES} values"));
        }
        match self.peek() {
            Some(b'i') => {
                self.at += 1;
                let end = self.find(b'e')?;
                let digits = &self.input[self.at..end];
                let canonical = match digits {
                    [b'0'] => true,
                    [b'-', b'1'..=b'9', rest @ ..] | [b'1'..=b'9', rest @ ..] => rest.iter().all(u8::is_ascii_digit),
                    _ => false,
                };
                if !canonical {
                    return err("malformed integer");
                }
                let n = std::str::from_utf8(digits).ok().and_then(|s| s.parse().ok());
                self.at = end + 1;
                n.map(Value::Int).ok_or(MetainfoError("integer out of range".into()))
            }
            Some(b'l') => {
                self.at += 1;
                let mut items = Vec::new();
                while self.peek() != Some(b'e') {
                    items.push(self.value(depth + 1)?);
                }
                self.at += 1;
                Ok(Value::List(items))
            }
            Some(b'd') => {
                self.at += 1;
                let mut entries: Vec<(&'a [u8], Value<'a>, &'a [u8])> = Vec::new();
                while self.peek() != Some(b'e') {
                    let key = self.string()?;
                    if let Some((last, _, _)) = entries.last() {
                        if key <= *last {
                            return err("dictionary keys not sorted or duplicated");
                        }
                    }
                    let start = self.at;
                    let v = self.value(depth + 1)?;
                    entries.push((key, v, &self.input[start..self.at]));
                }
                self.at += 1;
                Ok(Value::Dict(entries))
            }
            Some(b'0'..=b'9') => self.string().map(Value::Bytes),
            Some(_) => err(format!("unexpected byte at offset {}", self.at)),
            None => err("truncated"),
        }
    }

    fn string(&mut self) -> Result<&'a [u8], MetainfoError> {
        let colon = self.find(b':')?;
        let digits = &self.input[self.at..colon];
        if digits.is_empty() || digits.len() > 10 || !digits.iter().all(u8::is_ascii_digit) || (digits.len() > 1 && digits[0] == b'0') {
            return err("malformed string length");
        }
        let len: usize = std::str::from_utf8(digits).ok().and_then(|s| s.parse().ok()).ok_or(MetainfoError("bad length".into()))?;
        let start = colon + 1;
        let end = start.checked_add(len).filter(|&e| e <= self.input.len()).ok_or(MetainfoError("truncated string".into()))?;
        self.at = end;
        Ok(&self.input[start..end])
    }

    fn find(&self, b: u8) -> Result<usize, MetainfoError> {
        // Integers and lengths are short: do not scan megabytes for a delimiter.
        let window = &self.input[self.at..self.input.len().min(self.at + 32)];
        window.iter().position(|&x| x == b).map(|i| self.at + i).ok_or(MetainfoError("truncated".into()))
    }
}

/// What the tracker keeps about an uploaded torrent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Metainfo {
    /// The hash v1 clients announce: SHA-1 of the info dictionary (for a
    /// v2-only torrent, its SHA-256 truncated to 20 bytes).
    pub info_hash: InfoHash,
    /// For v2 and hybrid torrents, the truncated SHA-256 v2 clients announce.
    pub v2_hash: Option<InfoHash>,
    pub name: String,
    pub size: u64,
    pub private: bool,
}

/// Validates a .torrent strictly and extracts what the registry needs.
pub fn inspect(bytes: &[u8]) -> Result<Metainfo, MetainfoError> {
    let top = parse(bytes)?;
    if !matches!(top, Value::Dict(_)) {
        return err("not a dictionary");
    }
    let info = top.get("info").ok_or(MetainfoError("missing 'info' dictionary".into()))?;
    let raw = top.raw("info").unwrap_or_default();
    if !matches!(info, Value::Dict(_)) {
        return err("'info' is not a dictionary");
    }
    let name = info
        .get("name")
        .and_then(Value::bytes)
        .filter(|n| !n.is_empty())
        .ok_or(MetainfoError("missing 'info.name'".into()))?;
    if name.len() > MAX_NAME {
        return err(format!("'info.name' is longer than {MAX_NAME} bytes"));
    }
    let piece_length = info.get("piece length").and_then(Value::int).ok_or(MetainfoError("missing 'piece length'".into()))?;
    if piece_length <= 0 {
        return err("'piece length' must be positive");
    }
    let v2 = info.get("meta version").and_then(Value::int) == Some(2);
    let v1 = info.get("pieces").is_some();
    if !v1 && !v2 {
        return err("neither v1 'pieces' nor v2 'meta version' 2");
    }
    let size = if v1 {
        let pieces = info.get("pieces").and_then(Value::bytes).ok_or(MetainfoError("'pieces' is not a string".into()))?;
        if pieces.len() % 20 != 0 {
            return err("'pieces' length is not a multiple of 20");
        }
        match (info.get("length"), info.get("files")) {
            (Some(len), None) => len.int().filter(|&l| l >= 0).ok_or(MetainfoError("bad 'length'".into()))? as u64,
            (None, Some(Value::List(files))) if !files.is_empty() => {
                let mut total: u64 = 0;
                for f in files {
                    let len = f.get("length").and_then(Value::int).filter(|&l| l >= 0).ok_or(MetainfoError("bad file 'length'".into()))?;
                    if !matches!(f.get("path"), Some(Value::List(p)) if !p.is_empty()) {
                        return err("bad file 'path'");
                    }
                    total = total.saturating_add(len as u64);
                }
                total
            }
            _ => return err("need exactly one of 'length' or 'files'"),
        }
    } else if let Some(tree @ Value::Dict(_)) = info.get("file tree") {
        file_tree_size(tree)
    } else {
        return err("v2 torrent without 'file tree'");
    };
    let sha1: [u8; 20] = Sha1::digest(raw).into();
    let sha256 = Sha256::digest(raw);
    let mut truncated = [0u8; 20];
    truncated.copy_from_slice(&sha256[..20]);
    let private = info.get("private").and_then(Value::int) == Some(1);
    Ok(Metainfo {
        info_hash: InfoHash(if v1 { sha1 } else { truncated }),
        v2_hash: v2.then_some(InfoHash(truncated)),
        name: String::from_utf8_lossy(name).into_owned(),
        size,
        private,
    })
}

fn file_tree_size(v: &Value<'_>) -> u64 {
    match v {
        Value::Dict(entries) => entries
            .iter()
            .map(|(k, v, _)| {
                if k.is_empty() {
                    v.get("length").and_then(Value::int).unwrap_or(0).max(0) as u64
                } else {
                    file_tree_size(v)
                }
            })
            .fold(0u64, u64::saturating_add),
        _ => 0,
    }
}

/// The same torrent with `announce` set to `url` and `announce-list`
/// replaced by that one URL; the info dictionary is copied byte for byte.
pub fn with_announce(bytes: &[u8], url: &str) -> Result<Vec<u8>, MetainfoError> {
    rewrite(bytes, url, &[])
}

/// Top-level keys that name web seeds (BEP 19 `url-list`, BEP 17 `httpseeds`):
/// clients fetch pieces from those servers, which then see their addresses.
pub const WEB_SEED_KEYS: [&[u8]; 2] = [b"url-list", b"httpseeds"];

/// The torrent as a member downloads it: their announce URL (as
/// `with_announce`) and, unless `keep_web_seeds`, no web seeds, so the
/// uploader's server never learns who downloads. The info dictionary (and
/// so the info hash) is untouched.
pub fn for_member(bytes: &[u8], url: &str, keep_web_seeds: bool) -> Result<Vec<u8>, MetainfoError> {
    rewrite(bytes, url, if keep_web_seeds { &[] } else { &WEB_SEED_KEYS })
}

/// Copies the top-level dictionary without `announce`, `announce-list` and
/// the `drop` keys, then adds the announce keys for `url`, in sorted order.
fn rewrite(bytes: &[u8], url: &str, drop: &[&[u8]]) -> Result<Vec<u8>, MetainfoError> {
    let top = parse(bytes)?;
    let Value::Dict(entries) = &top else { return err("not a dictionary") };
    let mut announce = Vec::new();
    bstr(&mut announce, url.as_bytes());
    let mut list = b"ll".to_vec();
    bstr(&mut list, url.as_bytes());
    list.extend_from_slice(b"ee");
    let mut out: Vec<(&[u8], &[u8])> = entries
        .iter()
        .filter(|(k, _, _)| *k != b"announce" && *k != b"announce-list" && !drop.contains(k))
        .map(|(k, _, raw)| (*k, *raw))
        .collect();
    out.push((b"announce", &announce));
    out.push((b"announce-list", &list));
    out.sort_by(|a, b| a.0.cmp(b.0));
    let mut buf = Vec::with_capacity(bytes.len() + 2 * url.len() + 32);
    buf.push(b'd');
    for (k, v) in out {
        bstr(&mut buf, k);
        buf.extend_from_slice(v);
    }
    buf.push(b'e');
    Ok(buf)
}

fn bstr(out: &mut Vec<u8>, s: &[u8]) {
    out.extend_from_slice(s.len().to_string().as_bytes());
    out.push(b':');
    out.extend_from_slice(s);
}

/// A magnet link (BEP 9) for a registered torrent.
pub fn magnet(info_hash: &InfoHash, name: &str, tracker: &str) -> String {
    format!(
        "magnet:?xt=urn:btih:{}&dn={}&tr={}",
        info_hash.to_hex(),
        crate::query::percent_encode(name.as_bytes()),
        crate::query::percent_encode(tracker.as_bytes())
    )
}

/// The files of a (validated) torrent: path (parts joined by `/`) and
/// length, the first `max` of them, and how many there are in all.
pub fn files(bytes: &[u8], max: usize) -> Result<(Vec<(String, u64)>, usize), MetainfoError> {
    let top = parse(bytes)?;
    let info = top.get("info").ok_or(MetainfoError("missing 'info' dictionary".into()))?;
    let name = String::from_utf8_lossy(info.get("name").and_then(Value::bytes).unwrap_or_default()).into_owned();
    let mut out = Vec::new();
    let mut count = 0;
    let mut push = |path: String, len: i64| {
        count += 1;
        if out.len() < max {
            out.push((path, len.max(0) as u64));
        }
    };
    match (info.get("length"), info.get("files"), info.get("file tree")) {
        (Some(len), _, _) => push(name, len.int().unwrap_or(0)),
        (None, Some(Value::List(list)), _) => {
            for f in list {
                let parts: Vec<String> = match f.get("path") {
                    Some(Value::List(p)) => p.iter().filter_map(Value::bytes).map(|b| String::from_utf8_lossy(b).into_owned()).collect(),
                    _ => Vec::new(),
                };
                push(parts.join("/"), f.get("length").and_then(Value::int).unwrap_or(0));
            }
        }
        (None, None, Some(tree)) => walk_tree(tree, &mut String::new(), &mut push),
        _ => {}
    }
    Ok((out, count))
}

fn walk_tree(v: &Value<'_>, path: &mut String, push: &mut impl FnMut(String, i64)) {
    let Value::Dict(entries) = v else { return };
    for (k, child, _) in entries {
        if k.is_empty() {
            push(path.clone(), child.get("length").and_then(Value::int).unwrap_or(0));
            continue;
        }
        let before = path.len();
        if !path.is_empty() {
            path.push('/');
        }
        path.push_str(&String::from_utf8_lossy(k));
        walk_tree(child, path, push);
        path.truncate(before);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn single(extra_info: &str) -> Vec<u8> {
        format!("d8:announce9:http://x/4:infod6:lengthi10e4:name1:a12:piece lengthi16e6:pieces20:aaaaaaaaaaaaaaaaaaaa{extra_info}ee").into_bytes()
    }

    #[test]
    fn hashes_the_exact_info_bytes() {
        let t = single("");
        let m = inspect(&t).unwrap();
        let info = b"d6:lengthi10e4:name1:a12:piece lengthi16e6:pieces20:aaaaaaaaaaaaaaaaaaaae";
        let want: [u8; 20] = Sha1::digest(info).into();
        assert_eq!(m.info_hash, InfoHash(want));
        assert_eq!((m.name.as_str(), m.size, m.private, m.v2_hash), ("a", 10, false, None));
        assert!(inspect(&single("7:privatei1e")).unwrap().private);
    }

    #[test]
    fn lists_files_single_multi_and_v2() {
        assert_eq!(files(&single(""), 10).unwrap(), (vec![("a".to_string(), 10)], 1));
        let multi = b"d4:infod5:filesld6:lengthi3e4:pathl1:x5:y.bineed6:lengthi4e4:pathl1:zeee4:name1:d12:piece lengthi16e6:pieces20:aaaaaaaaaaaaaaaaaaaaee";
        assert_eq!(files(multi, 10).unwrap(), (vec![("x/y.bin".to_string(), 3), ("z".to_string(), 4)], 2));
        assert_eq!(files(multi, 1).unwrap(), (vec![("x/y.bin".to_string(), 3)], 2), "bounded, with the full count");
        let v2 = b"d4:infod9:file treed1:ad1:bd0:d6:lengthi5eeee1:cd0:d6:lengthi6eeee12:meta versioni2e4:name1:d12:piece lengthi16eee";
        assert_eq!(files(v2, 10).unwrap(), (vec![("a/b".to_string(), 5), ("c".to_string(), 6)], 2));
    }

    #[test]
    fn multi_file_sizes_add_up() {
        let t = b"d4:infod5:filesld6:lengthi3e4:pathl1:xeed6:lengthi4e4:pathl1:yeee4:name1:d12:piece lengthi16e6:pieces0:ee";
        assert_eq!(inspect(t).unwrap().size, 7);
    }

    #[test]
    fn v2_and_hybrid_get_the_truncated_sha256() {
        let v2 = b"d4:infod9:file treed1:ad0:d6:lengthi5eeee12:meta versioni2e4:name1:a12:piece lengthi16eee";
        let m = inspect(v2).unwrap();
        assert_eq!(m.v2_hash, Some(m.info_hash));
        assert_eq!(m.size, 5);
        let hybrid = String::from_utf8(single("")).unwrap().replace("4:name", "12:meta versioni2e4:name");
        let m = inspect(hybrid.as_bytes()).unwrap();
        assert!(m.v2_hash.is_some());
        assert_ne!(m.v2_hash, Some(m.info_hash));
    }

    #[test]
    fn strictness() {
        for bad in [
            &b""[..],
            b"d4:infod4:name1:aee",
            b"d4:infoi1ee",
            b"d4:infod6:lengthi10e4:name1:a12:piece lengthi16e6:pieces3:abcee",
            b"d4:infod6:lengthi10e4:name1:a12:piece lengthi16e6:pieces0:eex",
            b"d1:bi1e1:ai1ee",
            b"di01ee",
            b"d4:info",
            b"d4:infod6:lengthi-1e4:name1:a12:piece lengthi16e6:pieces0:ee",
            b"d4:infod4:name1:a12:piece lengthi16e6:pieces0:ee",
            b"d4:infod6:lengthi1e4:name1:a12:piece lengthi0e6:pieces0:ee",
            b"99999999999:x",
        ] {
            assert!(inspect(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
        let long_name = String::from_utf8(single("")).unwrap().replace("4:name1:a", &format!("4:name1025:{}", "n".repeat(1025)));
        assert_eq!(inspect(long_name.as_bytes()).unwrap_err(), MetainfoError("'info.name' is longer than 1024 bytes".into()));
        let max_name = String::from_utf8(single("")).unwrap().replace("4:name1:a", &format!("4:name1024:{}", "n".repeat(1024)));
        assert_eq!(inspect(max_name.as_bytes()).unwrap().name.len(), 1024);
        let many = format!("d4:infol{}ee", "le".repeat(MAX_VALUES));
        assert_eq!(parse(many.as_bytes()).unwrap_err(), MetainfoError(format!("more than {MAX_VALUES} values")));
        let deep = format!("{}{}", "l".repeat(10_000), "e".repeat(10_000));
        assert_eq!(parse(deep.as_bytes()).unwrap_err(), MetainfoError("nested too deeply".into()));
    }

    #[test]
    fn personal_announce_keeps_the_info_hash() {
        let t = single("");
        let out = with_announce(&t, "https://t.example/announce/abc").unwrap();
        assert_eq!(inspect(&out).unwrap().info_hash, inspect(&t).unwrap().info_hash);
        let top = parse(&out).unwrap();
        assert_eq!(top.get("announce").and_then(Value::bytes), Some(&b"https://t.example/announce/abc"[..]));
        assert!(matches!(top.get("announce-list"), Some(Value::List(l)) if l.len() == 1));
    }

    #[test]
    fn web_seeds_are_stripped_unless_kept() {
        let info = "4:infod6:lengthi10e4:name1:a12:piece lengthi16e6:pieces20:aaaaaaaaaaaaaaaaaaaae";
        let t = format!("d8:announce9:http://x/7:comment2:hi9:httpseedsl12:http://seed/e{info}8:url-listl13:http://mirroree");
        let url = "https://t.example/announce/abc";
        let out = for_member(t.as_bytes(), url, false).unwrap();
        let top = parse(&out).unwrap();
        assert!(top.get("url-list").is_none() && top.get("httpseeds").is_none());
        assert_eq!(top.get("comment").and_then(Value::bytes), Some(&b"hi"[..]));
        assert_eq!(inspect(&out).unwrap().info_hash, inspect(t.as_bytes()).unwrap().info_hash);
        let expected = format!("d8:announce30:{url}13:announce-listll30:{url}ee7:comment2:hi{info}e");
        assert_eq!(String::from_utf8(out).unwrap(), expected);
        // Kept on request, and a single-string url-list is kept as it was.
        let kept = for_member(t.as_bytes(), url, true).unwrap();
        assert!(parse(&kept).unwrap().get("url-list").is_some() && parse(&kept).unwrap().get("httpseeds").is_some());
        let single = format!("d{info}8:url-list13:http://mirrore");
        assert!(String::from_utf8(for_member(single.as_bytes(), url, true).unwrap()).unwrap().ends_with("8:url-list13:http://mirrore"));
        // Web seed keys inside the info dictionary cannot be removed without changing the hash: untouched.
        let inner = "d4:infod6:lengthi10e4:name1:a12:piece lengthi16e6:pieces20:aaaaaaaaaaaaaaaaaaaa8:url-list1:xee".to_string();
        assert_eq!(inspect(&for_member(inner.as_bytes(), url, false).unwrap()).unwrap().info_hash, inspect(inner.as_bytes()).unwrap().info_hash);
    }

    #[test]
    fn magnet_link() {
        let m = magnet(&InfoHash([0xab; 20]), "a b", "http://x/announce");
        assert!(m.starts_with("magnet:?xt=urn:btih:abab"));
        assert!(m.contains("&dn=a%20b&tr=http%3A%2F%2Fx%2Fannounce"));
    }
}
