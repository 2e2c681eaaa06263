//! The store's shared rate-limit buckets and process heartbeats, for the HTTP layer's rate
//! limit (`web::ratelimit`, ADR 0024). Nothing here decides; the limiter does.

use std::time::Duration;

use uuid::Uuid;

use crate::{App, AppError};

impl App {
    /// Whether the request rate limit is shared with other processes (over PostgreSQL).
    pub fn shares_limits(&self) -> bool {
        self.backend() == ehrshare_store::Backend::Postgres
    }

    /// Reserves tokens of a shared bucket for this process: (reserved, left in the bucket).
    pub async fn reserve_tokens(
        &self,
        key: &str,
        capacity: f64,
        per_second: f64,
        processes: u32,
    ) -> Result<(f64, f64), AppError> {
        Ok(self
            .db()
            .reserve_tokens(key, capacity, per_second, processes)
            .await?)
    }

    /// Says this process is alive; how many are.
    pub async fn heartbeat(&self, id: Uuid, within: Duration) -> Result<u32, AppError> {
        Ok(self.db().heartbeat(id, within).await?)
    }

    /// Forgets silent processes and long-untouched buckets.
    pub async fn tidy_shared_limits(&self) -> Result<(), AppError> {
        Ok(self.db().tidy_shared_limits().await?)
    }
}
