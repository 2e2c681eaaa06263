//! ehrshare-app: the use cases, one function each, and the policy enforcement point.
//!
//! Invariants:
//! - This crate is the only caller of `core`'s access decision. Every use case that reads or
//!   writes patient data loads the facts from `store`, asks the decision, makes the audit entry
//!   durable, and only then acts.
//! - Nothing here knows HTTP. Errors are [`AppError`] with stable codes; `web` maps them to
//!   responses in one place.
//! - The clock, the notification adapters and the checkpoint signer are injected (`Services`),
//!   so tests run on a fixed clock and read what was sent.

pub mod access;
pub mod access_log;
pub mod account;
pub mod alert;
pub mod attempt;
pub mod audit;
pub mod auth;
pub mod bench;
pub mod caller;
pub mod card;
pub mod checkpoint;
pub mod client_assertion;
pub mod clock;
pub mod consent;
pub mod counter;
pub mod delivery;
pub mod demo_reader;
pub mod deposit;
pub mod disclosure;
pub mod duty;
pub mod emergency;
pub mod enrolment;
pub mod episode;
pub mod error;
pub mod fhir_write;
pub mod health;
pub mod inbox;
pub mod leader;
pub mod limits;
pub mod login;
pub mod oauth;
#[cfg(feature = "oidc")]
pub mod oidc;
pub mod outbound;
pub mod outbox;
pub mod own_record;
pub mod password;
pub mod person;
pub mod provider;
pub mod qr_consent;
pub mod recipient;
pub mod record;
pub mod restriction;
pub mod seal;
pub mod search;
pub mod secret;
pub mod self_service;
pub mod settings;
pub mod shared_limit;
pub mod signer;
pub mod text;
pub mod transparency;
pub mod user_admin;
pub mod verify;

use std::sync::Arc;

use ehrshare_core::clock::Clock;
use ehrshare_store::{AuditLog, AuditOptions, Db};

use crate::checkpoint::{CheckpointFile, Checkpoints};
use crate::signer::Signer;

pub use error::AppError;
pub use settings::Settings;

/// What the application is wired with besides its database and settings.
#[derive(Debug)]
pub struct Services {
    /// The clock every use case reads.
    pub clock: Arc<dyn Clock>,
    /// Signer and file for audit checkpoints (none: no checkpoints, as in benchmarks).
    pub checkpoints: Option<(Box<dyn Signer>, CheckpointFile)>,
    /// Notification delivery, per channel.
    pub adapters: delivery::Adapters,
    /// The key sealing security-token seeds at rest.
    pub seal: seal::SealKey,
    /// The receipt key: signs consent receipts and the location tokens of QR codes (ADR 0018);
    /// never the audit key.
    pub receipt_key: Box<dyn Signer>,
}

/// The application: shared, cheap to clone, one per process.
#[derive(Debug, Clone)]
pub struct App {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    db: Db,
    audit: AuditLog,
    checkpoints: Option<Checkpoints>,
    adapters: delivery::Adapters,
    clock: Arc<dyn Clock>,
    settings: Settings,
    /// See `auth`: verified against when a login names no account.
    stand_in_hash: tokio::sync::OnceCell<String>,
    seal: seal::SealKey,
    receipt_key: Box<dyn Signer>,
    alert_scan: tokio::sync::Mutex<ehrshare_core::alert::ScanState>,
    /// Whether an election runs ([`leader::spawn_leader`]), and whether this process won it;
    /// an App without one (tests, the command line's one-off commands) leads itself.
    election_runs: std::sync::atomic::AtomicBool,
    election_won: std::sync::atomic::AtomicBool,
}

impl App {
    /// Wires the application over an opened, migrated database and starts the audit writer.
    /// With `checkpoints`, tree heads are signed with the signer and appended to the file.
    pub async fn start(db: Db, settings: Settings, services: Services) -> Result<App, AppError> {
        let Services {
            clock,
            checkpoints,
            adapters,
            seal,
            receipt_key,
        } = services;
        let audit = AuditLog::open(db.clone(), AuditOptions::default()).await?;
        let checkpoints = match checkpoints {
            None => None,
            Some((signer, file)) => Some(
                checkpoint::open_checkpoints(
                    &db,
                    &audit,
                    signer,
                    file,
                    clock.now(),
                    settings.accept_rollback,
                )
                .await?,
            ),
        };
        Ok(App {
            inner: Arc::new(Inner {
                db,
                audit,
                checkpoints,
                adapters,
                clock: Arc::new(clock::Stored(clock)),
                settings,
                stand_in_hash: tokio::sync::OnceCell::new(),
                seal,
                receipt_key,
                alert_scan: tokio::sync::Mutex::new(ehrshare_core::alert::ScanState::default()),
                election_runs: std::sync::atomic::AtomicBool::new(false),
                election_won: std::sync::atomic::AtomicBool::new(false),
            }),
        })
    }

    /// The settings in force.
    pub fn settings(&self) -> &Settings {
        &self.inner.settings
    }

    /// The clock use cases read.
    pub fn clock(&self) -> &dyn Clock {
        self.inner.clock.as_ref()
    }

    pub(crate) fn db(&self) -> &Db {
        &self.inner.db
    }

    /// The audit log's writer handle.
    pub fn audit_log(&self) -> &AuditLog {
        &self.inner.audit
    }

    pub(crate) fn seal(&self) -> &seal::SealKey {
        &self.inner.seal
    }

    pub(crate) fn receipt_key(&self) -> &dyn Signer {
        self.inner.receipt_key.as_ref()
    }

    pub(crate) fn adapters(&self) -> &delivery::Adapters {
        &self.inner.adapters
    }

    pub(crate) fn checkpoints(&self) -> Option<&Checkpoints> {
        self.inner.checkpoints.as_ref()
    }

    /// The database engine in use.
    pub fn backend(&self) -> ehrshare_store::Backend {
        self.inner.db.backend()
    }

    /// A fact about this database (`ehrshare_meta`), such as whether the demo was loaded.
    pub async fn meta(&self, key: &str) -> Result<Option<String>, AppError> {
        Ok(self.inner.db.meta(key).await?)
    }

    /// Records that `key` happened, now (once).
    pub async fn mark_meta(&self, key: &str) -> Result<bool, AppError> {
        let now = self
            .clock()
            .now()
            .format(&time::format_description::well_known::Rfc3339)
            .map_err(|e| AppError::Internal(Box::new(e)))?;
        Ok(self.inner.db.set_meta_once(key, &now).await?)
    }

    /// Stops taking database work and closes the pool (at shutdown).
    pub async fn close(&self) {
        self.inner.db.close().await;
    }
}
