//! Registering healthcare recipients (SPEC 3.2, 3.3): validation, the age and capacity rules,
//! SDMs, one registration per document, activation with an access key delivered through the
//! outbox and stored only as a hash.

use std::collections::BTreeMap;

use ehrshare_core::audit::Outcome;
use ehrshare_core::clock::hong_kong_date;
use ehrshare_core::contact::{Email, Phone};
use ehrshare_core::identity::{Document, DocumentError, DocumentType, HkidError};
use ehrshare_core::locale::Locale;
use ehrshare_core::notification::Channel;
use ehrshare_core::recipient::{
    Capacity, RecipientEvent, RecipientStatus, SdmCategory, SdmClaim, check_registration,
};
use ehrshare_store::recipient::{RecipientRow, SdmRow};
use ehrshare_store::{Conn, StoreError, change};
use time::Date;
use time::macros::format_description;
use uuid::Uuid;

use crate::caller::Caller;
use crate::error::FieldError;
use crate::outbox::Notice;
use crate::{App, AppError};

/// An identity document as entered.
#[derive(Debug, Clone, Default)]
pub struct DocumentInput {
    /// `hkid`, `passport`, ... (see `core::identity::DocumentType`).
    pub kind: String,
    /// Issuing place; defaults to HK for HKIDs and birth certificates.
    pub issuer: Option<String>,
    pub number: String,
}

/// A substitute decision maker as entered.
#[derive(Debug, Clone, Default)]
pub struct SdmInput {
    pub name_en: String,
    pub name_zh: Option<String>,
    pub document: DocumentInput,
    /// `parent`, `guardian`, ... (see `core::recipient::SdmCategory`).
    pub category: String,
    pub no_higher_available: bool,
    /// Reference of the proof of relationship seen (birth certificate number, court order).
    pub relationship_proof: Option<String>,
    pub phone: String,
}

/// A registration as entered (SPEC 3.2).
#[derive(Debug, Clone, Default)]
pub struct RegistrationInput {
    /// `in-person`, `online`, `mail-fax` or `hcp`.
    pub channel: String,
    pub name_en: String,
    pub name_zh: Option<String>,
    /// `YYYY-MM-DD`.
    pub date_of_birth: String,
    /// `female`, `male` or `unknown`.
    pub sex: String,
    /// `able` (default) or `unable`: whether a person of 16 or over can consent.
    pub capacity: Option<String>,
    pub document: DocumentInput,
    pub phone: String,
    pub phone2: Option<String>,
    pub email: Option<String>,
    pub address: Option<String>,
    /// `en` or `zh-HK`.
    pub language: String,
    /// `sms`, `email`, `post` or `app`.
    pub notify_channel: String,
    pub refuses_access_notices: bool,
    pub sdm: Option<SdmInput>,
}

/// A registration as shown (never the access key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registration {
    pub recipient: RecipientRow,
    pub sdms: Vec<SdmRow>,
}

struct Fields(Vec<FieldError>);

impl Fields {
    fn push(&mut self, field: &str, code: &'static str, message: impl Into<String>) {
        self.0.push(FieldError {
            field: field.to_owned(),
            code,
            message: message.into(),
        });
    }

    fn name(&mut self, field: &str, value: &str, required: bool) -> Option<String> {
        crate::limits::person_name(&mut self.0, field, value, 100, required)
    }

    fn phone(&mut self, field: &str, value: &str) -> Option<String> {
        match Phone::parse(value) {
            Ok(p) => Some(p.as_str().to_owned()),
            Err(e) => {
                self.push(field, "invalid-phone", e.to_string());
                None
            }
        }
    }

    fn document(&mut self, field: &str, d: &DocumentInput) -> Option<Document> {
        check_document(field, d).map_err(|e| self.0.push(e)).ok()
    }
}

/// Validates a document as entered; a problem names `field` + `/type`, `/issuer` or `/number`.
/// Shared by registrations and accounts.
pub(crate) fn check_document(field: &str, d: &DocumentInput) -> Result<Document, FieldError> {
    let problem = |part: &str, code: &'static str, message: String| FieldError {
        field: format!("{field}/{part}"),
        code,
        message,
    };
    let Some(kind) = DocumentType::parse(d.kind.trim()) else {
        return Err(problem(
            "type",
            "invalid-document-type",
            "unknown document type".to_owned(),
        ));
    };
    let default_issuer = match kind {
        DocumentType::Hkid | DocumentType::HkBirthCertificate => "HK",
        DocumentType::MacaoId => "MO",
        DocumentType::MainlandTravelPermit => "CN",
        DocumentType::Passport | DocumentType::Other => "",
    };
    let issuer = d.issuer.as_deref().unwrap_or(default_issuer);
    Document::parse(kind, issuer, &d.number).map_err(|e| match e {
        DocumentError::Hkid(HkidError::CheckDigit) => problem(
            "number",
            "invalid-hkid",
            "the check digit does not match".to_owned(),
        ),
        DocumentError::Hkid(HkidError::Format) => {
            problem("number", "invalid-hkid", HkidError::Format.to_string())
        }
        e @ (DocumentError::Issuer | DocumentError::WrongIssuer(_)) => {
            problem("issuer", "invalid-issuer", e.to_string())
        }
        e => problem("number", "invalid-document-number", e.to_string()),
    })
}

