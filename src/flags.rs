//! What the ledger tells admins: credit it refused, and swarms whose
//! credited upload runs far ahead of what their peers downloaded. Flags only
//! inform; they never block honest credit. They travel to D1 with the
//! swarm's credit batches, so they are exactly-once like the credit.

use serde::{Deserialize, Serialize};

use crate::accounting::{Counter, Refusal};

/// One flag, as the swarm sends it (D1 adds the torrent and the username).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Flag {
    pub user: u64,
    pub reason: String,
    /// Bytes the member reported (a refused delta; the swarm's upload).
    pub reported: u64,
    /// Bytes credited for it (0 for a refusal; the swarm's downloads).
    pub credited: u64,
    pub at: u32,
}

pub const UPLOAD_TOO_FAST: &str = "uploaded grew faster than MAX_CREDIT_RATE: not credited";
pub const DOWNLOAD_TOO_FAST: &str = "downloaded grew faster than MAX_CREDIT_RATE: not credited";
pub const SWARM_UNBALANCED: &str = "swarm's credited upload far above its downloads (top uploader named)";

/// Most flags a swarm holds between credit batches; a flood beyond this is
/// the same story told again.
pub const MAX_PENDING: usize = 256;

/// Upload beyond this much over twice the downloads flags a swarm: room for
/// reports that lag each other by an interval.
pub const BALANCE_SLACK: u64 = 1 << 30;

pub fn refusal(user: u64, r: &Refusal, at: u32) -> Flag {
    let reason = match r.counter {
        Counter::Uploaded => UPLOAD_TOO_FAST,
        Counter::Downloaded => DOWNLOAD_TOO_FAST,
    };
    Flag { user, reason: reason.to_string(), reported: r.reported, credited: 0, at }
}

/// A swarm's transfers since it was loaded: in a closed swarm (private
/// torrents use no DHT or PEX) what peers upload, peers download.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Balance {
    pub uploaded: u64,
    pub downloaded: u64,
    /// The upload at the last flag: the next one waits until it doubles.
    flagged_at: u64,
}

impl Balance {
    pub fn add(&mut self, uploaded: u64, downloaded: u64) {
        self.uploaded = self.uploaded.saturating_add(uploaded);
        self.downloaded = self.downloaded.saturating_add(downloaded);
    }

    /// A flag naming `top_uploader` when the upload ran far ahead.
    pub fn check(&mut self, top_uploader: Option<u64>, at: u32) -> Option<Flag> {
        let limit = self.downloaded.saturating_mul(2).saturating_add(BALANCE_SLACK);
        if self.uploaded <= limit || self.uploaded < self.flagged_at.saturating_mul(2) {
            return None;
        }
        self.flagged_at = self.uploaded;
        Some(Flag {
            user: top_uploader?,
            reason: SWARM_UNBALANCED.to_string(),
            reported: self.uploaded,
            credited: self.downloaded,
            at,
        })
    }
}

/// What a swarm sends D1 in one step: credit per user, and its flags.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreditBatch {
    /// `[user, uploaded, downloaded]`.
    pub credits: Vec<[u64; 3]>,
    #[serde(default)]
    pub flags: Vec<Flag>,
}

impl CreditBatch {
    /// Reads an outbox row: this shape, or the bare credit list that
    /// versions before flags stored.
    pub fn parse(text: &str) -> Option<Self> {
        if let Ok(b) = serde_json::from_str::<CreditBatch>(text) {
            return Some(b);
        }
        let credits = serde_json::from_str::<Vec<[u64; 3]>>(text).ok()?;
        Some(CreditBatch { credits, flags: Vec::new() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn balance_flags_once_per_doubling_and_names_the_top_uploader() {
        let mut b = Balance::default();
        b.add(BALANCE_SLACK, 0);
        assert_eq!(b.check(Some(7), 1), None, "within the slack");
        b.add(1, 0);
        let f = b.check(Some(7), 2).expect("over the slack");
        assert_eq!((f.user, f.reported, f.credited), (7, BALANCE_SLACK + 1, 0));
        assert_eq!(b.check(Some(7), 3), None, "not again until it doubles");
        b.add(BALANCE_SLACK * 3, BALANCE_SLACK);
        assert!(b.check(Some(8), 4).is_some());
        let mut honest = Balance::default();
        honest.add(10 << 30, 9 << 30);
        assert_eq!(honest.check(Some(1), 5), None);
    }

    #[test]
    fn outbox_rows_of_both_shapes_parse() {
        assert_eq!(CreditBatch::parse("[[1,2,3]]").unwrap().credits, vec![[1, 2, 3]]);
        let b = CreditBatch { credits: vec![[4, 5, 6]], flags: vec![Flag { user: 4, reason: "x".into(), reported: 9, credited: 0, at: 1 }] };
        assert_eq!(CreditBatch::parse(&serde_json::to_string(&b).unwrap()), Some(b));
        assert_eq!(CreditBatch::parse("{"), None);
    }
}
