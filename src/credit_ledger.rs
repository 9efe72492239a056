//! Credit added up per member before D1. A swarm no longer writes its
//! credit batches to D1 itself: it delivers each to one of `LEDGER_SHARDS`
//! ledger shards (chosen by info hash), which holds what every swarm sent
//! and, once per `CREDIT_FLUSH`, writes one D1 row per member for all of
//! them. A member seeding 100 torrents costs a row per shard per window,
//! not a row per torrent.
//!
//! Exactly once, end to end:
//! - a swarm keeps each batch in its outbox until a shard acknowledges it,
//!   and sends its outbox oldest first, stopping at the first failure; the
//!   shard remembers the last batch id it applied from each swarm, so a
//!   batch sent again after a lost answer is acknowledged, not added again;
//! - the shard moves what it holds into an outbox batch of its own (one
//!   local step that also clears what it took) and sends it to D1 with an
//!   id D1 records in the same transaction, as the swarms did before.
//!
//! This module is the shard's state, without I/O; `worker/ledger_shard.rs`
//! applies its row writes and talks to D1 (the statements: `worker/d1/ledger.rs`).

use std::collections::HashMap;

use serde_json::{json, Value};

use crate::flags::{CreditBatch, Flag, MAX_PENDING};
use crate::peer::InfoHash;

/// The shard a torrent's swarm delivers to.
pub fn shard_of(hash: &InfoHash, shards: u8) -> u8 {
    hash.0[1] % shards.max(1)
}

/// A ledger shard's Durable Object name.
pub fn shard_name(shard: u8) -> String {
    format!("ledger-{shard}")
}

/// Longest batch id a shard accepts (swarms use 32 hex digits).
const MAX_ID: usize = 64;
/// Most credit entries in one delivery (a swarm's batch has one per member
/// who reported since the last; a swarm holds at most `MAX_PEERS` peers).
const MAX_CREDITS: usize = 200_000;

/// One swarm batch on its way to a shard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub id: String,
    pub hash: InfoHash,
    pub batch: CreditBatch,
}

impl Delivery {
    pub fn to_json(&self) -> String {
        // The batch keeps its own codec (the outbox row's text).
        format!(r#"{{"id":{},"hash":"{}","batch":{}}}"#, json!(self.id), self.hash.to_hex(), self.batch.to_json())
    }

    /// A delivery as a shard reads it: bounded, or `None`.
    pub fn parse(text: &str) -> Option<Self> {
        let v: Value = serde_json::from_str(text).ok()?;
        let id = v.get("id")?.as_str()?;
        if id.is_empty() || id.len() > MAX_ID {
            return None;
        }
        let hash = InfoHash::from_hex(v.get("hash")?.as_str()?)?;
        let batch = CreditBatch::from_value(v.get("batch")?)?;
        if batch.credits.len() > MAX_CREDITS || batch.flags.len() > MAX_PENDING {
            return None;
        }
        Some(Delivery { id: id.to_string(), hash, batch })
    }
}

/// What a shard holds for one swarm: the id of the last batch it applied
/// (to know a batch sent twice) and credit not yet taken to D1.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Inbox {
    pub last_id: String,
    pub pending: CreditBatch,
    /// When the last batch arrived (Unix seconds): idle rows are pruned.
    pub at: u32,
}

/// A shard's row for one swarm, as written (`pending` None once taken).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboxRow {
    pub hash: InfoHash,
    pub last_id: String,
    pub pending: Option<String>,
    pub at: u32,
}

impl InboxRow {
    /// The row's value: the time (4 bytes, big-endian), the id's length (1
    /// byte) and the id, then the pending batch's JSON (empty: none).
    pub fn rec(&self) -> Vec<u8> {
        let id = &self.last_id.as_bytes()[..self.last_id.len().min(MAX_ID)];
        let pending = self.pending.as_deref().unwrap_or("").as_bytes();
        let mut rec = Vec::with_capacity(5 + id.len() + pending.len());
        rec.extend_from_slice(&self.at.to_be_bytes());
        rec.push(id.len() as u8);
        rec.extend_from_slice(id);
        rec.extend_from_slice(pending);
        rec
    }

