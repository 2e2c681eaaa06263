//! The audit log's storage: one writer task that batches entries from many callers into one
//! transaction (group commit), assigns gap-free sequence numbers, and keeps the Merkle tree's
//! perfect subtrees beside the entries.
//!
//! Guarantees to callers of [`AuditLog::append`] and [`AuditLog::append_with`]:
//! - When the call returns `Ok`, the entry is committed (durable: SQLite `synchronous=FULL`,
//!   PostgreSQL's default `synchronous_commit`). When it returns `Err`, nothing of it was
//!   committed, and neither was the change passed with it: fail closed.
//! - A change passed to `append_with` runs in the same transaction as its entry, inside a
//!   savepoint, so a failing change is undone alone and its entry is not written.
//! - Several server processes may share one PostgreSQL database: each batch takes an advisory
//!   lock and re-reads the log's size, so sequence numbers stay gap-free and unique.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use ehrshare_core::audit::merkle::{Frontier, Hash, ProofPlan};
use ehrshare_core::audit::{Actor, ActorKind, AuditEntry, NewAuditEntry, Outcome};
use sqlx::types::Json;
use sqlx::{Acquire, Connection, PgConnection, QueryBuilder, Row, SqliteConnection};
use time::OffsetDateTime;
use tokio::sync::{mpsc, oneshot, watch};
use uuid::Uuid;

use crate::db::Db;
use crate::error::StoreError;

mod in_place;

/// The log's size: one more than the highest sequence number.
const AUDIT_SIZE: &str = "SELECT COALESCE(MAX(seq) + 1, 0) FROM audit_entry";

/// A connection inside the writer's transaction, handed to a change.
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

/// The log's size and Merkle root.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TreeHead {
    pub size: u64,
    pub root: Hash,
}

/// What an append returns: the entry's position and the tree head that includes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    pub seq: u64,
    pub head: TreeHead,
}

/// Writer settings.
#[derive(Debug, Clone, Copy)]
pub struct AuditOptions {
    /// Most entries in one transaction.
    pub max_batch: usize,
    /// Most callers waiting for the writer before `append` itself waits.
    pub queue: usize,
}

impl Default for AuditOptions {
    fn default() -> Self {
        AuditOptions {
            max_batch: 4096,
            queue: 65_536,
        }
    }
}

/// Counters for observing the writer (tests and benchmarks).
#[derive(Debug, Default)]
pub struct AuditStats {
    /// Transactions committed.
    pub batches: AtomicU64,
    /// Entries committed.
    pub entries: AtomicU64,
    /// Of the transactions, those the SQLite writer committed in place (docs/adr/0005).
    pub in_place: AtomicU64,
    /// How long the writer took over each batch (committed or failed), from taking its
    /// jobs to answering them: a count for each bound of [`AuditStats::BATCH_TIME_BOUNDS`]
    /// (at most that many microseconds, above the bound before), and a last count for the
    /// longer ones. Every reader in a batch waits this long, so its tail is the read's tail
    /// (docs/PERFORMANCE.md).
    pub batch_time: [AtomicU64; AuditStats::BATCH_TIME_BOUNDS.len() + 1],
    /// The longest of them, in microseconds.
    pub batch_time_max: AtomicU64,
    /// Set while the writer cannot commit (its last batch or probe failed); cleared by the
    /// next commit. Readiness (`/readyz`) reads it.
    failure: std::sync::Mutex<Option<WriterFailure>>,
}

/// Why, and since when, the audit writer cannot commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriterFailure {
    /// The first failed attempt of the run.
    pub since: time::OffsetDateTime,
    /// Failed attempts in a row (batches and probes).
    pub attempts: u64,
    /// [`StoreError::unavailable_cause`], or `error` for anything else.
    pub cause: &'static str,
}

impl AuditStats {
    /// Why the writer cannot commit now, if it cannot.
    pub fn failure(&self) -> Option<WriterFailure> {
        self.failure.lock().ok().and_then(|f| f.clone())
    }

    fn is_failing(&self) -> bool {
        self.failure.lock().map(|f| f.is_some()).unwrap_or(false)
    }

