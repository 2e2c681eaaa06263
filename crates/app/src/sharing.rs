//! The sharing core's use cases around the decision (SPEC 3.4, 3.5, 3.8): finding a recipient
//! by document, giving and revoking sharing consents, opening and closing care episodes, and
//! the facts every access decision is made on.
//!
//! Security-sensitive:
//! - Every decision is made by `core::access::decide` on facts loaded here, never by code in
//!   this module; a refusal is audited with its reason.
//! - Access keys and restricted-control unlock codes typed at a provider are limited per
//!   recipient and per provider (`Typed`: the same progressive delay and lock as logins); at
//!   the lock the recipient is told and an alert is raised.

use std::collections::BTreeMap;

use ehrshare_core::access::{
    Policy, Requester, Restricted, Restriction as CoreRestriction, Unlock,
};
use ehrshare_core::audit::Outcome;
use ehrshare_core::consent::{Consent, ConsentKind, Method, Regime};
use ehrshare_core::domain::Domain;
use ehrshare_core::episode::{Episode, EpisodeKind};
use ehrshare_core::identity::{Document, DocumentType};
use ehrshare_core::profession::Role;
use ehrshare_store::alert::AlertRow;
use ehrshare_store::consent::ConsentRow;
use ehrshare_store::episode::EpisodeRow;

pub use ehrshare_store::consent::ConsentRow as ConsentRecord;
use ehrshare_store::{Conn, change};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::auth::{Session, Subject};
use crate::caller::Caller;
use crate::error::FieldError;
use crate::recipient::{Registration, recipient_notice};
use crate::{App, AppError};
use ehrshare_store::recipient::RecipientRow;

/// The facts about a recipient that decisions are made on.
#[derive(Debug, Clone)]
pub struct Facts {
    pub registration: Registration,
    pub consents: Vec<Consent>,
    pub episodes: Vec<Episode>,
    pub restrictions: Vec<CoreRestriction>,
    /// The current records loaded with the facts (only those of the domains asked for), to be
    /// released only under a permit.
    pub records: Vec<ehrshare_store::facts::ListedRecord>,
}

/// Who is asking, for the decision, with the account (if any) behind it.
#[derive(Debug, Clone)]
pub struct Asker {
    pub requester: Requester,
    /// The provider's names, for notices.
    pub hcp_names: (String, String),
    pub account: Option<Uuid>,
    /// A clinic system acting on its own (client credentials): it may deposit, not read.
    pub system_only: bool,
    /// The scopes of an OAuth token (none for a browser session, which has its role alone).
    pub scopes: Option<Vec<ehrshare_core::oauth::Scope>>,
}

impl Asker {
    /// Whether a token's scopes allow `access` to `resource_type` (a session always does: its
    /// role and the decision limit it). A token never reaches beyond what it was granted.
    pub fn scope_allows(&self, access: ehrshare_core::oauth::Access, resource_type: &str) -> bool {
        let Some(scopes) = &self.scopes else {
            return true;
        };
        let context = if self.system_only {
            ehrshare_core::oauth::Context::System
        } else {
            ehrshare_core::oauth::Context::User
        };
        let wanted = ehrshare_core::oauth::Scope {
            context,
            resource: resource_type.to_owned(),
            access,
        };
        scopes.iter().any(|s| s.covers(&wanted))
    }

    /// 403 `scope-not-granted` unless the token's scopes allow it.
    pub fn require_scope(
        &self,
        access: ehrshare_core::oauth::Access,
        resource_type: &str,
    ) -> Result<(), AppError> {
        if self.scope_allows(access, resource_type) {
            Ok(())
        } else {
            Err(AppError::Forbidden {
                code: "scope-not-granted",
                message: format!("the token's scopes do not cover {resource_type}"),
            })
        }
    }
}

/// A recipient as a provider's user finds them at the counter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub id: Uuid,
    pub name_en: String,
    pub name_zh: Option<String>,
    pub date_of_birth: String,
    pub status: String,
}

/// A recipient's care at the asking provider ([`App::care_here`]).
#[derive(Debug, Clone)]
pub struct CareHere {
    /// The sharing consent in force with this provider.
    pub consent: Option<ConsentRow>,
    /// Care episodes at this provider not yet closed, newest first.
    pub open_episodes: Vec<EpisodeRow>,
}

