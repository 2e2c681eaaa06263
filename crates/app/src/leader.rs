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
        let now = match self.db().elect(candidate).await {
            Ok(leads) => leads,
            Err(e) => {
                if before {
                    tracing::warn!(error = %e, "the leader's check failed: no longer leading");
                } else {
                    tracing::debug!(error = %e, "election round failed");
                }
                false
            }
        };
        if now && !before {
            self.take_up_duties().await;
            tracing::info!("leading: the alert scanner and the checkpoint signer run here");
        } else if before && !now {
            tracing::warn!(
                "no longer leading: another process runs the alert scanner and signs checkpoints"
            );
        }
        self.inner.election_won.store(now, Ordering::Release);
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
