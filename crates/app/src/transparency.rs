//! The audit log's transparency (issue 27, item 5): the signed tree heads the server
//! publishes, the consistency proofs between them, and a recipient's inclusion proof against
//! a signed head rather than the live root (RFC 9162). Anyone can fetch heads and
//! consistency proofs; an entry's proof is its recipient's.

use ehrshare_core::audit::AuditEntry;
use ehrshare_core::audit::checkpoint::Checkpoint;
use ehrshare_core::audit::merkle::{Hash, ProofPlan};
use uuid::Uuid;

use crate::auth::Session;
use crate::error::invalid;
use crate::{App, AppError};

/// The most heads one answer lists.
pub const HEADS_PAGE: usize = 100;

/// The heads of `lines` that describe the log as it is: after an accepted rollback, the
/// heads above its `kept` size described history the database no longer holds, and are
/// left out; so is any head larger than the log now.
fn current_heads(lines: Vec<Checkpoint>, instance: &str, size_now: u64) -> Vec<Checkpoint> {
    let mut out: Vec<Checkpoint> = Vec::new();
    for c in lines.into_iter().filter(|c| c.instance == instance) {
        if let Some(r) = c.rollback {
            out.retain(|earlier| earlier.size <= r.kept);
        }
        out.push(c);
    }
    out.retain(|c| c.size <= size_now);
    out
}

impl App {
    /// The audit key's public half (what signs the heads), if heads are signed.
    pub fn audit_public_key(&self) -> Option<[u8; 32]> {
        self.checkpoints().map(|c| c.signer.public_key())
    }

    /// The signed heads that describe the log now, oldest first, `HEADS_PAGE` of them with
    /// a size above `after`.
    pub async fn published_heads(&self, after: Option<u64>) -> Result<Vec<Checkpoint>, AppError> {
        let Some(checkpoints) = self.checkpoints() else {
            return Ok(Vec::new());
        };
        let file = checkpoints.file.clone();
        let read = tokio::task::spawn_blocking(move || file.read_all())
            .await
            .map_err(|e| AppError::Internal(Box::new(e)))?
            .map_err(|e| AppError::Internal(Box::new(e)))?;
        let lines = read.lines.into_iter().filter_map(Result::ok).collect();
        let heads = current_heads(lines, &checkpoints.instance, self.audit_head().size);
        Ok(heads
            .into_iter()
            .filter(|c| after.is_none_or(|a| c.size > a))
            .take(HEADS_PAGE)
            .collect())
    }

    /// The consistency proof from the tree of `from` entries to the tree of `to` (both at
    /// most the log's size now): 422 naming the field otherwise.
    pub async fn consistency_between(&self, from: u64, to: u64) -> Result<Vec<Hash>, AppError> {
        if to > self.audit_head().size {
            return Err(invalid("/to", "beyond-the-log", "at most the log's size"));
        }
        let plan = ProofPlan::consistency(from, to)
            .map_err(|_| invalid("/from", "bad-tree-size", "from 1 to `to`"))?;
        Ok(self.db().audit_proof(&plan).await?)
    }

    /// An entry about `recipient` with its inclusion proof in a **signed** head: the head of
    /// size `tree_size` if given (a published one, else 404), otherwise the latest published.
    /// An entry no signed head covers yet is 409 `not-yet-checkpointed`, saying when one
    /// will. For the recipient or an SDM with authority; anyone else's entry 404.
    pub async fn recipient_entry_proof_signed(
        &self,
        session: &Session,
        recipient: Uuid,
        seq: u64,
        tree_size: Option<u64>,
    ) -> Result<(AuditEntry, Vec<Hash>, Checkpoint), AppError> {
        // Who may see the entry, and whether it is theirs to see yet.
        let (entry, _, _) = self.recipient_entry_proof(session, recipient, seq).await?;
        let heads = self.published_heads(None).await?;
        let head = match tree_size {
            Some(size) => heads
                .into_iter()
                .find(|c| c.size == size && c.size > seq)
                .ok_or(AppError::NotFound)?,
            None => match heads.into_iter().rev().find(|c| c.size > seq) {
                Some(c) => c,
                None => {
                    let every = self.settings().checkpoint_every;
                    let by = self.clock().now()
                        + time::Duration::try_from(every).unwrap_or(time::Duration::MINUTE);
                    let by = by
                        .format(&time::format_description::well_known::Rfc3339)
                        .unwrap_or_default();
                    return Err(AppError::Conflict {
                        code: "not-yet-checkpointed",
                        message: format!(
                            "no signed head covers this entry yet: the next one will, by {by}"
                        ),
                    });
                }
            },
        };
        let plan = ProofPlan::inclusion(head.size, seq).map_err(|_| AppError::NotFound)?;
        let proof = self.db().audit_proof(&plan).await?;
        Ok((entry, proof, head))
    }
}

#[cfg(test)]
mod tests {
    use ehrshare_core::audit::checkpoint::Rollback;

    use super::*;

    fn head(size: u64, rollback: Option<Rollback>) -> Checkpoint {
        Checkpoint {
            instance: "i".to_owned(),
            size,
            root: [0; 32],
            time: String::new(),
            key_id: String::new(),
            signature: [0; 64],
            rollback,
        }
    }

    #[test]
    fn heads_of_abandoned_history_and_of_other_instances_are_not_published() {
        let mut other = head(3, None);
        other.instance = "j".to_owned();
        let lines = vec![
            head(5, None),
            head(9, None),
            other,
            head(7, Some(Rollback { from: 9, kept: 5 })),
            head(12, None),
        ];
        let sizes: Vec<u64> = current_heads(lines.clone(), "i", 20)
            .iter()
            .map(|c| c.size)
            .collect();
        assert_eq!(sizes, vec![5, 7, 12]);
        let sizes: Vec<u64> = current_heads(lines, "i", 10)
            .iter()
            .map(|c| c.size)
            .collect();
        assert_eq!(sizes, vec![5, 7]);
    }
}
