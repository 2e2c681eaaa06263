//! Storage errors, typed by what callers do about them: an unavailable database (or contention
//! that outlasted the retry) is a 503 with Retry-After, a unique-key violation or a lost race
//! is a 409, anything else is an internal error. No caller recognises an error by its text.

/// What went wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database cannot be reached (connection refused, pool closed or timed out, I/O);
    /// carries sqlx's error.
    #[error("database unavailable: {0}")]
    Unavailable(#[source] sqlx::Error),
    /// A unique or primary-key constraint refused the write; carries the constraint's name
    /// (or `unique key` when the database gives none) and sqlx's error.
    #[error("conflict on {constraint}")]
    Conflict {
        constraint: String,
        #[source]
        source: sqlx::Error,
    },
    /// Contention: SQLITE_BUSY / SQLITE_LOCKED past the busy timeout, a serialization failure
    /// (40001) or a deadlock (40P01); carries sqlx's error. The unit of work may be run again:
    /// [`crate::with_retry`] does, a bounded number of times, and then passes this on.
    #[error("database busy: {0}")]
    Busy(#[source] sqlx::Error),
    /// A write lost a race with another (optimistic concurrency): what it was based on changed,
    /// or what it was to use once was used, before it could commit. Nothing of the unit of
    /// work was kept.
    #[error("{0} meanwhile")]
    Stale(Stale),
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
    /// An error on an in-place connection ([`crate::in_place`]); carries rusqlite's error.
    #[error("database error: {0}")]
    Read(#[source] rusqlite::Error),
}

impl From<rusqlite::Error> for StoreError {
    fn from(err: rusqlite::Error) -> Self {
        StoreError::Read(err)
    }
}

/// What a lost race ([`StoreError::Stale`]) was about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Stale {
    /// The account row changed since it was read (its version moved).
    #[error("the account changed")]
    Account,
    /// The record was changed by another request (a deposit of the same resource, an
    /// amendment, its withdrawal).
    #[error("the record changed")]
    Record,
    /// A one-time code (authorization code, login or unlock code) was used by another request.
    #[error("the code was used")]
    CodeUsed,
    /// A client assertion's `jti` was used before (a replay).
    #[error("the assertion was used")]
    AssertionUsed,
    /// Another request issued an access key within the minimum interval.
    #[error("an access key was just issued")]
    KeyJustIssued,
    /// A position kept in `ehrshare_meta` (the alert scanner's) was moved by another process.
    #[error("the position moved")]
    Position,
}

impl StoreError {
    /// Whether the unit of work failed on contention and may simply be run again
    /// ([`crate::with_retry`]).
    pub fn is_contention(&self) -> bool {
        match self {
            StoreError::Busy(_) => true,
            StoreError::Read(rusqlite::Error::SqliteFailure(e, _)) => {
                matches!(e.extended_code & 0xff, 5 | 6)
            }
            StoreError::Shared(inner) => inner.is_contention(),
            _ => false,
        }
    }

    /// Whether the database cannot serve this now (as opposed to refusing a statement): the
    /// caller answers 503 with Retry-After and may try again.
    pub fn is_unavailable(&self) -> bool {
        self.unavailable_cause().is_some()
    }

    /// Why the database cannot serve this now, as a stable word for logs and `/healthz`:
    /// `disk-full`, `read-only`, `io-error`, `cannot-open`, `connection-lost`, `pool-timeout`,
    /// `busy` (a lock outlasted its timeout), `closed`, `resources`. `None`: not a matter of
    /// availability (a constraint, a bug, corrupt data).
    pub fn unavailable_cause(&self) -> Option<&'static str> {
        match self {
            StoreError::Unavailable(e) | StoreError::Other(e) => sqlx_cause(e),
            StoreError::Busy(_) => Some("busy"),
            StoreError::AuditClosed => Some("closed"),
            StoreError::Read(rusqlite::Error::SqliteFailure(e, _)) => sqlite_cause(e.extended_code),
            StoreError::Shared(inner) => inner.unavailable_cause(),
            _ => None,
        }
    }
}

/// The availability cause of a sqlx error, if it is one.
fn sqlx_cause(err: &sqlx::Error) -> Option<&'static str> {
    match err {
        sqlx::Error::Io(_) | sqlx::Error::Tls(_) | sqlx::Error::WorkerCrashed => {
            Some("connection-lost")
        }
        sqlx::Error::PoolTimedOut => Some("pool-timeout"),
        sqlx::Error::PoolClosed => Some("closed"),
        sqlx::Error::Database(db) => {
            let code = db.code()?;
            if db.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some() {
                sqlite_cause(code.parse().ok()?)
            } else {
                postgres_cause(&code)
            }
        }
        _ => None,
    }
}