    fn note_success(&self) {
        if let Ok(mut f) = self.failure.lock()
            && let Some(was) = f.take()
        {
            tracing::info!(
                cause = was.cause,
                attempts = was.attempts,
                "audit writer commits again"
            );
        }
    }

    fn note_failure(&self, err: &StoreError) {
        let cause = err.unavailable_cause().unwrap_or("error");
        if let Ok(mut f) = self.failure.lock() {
            match f.as_mut() {
                Some(was) => {
                    was.attempts += 1;
                    was.cause = cause;
                }
                None => {
                    // Logged once a run, not once a batch: a full disk would flood the log.
                    tracing::error!(error = %err, cause, "audit writer cannot commit");
                    *f = Some(WriterFailure {
                        since: time::OffsetDateTime::now_utc(),
                        attempts: 1,
                        cause,
                    });
                }
            }
        }
    }

    /// The upper bounds of [`AuditStats::batch_time`]'s counts, in microseconds.
    pub const BATCH_TIME_BOUNDS: [u64; 6] = [250, 500, 1_000, 2_000, 5_000, 10_000];

    /// Counts one batch that took `took`.
    fn count_batch(&self, took: std::time::Duration) {
        let us = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        let bucket = Self::BATCH_TIME_BOUNDS
            .iter()
            .position(|b| us <= *b)
            .unwrap_or(Self::BATCH_TIME_BOUNDS.len());
        self.batch_time[bucket].fetch_add(1, Ordering::Relaxed);
        self.batch_time_max.fetch_max(us, Ordering::Relaxed);
    }
}

/// What a permitted read of records obliges, applied by the writer for a whole batch at once.
///
/// Why not a [`Change`]: reads are the hot path, and a change costs the writer a savepoint and
/// a statement or three per entry, each a round trip while every reader waits for the batch.
/// As data, a batch's consents are re-checked in one statement and its access-notice days
/// claimed in another (docs/PERFORMANCE.md). Unlike a change, an effect that fails (it
/// cannot, short of a broken database: notice days are claimed with `DO NOTHING`, alert ids are
/// fresh) fails the whole batch, not just its own entry.
#[derive(Debug, Clone, Default)]
pub struct ReadEffects {
    /// The consent the permit rests on: checked again inside the writer's transaction, after
    /// every earlier write (a revocation included) has committed. If it has been revoked the
    /// entry is not kept and the read fails with [`StoreError::ConsentRevoked`].
    pub consent: Option<Uuid>,
    /// The recipient's access notice, if they want notices.
    pub notice: Option<NoticeClaim>,
    /// An alert to raise with the entry.
    pub alert: Option<crate::sharing::AlertRow>,
}

/// An access notice: `messages` are sent if this is the provider's first access to the
/// recipient's record on `day`, or `always` (a restricted item was unlocked).
#[derive(Debug, Clone)]
pub struct NoticeClaim {
    pub recipient: Uuid,
    pub hcp: Uuid,
    /// Hong Kong calendar day, `YYYY-MM-DD`.
    pub day: String,
    pub always: bool,
    pub messages: Vec<crate::outbox::NewMessage>,
}

struct Job {
    entry: NewAuditEntry,
    change: Option<Change>,
    read: Option<ReadEffects>,
    reply: oneshot::Sender<Result<Appended, StoreError>>,
}

/// The handle callers append through. Cheap to clone.
#[derive(Debug, Clone)]
pub struct AuditLog {
    jobs: mpsc::Sender<Job>,
    head: watch::Receiver<TreeHead>,
    stats: Arc<AuditStats>,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Job")
            .field("action", &self.entry.action)
            .finish()
    }
}

impl AuditLog {
    /// Restores the tree's right edge from the database and starts the writer task.
    pub async fn open(db: Db, options: AuditOptions) -> Result<AuditLog, StoreError> {
        let frontier = match &db {
            Db::Sqlite(pool, _) => restore_sqlite(&mut *pool.acquire().await?).await?,
            Db::Postgres(pool) => restore_postgres(&mut *pool.acquire().await?).await?,
        };
        let (jobs, rx) = mpsc::channel(options.queue.max(1));
        let (head_tx, head) = watch::channel(TreeHead {
            size: frontier.size(),
            root: frontier.root(),
        });
        let stats = Arc::new(AuditStats::default());
        let writer = Writer {
            db,
            frontier,
            max_batch: options.max_batch.max(1),
            head: head_tx,
            stats: Arc::clone(&stats),
        };
        tokio::spawn(writer.run(rx));
        Ok(AuditLog { jobs, head, stats })
    }

