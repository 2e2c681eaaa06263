//! The database handle ([`Db`]: one concrete pool per backend, chosen by the URL, and on a
//! SQLite file the in-place connections of [`crate::in_place`]), and a connection inside a
//! unit of work ([`Conn`], [`Change`]).
//!
//! Two concrete pools in an enum rather than sqlx's `Any` driver: `Any` cannot decode booleans
//! on SQLite nor TIMESTAMPTZ / UUID / JSONB on PostgreSQL. Query code is written once and
//! expanded for both pools by [`on_pool!`](crate::on_pool), for both connections by
//! [`on_conn!`](crate::on_conn).

use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{PgConnection, SqliteConnection};

use crate::error::StoreError;
use crate::in_place::{InPlace, WAL_AUTOCHECKPOINT_FRAMES};
use crate::retry::{RetryPolicy, with_retry};

/// Runs the same code against whichever pool a [`Db`] holds. The body is compiled once per
/// backend, so it may use backend-specific row and argument types through inference.
#[macro_export]
macro_rules! on_pool {
    ($db:expr, $pool:ident => $body:expr) => {
        match ($db).pool() {
            $crate::Pool::Sqlite($pool) => $body,
            $crate::Pool::Postgres($pool) => $body,
        }
    };
}

/// Which database engine is behind a [`Db`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// The backend's name as reported by `/healthz` and `print-config`.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }

    /// The backend a database URL selects, if any.
    pub fn from_url(url: &str) -> Option<Backend> {
        if url.starts_with("sqlite:") {
            Some(Backend::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Some(Backend::Postgres)
        } else {
            None
        }
    }
}

/// Pool settings.
#[derive(Debug, Clone, Copy)]
pub struct DbOptions {
    /// Most connections the pool opens.
    pub max_connections: u32,
    /// How long a caller waits for a connection before the database counts as unavailable.
    pub acquire_timeout: Duration,
    /// How long SQLite waits on a lock before reporting SQLITE_BUSY.
    pub sqlite_busy_timeout: Duration,
}

impl Default for DbOptions {
    fn default() -> Self {
        DbOptions {
            max_connections: 8,
            acquire_timeout: Duration::from_secs(5),
            sqlite_busy_timeout: Duration::from_secs(5),
        }
    }
}

/// A connection pool to the configured database.
#[derive(Debug, Clone)]
pub struct Db {
    pool: Pool,
    /// On a SQLite file, the connections the hot reads and the audit writer's common batch
    /// run on in place (ADR 0004, 0005); none on PostgreSQL or an in-memory database.
    in_place: Option<InPlace>,
}

/// The pool of a [`Db`], by backend.
#[derive(Debug, Clone)]
pub enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Keeps a connection handed back to a pool only if it is outside every transaction. A COMMIT
/// that failed (SQLite rolls back by itself on a full disk or an I/O error) leaves sqlx's count
/// of open transactions above zero for good, and every later `BEGIN` on that connection would
/// fail until a restart (issue 22): such a connection is closed, and the pool opens a fresh
/// one. The ping first waits for the ROLLBACK a dropped transaction queued.
fn keep_if_outside_transaction<C: sqlx::Connection>(
    conn: &mut C,
    _meta: sqlx::pool::PoolConnectionMetadata,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<bool, sqlx::Error>> + Send + '_>> {
    Box::pin(async move {
        if !conn.is_in_transaction() {
            return Ok(true);
        }
        conn.ping().await?;
        let keep = !conn.is_in_transaction();
        if !keep {
            tracing::warn!("closing a database connection left inside a transaction");
        }
        Ok(keep)
    })
}

impl Db {
    /// The file a SQLite URL names (none in memory, on PostgreSQL, or for a URL that does
    /// not parse).
    pub fn sqlite_file(url: &str) -> Option<std::path::PathBuf> {
        if Backend::from_url(url) != Some(Backend::Sqlite)
            || url.contains(":memory:")
            || url.contains("mode=memory")
        {
            return None;
        }
        SqliteConnectOptions::from_str(url)
            .ok()
            .map(|o| o.get_filename().to_owned())
    }

