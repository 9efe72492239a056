//! Exact upload/download accounting from the counters clients announce,
//! with the plausibility rules that keep a member from inventing credit.
//!
//! Clients report totals for their current session. The tracker credits the
//! difference from the last announce it accepted for the same session (one
//! user's one client: [`crate::peer::PeerKey::session`]). Rules (Ocelot's,
//! plus a rate bound):
//! - a session's first announce only sets the baseline: it credits nothing
//!   (a real client starts a session at zero; a first report of 8 PiB is
//!   not a transfer anyone saw);
//! - a counter lower than last time means the client restarted counting:
//!   the announce sets a new baseline and credits nothing;
//! - a counter that grew faster than `max_rate` bytes per second since the
//!   previous accepted announce credits nothing for that counter, and the
//!   refusal is reported so admins see it (the baseline still moves, so
//!   the same bytes are never credited later either);
//! - a retried announce carries the same values, so it credits nothing;
//! - after `stopped` the baseline is kept (until the peer's timeout), so a
//!   retried `stopped` credits nothing either;
//! - on a freeleech torrent downloads are not credited.

/// The last counters accepted from one session, and whose they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Session {
    pub user: u64,
    pub uploaded: u64,
    pub downloaded: u64,
    pub last_seen: u32,
}

/// What one announce adds to a user's totals.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Credit {
    pub uploaded: u64,
    pub downloaded: u64,
}

impl Credit {
    pub fn is_zero(&self) -> bool {
        self.uploaded == 0 && self.downloaded == 0
    }
}

/// Which counter a refusal is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counter {
    Uploaded,
    Downloaded,
}

/// A delta the rate bound refused: what was reported, and the most the
/// elapsed time allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refusal {
    pub counter: Counter,
    pub reported: u64,
    pub allowed: u64,
}

/// The outcome of one announce's counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Accepted {
    /// What the user's totals gain.
    pub credit: Credit,
    /// Deltas taken as real transfers, before freeleech (the swarm's
    /// balance compares uploads with these downloads).
    pub transfer: Credit,
    /// The new baseline.
    pub session: Session,
    /// Deltas over the rate bound (at most one per counter).
    pub refused: [Option<Refusal>; 2],
    /// The announce only set a baseline (a first report, or counters that
    /// went down): storage must have it before the answer, or a crash
    /// would make the next report a first one again and lose its bytes.
    pub fresh: bool,
}

/// The rule's parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rules {
    /// Most bytes per second one session may be credited, per counter.
    pub max_rate: u64,
    pub freeleech: bool,
}

/// Credits one announce of `user` reporting `(uploaded, downloaded)` at `now`.
pub fn credit(previous: Option<Session>, user: u64, uploaded: u64, downloaded: u64, now: u32, rules: Rules) -> Accepted {
    let session = Session { user, uploaded, downloaded, last_seen: now };
    let baseline_only = Accepted { credit: Credit::default(), transfer: Credit::default(), session, refused: [None, None], fresh: true };
    let Some(prev) = previous.filter(|p| p.user == user) else { return baseline_only };
    if uploaded < prev.uploaded || downloaded < prev.downloaded {
        return baseline_only;
    }
    // At least one second: two announces in the same second may still carry bytes.
    let elapsed = u64::from(now.saturating_sub(prev.last_seen).max(1));
    let allowed = rules.max_rate.saturating_mul(elapsed);
    let check = |counter, delta: u64| {
        if delta > allowed {
            (0, Some(Refusal { counter, reported: delta, allowed }))
        } else {
            (delta, None)
        }
    };
    let (up, up_refused) = check(Counter::Uploaded, uploaded - prev.uploaded);
    let (down, down_refused) = check(Counter::Downloaded, downloaded - prev.downloaded);
    Accepted {
        credit: Credit { uploaded: up, downloaded: if rules.freeleech { 0 } else { down } },
        transfer: Credit { uploaded: up, downloaded: down },
        session,
        refused: [up_refused, down_refused],
        fresh: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RULES: Rules = Rules { max_rate: 1_000, freeleech: false };

    fn run(prev: Option<Session>, up: u64, down: u64, now: u32) -> Accepted {
        credit(prev, 1, up, down, now, RULES)
    }

    #[test]
    fn the_first_report_only_sets_the_baseline() {
        let a = run(None, 100, 50, 0);
        assert!(a.credit.is_zero() && a.refused == [None, None]);
        let b = run(Some(a.session), 150, 80, 10);
        assert_eq!(b.credit, Credit { uploaded: 50, downloaded: 30 });
        // The same announce again (a retry) credits nothing.
        let c = run(Some(b.session), 150, 80, 11);
        assert!(c.credit.is_zero());
        // A counter that went down (a restarted client) is a new baseline.
        let d = run(Some(c.session), 10, 90, 12);
        assert!(d.credit.is_zero());
        assert_eq!(run(Some(d.session), 20, 95, 13).credit, Credit { uploaded: 10, downloaded: 5 });
    }

    #[test]
    fn deltas_faster_than_the_rate_are_refused_per_counter() {
        let a = run(None, 0, 0, 100);
        // 10 s allow 10,000 bytes: the upload is refused, the download kept.
        let b = run(Some(a.session), 10_001, 10_000, 110);
        assert_eq!(b.credit, Credit { uploaded: 0, downloaded: 10_000 });
        assert_eq!(b.refused[0], Some(Refusal { counter: Counter::Uploaded, reported: 10_001, allowed: 10_000 }));
        assert_eq!(b.refused[1], None);
        // The baseline moved: the refused bytes never come back as credit.
        let c = run(Some(b.session), 10_001, 10_000, 200);
        assert!(c.credit.is_zero());
        // The same second counts as one.
        let d = run(Some(c.session), 11_001, 10_000, 200);
        assert_eq!(d.credit.uploaded, 1_000);
    }

    #[test]
    fn freeleech_and_user_change() {
        let rules = Rules { freeleech: true, ..RULES };
        let a = credit(None, 1, 0, 0, 0, rules);
        let b = credit(Some(a.session), 1, 10, 1000, 5, rules);
        assert_eq!(b.credit, Credit { uploaded: 10, downloaded: 0 });
        assert_eq!(b.transfer, Credit { uploaded: 10, downloaded: 1000 });
        let c = credit(Some(b.session), 2, 20, 2000, 6, RULES);
        assert!(c.credit.is_zero(), "another user's report only starts a session");
    }

    #[test]
    fn credits_add_up_to_the_final_counters_less_the_first_report() {
        let mut prev = None;
        let mut total = Credit::default();
        for (t, (up, down)) in [(3, 1), (10, 5), (10, 5), (25, 9), (40, 30), (40, 30)].into_iter().enumerate() {
            let a = credit(prev, 7, up, down, t as u32 * 10, RULES);
            total.uploaded += a.credit.uploaded;
            total.downloaded += a.credit.downloaded;
            prev = Some(a.session);
        }
        assert_eq!(total, Credit { uploaded: 37, downloaded: 29 });
    }
}
