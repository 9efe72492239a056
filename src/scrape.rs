//! `GET /scrape` (BEP 48) and the counters each swarm publishes for it.

use std::fmt;

use crate::peer::InfoHash;
use crate::query::QueryPairs;
use crate::swarm::SwarmCounters;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScrapeRequest {
    /// Requested torrents, duplicates removed, in request order. Empty means
    /// a full scrape.
    pub info_hashes: Vec<InfoHash>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScrapeError {
    WrongLength { len: usize },
    TooMany { max: u32 },
    FullScrapeDisabled,
}

impl fmt::Display for ScrapeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ScrapeError::WrongLength { len } => {
                write!(f, "invalid 'info_hash': expected 20 bytes, got {len}")
            }
            ScrapeError::TooMany { max } => write!(f, "too many info_hash values (max {max} per scrape)"),
            ScrapeError::FullScrapeDisabled => {
                write!(f, "full scrape is disabled: pass one or more 'info_hash'")
            }
        }
    }
}

impl ScrapeRequest {
    pub fn parse(q: &QueryPairs, max: u32, full_scrape: bool) -> Result<Self, ScrapeError> {
        let mut info_hashes: Vec<InfoHash> = Vec::new();
        for v in q.all("info_hash") {
            let hash = InfoHash(v.try_into().map_err(|_| ScrapeError::WrongLength { len: v.len() })?);
            if !info_hashes.contains(&hash) {
                if info_hashes.len() as u32 == max {
                    return Err(ScrapeError::TooMany { max });
                }
                info_hashes.push(hash);
            }
        }
        if info_hashes.is_empty() && !full_scrape {
            return Err(ScrapeError::FullScrapeDisabled);
        }
        Ok(ScrapeRequest { info_hashes })
    }
}

pub use crate::kv_keys::{counters_key, hash_of_key, scrape_key, COUNTERS_PREFIX};

impl SwarmCounters {
    /// The KV value: `complete incomplete downloaded`, small and readable.
    pub fn to_kv(&self) -> String {
        format!("{} {} {}", self.complete, self.incomplete, self.downloaded)
    }

    pub fn from_kv(s: &str) -> Option<Self> {
        let mut it = s.split(' ').map(|n| n.parse::<u64>());
        let c = SwarmCounters { complete: it.next()?.ok()?, incomplete: it.next()?.ok()?, downloaded: it.next()?.ok()? };
        it.next().is_none().then_some(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::percent_encode;

    fn q(s: &str) -> QueryPairs<'_> {
        QueryPairs::parse(s.as_bytes()).unwrap()
    }

    #[test]
    fn many_hashes_deduplicated() {
        let a = percent_encode(&[1; 20]);
        let b = percent_encode(&[2; 20]);
        let r = ScrapeRequest::parse(&q(&format!("info_hash={a}&info_hash={b}&info_hash={a}")), 10, false).unwrap();
        assert_eq!(r.info_hashes, vec![InfoHash([1; 20]), InfoHash([2; 20])]);
    }

    #[test]
    fn bounded_and_validated() {
        let many: Vec<String> = (0..5u8).map(|i| format!("info_hash={}", percent_encode(&[i; 20]))).collect();
        assert_eq!(ScrapeRequest::parse(&q(&many.join("&")), 4, false), Err(ScrapeError::TooMany { max: 4 }));
        assert_eq!(ScrapeRequest::parse(&q("info_hash=abc"), 4, false), Err(ScrapeError::WrongLength { len: 3 }));
        assert_eq!(ScrapeRequest::parse(&q(""), 4, false), Err(ScrapeError::FullScrapeDisabled));
        assert_eq!(ScrapeRequest::parse(&q(""), 4, true).unwrap().info_hashes, vec![]);
    }

    #[test]
    fn counters_round_trip_through_kv_text() {
        let c = SwarmCounters { complete: 3, incomplete: 4, downloaded: 5 };
        assert_eq!(SwarmCounters::from_kv(&c.to_kv()), Some(c));
        assert_eq!(SwarmCounters::from_kv("1 2"), None);
        assert_eq!(SwarmCounters::from_kv("1 2 x"), None);
        let h = InfoHash([0xab; 20]);
        assert_eq!(hash_of_key(&counters_key(&h)), Some(h));
        assert_eq!(scrape_key(&h, false), counters_key(&h));
        assert!(scrape_key(&h, true).starts_with("cached:"));
        assert_eq!(hash_of_key(&scrape_key(&h, true)), Some(h));
    }
}
