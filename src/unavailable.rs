//! When the tracker cannot do its part (a swarm's Durable Object is
//! overloaded, reset, replaced by a deploy or over a limit; KV or D1 fails)
//! the client still gets a tracker answer: a bencoded `failure reason` with
//! BEP 31 `retry in`, HTTP 200, and the request is counted under its reason.
//! Never a 5xx: a client that gets one retries at once, or gives up on the
//! tracker, and both are worse for a swarm that is already struggling.

use crate::response;
use crate::stats::Failure;

/// Seconds an overloaded swarm's clients are asked to wait: long enough to
/// spread a hot swarm's retries over several minutes.
pub const OVERLOADED_RETRY_SECS: u32 = 300;
/// Seconds to wait after any other fault (a reset, a deploy, a limit): the
/// object comes back on its own, so the shortest `retry in` (one minute).
pub const UNAVAILABLE_RETRY_SECS: u32 = 60;

/// What a swarm stub's error means. `overloaded` is the runtime's own flag
/// on the error (`e.overloaded`), when the caller can see it; the message
/// is looked at too, since the flag does not survive every hop.
pub fn swarm_fault(error: &str, overloaded: bool) -> Failure {
    if overloaded || error.to_ascii_lowercase().contains("overloaded") {
        Failure::SwarmOverloaded
    } else {
        Failure::SwarmUnavailable
    }
}

/// How long the client is asked to wait after `failure`, in seconds.
pub fn retry_secs(failure: Failure) -> u32 {
    match failure {
        Failure::SwarmOverloaded => OVERLOADED_RETRY_SECS,
        _ => UNAVAILABLE_RETRY_SECS,
    }
}

/// `retry in` (whole minutes, at least one) for `failure`, as sent.
pub fn retry_minutes(failure: Failure) -> u32 {
    retry_secs(failure).div_ceil(60).max(1)
}

/// The reason text a client shows for `failure` (any other fault reads
/// as the tracker being unavailable).
pub fn reason(failure: Failure) -> &'static str {
    match failure {
        Failure::SwarmOverloaded | Failure::ScrapeUnavailable => failure.text(),
        _ => Failure::SwarmUnavailable.text(),
    }
}

/// The bencoded answer for a fault of the tracker's: reason and `retry in`.
pub fn answer(failure: Failure) -> Vec<u8> {
    response::failure_retry(reason(failure), retry_secs(failure))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overload_is_told_apart_from_other_faults() {
        assert_eq!(swarm_fault("Error: Durable Object is overloaded. Too many requests queued.", false), Failure::SwarmOverloaded);
        assert_eq!(swarm_fault("Error: something", true), Failure::SwarmOverloaded);
        for other in [
            "Error: Network connection lost.",
            "Error: Durable Object reset because its code was updated.",
            "Error: Durable Object's isolate exceeded its memory limit and was reset.",
            "swarm answered 500",
        ] {
            assert_eq!(swarm_fault(other, false), Failure::SwarmUnavailable, "{other}");
        }
    }

    #[test]
    fn answers_carry_retry_in_minutes() {
        assert_eq!(answer(Failure::SwarmUnavailable), b"d14:failure reason44:tracker temporarily unavailable, retry later8:retry ini1ee");
        assert_eq!(answer(Failure::SwarmOverloaded), b"d14:failure reason47:this torrent is too busy right now, retry later8:retry ini5ee");
        assert!(answer(Failure::ScrapeUnavailable).starts_with(b"d14:failure reason43:scrape temporarily"));
        assert_eq!(retry_minutes(Failure::SwarmOverloaded), 5);
        assert_eq!(retry_minutes(Failure::AccountLookupFailed), 1);
        for f in [Failure::SwarmOverloaded, Failure::SwarmUnavailable, Failure::ScrapeUnavailable, Failure::AccountLookupFailed] {
            assert!(f.is_server_side(), "{f:?}");
        }
    }
}
