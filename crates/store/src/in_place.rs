//! The SQLite fast path: reads on the calling thread for the hot read paths (ADR 0004), and
//! the audit writer's connection for its common batch (ADR 0005). [`InPlace`] is the only way
//! to it: a [`crate::Db`] over a SQLite file holds one, and a query function that has a fast
//! path asks the `Db` for it (`Db::in_place`) rather than matching on the pool.
//!
//! Why: sqlx runs each SQLite connection on a worker thread of its own, and every statement
//! is handed over to it and its answer handed back, waking a thread each way. On the eHR
//! summary read those hand-overs, not SQLite, were most of the CPU (ADR 0004).
//! A read of a few dozen microseconds is cheaper run in place than handed over, so the few
//! statements on the path of every request (the session, the provider, the decision's facts
//! with the records) read through these connections instead.
//!
//! Rules that keep this safe:
//! - Every reading connection is `query_only`: nothing written through them, ever. Writes
//!   stay with sqlx, except the audit writer's common batch, which runs on the one writing
//!   connection kept here ([`InPlace::write`], ADR 0005) so that closing the database
//!   closes it too.
//! - Same file and compile-time options as the pool (one SQLite library: rusqlite links the
//!   `libsqlite3-sys` sqlx links). Reading connections use a page cache, not the pool's
//!   memory map (`Inner::open`); the audit writer's connection has the pool's settings.
//! - WAL: a reader sees the last committed state and never waits on the writer.
//! - A statement here runs on a tokio worker thread; it must stay small (a key lookup, one
//!   recipient's facts), never a scan.
//! - An in-memory database has no file to share: no `InPlace`, and the callers use the pool.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use crate::error::StoreError;

/// How many idle connections are kept (more are opened under load and then closed).
const KEEP: usize = 8;

/// After how many pages in the WAL a committing connection folds the WAL into the database
/// file (`PRAGMA wal_autocheckpoint`; SQLite's default is 1,000), on every SQLite connection
/// that writes (the pool's and the audit writer's here). The fold runs inside the commit that
/// crosses the mark, and everybody in that commit waits for it: in the audit writer's batches,
/// a read's audit entry. With 1,000 pages (about 4 MB copied and two files synced) those
/// commits took 5-21 ms, the tail of the eHR summary's latency; with 100, 2 commits over 10 ms
/// in six open-loop runs against 65, for a CPU a request within the noise (ADR 0007).
pub(crate) const WAL_AUTOCHECKPOINT_FRAMES: u32 = 100;

/// A small pool of read-only SQLite connections used in place, and the audit writer's
/// connection.
#[derive(Debug, Clone)]
pub struct InPlace(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    path: PathBuf,
    busy_timeout: Duration,
    idle: Mutex<Vec<Connection>>,
    /// The audit writer's connection, opened at its first batch.
    writer: Mutex<Option<Connection>>,
    closed: std::sync::atomic::AtomicBool,
}

impl InPlace {
    /// In-place connections to the database file at `path` (opened when first used).
    pub(crate) fn new(path: &std::path::Path, busy_timeout: Duration) -> InPlace {
        InPlace(Arc::new(Inner {
            path: path.to_owned(),
            busy_timeout,
            idle: Mutex::new(Vec::new()),
            writer: Mutex::new(None),
            closed: std::sync::atomic::AtomicBool::new(false),
        }))
    }

    /// Runs `f` on an idle connection (opened if none is idle); `None` once closed (the
    /// caller uses the pool, which answers that it is closed).
    pub(crate) fn read<R>(
        &self,
        f: impl FnOnce(&Connection) -> Result<R, StoreError>,
    ) -> Option<Result<R, StoreError>> {
        let inner = &self.0;
        if inner.closed.load(std::sync::atomic::Ordering::Relaxed) {
            return None;
        }
        let idle = inner.idle.lock().ok().and_then(|mut v| v.pop());
        let conn = match idle {
            Some(c) => c,
            None => match inner.open() {
                Ok(c) => c,
                Err(e) => return Some(Err(e)),
            },
        };
        let result = f(&conn);
        if let Ok(mut v) = inner.idle.lock()
            && v.len() < KEEP
        {
            v.push(conn);
        }
        Some(result)
    }