    /// Appends an entry and waits until it is committed.
    pub async fn append(&self, entry: NewAuditEntry) -> Result<Appended, StoreError> {
        self.submit(entry, None, None).await
    }

    /// Runs `change` and appends `entry` in one transaction; waits until both are committed.
    /// If the change fails, its error is returned and neither is kept.
    pub async fn append_with(
        &self,
        entry: NewAuditEntry,
        change: Change,
    ) -> Result<Appended, StoreError> {
        self.submit(entry, Some(change), None).await
    }

    /// Appends the entry of a permitted read with what it obliges ([`ReadEffects`]); waits
    /// until both are committed.
    pub async fn append_read(
        &self,
        entry: NewAuditEntry,
        effects: ReadEffects,
    ) -> Result<Appended, StoreError> {
        self.submit(entry, None, Some(effects)).await
    }

    async fn submit(
        &self,
        entry: NewAuditEntry,
        change: Option<Change>,
        read: Option<ReadEffects>,
    ) -> Result<Appended, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send(Job {
                entry,
                change,
                read,
                reply,
            })
            .await
            .map_err(|_| StoreError::AuditClosed)?;
        answer.await.map_err(|_| StoreError::AuditClosed)?
    }

    /// The last committed tree head.
    pub fn head(&self) -> TreeHead {
        *self.head.borrow()
    }

    /// A receiver that sees every new committed tree head.
    pub fn subscribe(&self) -> watch::Receiver<TreeHead> {
        self.head.clone()
    }

    /// The writer's counters.
    pub fn stats(&self) -> &AuditStats {
        &self.stats
    }
}

struct Writer {
    db: Db,
    frontier: Frontier,
    max_batch: usize,
    head: watch::Sender<TreeHead>,
    stats: Arc<AuditStats>,
}

/// What became of one job inside a batch.
enum Slot {
    Assigned(u64),
    ChangeFailed(StoreError),
}

impl Writer {
    async fn run(mut self, mut rx: mpsc::Receiver<Job>) {
        // Ends when every AuditLog handle is dropped and the queue is drained. While the
        // writer cannot commit, it probes every PROBE_EVERY without waiting for work, so that
        // readiness recovers even when no request comes (a load balancer sends none to an
        // instance that is not ready).
        loop {
            let next = if self.stats.is_failing() {
                match tokio::time::timeout(PROBE_EVERY, rx.recv()).await {
                    Ok(next) => next,
                    Err(_) => {
                        self.probe().await;
                        continue;
                    }
                }
            } else {
                rx.recv().await
            };
            let Some(first) = next else { break };
            // Let callers that are about to submit do so: a few more entries in this batch
            // cost little, a batch of their own costs a whole commit.
            tokio::task::yield_now().await;
            tokio::task::yield_now().await;
            let mut jobs = vec![first];
            while jobs.len() < self.max_batch {
                match rx.try_recv() {
                    Ok(job) => jobs.push(job),
                    Err(_) => break,
                }
            }
            let started = std::time::Instant::now();
            self.batch(jobs).await;
            self.stats.count_batch(started.elapsed());
        }
    }

    /// One small write, as the writer would make it: does the database take commits again?
    async fn probe(&mut self) {
        const PROBE: &str = "INSERT INTO ehrshare_meta (key, value) VALUES ($1, $2) \
             ON CONFLICT (key) DO UPDATE SET value = excluded.value";
        let value = self
            .stats
            .failure()
            .map(|f| f.attempts)
            .unwrap_or(0)
            .to_string();
        let result: Result<(), StoreError> = crate::on_pool!(&self.db, pool => {
            sqlx::query(PROBE)
                .bind("audit_writer_probe")
                .bind(&value)
                .execute(pool)
                .await
                .map(drop)
                .map_err(StoreError::from)
        });
        match result {
            Ok(()) => self.stats.note_success(),
            Err(e) => self.stats.note_failure(&e),
        }
    }

