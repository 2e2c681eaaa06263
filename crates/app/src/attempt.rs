//! Codes typed at a provider (access keys, restricted-control unlock codes): limited per
//! recipient and per provider with the same progressive delay and lock as logins; at the lock
//! the recipient is told and an alert is raised.

use std::collections::BTreeMap;

use ehrshare_core::alert::AlertStatus;
use ehrshare_core::audit::Outcome;
use ehrshare_core::notification::Carries;
use ehrshare_store::alert::AlertRow;
use ehrshare_store::recipient::RecipientRow;
use ehrshare_store::{Conn, change};
use uuid::Uuid;

use crate::caller::Caller;
use crate::error::invalid;
use crate::recipient::{Registration, recipient_notice};
use crate::{App, AppError};

/// A secret typed at a provider for a recipient (SPEC 3.4, "brute force"): an access key, or
/// a restricted-control unlock code (3.7). Attempts are limited per recipient and per provider
/// with the logins' progressive delay and lock (`core::login`, the `user_throttle` policy); at
/// the lock the recipient is told and an alert is raised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Typed {
    AccessKey,
    UnlockCode,
}

impl Typed {
    /// The attempt counter of a recipient's typed secret.
    pub(crate) fn recipient_key(self, recipient: Uuid) -> String {
        format!("{}-recipient:{recipient}", self.name())
    }

    fn name(self) -> &'static str {
        match self {
            Typed::AccessKey => "access-key",
            Typed::UnlockCode => "unlock-code",
        }
    }

    /// The audit action of an attempt.
    pub(crate) fn action(self) -> &'static str {
        match self {
            Typed::AccessKey => "access-key.check",
            Typed::UnlockCode => "restriction.unlock",
        }
    }

    fn throttled(self) -> &'static str {
        match self {
            Typed::AccessKey => "access-key-throttled",
            Typed::UnlockCode => "unlock-code-throttled",
        }
    }

    /// The error code once locked, also the alert's rule.
    fn locked_code(self) -> &'static str {
        match self {
            Typed::AccessKey => "access-key-locked",
            Typed::UnlockCode => "unlock-code-locked",
        }
    }
}

/// An attempt let through the limits.
pub(crate) struct Attempt {
    typed: Typed,
    hcp: Uuid,
    /// Per recipient, then per provider.
    keys: Vec<String>,
    records: Vec<ehrshare_core::login::Failures>,
    /// Locked before this attempt: it fails whatever is typed.
    pub(crate) locked: bool,
}

impl Attempt {
    /// A success clears the recipient's count (not the provider's).
    pub(crate) fn clear_on_success(&self) -> String {
        self.keys[0].clone()
    }
}

/// What a failed attempt writes, in the transaction of its audit entry.
pub(crate) struct AttemptFailure {
    typed: Typed,
    rows: Vec<(String, crate::login::OneMore)>,
    alert: Option<AlertRow>,
    notices: Vec<crate::outbox::Notice>,
    /// Locked before the attempt.
    pub(crate) was_locked: bool,
    /// Locked now.
    locked: bool,
}

impl AttemptFailure {
    /// The error to answer (`otherwise` unless locked) and the notices to send with the entry.
    pub(crate) fn error(&mut self, otherwise: AppError) -> (AppError, Vec<crate::outbox::Notice>) {
        let notices = std::mem::take(&mut self.notices);
        let error = if self.locked {
            AppError::Forbidden {
                code: self.typed.locked_code(),
                message: "too many wrong attempts: locked for now".to_owned(),
            }
        } else {
            otherwise
        };
        (error, notices)
    }

    /// Writes the failure counts and the alert.
    pub(crate) async fn write(&self, mut conn: Conn<'_>) -> Result<(), ehrshare_store::StoreError> {
        for (k, f) in &self.rows {
            f.write(conn.reborrow(), k).await?;
        }
        if let Some(a) = &self.alert {
            ehrshare_store::alert::insert_alert(conn, a).await?;
        }
        Ok(())
    }
}