    /// The row `sql` finds with `$1` bound to `key` (at most one: a key look-up), decoded by
    /// `decode`; `None` once closed.
    pub(crate) fn optional_row<T>(
        &self,
        sql: &str,
        key: &dyn rusqlite::ToSql,
        decode: impl FnOnce(&Named<'_, '_>) -> Result<T, StoreError>,
    ) -> Option<Result<Option<T>, StoreError>> {
        self.read(|conn| {
            let mut statement = conn.prepare_cached(sql)?;
            let mut rows = statement.query([("$1", key)].as_slice())?;
            match rows.next()? {
                Some(row) => {
                    let names = column_names(row);
                    decode(&Named::new(row, &names)).map(Some)
                }
                None => Ok(None),
            }
        })
    }
}

impl InPlace {
    /// Runs `f` on the audit writer's connection (`audit::in_place_batch`), opened with the
    /// pool's settings if it is not open yet; `None` once the database is closed.
    /// Only the audit writer calls this, one batch at a time: the lock is never contended, it
    /// only makes [`Readers::close`] wait for a batch in progress.
    pub(crate) fn write<R>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<R, StoreError>,
    ) -> Option<Result<R, StoreError>> {
        let inner = &self.0;
        let mut slot = inner.writer.lock().ok()?;
        if inner.closed.load(std::sync::atomic::Ordering::SeqCst) {
            return None;
        }
        if slot.is_none() {
            match inner.open_writer() {
                Ok(conn) => *slot = Some(conn),
                Err(e) => return Some(Err(e)),
            }
        }
        let conn = slot.as_mut()?;
        let result = f(conn);
        // A failed batch (perhaps at its COMMIT), or a connection somehow still inside a
        // transaction: opened afresh next time, never reused (issue 22).
        if result.is_err() || !conn.is_autocommit() {
            *slot = None;
        }
        Some(result)
    }

    /// Closes the idle connections and the writer's, and opens no more (at shutdown, with
    /// the pool): later calls fall back to the pool, which answers that it is closed. The
    /// last connection to close folds the WAL into the database file, so a copy of the file
    /// alone is whole.
    pub(crate) fn close(&self) {
        let inner = &self.0;
        inner
            .closed
            .store(true, std::sync::atomic::Ordering::SeqCst);
        if let Ok(mut idle) = inner.idle.lock() {
            idle.clear();
        }
        if let Ok(mut writer) = inner.writer.lock() {
            *writer = None;
        }
    }
}

impl Inner {
    /// A reading connection: `query_only`, and its own page cache of 16 MiB instead of the
    /// pool's memory map. Every audit commit changes the WAL, and SQLite then drops what a
    /// reading connection holds at its next transaction: with a map, the whole map is
    /// unmapped (`munmap` of every page it had mapped) and faulted back in page by page;
    /// with a cache, the pages read since are read again. Below saturation the writer commits
    /// every few requests, and the map cost more: 402 -> 377 µs of CPU a summary at 4,000
    /// req/s offered, six alternated pairs (ADR 0004). A summary
    /// touches a few pages, so 16 MiB holds every recipient a connection reads between two
    /// commits.
    fn open(&self) -> Result<Connection, StoreError> {
        self.connect("PRAGMA query_only = ON; PRAGMA mmap_size = 0; PRAGMA cache_size = -16384;")
    }

    /// The audit writer's connection, with the pool's settings (`Db::connect`): WAL,
    /// `synchronous=FULL` (a committed entry survives power loss), foreign keys, the busy
    /// timeout, the memory map, the WAL's automatic checkpoint.
    fn open_writer(&self) -> Result<Connection, StoreError> {
        self.connect(&format!(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; \
             PRAGMA mmap_size = 268435456; PRAGMA wal_autocheckpoint = {};",
            WAL_AUTOCHECKPOINT_FRAMES
        ))
    }

