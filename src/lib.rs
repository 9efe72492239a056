//! An edge BitTorrent tracker. The protocol and swarm core below compiles
//! natively and is tested with `cargo test`; `worker` binds it to the
//! Cloudflare Workers runtime when built for wasm32.

pub mod accounting;
pub mod admission;
pub mod accounts;
pub mod announce;
pub mod config;
pub mod credit_ledger;
pub mod failure;
pub mod flags;
pub mod kv_keys;
pub mod listing;
pub mod logging;
pub mod metainfo;
pub mod pace;
pub mod peer;
pub mod query;
pub mod response;
pub mod scrape;
pub mod session;
pub mod stats;
pub mod swarm;
pub mod swarm_totals;
pub mod unavailable;
pub mod webtorrent;
pub mod wire;

#[cfg(test)]
mod integrity_tests;

#[cfg(target_arch = "wasm32")]
mod worker;
