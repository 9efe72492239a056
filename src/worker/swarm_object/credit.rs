//! The credit flush: a private swarm's upload/download credit, delivered
//! to its ledger shard exactly once through an outbox table.

use serde_json::json;
use worker::*;

use super::super::{log, private};
use super::sql::OutboxRow;
use super::{now_secs, RowCost, SwarmObject};
use crate::swarm::ledger::CreditBatch;

impl SwarmObject {
    /// Delivers pending credits to the swarm's ledger shard exactly once
    /// (`credit_ledger.rs`). Unflushed credit first moves into an outbox
    /// batch with a random id, in the same local step that records it as
    /// taken (the chunks with the new marks). Batches go oldest first and
    /// the first failure stops the round, so the shard, which remembers
    /// the last id it applied from this swarm, knows a batch sent again
    /// after a lost answer. The outbox row goes once the shard has it.
    pub(super) async fn flush_credits(&self, cost: &mut RowCost) -> Result<()> {
        let sql = self.state.storage().sql();
        {
            let mut inner = self.inner.borrow_mut();
            self.ensure_schema(&mut inner)?;
            if let Some((batch, marks)) = inner.swarm.take_credit_batch(now_secs()) {
                let id = hex::encode(private::random::<16>()?);
                let c = sql.exec(
                    "INSERT INTO outbox (id, batch) VALUES (?, ?)",
                    vec![id.into(), batch.to_json().into()],
                )?;
                cost.written += c.rows_written();
                // No await in between: one atomic step with the outbox row.
                let c = self.apply(&mut inner, marks)?;
                cost.read += c.read;
                cost.written += c.written;
            }
        }
        let outbox = sql.exec("SELECT id, batch FROM outbox ORDER BY rowid", None)?;
        let batches: Vec<OutboxRow> = outbox.to_array()?;
        cost.read += outbox.rows_read();
        let hash = self.inner.borrow().swarm.info_hash.ok_or_else(|| Error::RustError("credit in a swarm with no info hash".into()))?;
        for b in batches {
            let batch = CreditBatch::parse(&b.batch).unwrap_or_else(|| {
                // Not ours to guess at: logged, and cleared like a sent one.
                log::error("outbox_row_unreadable", json!({ "batch": b.id }));
                CreditBatch::default()
            });
            let delivery = crate::credit_ledger::Delivery { id: b.id, hash, batch };
            let shard = super::super::ledger_shard::deliver(&self.env, &self.config, &delivery).await?;
            cost.add_ledger(&shard);
            let c = sql.exec("DELETE FROM outbox WHERE id = ?", vec![delivery.id.into()])?;
            cost.written += c.rows_written();
        }
        self.inner.borrow_mut().swarm.outbox_pending = false;
        Ok(())
    }
}
