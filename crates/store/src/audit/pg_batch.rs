//! PostgreSQL's common batch in one round trip (ADR 0022): the function `ehrshare_audit_batch`
//! (migration 0024) takes the writers' lock and does in one statement what [`super::pool_batch`]
//! does in eight for a batch of entries with no change, no alert and no notice that must always
//! be sent: the consents re-checked, the access-notice days claimed, entries and tree nodes
//! inserted, committed with the statement.
//!
//! Why: every statement of the general path is a round trip whose answer waits for a core
//! behind the very readers the batch commits for; under load a batch of reads took tens of
//! milliseconds, and one writer at a time capped every audited read (PERFORMANCE.md, issue 28).
//!
//! The statement goes over the writer's own connection, not one of the pool's: the writer runs
//! on a thread of its own (see `Writer::spawn`), and a pooled connection's socket is driven by
//! the request threads' runtime, where its answer would wait behind the readers again.
//!
//! The function writes nothing and says why when the batch is not for it (the log grew in
//! another process, a consent was revoked, a day's first access has a notice to queue); the
//! writer then runs the batch on the general path, which handles each of those.

use ehrshare_core::audit::merkle::Frontier;
use sqlx::{Connection, PgConnection, PgPool};
use time::OffsetDateTime;
use uuid::Uuid;

use super::plan::{Job, Plan, Slot};
use super::rows::{PG_AUDIT_LOCK, json, to_i64, uuid_list};
use crate::error::StoreError;

/// The one statement; its text never changes, so it is prepared once per connection.
const CALL: &str = "SELECT ehrshare_audit_batch($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, \
     $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24, $25, $26, $27, $28, $29, $30, $31, $32, $33)";

/// Whether the batch holds only what the function does.
fn for_this_path(jobs: &[Job]) -> bool {
    jobs.iter().all(|j| {
        j.change.is_none()
            && j.more.is_empty()
            && j.read
                .as_ref()
                .is_none_or(|r| r.alert.is_none() && r.notice.as_ref().is_none_or(|n| !n.always))
    })
}

/// A batch ready to be sent: the plan and the batch's consents and notice days.
pub(super) struct Prepared {
    expected: u64,
    plan: Plan,
    consents: Vec<Uuid>,
    /// (recipient, provider, day, whether a read of the batch has a notice for it).
    days: Vec<(Uuid, Uuid, String, bool)>,
    /// Each row's actor as stored (`rows::stored_actor`).
    actors: Vec<StoredActor>,
}

/// An actor as a row stores it: its number, or its account, role and location.
type StoredActor = (Option<i32>, Option<Uuid>, Option<String>, Option<Uuid>);

/// Plans `jobs` on `frontier` (advancing it); `None` when the batch is not one for this path.
/// Nothing is sent: the jobs (whose changes are not `Sync`) are not held across the statement.
pub(super) fn prepare(
    frontier: &mut Frontier,
    jobs: &[Job],
    actors: &super::actors::Actors,
) -> Option<Prepared> {
    // An actor the writer has no number for yet is stored by the general path, which adds it.
    let known = jobs
        .iter()
        .flat_map(|j| std::iter::once(&j.entry).chain(&j.more))
        .all(|e| actors.knows(&e.actor));
    if !for_this_path(jobs) || !known {
        return None;
    }
    let expected = frontier.size();
    let mut plan = Plan::new(jobs.len());
    let mut consents: Vec<Uuid> = Vec::new();
    let mut days: Vec<(Uuid, Uuid, String, bool)> = Vec::new();
    for (i, job) in jobs.iter().enumerate() {
        if let Some(read) = &job.read {
            consents.extend(read.consent);
            if let Some(n) = &read.notice {
                days.push((n.recipient, n.hcp, n.day.clone(), !n.messages.is_empty()));
            }
        }
        plan.keep(frontier, i, job);
    }
    consents.sort_unstable();
    consents.dedup();
    // One claim a day, and it says whether any read of the batch has a notice for it.
    days.sort();
    days.dedup_by(|later, first| {
        let same = (&later.0, &later.1, &later.2) == (&first.0, &first.1, &first.2);
        if same {
            first.3 |= later.3;
        }
        same
    });
    let stored = plan
        .rows
        .iter()
        .map(|r| {
            let (id, account, role, location) = super::rows::stored_actor(&r.entry, actors);
            (id, account, role.map(str::to_owned), location)
        })
        .collect();
    Some(Prepared {
        actors: stored,
        expected,
        plan,
        consents,
        days,
    })
}

