//! The `users` table: accounts, their passkeys, roles and credit totals.

use std::future::Future;

use serde::Deserialize;
use worker::wasm_bindgen::JsValue;
use worker::*;

use super::{all, first, placeholders, run, Json};

/// A user as the API shows them (also the admin user list's rows).
#[derive(Deserialize)]
pub struct UserRow {
    pub id: f64,
    pub username: String,
    pub passkey: String,
    pub uploaded: f64,
    pub downloaded: f64,
    pub banned: f64,
    /// A member with the admin role may use the admin API (migration 0004).
    #[serde(default)]
    pub is_admin: f64,
}

/// What the announce path needs of a user (`private.rs`).
#[derive(Deserialize)]
pub struct UserTotals {
    pub id: f64,
    pub passkey: String,
    pub uploaded: f64,
    pub downloaded: f64,
    pub banned: f64,
}

/// What a sign-in checks.
#[derive(Deserialize)]
pub struct Credentials {
    pub id: f64,
    pub password_hash: String,
    pub banned: f64,
}

/// The owner of `passkey`, if any.
pub fn by_passkey(db: &D1Database, passkey: &str) -> impl Future<Output = Result<Option<UserTotals>>> {
    first(db.prepare("SELECT id, passkey, uploaded, downloaded, banned FROM users WHERE passkey = ?1").bind(&[passkey.into()]))
}

/// These users' totals (at most 100 ids: one bind each).
pub fn totals_of(db: &D1Database, ids: &[u64]) -> impl Future<Output = Result<Vec<UserTotals>>> {
    let binds: Vec<JsValue> = ids.iter().map(|&id| JsValue::from(id as f64)).collect();
    all(db.prepare(format!("SELECT id, passkey, uploaded, downloaded, banned FROM users WHERE id IN ({})", placeholders(ids.len()))).bind(&binds))
}

/// These users' current passkeys: rows `{"id", "passkey"}` (none for a user who is gone).
pub fn passkeys_of(db: &D1Database, ids: &[f64]) -> impl Future<Output = Result<Vec<Json>>> {
    let binds: Vec<JsValue> = ids.iter().map(|&id| JsValue::from(id)).collect();
    all(db.prepare(format!("SELECT id, passkey FROM users WHERE id IN ({})", placeholders(ids.len()))).bind(&binds))
}

/// The id, password hash and ban of `username`, if there is such a user.
pub fn credentials(db: &D1Database, username: &str) -> impl Future<Output = Result<Option<Credentials>>> {
    first(db.prepare("SELECT id, password_hash, banned FROM users WHERE username = ?1").bind(&[username.into()]))
}

/// The stored password hash of user `id`.
pub async fn password_hash(db: &D1Database, id: f64) -> Result<Option<String>> {
    let row: Option<Json> = first(db.prepare("SELECT password_hash FROM users WHERE id = ?1").bind(&[id.into()])).await?;
    Ok(row.as_ref().and_then(|r| r["password_hash"].as_str()).map(str::to_string))
}

/// Sets a new password hash and revokes every token of the user, in one batch.
pub async fn set_password(db: &D1Database, id: f64, hash: String) -> Result<()> {
    db.batch(vec![
        db.prepare("UPDATE users SET password_hash = ?1 WHERE id = ?2").bind(&[hash.into(), id.into()])?,
        super::tokens::revoke_all_statement(db, id)?,
    ])
    .await?;
    Ok(())
}

/// A new account. A taken username fails with D1's `UNIQUE constraint failed`.
pub fn insert(db: &D1Database, username: &str, password_hash: String, passkey: &str, now: f64) -> impl Future<Output = Result<()>> {
    run(db
        .prepare("INSERT INTO users (username, password_hash, passkey, created_at) VALUES (?1, ?2, ?3, ?4)")
        .bind(&[username.into(), password_hash.into(), passkey.into(), now.into()]))
}

pub fn set_passkey(db: &D1Database, id: f64, passkey: &str) -> impl Future<Output = Result<()>> {
    run(db.prepare("UPDATE users SET passkey = ?1 WHERE id = ?2").bind(&[passkey.into(), id.into()]))
}

/// The admin user list (the first 1000 by id).
pub fn list(db: &D1Database) -> impl Future<Output = Result<Vec<UserRow>>> {
    all(Ok(db.prepare("SELECT id, username, passkey, uploaded, downloaded, banned, is_admin FROM users ORDER BY id LIMIT 1000")))
}

/// User `id` (without the admin role: `is_admin` reads 0).
pub fn by_id(db: &D1Database, id: f64) -> impl Future<Output = Result<Option<UserRow>>> {
    first(db.prepare("SELECT id, username, passkey, uploaded, downloaded, banned FROM users WHERE id = ?1").bind(&[id.into()]))
}

/// The id of `username`, if there is such a user.
pub async fn id_by_name(db: &D1Database, username: &str) -> Result<Option<f64>> {
    #[derive(Deserialize)]
    struct Row {
        id: f64,
    }
    let row: Option<Row> = first(db.prepare("SELECT id FROM users WHERE username = ?1").bind(&[username.into()])).await?;
    Ok(row.map(|r| r.id))
}

pub fn set_admin(db: &D1Database, id: f64, admin: bool) -> impl Future<Output = Result<()>> {
    run(db.prepare("UPDATE users SET is_admin = ?1 WHERE id = ?2").bind(&[(admin as i32).into(), id.into()]))
}

pub fn set_banned(db: &D1Database, id: f64, banned: bool) -> impl Future<Output = Result<()>> {
    run(db.prepare("UPDATE users SET banned = ?1 WHERE id = ?2").bind(&[(banned as i32).into(), id.into()]))
}

/// An admin's adjustment of a user's totals (neither goes below 0).
pub fn adjust(db: &D1Database, id: f64, uploaded: i64, downloaded: i64) -> impl Future<Output = Result<()>> {
    run(db
        .prepare("UPDATE users SET uploaded = MAX(0, uploaded + ?1), downloaded = MAX(0, downloaded + ?2) WHERE id = ?3")
        .bind(&[(uploaded as f64).into(), (downloaded as f64).into(), id.into()]))
}

/// The statement adding a ledger shard's credit to a user (`ledger::apply`).
pub(super) fn credit_statement(db: &D1Database, user: u64, up: u64, down: u64) -> Result<D1PreparedStatement> {
    db.prepare("UPDATE users SET uploaded = uploaded + ?1, downloaded = downloaded + ?2 WHERE id = ?3")
        .bind(&[(up as f64).into(), (down as f64).into(), (user as f64).into()])
}