    /// Connects to `url` (`sqlite:PATH` or `postgres://...`). For SQLite the file and its folder
    /// are created if absent, and the pragmas ehrshare relies on are set on every connection:
    /// WAL, `synchronous=FULL` (a committed audit entry survives power loss), foreign keys on,
    /// and reads through a memory map of up to 256 MiB (`mmap_size`): every commit of the
    /// audit writer empties the other connections' page caches, and a mapped page is read
    /// again without a copy (ADR 0004). Writes still go through the file. The known
    /// cost: an I/O error on a mapped page is a signal, not an error code; the database is a
    /// local file that only ehrshare truncates. The hot reads' connections ([`crate::in_place`])
    /// use a page cache instead of the map: there the map's refresh after each commit cost
    /// more than reading the pages again. The WAL is folded into the file after every
    /// [`WAL_AUTOCHECKPOINT_FRAMES`] pages, not SQLite's 1,000.
    pub async fn connect(url: &str, options: DbOptions) -> Result<Db, StoreError> {
        match Backend::from_url(url) {
            Some(Backend::Sqlite) => {
                let connect = SqliteConnectOptions::from_str(url)
                    .map_err(|e| StoreError::InvalidUrl(e.to_string()))?
                    .create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Full)
                    .foreign_keys(true)
                    .busy_timeout(options.sqlite_busy_timeout)
                    .pragma("mmap_size", "268435456")
                    .pragma("wal_autocheckpoint", WAL_AUTOCHECKPOINT_FRAMES.to_string());
                if let Some(dir) = connect.get_filename().parent()
                    && !dir.as_os_str().is_empty()
                {
                    create_dir(dir)?;
                }
                let path = connect.get_filename().to_owned();
                let in_memory = url.contains(":memory:") || url.contains("mode=memory");
                // A local file does not drop connections the way a network does: no ping
                // before each use (it costs a round trip to the connection's worker thread).
                let pool = SqlitePoolOptions::new()
                    .test_before_acquire(false)
                    .after_release(keep_if_outside_transaction::<sqlx::SqliteConnection>)
                    .max_connections(options.max_connections)
                    .acquire_timeout(options.acquire_timeout)
                    .connect_with(connect)
                    .await?;
                let in_place =
                    (!in_memory).then(|| InPlace::new(&path, options.sqlite_busy_timeout));
                Ok(Db {
                    pool: Pool::Sqlite(pool),
                    in_place,
                })
            }
            Some(Backend::Postgres) => {
                let connect = PgConnectOptions::from_str(url)
                    .map_err(|e| StoreError::InvalidUrl(e.to_string()))?
                    .application_name("ehrshare");
                let pool = PgPoolOptions::new()
                    .after_release(keep_if_outside_transaction::<sqlx::PgConnection>)
                    .max_connections(options.max_connections)
                    .acquire_timeout(options.acquire_timeout)
                    .connect_with(connect)
                    .await?;
                Ok(Db {
                    pool: Pool::Postgres(pool),
                    in_place: None,
                })
            }
            None => Err(StoreError::InvalidUrl(
                "expected a URL starting with sqlite: or postgres://".to_owned(),
            )),
        }
    }

    /// The engine behind this handle.
    pub fn backend(&self) -> Backend {
        match self.pool {
            Pool::Sqlite(_) => Backend::Sqlite,
            Pool::Postgres(_) => Backend::Postgres,
        }
    }

    /// The pool, for code that runs its own statements (migrations, benchmarks, tests).
    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// The in-place connections, where there are any (a SQLite file).
    pub(crate) fn in_place(&self) -> Option<&InPlace> {
        self.in_place.as_ref()
    }

    /// Checks that the database answers a trivial query.
    pub async fn ping(&self) -> Result<(), StoreError> {
        on_pool!(self, pool => {
            sqlx::query("SELECT 1").execute(pool).await?;
        });
        Ok(())
    }

    /// The random id the first migration gave this database.
    pub async fn instance_id(&self) -> Result<String, StoreError> {
        let id: String = on_pool!(self, pool => {
            sqlx::query_scalar("SELECT value FROM ehrshare_meta WHERE key = 'instance_id'")
                .fetch_one(pool)
                .await?
        });
        Ok(id)
    }

    /// A value of `ehrshare_meta`.
    pub async fn meta(&self, key: &str) -> Result<Option<String>, StoreError> {
        on_pool!(self, pool => {
            Ok(sqlx::query_scalar("SELECT value FROM ehrshare_meta WHERE key = $1")
                .bind(key)
                .fetch_optional(pool)
                .await?)
        })
    }

    /// Sets a value of `ehrshare_meta` unless it is set already; whether it was set now.
    pub async fn set_meta_once(&self, key: &str, value: &str) -> Result<bool, StoreError> {
        with_retry(RetryPolicy::default(), || async {
            let done = on_pool!(self, pool => {
                sqlx::query("INSERT INTO ehrshare_meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING")
                    .bind(key)
                    .bind(value)
                    .execute(pool)
                    .await?
                    .rows_affected()
            });
            Ok(done == 1)
        })
        .await
    }

    /// Closes the pool: waits for connections in use to be returned, then closes them all.
    /// Later calls fail with [`StoreError::Unavailable`].
    pub async fn close(&self) {
        if let Some(in_place) = &self.in_place {
            in_place.close();
        }
        on_pool!(self, pool => pool.close().await);
    }
}

