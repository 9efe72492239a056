//! `GET /announce`: the request a client sends (BEP 3, 7, 23).

use std::fmt;
use std::net::IpAddr;

use crate::peer::{client_key, parse_ip, ClientKey, InfoHash, PeerAddr, PeerId};
use crate::query::QueryPairs;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnnounceEvent {
    /// A regular re-announce (no event, empty, or a value we do not know).
    Update,
    Started,
    Completed,
    Stopped,
}

impl AnnounceEvent {
    fn parse(value: &[u8]) -> Self {
        match value {
            b"started" => AnnounceEvent::Started,
            b"completed" => AnnounceEvent::Completed,
            b"stopped" => AnnounceEvent::Stopped,
            _ => AnnounceEvent::Update,
        }
    }

    pub fn code(self) -> u8 {
        match self {
            AnnounceEvent::Update => 0,
            AnnounceEvent::Started => 1,
            AnnounceEvent::Completed => 2,
            AnnounceEvent::Stopped => 3,
        }
    }

    pub fn from_code(code: u8) -> Option<Self> {
        Some(match code {
            0 => AnnounceEvent::Update,
            1 => AnnounceEvent::Started,
            2 => AnnounceEvent::Completed,
            3 => AnnounceEvent::Stopped,
            _ => return None,
        })
    }
}

/// A validated announce.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnnounceRequest {
    pub info_hash: InfoHash,
    pub peer_id: PeerId,
    pub port: u16,
    pub uploaded: u64,
    pub downloaded: u64,
    pub left: u64,
    pub event: AnnounceEvent,
    pub compact: bool,
    pub no_peer_id: bool,
    pub numwant: Option<u32>,
    /// `ip=` / `ipv6=` as sent; used only when the operator trusts them.
    pub claimed_ip: Option<IpAddr>,
    /// The digest of BEP 3 `key`: lets a client keep its swarm entry when
    /// its address changes (see [`crate::peer::PeerKey`]).
    pub key: Option<ClientKey>,
}

