//! Where notices by the `app` and `post` channels end up (SPEC 3.10, issue 26 item 3): the
//! patient portal's inbox, kept in the database and read through `/api/v1/me`, and the print
//! queue from which the office's registration officers print and mail letters.
//!
//! Both are written in the transaction of the action that caused the notice
//! (`store::outbox::enqueue`); the delivery worker sends neither.

use std::collections::HashMap;

use ehrshare_core::account::{OfficeRole, Realm};
use ehrshare_core::audit::Outcome;
use ehrshare_core::locale::Locale;
use ehrshare_store::{Conn, change};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::auth::{Session, Subject};
use crate::caller::Caller;
use crate::outbox::render;
use crate::{App, AppError};

/// Messages a page.
pub const PAGE: i64 = 50;

/// A notice rendered as its recipient reads it (in the language it was written in).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub id: Uuid,
    pub at: OffsetDateTime,
    /// The template's id (`consent-changed`, `access-notice`, ...).
    pub kind: String,
    pub locale: Locale,
    pub subject: String,
    pub body: String,
    /// When the recipient first opened it (inbox only).
    pub read_at: Option<OffsetDateTime>,
    /// Where the letter goes (print queue only).
    pub address: Option<String>,
    pub recipient: Option<Uuid>,
}

fn rendered(
    id: Uuid,
    at: OffsetDateTime,
    template: &str,
    locale: &str,
    params: &serde_json::Value,
) -> Result<Rendered, AppError> {
    let locale = Locale::parse(locale).unwrap_or_default();
    let params: HashMap<String, String> =
        serde_json::from_value(params.clone()).map_err(|e| AppError::Internal(Box::new(e)))?;
    let (subject, body) = render(template, locale, &params).ok_or_else(|| {
        AppError::Internal(format!("stored notice {id} cannot be rendered").into())
    })?;
    Ok(Rendered {
        id,
        at,
        kind: template.to_owned(),
        locale,
        subject,
        body,
        read_at: None,
        address: None,
        recipient: None,
    })
}

fn is_registration_officer(session: &Session) -> Option<Uuid> {
    match &session.subject {
        Subject::Account(a)
            if a.realm == Realm::Office
                && OfficeRole::parse(&a.role).is_some_and(OfficeRole::registers) =>
        {
            Some(a.id)
        }
        _ => None,
    }
}

impl App {
    /// The inbox of a recipient, for the recipient or an SDM who acts for them (anyone else:
    /// 404): newest first, `PAGE` older than `before`.
    pub async fn inbox(
        &self,
        session: &Session,
        recipient: Uuid,
        before: Option<Uuid>,
    ) -> Result<Vec<Rendered>, AppError> {
        self.acting_for(session, recipient).await?;
        let rows = self.db().inbox(recipient, before, PAGE).await?;
        Ok(rows
            .into_iter()
            .map(|m| {
                // A notice this build cannot render (a template since removed) is listed by
                // its kind rather than failing the whole inbox.
                let mut r = rendered(m.id, m.created_at, &m.template, &m.locale, &m.params)
                    .unwrap_or_else(|_| Rendered {
                        id: m.id,
                        at: m.created_at,
                        kind: m.template.clone(),
                        locale: Locale::parse(&m.locale).unwrap_or_default(),
                        subject: m.template.clone(),
                        body: String::new(),
                        read_at: None,
                        address: None,
                        recipient: None,
                    });
                r.read_at = m.read_at;
                r.recipient = Some(m.recipient_id);
                r
            })
            .collect())
    }

    /// Marks a message of the inbox read (the first reading is kept); another recipient's
    /// message is 404.
    pub async fn mark_inbox_read(
        &self,
        session: &Session,
        recipient: Uuid,
        message: Uuid,
    ) -> Result<(), AppError> {
        self.acting_for(session, recipient).await?;
        let now = self.clock().now();
        if self.db().inbox_mark_read(recipient, message, now).await? {
            Ok(())
        } else {
            Err(AppError::NotFound)
        }
    }

    /// The print queue, for the office's registration officers (anyone else: 404): letters
    /// not yet printed, oldest first, `PAGE` after `after`, as (id, when, template, language)
    /// only: a letter's address and words are opened one at a time ([`App::letter`]).
    pub async fn print_queue(
        &self,
        session: &Session,
        after: Option<Uuid>,
    ) -> Result<Vec<(Uuid, OffsetDateTime, String, Locale)>, AppError> {
        is_registration_officer(session).ok_or(AppError::NotFound)?;
        let rows = self.db().print_queue(after, PAGE).await?;
        Ok(rows
            .into_iter()
            .map(|s| {
                let m = s.message;
                let locale = Locale::parse(&m.locale).unwrap_or_default();
                (m.id, m.created_at, m.template, locale)
            })
            .collect())
    }

    /// One letter of the print queue, to print: its address and words (for an access key,
    /// the key). Audited with the recipient, whose access log shows that the office opened
    /// it; a letter not in the queue is 404.
    pub async fn letter(
        &self,
        session: &Session,
        caller: &Caller,
        letter: Uuid,
    ) -> Result<Rendered, AppError> {
        is_registration_officer(session).ok_or(AppError::NotFound)?;
        let m = self
            .db()
            .outbox_message(letter)
            .await?
            .filter(|s| s.message.channel == "post" && s.status == "pending")
            .ok_or(AppError::NotFound)?
            .message;
        let mut r = rendered(m.id, m.created_at, &m.template, &m.locale, &m.params)?;
        r.address = Some(m.address);
        r.recipient = m.recipient;
        let mut entry = caller.entry(self, "print-queue.open", Outcome::Allowed);
        entry.recipient = m.recipient;
        entry.record_ids = vec![letter];
        self.audit(entry).await?;
        Ok(r)
    }

    /// A registration officer records that a letter was printed: it leaves the queue and its
    /// contents are erased. Audited with the recipient; a letter already printed is 409
    /// `already-printed`, one that is not in the queue 404.
    pub async fn mark_printed(
        &self,
        session: &Session,
        caller: &Caller,
        letter: Uuid,
    ) -> Result<(), AppError> {
        is_registration_officer(session).ok_or(AppError::NotFound)?;
        let stored = self
            .db()
            .outbox_message(letter)
            .await?
            .filter(|s| s.message.channel == "post")
            .ok_or(AppError::NotFound)?;
        if stored.status != "pending" {
            return Err(AppError::Conflict {
                code: "already-printed",
                message: "this letter has left the print queue".to_owned(),
            });
        }
        let now = self.clock().now();
        let mut entry = caller.entry(self, "print-queue.printed", Outcome::Allowed);
        entry.recipient = stored.message.recipient;
        entry.record_ids = vec![letter];
        let mark = change(move |conn: Conn<'_>| {
            Box::pin(async move { ehrshare_store::outbox::mark_printed(conn, letter, now).await })
        });
        self.audit_with(entry, mark).await?;
        Ok(())
    }
}
