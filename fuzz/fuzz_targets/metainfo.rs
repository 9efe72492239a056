//! The bencode/metainfo parser behind .torrent uploads: any bytes are
//! either refused with a reason or parsed exactly. The parser is strict
//! (canonical integers and lengths, sorted unique keys, nothing trailing),
//! so re-encoding a parsed value must give back the very same bytes.
#![no_main]

use edge_tracker::metainfo::{inspect, magnet, parse, with_announce, Value};
use libfuzzer_sys::fuzz_target;
use sha1_check::sha1_of;

const URL: &str = "https://tracker.example/announce/0123456789abcdef";

fuzz_target!(|bytes: &[u8]| {
    match parse(bytes) {
        Ok(v) => {
            let mut out = Vec::new();
            encode(&v, &mut out);
            assert_eq!(out, bytes, "a strict parse must re-encode to the same bytes");
        }
        Err(e) => assert!(!e.to_string().is_empty()),
    }

    match inspect(bytes) {
        Ok(m) => {
            assert!(!m.name.is_empty());
            let top = parse(bytes).expect("inspect accepted what parse refuses");
            let raw = top.raw("info").expect("inspect accepted a torrent without info");
            if m.v2_hash.is_none() {
                assert_eq!(m.info_hash.0, sha1_of(raw));
            }
            // The personal copy a user downloads announces to URL and keeps
            // the info dictionary, so its hashes, byte for byte.
            let personal = with_announce(bytes, URL).expect("with_announce refused a valid torrent");
            assert_eq!(inspect(&personal), Ok(m.clone()));
            let ptop = parse(&personal).unwrap();
            assert_eq!(ptop.raw("info"), Some(raw));
            assert!(matches!(ptop.get("announce"), Some(Value::Bytes(u)) if *u == URL.as_bytes()));
            let link = magnet(&m.info_hash, &m.name, URL);
            assert!(link.starts_with("magnet:?xt=urn:btih:") && link.is_ascii());
        }
        Err(e) => assert!(!e.to_string().is_empty()),
    }

    if let Ok(out) = with_announce(bytes, URL) {
        parse(&out).expect("with_announce wrote bencode its own parser refuses");
    }
});

fn encode(v: &Value<'_>, out: &mut Vec<u8>) {
    match v {
        Value::Int(i) => out.extend_from_slice(format!("i{i}e").as_bytes()),
        Value::Bytes(b) => bytes(b, out),
        Value::List(items) => {
            out.push(b'l');
            items.iter().for_each(|i| encode(i, out));
            out.push(b'e');
        }
        Value::Dict(entries) => {
            out.push(b'd');
            for (k, v, raw) in entries {
                bytes(k, out);
                let start = out.len();
                encode(v, out);
                assert_eq!(&out[start..], *raw, "a value's raw bytes are not its encoding");
            }
            out.push(b'e');
        }
    }
}

fn bytes(b: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(b.len().to_string().as_bytes());
    out.push(b':');
    out.extend_from_slice(b);
}

mod sha1_check {
    use sha1::{Digest, Sha1};

    pub fn sha1_of(b: &[u8]) -> [u8; 20] {
        Sha1::digest(b).into()
    }
}