    async fn batch(&mut self, mut jobs: Vec<Job>) {
        let snapshot = self.frontier.clone();
        // On a SQLite file, the common batch runs in place, on this thread (docs/adr/0005);
        // any other batch, or any batch once the database is closed, through the pool.
        if let Db::Sqlite(_, readers) = &self.db {
            let frontier = &mut self.frontier;
            match readers.write(|conn| in_place::batch(conn, frontier, &jobs)) {
                Some(Ok(Some(slots))) => {
                    self.stats.in_place.fetch_add(1, Ordering::Relaxed);
                    return self.finish(jobs, snapshot, Ok(slots));
                }
                Some(Err(err)) => return self.finish(jobs, snapshot, Err(err)),
                Some(Ok(None)) | None => self.frontier = snapshot.clone(),
            }
        }
        let result = match &self.db {
            // A batch that failed may have failed at its COMMIT: its connection is never
            // reused, whatever state it reports (issue 22).
            Db::Sqlite(pool, _) => match pool.acquire().await {
                Ok(mut conn) => {
                    let result = batch_sqlite(&mut conn, &mut self.frontier, &mut jobs).await;
                    if result.is_err() {
                        conn.close_on_drop();
                    }
                    result
                }
                Err(e) => Err(e.into()),
            },
            Db::Postgres(pool) => match pool.acquire().await {
                Ok(mut conn) => {
                    let result = batch_postgres(&mut conn, &mut self.frontier, &mut jobs).await;
                    if result.is_err() {
                        conn.close_on_drop();
                    }
                    result
                }
                Err(e) => Err(e.into()),
            },
        };
        self.finish(jobs, snapshot, result);
    }

    /// Publishes a batch's outcome: the new tree head and each caller's answer, or on failure
    /// the tree as it was before the batch and the error to every caller.
    fn finish(
        &mut self,
        jobs: Vec<Job>,
        snapshot: Frontier,
        result: Result<Vec<Slot>, StoreError>,
    ) {
        match result {
            Ok(slots) => {
                self.stats.note_success();
                let head = TreeHead {
                    size: self.frontier.size(),
                    root: self.frontier.root(),
                };
                let committed = slots
                    .iter()
                    .filter(|s| matches!(s, Slot::Assigned(_)))
                    .count();
                self.stats.batches.fetch_add(1, Ordering::Relaxed);
                self.stats
                    .entries
                    .fetch_add(committed as u64, Ordering::Relaxed);
                self.head.send_replace(head);
                for (job, slot) in jobs.into_iter().zip(slots) {
                    let answer = match slot {
                        Slot::Assigned(seq) => Ok(Appended { seq, head }),
                        Slot::ChangeFailed(e) => Err(e),
                    };
                    let _ = job.reply.send(answer);
                }
            }
            Err(err) => {
                // Nothing was committed: forget what this batch added to the tree.
                self.frontier = snapshot;
                if err.is_unavailable() {
                    tracing::debug!(error = %err, entries = jobs.len(), "audit batch failed");
                } else {
                    tracing::error!(error = %err, entries = jobs.len(), "audit batch failed");
                }
                self.stats.note_failure(&err);
                let shared = Arc::new(err);
                for job in jobs {
                    let _ = job.reply.send(Err(StoreError::Shared(Arc::clone(&shared))));
                }
            }
        }
    }
}

/// How often a writer that cannot commit tries again on its own.
const PROBE_EVERY: std::time::Duration = std::time::Duration::from_secs(2);

/// Node rows are looked up in chunks of this size.
const NODE_ROWS_PER_SELECT: usize = 4000;

/// A PostgreSQL advisory lock id, fixed forever: serialises audit writers across processes.
const PG_AUDIT_LOCK: i64 = 0x6568_7261_7564_6974; // "ehraudit"

fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Generates the insert of a batch: multi-row VALUES, at most 512 entry rows (19 values each,
/// under SQLite's 32766 bound values) per statement. A statement per batch length is not worth
/// a place in the prepared-statement cache. (Tried for SQLite: one JSON parameter unpacked by
/// `json_each`, a fixed statement; measured 20 % slower, the `->>` lookups re-parse each row.)
macro_rules! define_insert {
    ($name:ident, $entries:ident, $conn_ty:ty, $db:ty) => {
        async fn $name(
            conn: &mut $conn_ty,
            rows: &[AuditEntry],
            nodes: &[(u64, Hash)],
        ) -> Result<(), StoreError> {
            $entries(conn, EntryTable::Audit, rows).await?;
            for chunk in nodes.chunks(4096) {
                let mut q = QueryBuilder::<$db>::new("INSERT INTO audit_node (idx, hash) ");
                q.push_values(chunk, |mut b, (idx, hash)| {
                    b.push_bind(to_i64(*idx)).push_bind(hash.as_slice());
                });
                q.build().persistent(false).execute(&mut *conn).await?;
            }
            Ok(())
        }

        /// Inserts entry rows into `table` (the audit log, or the benchmark's raw table).
        pub(crate) async fn $entries(
            conn: &mut $conn_ty,
            table: EntryTable,
            rows: &[AuditEntry],
        ) -> Result<(), StoreError> {
            for chunk in rows.chunks(512) {
                let mut q = QueryBuilder::<$db>::new(table.insert_prefix());
                q.push_values(chunk, |mut b, row| {
                    let e = &row.entry;
                    b.push_bind(to_i64(row.seq))
                        .push_bind(crate::Ts(e.at))
                        .push_bind(e.actor.kind.code())
                        .push_bind(e.actor.account)
                        .push_bind(e.actor.role.as_deref())
                        .push_bind(e.actor.hcp)
                        .push_bind(e.actor.location)
                        .push_bind(e.sdm)
                        .push_bind(e.recipient)
                        .push_bind(e.action.as_str())
                        .push_bind(Json(&e.domains))
                        .push_bind(Json(&e.record_ids))
                        .push_bind(e.reason.as_deref())
                        .push_bind(e.outcome.code())
                        .push_bind(e.denial_reason.as_deref())
                        .push_bind(e.consent_id)
                        .push_bind(e.episode_id)
                        .push_bind(e.client_addr.as_deref())
                        .push_bind(e.request_id);
                });
                q.build().persistent(false).execute(&mut *conn).await?;
            }
            Ok(())
        }
    };
}

/// A table with the columns of `audit_entry`.
#[derive(Debug, Clone, Copy)]
pub(crate) enum EntryTable {
    Audit,
    /// `bench_raw`: the benchmark's ceiling (see `crate::bench`).
    BenchRaw,
}

impl EntryTable {
    fn insert_prefix(self) -> &'static str {
        match self {
            EntryTable::Audit => {
                "INSERT INTO audit_entry (seq, at, actor_kind, actor_account, actor_role, \
                 actor_hcp, actor_location, sdm, recipient, action, domains, record_ids, reason, \
                 outcome, denial_reason, consent_id, episode_id, client_addr, request_id) "
            }
            EntryTable::BenchRaw => {
                "INSERT INTO bench_raw (seq, at, actor_kind, actor_account, actor_role, \
                 actor_hcp, actor_location, sdm, recipient, action, domains, record_ids, reason, \
                 outcome, denial_reason, consent_id, episode_id, client_addr, request_id) "
            }
        }
    }
}

define_insert!(
    insert_sqlite,
    insert_entries_sqlite,
    SqliteConnection,
    sqlx::Sqlite
);
define_insert!(
    insert_postgres,
    insert_entries_postgres,
    PgConnection,
    sqlx::Postgres
);

/// Generates the per-backend functions. Written once; compiled per connection type.
/// The columns of an entry, in the order every reader selects them.
const ENTRY_COLUMNS: &str = "seq, at, actor_kind, actor_account, actor_role, actor_hcp, \
    actor_location, sdm, recipient, action, domains, record_ids, reason, outcome, \
    denial_reason, consent_id, episode_id, client_addr, request_id";

/// Which entries to read: those about a recipient, or those by a provider's users.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditFilter {
    Recipient(Uuid),
    Provider(Uuid),
}

