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
use std::fmt;
use std::future::Future;
use std::io::Write;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use ehrshare_core::audit::NewAuditEntry;
use ehrshare_core::locale::Locale;
use ehrshare_core::notification::Channel;
use ehrshare_store::audit::Appended;
use ehrshare_store::outbox::{NewMessage, StoredMessage};
use ehrshare_store::{Change, ChangeFuture};
use ehrshare_store::{Conn, change};
use uuid::Uuid;

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

/// A message rendered for an adapter.
#[derive(Clone, PartialEq, Eq)]
pub struct Outgoing {
    pub id: Uuid,
    pub address: String,
    pub channel: Channel,
    pub locale: Locale,
    pub subject: String,
    pub body: String,
}

impl fmt::Debug for Outgoing {
    // The body may hold a key or a password: never in logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Outgoing")
            .field("id", &self.id)
            .field("channel", &self.channel)
            .finish_non_exhaustive()
    }
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

/// The future an adapter returns: `Err` carries a reason to record (no secrets).
pub type DeliveryFuture<'a> = Pin<Box<dyn Future<Output = Result<(), String>> + Send + 'a>>;

/// Something that sends messages of one or more channels.
pub trait Adapter: Send + Sync + fmt::Debug {
    fn deliver<'a>(&'a self, message: &'a Outgoing) -> DeliveryFuture<'a>;
}

/// Which adapter serves which channel.
#[derive(Debug, Clone)]
pub struct Adapters {
    pub email: Arc<dyn Adapter>,
    pub sms: Arc<dyn Adapter>,
    /// Post and app notifications (printed and pushed by systems outside ehrshare).
    pub other: Arc<dyn Adapter>,
}

impl Adapters {
    /// Every channel to one adapter.
    pub fn all(adapter: Arc<dyn Adapter>) -> Adapters {
        Adapters {
            email: Arc::clone(&adapter),
            sms: Arc::clone(&adapter),
            other: adapter,
        }
    }

    fn for_channel(&self, channel: Channel) -> &Arc<dyn Adapter> {
        match channel {
            Channel::Email => &self.email,
            Channel::Sms => &self.sms,
            Channel::Post | Channel::App => &self.other,
        }
    }
}

/// Writes each message as a JSON line to a file.
#[derive(Debug, Clone)]
pub struct LogAdapter {
    file: Arc<LogFile>,
}

#[derive(Debug)]
struct LogFile {
    path: PathBuf,
    lock: Mutex<()>,
}

impl LogAdapter {
    /// Appends to `path` (created with mode 0600 with its folder).
    pub fn new(path: impl Into<PathBuf>) -> LogAdapter {
        LogAdapter {
            file: Arc::new(LogFile {
                path: path.into(),
                lock: Mutex::new(()),
            }),
        }
    }
}