/// Commits a prepared batch in one statement and returns what became of each job; `None`
/// when the function found it not for this path, with nothing written.
pub(super) async fn commit(
    pool: &PgPool,
    own: &mut Own,
    prepared: Prepared,
) -> Result<Option<Vec<Slot>>, StoreError> {
    let conn = own.get(pool).await?;
    let Prepared {
        expected,
        plan,
        consents,
        days,
        actors,
    } = prepared;
    let rows = &plan.rows;
    let column = |f: &dyn Fn(&ehrshare_core::audit::NewAuditEntry) -> Option<Uuid>| {
        rows.iter().map(|r| f(&r.entry)).collect::<Vec<_>>()
    };
    let text = |f: &dyn Fn(&ehrshare_core::audit::NewAuditEntry) -> Option<String>| {
        rows.iter().map(|r| f(&r.entry)).collect::<Vec<_>>()
    };
    let seqs: Vec<i64> = rows.iter().map(|r| to_i64(r.seq)).collect();
    let ats: Vec<OffsetDateTime> = rows.iter().map(|r| r.entry.at).collect();
    // Empty lists as NULL (ADR 0023).
    let domains = rows
        .iter()
        .map(|r| {
            let list = super::rows::stored_domains(&r.entry.domains).0;
            if list.is_empty() {
                Ok(None)
            } else {
                json(&list).map(Some)
            }
        })
        .collect::<Result<Vec<_>, _>>()?;
    let record_ids: Vec<Option<String>> = rows
        .iter()
        .map(|r| (!r.entry.record_ids.is_empty()).then(|| uuid_list(&r.entry.record_ids)))
        .collect();
    let codes: Vec<(&str, &str, &str, Option<i32>)> = rows
        .iter()
        .map(|r| super::rows::stored_codes(&r.entry))
        .collect();
    let code = |i: usize| {
        codes
            .iter()
            .map(|c| [c.0, c.1, c.2][i].to_owned())
            .collect::<Vec<String>>()
    };
    let answer: Result<String, sqlx::Error> = sqlx::query_scalar(CALL)
        .bind(to_i64(expected))
        .bind(&consents)
        .bind(days.iter().map(|d| d.0).collect::<Vec<_>>())
        .bind(days.iter().map(|d| d.1).collect::<Vec<_>>())
        .bind(days.iter().map(|d| d.2.clone()).collect::<Vec<_>>())
        .bind(days.iter().map(|d| d.3).collect::<Vec<_>>())
        .bind(seqs)
        .bind(ats)
        .bind(code(0))
        .bind(actors.iter().map(|a| a.1).collect::<Vec<_>>())
        .bind(actors.iter().map(|a| a.2.clone()).collect::<Vec<_>>())
        .bind(column(&|e| e.actor.hcp))
        .bind(actors.iter().map(|a| a.3).collect::<Vec<_>>())
        .bind(column(&|e| e.sdm))
        .bind(column(&|e| e.recipient))
        .bind(code(1))
        .bind(domains)
        .bind(record_ids)
        .bind(text(&|e| e.reason.clone()))
        .bind(code(2))
        .bind(text(&|e| e.denial_reason.clone()))
        .bind(column(&|e| e.consent_id))
        .bind(column(&|e| e.episode_id))
        .bind(text(&|e| {
            super::rows::stored_client(e).0.map(str::to_owned)
        }))
        .bind(column(&|e| e.request_id))
        .bind(
            rows.iter()
                .map(|r| r.entry.disclosed.as_ref().map(|d| d.to_stored()))
                .collect::<Vec<_>>(),
        )
        .bind(
            rows.iter()
                .map(|r| ehrshare_core::audit::merkle::leaf_tag(&r.leaf_hash()))
                .collect::<Vec<_>>(),
        )
        .bind(
            rows.iter()
                .map(|r| super::rows::stored_domains(&r.entry.domains).1)
                .collect::<Vec<_>>(),
        )
        .bind(codes.iter().map(|c| c.3).collect::<Vec<_>>())
        .bind(actors.iter().map(|a| a.0).collect::<Vec<_>>())
        .bind(
            rows.iter()
                .map(|r| super::rows::stored_client(&r.entry).1)
                .collect::<Vec<_>>(),
        )
        .bind(
            plan.nodes
                .iter()
                .map(|(i, _)| to_i64(*i))
                .collect::<Vec<_>>(),
        )
        .bind(
            plan.nodes
                .iter()
                .map(|(_, h)| h.to_vec())
                .collect::<Vec<_>>(),
        )
        .fetch_one(&mut *conn)
        .await;
    let answer = match answer {
        Ok(answer) => answer,
        Err(e) => {
            // The connection is never reused, whatever state it reports (issue 22): it may
            // have been lost, or the statement may have failed at its commit. Which is it?
            own.forget();
            return settle(pool, own, plan, e).await;
        }
    };
    match answer.as_str() {
        "committed" => Ok(Some(plan.slots)),
        // Not for this path after all; nothing was written.
        "stale" | "revoked" | "notices" => Ok(None),
        other => Err(StoreError::Corrupt(format!(
            "ehrshare_audit_batch answered {other:?}"
        ))),
    }
}

