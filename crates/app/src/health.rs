//! The health check: is this process able to serve, and on which backend.
//!
//! Two questions, two answers (issue 22): *liveness* (`/healthz`: does the database answer at
//! all; a supervisor that restarts on it would only loop on a full disk, so a writer that
//! cannot commit is reported, not failed) and *readiness* (`/readyz`: can this instance take
//! writes now; a load balancer sends it nothing until the audit writer commits again, which
//! it probes for on its own).

use ehrshare_store::Backend;
pub use ehrshare_store::audit::WriterFailure;

use crate::App;

/// The answer to a health check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Health {
    /// The database engine in use.
    pub backend: Backend,
    /// Whether the database answered within the health timeout.
    pub database_ok: bool,
    /// Why it did not: a [`ehrshare_store::StoreError::unavailable_cause`] word, `timeout`, or
    /// `error`.
    pub database_cause: Option<&'static str>,
    /// Why, and since when, the audit writer cannot commit (no writes, no reads can be served).
    pub audit: Option<WriterFailure>,
    /// Whether this process runs the duties that must run once among the processes sharing
    /// the database (ADR 0024).
    pub leads: bool,
}

impl Health {
    /// Whether this instance can serve requests now.
    pub fn ready(&self) -> bool {
        self.database_ok && self.audit.is_none()
    }
}

impl App {
    /// Asks the database a trivial question, bounded by `Settings::health_timeout` so that a
    /// database that hangs (rather than refuses) never makes the health check hang, and reads
    /// the audit writer's state.
    pub async fn health(&self) -> Health {
        let db = self.db();
        let ping = tokio::time::timeout(self.settings().health_timeout, db.ping()).await;
        let database_cause = match ping {
            Ok(Ok(())) => None,
            Ok(Err(err)) => {
                tracing::warn!(error = %err, "health check: database error");
                Some(err.unavailable_cause().unwrap_or("error"))
            }
            Err(_) => {
                tracing::warn!("health check: database did not answer in time");
                Some("timeout")
            }
        };
        Health {
            backend: db.backend(),
            database_ok: database_cause.is_none(),
            database_cause,
            audit: self.audit_log().stats().failure(),
            leads: self.leads(),
        }
    }
}