impl LogFile {
    fn write(&self, line: &str) -> std::io::Result<()> {
        let _guard = self
            .lock
            .lock()
            .map_err(|_| std::io::Error::other("poisoned"))?;
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let mut options = std::fs::OpenOptions::new();
        options.create(true).append(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options.open(&self.path)?;
        file.write_all(line.as_bytes())?;
        file.sync_data()
    }
}

impl Adapter for LogAdapter {
    fn deliver<'a>(&'a self, m: &'a Outgoing) -> DeliveryFuture<'a> {
        Box::pin(async move {
            let line = serde_json::json!({
                "id": m.id,
                "channel": m.channel.code(),
                "to": m.address,
                "locale": m.locale.tag(),
                "subject": m.subject,
                "body": m.body,
            })
            .to_string()
                + "\n";
            let file = Arc::clone(&self.file);
            tokio::task::spawn_blocking(move || file.write(&line))
                .await
                .map_err(|e| e.to_string())?
                .map_err(|e| e.to_string())
        })
    }
}

/// Sends e-mail over SMTP to a relay.
#[derive(Debug)]
pub struct SmtpAdapter {
    transport: lettre::AsyncSmtpTransport<lettre::Tokio1Executor>,
    from: lettre::message::Mailbox,
}

impl SmtpAdapter {
    /// A sender through `host:port`, from `from` (an address).
    pub fn new(
        host: &str,
        port: u16,
        from: &str,
        timeout: Duration,
    ) -> Result<SmtpAdapter, String> {
        let from = from
            .parse()
            .map_err(|e| format!("smtp_from {from:?}: {e}"))?;
        let transport =
            lettre::AsyncSmtpTransport::<lettre::Tokio1Executor>::builder_dangerous(host)
                .port(port)
                .timeout(Some(timeout))
                .build();
        Ok(SmtpAdapter { transport, from })
    }
}

impl Adapter for SmtpAdapter {
    fn deliver<'a>(&'a self, m: &'a Outgoing) -> DeliveryFuture<'a> {
        Box::pin(async move {
            use lettre::AsyncTransport;
            let to = m
                .address
                .parse::<lettre::message::Mailbox>()
                .map_err(|e| format!("bad address: {e}"))?;
            let email = lettre::Message::builder()
                .from(self.from.clone())
                .to(to)
                .subject(m.subject.clone())
                .header(lettre::message::header::ContentType::TEXT_PLAIN)
                .body(m.body.clone())
                .map_err(|e| format!("cannot build the message: {e}"))?;
            self.transport
                .send(email)
                .await
                .map(|_| ())
                .map_err(|e| format!("smtp: {e}"))
        })
    }
}

/// Posts each message as JSON to an HTTP endpoint (an SMS gateway); any 2xx is delivered.
/// `https://` URLs are verified against the Mozilla root certificates (webpki-roots) plus any
/// roots given (a gateway with a private CA).
pub struct WebhookAdapter {
    url: String,
    client: crate::outbound::Outbound,
}

impl fmt::Debug for WebhookAdapter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookAdapter")
            .field("url", &self.url)
            .finish()
    }
}

impl WebhookAdapter {
    /// A webhook at `url` (`http://` or `https://host[:port]/path`).
    pub fn new(url: &str, timeout: Duration) -> Result<WebhookAdapter, String> {
        WebhookAdapter::with_roots(url, timeout, &[])
    }

    /// A webhook trusting, besides the public roots, the DER certificates `extra_roots`.
    pub fn with_roots(
        url: &str,
        timeout: Duration,
        extra_roots: &[Vec<u8>],
    ) -> Result<WebhookAdapter, String> {
        crate::outbound::Outbound::check_url(url).map_err(|e| format!("sms_webhook_url {e}"))?;
        Ok(WebhookAdapter {
            url: url.to_owned(),
            client: crate::outbound::Outbound::new(timeout, extra_roots)?,
        })
    }
}

impl Adapter for WebhookAdapter {
    fn deliver<'a>(&'a self, m: &'a Outgoing) -> DeliveryFuture<'a> {
        Box::pin(async move {
            let body = serde_json::json!({
                "id": m.id,
                "to": m.address,
                "channel": m.channel.code(),
                "locale": m.locale.tag(),
                "text": m.body,
            })
            .to_string();
            let r = self
                .client
                .send(
                    hyper::Method::POST,
                    &self.url,
                    Some(("application/json", body.into_bytes())),
                )
                .await?;
            if (200..300).contains(&r.status) {
                Ok(())
            } else {
                Err(format!("gateway answered {}", r.status))
            }
        })
    }
}

/// Delivery settings.
#[derive(Debug, Clone, Copy)]
pub struct OutboxSettings {
    /// Tries before a message is marked failed.
    pub max_attempts: u32,
    /// Wait before the first retry; doubled for each further one (capped at one hour).
    pub retry_base: Duration,
    /// How long a claimed message is reserved for its worker.
    pub lease: Duration,
    /// Messages claimed at once.
    pub batch: i64,
    /// Longest one delivery may take.
    pub delivery_timeout: Duration,
}

impl Default for OutboxSettings {
    fn default() -> Self {
        OutboxSettings {
            max_attempts: 8,
            retry_base: Duration::from_secs(10),
            lease: Duration::from_secs(300),
            batch: 32,
            delivery_timeout: Duration::from_secs(30),
        }
    }
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
    pub async fn record_and_notify(
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
        self.record_with(entry, combined).await
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
        let claimed = self
            .db()
            .outbox_claim_due(now, now + to_time(settings.lease), settings.batch)
            .await?;
        let mut report = DeliveryReport::default();
        for stored in claimed {
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
        let adapter = self.adapters().for_channel(channel);
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
