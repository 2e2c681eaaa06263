//! The disclosure ledger (SPEC 3.11): the office's privacy officers record each disclosure
//! outside care; the recipient sees it in their access log (`App::recipient_access_log`),
//! unless it is withheld, and then from the moment the period ends
//! (`core::disclosure::visible`).

use ehrshare_core::audit::Outcome;
use ehrshare_core::disclosure::{DatesRefused, LegalBasis};
pub use ehrshare_store::disclosure::DisclosureRow;
use ehrshare_store::{Conn, change};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::access_log::is_privacy_officer;
use crate::auth::Session;
use crate::caller::Caller;
use crate::error::invalid;
use crate::{App, AppError};

pub use ehrshare_core::disclosure::DISCLOSURE_ACTION;

/// A disclosure to record.
#[derive(Debug, Clone, Default)]
pub struct DisclosureInput {
    /// `court-order`, `police`, `coroner` or `research`.
    pub legal_basis: String,
    pub requesting_body: String,
    pub data_disclosed: String,
    /// `YYYY-MM-DD` (Hong Kong's date).
    pub disclosed_on: String,
    /// Until when the recipient is not told (none: at once).
    pub withhold_until: Option<OffsetDateTime>,
}

impl App {
    /// A privacy officer records a disclosure about a recipient (others: 404). Audited; the
    /// entry is the recipient's to see when the disclosure is.
    pub async fn record_disclosure(
        &self,
        session: &Session,
        caller: &Caller,
        recipient: Uuid,
        input: DisclosureInput,
    ) -> Result<DisclosureRow, AppError> {
        let now = self.clock().now();
        if !is_privacy_officer(session) {
            return Err(AppError::NotFound);
        }
        let officer = session.account().ok_or(AppError::NotFound)?.id;
        let basis = LegalBasis::parse(input.legal_basis.trim()).ok_or_else(|| {
            invalid(
                "/legal_basis",
                "invalid-legal-basis",
                "court-order, police, coroner or research",
            )
        })?;
        let body = required("/requesting_body", &input.requesting_body)?;
        crate::limits::check(
            "/requesting_body",
            Some(body),
            crate::limits::REQUESTING_BODY,
        )?;
        let data = required("/data_disclosed", &input.data_disclosed)?;
        crate::limits::check("/data_disclosed", Some(data), crate::limits::DATA_DISCLOSED)?;
        let format = time::macros::format_description!("[year]-[month]-[day]");
        let disclosed_on = time::Date::parse(input.disclosed_on.trim(), format)
            .map_err(|_| invalid("/disclosed_on", "invalid-date", "a date, YYYY-MM-DD"))?;
        ehrshare_core::disclosure::check_dates(disclosed_on, input.withhold_until, now).map_err(
            |refused| match refused {
                DatesRefused::DisclosedInTheFuture => invalid(
                    "/disclosed_on",
                    "disclosed-in-the-future",
                    "the ledger records disclosures made, up to today",
                ),
                DatesRefused::WithholdingNotAhead => invalid(
                    "/withhold_until",
                    "withholding-not-ahead",
                    "a withholding period ends after now and within ten years",
                ),
            },
        )?;
        self.load_recipient(recipient).await?;
        let row = DisclosureRow {
            id: Uuid::now_v7(),
            recipient_id: recipient,
            legal_basis: basis.code().to_owned(),
            requesting_body: body.to_owned(),
            data_disclosed: data.to_owned(),
            disclosed_on: disclosed_on.to_string(),
            withhold_until: input.withhold_until,
            recorded_by: officer,
            recorded_at: now,
        };
        let mut entry = caller.entry(self, DISCLOSURE_ACTION, Outcome::Allowed);
        entry.recipient = Some(recipient);
        entry.record_ids = vec![row.id];
        entry.reason = Some(format!("{}: {body}", basis.code()));
        let stored = row.clone();
        let insert = change(move |conn: Conn<'_>| {
            Box::pin(
                async move { ehrshare_store::disclosure::insert_disclosure(conn, &stored).await },
            )
        });
        self.audit_with(entry, insert).await?;
        Ok(row)
    }

    /// A recipient's disclosures, withheld or not, for the office's privacy officers.
    pub async fn office_disclosures(
        &self,
        session: &Session,
        recipient: Uuid,
    ) -> Result<Vec<DisclosureRow>, AppError> {
        if !is_privacy_officer(session) {
            return Err(AppError::NotFound);
        }
        self.load_recipient(recipient).await?;
        Ok(self.db().disclosures(recipient).await?)
    }
}

/// `text` trimmed, or 422 `required` at `field` when empty.
fn required<'a>(field: &str, text: &'a str) -> Result<&'a str, AppError> {
    let t = text.trim();
    if t.is_empty() {
        return Err(invalid(field, "required", "required"));
    }
    Ok(t)
}
