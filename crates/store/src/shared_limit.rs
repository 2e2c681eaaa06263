//! What several server processes over one PostgreSQL database share for the request rate
//! limit (ADR 0024): a token bucket per key, refilled by the database's clock, and the
//! heartbeats that count the processes alive. One process serves a SQLite file and keeps its
//! buckets in memory: there these answer nothing.

use std::time::Duration;

use sqlx::Row;
use uuid::Uuid;

use crate::db::{Db, Pool};
use crate::error::StoreError;

/// A bucket untouched this long is full again for any rate worth setting: dropped.
const FORGET_AFTER_SECS: f64 = 3600.0;

impl Db {
    /// Reserves tokens of the bucket of `key` (a bucket of `capacity` tokens, refilled at
    /// `per_second` by the database's clock) for one of `processes` processes to admit on its
    /// own: a part of what the bucket holds (at least one token if it holds one), taken out
    /// of it at once, so that what all processes admit never exceeds the bucket. Answers the
    /// tokens reserved (0: none left) and those left in the bucket. Nothing on SQLite.
    pub async fn reserve_tokens(
        &self,
        key: &str,
        capacity: f64,
        per_second: f64,
        processes: u32,
    ) -> Result<(f64, f64), StoreError> {
        let Pool::Postgres(pool) = self.pool() else {
            return Ok((0.0, 0.0));
        };
        let refilled = "LEAST($2::float8, b.tokens + GREATEST(0, excluded.at - b.at) * $3::float8)";
        let grant = |x: &str| {
            format!("(CASE WHEN {x} >= 1 THEN GREATEST(1, FLOOR({x} / $4::float8)) ELSE 0 END)")
        };
        let full = grant("$2::float8");
        let then = grant(refilled);
        let sql = format!(
            "INSERT INTO rate_bucket AS b (key, tokens, at, granted) \
             VALUES ($1, $2::float8 - {full}, extract(epoch FROM clock_timestamp()), {full}) \
             ON CONFLICT (key) DO UPDATE SET \
               tokens = {refilled} - {then}, granted = {then}, at = GREATEST(b.at, excluded.at) \
             RETURNING granted, tokens"
        );
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(key)
            .bind(capacity)
            .bind(per_second)
            .bind(f64::from(processes.max(1)))
            .fetch_one(pool)
            .await?;
        Ok((row.try_get("granted")?, row.try_get("tokens")?))
    }

    /// Records that process `id` is alive, and answers how many processes were heard from
    /// within `within` (this one included). 1 on SQLite.
    pub async fn heartbeat(&self, id: Uuid, within: Duration) -> Result<u32, StoreError> {
        let Pool::Postgres(pool) = self.pool() else {
            return Ok(1);
        };
        sqlx::query(
            "INSERT INTO server_process (id, seen_at) VALUES ($1, now()) \
             ON CONFLICT (id) DO UPDATE SET seen_at = now()",
        )
        .bind(id)
        .execute(pool)
        .await?;
        let live: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM server_process \
             WHERE seen_at > now() - make_interval(secs => $1)",
        )
        .bind(within.as_secs_f64())
        .fetch_one(pool)
        .await?;
        Ok(u32::try_from(live.max(1)).unwrap_or(u32::MAX))
    }

    /// Forgets processes silent for a minute and buckets untouched for an hour (full again).
    pub async fn tidy_shared_limits(&self) -> Result<(), StoreError> {
        let Pool::Postgres(pool) = self.pool() else {
            return Ok(());
        };
        sqlx::query("DELETE FROM server_process WHERE seen_at < now() - interval '1 minute'")
            .execute(pool)
            .await?;
        sqlx::query(
            "DELETE FROM rate_bucket WHERE at < extract(epoch FROM clock_timestamp()) - $1",
        )
        .bind(FORGET_AFTER_SECS)
        .execute(pool)
        .await?;
        Ok(())
    }
}
