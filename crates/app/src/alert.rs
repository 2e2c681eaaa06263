//! The alert scanner: reads the audit log's access decisions in order, from where it stopped,
//! through `core::alert`'s rules, and writes the alerts they raise (for the provider's user
//! administrators and the office's privacy officers) together with its new position, audited.
//! It runs beside the requests, never in their path, so rules cost reads nothing (the
//! own-or-colleague rule's document match is one query per page of entries). The hour of
//! history the rules look back on is kept in memory, bounded (`core::alert::AlertWindow`):
//! after a restart the first hour may miss a threshold that straddles it. It stops between
//! pages at shutdown, its position written, and resumes there at the next start.

use std::collections::HashMap;

use ehrshare_core::alert::AlertStatus;
use ehrshare_core::alert::{Flag, Seen, relation};
use ehrshare_core::audit::Outcome;
use ehrshare_store::alert::AlertRow;
use ehrshare_store::{Conn, change};
use uuid::Uuid;

use crate::caller::Caller;
use crate::{App, AppError};

/// Where the scanner stopped, in `ehrshare_meta`.
const CURSOR: &str = "alert_scan_next_seq";
/// Entries read per query.
const PAGE: u32 = 1000;
/// Entries scanned without an alert after which the position is written all the same.
const PERSIST_EVERY: u64 = 100_000;

impl App {
    /// Reads the entries written since the last scan and raises the alerts they call for;
    /// returns how many were raised.
    pub async fn scan_alerts(&self) -> Result<usize, AppError> {
        self.scan_alerts_until(|| false).await
    }

    /// [`App::scan_alerts`], stopping between pages once `stop` says so (at shutdown): what
    /// was scanned stays scanned, its position written, and the rest waits for the next start.
    pub async fn scan_alerts_until(&self, stop: impl Fn() -> bool) -> Result<usize, AppError> {
        let mut state = self.inner.alert_scan.lock().await;
        let mut at = self.db().meta(CURSOR).await?;
        let stored: u64 = at.as_deref().and_then(|v| v.parse().ok()).unwrap_or(0);
        if state.next.is_some_and(|n| n < stored) {
            // Another process scanned further (it led for a while, ADR 0024): its position is
            // the scan's, and this window is of entries long past.
            *state = ehrshare_core::alert::ScanState::default();
        }
        let mut next = state.next.unwrap_or(stored);
        let policy = self.settings().alert_policy;
        let mut raised = 0;
        let mut persisted = stored;
        loop {
            if stop() {
                if next > persisted {
                    self.persist_scan(at.as_deref(), persisted, next, Vec::new())
                        .await?;
                }
                break;
            }
            let entries = self.db().audit_entries(next, PAGE).await?;
            let Some(last) = entries.last().map(|e| e.seq) else {
                break;
            };
            let is_access = |x: &ehrshare_core::audit::NewAuditEntry| {
                matches!(x.action.as_str(), "record.summary" | "record.read")
            };
            // Whose documents the page's recipients share, for the own-or-colleague rule.
            let read: Vec<Uuid> = entries
                .iter()
                .filter(|e| is_access(&e.entry) && e.entry.outcome == Outcome::Allowed)
                .filter_map(|e| e.entry.recipient)
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .collect();
            let mut holders: HashMap<Uuid, Vec<(Uuid, Option<Uuid>)>> = HashMap::new();
            for (recipient, account, hcp) in self.db().document_holders(&read).await? {
                holders.entry(recipient).or_default().push((account, hcp));
            }
            let mut alerts = Vec::new();
            for e in &entries {
                let x = &e.entry;
                let (true, Some(account)) = (is_access(x), x.actor.account) else {
                    continue;
                };
                let seen = Seen {
                    at: x.at,
                    account,
                    recipient: x.recipient,
                    denied: x.outcome == Outcome::Denied,
                    relation: x
                        .recipient
                        .and_then(|r| holders.get(&r))
                        .and_then(|h| relation(account, x.actor.hcp, h)),
                };
                for flag in state.window.observe(seen, &policy) {
                    alerts.push(AlertRow {
                        id: Uuid::now_v7(),
                        rule: flag.rule().to_owned(),
                        hcp_id: x.actor.hcp,
                        account_id: Some(account),
                        recipient_id: x.recipient,
                        detail: Some(match flag {
                            Flag::ManyRecipients { count } => {
                                format!(
                                    "{count} distinct recipients within an hour (entry {})",
                                    e.seq
                                )
                            }
                            Flag::RepeatedDenials { count } => {
                                format!("{count} refused accesses within an hour (entry {})", e.seq)
                            }
                            Flag::OutOfHours => format!("a read out of hours (entry {})", e.seq),
                            Flag::OwnRecord => {
                                format!("the reader's own record (entry {})", e.seq)
                            }
                            Flag::ColleagueRecord { colleague } => format!(
                                "the record of a colleague, account {colleague} (entry {})",
                                e.seq
                            ),
                        }),
                        status: AlertStatus::Open,
                        note: None,
                        audit_seq: None,
                        reported_by: None,
                        created_at: self.clock().now(),
                    });
                }
            }
            let new_next = last + 1;
            // Written (and audited) with alerts, and every PERSIST_EVERY entries without: a
            // scan that finds nothing changes nothing for a while, and rescanning those
            // entries after a restart raises nothing twice; but a restart does not rescan more
            // than that many.
            if !alerts.is_empty() || new_next - persisted >= PERSIST_EVERY {
                let count = alerts.len();
                match self
                    .persist_scan(at.as_deref(), next, new_next, alerts)
                    .await
                {
                    Err(AppError::Conflict {
                        code: "position-moved",
                        ..
                    }) => {
                        // Another process scanned these entries meanwhile (a takeover while
                        // this one still ran a round): its alerts stand, and these are dropped.
                        tracing::info!(
                            "alert scan: another process moved the position; starting again from it"
                        );
                        *state = ehrshare_core::alert::ScanState::default();
                        return Ok(raised);
                    }
                    other => other?,
                }
                raised += count;
                persisted = new_next;
                at = Some(new_next.to_string());
            }
            next = new_next;
            state.next = Some(next);
            if entries.len() < PAGE as usize {
                break;
            }
        }
        Ok(raised)
    }
}