    pub fn from_parts(hash: &[u8], rec: &[u8]) -> Option<Self> {
        let hash = InfoHash(hash.try_into().ok()?);
        let at = u32::from_be_bytes(rec.get(..4)?.try_into().ok()?);
        let len = *rec.get(4)? as usize;
        let last_id = std::str::from_utf8(rec.get(5..5 + len)?).ok()?.to_string();
        let pending = std::str::from_utf8(&rec[5 + len..]).ok()?;
        let pending = (!pending.is_empty()).then(|| pending.to_string());
        Some(InboxRow { hash, last_id, pending, at })
    }
}

/// What a shard makes of a delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Receipt {
    /// The same batch again (its answer was lost): acknowledged, not added.
    Duplicate,
    /// Added: this row must be written before the acknowledgement.
    Stored(InboxRow),
}

/// A flag with the torrent it was raised in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SwarmFlag {
    pub hash: InfoHash,
    pub flag: Flag,
}

/// What a shard sends D1 in one step: credit per member over every swarm,
/// and the swarms' flags.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LedgerBatch {
    /// `[user, uploaded, downloaded]`, one per member, by user id.
    pub credits: Vec<[u64; 3]>,
    pub flags: Vec<SwarmFlag>,
}

impl LedgerBatch {
    pub fn to_json(&self) -> String {
        let flags: Vec<Value> = self
            .flags
            .iter()
            .map(|f| json!([f.hash.to_hex(), f.flag.user, f.flag.reason, f.flag.reported, f.flag.credited, f.flag.at]))
            .collect();
        json!({ "credits": self.credits, "flags": flags }).to_string()
    }

    pub fn parse(text: &str) -> Option<Self> {
        let v: Value = serde_json::from_str(text).ok()?;
        let n = |v: &Value| v.as_u64();
        let credits = v
            .get("credits")?
            .as_array()?
            .iter()
            .map(|c| Some([n(c.get(0)?)?, n(c.get(1)?)?, n(c.get(2)?)?]))
            .collect::<Option<Vec<_>>>()?;
        let flags = v
            .get("flags")?
            .as_array()?
            .iter()
            .map(|f| {
                let flag = Flag {
                    user: n(f.get(1)?)?,
                    reason: f.get(2)?.as_str()?.to_string(),
                    reported: n(f.get(3)?)?,
                    credited: n(f.get(4)?)?,
                    at: u32::try_from(n(f.get(5)?)?).ok()?,
                };
                Some(SwarmFlag { hash: InfoHash::from_hex(f.get(0)?.as_str()?)?, flag })
            })
            .collect::<Option<Vec<_>>>()?;
        Some(LedgerBatch { credits, flags })
    }

    /// The members it credits, by id.
    pub fn users(&self) -> Vec<u64> {
        self.credits.iter().map(|c| c[0]).collect()
    }
}

/// A shard's state: one inbox per swarm that delivered within the retention.
#[derive(Debug, Default)]
pub struct Ledger {
    swarms: HashMap<InfoHash, Inbox>,
}

impl Ledger {
    /// From the shard's rows (unreadable pending text is logged by the
    /// caller and counts as nothing pending).
    pub fn load(rows: impl IntoIterator<Item = InboxRow>) -> Self {
        let swarms = rows
            .into_iter()
            .map(|r| {
                let pending = r.pending.as_deref().and_then(CreditBatch::parse).unwrap_or_default();
                (r.hash, Inbox { last_id: r.last_id, pending, at: r.at })
            })
            .collect();
        Ledger { swarms }
    }

