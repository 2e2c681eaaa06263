//! Bounded retry of a unit of work that failed on contention (SQLITE_BUSY past the busy
//! timeout, a PostgreSQL serialization failure or deadlock: [`StoreError::is_contention`]).
//!
//! Only whole units of work are retried: pass a closure that runs the complete transaction (or
//! the one statement), so that a retry never repeats half of one. Where they are: the audit
//! writer's batch through the pool (`audit`, while none of its changes has run: a change is
//! run once; a batch in place hands contention to the pool path), and the statements outside
//! it that write: the outbox worker's, a session's touch and end, an OpenID Connect login's
//! state, `Db::set_meta_once`.

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
