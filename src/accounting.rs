//! Exact upload/download accounting from the counters clients announce.
//!
//! Clients report totals for their current session. The tracker credits the
//! difference from the last announce it accepted for the same peer. Rules:
//! - the first announce of a session counts its own values (from zero);
//! - a counter lower than last time means the client restarted counting:
//!   the new value is credited from zero;
//! - a retried announce carries the same values, so it credits nothing;
//! - after `stopped` the baseline is kept (until the peer's timeout), so a
//!   retried `stopped` credits nothing either;
//! - on a freeleech torrent downloads are not credited.

/// The last counters accepted from one peer, and whose they are.
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

/// Credits one announce and returns the new baseline.
pub fn credit(previous: Option<Session>, user: u64, uploaded: u64, downloaded: u64, freeleech: bool, now: u32) -> (Credit, Session) {
    let delta = |cur: u64, last: Option<u64>| match last {
        Some(last) if cur >= last => cur - last,
        _ => cur,
    };
    // A peer id that now belongs to another user starts a fresh session.
    let prev = previous.filter(|p| p.user == user);
    let up = delta(uploaded, prev.map(|p| p.uploaded));
    let down = delta(downloaded, prev.map(|p| p.downloaded));
    let credit = Credit { uploaded: up, downloaded: if freeleech { 0 } else { down } };
    (credit, Session { user, uploaded, downloaded, last_seen: now })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deltas_between_consecutive_announces() {
        let (c, s) = credit(None, 1, 100, 50, false, 0);
        assert_eq!(c, Credit { uploaded: 100, downloaded: 50 });
        let (c, s) = credit(Some(s), 1, 150, 80, false, 1);
        assert_eq!(c, Credit { uploaded: 50, downloaded: 30 });
        // The same announce again (a retry) credits nothing.
        let (c, s2) = credit(Some(s), 1, 150, 80, false, 2);
        assert!(c.is_zero());
        // A counter reset (client restarted) counts from zero.
        let (c, _) = credit(Some(s2), 1, 10, 90, false, 3);
        assert_eq!(c, Credit { uploaded: 10, downloaded: 10 });
    }

    #[test]
    fn freeleech_and_user_change() {
        let (c, s) = credit(None, 1, 10, 1000, true, 0);
        assert_eq!(c, Credit { uploaded: 10, downloaded: 0 });
        let (c, _) = credit(Some(s), 2, 20, 1000, false, 1);
        assert_eq!(c, Credit { uploaded: 20, downloaded: 1000 }, "another user's session starts from zero");
    }

    #[test]
    fn credits_add_up_to_the_final_counters() {
        let mut prev = None;
        let mut total = Credit::default();
        for (up, down) in [(0, 0), (10, 5), (10, 5), (25, 9), (40, 30), (40, 30)] {
            let (c, s) = credit(prev, 7, up, down, false, 0);
            total.uploaded += c.uploaded;
            total.downloaded += c.downloaded;
            prev = Some(s);
        }
        assert_eq!(total, Credit { uploaded: 40, downloaded: 30 });
    }
}
