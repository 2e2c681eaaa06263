//! Sharing consents (SPEC 3.4): given at a provider (access key, signed form, smart ID card),
//! in the app, by phone through the office; revoked.

use std::collections::BTreeMap;

use ehrshare_core::account::Realm;
use ehrshare_core::audit::Outcome;
use ehrshare_core::consent::{ConsentKind, Method};
use ehrshare_core::identity::{Document, DocumentType};
use ehrshare_core::notification::Carries;
use ehrshare_core::recipient::RecipientStatus;
use ehrshare_store::consent::ConsentRow;
use ehrshare_store::{Conn, change};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::auth::Session;
use crate::caller::Caller;
use crate::error::invalid;
use crate::recipient::{Registration, recipient_notice};
use crate::{App, AppError};

pub use ehrshare_store::consent::ConsentRow as ConsentRecord;

/// A consent as entered at a provider.
#[derive(Debug, Clone, Default)]
pub struct ConsentInput {
    /// `access-key` or `form` (at a provider); the patient portal uses `app`.
    pub method: String,
    pub access_key: Option<String>,
    /// The signed form's reference (method `form`).
    pub form_ref: Option<String>,
    /// `one-year` or `indefinite` (2016 regime); refused under 2025 (consents are untyped).
    pub kind: Option<String>,
}

/// The parameters of a `consent-changed` notice. `change` is a code the message selects its
/// words by in each language (`given-one-year`, `given-indefinite`, `given`, `revoked`), never
/// words of one language in the other's message.
pub(crate) fn consent_params(
    hcp: &ehrshare_store::provider::HcpRow,
    at: OffsetDateTime,
    change: &'static str,
) -> BTreeMap<String, String> {
    let hk = ehrshare_core::clock::in_hong_kong(at);
    BTreeMap::from([
        (
            "provider".to_owned(),
            format!("{} {}", hcp.name_zh, hcp.name_en),
        ),
        (
            "time".to_owned(),
            format!(
                "{:04}-{:02}-{:02} {:02}:{:02}",
                hk.year(),
                u8::from(hk.month()),
                hk.day(),
                hk.hour(),
                hk.minute()
            ),
        ),
        ("change".to_owned(), change.to_owned()),
    ])
}

impl App {
    /// The consent kind a new consent gets under the regime in force (`core`'s rule); a type
    /// asked for under 2025 is refused by name, not ignored.
    pub(crate) fn consent_kind(&self, asked: Option<&str>) -> Result<ConsentKind, AppError> {
        use ehrshare_core::consent::KindRefused;
        self.settings()
            .regime
            .new_consent_kind(asked)
            .map_err(|refused| match refused {
                KindRefused::Unknown => {
                    invalid("/kind", "invalid-consent-kind", "one-year or indefinite")
                }
                KindRefused::NotUnderThisRegime => invalid(
                    "/kind",
                    "consent-kind-not-applicable",
                    "under the 2025 rules a sharing consent has no type: it holds until revoked",
                ),
            })
    }

    /// A provider's user records the recipient's sharing consent with their provider: by the
    /// access key the recipient tells them, or by a signed paper form. Replaces any earlier
    /// consent with that provider (a renewal or a change of type). Confirmed to the recipient.
    pub async fn give_consent(
        &self,
        session: &Session,
        caller: &Caller,
        recipient: Uuid,
        input: ConsentInput,
    ) -> Result<ConsentRow, AppError> {
        let now = self.clock().now();
        let asker = self.asker(session).await?;
        let hcp = asker.requester.hcp;
        let reg = self.load_recipient(recipient).await?;
        self.check_care_recording(&asker, caller, "consent.give", &reg)
            .await?;
        let kind = self.consent_kind(input.kind.as_deref())?;
        let (method, method_ref) = match input.method.as_str() {
            "access-key" => {
                let key = input.access_key.as_deref().unwrap_or("").trim().to_owned();
                self.check_access_key(caller, &reg, hcp, &key).await?;
                (Method::AccessKey, None)
            }
            "form" => {
                let reference = input
                    .form_ref
                    .as_deref()
                    .map(str::trim)
                    .filter(|r| !r.is_empty() && r.chars().count() <= 100)
                    .ok_or_else(|| {
                        invalid("/form_ref", "required", "the signed form's reference")
                    })?;
                (Method::Form, Some(reference.to_owned()))
            }
            _ => return Err(invalid("/method", "invalid-method", "access-key or form")),
        };
        self.store_consent(
            caller,
            &reg,
            hcp,
            kind,
            method,
            method_ref,
            None,
            asker.account,
            now,
        )
        .await
    }