macro_rules! define_backend {
    ($batch:ident, $restore:ident, $read_entries:ident, $read_by:ident, $decode:ident, $read_nodes:ident, $insert:ident, $conn_ty:ty, $db:ty, $wrap:ident, $begin:expr, $lock:expr) => {
        async fn $batch(
            conn: &mut $conn_ty,
            frontier: &mut Frontier,
            jobs: &mut [Job],
        ) -> Result<Vec<Slot>, StoreError> {
            let mut tx = conn.begin_with($begin).await?;
            if let Some(lock) = $lock {
                sqlx::query("SELECT pg_advisory_xact_lock($1)")
                    .bind(lock)
                    .execute(&mut *tx)
                    .await?;
            }
            let size: i64 = sqlx::query_scalar(AUDIT_SIZE).fetch_one(&mut *tx).await?;
            if u64::try_from(size).ok() != Some(frontier.size()) {
                // Another process appended since our last batch: take its tree as ours.
                *frontier = $restore(&mut *tx).await?;
            }
            let mut slots = Vec::with_capacity(jobs.len());
            let mut rows: Vec<AuditEntry> = Vec::with_capacity(jobs.len());
            let mut nodes: Vec<(u64, Hash)> = Vec::with_capacity(jobs.len() * 2);
            // Which consents of the reads are unrevoked, as of the jobs before them: asked
            // once for the reads up to the next change (a change may be a revocation).
            let mut live: Option<std::collections::HashSet<Uuid>> = None;
            let mut effects: Vec<ReadEffects> = Vec::new();
            for i in 0..jobs.len() {
                if let Some(consent) = jobs[i].read.as_ref().and_then(|r| r.consent) {
                    let known = match &mut live {
                        Some(known) => known,
                        None => {
                            let wanted: Vec<Uuid> = jobs[i..]
                                .iter()
                                .take_while(|j| j.change.is_none())
                                .filter_map(|j| j.read.as_ref().and_then(|r| r.consent))
                                .collect();
                            live.insert(
                                crate::sharing::unrevoked_consents(Conn::$wrap(&mut *tx), &wanted)
                                    .await?,
                            )
                        }
                    };
                    if !known.contains(&consent) {
                        jobs[i].read = None;
                        slots.push(Slot::ChangeFailed(StoreError::ConsentRevoked));
                        continue;
                    }
                }
                let job = &mut jobs[i];
                if let Some(read) = job.read.take() {
                    effects.push(read);
                }
                if let Some(change) = job.change.take() {
                    live = None;
                    let mut savepoint = tx.begin().await?;
                    match change(Conn::$wrap(&mut *savepoint)).await {
                        Ok(()) => savepoint.commit().await?,
                        Err(e) => {
                            if let Err(rollback) = savepoint.rollback().await {
                                // SQLite ended the whole transaction itself (a full disk, an
                                // I/O error): the change's own error says why.
                                return Err(if e.is_unavailable() {
                                    e
                                } else {
                                    rollback.into()
                                });
                            }
                            slots.push(Slot::ChangeFailed(e));
                            continue;
                        }
                    }
                }
                let seq = frontier.size();
                let entry = job.entry.clone().at_seq(seq);
                nodes.extend(frontier.push(entry.leaf_hash()));
                rows.push(entry);
                slots.push(Slot::Assigned(seq));
            }
            crate::sharing::apply_read_effects(Conn::$wrap(&mut *tx), effects).await?;
            $insert(&mut tx, &rows, &nodes).await?;
            tx.commit().await?;
            Ok(slots)
        }

        async fn $restore(conn: &mut $conn_ty) -> Result<Frontier, StoreError> {
            let size: i64 = sqlx::query_scalar(AUDIT_SIZE).fetch_one(&mut *conn).await?;
            let size = u64::try_from(size).unwrap_or(0);
            let nodes = $read_nodes(conn, &Frontier::indices_for(size)).await?;
            Frontier::restore(size, &nodes).map_err(|e| StoreError::Corrupt(e.to_string()))
        }

        async fn $read_nodes(
            conn: &mut $conn_ty,
            indices: &[u64],
        ) -> Result<BTreeMap<u64, Hash>, StoreError> {
            let mut out = BTreeMap::new();
            for chunk in indices.chunks(NODE_ROWS_PER_SELECT) {
                let mut q =
                    QueryBuilder::<$db>::new("SELECT idx, hash FROM audit_node WHERE idx IN (");
                let mut list = q.separated(", ");
                for i in chunk {
                    list.push_bind(to_i64(*i));
                }
                q.push(")");
                for row in q.build().fetch_all(&mut *conn).await? {
                    let idx: i64 = row.try_get("idx")?;
                    let bytes: Vec<u8> = row.try_get("hash")?;
                    let hash: Hash = bytes.try_into().map_err(|_| {
                        StoreError::Corrupt(format!("audit node {idx} is not 32 bytes"))
                    })?;
                    out.insert(u64::try_from(idx).unwrap_or(0), hash);
                }
            }
            Ok(out)
        }

        async fn $read_entries(
            conn: &mut $conn_ty,
            from_seq: u64,
            limit: u32,
        ) -> Result<Vec<(u64, Result<AuditEntry, StoreError>)>, StoreError> {
            let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT {ENTRY_COLUMNS} FROM audit_entry WHERE seq >= $1 ORDER BY seq LIMIT $2"
            )))
            .bind(to_i64(from_seq))
            .bind(i64::from(limit))
            .fetch_all(&mut *conn)
            .await?;
            // Each row decoded on its own: one whose fields were altered so that they no
            // longer decode is named by its sequence number, not lost in a page's error.
            rows.iter()
                .map(|row| {
                    let seq: i64 = row.try_get("seq")?;
                    let seq = u64::try_from(seq).map_err(|_| {
                        StoreError::Corrupt(format!("audit entry {seq}: negative sequence number"))
                    })?;
                    Ok((
                        seq,
                        $decode(row).map_err(|e| match e {
                            e @ StoreError::Corrupt(_) => e,
                            e => StoreError::Corrupt(format!("audit entry {seq}: {e}")),
                        }),
                    ))
                })
                .collect()
        }

        async fn $read_by(
            conn: &mut $conn_ty,
            filter: AuditFilter,
            before: Option<u64>,
            limit: u32,
        ) -> Result<Vec<AuditEntry>, StoreError> {
            let (column, key) = match filter {
                AuditFilter::Recipient(id) => ("recipient", id),
                AuditFilter::Provider(id) => ("actor_hcp", id),
            };
            let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT {ENTRY_COLUMNS} FROM audit_entry WHERE {column} = $1 AND seq < $2 \
                 ORDER BY seq DESC LIMIT $3"
            )))
            .bind(key)
            .bind(before.map_or(i64::MAX, to_i64))
            .bind(i64::from(limit))
            .fetch_all(&mut *conn)
            .await?;
            rows.iter().map(|row| $decode(row)).collect()
        }

        fn $decode(row: &<$db as sqlx::Database>::Row) -> Result<AuditEntry, StoreError> {
            let seq: i64 = row.try_get("seq")?;
            let kind: String = row.try_get("actor_kind")?;
            let outcome: String = row.try_get("outcome")?;
            let bad = |what: &str| StoreError::Corrupt(format!("audit entry {seq}: {what}"));
            let Json(domains): Json<Vec<String>> = row.try_get("domains")?;
            let Json(record_ids): Json<Vec<Uuid>> = row.try_get("record_ids")?;
            let at: OffsetDateTime = row.try_get("at")?;
            let entry = NewAuditEntry {
                at,
                actor: Actor {
                    kind: ActorKind::parse(&kind).ok_or_else(|| bad("unknown actor kind"))?,
                    account: row.try_get("actor_account")?,
                    role: row.try_get("actor_role")?,
                    hcp: row.try_get("actor_hcp")?,
                    location: row.try_get("actor_location")?,
                },
                sdm: row.try_get("sdm")?,
                recipient: row.try_get("recipient")?,
                action: row.try_get("action")?,
                domains,
                record_ids,
                reason: row.try_get("reason")?,
                outcome: Outcome::parse(&outcome).ok_or_else(|| bad("unknown outcome"))?,
                denial_reason: row.try_get("denial_reason")?,
                consent_id: row.try_get("consent_id")?,
                episode_id: row.try_get("episode_id")?,
                client_addr: row.try_get("client_addr")?,
                request_id: row.try_get("request_id")?,
            };
            Ok(AuditEntry {
                seq: u64::try_from(seq).map_err(|_| bad("negative sequence number"))?,
                entry,
            })
        }
    };
}

