//! The SQLite audit writer's common batch, run in place on a connection of its own (ADR 0005,
//! [`crate::in_place`]).
//!
//! Why: through sqlx, one batch of read entries is about seven statements, each handed to the
//! connection's worker thread and its answer handed back; under load every hand-over waits
//! for a core, and the requests wait for the batch (ADR 0005). Here the writer task
//! runs the batch itself, on the tokio thread it is on: no hand-over at all. The thread is
//! blocked for the batch, `fsync` included (about 0.1 ms here), as ADR 0004's reads block it.
//!
//! What runs here is only the batch that needs nothing else: entries, with or without read
//! effects (the consent re-check and already-claimed access-notice days). A batch with a
//! change (a sqlx closure), an alert, or a notice to send returns `None` before anything
//! commits, and the writer runs it on the pool as before; so does a batch that finds the log
//! grown by another writer (the pool path restores the tree). The statements are the pool
//! path's, one row at a time: in place a cached statement's step costs microseconds, and a
//! text per batch size would not stay in the statement cache.
//!
//! Values are encoded as sqlx encodes them for SQLite (UUIDs as 16-byte blobs, times as
//! [`Ts`]'s text, lists as JSON text), so a row reads back the same whichever path wrote it;
//! `ehrshare audit verify` recomputes every entry's hash from the decoded row.

use ehrshare_core::audit::AuditEntry;
use ehrshare_core::audit::merkle::{Frontier, Hash};
use rusqlite::{Connection, ToSql, TransactionBehavior, params};

use super::plan::{Job, Plan, Slot};
use super::read_effects::{claim_notice_days_sql, unrevoked_consents_sql};
use super::rows::{AUDIT_SIZE, EntryTable, json, to_i64, uuid_list};
use crate::error::StoreError;
use crate::timestamp::Ts;

/// The statements' texts, made once (not on every batch).
struct Statements {
    unrevoked: String,
    claim: String,
    entry: String,
}

static SQL: std::sync::LazyLock<Statements> = std::sync::LazyLock::new(|| Statements {
    unrevoked: unrevoked_consents_sql(1),
    claim: claim_notice_days_sql(1),
    entry: format!(
        "{}VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, \
         ?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25)",
        EntryTable::Audit.insert_prefix()
    ),
});

/// Whether the batch holds only what [`batch`] does.
fn in_place(jobs: &[Job]) -> bool {
    jobs.iter().all(|j| {
        j.change.is_none()
            && j.read
                .as_ref()
                .is_none_or(|r| r.alert.is_none() && r.notice.as_ref().is_none_or(|n| !n.always))
    })
}

/// Commits `jobs` in one transaction and returns what became of each, as the pool path does;
/// `None` when the batch is not one for this path, with nothing committed. `frontier` may
/// have been advanced even then, or on an error: the caller restores it.
pub(super) fn batch(
    conn: &mut Connection,
    frontier: &mut Frontier,
    jobs: &[Job],
    actors: &mut super::actors::Actors,
) -> Result<Option<Vec<Slot>>, StoreError> {
    if !in_place(jobs) {
        return Ok(None);
    }
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let size: i64 = tx.prepare_cached(AUDIT_SIZE)?.query_row([], |r| r.get(0))?;
    if u64::try_from(size).ok() != Some(frontier.size()) {
        return Ok(None);
    }
    let mut plan = Plan::new(jobs.len());
    {
        // The pool path's statements for one consent and one day (`$N` bound by name).
        let mut unrevoked = tx.prepare_cached(&SQL.unrevoked)?;
        let mut claim = tx.prepare_cached(&SQL.claim)?;
        // The jobs are only read: if the batch turns out not to be for this path, the pool
        // path gets them whole.
        for (i, job) in jobs.iter().enumerate() {
            // No change is in the batch, so each consent is judged as of the transaction's
            // start, after every earlier batch (a revocation included) committed.
            if let Some(consent) = job.consent()
                && !unrevoked.exists([("$1", &consent as &dyn ToSql)].as_slice())?
            {
                plan.refuse(StoreError::ConsentRevoked);
                continue;
            }
            if let Some(n) = job.read.as_ref().and_then(|r| r.notice.as_ref()) {
                let day: [(&str, &dyn ToSql); 3] =
                    [("$1", &n.recipient), ("$2", &n.hcp), ("$3", &n.day)];
                let fresh = claim.exists(day.as_slice())?;
                if fresh && !n.messages.is_empty() {
                    // The day's first access: its notice goes through the outbox, which the
                    // pool path writes.
                    return Ok(None);
                }
            }
            plan.keep(frontier, i, job);
        }
        super::actors::resolve_in_place(&tx, actors, actors.missing(&plan.rows))?;
        insert(&tx, &plan.rows, &plan.nodes, actors)?;
    }
    tx.commit()?;
    Ok(Some(plan.slots))
}

/// Inserts the entries and tree nodes, a row at a time through cached statements.
fn insert(
    conn: &Connection,
    rows: &[AuditEntry],
    nodes: &[(u64, Hash)],
    actors: &super::actors::Actors,
) -> Result<(), StoreError> {
    let mut entry = conn.prepare_cached(&SQL.entry)?;
    for row in rows {
        let e = &row.entry;
        let codes = super::rows::stored_codes(e);
        let (actor_ref, account, role, location) = super::rows::stored_actor(e, actors);
        entry.execute(params![
            to_i64(row.seq),
            Ts(e.at),
            codes.0,
            account,
            role,
            e.actor.hcp,
            location,
            e.sdm,
            e.recipient,
            codes.1,
            json(&super::rows::stored_domains(&e.domains).0)?,
            uuid_list(&e.record_ids),
            e.reason.as_deref(),
            codes.2,
            e.denial_reason.as_deref(),
            e.consent_id,
            e.episode_id,
            super::rows::stored_client(e).0,
            e.request_id,
            e.disclosed
                .as_ref()
                .map(ehrshare_core::audit::Disclosed::to_stored),
            ehrshare_core::audit::merkle::leaf_tag(&row.leaf_hash()),
            super::rows::stored_domains(&e.domains).1,
            codes.3,
            actor_ref,
            super::rows::stored_client(e).1,
        ])?;
    }
    let mut node = conn.prepare_cached("INSERT INTO audit_node (idx, hash) VALUES (?1, ?2)")?;
    for (idx, hash) in nodes {
        node.execute(params![to_i64(*idx), hash.as_slice()])?;
    }
    Ok(())
}