/// A consent as entered at a provider.
#[derive(Debug, Clone, Default)]
pub struct ConsentInput {
    /// `access-key` or `form` (at a provider); the patient portal uses `app`.
    pub method: String,
    pub access_key: Option<String>,
    /// The signed form's reference (method `form`).
    pub form_ref: Option<String>,
    /// `one-year` or `indefinite` (2016 regime); ignored under 2025 (untyped).
    pub kind: Option<String>,
}

pub(crate) fn invalid(field: &str, code: &'static str, message: &str) -> AppError {
    AppError::Invalid {
        code,
        message: message.to_owned(),
        fields: vec![FieldError {
            field: field.to_owned(),
            code,
            message: message.to_owned(),
        }],
    }
}

impl App {
    /// The deployment's rules for decisions.
    pub(crate) fn policy(&self) -> Policy<'_> {
        Policy {
            regime: self.settings().regime,
            window: self.settings().care_window,
            profiles: &self.settings().access_profiles,
        }
    }

    /// The requester behind a session or token: a provider's user (or the professional a
    /// clinic system acts for), with the state of the account and of its provider now.
    /// Office staff and patients are not requesters of records here: 404.
    pub(crate) async fn asker(&self, session: &Session) -> Result<Asker, AppError> {
        let (account, hcp, system_only, scopes) = match &session.subject {
            Subject::Account(a) => (
                Some(a.clone()),
                a.hcp_id.ok_or(AppError::NotFound)?,
                false,
                None,
            ),
            Subject::Client(g) => (
                g.account.clone(),
                g.hcp_id,
                g.account.is_none(),
                Some(g.scopes.clone()),
            ),
            Subject::Person(_) => return Err(AppError::NotFound),
        };
        let (provider, status) = self.provider_brief(hcp, self.clock().now()).await?;
        let role = match &account {
            Some(a) => Role::parse(&a.role).ok_or(AppError::NotFound)?,
            // A system on its own deposits for its provider as a whole.
            None => Role::Doctor,
        };
        Ok(Asker {
            requester: Requester {
                account_active: account.as_ref().is_none_or(|a| a.status == "active"),
                role,
                hcp,
                hcp_active: status.is_active(),
                hcp_deemed_consent: provider.sector == "public",
            },
            hcp_names: (provider.name_en, provider.name_zh),
            account: account.map(|a| a.id),
            system_only,
            scopes,
        })
    }

    /// The facts about a recipient (404 if there is no such recipient), with the current
    /// records in `records_in` (domain codes; usually none).
    pub(crate) async fn facts(
        &self,
        recipient: Uuid,
        records_in: &[String],
    ) -> Result<Facts, AppError> {
        let f = self
            .db()
            .recipient_facts(recipient, records_in)
            .await?
            .ok_or(AppError::NotFound)?;
        let registration = Registration {
            recipient: f.registration,
            sdms: f.sdms,
        };
        let consents = f.consents.iter().filter_map(core_consent).collect();
        let episodes = f
            .episodes
            .into_iter()
            .map(|e| Episode {
                id: e.id,
                hcp: e.hcp_id,
                start: e.start_at,
                end: e.end_at,
            })
            .collect();
        let restrictions = f
            .restrictions
            .into_iter()
            .filter_map(|r| {
                let item = match (r.record_id, r.domain.as_deref().and_then(Domain::parse)) {
                    (Some(id), _) => Restricted::Record(id),
                    (None, Some(d)) => Restricted::Domain(d),
                    (None, None) => return None,
                };
                Some(CoreRestriction {
                    id: r.id,
                    item,
                    unlocks: r
                        .unlocks
                        .into_iter()
                        .map(|u| Unlock {
                            hcp: u.hcp_id,
                            episode: u.episode_id,
                            until: u.until,
                        })
                        .collect(),
                })
            })
            .collect();
        Ok(Facts {
            registration,
            consents,
            episodes,
            restrictions,
            records: f.records,
        })
    }

    /// Refuses, audited, unless the requester may record the recipient's care at the counter
    /// (`core::access::may_record_care`); a clinic system alone never may.
    async fn check_care_recording(
        &self,
        asker: &Asker,
        caller: &Caller,
        action: &'static str,
        reg: &Registration,
    ) -> Result<(), AppError> {
        let refusal = if asker.system_only {
            Some(AppError::Forbidden {
                code: "professional-required",
                message: "a person at the provider records this, not a system alone".to_owned(),
            })
        } else {
            ehrshare_core::access::may_record_care(
                &asker.requester,
                reg.recipient.status == "active",
                &self.settings().access_profiles,
            )
            .err()
            .map(crate::record::deny_error)
        };
        let Some(error) = refusal else {
            return Ok(());
        };
        let mut entry = caller.entry(self, action, Outcome::Denied);
        entry.recipient = Some(reg.recipient.id);
        entry.denial_reason = Some(error.code().to_owned());
        self.record(entry).await?;
        Err(error)
    }

    /// Finds a recipient by identity document for a provider's user (the counter): audited,
    /// with the recipient found or `not-found`.
    pub async fn find_recipient(
        &self,
        session: &Session,
        caller: &Caller,
        kind: &str,
        issuer: Option<&str>,
        number: &str,
    ) -> Result<Found, AppError> {
        self.counter_user(session).await?;
        let doc = crate::recipient::check_document(
            "/document",
            &crate::recipient::DocumentInput {
                kind: kind.to_owned(),
                issuer: issuer.map(str::to_owned),
                number: number.to_owned(),
            },
        )
        .map_err(|e| AppError::Invalid {
            code: e.code,
            message: e.message.clone(),
            fields: vec![e],
        })?;
        let found = self
            .db()
            .recipient_by_document(doc.kind.code(), &doc.issuer, &doc.number)
            .await?;
        self.found(caller, "recipient.find", found).await
    }

    /// The recipient a provider's user found before, again by id (the counter's patient page):
    /// audited as a look-up is.
    pub async fn recipient_at_counter(
        &self,
        session: &Session,
        caller: &Caller,
        id: Uuid,
    ) -> Result<Found, AppError> {
        self.counter_user(session).await?;
        let found = self.db().recipient(id).await?.map(|(r, _)| r.id);
        self.found(caller, "recipient.show", found).await
    }

    /// The recipient's care at the user's own provider, for the counter's patient page: the
    /// sharing consent in force there (if any) and the care episodes still open there. Part of
    /// the page a look-up opened (audited there); nothing of other providers.
    pub async fn care_here(
        &self,
        session: &Session,
        recipient: Uuid,
    ) -> Result<CareHere, AppError> {
        let hcp = self.counter_user(session).await?.requester.hcp;
        let now = self.clock().now();
        let f = self
            .db()
            .recipient_facts(recipient, &[])
            .await?
            .ok_or(AppError::NotFound)?;
        let consents: Vec<Consent> = f.consents.iter().filter_map(core_consent).collect();
        let in_force = ehrshare_core::access::consent_in_force(&consents, hcp, now).ok();
        let consent = f.consents.into_iter().find(|c| Some(c.id) == in_force);
        let open_episodes = f
            .episodes
            .into_iter()
            .filter(|e| e.hcp_id == hcp && e.end_at.is_none_or(|end| end > now))
            .collect();
        Ok(CareHere {
            consent,
            open_episodes,
        })
    }

    /// Registers a recipient at the user's provider (SPEC 3.2, channel `hcp`: identity seen
    /// at the counter, active at once): the same registration as the office's, by whoever may
    /// look recipients up there. The access key goes to the recipient.
    pub async fn register_at_provider(
        &self,
        session: &Session,
        caller: &Caller,
        input: crate::recipient::RegistrationInput,
    ) -> Result<crate::recipient::Registration, AppError> {
        self.counter_user(session).await?;
        let input = crate::recipient::RegistrationInput {
            channel: "hcp".to_owned(),
            ..input
        };
        self.register_recipient(caller, input).await
    }

    /// Who may look recipients up: a professional or registration staff of a provider (not a
    /// user administrator, not a clinic system alone).
    async fn counter_user(&self, session: &Session) -> Result<Asker, AppError> {
        let asker = self.asker(session).await?;
        if asker.system_only || asker.requester.role == Role::UserAdministrator {
            return Err(AppError::NotFound);
        }
        Ok(asker)
    }

    /// Audits a look-up's outcome and answers with what the counter may see.
    async fn found(
        &self,
        caller: &Caller,
        action: &'static str,
        found: Option<Uuid>,
    ) -> Result<Found, AppError> {
        let mut entry = caller.entry(self, action, Outcome::Allowed);
        entry.recipient = found;
        if found.is_none() {
            entry.outcome = Outcome::Denied;
            entry.denial_reason = Some("not-found".to_owned());
        }
        self.record(entry).await?;
        let id = found.ok_or(AppError::NotFound)?;
        let r = self.load_recipient(id).await?.recipient;
        Ok(Found {
            id,
            name_en: r.name_en,
            name_zh: r.name_zh,
            date_of_birth: r.date_of_birth,
            status: r.status,
        })
    }

    /// The consent kind a new consent gets under the regime in force.
    fn consent_kind(&self, asked: Option<&str>) -> Result<ConsentKind, AppError> {
        match self.settings().regime {
            Regime::Y2025 => Ok(ConsentKind::Untyped),
            Regime::Y2016 => match asked.map(str::trim) {
                Some("one-year") => Ok(ConsentKind::OneYear),
                Some("indefinite") | None => Ok(ConsentKind::Indefinite),
                Some(_) => Err(invalid(
                    "/kind",
                    "invalid-consent-kind",
                    "one-year or indefinite",
                )),
            },
        }
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

    /// A provider's user administrator registers a smart ID card reader at one of the
    /// provider's locations, with the reader's Ed25519 public key (64 hex digits).
    pub async fn register_reader(
        &self,
        session: &Session,
        caller: &Caller,
        hcp: Uuid,
        location: Uuid,
        public_key: &str,
    ) -> Result<ehrshare_store::card_reader::ReaderRow, AppError> {
        let now = self.clock().now();
        let admin = session
            .account()
            .is_some_and(|a| a.hcp_id == Some(hcp) && a.user_admin);
        if !admin {
            return Err(AppError::NotFound);
        }
        let p = self.provider(hcp).await?;
        if !p.locations.iter().any(|l| l.id == location) {
            return Err(invalid(
                "/location",
                "unknown-location",
                "not a location of this provider",
            ));
        }
        let key = public_key.trim().to_ascii_lowercase();
        if ehrshare_core::audit::checkpoint::unhex::<32>(&key).is_none() {
            return Err(invalid(
                "/public_key",
                "invalid-public-key",
                "an Ed25519 public key: 64 hex digits",
            ));
        }
        let row = ehrshare_store::card_reader::ReaderRow {
            id: Uuid::now_v7(),
            hcp_id: hcp,
            location_id: location,
            public_key: key,
            created_at: now,
            revoked_at: None,
        };
        let mut entry = caller.entry(self, "card-reader.register", Outcome::Allowed);
        entry.record_ids = vec![row.id];
        let stored = row.clone();
        let insert = change(move |conn: Conn<'_>| {
            Box::pin(async move { ehrshare_store::card_reader::insert_reader(conn, &stored).await })
        });
        self.record_with(entry, insert).await?;
        Ok(row)
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
            self.record(entry).await?;
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

    /// Checks a smart ID card assertion relayed by a user of provider `hcp`: from a reader of
    /// that provider, signed by it, fresh. A refusal is audited under `action` with its reason
    /// and answered 403 `card-assertion-refused`, whatever the reason.
    pub(crate) async fn check_card(
        &self,
        hcp: Uuid,
        caller: &Caller,
        action: &'static str,
        assertion: &ehrshare_core::consent::CardAssertion,
        signature_b64: &str,
    ) -> Result<(), AppError> {
        let now = self.clock().now();
        let reader = self
            .db()
            .reader(assertion.reader)
            .await?
            .filter(|r| r.hcp_id == hcp && r.revoked_at.is_none());
        let signature: Option<[u8; 64]> = data_encoding::BASE64URL_NOPAD
            .decode(signature_b64.trim().trim_end_matches('=').as_bytes())
            .ok()
            .and_then(|b| b.try_into().ok());
        let key = reader
            .as_ref()
            .and_then(|r| ehrshare_core::audit::checkpoint::unhex::<32>(&r.public_key));
        let problem = if !assertion.well_formed() {
            Some("malformed-assertion")
        } else if key.is_none() {
            Some("unknown-reader")
        } else if !signature.zip(key).is_some_and(|(sig, key)| {
            crate::signer::verify_signature(&key, &assertion.message(), &sig)
        }) {
            Some("bad-signature")
        } else if !assertion.fresh(now) {
            Some("stale-assertion")
        } else {
            None
        };
        match problem {
            Some(reason) => {
                self.refuse_card(caller, action, None, assertion, reason)
                    .await
            }
            None => Ok(()),
        }
    }

    /// Claims a checked assertion's nonce, in its own audited step before anything it allows
    /// is written: a replay never gets further, however two uses race.
    pub(crate) async fn claim_card(
        &self,
        caller: &Caller,
        action: &'static str,
        recipient: Uuid,
        assertion: &ehrshare_core::consent::CardAssertion,
    ) -> Result<(), AppError> {
        let now = self.clock().now();
        let claimed = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
        let claimed_in = claimed.clone();
        let (nonce, reader_id, at) = (assertion.nonce.clone(), assertion.reader, assertion.at);
        let mut entry = caller.entry(self, action, Outcome::Allowed);
        entry.recipient = Some(recipient);
        entry.record_ids = vec![reader_id];
        let claim = change(move |conn: Conn<'_>| {
            Box::pin(async move {
                if ehrshare_store::card_reader::claim_card_nonce(conn, &nonce, reader_id, at, now)
                    .await?
                {
                    Ok(())
                } else {
                    claimed_in.store(false, std::sync::atomic::Ordering::SeqCst);
                    Err(ehrshare_store::StoreError::Corrupt(
                        "replayed card assertion".to_owned(),
                    ))
                }
            })
        });
        match self.record_with(entry, claim).await {
            Ok(_) => Ok(()),
            Err(_) if !claimed.load(std::sync::atomic::Ordering::SeqCst) => {
                self.refuse_card(
                    caller,
                    action,
                    Some(recipient),
                    assertion,
                    "replayed-assertion",
                )
                .await
            }
            Err(e) => Err(e),
        }
    }

    /// Audits a refused card assertion and answers the one refusal.
    pub(crate) async fn refuse_card(
        &self,
        caller: &Caller,
        action: &'static str,
        recipient: Option<Uuid>,
        assertion: &ehrshare_core::consent::CardAssertion,
        reason: &str,
    ) -> Result<(), AppError> {
        let mut entry = caller.entry(self, action, Outcome::Denied);
        entry.denial_reason = Some(reason.to_owned());
        entry.recipient = recipient;
        entry.record_ids = vec![assertion.reader];
        self.record(entry).await?;
        Err(AppError::Forbidden {
            code: "card-assertion-refused",
            message: "the card reader's assertion could not be accepted".to_owned(),
        })
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
        let acting = sdm.and_then(|id| reg.sdms.iter().find(|s| s.sdm_id == id));
        let notice = recipient_notice(
            &reg.recipient,
            acting,
            "consent-changed",
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
                ehrshare_store::consent::insert_consent(conn, &stored).await
            })
        });
        self.record_and_notify(entry, Some(insert), vec![notice])
            .await?;
        Ok(row)
    }

    /// Checks an access key typed at provider `hcp` for `reg`, under the attempt limits
    /// ([`Typed`]). A wrong key is audited; the lock tells the recipient and raises an alert.
    async fn check_access_key(
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
            self.record_with(entry, update).await?;
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
        self.record_and_notify(entry, Some(update), notices).await?;
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
            format!("{}-recipient:{recipient}", typed.name()),
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
            status: "open".to_owned(),
            note: None,
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

    /// Whom a patient-portal session may act for, checked now: themself (if registered) or a
    /// recipient they represent as SDM with authority. Returns the SDM id when acting as one.
    pub(crate) async fn acting_for(
        &self,
        session: &Session,
        recipient: Uuid,
    ) -> Result<Option<Uuid>, AppError> {
        let Subject::Person(person) = &session.subject else {
            return Err(AppError::NotFound);
        };
        let r = self.represented(person).await?;
        if r.own == Some(recipient) {
            return Ok(None);
        }
        r.as_sdm
            .iter()
            .find(|(id, _)| *id == recipient)
            .map(|(_, sdm)| Some(*sdm))
            .ok_or(AppError::NotFound)
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
            a.realm == "office"
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
        if reg.recipient.status != "active" {
            let reason = ehrshare_core::access::DenyReason::RecipientNotRegistered;
            let mut entry = caller.entry(self, "consent.give", Outcome::Denied);
            entry.recipient = Some(recipient);
            entry.denial_reason = Some(reason.code().to_owned());
            self.record(entry).await?;
            return Err(crate::record::deny_error(reason));
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
            consent_params(&provider.hcp, now, "revoked"),
        );
        let revoke = change(move |conn: Conn<'_>| {
            Box::pin(async move {
                ehrshare_store::consent::revoke_consents(conn, recipient, hcp, now)
                    .await
                    .map(|_| ())
            })
        });
        self.record_and_notify(entry, Some(revoke), vec![notice])
            .await?;
        Ok(())
    }

    /// Opens a care episode at the caller's provider.
    pub async fn open_episode(
        &self,
        session: &Session,
        caller: &Caller,
        recipient: Uuid,
        kind: &str,
        location: Option<Uuid>,
    ) -> Result<EpisodeRow, AppError> {
        let now = self.clock().now();
        let asker = self.asker(session).await?;
        let kind = EpisodeKind::parse(kind).ok_or_else(|| {
            invalid(
                "/kind",
                "invalid-episode-kind",
                "attendance, admission, appointment or referral",
            )
        })?;
        let reg = self.load_recipient(recipient).await?;
        self.check_care_recording(&asker, caller, "episode.open", &reg)
            .await?;
        let account = asker.account.ok_or(AppError::NotFound)?;
        if let Some(l) = location {
            let p = self.provider(asker.requester.hcp).await?;
            if !p.locations.iter().any(|x| x.id == l) {
                return Err(invalid(
                    "/location",
                    "unknown-location",
                    "not a location of this provider",
                ));
            }
        }
        let row = EpisodeRow {
            id: Uuid::now_v7(),
            recipient_id: recipient,
            hcp_id: asker.requester.hcp,
            location_id: location,
            kind: kind.code().to_owned(),
            start_at: now,
            end_at: None,
            opened_by: account,
            closed_by: None,
            created_at: now,
        };
        let mut entry = caller.entry(self, "episode.open", Outcome::Allowed);
        entry.recipient = Some(recipient);
        entry.episode_id = Some(row.id);
        let stored = row.clone();
        let insert = change(move |conn: Conn<'_>| {
            Box::pin(async move { ehrshare_store::episode::insert_episode(conn, &stored).await })
        });
        self.record_with(entry, insert).await?;
        Ok(row)
    }

    /// Closes an episode of the caller's provider (404 for another provider's).
    pub async fn close_episode(
        &self,
        session: &Session,
        caller: &Caller,
        recipient: Uuid,
        episode: Uuid,
    ) -> Result<(), AppError> {
        let now = self.clock().now();
        let asker = self.asker(session).await?;
        let account = asker.account.ok_or(AppError::NotFound)?;
        let e = self
            .db()
            .recipient_facts(recipient, &[])
            .await?
            .ok_or(AppError::NotFound)?
            .episodes
            .into_iter()
            .find(|e| e.id == episode && e.hcp_id == asker.requester.hcp)
            .ok_or(AppError::NotFound)?;
        if e.end_at.is_some() {
            return Err(AppError::Conflict {
                code: "episode-closed",
                message: "the episode is already closed".to_owned(),
            });
        }
        let mut entry = caller.entry(self, "episode.close", Outcome::Allowed);
        entry.recipient = Some(recipient);
        entry.episode_id = Some(episode);
        let close = change(move |conn: Conn<'_>| {
            Box::pin(async move {
                ehrshare_store::episode::close_episode(conn, episode, now, account)
                    .await
                    .map(|_| ())
            })
        });
        self.record_with(entry, close).await?;
        Ok(())
    }
}

/// The parameters of a `consent-changed` notice. `change` is a code the message selects its
/// words by in each language (`given-one-year`, `given-indefinite`, `given`, `revoked`), never
/// words of one language in the other's message.
pub(crate) fn consent_params(
    hcp: &ehrshare_store::provider::HcpRow,
    at: OffsetDateTime,
    change: &'static str,
) -> BTreeMap<String, String> {
    let hk = at.to_offset(time::UtcOffset::from_hms(8, 0, 0).unwrap_or(time::UtcOffset::UTC));
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
    rows: Vec<(String, ehrshare_store::account::FailureRow)>,
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
            ehrshare_store::account::put_failures(conn.reborrow(), k, f).await?;
        }
        if let Some(a) = &self.alert {
            ehrshare_store::alert::insert_alert(conn, a).await?;
        }
        Ok(())
    }
}

/// A stored consent as the decision sees it (`None` for a kind this build does not know).
fn core_consent(c: &ConsentRow) -> Option<Consent> {
    Some(Consent {
        id: c.id,
        hcp: c.hcp_id,
        kind: ConsentKind::parse(&c.kind)?,
        given_at: c.given_at,
        revoked_at: c.revoked_at,
    })
}
