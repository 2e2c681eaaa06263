//! ehrshare-store: persistence for ehrshare on SQLite (embedded default) and PostgreSQL.
//!
//! Invariants:
//! - The store never decides who may see what. It loads and saves facts; the access decision
//!   lives in `ehrshare-core` and is called by `ehrshare-app` only.
//! - One SQL text per query, written in the subset both backends understand (`$n` placeholders,
//!   `RETURNING`, `ON CONFLICT`). Where the backends differ, both arms are written out.
//! - Recipient-owned tables are keyed by recipient id so that they can be distributed by
//!   recipient on a PostgreSQL-compatible distributed engine.

pub mod account;
pub mod alert;
pub mod audit;
pub mod bench;
pub mod card_reader;
mod code;
pub mod consent;
mod db;
pub mod disclosure;
pub mod emergency;
pub mod episode;
mod error;
pub mod facts;
mod in_place;
pub mod inbox;
pub mod leader;
mod migrate;
pub mod oauth;
pub mod outbox;
mod packed;
pub mod person;
pub mod provider;
pub mod recipient;
pub mod record;
pub mod restriction;
mod retry;
pub mod shared_limit;
pub mod timestamp;

pub use audit::{AuditLog, AuditOptions};
pub use db::{
    Backend, Change, ChangeFuture, Conn, Db, DbOptions, Pool, change, move_meta, put_meta,
};
pub use error::{Stale, StoreError};
pub use migrate::{MigrationReport, migrations_for};
pub use retry::{RetryPolicy, with_retry};
pub use timestamp::Ts;
