//! The audit log's transparency (issue 27, item 5; ADR 0020): the signed tree heads the
//! server publishes, the consistency proofs between them, and a recipient's inclusion proof
//! against a signed head rather than the live root (RFC 9162). Anyone can fetch heads and
//! consistency proofs; an entry's proof is its recipient's.
//!
//! The heads are read from the checkpoint file as it grows (only the bytes appended since
//! the last read), each kept only if the audit key signed it, so a request never re-reads
//! the file and a line someone appended by hand is never served.

use ehrshare_core::audit::AuditEntry;
use ehrshare_core::audit::checkpoint::Checkpoint;
use ehrshare_core::audit::merkle::{Hash, ProofPlan};
use uuid::Uuid;

use crate::auth::Session;
use crate::checkpoint::{Published, read_from};
use crate::error::invalid;
use crate::{App, AppError};

/// The most heads one answer lists.
pub const HEADS_PAGE: usize = 100;

impl App {
    /// The audit key's public half (what signs the heads), if heads are signed.
    pub fn audit_public_key(&self) -> Option<[u8; 32]> {
        self.checkpoints().map(|c| c.signer.public_key())
    }

    /// Every published head that describes the log now (sizes increasing), brought up to
    /// date with the file first.
    pub(crate) async fn current_heads(&self) -> Result<Vec<Checkpoint>, AppError> {
        let Some(checkpoints) = self.checkpoints() else {
            return Ok(Vec::new());
        };
        let mut published = checkpoints.published.lock().await;
        let path = checkpoints.file.path().to_owned();
        let from = published.offset;
        let (reset, offset, lines) = tokio::task::spawn_blocking(move || read_from(&path, from))
            .await
            .map_err(|e| AppError::Internal(Box::new(e)))?
            .map_err(|e| AppError::Internal(Box::new(e)))?;
        if reset {
            *published = Published::default();
        }
        let key = checkpoints.signer.public_key();
        for line in &lines {
            let Some(c) = crate::checkpoint::parse_line(line) else {
                continue;
            };
            if c.instance == checkpoints.instance
                && crate::signer::verify_signature(&key, &c.message(), &c.signature)
            {
                published.take(c);
            }
        }
        published.offset = offset;
        // A head another process signed may be ahead of this process's tree (ADR 0024).
        let newest = published.heads.last().map_or(0, |c| c.size);
        let size_now = self.audit_head_reaching(newest).await?.size;
        Ok(published
            .heads
            .iter()
            .filter(|c| c.size <= size_now)
            .cloned()
            .collect())
    }

    /// The signed heads that describe the log now, oldest first, `HEADS_PAGE` of them with
    /// a size above `after`.
    pub async fn published_heads(&self, after: Option<u64>) -> Result<Vec<Checkpoint>, AppError> {
        Ok(self
            .current_heads()
            .await?
            .into_iter()
            .filter(|c| after.is_none_or(|a| c.size > a))
            .take(HEADS_PAGE)
            .collect())
    }

    /// The consistency proof between two published heads (sizes `from` and `to`): any other
    /// size is 422 naming the field (the live size between heads is not told).
    pub async fn consistency_between(&self, from: u64, to: u64) -> Result<Vec<Hash>, AppError> {
        let heads = self.current_heads().await?;
        let published = |size: u64| heads.iter().any(|c| c.size == size);
        if !published(from) {
            return Err(invalid(
                "/from",
                "not-a-published-head",
                "a published head's size",
            ));
        }
        if !published(to) {
            return Err(invalid(
                "/to",
                "not-a-published-head",
                "a published head's size",
            ));
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
        let heads = self.current_heads().await?;
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
