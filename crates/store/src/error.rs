//! Storage errors, classified so that callers can answer correctly: an unavailable database is
//! a 503 with Retry-After, a unique-key violation is a 409, anything else is an internal error.

/// What went wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database cannot be reached (connection refused, pool closed or timed out, I/O).
    #[error("database unavailable: {0}")]
    Unavailable(#[source] sqlx::Error),
    /// A unique or primary-key constraint refused the write.
    #[error("conflict on {constraint}")]
    Conflict {
        constraint: String,
        #[source]
        source: sqlx::Error,
    },
    /// Contention (SQLITE_BUSY, serialization failure, deadlock) outlasted the bounded retry.
    #[error("database busy after {attempts} attempts: {source}")]
    Busy {
        attempts: u32,
        #[source]
        source: sqlx::Error,
    },
    /// The database URL is malformed or names an unsupported backend.
    #[error("invalid database URL: {0}")]
    InvalidUrl(String),
    /// The schema in the database does not match the migrations this build carries.
    #[error("migration {version} ({name}): {problem}")]
    Migration {
        version: i64,
        name: String,
        problem: String,
    },
    /// The audit writer has stopped (the server is shutting down).
    #[error("the audit log is closed")]
    AuditClosed,
    /// Stored data contradicts itself (a missing tree node, an unknown code).
    #[error("stored data is inconsistent: {0}")]
    Corrupt(String),
    /// A read's consent was revoked before its audit entry could commit (the entry is not kept).
    #[error("the consent was revoked meanwhile")]
    ConsentRevoked,
    /// One failure shared by every caller of a batch that could not commit.
    #[error("{0}")]
    Shared(std::sync::Arc<StoreError>),
    /// Any other database error.
    #[error("database error: {0}")]
    Other(#[source] sqlx::Error),
    /// An error of a read on the calling thread (`reader`).
    #[error("database error: {0}")]
    Read(#[source] rusqlite::Error),
}

impl From<rusqlite::Error> for StoreError {
    fn from(err: rusqlite::Error) -> Self {
        StoreError::Read(err)
    }
}

impl StoreError {
    /// Whether the database could not be reached at all (as opposed to refusing a statement).
    pub fn is_unavailable(&self) -> bool {
        match self {
            StoreError::Unavailable(_) | StoreError::AuditClosed => true,
            StoreError::Read(rusqlite::Error::SqliteFailure(e, _)) => matches!(
                e.code,
                rusqlite::ErrorCode::CannotOpen
                    | rusqlite::ErrorCode::SystemIoFailure
                    | rusqlite::ErrorCode::DatabaseBusy
                    | rusqlite::ErrorCode::DatabaseLocked
            ),
            StoreError::Shared(inner) => inner.is_unavailable(),
            _ => false,
        }
    }
}

/// Whether an error means "try again": SQLite busy/locked, PostgreSQL serialization failure or
/// deadlock.
pub(crate) fn is_transient(err: &sqlx::Error) -> bool {
    let sqlx::Error::Database(db) = err else {
        return false;
    };
    let Some(code) = db.code() else { return false };
    match code.as_ref() {
        // PostgreSQL SQLSTATEs: serialization_failure, deadlock_detected.
        "40001" | "40P01" => true,
        // SQLite reports its (extended) result code as a decimal string; the primary code is the
        // low byte: 5 = SQLITE_BUSY, 6 = SQLITE_LOCKED.
        other => other
            .parse::<i64>()
            .map(|n| matches!(n & 0xff, 5 | 6))
            .unwrap_or(false),
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(err: sqlx::Error) -> Self {
        match &err {
            sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed => StoreError::Unavailable(err),
            sqlx::Error::Database(db) => {
                if db.is_unique_violation() {
                    let constraint = db.constraint().unwrap_or("unique key").to_owned();
                    return StoreError::Conflict {
                        constraint,
                        source: err,
                    };
                }
                // PostgreSQL: class 08 (connection exception), 57P01..57P03 (admin shutdown,
                // crash shutdown, cannot connect now), 3D000 (database does not exist).
                let unavailable = db.code().is_some_and(|c| {
                    c.starts_with("08")
                        || matches!(c.as_ref(), "57P01" | "57P02" | "57P03" | "3D000")
                });
                if unavailable {
                    StoreError::Unavailable(err)
                } else {
                    StoreError::Other(err)
                }
            }
            _ => StoreError::Other(err),
        }
    }
}
