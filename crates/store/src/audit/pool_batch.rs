//! The audit writer's batch through sqlx, on either backend: any batch, changes included
//! (each in a savepoint), and on PostgreSQL under an advisory lock shared by every process.

use ehrshare_core::audit::merkle::Frontier;
use sqlx::{Acquire, Connection, PgConnection, SqliteConnection};

use super::actors::{Actors, resolve_postgres, resolve_sqlite};
use super::plan::{Job, Plan, Slot, consents_before_change};
use super::read_effects::{apply_read_effects, unrevoked_consents};
use super::rows::{
    AUDIT_SIZE, PG_AUDIT_LOCK, insert_postgres, insert_sqlite, restore_postgres, restore_sqlite,
};
use crate::db::{Conn, Db, Pool};
use crate::error::StoreError;

/// Commits `jobs` in one transaction on a connection of the pool; what became of each. A
/// batch that failed may have failed at its COMMIT: its connection is never reused, whatever
/// state it reports (issue 22). Contention is passed on as such (the writer runs the batch
/// again) only while no change has run: after, as unavailability.
///
/// `own`: the writer's own PostgreSQL connection, used instead of the pool's when the writer
/// has one (ADR 0022: the writer's thread never drives a pooled connection).
pub(super) async fn batch(
    db: &Db,
    own: Option<&mut super::pg_batch::Own>,
    frontier: &mut Frontier,
    jobs: &mut [Job],
    actors: &mut Actors,
) -> Result<Vec<Slot>, StoreError> {
    let changes = jobs.iter().filter(|j| j.change.is_some()).count();
    let result = run(db, own, frontier, jobs, actors).await;
    match result {
        Err(StoreError::Busy(e))
            if jobs.iter().filter(|j| j.change.is_some()).count() < changes =>
        {
            Err(StoreError::Unavailable(e))
        }
        other => other,
    }
}

async fn run(
    db: &Db,
    own: Option<&mut super::pg_batch::Own>,
    frontier: &mut Frontier,
    jobs: &mut [Job],
    actors: &mut Actors,
) -> Result<Vec<Slot>, StoreError> {
    if let (Pool::Postgres(pool), Some(own)) = (db.pool(), own) {
        let conn = own.get(pool).await?;
        let result = batch_postgres(conn, frontier, jobs, actors).await;
        if result.is_err() {
            own.forget();
        }
        return result;
    }
    match db.pool() {
        Pool::Sqlite(pool) => {
            let mut conn = pool.acquire().await?;
            let result = batch_sqlite(&mut conn, frontier, jobs, actors).await;
            if result.is_err() {
                conn.close_on_drop();
            }
            result
        }
        Pool::Postgres(pool) => {
            let mut conn = pool.acquire().await?;
            let result = batch_postgres(&mut conn, frontier, jobs, actors).await;
            if result.is_err() {
                conn.close_on_drop();
            }
            result
        }
    }
}

/// Generates the batch per connection type. Written once; compiled per backend.
macro_rules! define_batch {
    ($batch:ident, $restore:ident, $insert:ident, $resolve:ident, $conn_ty:ty, $wrap:ident, $begin:expr, $lock:expr) => {
        async fn $batch(
            conn: &mut $conn_ty,
            frontier: &mut Frontier,
            jobs: &mut [Job],
            actors: &mut Actors,
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
                // Another process appended since our last batch: take its tree as ours. Fewer
                // entries than the writer wrote: an older copy of the database, whose actor
                // table need not hold the numbers the writer knows.
                let restored = $restore(&mut *tx).await?;
                if restored.size() < frontier.size() {
                    actors.forget();
                }
                *frontier = restored;
            }
            let mut plan = Plan::new(jobs.len());
            // Which consents of the reads are unrevoked, as of the jobs before them: asked
            // once for the reads up to the next change (a change may be a revocation).
            let mut live: Option<std::collections::HashSet<uuid::Uuid>> = None;
            for i in 0..jobs.len() {
                if let Some(consent) = jobs[i].consent() {
                    let known = match &mut live {
                        Some(known) => known,
                        None => {
                            let wanted = consents_before_change(&jobs[i..]);
                            live.insert(unrevoked_consents(Conn::$wrap(&mut *tx), &wanted).await?)
                        }
                    };
                    if !known.contains(&consent) {
                        plan.refuse(StoreError::ConsentRevoked);
                        continue;
                    }
                }
                if let Some(change) = jobs[i].change.take() {
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
                            plan.refuse(e);
                            continue;
                        }
                    }
                }
                plan.keep(frontier, i, &jobs[i]);
            }
            let effects = plan
                .reads
                .iter()
                .filter_map(|&i| jobs[i].read.as_ref())
                .collect();
            apply_read_effects(Conn::$wrap(&mut *tx), effects).await?;
            let missing = actors.missing(&plan.rows);
            $resolve(&mut tx, actors, missing).await?;
            $insert(&mut tx, &plan.rows, &plan.nodes, actors).await?;
            tx.commit().await?;
            Ok(plan.slots)
        }
    };
}

define_batch!(
    batch_sqlite,
    restore_sqlite,
    insert_sqlite,
    resolve_sqlite,
    SqliteConnection,
    Sqlite,
    "BEGIN IMMEDIATE",
    None::<i64>
);
define_batch!(
    batch_postgres,
    restore_postgres,
    insert_postgres,
    resolve_postgres,
    PgConnection,
    Postgres,
    "BEGIN",
    Some(PG_AUDIT_LOCK)
);