/// Why an announce was refused; the text becomes the `failure reason`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AnnounceError {
    Missing(&'static str),
    WrongLength { param: &'static str, len: usize },
    InvalidPort,
    InvalidNumber(&'static str),
    /// A counter past `MAX_COUNTER`.
    TooLarge(&'static str),
    /// A parameter repeated with different values.
    Repeated(&'static str),
}

/// Largest `uploaded`/`downloaded` accepted: 2^53 - 1 bytes (8 PiB in one
/// session). Totals travel through D1 and JSON as f64, exact only up to
/// here; no real client reports more.
pub const MAX_COUNTER: u64 = (1 << 53) - 1;

/// Longest `key` taken as one (real clients send 4-20 bytes).
pub const MAX_KEY_LEN: usize = 64;

/// The parameters an announce acts on; each must have one value. (`ip` and
/// `ipv6` are left out: BEP 7 clients on several interfaces may repeat them,
/// and they are ignored unless `TRUST_CLIENT_IP`.)
const SINGLE_VALUED: [&str; 10] =
    ["info_hash", "peer_id", "port", "uploaded", "downloaded", "left", "event", "compact", "no_peer_id", "numwant"];

impl fmt::Display for AnnounceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AnnounceError::Missing(p) => write!(f, "missing parameter '{p}'"),
            AnnounceError::WrongLength { param, len } => {
                write!(f, "invalid '{param}': expected 20 bytes, got {len}")
            }
            AnnounceError::InvalidPort => write!(f, "invalid 'port': expected 1-65535"),
            AnnounceError::InvalidNumber(p) => {
                write!(f, "invalid '{p}': expected a non-negative integer")
            }
            AnnounceError::TooLarge(p) => write!(f, "invalid '{p}': larger than {MAX_COUNTER}"),
            AnnounceError::Repeated(p) => write!(f, "parameter '{p}' given more than once with different values"),
        }
    }
}

impl AnnounceRequest {
    pub fn parse(q: &QueryPairs) -> Result<Self, AnnounceError> {
        for param in SINGLE_VALUED {
            q.only(param).map_err(|_| AnnounceError::Repeated(param))?;
        }
        let info_hash = InfoHash(twenty_bytes(q, "info_hash")?);
        let peer_id = PeerId(twenty_bytes(q, "peer_id")?);
        let port = match q.first("port") {
            None => return Err(AnnounceError::Missing("port")),
            Some(v) => parse_u64(v)
                .filter(|p| (1..=65535).contains(p))
                .ok_or(AnnounceError::InvalidPort)? as u16,
        };
        let uploaded = counter(q, "uploaded").and_then(|n| bounded(n, "uploaded"))?;
        let downloaded = counter(q, "downloaded").and_then(|n| bounded(n, "downloaded"))?;
        let left = counter(q, "left")?;
        let event = q.first("event").map(AnnounceEvent::parse).unwrap_or(AnnounceEvent::Update);
        let compact = !matches!(q.first("compact"), Some(b"0"));
        let no_peer_id = matches!(q.first("no_peer_id"), Some(v) if v != b"0");
        let numwant = match q.first("numwant") {
            None | Some(b"") => None,
            Some(v) => Some(
                parse_u64(v)
                    .map(|n| n.min(u32::MAX as u64) as u32)
                    .ok_or(AnnounceError::InvalidNumber("numwant"))?,
            ),
        };
        let claimed_ip = q
            .first("ipv6")
            .or_else(|| q.first("ip"))
            .and_then(|v| std::str::from_utf8(v).ok())
            .and_then(parse_ip);
        // The first value: some clients repeat it per interface (BEP 7).
        // Empty or oversized keys (not sent by any real client) count as none.
        let key = q.first("key").filter(|k| (1..=MAX_KEY_LEN).contains(&k.len())).map(client_key);
        Ok(AnnounceRequest {
            info_hash,
            peer_id,
            port,
            uploaded,
            downloaded,
            left,
            event,
            compact,
            no_peer_id,
            numwant,
            claimed_ip,
            key,
        })
    }

    /// The address the peer is listed under: the connecting address, or the
    /// claimed one when `trust_client_ip` is set.
    /// The swarm entry this announce speaks for (`user` in private mode).
    pub fn entry_key(&self, addr: &PeerAddr, user: Option<u64>) -> crate::peer::PeerKey {
        crate::peer::PeerKey::entry(user, &self.peer_id, addr, self.key.as_ref())
    }

    pub fn peer_addr(&self, remote: IpAddr, trust_client_ip: bool) -> PeerAddr {
        let ip = match (trust_client_ip, self.claimed_ip) {
            (true, Some(ip)) => ip,
            _ => remote,
        };
        PeerAddr::new(ip, self.port)
    }
}

fn twenty_bytes(q: &QueryPairs, param: &'static str) -> Result<[u8; 20], AnnounceError> {
    let v = q.first(param).ok_or(AnnounceError::Missing(param))?;
    v.try_into().map_err(|_| AnnounceError::WrongLength { param, len: v.len() })
}

/// Byte counters are required by BEP 3, but several clients omit them on
/// some events; a missing counter reads as 0, a malformed one is refused.
fn counter(q: &QueryPairs, param: &'static str) -> Result<u64, AnnounceError> {
    match q.first(param) {
        None => Ok(0),
        Some(v) => parse_u64(v).ok_or(AnnounceError::InvalidNumber(param)),
    }
}

/// Transfer counters are credited to accounts in private mode: bounded so
/// totals stay exact. `left` is only compared with zero and is not bounded.
fn bounded(n: u64, param: &'static str) -> Result<u64, AnnounceError> {
    if n > MAX_COUNTER {
        return Err(AnnounceError::TooLarge(param));
    }
    Ok(n)
}

/// Decimal digits only: no sign, no spaces, no overflow.
pub fn parse_u64(v: &[u8]) -> Option<u64> {
    if v.is_empty() || v.len() > 20 || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(v).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::percent_encode;

    fn query(extra: &str) -> String {
        format!(
            "info_hash={}&peer_id={}&port=6881&uploaded=1&downloaded=2&left=3{extra}",
            percent_encode(&[0xff; 20]),
            percent_encode(b"-TR3000-abcdefghijkl")
        )
    }

    fn parse(q: &str) -> Result<AnnounceRequest, AnnounceError> {
        AnnounceRequest::parse(&QueryPairs::parse(q.as_bytes()).unwrap())
    }

    #[test]
    fn parses_a_full_announce() {
        let r = parse(&query("&event=started&compact=0&no_peer_id=1&numwant=80&key=abc")).unwrap();
        assert_eq!(r.info_hash, InfoHash([0xff; 20]));
        assert_eq!(&r.peer_id.0, b"-TR3000-abcdefghijkl");
        assert_eq!((r.port, r.uploaded, r.downloaded, r.left), (6881, 1, 2, 3));
        assert_eq!(r.event, AnnounceEvent::Started);
        assert!(!r.compact && r.no_peer_id);
        assert_eq!(r.numwant, Some(80));
    }

    #[test]
    fn defaults_and_unknown_events() {
        let r = parse(&query("&event=paused")).unwrap();
        assert_eq!(r.event, AnnounceEvent::Update);
        assert!(r.compact);
        assert_eq!(r.numwant, None);
        assert_eq!(parse(&query("&event=")).unwrap().event, AnnounceEvent::Update);
    }

    #[test]
    fn unescaped_and_escaped_ids_are_one_peer() {
        let raw = "info_hash=aaaaaaaaaaaaaaaaaaaa&peer_id=-qB4520-!)*.-~abcdef&port=1";
        let esc = "info_hash=%61aaaaaaaaaaaaaaaaaaa&peer_id=%2DqB4520%2D%21%29%2A%2E%2D%7Eabcdef&port=1";
        assert_eq!(parse(raw).unwrap().peer_id, parse(esc).unwrap().peer_id);
    }

    #[test]
    fn names_the_problem() {
        assert_eq!(parse("peer_id=x").unwrap_err(), AnnounceError::Missing("info_hash"));
        assert_eq!(
            parse("info_hash=abc&peer_id=x").unwrap_err(),
            AnnounceError::WrongLength { param: "info_hash", len: 3 }
        );
        let q = query("").replace("port=6881", "port=0");
        assert_eq!(parse(&q).unwrap_err(), AnnounceError::InvalidPort);
        let q = query("").replace("port=6881", "port=70000");
        assert_eq!(parse(&q).unwrap_err(), AnnounceError::InvalidPort);
        let q = query("").replace("left=3", "left=-1");
        assert_eq!(parse(&q).unwrap_err(), AnnounceError::InvalidNumber("left"));
        let q = query("").replace("uploaded=1", "uploaded=1e5");
        assert_eq!(parse(&q).unwrap_err(), AnnounceError::InvalidNumber("uploaded"));
        let q = query("").replace("downloaded=2", "downloaded=99999999999999999999999");
        assert_eq!(parse(&q).unwrap_err(), AnnounceError::InvalidNumber("downloaded"));
        assert_eq!(parse(&query("&numwant=lots")).unwrap_err(), AnnounceError::InvalidNumber("numwant"));
        let q = query("").replace("uploaded=1", &format!("uploaded={}", MAX_COUNTER + 1));
        assert_eq!(parse(&q).unwrap_err(), AnnounceError::TooLarge("uploaded"));
        assert!(AnnounceError::TooLarge("uploaded").to_string().contains("9007199254740991"));
        let q = query("").replace("downloaded=2", &format!("downloaded={MAX_COUNTER}"));
        assert_eq!(parse(&q).unwrap().downloaded, MAX_COUNTER);
        assert!(AnnounceError::InvalidPort.to_string().contains("port"));
    }

    #[test]
    fn conflicting_repeats_and_huge_counters_are_refused() {
        assert_eq!(parse(&query("&port=6882")).unwrap_err(), AnnounceError::Repeated("port"));
        assert_eq!(parse(&format!("info_hash=x&{}", query(""))).unwrap_err(), AnnounceError::Repeated("info_hash"));
        assert_eq!(parse(&query("&event=started&event=stopped")).unwrap_err(), AnnounceError::Repeated("event"));
        assert_eq!(parse(&query("&left=")).unwrap_err(), AnnounceError::Repeated("left"));
        // The same value twice is one value.
        assert_eq!(parse(&query("&port=6881&key=a&key=b&ipv6=::1&ipv6=::2")).unwrap().port, 6881);
        let max = query("").replace("uploaded=1", &format!("uploaded={MAX_COUNTER}"));
        assert_eq!(parse(&max).unwrap().uploaded, MAX_COUNTER);
        let over = query("").replace("downloaded=2", &format!("downloaded={}", MAX_COUNTER + 1));
        assert_eq!(parse(&over).unwrap_err(), AnnounceError::TooLarge("downloaded"));
        let left = query("").replace("left=3", &format!("left={}", u64::MAX));
        assert_eq!(parse(&left).unwrap().left, u64::MAX);
        assert!(AnnounceError::Repeated("port").to_string().contains("more than once"));
    }

    #[test]
    fn claimed_ip_only_when_trusted() {
        let r = parse(&query("&ip=10.0.0.9")).unwrap();
        let remote: IpAddr = "1.2.3.4".parse().unwrap();
        assert_eq!(r.peer_addr(remote, false).ip(), remote);
        assert_eq!(r.peer_addr(remote, true).ip(), "10.0.0.9".parse::<IpAddr>().unwrap());
    }
}
