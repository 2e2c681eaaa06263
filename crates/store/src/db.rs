//! The database handle: one concrete pool per backend, chosen by the URL.
//!
//! Two concrete pools in an enum rather than sqlx's `Any` driver: `Any` cannot decode booleans
//! on SQLite nor TIMESTAMPTZ / UUID / JSONB on PostgreSQL. Query code is written once and
//! expanded for both pools by [`on_pool!`](crate::on_pool).

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use crate::error::StoreError;

/// Runs the same code against whichever pool a [`Db`] holds. The body is compiled once per
/// backend, so it may use backend-specific row and argument types through inference.
#[macro_export]
macro_rules! on_pool {
    ($db:expr, $pool:ident => $body:expr) => {
        match $db {
            $crate::Db::Sqlite($pool, _) => $body,
            $crate::Db::Postgres($pool) => $body,
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

/// After how many pages in the WAL a committing connection folds the WAL into the database
/// file (`PRAGMA wal_autocheckpoint`; SQLite's default is 1,000), on every SQLite connection
/// that writes. The fold runs inside the commit that crosses the mark, and everybody in that
/// commit waits for it: in the audit writer's batches, a read's audit entry. With 1,000
/// pages (about 4 MB copied and two files synced) those commits took 5-21 ms, the tail of
/// the eHR summary's latency; with 100, 2 commits over 10 ms in six open-loop runs against
/// 65, for a CPU a request within the noise (docs/PERFORMANCE.md, ninth session;
/// docs/adr/0007).
pub(crate) const WAL_AUTOCHECKPOINT_FRAMES: u32 = 100;

/// A connection pool to the configured database.
#[derive(Debug, Clone)]
pub enum Db {
    /// The pool, and the read-only connections the hot reads run on in place
    /// ([`crate::reader`]).
    Sqlite(SqlitePool, crate::reader::Readers),
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
    /// Connects to `url` (`sqlite:PATH` or `postgres://...`). For SQLite the file and its folder
    /// are created if absent, and the pragmas ehrshare relies on are set on every connection:
    /// WAL, `synchronous=FULL` (a committed audit entry survives power loss), foreign keys on,
    /// and reads through a memory map of up to 256 MiB (`mmap_size`): every commit of the
    /// audit writer empties the other connections' page caches, and a mapped page is read
    /// again without a copy (docs/PERFORMANCE.md). Writes still go through the file. The known
    /// cost: an I/O error on a mapped page is a signal, not an error code; the database is a
    /// local file that only ehrshare truncates. The hot reads' connections ([`crate::reader`])
    /// use a page cache instead of the map: there the map's refresh after each commit cost
    /// more than reading the pages again. The WAL is folded into the file after every
    /// `WAL_AUTOCHECKPOINT_FRAMES` pages, not SQLite's 1,000.
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
                let readers =
                    crate::reader::Readers::new(&path, options.sqlite_busy_timeout, in_memory);
                Ok(Db::Sqlite(pool, readers))
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
                Ok(Db::Postgres(pool))
            }
            None => Err(StoreError::InvalidUrl(
                "expected a URL starting with sqlite: or postgres://".to_owned(),
            )),
        }
    }

    /// The engine behind this handle.
    pub fn backend(&self) -> Backend {
        match self {
            Db::Sqlite(..) => Backend::Sqlite,
            Db::Postgres(_) => Backend::Postgres,
        }
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
        let done = on_pool!(self, pool => {
            sqlx::query("INSERT INTO ehrshare_meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING")
                .bind(key)
                .bind(value)
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(done == 1)
    }

    /// Closes the pool: waits for connections in use to be returned, then closes them all.
    /// Later calls fail with [`StoreError::Unavailable`].
    pub async fn close(&self) {
        if let Db::Sqlite(_, readers) = self {
            readers.close();
        }
        on_pool!(self, pool => pool.close().await);
    }
}

fn create_dir(dir: &Path) -> Result<(), StoreError> {
    std::fs::create_dir_all(dir).map_err(|e| StoreError::Unavailable(sqlx::Error::Io(e)))
}