fn create_dir(dir: &Path) -> Result<(), StoreError> {
    std::fs::create_dir_all(dir).map_err(|e| StoreError::Unavailable(sqlx::Error::Io(e)))
}

/// A connection inside a unit of work (the audit writer's transaction), handed to a change.
#[derive(Debug)]
pub enum Conn<'c> {
    Sqlite(&'c mut SqliteConnection),
    Postgres(&'c mut PgConnection),
}

impl Conn<'_> {
    /// A shorter-lived handle on the same connection, so that one change can run several
    /// statements through functions that take a `Conn` by value.
    pub fn reborrow(&mut self) -> Conn<'_> {
        match self {
            Conn::Sqlite(c) => Conn::Sqlite(c),
            Conn::Postgres(c) => Conn::Postgres(c),
        }
    }
}

/// Runs the same code against whichever connection a [`Conn`] holds.
#[macro_export]
macro_rules! on_conn {
    ($conn:expr, $c:ident => $body:expr) => {
        match $conn {
            $crate::Conn::Sqlite($c) => $body,
            $crate::Conn::Postgres($c) => $body,
        }
    };
}

/// The future a change returns.
pub type ChangeFuture<'c> = Pin<Box<dyn Future<Output = Result<(), StoreError>> + Send + 'c>>;

/// Database work that must commit together with its audit entry.
pub type Change = Box<dyn for<'c> FnOnce(Conn<'c>) -> ChangeFuture<'c> + Send>;

/// Wraps a closure as a [`Change`] (the wrapper fixes the closure's lifetimes).
pub fn change<F>(f: F) -> Change
where
    F: for<'c> FnOnce(Conn<'c>) -> ChangeFuture<'c> + Send + 'static,
{
    Box::new(f)
}

/// `$first, ..., $(first + n - 1)`: a list of bound parameters for `IN (...)`.
pub(crate) fn placeholders(first: usize, n: usize) -> String {
    let list: Vec<String> = (first..first + n).map(|i| format!("${i}")).collect();
    list.join(", ")
}

/// Moves a position kept in `ehrshare_meta` from `expected` (`None`: not yet set) to `value`,
/// in the caller's transaction; fails with [`Stale::Position`](crate::Stale::Position) if it
/// is not at `expected` (another process moved it).
pub async fn move_meta(
    conn: Conn<'_>,
    key: &str,
    expected: Option<&str>,
    value: &str,
) -> Result<(), StoreError> {
    let moved = crate::on_conn!(conn, db => {
        match expected {
            None => sqlx::query(
                "INSERT INTO ehrshare_meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING",
            )
            .bind(key)
            .bind(value)
            .execute(&mut *db)
            .await?
            .rows_affected(),
            Some(expected) => sqlx::query(
                "UPDATE ehrshare_meta SET value = $2 WHERE key = $1 AND value = $3",
            )
            .bind(key)
            .bind(value)
            .bind(expected)
            .execute(&mut *db)
            .await?
            .rows_affected(),
        }
    });
    if moved == 1 {
        Ok(())
    } else {
        Err(StoreError::Stale(crate::Stale::Position))
    }
}

