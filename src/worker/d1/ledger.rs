//! The ledger's D1 tables: `credit_batches` (the ids of applied credit
//! batches, which make a retried flush count once) and `flags` (refused or
//! implausible credit, for admins). Both are indexed by time (migration 0002).

use std::future::Future;

use serde_json::json;
use worker::*;

use super::{all, Json};
use super::super::log;
use crate::credit_ledger::LedgerBatch;

/// Most statements in one D1 batch (credit beyond it goes in further
/// batches, each with an id of its own).
const D1_STATEMENTS: usize = 400;

/// D1 rows a credit batch read and wrote (for the cost bench).
#[derive(Debug, Default, Clone, Copy)]
pub struct RowsTouched {
    pub read: usize,
    pub written: usize,
}

/// Applies one ledger shard outbox batch, in parts of at most
/// `D1_STATEMENTS` statements, each recording its id (`<id>-<part>`) in
/// `credit_batches` in the same transaction: a part D1 already has is
/// refused, not counted twice. The rows of the parts applied are added to
/// `touched` as they go (a later part's failure keeps them).
pub async fn apply(db: &D1Database, id: &str, batch: &LedgerBatch, now: f64, touched: &mut RowsTouched) -> Result<()> {
    let mut statements = Vec::new();
    for [user, up, down] in &batch.credits {
        statements.push(super::users::credit_statement(db, *user, *up, *down)?);
    }
    for f in &batch.flags {
        statements.push(
            db.prepare("INSERT INTO flags (user_id, info_hash, reason, reported, credited, at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)")
                .bind(&[
                    (f.flag.user as f64).into(),
                    f.hash.to_hex().into(),
                    f.flag.reason.as_str().into(),
                    (f.flag.reported as f64).into(),
                    (f.flag.credited as f64).into(),
                    (f.flag.at as f64).into(),
                ])?,
        );
    }
    let mut statements = statements.into_iter().peekable();
    let mut part = 0;
    while statements.peek().is_some() || part == 0 {
        let part_id = format!("{id}-{part}");
        let mut chunk = vec![db.prepare("INSERT INTO credit_batches (id, applied_at) VALUES (?1, ?2)").bind(&[part_id.as_str().into(), now.into()])?];
        chunk.extend(statements.by_ref().take(D1_STATEMENTS));
        match db.batch(chunk).await {
            Ok(results) => {
                for r in results {
                    if let Ok(Some(meta)) = r.meta() {
                        touched.read += meta.rows_read.unwrap_or(0);
                        touched.written += meta.rows_written.unwrap_or(0);
                    }
                }
            }
            Err(e) if e.to_string().contains("UNIQUE constraint failed") => {
                log::info("credit_batch_already_applied", json!({ "batch": part_id }));
            }
            Err(e) => return Err(e),
        }
        part += 1;
    }
    Ok(())
}

/// Deletes flags and applied batch ids from before `cutoff` (seconds).
pub async fn prune(db: &D1Database, cutoff: f64) -> Result<()> {
    db.batch(vec![
        db.prepare("DELETE FROM flags WHERE at < ?1").bind(&[cutoff.into()])?,
        db.prepare("DELETE FROM credit_batches WHERE applied_at < ?1").bind(&[cutoff.into()])?,
    ])
    .await?;
    Ok(())
}

/// The newest `limit` flags, newest first, as the admin API shows them.
pub fn recent_flags(db: &D1Database, limit: u32) -> impl Future<Output = Result<Vec<Json>>> {
    // Rows as JSON objects: the columns are the API's field names.
    all(db
        .prepare(
            "SELECT u.username, f.info_hash, f.reason, f.reported, f.credited, f.at FROM flags f \
             LEFT JOIN users u ON u.id = f.user_id ORDER BY f.at DESC, f.id DESC LIMIT ?1",
        )
        .bind(&[limit.into()]))
}
