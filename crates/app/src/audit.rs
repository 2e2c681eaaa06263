//! The audit log as use cases see it: record an entry (fail closed), record an entry together
//! with the change it describes, prove inclusion and consistency, write signed checkpoints, and
//! verify the whole log.

use ehrshare_core::audit::checkpoint::{Checkpoint, hex};
use ehrshare_core::audit::merkle::{Hash, ProofPlan};
use ehrshare_core::audit::{AuditEntry, NewAuditEntry};
use ehrshare_store::audit::{Appended, ReadEffects, TreeHead};
use ehrshare_store::{Change, StoreError};

use crate::checkpoint::{CheckpointLine, CheckpointPolicy, sign_head};
use crate::{App, AppError};

impl From<StoreError> for AuditFailure {
    fn from(e: StoreError) -> Self {
        AuditFailure(e)
    }
}

/// An audit entry could not be made durable.
#[derive(Debug, thiserror::Error)]
#[error("audit entry not written: {0}")]
pub struct AuditFailure(#[source] pub StoreError);

impl From<AuditFailure> for AppError {
    fn from(e: AuditFailure) -> Self {
        if e.0.is_unavailable() {
            AppError::Unavailable(e.0)
        } else {
            AppError::Internal(Box::new(e))
        }
    }
}

impl App {
    /// Makes `entry` durable; only then may the caller proceed (and, for a read, let data
    /// leave). An invalid entry is a programming error: internal, and nothing is written.
    pub async fn audit(&self, entry: NewAuditEntry) -> Result<Appended, AppError> {
        let entry = entry
            .validated()
            .map_err(|e| AppError::Internal(Box::new(e)))?;
        Ok(self.audit_log().append(entry).await.map_err(AuditFailure)?)
    }

    /// Runs `change` and records `entry` in one transaction. Either both are committed or
    /// neither; the change's own error (a conflict, say) is returned as such.
    pub async fn audit_with(
        &self,
        entry: NewAuditEntry,
        change: Change,
    ) -> Result<Appended, AppError> {
        let entry = entry
            .validated()
            .map_err(|e| AppError::Internal(Box::new(e)))?;
        self.audit_log()
            .append_with(entry, change)
            .await
            .map_err(AppError::from)
    }

    /// Runs `change` and records `entries` in one transaction: all or none (a FHIR
    /// transaction's deposits, ADR 0014).
    pub async fn audit_all_with(
        &self,
        entries: Vec<NewAuditEntry>,
        change: Change,
    ) -> Result<Appended, AppError> {
        let entries = entries
            .into_iter()
            .map(|e| e.validated().map_err(|e| AppError::Internal(Box::new(e))))
            .collect::<Result<Vec<_>, _>>()?;
        self.audit_log()
            .append_all_with(entries, change)
            .await
            .map_err(AppError::from)
    }

    /// Records a permitted read's entry with what it obliges ([`ReadEffects`]). `None` if
    /// the consent it rests on was revoked before the entry could commit (nothing was kept).
    pub(crate) async fn audit_read(
        &self,
        entry: NewAuditEntry,
        effects: ReadEffects,
    ) -> Result<Option<Appended>, AppError> {
        let entry = entry
            .validated()
            .map_err(|e| AppError::Internal(Box::new(e)))?;
        match self.audit_log().append_read(entry, effects).await {
            Ok(appended) => Ok(Some(appended)),
            Err(StoreError::ConsentRevoked) => Ok(None),
            Err(e) => Err(AuditFailure(e).into()),
        }
    }

    /// The last committed tree head.
    pub fn audit_head(&self) -> TreeHead {
        self.audit_log().head()
    }

    /// The tree head, brought up to date with the database first if it does not reach
    /// `size` entries: another process sharing the database may have appended them.
    pub(crate) async fn audit_head_reaching(&self, size: u64) -> Result<TreeHead, AppError> {
        let head = self.audit_head();
        // Asked without the writers' lock first: a size the database does not hold either
        // (any number a caller sends) costs the writer nothing.
        if head.size >= size || self.db().audit_size().await? < size {
            return Ok(head);
        }
        Ok(self.audit_log().sync().await?)
    }

    /// Entry `seq`, with its inclusion proof in the current tree.
    pub async fn audit_inclusion_proof(
        &self,
        seq: u64,
    ) -> Result<(AuditEntry, Vec<Hash>, TreeHead), AppError> {
        let head = self.audit_head_reaching(seq.saturating_add(1)).await?;
        let plan = ProofPlan::inclusion(head.size, seq).map_err(|_| AppError::NotFound)?;
        let entry = self
            .db()
            .audit_entries(seq, 1)
            .await?
            .into_iter()
            .find(|e| e.seq == seq)
            .ok_or(AppError::NotFound)?;
        let proof = self.db().audit_proof(&plan).await?;
        Ok((entry, proof, head))
    }

    /// A consistency proof from an earlier tree size to the current head.
    pub async fn audit_consistency_proof(
        &self,
        old_size: u64,
    ) -> Result<(Vec<Hash>, TreeHead), AppError> {
        let head = self.audit_head_reaching(old_size).await?;
        let plan = ProofPlan::consistency(old_size, head.size).map_err(|e| AppError::Invalid {
            code: "bad-tree-size",
            message: e.to_string(),
            fields: Vec::new(),
        })?;
        Ok((self.db().audit_proof(&plan).await?, head))
    }

    /// Signs the tree head as the database holds it now (other processes may append to it,
    /// ADR 0024) and appends it to the checkpoint file, unless a checkpoint in the file already
    /// covers it (this process's, or another's sharing the file). Returns the checkpoint
    /// written, if any.
    pub async fn write_checkpoint(&self) -> Result<Option<Checkpoint>, AppError> {
        let Some(checkpoints) = self.checkpoints() else {
            return Ok(None);
        };
        let head = self.audit_log().sync().await?;
        let in_file = self.current_heads().await?.last().map(|c| c.size);
        let mut last = checkpoints.last_size.lock().await;
        if *last == Some(head.size) || in_file.is_some_and(|f| f >= head.size) {
            *last = Some(head.size);
            return Ok(None);
        }
        if last.is_some_and(|l| head.size < l) {
            // Never sign a head smaller than one signed: that is a fork.
            return Err(AppError::Internal(
                format!(
                    "the audit log went back from {} to {} entries while running",
                    last.unwrap_or(0),
                    head.size
                )
                .into(),
            ));
        }
        let checkpoint = sign_head(
            &checkpoints.instance,
            checkpoints.signer.as_ref(),
            head.size,
            head.root,
            self.clock().now(),
            None,
        )?;
        let file = checkpoints.file.clone();
        let line = CheckpointLine::from(&checkpoint);
        // Checked again under the file's lock: another process sharing the file may have
        // signed as much or more since it was read (ADR 0024).
        let (instance, key, size) = (
            checkpoints.instance.clone(),
            checkpoints.signer.public_key(),
            head.size,
        );
        let covered = move |text: &str| {
            crate::checkpoint::parse_line(text).is_some_and(|c| {
                c.instance == instance
                    && c.size >= size
                    && crate::signer::verify_signature(&key, &c.message(), &c.signature)
            })
        };
        let written = tokio::task::spawn_blocking(move || file.append_unless(&line, covered))
            .await
            .map_err(|e| AppError::Internal(Box::new(e)))?
            .map_err(|e| AppError::Internal(Box::new(e)))?;
        *last = Some(head.size);
        if !written {
            return Ok(None);
        }
        tracing::info!(
            size = head.size,
            root = hex(&head.root),
            "audit checkpoint signed"
        );
        Ok(Some(checkpoint))
    }
}

/// Starts the task that signs tree heads by `policy`, while this process leads (ADR 0024),
/// until `stop` resolves, then signs once more if it leads.
pub fn spawn_checkpointer(
    app: App,
    policy: CheckpointPolicy,
    stop: tokio::sync::oneshot::Receiver<()>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut heads = app.audit_log().subscribe();
        let mut stop = stop;
        let mut tick = tokio::time::interval(policy.every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut signed_at = app.audit_head().size;
        loop {
            tokio::select! {
                _ = &mut stop => break,
                _ = tick.tick() => {}
                changed = heads.changed() => {
                    if changed.is_err() { break; }
                    let size = heads.borrow_and_update().size;
                    if size.saturating_sub(signed_at) < policy.every_entries { continue; }
                }
            }
            // One process signs: the leader (ADR 0024).
            if !app.leads() {
                continue;
            }
            match app.write_checkpoint().await {
                Ok(Some(c)) => signed_at = c.size,
                // Covered already (by this process or another): counted from here.
                Ok(None) => signed_at = app.audit_head().size,
                Err(e) => tracing::error!(error = %e, "cannot write an audit checkpoint"),
            }
        }
        if app.leads()
            && let Err(e) = app.write_checkpoint().await
        {
            tracing::error!(error = %e, "cannot write the final audit checkpoint");
        }
    })
}
