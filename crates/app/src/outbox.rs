//! Notifications (SPEC 3.10): written to the outbox in the same transaction as the action that
//! causes them, delivered later by a worker through an adapter per channel, retried with
//! exponential backoff, and marked failed after a number of tries. A delivery failure never
//! blocks or undoes the action.
//!
//! Adapters: `log` (a file in the data folder; the default, for development and the demo: it
//! holds access keys and one-time passwords in clear, so it is created with mode 0600), SMTP
//! e-mail (lettre; plain SMTP to a relay) and an HTTP webhook (for an SMS gateway; http:// or
//! https:// with certificate verification).

use std::collections::{BTreeMap, HashMap};
use std::sync::LazyLock;
use std::time::Duration;

use ehrshare_core::audit::NewAuditEntry;
use ehrshare_core::locale::Locale;
use ehrshare_core::notification::Channel;
use ehrshare_store::audit::Appended;
use ehrshare_store::outbox::{NewMessage, StoredMessage};
use ehrshare_store::{Change, ChangeFuture};
use ehrshare_store::{Conn, change};
use uuid::Uuid;

use crate::delivery::Outgoing;
use crate::settings::OutboxSettings;
use crate::text::Catalog;
use crate::{App, AppError};

/// The notification texts, compiled in.
pub const SOURCES: [(Locale, &str); 2] = [
    (Locale::En, include_str!("../messages/en.ftl")),
    (Locale::ZhHk, include_str!("../messages/zh-HK.ftl")),
];

static TEXTS: LazyLock<Catalog> = LazyLock::new(|| Catalog::new(SOURCES[0].1, SOURCES[1].1));

/// A message to send because of an action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    /// The healthcare recipient it concerns, if any.
    pub recipient: Option<Uuid>,
    /// Phone number or e-mail address.
    pub address: String,
    pub channel: Channel,
    /// Template id (`access-key`, `one-time-password`, ...).
    pub template: String,
    pub params: BTreeMap<String, String>,
    pub locale: Locale,
}

/// Renders a template; `None` if it does not exist or lacks a parameter.
pub fn render(
    template: &str,
    locale: Locale,
    params: &HashMap<String, String>,
) -> Option<(String, String)> {
    let subject = TEXTS.format(locale, &format!("{template}-subject"), params)?;
    let body = TEXTS.format(locale, &format!("{template}-body"), params)?;
    Some((subject, body))
}

/// The wait before retry number `attempt` (1 = the first retry).
pub fn backoff(base: Duration, attempt: u32) -> Duration {
    let factor = 2u32.saturating_pow(attempt.saturating_sub(1).min(20));
    base.saturating_mul(factor).min(Duration::from_secs(3600))
}

/// What one delivery round did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeliveryReport {
    pub delivered: usize,
    pub retried: usize,
    pub failed: usize,
}

fn to_time(d: Duration) -> time::Duration {
    time::Duration::try_from(d).unwrap_or(time::Duration::HOUR)
}

impl App {
    /// Runs `change` (if any), records `entry`, and enqueues `notices`, all in one transaction.
    /// A notice whose template does not exist or lacks a parameter is a programming error:
    /// nothing is written.
    pub async fn audit_and_notify(
        &self,
        entry: NewAuditEntry,
        action: Option<Change>,
        notices: Vec<Notice>,
    ) -> Result<Appended, AppError> {
        let messages = self.messages(notices)?;
        let combined = change(move |mut conn: Conn<'_>| -> ChangeFuture<'_> {
            Box::pin(async move {
                if let Some(action) = action {
                    action(conn.reborrow()).await?;
                }
                ehrshare_store::outbox::enqueue(conn, &messages).await
            })
        });
        self.audit_with(entry, combined).await
    }

    /// The outbox rows for `notices`, checked against their templates (a missing template or
    /// parameter is a programming error: nothing is written).
    pub(crate) fn messages(&self, notices: Vec<Notice>) -> Result<Vec<NewMessage>, AppError> {
        let now = self.clock().now();
        let mut messages = Vec::with_capacity(notices.len());
        for n in notices {
            let params: HashMap<String, String> = n.params.clone().into_iter().collect();
            if render(&n.template, n.locale, &params).is_none() {
                return Err(AppError::Internal(
                    format!(
                        "notice template {:?} missing or lacks a parameter",
                        n.template
                    )
                    .into(),
                ));
            }
            messages.push(NewMessage {
                id: Uuid::now_v7(),
                created_at: now,
                recipient: n.recipient,
                address: n.address,
                channel: n.channel.code().to_owned(),
                template: n.template,
                params: serde_json::to_value(&n.params)
                    .map_err(|e| AppError::Internal(Box::new(e)))?,
                locale: n.locale.tag().to_owned(),
            });
        }
        Ok(messages)
    }

