//! The health check: is this process able to serve, and on which backend.

use ehrshare_store::Backend;

use crate::App;

/// The answer to a health check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Health {
    /// The database engine in use.
    pub backend: Backend,
    /// Whether the database answered within the health timeout.
    pub database_ok: bool,
}

impl App {
    /// Asks the database a trivial question, bounded by `Settings::health_timeout` so that a
    /// database that hangs (rather than refuses) never makes the health check hang.
    pub async fn health(&self) -> Health {
        let db = self.db();
        let ping = tokio::time::timeout(self.settings().health_timeout, db.ping()).await;
        let database_ok = match ping {
            Ok(Ok(())) => true,
            Ok(Err(err)) => {
                tracing::warn!(error = %err, "health check: database error");
                false
            }
            Err(_) => {
                tracing::warn!("health check: database did not answer in time");
                false
            }
        };
        Health {
            backend: db.backend(),
            database_ok,
        }
    }
}