/// After the statement failed: whether the batch committed all the same (the answer was lost
/// with the connection), asked on a new connection under the writers' lock, so that a
/// statement still running on the server has finished first. The function writes all or
/// nothing, so the batch committed exactly when the entry at its first place is its first
/// entry (compared by leaf hash; a leaf is no longer stored as a tree node, ADR 0023). Committed: the batch's slots, acknowledged as they should be. Not committed: `None`,
/// and the general path runs the batch. Not knowable (no connection): the statement's error,
/// and every caller is refused (what was committed is then logged without an answer, never
/// the other way round).
async fn settle(
    pool: &PgPool,
    own: &mut Own,
    plan: Plan,
    failed: sqlx::Error,
) -> Result<Option<Vec<Slot>>, StoreError> {
    let Some(first) = plan.rows.first() else {
        return Err(failed.into());
    };
    let leaf = first.leaf_hash();
    let stored = async {
        let conn = own.get(pool).await?;
        let mut tx = conn.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(PG_AUDIT_LOCK)
            .execute(&mut *tx)
            .await?;
        let stored = super::rows::read_entries_postgres(&mut tx, first.seq, 1).await?;
        tx.commit().await?;
        // A row there that does not decode is not knowable as ours or not: an error, never
        // "not committed" (the batch would be written twice).
        let stored = match stored.into_iter().find(|(seq, _)| *seq == first.seq) {
            Some((_, Ok(e))) => Some(e.leaf_hash()),
            Some((_, Err(e))) => return Err(e),
            None => None,
        };
        Ok::<_, StoreError>(stored)
    }
    .await;
    match stored {
        Ok(Some(hash)) if hash == leaf => {
            tracing::warn!(error = %failed, "an audit batch's answer was lost; it had committed");
            Ok(Some(plan.slots))
        }
        Ok(_) => {
            tracing::warn!(error = %failed, "an audit batch failed uncommitted; the general path runs it");
            Ok(None)
        }
        Err(e) => {
            own.forget();
            tracing::debug!(error = %e, "whether an audit batch committed is not known");
            Err(failed.into())
        }
    }
}

/// The writer's own connection (ADR 0022): opened when none is open, within the pool's acquire
/// timeout; checked with a ping when it has been idle (as the pool checks its connections
/// before use), so that one lost while idle (a restarted server, a dropped link) is replaced
/// instead of failing a batch; closed once the pool is closed (`Db::close` ends the writer's
/// use of the database as it ends everyone's).
#[derive(Debug, Default)]
pub(super) struct Own {
    conn: Option<PgConnection>,
    used: Option<std::time::Instant>,
}

/// How long the writer's connection may sit idle before it is pinged on its next use.
const IDLE_BEFORE_PING: std::time::Duration = std::time::Duration::from_secs(1);

impl Own {
    /// The connection, open and (if it sat idle) answering.
    pub(super) async fn get(&mut self, pool: &PgPool) -> Result<&mut PgConnection, StoreError> {
        if pool.is_closed() {
            if let Some(conn) = self.conn.take() {
                let _ = conn.close().await;
            }
            return Err(StoreError::Unavailable(sqlx::Error::PoolClosed));
        }
        let idle = self.used.is_none_or(|at| at.elapsed() > IDLE_BEFORE_PING);
        if idle
            && let Some(conn) = self.conn.as_mut()
            && conn.ping().await.is_err()
        {
            self.conn = None;
        }
        self.used = Some(std::time::Instant::now());
        match &mut self.conn {
            Some(conn) => Ok(conn),
            empty => {
                let timeout = pool.options().get_acquire_timeout();
                let conn = tokio::time::timeout(
                    timeout,
                    PgConnection::connect_with(&pool.connect_options()),
                )
                .await
                .map_err(|_| StoreError::Unavailable(sqlx::Error::PoolTimedOut))??;
                Ok(empty.insert(conn))
            }
        }
    }

    /// Forgets the connection after a failure: never reused (issue 22).
    pub(super) fn forget(&mut self) {
        self.conn = None;
    }
}
