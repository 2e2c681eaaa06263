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
//!
//! Inside: the writer (here) plans each batch once ([`plan`]) and has it committed by one of
//! three drivers: [`in_place_batch`] for SQLite's common batch (ADR 0005), [`pg_batch`] for
//! PostgreSQL's (one statement, ADR 0022), [`pool_batch`] for any other. [`read_effects`] is what a permitted read obliges; [`rows`] the tables.

mod actors;
mod codes;
mod head;
mod in_place_batch;
mod pg_batch;
mod plan;
mod pool_batch;
mod read_effects;
mod rows;
mod stats;

use std::sync::Arc;
use std::sync::atomic::Ordering;

use ehrshare_core::audit::NewAuditEntry;
use ehrshare_core::audit::merkle::Frontier;
use tokio::sync::{mpsc, oneshot, watch};

use crate::db::{Change, Db, Pool};
use crate::error::StoreError;
use crate::retry::{RetryPolicy, with_retry};
use plan::{Job, Slot};

pub use head::{Appended, TreeHead};
pub use read_effects::{NoticeClaim, ReadEffects, unrevoked_consents};
pub use rows::{AuditFilter, AuditSearch, LogNarrowing};
pub(crate) use rows::{EntryTable, insert_entries_postgres, insert_entries_sqlite};
pub use stats::{AuditStats, WriterFailure};

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

/// The handle callers append through. Cheap to clone.
#[derive(Debug, Clone)]
pub struct AuditLog {
    jobs: mpsc::Sender<Job>,
    syncs: mpsc::Sender<SyncReply>,
    head: watch::Receiver<TreeHead>,
    stats: Arc<AuditStats>,
}

impl AuditLog {
    /// Restores the tree's right edge from the database and starts the writer task.
    pub async fn open(db: Db, options: AuditOptions) -> Result<AuditLog, StoreError> {
        let frontier = match db.pool() {
            Pool::Sqlite(pool) => rows::restore_sqlite(&mut *pool.acquire().await?).await?,
            Pool::Postgres(pool) => rows::restore_postgres(&mut *pool.acquire().await?).await?,
        };
        let (jobs, rx) = mpsc::channel(options.queue.max(1));
        let (syncs, sync_rx) = mpsc::channel(64);
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
            own: pg_batch::Own::default(),
            own_thread: false,
            actors: actors::Actors::default(),
            batch_started: std::time::Instant::now(),
        };
        writer.spawn(rx, sync_rx).await?;
        Ok(AuditLog {
            jobs,
            syncs,
            head,
            stats,
        })
    }

    /// Appends an entry and waits until it is committed.
    pub async fn append(&self, entry: NewAuditEntry) -> Result<Appended, StoreError> {
        self.submit(entry, Vec::new(), None, None).await
    }

    /// Runs `change` and appends `entry` in one transaction; waits until both are committed.
    /// If the change fails, its error is returned and neither is kept.
    pub async fn append_with(
        &self,
        entry: NewAuditEntry,
        change: Change,
    ) -> Result<Appended, StoreError> {
        self.submit(entry, Vec::new(), Some(change), None).await
    }

    /// Runs `change` and appends `entries` (at least one) in one transaction, on consecutive
    /// sequence numbers; waits until all are committed. If the change fails, its error is
    /// returned and nothing is kept. Answers the first entry's position.
    pub async fn append_all_with(
        &self,
        mut entries: Vec<NewAuditEntry>,
        change: Change,
    ) -> Result<Appended, StoreError> {
        if entries.is_empty() {
            return Err(StoreError::Corrupt("an append of no entries".to_owned()));
        }
        let first = entries.remove(0);
        self.submit(first, entries, Some(change), None).await
    }

    /// Appends the entry of a permitted read with what it obliges ([`ReadEffects`]); waits
    /// until both are committed.
    pub async fn append_read(
        &self,
        entry: NewAuditEntry,
        effects: ReadEffects,
    ) -> Result<Appended, StoreError> {
        self.submit(entry, Vec::new(), None, Some(effects)).await
    }

    async fn submit(
        &self,
        entry: NewAuditEntry,
        more: Vec<NewAuditEntry>,
        change: Option<Change>,
        read: Option<ReadEffects>,
    ) -> Result<Appended, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send(Job {
                entry,
                more,
                change,
                read,
                reply,
            })
            .await
            .map_err(|_| StoreError::AuditClosed)?;
        answer.await.map_err(|_| StoreError::AuditClosed)?
    }

    /// The tree head as committed now, by whichever process: another server process over
    /// the same PostgreSQL database may have appended since this one last did, and this
    /// process's head follows only its own batches until then (issue 28, item 6). Read under
    /// the writers' lock (on SQLite, in one read transaction: a one-off command may append
    /// beside the server); the writer takes the tree as its own, and every subscriber sees it.
    pub async fn sync(&self) -> Result<TreeHead, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.syncs
            .send(reply)
            .await
            .map_err(|_| StoreError::AuditClosed)?;
        answer.await.map_err(|_| StoreError::AuditClosed)?
    }

    /// The last tree head this process committed or synced ([`AuditLog::sync`]).
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
    /// PostgreSQL: the writer's own connection for its common batch ([`pg_batch`]), opened
    /// when first needed and dropped after any error.
    own: pg_batch::Own,
    /// Whether the writer runs on a thread of its own ([`Writer::spawn`]): it then never
    /// drives a pooled connection, whose socket belongs to the request threads' runtime.
    own_thread: bool,
    /// The actor numbers it knows (`actors`, ADR 0023).
    actors: actors::Actors,
    /// When the batch in progress began: its time is counted before any caller is answered,
    /// so that a caller who reads the counters after its answer finds its batch in them.
    batch_started: std::time::Instant,
}