    /// Delivers the messages due now, once each; returns what happened.
    pub async fn deliver_due(&self) -> Result<DeliveryReport, AppError> {
        let settings = self.settings().outbox;
        let now = self.clock().now();
        // No more than the lease can see delivered, each taking its longest: a message whose
        // lease ran out while it waited its turn would be claimed again by another worker
        // (another process, issue 28 item 6) and sent twice.
        let fits = settings.lease.as_secs() / settings.delivery_timeout.as_secs().max(1);
        let limit = settings
            .batch
            .min(i64::try_from(fits).unwrap_or(i64::MAX))
            .max(1);
        let lease_until = now + to_time(settings.lease);
        let claimed = self.db().outbox_claim_due(now, lease_until, limit).await?;
        let mut report = DeliveryReport::default();
        for stored in claimed {
            if self.clock().now() + to_time(settings.delivery_timeout) > lease_until {
                // Out of lease (a slow gateway): the rest wait for their lease to run out
                // and are claimed again, late rather than twice.
                break;
            }
            let outcome = self.deliver_one(&stored, settings).await;
            let id = stored.message.id;
            let now = self.clock().now();
            match outcome {
                Ok(()) => {
                    self.db().outbox_delivered(id, now).await?;
                    report.delivered += 1;
                }
                Err(reason) => {
                    let attempts = u32::try_from(stored.attempts).unwrap_or(u32::MAX);
                    tracing::warn!(%id, attempts, reason, "delivery failed");
                    if attempts >= settings.max_attempts || reason.starts_with("permanent:") {
                        self.db().outbox_failed(id, now, &reason).await?;
                        report.failed += 1;
                    } else {
                        let next = now + to_time(backoff(settings.retry_base, attempts));
                        self.db().outbox_retry(id, next, &reason).await?;
                        report.retried += 1;
                    }
                }
            }
        }
        Ok(report)
    }

    async fn deliver_one(
        &self,
        stored: &StoredMessage,
        settings: OutboxSettings,
    ) -> Result<(), String> {
        let m = &stored.message;
        let channel = Channel::parse(&m.channel).ok_or("permanent: unknown channel")?;
        let locale = Locale::parse(&m.locale).unwrap_or_default();
        let params: HashMap<String, String> = serde_json::from_value(m.params.clone())
            .map_err(|_| "permanent: unreadable parameters".to_owned())?;
        let (subject, body) = render(&m.template, locale, &params)
            .ok_or("permanent: the template cannot be rendered")?;
        let outgoing = Outgoing {
            id: m.id,
            address: m.address.clone(),
            channel,
            locale,
            subject,
            body,
        };
        let adapter = self
            .adapters()
            .for_channel(channel)
            .ok_or("permanent: not a channel the worker delivers")?;
        tokio::time::timeout(settings.delivery_timeout, adapter.deliver(&outgoing))
            .await
            .map_err(|_| "timed out".to_owned())?
    }
}

/// Starts the delivery worker: a round every `interval` (at once again while rounds find
/// work), until `stop` resolves.
pub fn spawn_outbox_worker(
    app: App,
    interval: Duration,
    stop: tokio::sync::oneshot::Receiver<()>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut stop = stop;
        loop {
            let busy = match app.deliver_due().await {
                Ok(r) => r.delivered + r.retried + r.failed > 0,
                Err(e) => {
                    tracing::error!(error = %e, "outbox round failed");
                    false
                }
            };
            // Busy: the next round at once, unless shutting down (`is_empty` peeks).
            if busy && stop.is_empty() {
                continue;
            }
            tokio::select! {
                _ = &mut stop => break,
                () = tokio::time::sleep(interval) => {}
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_languages_define_the_same_templates() {
        crate::text::check_parity(SOURCES[0].1, SOURCES[1].1).unwrap();
        for id in crate::text::message_ids(SOURCES[0].1) {
            let template = id.trim_end_matches("-subject").trim_end_matches("-body");
            assert!(
                TEXTS.has(Locale::En, &format!("{template}-subject")),
                "{template}"
            );
            assert!(
                TEXTS.has(Locale::En, &format!("{template}-body")),
                "{template}"
            );
        }
    }

    #[test]
    fn renders_in_both_languages_and_refuses_a_missing_parameter() {
        let params: HashMap<String, String> = [("key".to_owned(), "12345678".to_owned())].into();
        let (subject, body) = render("access-key", Locale::En, &params).unwrap();
        assert_eq!(subject, "Your eHealth access key");
        assert!(body.contains("12345678"));
        let (_, body) = render("access-key", Locale::ZhHk, &params).unwrap();
        assert!(body.contains("授權號碼為 12345678"));
        assert!(render("access-key", Locale::En, &HashMap::new()).is_none());
        assert!(render("no-such-template", Locale::En, &params).is_none());
        let status: HashMap<String, String> =
            [("status".to_owned(), "suspended".to_owned())].into();
        let (_, body) = render("registration-changed", Locale::ZhHk, &status).unwrap();
        assert!(body.contains("已被醫健通辦事處暫停"), "{body}");
        let (_, body) = render("registration-changed", Locale::En, &status).unwrap();
        assert!(body.contains("has been suspended"), "{body}");
    }

    #[test]
    fn backoff_doubles_and_caps() {
        let base = Duration::from_secs(10);
        assert_eq!(backoff(base, 1), Duration::from_secs(10));
        assert_eq!(backoff(base, 2), Duration::from_secs(20));
        assert_eq!(backoff(base, 4), Duration::from_secs(80));
        assert_eq!(backoff(base, 40), Duration::from_secs(3600));
    }
}