/// Sets a value of `ehrshare_meta` inside the caller's transaction.
pub async fn put_meta(conn: Conn<'_>, key: &str, value: &str) -> Result<(), StoreError> {
    crate::on_conn!(conn, db => {
        sqlx::query(
            "INSERT INTO ehrshare_meta (key, value) VALUES ($1, $2) \
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        )
        .bind(key)
        .bind(value)
        .execute(&mut *db)
        .await?;
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn in_place_see_what_was_committed_and_only_the_writer_writes() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite:{}", dir.path().join("r.db").display());
        let db = Db::connect(&url, DbOptions::default()).await.unwrap();
        let (Pool::Sqlite(pool), Some(in_place)) = (db.pool(), db.in_place()) else {
            unreachable!()
        };
        sqlx::query("CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT NOT NULL)")
            .execute(pool)
            .await
            .unwrap();
        sqlx::query("INSERT INTO t VALUES (1, 'committed')")
            .execute(pool)
            .await
            .unwrap();
        let (v, query_only, mmap, write) = in_place
            .read(|c| {
                let v: String = c.query_row("SELECT v FROM t WHERE k = 1", [], |r| r.get(0))?;
                let q: i64 = c.query_row("PRAGMA query_only", [], |r| r.get(0))?;
                let m: (i64, i64) = (
                    c.query_row("PRAGMA mmap_size", [], |r| r.get(0))?,
                    c.query_row("PRAGMA cache_size", [], |r| r.get(0))?,
                );
                let w = c.execute("INSERT INTO t VALUES (2, 'never')", []).is_err();
                Ok((v, q, m, w))
            })
            .unwrap()
            .unwrap();
        assert_eq!(v, "committed");
        assert_eq!(query_only, 1);
        assert_eq!(mmap, (0, -16384), "no memory map, a 16 MiB cache");
        assert!(write, "a reader wrote");
        // A later commit is seen by the next read (a connection kept idle in between).
        sqlx::query("UPDATE t SET v = 'changed' WHERE k = 1")
            .execute(pool)
            .await
            .unwrap();
        let v = in_place
            .read(
                |c| Ok(c.query_row("SELECT v FROM t WHERE k = 1", [], |r| r.get::<_, String>(0))?),
            )
            .unwrap()
            .unwrap();
        assert_eq!(v, "changed");
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM t")
            .fetch_one(pool)
            .await
            .unwrap();
        assert_eq!(n, 1);
        // The audit writer's connection writes, with the pool's durability.
        let (synchronous, checkpoint) = in_place
            .write(|c| {
                c.execute("INSERT INTO t VALUES (2, 'in place')", [])?;
                let pragma =
                    |p: &str| c.query_row(&format!("PRAGMA {p}"), [], |r| r.get::<_, i64>(0));
                Ok((pragma("synchronous")?, pragma("wal_autocheckpoint")?))
            })
            .unwrap()
            .unwrap();
        assert_eq!(synchronous, 2, "synchronous = FULL");
        assert_eq!(checkpoint, i64::from(WAL_AUTOCHECKPOINT_FRAMES));
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM t")
            .fetch_one(pool)
            .await
            .unwrap();
        assert_eq!(n, 2);
        // Closed with the pool: no read or write in place any more (callers get the pool's
        // answer), and with every connection closed the WAL is folded into the file.
        db.close().await;
        assert!(in_place.read(|_| Ok(())).is_none());
        assert!(in_place.write(|_| Ok(())).is_none());
        assert!(
            !dir.path().join("r.db-wal").exists(),
            "the WAL was left behind"
        );
    }

    #[tokio::test]
    async fn an_in_memory_database_has_no_in_place_connections() {
        let db = Db::connect("sqlite::memory:", DbOptions::default())
            .await
            .unwrap();
        assert!(matches!(db.pool(), Pool::Sqlite(_)));
        assert!(db.in_place().is_none());
    }
}
