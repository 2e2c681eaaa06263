//! Delivering notifications: one adapter per channel. `log` (a file in the data folder; the
//! default, for development and the demo: it holds access keys and one-time passwords in
//! clear, so it is created with mode 0600), SMTP e-mail (lettre; plain SMTP to a relay) and an
//! HTTP webhook (for an SMS gateway; http:// or https:// with certificate verification).

use std::fmt;
use std::future::Future;
use std::io::Write;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ehrshare_core::locale::Locale;
use ehrshare_core::notification::Channel;
use uuid::Uuid;

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

/// The future an adapter returns: `Err` carries a reason to record (no secrets).
pub type DeliveryFuture<'a> = Pin<Box<dyn Future<Output = Result<(), String>> + Send + 'a>>;

/// Something that sends messages of one or more channels.
pub trait Adapter: Send + Sync + fmt::Debug {
    fn deliver<'a>(&'a self, message: &'a Outgoing) -> DeliveryFuture<'a>;
}

/// Which adapter serves which channel. Letters and the portal's inbox need none: letters wait
/// in the office's print queue, inbox notices are written with their action.
#[derive(Debug, Clone)]
pub struct Adapters {
    pub email: Arc<dyn Adapter>,
    pub sms: Arc<dyn Adapter>,
}

impl Adapters {
    /// Every channel to one adapter.
    pub fn all(adapter: Arc<dyn Adapter>) -> Adapters {
        Adapters {
            email: Arc::clone(&adapter),
            sms: adapter,
        }
    }

    pub(crate) fn for_channel(&self, channel: Channel) -> Option<&Arc<dyn Adapter>> {
        match channel {
            Channel::Email => Some(&self.email),
            Channel::Sms => Some(&self.sms),
            Channel::Post | Channel::App => None,
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
