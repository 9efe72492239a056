//! Every key the tracker keeps in KV (`TRACKER_KV`), in one place. The JS
//! entry reads `client-bans` too (`CLIENT_BANS_KEY` in entry.mjs; the client
//! ban test in tests/abuse.test.mjs fails if the two differ).

use crate::peer::InfoHash;

/// A torrent's counters (`complete incomplete downloaded`) published for
/// good (`SCRAPE_CACHE=0` or `FULL_SCRAPE`, which lists them), read by scrape.
pub const COUNTERS_PREFIX: &str = "scrape:";
/// A torrent's counters as the read-through scrape cache holds them, with
/// an expiry (`SCRAPE_CACHE`). A prefix of its own: the `scrape:` keys a
/// deployment published for good before would otherwise be served forever.
pub const CACHED_PREFIX: &str = "cached:";
/// An emptied swarm's final counters (its completed count outlives its storage).
pub const FINAL_PREFIX: &str = "final:";
/// Private mode: a passkey's owner and ratio status.
pub const PASSKEY_PREFIX: &str = "passkey:";
/// Private mode: a registered torrent (and whether it is freeleech).
pub const TORRENT_PREFIX: &str = "torrent:";
/// An admin's block of a torrent, listed by `GET /api/admin/blocked`.
pub const BLOCKED_PREFIX: &str = "blocked:";
/// The admins' list of banned client prefixes.
pub const CLIENT_BANS_KEY: &str = "client-bans";

pub fn counters_key(hash: &InfoHash) -> String {
    format!("{COUNTERS_PREFIX}{}", hash.to_hex())
}

/// The key scrape reads a torrent's counters from: the read-through
/// cache's (`cached:`) or the published one (`scrape:`).
pub fn scrape_key(hash: &InfoHash, read_through: bool) -> String {
    if read_through {
        format!("{CACHED_PREFIX}{}", hash.to_hex())
    } else {
        counters_key(hash)
    }
}

/// The info hash a counters key (either kind) belongs to.
pub fn hash_of_key(key: &str) -> Option<InfoHash> {
    InfoHash::from_hex(key.strip_prefix(COUNTERS_PREFIX).or_else(|| key.strip_prefix(CACHED_PREFIX))?)
}

pub fn final_key(hash: &InfoHash) -> String {
    format!("{FINAL_PREFIX}{}", hash.to_hex())
}

pub fn passkey_key(passkey: &str) -> String {
    format!("{PASSKEY_PREFIX}{passkey}")
}

pub fn torrent_key(hash: &InfoHash) -> String {
    format!("{TORRENT_PREFIX}{}", hash.to_hex())
}

pub fn blocked_key(hash: &InfoHash) -> String {
    format!("{BLOCKED_PREFIX}{}", hash.to_hex())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_and_do_not_collide() {
        let h = InfoHash([0xab; 20]);
        assert_eq!(hash_of_key(&counters_key(&h)), Some(h));
        assert_eq!(hash_of_key(&final_key(&h)), None, "final counters are not scrape entries");
        let keys = [counters_key(&h), final_key(&h), torrent_key(&h), blocked_key(&h), passkey_key("x"), CLIENT_BANS_KEY.to_string()];
        for (i, a) in keys.iter().enumerate() {
            for b in &keys[i + 1..] {
                assert!(!a.starts_with(b.as_str()) && !b.starts_with(a.as_str()), "{a} vs {b}");
            }
        }
    }
}