    /// Consent by smart ID card: the reader's signed assertion names the card holder
    /// ([`App::check_card`], then [`App::claim_card`]). A refusal is audited with its reason.
    /// `for_recipient` is the patient the counter means (the portal's patient page): a card
    /// of anyone else is refused with `card-not-this-patient` before the reading is used up.
    pub async fn give_consent_by_card(
        &self,
        session: &Session,
        caller: &Caller,
        assertion: ehrshare_core::consent::CardAssertion,
        signature_b64: &str,
        kind: Option<&str>,
        for_recipient: Option<Uuid>,
    ) -> Result<ConsentRow, AppError> {
        let now = self.clock().now();
        let asker = self.asker(session).await?;
        let hcp = asker.requester.hcp;
        self.check_card(hcp, caller, "consent.card", &assertion, signature_b64)
            .await?;
        let doc = Document::parse(DocumentType::Hkid, "HK", &assertion.hkid)
            .map_err(|e| invalid("/hkid", "invalid-hkid", &e.to_string()))?;
        let found = self
            .db()
            .recipient_by_document(doc.kind.code(), &doc.issuer, &doc.number)
            .await?;
        // A card of nobody registered is, at a patient's page, simply not the patient's.
        if let Some(meant) = for_recipient.filter(|m| found != Some(*m)) {
            let mut entry = caller.entry(self, "consent.card", Outcome::Denied);
            entry.denial_reason = Some("card-not-this-patient".to_owned());
            entry.recipient = Some(meant);
            entry.record_ids = vec![assertion.reader];
            self.audit(entry).await?;
            return Err(AppError::Forbidden {
                code: "card-not-this-patient",
                message: "the card read is not this patient's".to_owned(),
            });
        }
        let recipient = found.ok_or(AppError::NotFound)?;
        let reg = self.load_recipient(recipient).await?;
        self.check_care_recording(&asker, caller, "consent.card", &reg)
            .await?;
        let kind = self.consent_kind(kind)?;
        self.claim_card(caller, "consent.card", recipient, &assertion)
            .await?;
        self.store_consent(
            caller,
            &reg,
            hcp,
            kind,
            Method::SmartIdCard,
            Some(format!(
                "reader {}, card {}",
                assertion.reader, assertion.card_serial
            )),
            None,
            asker.account,
            now,
        )
        .await
    }