impl App {
    /// Writes the scanner's new position `to` (having scanned from `from`) with the alerts it
    /// raised, audited as one `alert.scan` entry, if the stored position is still `at` (as this
    /// process last read or wrote it): otherwise 409 `position-moved` and nothing is written.
    async fn persist_scan(
        &self,
        at: Option<&str>,
        from: u64,
        to: u64,
        alerts: Vec<AlertRow>,
    ) -> Result<(), AppError> {
        let caller = Caller {
            actor: ehrshare_core::audit::Actor::system(),
            request_id: None,
            client_addr: None,
        };
        let mut entry = caller.entry(self, "alert.scan", Outcome::Allowed);
        entry.record_ids = alerts.iter().map(|a| a.id).collect();
        entry.reason = Some(format!("entries {from} to {}", to.saturating_sub(1)));
        let at = at.map(str::to_owned);
        let write = change(move |mut conn: Conn<'_>| {
            Box::pin(async move {
                for a in &alerts {
                    ehrshare_store::alert::insert_alert(conn.reborrow(), a).await?;
                }
                ehrshare_store::move_meta(conn, CURSOR, at.as_deref(), &to.to_string()).await
            })
        });
        self.audit_with(entry, write).await?;
        Ok(())
    }
}

/// Runs the scanner every `interval`, while this process leads, until `stop` resolves.
pub fn spawn_alert_scanner(
    app: App,
    interval: std::time::Duration,
    stop: tokio::sync::oneshot::Receiver<()>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut stop = stop;
        loop {
            // One process scans: the leader (ADR 0024); it stops between pages if it loses the
            // lead, and its position moves only from where it read it.
            // `is_empty` peeks: the select below still sees the signal.
            if app.leads() {
                if let Err(e) = app
                    .scan_alerts_until(|| !stop.is_empty() || !app.leads())
                    .await
                {
                    tracing::error!(error = %e, "alert scan failed");
                }
                // The same pace suits the notices before a child's 16th birthday (days
                // ahead).
                if let Err(e) = app.notify_sdm_endings().await {
                    tracing::error!(error = %e, "SDM ending notices failed");
                }
            }
            tokio::select! {
                _ = &mut stop => break,
                () = tokio::time::sleep(interval) => {}
            }
        }
    })
}
