//! Which of the server processes sharing one database runs the duties that must run once:
//! the alert scanner and the signing of audit checkpoints (issue 28, item 6; ADR 0024). The
//! election is the store's ([`ehrshare_store::leader`]); here is what winning and losing it
//! mean. A process that takes the lead first brings itself up to date: the audit tree as the
//! database holds it (another process appended), the scanner's position as stored (another
//! process scanned). A process that loses it stops both at their next round; their writes are
//! guarded all the same (the scanner's position moves only from where it was read, a
//! checkpoint is never signed below one in the file), so that an overlap of one round costs
//! nothing.

use std::sync::atomic::Ordering;
use std::time::Duration;

use ehrshare_store::leader::Candidate;

use crate::App;

/// How often the election runs: how soon a follower takes over from a leader that died.
pub const ELECT_EVERY: Duration = Duration::from_secs(1);

impl App {
    /// Whether this process runs the duties that must run once: it won the election, or no
    /// election runs (one process alone: tests, the command line's one-off commands).
    pub fn leads(&self) -> bool {
        !self.inner.election_runs.load(Ordering::Acquire)
            || self.inner.election_won.load(Ordering::Acquire)
    }

    /// One round of the election, and what a change of standing obliges.
    async fn elect(&self, candidate: &mut Candidate) {
        let before = self.inner.election_won.load(Ordering::Acquire);
        if self.audit_log().stats().failure().is_some() {
            // A process whose audit writer cannot commit can neither scan nor sign: it stands
            // aside, so that one that can leads.
            if candidate.leads() {
                tracing::warn!("the audit log cannot commit here: giving up the lead");
            }
            candidate.resign().await;
            self.inner.election_won.store(false, Ordering::Release);
            return;
        }
        let mut now = self.round(candidate, before).await;
        if now && !before {
            // Brought up to date within the lease, and the lock checked again after: a process
            // that took longer may have lost it meanwhile.
            if tokio::time::timeout(ehrshare_store::leader::LEASE / 2, self.take_up_duties())
                .await
                .is_err()
            {
                tracing::warn!("taking up the lead took too long: trying again");
                candidate.resign().await;
                now = false;
            } else {
                now = self.round(candidate, false).await;
            }
            if now {
                tracing::info!("leading: the alert scanner and the checkpoint signer run here");
            }
        } else if before && !now {
            tracing::warn!(
                "no longer leading: another process runs the alert scanner and signs checkpoints"
            );
        }
        self.inner.election_won.store(now, Ordering::Release);
    }

    /// One round of the store's election; a failure counts as not leading.
    async fn round(&self, candidate: &mut Candidate, leading: bool) -> bool {
        match self.db().elect(candidate).await {
            Ok(leads) => leads,
            Err(e) => {
                if leading {
                    tracing::warn!(error = %e, "the leader's check failed: no longer leading");
                } else {
                    tracing::debug!(error = %e, "election round failed");
                }
                false
            }
        }
    }

    /// Brings this process up to date before it leads: the tree another process grew, and the
    /// scanner's stored position (its next round reads it; the window it kept is stale).
    async fn take_up_duties(&self) {
        if let Err(e) = self.audit_log().sync().await {
            tracing::warn!(error = %e, "cannot read the audit tree on taking the lead");
        }
        *self.inner.alert_scan.lock().await = ehrshare_core::alert::ScanState::default();
    }
}

/// Runs the election: a first round before this returns (so that the duties started next
/// know whether to run), then one every [`ELECT_EVERY`] until `stop` resolves, when the lead
/// is given up.
pub async fn spawn_leader(
    app: App,
    stop: tokio::sync::oneshot::Receiver<()>,
) -> tokio::task::JoinHandle<()> {
    app.inner.election_won.store(false, Ordering::Release);
    app.inner.election_runs.store(true, Ordering::Release);
    let mut candidate = Candidate::default();
    app.elect(&mut candidate).await;
    tokio::spawn(async move {
        let mut stop = stop;
        loop {
            tokio::select! {
                _ = &mut stop => break,
                () = tokio::time::sleep(ELECT_EVERY) => {}
            }
            app.elect(&mut candidate).await;
        }
        app.inner.election_won.store(false, Ordering::Release);
        candidate.resign().await;
    })
}
