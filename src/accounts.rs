//! Private-mode accounts: credentials, passkeys, API tokens and the ratio
//! rule. Pure functions; randomness comes in as bytes from the caller.

use pbkdf2::pbkdf2_hmac;
use sha2::{Digest, Sha256};

/// PBKDF2-HMAC-SHA256 rounds for new passwords (OWASP's 2023 floor is 600k
/// for SHA-256; Workers' CPU budget makes 100k the practical choice here,
/// and the count is stored with each hash so it can be raised later).
pub const PBKDF2_ROUNDS: u32 = 100_000;

pub fn validate_username(name: &str) -> Result<(), &'static str> {
    let ok_chars = name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if !(3..=32).contains(&name.len()) || !ok_chars {
        return Err("username must be 3-32 characters: letters, digits, '_', '-', '.'");
    }
    Ok(())
}

pub fn validate_password(password: &str) -> Result<(), &'static str> {
    if !(8..=256).contains(&password.len()) {
        return Err("password must be 8-256 characters");
    }
    Ok(())
}

/// `pbkdf2-sha256$<rounds>$<salt hex>$<hash hex>`.
pub fn hash_password(password: &str, salt: &[u8; 16], rounds: u32) -> String {
    let mut out = [0u8; 32];
    pbkdf2_hmac::<Sha256>(password.as_bytes(), salt, rounds, &mut out);
    format!("pbkdf2-sha256${rounds}${}${}", hex::encode(salt), hex::encode(out))
}