/// SQLite result codes (the primary code is the low byte of an extended one).
fn sqlite_cause(code: i32) -> Option<&'static str> {
    Some(match code & 0xff {
        13 => "disk-full",     // SQLITE_FULL
        8 => "read-only",      // SQLITE_READONLY (a read-only file system, a read-only file)
        10 | 15 => "io-error", // SQLITE_IOERR, SQLITE_PROTOCOL
        14 => "cannot-open",   // SQLITE_CANTOPEN
        5 | 6 => "busy",       // SQLITE_BUSY, SQLITE_LOCKED
        _ => return None,
    })
}

/// PostgreSQL SQLSTATEs that mean "not now" rather than "never".
fn postgres_cause(state: &str) -> Option<&'static str> {
    Some(match state {
        // Class 08: connection exception; admin or crash shutdown, cannot connect now; the
        // database gone.
        s if s.starts_with("08") => "connection-lost",
        "57P01" | "57P02" | "57P03" | "3D000" => "connection-lost",
        "53100" => "disk-full",
        // Insufficient resources: out of memory, too many connections.
        s if s.starts_with("53") => "resources",
        "25006" => "read-only",
        s if s.starts_with("58") => "io-error",
        // Lock not available, statement or lock timeout, and the contention retry gave up on.
        "55P03" | "57014" | "40001" | "40P01" => "busy",
        _ => return None,
    })
}

/// Whether sqlx's error is contention ([`StoreError::Busy`]): SQLite busy or locked,
/// PostgreSQL's serialization failure or deadlock. A lock or statement timeout (55P03, 57014)
/// is not: it is unavailability that retrying at once does not cure.
fn is_contention(err: &sqlx::Error) -> bool {
    let sqlx::Error::Database(db) = err else {
        return false;
    };
    let Some(code) = db.code() else { return false };
    if db.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some() {
        // SQLite reports its (extended) result code as a decimal string; the primary code is
        // the low byte: 5 = SQLITE_BUSY, 6 = SQLITE_LOCKED.
        code.parse::<i64>()
            .map(|n| matches!(n & 0xff, 5 | 6))
            .unwrap_or(false)
    } else {
        matches!(code.as_ref(), "40001" | "40P01")
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(err: sqlx::Error) -> Self {
        if let sqlx::Error::Database(db) = &err
            && db.is_unique_violation()
        {
            let constraint = db.constraint().unwrap_or("unique key").to_owned();
            return StoreError::Conflict {
                constraint,
                source: err,
            };
        }
        if is_contention(&err) {
            return StoreError::Busy(err);
        }
        match sqlx_cause(&err) {
            Some(_) => StoreError::Unavailable(err),
            None => StoreError::Other(err),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_failures_are_classified_by_their_primary_code() {
        let failure = |code: i32| {
            StoreError::Read(rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error::new(code),
                None,
            ))
        };
        assert_eq!(failure(13).unavailable_cause(), Some("disk-full"));
        assert_eq!(failure(778).unavailable_cause(), Some("io-error")); // SQLITE_IOERR_WRITE
        assert_eq!(failure(8).unavailable_cause(), Some("read-only"));
        assert_eq!(failure(1032).unavailable_cause(), Some("read-only")); // READONLY_DBMOVED
        assert_eq!(failure(5).unavailable_cause(), Some("busy"));
        assert_eq!(failure(19).unavailable_cause(), None); // a constraint
        assert_eq!(failure(1).unavailable_cause(), None);
        let shared = StoreError::Shared(std::sync::Arc::new(failure(13)));
        assert!(shared.is_unavailable());
        assert!(StoreError::from(sqlx::Error::PoolTimedOut).is_unavailable());
        assert!(StoreError::from(sqlx::Error::PoolClosed).is_unavailable());
        assert!(!StoreError::Corrupt("x".into()).is_unavailable());
    }

    #[test]
    fn postgres_states_are_classified() {
        for (state, cause) in [
            ("08006", Some("connection-lost")),
            ("57P01", Some("connection-lost")),
            ("53100", Some("disk-full")),
            ("53300", Some("resources")),
            ("25006", Some("read-only")),
            ("58030", Some("io-error")),
            ("55P03", Some("busy")),
            ("57014", Some("busy")),
            ("23505", None),
            ("42601", None),
        ] {
            assert_eq!(postgres_cause(state), cause, "{state}");
        }
    }
}