define_backend!(
    batch_sqlite,
    restore_sqlite,
    read_entries_sqlite,
    read_by_sqlite,
    decode_sqlite,
    read_nodes_sqlite,
    insert_sqlite,
    SqliteConnection,
    sqlx::Sqlite,
    Sqlite,
    "BEGIN IMMEDIATE",
    None::<i64>
);
define_backend!(
    batch_postgres,
    restore_postgres,
    read_entries_postgres,
    read_by_postgres,
    decode_postgres,
    read_nodes_postgres,
    insert_postgres,
    PgConnection,
    sqlx::Postgres,
    Postgres,
    "BEGIN",
    Some(PG_AUDIT_LOCK)
);

impl Db {
    /// Entries from `from_seq` on, in order, at most `limit`.
    pub async fn audit_entries(
        &self,
        from_seq: u64,
        limit: u32,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        self.audit_entries_checked(from_seq, limit)
            .await?
            .into_iter()
            .map(|(_, e)| e)
            .collect()
    }

    /// As [`Db::audit_entries`], each entry with its sequence number and decoded on its own:
    /// an entry whose stored fields no longer decode is an `Err` at its place (for `audit
    /// verify`, which names it).
    pub async fn audit_entries_checked(
        &self,
        from_seq: u64,
        limit: u32,
    ) -> Result<Vec<(u64, Result<AuditEntry, StoreError>)>, StoreError> {
        match self {
            Db::Sqlite(pool, _) => {
                read_entries_sqlite(&mut *pool.acquire().await?, from_seq, limit).await
            }
            Db::Postgres(pool) => {
                read_entries_postgres(&mut *pool.acquire().await?, from_seq, limit).await
            }
        }
    }