pub fn verify_password(stored: &str, password: &str) -> bool {
    let mut parts = stored.split('$');
    let (Some("pbkdf2-sha256"), Some(rounds), Some(salt), Some(hash), None) =
        (parts.next(), parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    let (Ok(rounds), Ok(salt), Ok(want)) = (rounds.parse::<u32>(), hex::decode(salt), hex::decode(hash)) else {
        return false;
    };
    if rounds == 0 || rounds > 10_000_000 || want.len() != 32 {
        return false;
    }
    let mut got = [0u8; 32];
    pbkdf2_hmac::<Sha256>(password.as_bytes(), &salt, rounds, &mut got);
    constant_time_eq(&got, &want)
}

/// A well-formed hash no password matches, with `rounds` rounds: verified
/// against for unknown users so they cost what known users cost.
pub fn dummy_hash(rounds: u32) -> String {
    format!("pbkdf2-sha256${rounds}${}${}", "00".repeat(16), "00".repeat(32))
}

/// Compares without an early exit, so timing says nothing about where two
/// secrets differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Whether a presented secret equals the expected one, in time that
/// depends on neither their contents nor their lengths: both are hashed
/// first, so only equal-length digests are compared.
pub fn secrets_match(given: &[u8], expected: &[u8]) -> bool {
    constant_time_eq(&Sha256::digest(given), &Sha256::digest(expected))
}

/// A passkey: 128 random bits as 32 lower-case hex characters.
pub fn passkey_from(random: &[u8; 16]) -> String {
    hex::encode(random)
}

pub fn is_passkey(s: &str) -> bool {
    s.len() == 32 && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// A bearer token: 256 random bits, hex. Only its SHA-256 is stored.
pub fn token_from(random: &[u8; 32]) -> String {
    hex::encode(random)
}

pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Whether a token created at `created_at` is past its `ttl` at `now`
/// (Unix seconds). A clock that went back keeps the token valid.
pub fn token_expired(created_at: u64, now: u64, ttl: u32) -> bool {
    now.saturating_sub(created_at) >= ttl as u64
}

/// Minimum ratio after a download allowance.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RatioRule {
    pub min_ratio: f64,
    pub allowance: u64,
}

impl RatioRule {
    /// Whether a user with these totals may start leeching a torrent.
    pub fn may_leech(&self, uploaded: u64, downloaded: u64) -> bool {
        downloaded <= self.allowance || uploaded as f64 >= self.min_ratio * downloaded as f64
    }
}

/// uploaded / downloaded, or None before anything was downloaded.
pub fn ratio(uploaded: u64, downloaded: u64) -> Option<f64> {
    (downloaded > 0).then(|| uploaded as f64 / downloaded as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_verify_and_resist_tampering() {
        let h = hash_password("correct horse", &[7; 16], 1000);
        assert!(h.starts_with("pbkdf2-sha256$1000$07070707"));
        assert!(verify_password(&h, "correct horse"));
        assert!(!verify_password(&h, "correct horsf"));
        assert!(!verify_password(&h.replace("$1000$", "$1001$"), "correct horse"));
        assert!(!verify_password("plain", "plain"));
        assert_ne!(h, hash_password("correct horse", &[8; 16], 1000), "salted");
    }

    #[test]
    fn the_dummy_hash_takes_the_configured_work() {
        let d = dummy_hash(1000);
        assert!(d.starts_with("pbkdf2-sha256$1000$"));
        assert_eq!(d.len(), hash_password("x", &[0; 16], 1000).len());
        assert!(!verify_password(&d, ""));
        assert!(!verify_password(&d, "anything"));
    }

    #[test]
    fn validation() {
        assert!(validate_username("alice_01").is_ok());
        assert!(validate_username("al").is_err());
        assert!(validate_username("a'; DROP TABLE users;--").is_err());
        assert!(validate_password("short").is_err());
        assert!(validate_password("long enough").is_ok());
    }

    #[test]
    fn passkeys_and_tokens() {
        let pk = passkey_from(&[0xab; 16]);
        assert_eq!(pk.len(), 32);
        assert!(is_passkey(&pk));
        assert!(!is_passkey("ABABABABABABABABABABABABABABABAB"));
        assert_eq!(token_hash("x").len(), 64);
        assert!(constant_time_eq(b"abc", b"abc") && !constant_time_eq(b"abc", b"abd") && !constant_time_eq(b"a", b"ab"));
        assert!(secrets_match(b"admin-token", b"admin-token"));
        assert!(!secrets_match(b"admin-toke", b"admin-token") && !secrets_match(b"", b"admin-token"));
    }

    #[test]
    fn tokens_expire_after_their_ttl() {
        assert!(!token_expired(1000, 1000, 60));
        assert!(!token_expired(1000, 1059, 60));
        assert!(token_expired(1000, 1060, 60));
        assert!(!token_expired(2000, 1000, 60));
    }

    #[test]
    fn ratio_rule() {
        let r = RatioRule { min_ratio: 0.5, allowance: 100 };
        assert!(r.may_leech(0, 100), "inside the allowance");
        assert!(!r.may_leech(49, 101));
        assert!(r.may_leech(51, 101));
        assert_eq!(ratio(1, 0), None);
        assert_eq!(ratio(1, 2), Some(0.5));
    }
}

/// The KV write-back rule for passkeys (`resolve_passkey` and
/// `refresh_users` in the Worker glue), checked over every interleaving of
/// a reset with concurrent cache write-backs.
#[cfg(test)]
mod write_back_model {
    /// Shared state: the user's passkey in D1, whether KV holds an entry for "old".
    #[derive(Clone, Copy)]
    struct World {
        d1_is_old: bool,
        kv_has_old: bool,
    }

    /// A write-back of "old": W1 reads D1, W2 puts KV, W3 re-reads D1, W4 deletes if revoked.
    #[derive(Clone, Copy, Default)]
    struct Reader {
        step: usize,
        found: bool,
        still_current: bool,
    }

    const RESET_STEPS: usize = 2;

    fn reader_step(r: &mut Reader, w: &mut World, recheck: bool) {
        match r.step {
            0 => r.found = w.d1_is_old,
            1 if r.found => w.kv_has_old = true,
            2 if r.found && recheck => r.still_current = w.d1_is_old,
            3 if r.found && recheck && !r.still_current => w.kv_has_old = false,
            _ => {}
        }
        r.step += 1;
    }

    /// Runs every interleaving of one reset (R1: D1 gets the new passkey, R2:
    /// KV deletes the old entry) with `readers`; returns how many left the
    /// old passkey in KV.
    fn stale_outcomes(readers: usize, recheck: bool) -> usize {
        fn go(world: World, reset: usize, rs: &mut Vec<Reader>, recheck: bool, stale: &mut usize) {
            let steps = if recheck { 4 } else { 2 };
            let mut moved = false;
            if reset < RESET_STEPS {
                let mut w = world;
                if reset == 0 { w.d1_is_old = false } else { w.kv_has_old = false }
                go(w, reset + 1, rs, recheck, stale);
                moved = true;
            }
            for i in 0..rs.len() {
                if rs[i].step < steps {
                    let (saved, mut w) = (rs[i], world);
                    reader_step(&mut rs[i], &mut w, recheck);
                    go(w, reset, rs, recheck, stale);
                    rs[i] = saved;
                    moved = true;
                }
            }
            if !moved && world.kv_has_old {
                *stale += 1;
            }
        }
        let mut stale = 0;
        go(World { d1_is_old: true, kv_has_old: false }, 0, &mut vec![Reader::default(); readers], recheck, &mut stale);
        stale
    }

    #[test]
    fn a_reset_passkey_never_survives_a_write_back() {
        for readers in 1..=2 {
            assert_eq!(stale_outcomes(readers, true), 0, "{readers} concurrent write-backs");
        }
        // Without the re-read (the old rule) some interleavings revive it.
        assert!(stale_outcomes(1, false) > 0);
    }
}
