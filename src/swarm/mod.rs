//! One torrent's swarm, by concept:
//! - peers (`peers.rs`, re-exported here): who is in the swarm, what an
//!   announce changed, which peers to hand out;
//! - [`state`]: the state machine; one announce path for the HTTP and
//!   WebSocket peer tables, answering with a typed response or refusal;
//! - `upkeep.rs`: the alarm's side (expiry, publishing, credit batches,
//!   blocking, freeing), more of [`SwarmState`];
//! - [`ledger`]: private mode's sessions, credit and flags, and
//!   [`sessions`], the session records packed into chunk rows;
//! - [`storage`]: the SQLite schema, row codecs and [`storage::StoreWrite`];
//! - [`memory`]: those tables in memory, for tests, fuzz targets and benches;
//! - [`fixtures`]: announces and a configuration for tests and benches.

pub mod ledger;
pub mod memory;
mod peers;
pub mod sessions;
pub mod shard;
pub mod state;
pub mod storage;
mod upkeep;

pub use peers::*;
pub use state::SwarmState;
pub use upkeep::{Maintenance, EXPIRY_SWEEP_GAP};

pub mod fixtures;