impl App {
    /// Checks an access key typed at provider `hcp` for `reg`, under the attempt limits
    /// ([`Typed`]). A wrong key is audited; the lock tells the recipient and raises an alert.
    pub(crate) async fn check_access_key(
        &self,
        caller: &Caller,
        reg: &Registration,
        hcp: Uuid,
        key: &str,
    ) -> Result<(), AppError> {
        let attempt = self
            .attempt(Typed::AccessKey, caller, reg.recipient.id, hcp)
            .await?;
        let hash = self.db().access_key_hash(reg.recipient.id).await?;
        let ok = match hash {
            Some(h) => crate::secret::verify_secret(key.to_owned(), h).await,
            None => false,
        };
        if ok && !attempt.locked {
            let clear = attempt.clear_on_success();
            let update = change(move |conn: Conn<'_>| {
                Box::pin(async move { ehrshare_store::account::clear_failures(conn, &clear).await })
            });
            let mut entry = caller.entry(self, Typed::AccessKey.action(), Outcome::Allowed);
            entry.recipient = Some(reg.recipient.id);
            self.audit_with(entry, update).await?;
            return Ok(());
        }
        let mut failed = self.attempt_failed(attempt, &reg.recipient, caller).await?;
        let mut entry = caller.entry(self, Typed::AccessKey.action(), Outcome::Denied);
        entry.recipient = Some(reg.recipient.id);
        entry.denial_reason = Some(
            if failed.was_locked {
                "locked"
            } else {
                "wrong-access-key"
            }
            .to_owned(),
        );
        let (error, notices) = failed.error(invalid(
            "/access_key",
            "wrong-access-key",
            "the access key is not right",
        ));
        let update =
            change(move |conn: Conn<'_>| Box::pin(async move { failed.write(conn).await }));
        self.audit_and_notify(entry, Some(update), notices).await?;
        Err(error)
    }

    /// Lets an attempt at a typed secret through the limits (429 while a delay runs, audited);
    /// `locked` says whether the key is locked (the attempt must then fail, whatever is typed).
    pub(crate) async fn attempt(
        &self,
        typed: Typed,
        caller: &Caller,
        recipient: Uuid,
        hcp: Uuid,
    ) -> Result<Attempt, AppError> {
        let keys = vec![
            typed.recipient_key(recipient),
            format!("{}-provider:{hcp}", typed.name()),
        ];
        let (records, locked) = self
            .throttle_gate(&keys, caller, typed.action(), typed.throttled())
            .await?;
        Ok(Attempt {
            typed,
            hcp,
            keys,
            records,
            locked,
        })
    }

    /// What a failed attempt changes: one more failure on each key; at the lock, a notice to
    /// the recipient and an alert for the provider's administrators and the office.
    pub(crate) async fn attempt_failed(
        &self,
        attempt: Attempt,
        recipient: &RecipientRow,
        caller: &Caller,
    ) -> Result<AttemptFailure, AppError> {
        let typed = attempt.typed;
        let (rows, newly_locked) = self.after_failure(attempt.keys, attempt.records);
        let mut notices = Vec::new();
        if newly_locked {
            let (hcp, _) = self.provider_brief(attempt.hcp, self.clock().now()).await?;
            notices.push(recipient_notice(
                recipient,
                None,
                typed.locked_code(),
                Carries::News,
                BTreeMap::from([(
                    "provider".to_owned(),
                    format!("{} {}", hcp.name_zh, hcp.name_en),
                )]),
            ));
        }
        let alert = newly_locked.then(|| AlertRow {
            id: Uuid::now_v7(),
            rule: typed.locked_code().to_owned(),
            hcp_id: Some(attempt.hcp),
            account_id: caller.actor.account,
            recipient_id: Some(recipient.id),
            detail: Some(format!(
                "repeated wrong {}s",
                typed.name().replace('-', " ")
            )),
            status: AlertStatus::Open,
            note: None,
            audit_seq: None,
            reported_by: None,
            created_at: self.clock().now(),
        });
        Ok(AttemptFailure {
            typed,
            rows,
            alert,
            notices,
            was_locked: attempt.locked,
            locked: attempt.locked || newly_locked,
        })
    }
}
