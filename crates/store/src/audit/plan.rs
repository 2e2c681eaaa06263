//! A batch of the audit writer, planned once whichever driver commits it (`pool_batch` through
//! sqlx, `in_place_batch` on SQLite's in-place connection): which jobs are kept, their
//! sequence numbers, and the Merkle tree's new nodes.

use ehrshare_core::audit::merkle::{Frontier, Hash};
use ehrshare_core::audit::{AuditEntry, NewAuditEntry};
use tokio::sync::oneshot;
use uuid::Uuid;

use super::head::Appended;
use super::read_effects::ReadEffects;
use crate::db::Change;
use crate::error::StoreError;

/// One caller's append, waiting for the writer.
pub(super) struct Job {
    pub(super) entry: NewAuditEntry,
    /// Entries committed with `entry` and its change, in order, on the next sequence
    /// numbers (a FHIR transaction's deposits: all or none).
    pub(super) more: Vec<NewAuditEntry>,
    pub(super) change: Option<Change>,
    pub(super) read: Option<ReadEffects>,
    pub(super) reply: oneshot::Sender<Result<Appended, StoreError>>,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Job")
            .field("action", &self.entry.action)
            .finish()
    }
}

impl Job {
    /// The consent this job's read rests on, if any.
    pub(super) fn consent(&self) -> Option<Uuid> {
        self.read.as_ref().and_then(|r| r.consent)
    }
}

/// What became of one job inside a batch.
#[derive(Debug)]
pub(super) enum Slot {
    Assigned(u64),
    ChangeFailed(StoreError),
}

/// What a batch commits: each job's slot, the entries with their sequence numbers, the tree's
/// new nodes, and the jobs whose read effects apply. Built job by job, in order, by the driver,
/// which alone talks to the database (consents re-checked, changes run).
#[derive(Debug)]
pub(super) struct Plan {
    pub(super) slots: Vec<Slot>,
    pub(super) rows: Vec<AuditEntry>,
    pub(super) nodes: Vec<(u64, Hash)>,
    /// Indices of the kept jobs that carry read effects.
    pub(super) reads: Vec<usize>,
}

impl Plan {
    pub(super) fn new(jobs: usize) -> Plan {
        Plan {
            slots: Vec::with_capacity(jobs),
            rows: Vec::with_capacity(jobs),
            nodes: Vec::with_capacity(jobs / 8 + 2),
            reads: Vec::new(),
        }
    }

    /// The next job is not kept: its change failed, or its read's consent was revoked
    /// ([`StoreError::ConsentRevoked`]). Its entry takes no sequence number.
    pub(super) fn refuse(&mut self, err: StoreError) {
        self.slots.push(Slot::ChangeFailed(err));
    }

    /// The next job, `jobs[i]`, is kept: its entries take the next sequence numbers and
    /// leaves.
    pub(super) fn keep(&mut self, frontier: &mut Frontier, i: usize, job: &Job) {
        let seq = frontier.size();
        for entry in std::iter::once(&job.entry).chain(&job.more) {
            let entry = entry.clone().at_seq(frontier.size());
            // Only the subtrees of 32 leaves and up are kept (ADR 0023).
            self.nodes.extend(
                frontier
                    .push(entry.leaf_hash())
                    .into_iter()
                    .filter(|(index, _)| ehrshare_core::audit::merkle::is_stored(*index)),
            );
            self.rows.push(entry);
        }
        self.slots.push(Slot::Assigned(seq));
        if job.read.is_some() {
            self.reads.push(i);
        }
    }
}

/// The consents the reads of `jobs` rest on, up to the first change (a change may be a
/// revocation: the reads after it are judged after it).
pub(super) fn consents_before_change(jobs: &[Job]) -> Vec<Uuid> {
    jobs.iter()
        .take_while(|j| j.change.is_none())
        .filter_map(Job::consent)
        .collect()
}