impl Writer {
    /// Starts the writer. On PostgreSQL it runs on a thread and runtime of its own (ADR 0022):
    /// on the request threads' runtime each of its round trips waited behind every ready
    /// reader task before the writer saw the answer, and every reader waits for the writer.
    /// On SQLite the common batch runs in place without yielding (ADR 0005), so the writer
    /// stays a task.
    async fn spawn(
        mut self,
        rx: mpsc::Receiver<Job>,
        syncs: mpsc::Receiver<SyncReply>,
    ) -> Result<(), StoreError> {
        if self.db.in_place().is_some() || !matches!(self.db.pool(), Pool::Postgres(_)) {
            tokio::spawn(self.run(rx, syncs));
            return Ok(());
        }
        self.own_thread = true;
        let (started, start) = oneshot::channel();
        std::thread::Builder::new()
            .name("audit-writer".to_owned())
            .spawn(move || {
                match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(runtime) => {
                        let _ = started.send(Ok(()));
                        runtime.block_on(self.run(rx, syncs));
                    }
                    Err(e) => {
                        let _ = started.send(Err(e));
                    }
                }
            })
            .map_err(|e| StoreError::Unavailable(sqlx::Error::Io(e)))?;
        match start.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(StoreError::Unavailable(sqlx::Error::Io(e))),
            Err(_) => Err(StoreError::AuditClosed),
        }
    }

    async fn run(mut self, mut rx: mpsc::Receiver<Job>, mut syncs: mpsc::Receiver<SyncReply>) {
        // Ends when every AuditLog handle is dropped and the queue is drained. While the
        // writer cannot commit, it probes every PROBE_EVERY without waiting for work, so that
        // readiness recovers even when no request comes (a load balancer sends none to an
        // instance that is not ready).
        let mut syncs_open = true;
        loop {
            let failing = self.stats.is_failing();
            let next = tokio::select! {
                reply = syncs.recv(), if syncs_open => {
                    match reply {
                        Some(reply) => {
                            let head = self.sync().await;
                            let _ = reply.send(head);
                        }
                        None => syncs_open = false,
                    }
                    continue;
                }
                next = rx.recv() => next,
                () = tokio::time::sleep(PROBE_EVERY), if failing => {
                    self.probe().await;
                    continue;
                }
            };
            let Some(first) = next else { break };
            // Let callers that are about to submit do so: a few more entries in this batch
            // cost little, a batch of their own costs a whole commit. (On its own thread,
            // PostgreSQL's writer has no caller on its runtime: there this does nothing.)
            tokio::task::yield_now().await;
            tokio::task::yield_now().await;
            let mut jobs = vec![first];
            while jobs.len() < self.max_batch {
                match rx.try_recv() {
                    Ok(job) => jobs.push(job),
                    Err(_) => break,
                }
            }
            self.batch_started = std::time::Instant::now();
            self.batch(jobs).await;
        }
    }

    /// [`AuditLog::sync`]: on PostgreSQL, the tree as committed now becomes the writer's.
    async fn sync(&mut self) -> Result<TreeHead, StoreError> {
        let size = self.frontier.size();
        if let Pool::Sqlite(pool) = self.db.pool() {
            let mut conn = pool.acquire().await?;
            if let Some(frontier) = rows::latest_sqlite(&mut conn, size).await? {
                if frontier.size() < self.frontier.size() {
                    self.actors.forget();
                }
                self.frontier = frontier;
                self.head.send_replace(TreeHead {
                    size: self.frontier.size(),
                    root: self.frontier.root(),
                });
            }
        }
        if let Pool::Postgres(pool) = self.db.pool() {
            let latest = if self.own_thread {
                let conn = self.own.get(pool).await?;
                let latest = rows::latest_postgres(conn, size).await;
                if latest.is_err() {
                    self.own.forget();
                }
                latest?
            } else {
                let mut conn = pool.acquire().await?;
                rows::latest_postgres(&mut conn, size).await?
            };
            if let Some(frontier) = latest {
                // Fewer entries than it wrote: an older copy of the database, whose actor
                // table need not hold the numbers it knows.
                if frontier.size() < self.frontier.size() {
                    self.actors.forget();
                }
                self.frontier = frontier;
                self.head.send_replace(TreeHead {
                    size: self.frontier.size(),
                    root: self.frontier.root(),
                });
            }
        }
        Ok(*self.head.borrow())
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
        let result: Result<(), StoreError> = match self.db.pool() {
            // On its own thread the writer probes over its own connection, as it writes.
            Pool::Postgres(pool) if self.own_thread => match self.own.get(pool).await {
                Ok(conn) => {
                    let done = sqlx::query(PROBE)
                        .bind("audit_writer_probe")
                        .bind(&value)
                        .execute(&mut *conn)
                        .await;
                    if done.is_err() {
                        self.own.forget();
                    }
                    done.map(drop).map_err(StoreError::from)
                }
                Err(e) => Err(e),
            },
            _ => crate::on_pool!(&self.db, pool => {
                sqlx::query(PROBE)
                    .bind("audit_writer_probe")
                    .bind(&value)
                    .execute(pool)
                    .await
                    .map(drop)
                    .map_err(StoreError::from)
            }),
        };
        match result {
            Ok(()) => self.stats.note_success(),
            Err(e) => self.stats.note_failure(&e),
        }
    }

    /// Commits a batch. On a SQLite file the common batch runs in place, on this thread
    /// (ADR 0005), once: contention past the busy timeout is not waited out again here, on a
    /// thread that serves requests, but handed to the pool path. Through the pool each
    /// attempt is a whole unit of work, run again on contention ([`with_retry`], ADR 0012)
    /// while none of its changes has run (a change runs once, and one that meets contention
    /// fails alone).
    async fn batch(&mut self, jobs: Vec<Job>) {
        let snapshot = self.frontier.clone();
        if let Some(in_place) = self.db.in_place() {
            let (frontier, actors) = (&mut self.frontier, &mut self.actors);
            match in_place.write(|conn| in_place_batch::batch(conn, frontier, &jobs, actors)) {
                Some(Ok(Some(slots))) => {
                    self.stats.common_path.fetch_add(1, Ordering::Relaxed);
                    return self.finish(jobs, snapshot, Ok(slots));
                }
                Some(Err(err)) if !err.is_contention() => {
                    return self.finish(jobs, snapshot, Err(err));
                }
                // Not a batch for this path, contention, or the database is closed: through
                // the pool.
                Some(Err(_)) | Some(Ok(None)) | None => {}
            }
        }
        self.actors.abandon();
        if let Pool::Postgres(pool) = self.db.pool() {
            // A new actor is added on its own, committed at once, so that the batch stays on
            // the common path (an actor row no entry names is harmless); if that fails, the
            // general path adds it in its transaction.
            let missing = self.actors.missing_of(
                jobs.iter()
                    .flat_map(|j| std::iter::once(&j.entry).chain(&j.more))
                    .map(|e| &e.actor),
            );
            if !missing.is_empty()
                && let Ok(conn) = self.own.get(pool).await
            {
                match actors::resolve_postgres(conn, &mut self.actors, missing).await {
                    Ok(()) => self.actors.commit(),
                    Err(_) => {
                        self.actors.abandon();
                        self.own.forget();
                    }
                }
            }
        }
        if let Pool::Postgres(pool) = self.db.pool()
            && let Some(prepared) = pg_batch::prepare(&mut self.frontier, &jobs, &self.actors)
        {
            match pg_batch::commit(pool, &mut self.own, prepared).await {
                Ok(Some(slots)) => {
                    self.stats.common_path.fetch_add(1, Ordering::Relaxed);
                    return self.finish(jobs, snapshot, Ok(slots));
                }
                Err(err) if !err.is_contention() => {
                    return self.finish(jobs, snapshot, Err(err));
                }
                // Not for this path after all (nothing was written), or contention: through
                // the general path, from the tree as it was.
                Ok(None) | Err(_) => self.frontier = snapshot.clone(),
            }
        }
        // What an attempt works on: the tree (reset to the snapshot at each attempt) and the
        // jobs, whose changes an attempt may consume.
        // On its own thread the writer uses its own connection here too (ADR 0022).
        let own = self.own_thread.then(|| std::mem::take(&mut self.own));
        let actors = std::mem::take(&mut self.actors);
        let state = tokio::sync::Mutex::new((snapshot.clone(), jobs, own, actors));
        let (db, state_ref, snapshot_ref) = (&self.db, &state, &snapshot);
        let result = with_retry(RetryPolicy::default(), move || async move {
            let mut guard = state_ref.lock().await;
            let (frontier, jobs, own, actors) = &mut *guard;
            *frontier = snapshot_ref.clone();
            actors.abandon();
            pool_batch::batch(db, own.as_mut(), frontier, jobs, actors).await
        })
        .await;
        let (frontier, jobs, own, actors) = state.into_inner();
        self.own = own.unwrap_or_default();
        self.frontier = frontier;
        self.actors = actors;
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
        self.stats.count_batch(self.batch_started.elapsed());
        match result {
            Ok(slots) => {
                self.actors.commit();
                self.stats.note_success();
                let head = TreeHead {
                    size: self.frontier.size(),
                    root: self.frontier.root(),
                };
                let committed: usize = slots
                    .iter()
                    .zip(&jobs)
                    .filter(|(s, _)| matches!(s, Slot::Assigned(_)))
                    .map(|(_, job)| 1 + job.more.len())
                    .sum();
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
                // Nothing was committed: forget what this batch added to the tree, and every
                // actor number (one may be stale: an actor table put back under a running
                // writer fails a batch on its foreign key, never names the wrong actor, and
                // the next batch looks the numbers up again).
                self.frontier = snapshot;
                self.actors.forget();
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

/// Where the writer answers an [`AuditLog::sync`].
type SyncReply = oneshot::Sender<Result<TreeHead, StoreError>>;

/// How often a writer that cannot commit tries again on its own.
const PROBE_EVERY: std::time::Duration = std::time::Duration::from_secs(2);