    /// Stores a consent (revoking the provider's earlier one in the same transaction), audited
    /// and confirmed to the recipient.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn store_consent(
        &self,
        caller: &Caller,
        reg: &Registration,
        hcp: Uuid,
        kind: ConsentKind,
        method: Method,
        method_ref: Option<String>,
        sdm: Option<Uuid>,
        account: Option<Uuid>,
        now: OffsetDateTime,
    ) -> Result<ConsentRow, AppError> {
        let provider = self.provider(hcp).await?;
        let row = ConsentRow {
            id: Uuid::now_v7(),
            recipient_id: reg.recipient.id,
            hcp_id: hcp,
            kind: kind.code().to_owned(),
            method: method.code().to_owned(),
            method_ref,
            given_at: now,
            revoked_at: None,
            sdm_id: sdm,
            account_id: account,
            created_at: now,
        };
        let mut entry = caller.entry(self, "consent.give", Outcome::Allowed);
        entry.recipient = Some(reg.recipient.id);
        entry.sdm = sdm;
        entry.consent_id = Some(row.id);
        entry.reason = Some(format!("{} by {}", kind.code(), method.code()));
        // To the SDM who gave it, else to one who acts for the recipient now, by their channel.
        let acting = match sdm.and_then(|id| reg.sdms.iter().find(|s| s.sdm_id == id)) {
            Some(s) => Some(s),
            None => crate::recipient::messaged_sdm(reg, now)?,
        };
        let notice = recipient_notice(
            &reg.recipient,
            acting,
            "consent-changed",
            Carries::News,
            consent_params(
                &provider.hcp,
                now,
                match kind {
                    ConsentKind::OneYear => "given-one-year",
                    ConsentKind::Indefinite => "given-indefinite",
                    ConsentKind::Untyped => "given",
                },
            ),
        );
        // A consent given by scan is confirmed by a signed receipt, kept with it (ADR 0018).
        let receipt = (method == Method::QrScan)
            .then(|| self.receipt_for(&row))
            .transpose()?;
        let stored = row.clone();
        let insert = change(move |mut conn: Conn<'_>| {
            Box::pin(async move {
                ehrshare_store::consent::revoke_consents(
                    conn.reborrow(),
                    stored.recipient_id,
                    stored.hcp_id,
                    stored.given_at,
                )
                .await?;
                ehrshare_store::consent::insert_consent(conn.reborrow(), &stored).await?;
                if let Some(r) = &receipt {
                    ehrshare_store::consent::insert_receipt(conn, r).await?;
                }
                Ok(())
            })
        });
        self.audit_and_notify(entry, Some(insert), vec![notice])
            .await?;
        Ok(row)
    }

    /// The recipient (or an SDM) gives a provider sharing consent in the patient portal.
    pub async fn give_consent_in_app(
        &self,
        session: &Session,
        caller: &Caller,
        recipient: Uuid,
        hcp: Uuid,
        kind: Option<&str>,
    ) -> Result<ConsentRow, AppError> {
        let now = self.clock().now();
        let sdm = self.acting_for(session, recipient).await?;
        let provider = self.provider(hcp).await?;
        if !provider.status.is_active() {
            return Err(AppError::NotFound);
        }
        let kind = self.consent_kind(kind)?;
        let reg = self.load_recipient(recipient).await?;
        self.store_consent(caller, &reg, hcp, kind, Method::App, None, sdm, None, now)
            .await
    }

    /// The office records a consent given over its telephone line (registration officers).
    pub async fn give_consent_by_phone(
        &self,
        session: &Session,
        caller: &Caller,
        recipient: Uuid,
        hcp: Uuid,
        kind: Option<&str>,
        call_ref: &str,
    ) -> Result<ConsentRow, AppError> {
        let now = self.clock().now();
        let officer = session.account().filter(|a| {
            a.realm == Realm::Office
                && ehrshare_core::account::OfficeRole::parse(&a.role).is_some_and(|r| r.registers())
        });
        let Some(officer) = officer else {
            return Err(AppError::NotFound);
        };
        let call_ref = call_ref.trim();
        if call_ref.is_empty() || call_ref.chars().count() > 100 {
            return Err(invalid("/call_ref", "required", "the call's reference"));
        }
        let provider = self.provider(hcp).await?;
        if !provider.status.is_active() {
            return Err(AppError::NotFound);
        }
        let kind = self.consent_kind(kind)?;
        let reg = self.load_recipient(recipient).await?;
        if reg.recipient.status != RecipientStatus::Active {
            let reason = ehrshare_core::access::DenyReason::RecipientNotRegistered;
            let mut entry = caller.entry(self, "consent.give", Outcome::Denied);
            entry.recipient = Some(recipient);
            entry.denial_reason = Some(reason.code().to_owned());
            self.audit(entry).await?;
            return Err(crate::access::deny_error(reason));
        }
        self.store_consent(
            caller,
            &reg,
            hcp,
            kind,
            Method::Phone,
            Some(call_ref.to_owned()),
            None,
            Some(officer.id),
            now,
        )
        .await
    }

    /// The recipient (or an SDM) revokes their consent with a provider, with effect on the
    /// very next request. Confirmed to the recipient.
    pub async fn revoke_consent(
        &self,
        session: &Session,
        caller: &Caller,
        recipient: Uuid,
        hcp: Uuid,
    ) -> Result<(), AppError> {
        let now = self.clock().now();
        let sdm = self.acting_for(session, recipient).await?;
        let reg = self.load_recipient(recipient).await?;
        let provider = self.provider(hcp).await?;
        let mut entry = caller.entry(self, "consent.revoke", Outcome::Allowed);
        entry.recipient = Some(recipient);
        entry.sdm = sdm;
        entry.record_ids = vec![hcp];
        let acting = sdm.and_then(|id| reg.sdms.iter().find(|s| s.sdm_id == id));
        let notice = recipient_notice(
            &reg.recipient,
            acting,
            "consent-changed",
            Carries::News,
            consent_params(&provider.hcp, now, "revoked"),
        );
        let revoke = change(move |conn: Conn<'_>| {
            Box::pin(async move {
                ehrshare_store::consent::revoke_consents(conn, recipient, hcp, now)
                    .await
                    .map(|_| ())
            })
        });
        self.audit_and_notify(entry, Some(revoke), vec![notice])
            .await?;
        Ok(())
    }
}

