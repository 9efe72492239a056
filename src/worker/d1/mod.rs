//! D1, the private mode's database (`migrations/`): every statement the
//! Worker sends it, as small typed functions, one file per table group.
//! Callers hold no SQL text. (Durable Objects' own SQLite is not here: see
//! `swarm_object/sql.rs`, `ledger_shard.rs` and `totals_shard.rs`.)
//!
//! - `users`: accounts, passkeys and credit totals;
//! - `tokens`: sign-in sessions (`sessions.rs` decides, this stores);
//! - `invites`: invite codes (`INVITE_ONLY`);
//! - `torrents`: the registry and the catalogue's pages;
//! - `ledger`: applied credit batches and flags.

pub mod invites;
pub mod ledger;
pub mod tokens;
pub mod torrents;
pub mod users;

use serde::de::DeserializeOwned;
use serde::Deserialize;
use worker::*;

pub const D1_BINDING: &str = "DB";

/// The database (binding `DB`).
pub fn open(env: &Env) -> Result<D1Database> {
    env.d1(D1_BINDING)
}

// The functions of this module bind their statement at once and return
// one of these futures: one state machine per kind of call in the wasm,
// not one per statement.

/// Runs a write.
async fn run(stmt: Result<D1PreparedStatement>) -> Result<()> {
    stmt?.run().await?;
    Ok(())
}

/// The first row, if any.
async fn first<T: DeserializeOwned>(stmt: Result<D1PreparedStatement>) -> Result<Option<T>> {
    stmt?.first(None).await
}

/// Every row.
async fn all<T: DeserializeOwned>(stmt: Result<D1PreparedStatement>) -> Result<Vec<T>> {
    stmt?.all().await?.results()
}

/// Rows as JSON objects keyed by column name (integers stay integers), for
/// rows the API shows as they are. One deserializer for every such query
/// keeps the wasm small: each `#[derive(Deserialize)]` row struct costs kilobytes.
type Json = serde_json::Value;

/// `?1,?2,…,?n` for an `IN (…)` list of `n` values.
fn placeholders(n: usize) -> String {
    (1..=n).map(|i| format!("?{i}")).collect::<Vec<_>>().join(",")
}

/// (members, registered torrents), for /stats.
pub async fn totals(db: &D1Database) -> Result<(u64, u64)> {
    #[derive(Deserialize)]
    struct TotalsRow {
        users: f64,
        torrents: f64,
    }
    let row: Option<TotalsRow> =
        first(Ok(db.prepare("SELECT (SELECT COUNT(*) FROM users) AS users, (SELECT COUNT(*) FROM torrents) AS torrents"))).await?;
    let row = row.unwrap_or(TotalsRow { users: 0.0, torrents: 0.0 });
    Ok((row.users as u64, row.torrents as u64))
}