/// Whether an SDM of `reg` may still act at `now` (`core::recipient::sdm_may_act` on the
/// stored registration).
pub(crate) fn sdm_may_act_now(
    reg: &Registration,
    s: &SdmRow,
    now: time::OffsetDateTime,
) -> Result<bool, AppError> {
    let born = parse_date(&reg.recipient.date_of_birth)
        .ok_or_else(|| AppError::Internal("stored date of birth unreadable".into()))?;
    let category = SdmCategory::parse(&s.category)
        .ok_or_else(|| AppError::Internal("stored SDM category unknown".into()))?;
    Ok(ehrshare_core::recipient::sdm_may_act(category, born, now))
}

/// The SDM who receives a recipient's messages at `now`: the first whose authority lasts
/// (none once a child has turned 16: then the recipient's own channel).
pub(crate) fn messaged_sdm(
    reg: &Registration,
    now: time::OffsetDateTime,
) -> Result<Option<&SdmRow>, AppError> {
    for s in &reg.sdms {
        if sdm_may_act_now(reg, s, now)? {
            return Ok(Some(s));
        }
    }
    Ok(None)
}

fn parse_date(s: &str) -> Option<Date> {
    Date::parse(s.trim(), format_description!("[year]-[month]-[day]")).ok()
}

/// A fresh access key for `r`: its hash to store, and the notice that carries the clear key
/// (to the SDM when one acts or registered the recipient, else by the recipient's channel).
async fn issue_access_key(
    r: &RecipientRow,
    sdm: Option<&SdmRow>,
) -> Result<(String, Notice), AppError> {
    let key = crate::secret::new_access_key()?;
    let hash = crate::secret::hash_secret(key.clone()).await?;
    let notice = recipient_notice(
        r,
        sdm,
        "access-key",
        BTreeMap::from([("key".to_owned(), key)]),
    );
    Ok((hash, notice))
}

/// A notice to a recipient through their notification channel, or to the SDM who acts for them
/// (by SMS), in the recipient's language.
pub(crate) fn recipient_notice(
    r: &RecipientRow,
    sdm: Option<&SdmRow>,
    template: &str,
    params: BTreeMap<String, String>,
) -> Notice {
    let locale = Locale::parse(&r.language).unwrap_or_default();
    let (channel, address) = match sdm {
        Some(s) => (Channel::Sms, s.phone.clone()),
        None => {
            let channel = Channel::parse(&r.notify_channel).unwrap_or(Channel::Sms);
            let address = match channel {
                Channel::Email => r.email.clone().unwrap_or_default(),
                Channel::Post => r.address.clone().unwrap_or_default(),
                Channel::Sms | Channel::App => r.phone.clone(),
            };
            (channel, address)
        }
    };
    Notice {
        recipient: Some(r.id),
        address,
        channel,
        template: template.to_owned(),
        params,
        locale,
    }
}

impl App {
    /// The SDM `sdm_id` of a registration, if it may act now; a refusal is audited (`entry`
    /// becomes a denial) and answered 403 `sdm-authority-ended`.
    async fn acting_sdm<'r>(
        &self,
        reg: &'r Registration,
        sdm_id: Option<Uuid>,
        entry: &mut ehrshare_core::audit::NewAuditEntry,
    ) -> Result<Option<&'r SdmRow>, AppError> {
        let Some(id) = sdm_id else { return Ok(None) };
        let s = reg
            .sdms
            .iter()
            .find(|s| s.sdm_id == id)
            .ok_or(AppError::NotFound)?;
        if !sdm_may_act_now(reg, s, self.clock().now())? {
            entry.outcome = Outcome::Denied;
            entry.denial_reason = Some("sdm-authority-ended".to_owned());
            self.audit(entry.clone()).await?;
            return Err(AppError::Forbidden {
                code: "sdm-authority-ended",
                message:
                    "the substitute decision maker's authority ended when the recipient turned 16"
                        .to_owned(),
            });
        }
        Ok(Some(s))
    }
}

