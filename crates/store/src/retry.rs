//! Bounded retry of a unit of work that failed on contention (SQLITE_BUSY past the busy
//! timeout, a PostgreSQL serialization failure or deadlock: [`StoreError::is_contention`]).
//!
//! Only whole units of work are retried: pass a closure that runs the complete transaction (or
//! the one statement), so that a retry never repeats half of one. Where they are: the audit
//! writer's batch (`audit`, up to the first change it runs: a change is run once) and the
//! statements outside it that write (`outbox`, `account`'s session and failure rows).

use std::future::Future;
use std::time::Duration;

use crate::error::StoreError;

/// How often and how patiently to retry.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Total attempts, including the first.
    pub attempts: u32,
    /// Delay before the second attempt; doubled for each further one.
    pub first_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 6,
            first_delay: Duration::from_millis(5),
        }
    }
}

/// Runs `op` until it succeeds, fails otherwise than on contention, or the attempts run out
/// (then its last error, a contention: 503 with Retry-After for the caller).
pub async fn with_retry<T, F, Fut>(policy: RetryPolicy, mut op: F) -> Result<T, StoreError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, StoreError>>,
{
    let attempts = policy.attempts.max(1);
    let mut delay = policy.first_delay;
    let mut attempt = 1;
    loop {
        match op().await {
            Err(err) if err.is_contention() && attempt < attempts => {
                tracing::debug!(attempt, error = %err, "contention; running the unit of work again");
                tokio::time::sleep(delay).await;
                delay = delay.saturating_mul(2);
                attempt += 1;
            }
            result => return result,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use sqlx::Connection;

    use super::*;
    use crate::{Db, DbOptions};

    /// Two handles on one SQLite file that give up on a lock at once, and a connection that holds
    /// the write lock until told to let go.
    async fn contended() -> (tempfile::TempDir, Db, sqlx::SqliteConnection) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        let options = DbOptions {
            sqlite_busy_timeout: Duration::ZERO,
            ..DbOptions::default()
        };
        let db = Db::connect(&url, options).await.unwrap();
        crate::on_pool!(&db, p => {
            sqlx::query("CREATE TABLE t (x INTEGER)").execute(p).await.unwrap();
        });
        let mut holder = sqlx::SqliteConnection::connect(&url).await.unwrap();
        sqlx::raw_sql("BEGIN IMMEDIATE")
            .execute(&mut holder)
            .await
            .unwrap();
        (dir, db, holder)
    }

    #[tokio::test]
    async fn retries_sqlite_busy_until_the_lock_is_released() {
        let (_dir, db, holder) = contended().await;
        let holder = tokio::sync::Mutex::new(Some(holder));
        let attempts = AtomicU32::new(0);
        let crate::Pool::Sqlite(pool) = db.pool() else {
            unreachable!()
        };
        with_retry(RetryPolicy::default(), || async {
            let n = attempts.fetch_add(1, Ordering::SeqCst) + 1;
            let result = sqlx::query("INSERT INTO t (x) VALUES (1)")
                .execute(pool)
                .await
                .map_err(StoreError::from);
            if n == 2 {
                // Let go of the lock after the second failure: the third attempt succeeds.
                if let Some(mut h) = holder.lock().await.take() {
                    sqlx::raw_sql("COMMIT").execute(&mut h).await.unwrap();
                }
            }
            result
        })
        .await
        .unwrap();
        assert_eq!(attempts.load(Ordering::SeqCst), 3);
        let count: i64 = sqlx::query_scalar("SELECT count(*) FROM t")
            .fetch_one(pool)
            .await
            .unwrap();
        assert_eq!(count, 1);
    }

    #[tokio::test]
    async fn gives_up_after_the_bounded_attempts() {
        let (_dir, db, _holder) = contended().await;
        let crate::Pool::Sqlite(pool) = db.pool() else {
            unreachable!()
        };
        let attempts = AtomicU32::new(0);
        let policy = RetryPolicy {
            attempts: 3,
            first_delay: Duration::from_millis(1),
        };
        let err = with_retry(policy, || async {
            attempts.fetch_add(1, Ordering::SeqCst);
            sqlx::query("INSERT INTO t (x) VALUES (1)")
                .execute(pool)
                .await
                .map_err(StoreError::from)
        })
        .await
        .unwrap_err();
        assert!(matches!(err, StoreError::Busy(_)), "{err:?}");
        assert_eq!(attempts.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn does_not_retry_other_errors() {
        let (_dir, db, _holder) = contended().await;
        let crate::Pool::Sqlite(pool) = db.pool() else {
            unreachable!()
        };
        let attempts = AtomicU32::new(0);
        let err = with_retry(RetryPolicy::default(), || async {
            attempts.fetch_add(1, Ordering::SeqCst);
            sqlx::query("SELECT * FROM no_such_table")
                .execute(pool)
                .await
                .map_err(StoreError::from)
        })
        .await
        .unwrap_err();
        assert!(matches!(err, StoreError::Other(_)), "{err:?}");
        assert_eq!(attempts.load(Ordering::SeqCst), 1);
    }
}
