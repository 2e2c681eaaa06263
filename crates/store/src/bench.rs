//! Measurement helpers for `ehrshare bench`: the machine's ceiling for comparison.
//!
//! Never used by the server. The raw rate is what the same backend sustains when one task
//! inserts the same audit rows, with the writer's own insert code, into a table of the same
//! columns and indexes, 1000 rows per transaction, with no Merkle tree and no callers waiting: the best an audit writer could
//! hope for on this machine.

use std::time::{Duration, Instant};

use ehrshare_core::audit::{AuditEntry, NewAuditEntry};

use crate::audit::{EntryTable, insert_entries_postgres, insert_entries_sqlite};
use crate::db::{Backend, Db, Pool};
use crate::error::StoreError;

const RAW_SQLITE: &str = "DROP TABLE IF EXISTS bench_raw;
CREATE TABLE bench_raw (
    seq INTEGER PRIMARY KEY NOT NULL, at TEXT NOT NULL, actor_kind TEXT NOT NULL,
    actor_account BLOB, actor_role TEXT, actor_hcp BLOB, actor_location BLOB, sdm BLOB,
    recipient BLOB, action TEXT NOT NULL, domains TEXT NOT NULL, record_ids TEXT NOT NULL,
    reason TEXT, outcome TEXT NOT NULL, denial_reason TEXT, consent_id BLOB, episode_id BLOB,
    client_addr TEXT, request_id BLOB, disclosed BLOB, leaf_tag INTEGER, domain_bits INTEGER,
    entry_codes INTEGER, actor_ref INTEGER, client_ip BLOB) STRICT;
CREATE INDEX bench_raw_recipient ON bench_raw (recipient, seq) WHERE recipient IS NOT NULL;
CREATE INDEX bench_raw_hcp ON bench_raw (actor_hcp, seq) WHERE actor_hcp IS NOT NULL;";

const RAW_POSTGRES: &str = "DROP TABLE IF EXISTS bench_raw;
CREATE TABLE bench_raw (
    seq BIGINT PRIMARY KEY NOT NULL, at TIMESTAMPTZ NOT NULL, actor_kind TEXT NOT NULL,
    actor_account UUID, actor_role TEXT, actor_hcp UUID, actor_location UUID, sdm UUID,
    recipient UUID, action TEXT NOT NULL, domains JSONB, record_ids JSONB,
    reason TEXT, outcome TEXT NOT NULL, denial_reason TEXT, consent_id UUID, episode_id UUID,
    client_addr TEXT, request_id UUID, disclosed BYTEA, leaf_tag INTEGER, domain_bits INTEGER,
    entry_codes INTEGER, actor_ref INTEGER, client_ip BYTEA);
CREATE INDEX bench_raw_recipient ON bench_raw (recipient, seq) WHERE recipient IS NOT NULL;
CREATE INDEX bench_raw_hcp ON bench_raw (actor_hcp, seq) WHERE actor_hcp IS NOT NULL;";

/// Rows per transaction of the raw baseline (inserted 512 rows per statement, as the writer does).
pub const RAW_BATCH: usize = 1000;

/// Inserts `entries` (cycled) in transactions of [`RAW_BATCH`] rows for `duration`; rows/s.
pub async fn raw_batched_insert_rate(
    db: &Db,
    entries: &[NewAuditEntry],
    duration: Duration,
) -> Result<f64, StoreError> {
    if entries.is_empty() {
        return Ok(0.0);
    }
    let ddl = match db.backend() {
        Backend::Sqlite => RAW_SQLITE,
        Backend::Postgres => RAW_POSTGRES,
    };
    crate::on_pool!(db, pool => {
        sqlx::raw_sql(ddl).execute(pool).await?;
    });
    let started = Instant::now();
    let mut seq: u64 = 0;
    while started.elapsed() < duration {
        let rows: Vec<AuditEntry> = (0..RAW_BATCH as u64)
            .map(|i| {
                entries[((seq + i) % entries.len() as u64) as usize]
                    .clone()
                    .at_seq(seq + i)
            })
            .collect();
        match db.pool() {
            Pool::Sqlite(pool) => {
                let mut tx = pool.begin().await?;
                insert_entries_sqlite(&mut tx, EntryTable::BenchRaw, &rows, &Default::default())
                    .await?;
                tx.commit().await?;
            }
            Pool::Postgres(pool) => {
                let mut tx = pool.begin().await?;
                insert_entries_postgres(&mut tx, EntryTable::BenchRaw, &rows, &Default::default())
                    .await?;
                tx.commit().await?;
            }
        }
        seq += RAW_BATCH as u64;
    }
    crate::on_pool!(db, pool => {
        sqlx::raw_sql("DROP TABLE bench_raw").execute(pool).await?;
    });
    Ok(seq as f64 / started.elapsed().as_secs_f64())
}