    /// A connection to the file with the busy timeout and then `pragmas`.
    fn connect(&self, pragmas: &str) -> Result<Connection, StoreError> {
        let conn = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(self.busy_timeout)?;
        conn.execute_batch(pragmas)?;
        Ok(conn)
    }
}

/// The names `$1` to `$n`: the SQL text shared with sqlx numbers its parameters, and SQLite
/// numbers `$N` parameters in the order they first appear, not by `N`, so they are bound by
/// name.
pub(crate) fn numbered(n: usize) -> Vec<String> {
    (1..=n).map(|i| format!("${i}")).collect()
}

/// A JSON text column read in place (what sqlx's `Json` is for the pool).
pub(crate) struct JsonText<T>(pub T);

impl<T: serde::de::DeserializeOwned> rusqlite::types::FromSql for JsonText<T> {
    fn column_result(value: rusqlite::types::ValueRef<'_>) -> rusqlite::types::FromSqlResult<Self> {
        serde_json::from_str(value.as_str()?)
            .map(JsonText)
            .map_err(|e| rusqlite::types::FromSqlError::Other(Box::new(e)))
    }
}

/// A row read in place, its columns found by name in a list taken once per statement
/// ([`column_names`]): rusqlite's own lookup by name asks SQLite for every column's name at
/// every lookup, which on a wide row cost more than the read.
pub(crate) struct Named<'r, 's> {
    row: &'r rusqlite::Row<'s>,
    names: &'r [&'r str],
    /// Where the next look-up starts: the column after the last one found. Rows are mostly
    /// read in the order of their columns, so most look-ups compare one name, not half of
    /// them (a summary looks up 12 columns of 50 rows).
    next: std::cell::Cell<usize>,
}

/// The names of the columns of `row`'s statement, borrowed from it (not copied: a summary
/// reads three statements of tens of columns).
pub(crate) fn column_names<'r>(row: &'r rusqlite::Row<'_>) -> Vec<&'r str> {
    let statement: &rusqlite::Statement<'_> = row.as_ref();
    statement.column_names()
}

impl<'r, 's> Named<'r, 's> {
    pub(crate) fn new(row: &'r rusqlite::Row<'s>, names: &'r [&'r str]) -> Named<'r, 's> {
        Named {
            row,
            names,
            next: std::cell::Cell::new(0),
        }
    }

    /// The column called `name`.
    pub(crate) fn get<T: rusqlite::types::FromSql>(&self, name: &str) -> rusqlite::Result<T> {
        let n = self.names.len();
        let start = self.next.get();
        let i = (start..n)
            .chain(0..start.min(n))
            .find(|&i| self.names[i] == name)
            .ok_or_else(|| rusqlite::Error::InvalidColumnName(name.to_owned()))?;
        self.next.set(i + 1);
        self.row.get(i)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn columns_are_found_by_name_in_any_order() {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        let mut statement = conn.prepare("SELECT 1 AS a, 'two' AS b, 3 AS c").unwrap();
        let mut rows = statement.query([]).unwrap();
        let row = rows.next().unwrap().unwrap();
        let names = super::column_names(row);
        let named = super::Named::new(row, &names);
        // In order, backwards, twice, after the last: each by its own name.
        for (name, want) in [("a", "1"), ("b", "two"), ("c", "3"), ("c", "3"), ("a", "1")] {
            let got: rusqlite::types::Value = named.get(name).unwrap();
            let got = match got {
                rusqlite::types::Value::Integer(i) => i.to_string(),
                rusqlite::types::Value::Text(t) => t,
                other => panic!("{other:?}"),
            };
            assert_eq!(got, want, "{name}");
        }
        assert!(matches!(
            named.get::<i64>("d"),
            Err(rusqlite::Error::InvalidColumnName(n)) if n == "d"
        ));
        assert_eq!(named.get::<String>("b").unwrap(), "two");
    }
}