/// A consent as FHIR shows it: the row, when it ends, and whether it is in force now.
#[derive(Debug, Clone)]
pub struct ConsentState {
    pub row: ConsentRecord,
    pub ends_at: Option<OffsetDateTime>,
    pub in_force: bool,
}

impl App {
    fn consent_state(&self, row: ConsentRecord) -> ConsentState {
        let kind = ConsentKind::parse(&row.kind);
        let core = kind.map(|kind| ehrshare_core::consent::Consent {
            id: row.id,
            hcp: row.hcp_id,
            kind,
            given_at: row.given_at,
            revoked_at: row.revoked_at,
        });
        ConsentState {
            ends_at: core.and_then(|c| c.expires_at()),
            in_force: core.is_some_and(|c| {
                c.state_at(self.clock().now()) == ehrshare_core::consent::ConsentState::InForce
            }),
            row,
        }
    }

    /// Who may see the caller's provider's consents: its staff (not a clinic system alone),
    /// with a token's scope for it.
    async fn consent_reader(
        &self,
        session: &Session,
        access: ehrshare_core::oauth::Access,
    ) -> Result<crate::access::Asker, AppError> {
        let asker = self.asker(session).await?;
        // As at the counter: staff who care for patients, not a user administrator.
        if asker.system_only
            || asker.requester.role == ehrshare_core::profession::Role::UserAdministrator
            || !asker.scope_allows(access, "Consent")
        {
            return Err(AppError::NotFound);
        }
        Ok(asker)
    }

    /// The sharing consents a recipient gave the caller's provider (FHIR `Consent`,
    /// read-only), newest first; none for anyone else's (`None`: a reference to no one). The
    /// look-up is audited.
    pub async fn provider_consents(
        &self,
        session: &Session,
        caller: &Caller,
        recipient: Option<Uuid>,
    ) -> Result<Vec<ConsentState>, AppError> {
        let asker = self
            .consent_reader(session, ehrshare_core::oauth::Access::Search)
            .await?;
        // A reference that names no one of ours finds no one, once the caller may ask.
        let Some(recipient) = recipient else {
            return Ok(Vec::new());
        };
        // A token launched for one patient sees no one else's.
        let rows = if asker.launch_patient.is_none_or(|p| p == recipient) {
            self.db()
                .consents_with(recipient, asker.requester.hcp)
                .await?
        } else {
            Vec::new()
        };
        let mut entry = caller.entry(self, "consent.read", Outcome::Allowed);
        entry.recipient = self.db().recipient(recipient).await?.map(|r| r.0.id);
        self.audit(entry).await?;
        Ok(rows.into_iter().map(|r| self.consent_state(r)).collect())
    }

    /// One consent given to the caller's provider; any other is 404.
    pub async fn provider_consent(
        &self,
        session: &Session,
        caller: &Caller,
        id: Uuid,
    ) -> Result<ConsentState, AppError> {
        let asker = self
            .consent_reader(session, ehrshare_core::oauth::Access::Read)
            .await?;
        let row = self
            .db()
            .consent(id)
            .await?
            .filter(|c| c.hcp_id == asker.requester.hcp)
            .filter(|c| asker.launch_patient.is_none_or(|p| p == c.recipient_id))
            .ok_or(AppError::NotFound)?;
        let mut entry = caller.entry(self, "consent.read", Outcome::Allowed);
        entry.recipient = Some(row.recipient_id);
        self.audit(entry).await?;
        Ok(self.consent_state(row))
    }
}