    /// Adds a delivery, unless it is the swarm's last batch again.
    pub fn receive(&mut self, d: Delivery, now: u32) -> Receipt {
        let inbox = self.swarms.entry(d.hash).or_default();
        if inbox.last_id == d.id {
            return Receipt::Duplicate;
        }
        merge(&mut inbox.pending, d.batch);
        inbox.last_id = d.id;
        inbox.at = now;
        Receipt::Stored(InboxRow {
            hash: d.hash,
            last_id: inbox.last_id.clone(),
            pending: Some(inbox.pending.to_json()),
            at: now,
        })
    }

    /// The id of the last batch applied from this swarm, if any is remembered.
    pub fn last_id(&self, hash: &InfoHash) -> Option<&str> {
        self.swarms.get(hash).map(|i| i.last_id.as_str())
    }

    pub fn has_pending(&self) -> bool {
        self.swarms.values().any(|i| !is_empty(&i.pending))
    }

    /// Takes everything pending as one batch, per member; the rows to
    /// write in the same step (their pending cleared). `None`: nothing.
    pub fn take(&mut self) -> Option<(LedgerBatch, Vec<InboxRow>)> {
        let mut all: Vec<[u64; 3]> = Vec::new();
        let mut flags = Vec::new();
        let mut rows = Vec::new();
        for (hash, inbox) in self.swarms.iter_mut().filter(|(_, i)| !is_empty(&i.pending)) {
            let pending = std::mem::take(&mut inbox.pending);
            all.extend(pending.credits);
            flags.extend(pending.flags.into_iter().map(|flag| SwarmFlag { hash: *hash, flag }));
            rows.push(InboxRow { hash: *hash, last_id: inbox.last_id.clone(), pending: None, at: inbox.at });
        }
        if rows.is_empty() {
            return None;
        }
        // Per member: sorted by user, runs added up.
        all.sort_unstable_by_key(|c| c[0]);
        let mut credits: Vec<[u64; 3]> = Vec::with_capacity(all.len());
        for c in all {
            match credits.last_mut() {
                Some(last) if last[0] == c[0] => {
                    last[1] = last[1].saturating_add(c[1]);
                    last[2] = last[2].saturating_add(c[2]);
                }
                _ => credits.push(c),
            }
        }
        credits.retain(|c| c[1] > 0 || c[2] > 0);
        Some((LedgerBatch { credits, flags }, rows))
    }

    /// Forgets swarms idle since before `cutoff` with nothing pending (their
    /// rows are deleted by the caller). A batch retried after that long
    /// would count again: `FLAG_RETENTION` bounds it, as it bounds the
    /// batch ids D1 keeps.
    pub fn prune(&mut self, cutoff: u32) -> Vec<InfoHash> {
        let gone: Vec<InfoHash> =
            self.swarms.iter().filter(|(_, i)| i.at < cutoff && is_empty(&i.pending)).map(|(h, _)| *h).collect();
        for h in &gone {
            self.swarms.remove(h);
        }
        gone
    }
}

fn is_empty(b: &CreditBatch) -> bool {
    b.credits.is_empty() && b.flags.is_empty()
}

