//! What the ledger tells admins: credit it refused, and swarms whose
//! credited upload runs far ahead of what their peers downloaded. Flags only
//! inform; they never block honest credit. They travel to D1 with the
//! swarm's credit batches, so they are exactly-once like the credit.

use serde_json::{json, Value};

use crate::accounting::{Counter, Refusal};

/// One flag, as the swarm sends it (D1 adds the torrent and the username).
#[derive(Debug, Clone, PartialEq, Eq)]
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
/// Stored in the outbox as JSON (through `Value`: a derived codec costs
/// the wasm several KiB).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CreditBatch {
    /// `[user, uploaded, downloaded]`.
    pub credits: Vec<[u64; 3]>,
    pub flags: Vec<Flag>,
}

impl CreditBatch {
    pub fn to_json(&self) -> String {
        let flags: Vec<Value> = self
            .flags
            .iter()
            .map(|f| json!([f.user, f.reason, f.reported, f.credited, f.at]))
            .collect();
        json!({ "credits": self.credits, "flags": flags }).to_string()
    }

    /// Reads an outbox row: this shape, or the bare credit list that
    /// versions before flags stored.
    pub fn parse(text: &str) -> Option<Self> {
        Self::from_value(&serde_json::from_str(text).ok()?)
    }

    /// The same, from parsed JSON (a batch inside a ledger delivery).
    pub fn from_value(v: &Value) -> Option<Self> {
        let (credits, flags) = match v {
            Value::Array(_) => (v, None),
            Value::Object(o) => (o.get("credits")?, o.get("flags")),
            _ => return None,
        };
        let n = |v: &Value| v.as_u64();
        let credits = credits
            .as_array()?
            .iter()
            .map(|c| Some([n(c.get(0)?)?, n(c.get(1)?)?, n(c.get(2)?)?]))
            .collect::<Option<Vec<_>>>()?;
        let flags = match flags.and_then(Value::as_array) {
            None => Vec::new(),
            Some(list) => list
                .iter()
                .map(|f| {
                    Some(Flag {
                        user: n(f.get(0)?)?,
                        reason: f.get(1)?.as_str()?.to_string(),
                        reported: n(f.get(2)?)?,
                        credited: n(f.get(3)?)?,
                        at: u32::try_from(n(f.get(4)?)?).ok()?,
                    })
                })
                .collect::<Option<Vec<_>>>()?,
        };
        Some(CreditBatch { credits, flags })
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
        assert_eq!(CreditBatch::parse(&b.to_json()), Some(b));
        assert_eq!(CreditBatch::parse("{"), None);
    }
}
