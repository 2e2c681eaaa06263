//! Which of the server processes sharing one database leads (ADR 0024): the duties that must
//! run once, the alert scanner and the signing of audit checkpoints, run only in the process
//! that holds PostgreSQL's session-level advisory lock [`PG_LEADER_LOCK`] on a connection of
//! its own. The database holds the lock for the session and releases it when the session ends
//! (the process exited or was killed, its link went down), so another process takes over at
//! its next try; a leader that cannot reach the database stops leading at once, and the
//! database ends a session it has not heard from for [`LEASE`], so that the two never overlap
//! by more than one check. On SQLite one process serves a file, and it always leads.

use std::time::Duration;

use sqlx::{Connection, PgConnection};

use crate::db::{Db, Pool};
use crate::error::StoreError;

/// A PostgreSQL advisory lock id, fixed forever, distinct from the writers' and the
/// migrations'.
const PG_LEADER_LOCK: i64 = 0x6568_726c_6561_6472; // "ehrleadr"

/// How long the database keeps a silent leader's session (`idle_session_timeout`): the
/// longest a dead leader whose socket stays open (a lost link) holds on. A leader checks
/// much more often than this.
pub const LEASE: Duration = Duration::from_secs(10);

/// The longest one check may take before the leader counts itself out.
const CHECK_TIMEOUT: Duration = Duration::from_secs(3);

/// A process's standing in the election: its own connection, kept between tries, and whether
/// it holds the lock on it.
#[derive(Debug, Default)]
pub struct Candidate {
    conn: Option<PgConnection>,
    leads: bool,
}

impl Candidate {
    /// Whether it led at its last check.
    pub fn leads(&self) -> bool {
        self.leads
    }

    /// Gives the lead up (at shutdown): the lock is released with the session.
    pub async fn resign(&mut self) {
        self.leads = false;
        if let Some(conn) = self.conn.take() {
            let _ = conn.close().await;
        }
    }
}

impl Db {
    /// One round of the election: a leader checks that its session (and so its lock) still
    /// stands; anyone else tries to take the lock. Answers whether `candidate` leads now. Any
    /// failure counts as not leading, and the connection is dropped (releasing the lock if
    /// the database still held it).
    pub async fn elect(&self, candidate: &mut Candidate) -> Result<bool, StoreError> {
        let Pool::Postgres(pool) = self.pool() else {
            candidate.leads = true;
            return Ok(true);
        };
        let round = async {
            if candidate.conn.is_none() {
                let mut conn = PgConnection::connect_with(&pool.connect_options()).await?;
                // The lease: a session silent this long is ended by the database, and the
                // server probes a silent peer's socket. A server before 14 lacks the first:
                // there a leader whose link is lost holds on until the keepalives give up.
                let lease = format!("SET idle_session_timeout = '{}s'", LEASE.as_secs());
                if let Err(e) = sqlx::raw_sql(sqlx::AssertSqlSafe(lease))
                    .execute(&mut conn)
                    .await
                {
                    tracing::warn!(error = %e, "leader election: no idle_session_timeout (PostgreSQL 14 or later); a lost leader is noticed only by TCP keepalives");
                }
                let _ = sqlx::raw_sql(
                    "SET tcp_keepalives_idle = 5; SET tcp_keepalives_interval = 2; \
                     SET tcp_keepalives_count = 3",
                )
                .execute(&mut conn)
                .await;
                candidate.conn = Some(conn);
                candidate.leads = false;
            }
            let Some(conn) = candidate.conn.as_mut() else {
                return Ok::<bool, StoreError>(false);
            };
            if candidate.leads {
                // A session-level lock is held until the session ends: the session answering
                // is the lock held.
                conn.ping().await?;
                Ok(true)
            } else {
                Ok(sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
                    .bind(PG_LEADER_LOCK)
                    .fetch_one(&mut *conn)
                    .await?)
            }
        };
        let outcome = match tokio::time::timeout(CHECK_TIMEOUT, round).await {
            Ok(outcome) => outcome,
            Err(_) => Err(StoreError::Unavailable(sqlx::Error::PoolTimedOut)),
        };
        match outcome {
            Ok(leads) => {
                candidate.leads = leads;
                Ok(leads)
            }
            Err(e) => {
                candidate.leads = false;
                // Dropped, not closed: closing waits on a link that may be gone.
                candidate.conn = None;
                Err(e)
            }
        }
    }
}