/// Adds `more` into `into`: credit per user summed, flags appended (at most
/// `MAX_PENDING` kept: a flood beyond that is the same story told again).
fn merge(into: &mut CreditBatch, more: CreditBatch) {
    for c in more.credits {
        match into.credits.iter_mut().find(|e| e[0] == c[0]) {
            Some(e) => {
                e[1] = e[1].saturating_add(c[1]);
                e[2] = e[2].saturating_add(c[2]);
            }
            None => into.credits.push(c),
        }
    }
    let room = MAX_PENDING.saturating_sub(into.flags.len());
    into.flags.extend(more.flags.into_iter().take(room));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hash(b: u8) -> InfoHash {
        InfoHash([b; 20])
    }

    fn delivery(id: &str, h: u8, credits: Vec<[u64; 3]>) -> Delivery {
        Delivery { id: id.into(), hash: hash(h), batch: CreditBatch { credits, flags: Vec::new() } }
    }

    #[test]
    fn a_member_in_many_swarms_is_one_credit_per_flush() {
        let mut l = Ledger::default();
        for h in 0..100u8 {
            assert!(matches!(l.receive(delivery(&format!("b{h}"), h, vec![[7, 10, 1], [8, 0, 5]]), 1), Receipt::Stored(_)));
        }
        let (batch, rows) = l.take().unwrap();
        assert_eq!(batch.credits, vec![[7, 1000, 100], [8, 0, 500]]);
        assert_eq!(rows.len(), 100);
        assert!(rows.iter().all(|r| r.pending.is_none() && r.last_id.starts_with('b')));
        assert!(l.take().is_none(), "taken credit is not taken twice");
    }

    #[test]
    fn a_batch_sent_again_counts_once_even_after_it_was_taken() {
        let mut l = Ledger::default();
        assert!(matches!(l.receive(delivery("x", 1, vec![[7, 10, 0]]), 1), Receipt::Stored(_)));
        assert_eq!(l.receive(delivery("x", 1, vec![[7, 10, 0]]), 2), Receipt::Duplicate);
        l.take().unwrap();
        assert_eq!(l.receive(delivery("x", 1, vec![[7, 10, 0]]), 3), Receipt::Duplicate);
        assert!(l.take().is_none());
        // The same id from another swarm is another batch.
        assert!(matches!(l.receive(delivery("x", 2, vec![[7, 10, 0]]), 4), Receipt::Stored(_)));
    }

    #[test]
    fn rows_reload_what_was_pending_and_what_was_applied() {
        let mut l = Ledger::default();
        let Receipt::Stored(first) = l.receive(delivery("a", 1, vec![[7, 10, 0]]), 1) else { panic!() };
        let Receipt::Stored(row) = l.receive(delivery("b", 1, vec![[7, 5, 2]]), 2) else { panic!() };
        assert_ne!(first, row);
        assert_eq!(InboxRow::from_parts(&row.hash.0, &row.rec()), Some(row.clone()));
        let mut reloaded = Ledger::load([row]);
        assert_eq!(reloaded.receive(delivery("b", 1, vec![[7, 5, 2]]), 3), Receipt::Duplicate);
        assert_eq!(reloaded.take().unwrap().0.credits, vec![[7, 15, 2]]);
    }

    #[test]
    fn flags_keep_their_torrent_and_codecs_round_trip() {
        let mut l = Ledger::default();
        let f = Flag { user: 3, reason: "r".into(), reported: 9, credited: 0, at: 5 };
        let d = Delivery { id: "f".into(), hash: hash(4), batch: CreditBatch { credits: vec![], flags: vec![f.clone()] } };
        assert_eq!(Delivery::parse(&d.to_json()), Some(d.clone()));
        l.receive(d, 1);
        let (batch, _) = l.take().unwrap();
        assert_eq!(batch.flags, vec![SwarmFlag { hash: hash(4), flag: f }]);
        assert!(batch.credits.is_empty());
        assert_eq!(LedgerBatch::parse(&batch.to_json()), Some(batch));
    }

    #[test]
    fn deliveries_are_bounded() {
        let long = Delivery { id: "x".repeat(MAX_ID + 1), ..delivery("a", 1, vec![]) };
        assert_eq!(Delivery::parse(&long.to_json()), None);
        assert_eq!(Delivery::parse(r#"{"id":"a","hash":"zz","batch":{"credits":[]}}"#), None);
        assert_eq!(Delivery::parse("not json"), None);
    }

    #[test]
    fn idle_swarms_are_pruned_only_when_nothing_is_pending() {
        let mut l = Ledger::default();
        l.receive(delivery("a", 1, vec![[1, 1, 0]]), 10);
        l.receive(delivery("b", 2, vec![[1, 1, 0]]), 10);
        assert!(l.prune(100).is_empty(), "pending credit is never pruned");
        l.take();
        l.receive(delivery("c", 3, vec![[1, 1, 0]]), 200);
        assert_eq!(l.prune(100).len(), 2);
        assert!(l.has_pending());
    }
}