    /// Entries about a recipient or by a provider's users, newest first, before `before`.
    pub async fn audit_entries_by(
        &self,
        filter: AuditFilter,
        before: Option<u64>,
        limit: u32,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        match self {
            Db::Sqlite(pool, _) => {
                read_by_sqlite(&mut *pool.acquire().await?, filter, before, limit).await
            }
            Db::Postgres(pool) => {
                read_by_postgres(&mut *pool.acquire().await?, filter, before, limit).await
            }
        }
    }

    /// The stored tree nodes with the given in-order indices (those that exist).
    pub async fn audit_nodes(&self, indices: &[u64]) -> Result<BTreeMap<u64, Hash>, StoreError> {
        match self {
            Db::Sqlite(pool, _) => read_nodes_sqlite(&mut *pool.acquire().await?, indices).await,
            Db::Postgres(pool) => read_nodes_postgres(&mut *pool.acquire().await?, indices).await,
        }
    }

    /// Number of entries stored (one more than the highest sequence number).
    pub async fn audit_size(&self) -> Result<u64, StoreError> {
        let size: i64 = crate::on_pool!(self, pool => {
            sqlx::query_scalar(AUDIT_SIZE)
                .fetch_one(pool)
                .await?
        });
        Ok(u64::try_from(size).unwrap_or(0))
    }

    /// Number of entry rows (differs from [`Db::audit_size`] when rows are missing).
    pub async fn audit_row_count(&self) -> Result<u64, StoreError> {
        let n: i64 = crate::on_pool!(self, pool => {
            sqlx::query_scalar("SELECT COUNT(*) FROM audit_entry").fetch_one(pool).await?
        });
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// The highest stored leaf position + 1, judged from the tree nodes (survives the deletion of
    /// entry rows).
    pub async fn audit_leaf_count(&self) -> Result<u64, StoreError> {
        // Leaves have even in-order indices; the last one is 2 * (count - 1).
        let max_leaf: Option<i64> = crate::on_pool!(self, pool => {
            sqlx::query_scalar("SELECT MAX(idx) FROM audit_node WHERE idx % 2 = 0")
                .fetch_one(pool)
                .await?
        });
        Ok(max_leaf.map_or(0, |i| u64::try_from(i / 2 + 1).unwrap_or(0)))
    }

    /// The hashes of an inclusion or consistency proof described by `plan`.
    pub async fn audit_proof(&self, plan: &ProofPlan) -> Result<Vec<Hash>, StoreError> {
        let needed: Vec<u64> = plan.needed().into_iter().collect();
        let nodes = self.audit_nodes(&needed).await?;
        plan.assemble(&nodes)
            .map_err(|e| StoreError::Corrupt(e.to_string()))
    }
}