impl App {
    /// Registers a recipient. In person and at a provider, identity is verified on the spot: the
    /// registration is active at once and an access key goes out through the outbox (to the SDM
    /// when there is one). Online and by mail or fax, it waits for verification.
    pub async fn register_recipient(
        &self,
        caller: &Caller,
        input: RegistrationInput,
    ) -> Result<Registration, AppError> {
        let now = self.clock().now();
        let mut f = Fields(Vec::new());
        let active = match input.channel.as_str() {
            "in-person" | "hcp" => true,
            "online" | "mail-fax" => false,
            _ => {
                f.push(
                    "/channel",
                    "invalid-channel",
                    "in-person, online, mail-fax or hcp",
                );
                false
            }
        };
        let name_en = f.name("/name_en", &input.name_en, true);
        let name_zh = input
            .name_zh
            .as_deref()
            .and_then(|n| f.name("/name_zh", n, false));
        let born = parse_date(&input.date_of_birth);
        if born.is_none() {
            f.push(
                "/date_of_birth",
                "invalid-date",
                "a date such as 1980-01-31",
            );
        }
        if !matches!(input.sex.as_str(), "female" | "male" | "unknown") {
            f.push("/sex", "invalid-sex", "female, male or unknown");
        }
        let capacity = match input.capacity.as_deref().unwrap_or("able") {
            "able" => Capacity::Able,
            "unable" => Capacity::Unable,
            _ => {
                f.push("/capacity", "invalid-capacity", "able or unable");
                Capacity::Able
            }
        };
        let document = f.document("/document", &input.document);
        let phone = f.phone("/phone", &input.phone);
        let phone2 = input
            .phone2
            .as_deref()
            .filter(|p| !p.trim().is_empty())
            .and_then(|p| f.phone("/phone2", p));
        let email = match input
            .email
            .as_deref()
            .map(str::trim)
            .filter(|e| !e.is_empty())
        {
            None => None,
            Some(e) => match Email::parse(e) {
                Ok(e) => Some(e.as_str().to_owned()),
                Err(err) => {
                    f.push("/email", "invalid-email", err.to_string());
                    None
                }
            },
        };
        let address = input
            .address
            .as_deref()
            .map(str::trim)
            .filter(|a| !a.is_empty())
            .map(str::to_owned);
        if let Some(p) = address
            .as_deref()
            .and_then(|a| crate::limits::too_long("/address", a, crate::limits::ADDRESS))
        {
            f.0.push(p);
        }
        if let Some(p) = input.sdm.as_ref().and_then(|s| {
            s.relationship_proof.as_deref().and_then(|r| {
                crate::limits::too_long(
                    "/sdm/relationship_proof",
                    r.trim(),
                    crate::limits::RELATIONSHIP_PROOF,
                )
            })
        }) {
            f.0.push(p);
        }
        let language = Locale::parse(&input.language);
        if language.is_none() || !matches!(input.language.as_str(), "en" | "zh-HK") {
            f.push("/language", "invalid-language", "en or zh-HK");
        }
        let notify = Channel::parse(&input.notify_channel);
        match notify {
            None => f.push(
                "/notify_channel",
                "invalid-channel",
                "sms, email, post or app",
            ),
            Some(Channel::Email) if email.is_none() => {
                f.push("/email", "required", "required for notifications by e-mail")
            }
            Some(Channel::Post) if address.is_none() => {
                f.push("/address", "required", "required for notifications by post")
            }
            Some(_) => {}
        }
        let sdm = input.sdm.as_ref().map(|s| {
            let category = SdmCategory::parse(s.category.trim());
            if category.is_none() {
                f.push("/sdm/category", "invalid-sdm-category", "unknown category");
            }
            (
                f.name("/sdm/name_en", &s.name_en, true),
                s.name_zh
                    .as_deref()
                    .and_then(|n| f.name("/sdm/name_zh", n, false)),
                f.document("/sdm/document", &s.document),
                category,
                f.phone("/sdm/phone", &s.phone),
            )
        });
        if !f.0.is_empty() {
            let code = if f.0.len() == 1 {
                f.0[0].code
            } else {
                "invalid-input"
            };
            return Err(AppError::Invalid {
                code,
                message: "the registration has invalid fields".to_owned(),
                fields: f.0,
            });
        }
        // Every value is present here: the field checks above returned otherwise.
        let (Some(name_en), Some(born), Some(document), Some(phone), Some(language), Some(notify)) =
            (name_en, born, document, phone, language, notify)
        else {
            return Err(AppError::Internal(
                "registration fields lost after validation".into(),
            ));
        };
        let claim = sdm.as_ref().and_then(|s| s.3).map(|category| SdmClaim {
            category,
            no_higher_available: input.sdm.as_ref().is_some_and(|s| s.no_higher_available),
        });
        check_registration(born, capacity, claim, hong_kong_date(now)).map_err(|e| {
            AppError::Invalid {
                code: e.code(),
                message: e.to_string(),
                fields: Vec::new(),
            }
        })?;

        let id = Uuid::now_v7();
        let recipient = RecipientRow {
            id,
            status: if active {
                RecipientStatus::Active
            } else {
                RecipientStatus::PendingVerification
            },
            channel: input.channel.clone(),
            name_en,
            name_zh,
            date_of_birth: input.date_of_birth.trim().to_owned(),
            sex: input.sex.clone(),
            capacity: match capacity {
                Capacity::Able => "able",
                Capacity::Unable => "unable",
            }
            .to_owned(),
            doc_type: document.kind.code().to_owned(),
            doc_issuer: document.issuer.clone(),
            doc_number: document.number.clone(),
            phone,
            phone2,
            email,
            address,
            language: language.tag().to_owned(),
            notify_channel: notify.code().to_owned(),
            refuses_access_notices: input.refuses_access_notices,
            created_at: now,
            activated_at: active.then_some(now),
        };
        let sdm_row = match (sdm, input.sdm.as_ref(), claim) {
            (
                Some((Some(name_en), name_zh, Some(doc), Some(_), Some(phone))),
                Some(s),
                Some(claim),
            ) => Some(SdmRow {
                recipient_id: id,
                sdm_id: Uuid::now_v7(),
                name_en,
                name_zh,
                doc_type: doc.kind.code().to_owned(),
                doc_issuer: doc.issuer,
                doc_number: doc.number,
                category: claim.category.code().to_owned(),
                no_higher_available: claim.no_higher_available,
                relationship_proof: s
                    .relationship_proof
                    .clone()
                    .filter(|p| !p.trim().is_empty()),
                phone,
                created_at: now,
            }),
            _ => None,
        };

        // Activation: a fresh access key, hashed; the clear key only travels in the outbox.
        let (key_hash, notices) = if active {
            let (hash, notice) = issue_access_key(&recipient, sdm_row.as_ref()).await?;
            (Some(hash), vec![notice])
        } else {
            (None, Vec::new())
        };

        let mut entry = caller.entry(self, "recipient.register", Outcome::Allowed);
        entry.recipient = Some(id);
        entry.sdm = sdm_row.as_ref().map(|s| s.sdm_id);
        let (r, s) = (recipient.clone(), sdm_row.clone());
        let insert = change(move |conn: Conn<'_>| {
            Box::pin(async move {
                ehrshare_store::recipient::insert(conn, &r, s.as_ref(), key_hash.as_deref())
                    .await
                    .map_err(|e| match e {
                        StoreError::Conflict { source, .. } => StoreError::Conflict {
                            constraint: "recipient_document".to_owned(),
                            source,
                        },
                        other => other,
                    })
            })
        });
        match self.audit_and_notify(entry, Some(insert), notices).await {
            Ok(_) => {}
            Err(AppError::Conflict { .. }) => {
                return Err(AppError::Conflict {
                    code: "duplicate-document",
                    message: "this document already has an active registration".to_owned(),
                });
            }
            Err(e) => return Err(e),
        }
        Ok(Registration {
            recipient,
            sdms: sdm_row.into_iter().collect(),
        })
    }

    /// Issues a new access key to an active recipient; the old one dies at once. With
    /// `acting_sdm`, the SDM must still have authority (a child's SDM loses it at 16, computed
    /// now): otherwise 403 `sdm-authority-ended`, audited as a denial.
    pub async fn regenerate_access_key(
        &self,
        caller: &Caller,
        recipient_id: Uuid,
        acting_sdm: Option<Uuid>,
    ) -> Result<(), AppError> {
        let now = self.clock().now();
        let reg = self.load_recipient(recipient_id).await?;
        let mut entry = caller.entry(self, "access-key.regenerate", Outcome::Allowed);
        entry.recipient = Some(recipient_id);
        entry.sdm = acting_sdm;
        let sdm = self.acting_sdm(&reg, acting_sdm, &mut entry).await?;
        if reg.recipient.status != RecipientStatus::Active {
            return Err(AppError::Conflict {
                code: "recipient-not-active",
                message: "only an active registration has an access key".to_owned(),
            });
        }
        let (hash, notice) = issue_access_key(&reg.recipient, sdm).await?;
        let replace = change(move |conn: Conn<'_>| {
            Box::pin(async move {
                ehrshare_store::recipient::replace_access_key(conn, recipient_id, &hash, now).await
            })
        });
        self.audit_and_notify(entry, Some(replace), vec![notice])
            .await?;
        Ok(())
    }

    /// Verifies, suspends, reinstates or withdraws a registration. Verification activates it
    /// and sends the first access key; withdrawal is final (records are kept, nothing is shared)
    /// and may be asked by an SDM with authority. The recipient is told of each change.
    pub async fn recipient_event(
        &self,
        caller: &Caller,
        recipient_id: Uuid,
        event: RecipientEvent,
        acting_sdm: Option<Uuid>,
        reason: Option<String>,
    ) -> Result<Registration, AppError> {
        crate::limits::check("/reason", reason.as_deref(), crate::limits::REASON)?;
        let now = self.clock().now();
        let mut reg = self.load_recipient(recipient_id).await?;
        let action = match event {
            RecipientEvent::Verify => "recipient.verify",
            RecipientEvent::Suspend => "recipient.suspend",
            RecipientEvent::Reinstate => "recipient.reinstate",
            RecipientEvent::Withdraw => "recipient.withdraw",
        };
        let mut entry = caller.entry(self, action, Outcome::Allowed);
        entry.recipient = Some(recipient_id);
        entry.sdm = acting_sdm;
        entry.reason = reason.clone().filter(|r| !r.trim().is_empty());
        let sdm = self.acting_sdm(&reg, acting_sdm, &mut entry).await?;
        if event == RecipientEvent::Suspend && entry.reason.is_none() {
            return Err(AppError::Invalid {
                code: "reason-required",
                message: "a suspension needs a reason".to_owned(),
                fields: vec![FieldError {
                    field: "/reason".into(),
                    code: "required",
                    message: "required".into(),
                }],
            });
        }
        let current = reg.recipient.status;
        let next = current.after(event).ok_or_else(|| AppError::Conflict {
            code: "invalid-transition",
            message: format!(
                "a registration that is {} cannot change that way",
                current.code()
            ),
        })?;
        let activated_at = if event == RecipientEvent::Verify {
            Some(now)
        } else {
            reg.recipient.activated_at
        };
        let locale = Locale::parse(&reg.recipient.language).unwrap_or_default();
        let (key_hash, mut notices) = if event == RecipientEvent::Verify {
            let (hash, notice) =
                issue_access_key(&reg.recipient, sdm.or(messaged_sdm(&reg, now)?)).await?;
            (Some(hash), vec![notice])
        } else {
            (None, Vec::new())
        };
        if event != RecipientEvent::Verify {
            notices.push(Notice {
                recipient: Some(recipient_id),
                address: sdm.map_or_else(|| reg.recipient.phone.clone(), |s| s.phone.clone()),
                channel: Channel::Sms,
                template: "registration-changed".to_owned(),
                params: BTreeMap::from([("status".to_owned(), next.code().to_owned())]),
                locale,
            });
        }
        let update = change(move |mut conn: Conn<'_>| {
            Box::pin(async move {
                ehrshare_store::recipient::set_status(
                    conn.reborrow(),
                    recipient_id,
                    next,
                    activated_at,
                )
                .await?;
                if let Some(h) = key_hash {
                    ehrshare_store::recipient::replace_access_key(conn, recipient_id, &h, now)
                        .await?;
                }
                Ok(())
            })
        });
        self.audit_and_notify(entry, Some(update), notices).await?;
        reg.recipient.status = next;
        reg.recipient.activated_at = activated_at;
        Ok(reg)
    }

    /// A registration with its SDMs, for `caller` to see: the reading is audited first, and
    /// nothing is returned if the audit entry cannot be written.
    pub async fn read_recipient(
        &self,
        caller: &Caller,
        id: Uuid,
    ) -> Result<Registration, AppError> {
        let reg = self.load_recipient(id).await?;
        let mut entry = caller.entry(self, "recipient.read", Outcome::Allowed);
        entry.recipient = Some(id);
        entry.domains = vec!["demographics".to_owned()];
        self.audit(entry).await?;
        Ok(reg)
    }

    /// A registration with its SDMs, for use cases that audit their own action.
    pub(crate) async fn load_recipient(&self, id: Uuid) -> Result<Registration, AppError> {
        let (recipient, sdms) = self.db().recipient(id).await?.ok_or(AppError::NotFound)?;
        Ok(Registration { recipient, sdms })
    }
}
