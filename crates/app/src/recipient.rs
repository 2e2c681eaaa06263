//! Registering healthcare recipients (SPEC 3.2, 3.3): validation, the age and capacity rules,
//! SDMs, one registration per document, activation with an access key delivered through the
//! outbox and stored only as a hash.

use std::collections::BTreeMap;

use ehrshare_core::audit::Outcome;
use ehrshare_core::clock::hong_kong_date;
use ehrshare_core::locale::Locale;
use ehrshare_core::notification::{Carries, Channel, channel_for};
use ehrshare_core::recipient::{RecipientEvent, RecipientStatus, SdmCategory};
use ehrshare_core::registration::{
    NewRecipient, Refused, RegistrationInput, date_text, parse_date,
};
use ehrshare_store::recipient::{RecipientRow, SdmRow};
use ehrshare_store::{Conn, StoreError, change};
use uuid::Uuid;

use crate::caller::Caller;
use crate::error::{FieldError, invalid_fields};
use crate::outbox::Notice;
use crate::{App, AppError};

/// A registration as shown (never the access key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registration {
    pub recipient: RecipientRow,
    pub sdms: Vec<SdmRow>,
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

/// A fresh access key for `r`: its hash to store, and the notice that carries the clear key
/// (to the SDM when one acts or registered the recipient, else by the recipient's channel).
pub(crate) async fn issue_access_key(
    r: &RecipientRow,
    sdm: Option<&SdmRow>,
) -> Result<(String, Notice), AppError> {
    let key = crate::secret::new_access_key()?;
    let hash = crate::secret::hash_secret(key.clone()).await?;
    let notice = recipient_notice(
        r,
        sdm,
        "access-key",
        Carries::AccessKey,
        BTreeMap::from([("key".to_owned(), key)]),
    );
    Ok((hash, notice))
}

/// A notice to a recipient through their notification channel, or to the SDM who acts for them
/// through the SDM's own (SMS, or e-mail where they chose it), in the recipient's language;
/// what it `carries` bounds the channel (`core::notification::channel_for`).
pub(crate) fn recipient_notice(
    r: &RecipientRow,
    sdm: Option<&SdmRow>,
    template: &str,
    carries: Carries,
    params: BTreeMap<String, String>,
) -> Notice {
    let locale = Locale::parse(&r.language).unwrap_or_default();
    let (channel, address) = match sdm {
        Some(s) => {
            let chosen = Channel::parse(&s.notify_channel).unwrap_or(Channel::Sms);
            match channel_for(chosen, carries, s.email.is_some()) {
                Channel::Email => (Channel::Email, s.email.clone().unwrap_or_default()),
                _ => (Channel::Sms, s.phone.clone()),
            }
        }
        None => {
            let chosen = Channel::parse(&r.notify_channel).unwrap_or(Channel::Sms);
            let channel = channel_for(chosen, carries, r.email.is_some());
            (channel, address_of(r, channel))
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

/// Where a notice to `r` by `channel` goes: the portal's inbox needs no address (it is kept by
/// the recipient's id).
pub(crate) fn address_of(r: &RecipientRow, channel: Channel) -> String {
    match channel {
        Channel::Email => r.email.clone().unwrap_or_default(),
        Channel::Post => r.address.clone().unwrap_or_default(),
        Channel::Sms => r.phone.clone(),
        Channel::App => String::new(),
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

/// How a registration's identity is checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Checked {
    /// As its channel says: on the spot in person and at a provider; later (by the office)
    /// online and by mail or fax.
    ByChannel,
    /// Online by `person`, logged in through the identity provider `issuer` that asserted
    /// their document and `birth_date`: verified at once if the registration is theirs (the
    /// same document and date of birth, no SDM); otherwise it waits like any online one.
    ByIdentityProvider {
        issuer: String,
        birth_date: Option<String>,
        person: Box<ehrshare_store::person::PersonRow>,
    },
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
        self.register_checked(caller, input, Checked::ByChannel, Vec::new())
            .await
    }

    /// [`App::register_recipient`] with how the identity was checked, and throttling records
    /// to store with it. A registration verified on the spot replaces any registration of the
    /// same document still waiting for verification (someone else may have typed it online).
    pub(crate) async fn register_checked(
        &self,
        caller: &Caller,
        input: RegistrationInput,
        checked: Checked,
        throttle: Vec<(String, crate::login::OneMore)>,
    ) -> Result<Registration, AppError> {
        let now = self.clock().now();
        let new = match NewRecipient::parse(&input, hong_kong_date(now)) {
            Ok(new) => new,
            Err(Refused::Fields(fields)) => {
                return Err(invalid_fields(
                    "the registration has invalid fields",
                    fields,
                ));
            }
            Err(Refused::Rule(e)) => {
                return Err(AppError::Invalid {
                    code: e.code(),
                    message: e.to_string(),
                    fields: Vec::new(),
                });
            }
        };
        let by_provider = match &checked {
            Checked::ByIdentityProvider {
                issuer,
                birth_date,
                person,
            } if new.sdm.is_none()
                && person.doc_type == new.document.kind.code()
                && person.doc_issuer == new.document.issuer
                && person.doc_number == new.document.number
                && birth_date.as_deref() == Some(date_text(new.date_of_birth).as_str()) =>
            {
                Some((issuer.clone(), person.id))
            }
            _ => None,
        };
        let active = new.channel.verifies_identity() || by_provider.is_some();
        let id = Uuid::now_v7();
        let recipient = RecipientRow {
            id,
            status: if active {
                RecipientStatus::Active
            } else {
                RecipientStatus::PendingVerification
            },
            channel: new.channel.code().to_owned(),
            name_en: new.name_en,
            name_zh: new.name_zh,
            date_of_birth: date_text(new.date_of_birth),
            sex: new.sex.code().to_owned(),
            capacity: new.capacity.code().to_owned(),
            doc_type: new.document.kind.code().to_owned(),
            doc_issuer: new.document.issuer,
            doc_number: new.document.number,
            phone: new.phone.as_str().to_owned(),
            phone2: new.phone2.map(|p| p.as_str().to_owned()),
            email: new.email.map(|e| e.as_str().to_owned()),
            address: new.address,
            language: new.language.tag().to_owned(),
            notify_channel: new.notify_channel.code().to_owned(),
            refuses_access_notices: new.refuses_access_notices,
            created_at: now,
            activated_at: active.then_some(now),
        };
        let sdm_row = new.sdm.map(|s| SdmRow {
            recipient_id: id,
            sdm_id: Uuid::now_v7(),
            name_en: s.name_en,
            name_zh: s.name_zh,
            doc_type: s.document.kind.code().to_owned(),
            doc_issuer: s.document.issuer,
            doc_number: s.document.number,
            category: s.claim.category.code().to_owned(),
            no_higher_available: s.claim.no_higher_available,
            relationship_proof: s.relationship_proof,
            phone: s.phone.as_str().to_owned(),
            created_at: now,
            email: s.email.map(|e| e.as_str().to_owned()),
            notify_channel: s.notify_channel.code().to_owned(),
        });

        // Activation: a fresh access key, hashed; the clear key only travels in the outbox.
        let (key_hash, notices) = if active {
            let (hash, notice) = issue_access_key(&recipient, sdm_row.as_ref()).await?;
            (Some(hash), vec![notice])
        } else {
            (None, Vec::new())
        };

        // The waiting registrations this one replaces, named in its audit entry (and only
        // those: one typed meanwhile makes this insert a conflict, to try again).
        let replaced = if active {
            self.db()
                .waiting_of_document(
                    &recipient.doc_type,
                    &recipient.doc_issuer,
                    &recipient.doc_number,
                )
                .await?
        } else {
            Vec::new()
        };
        let mut entry = caller.entry(self, "recipient.register", Outcome::Allowed);
        entry.recipient = Some(id);
        entry.sdm = sdm_row.as_ref().map(|s| s.sdm_id);
        entry.record_ids = replaced.clone();
        entry.reason = match (&by_provider, replaced.is_empty()) {
            (Some((issuer, _)), true) => Some(format!("identity verified through {issuer}")),
            (Some((issuer, _)), false) => Some(format!(
                "identity verified through {issuer}; replaces registrations waiting for verification"
            )),
            (None, false) => Some("replaces registrations waiting for verification".to_owned()),
            (None, true) => None,
        };
        // The verified person's one-time codes go to the contact they just registered.
        let code_contact = by_provider.map(|(_, person)| {
            let channel = match (new.notify_channel, &recipient.email) {
                (Channel::Email, Some(e)) => (Channel::Email, e.clone()),
                _ => (Channel::Sms, recipient.phone.clone()),
            };
            (person, channel)
        });
        let (r, s) = (recipient.clone(), sdm_row.clone());
        let insert = change(move |mut conn: Conn<'_>| {
            Box::pin(async move {
                for (k, f) in &throttle {
                    f.write(conn.reborrow(), k).await?;
                }
                ehrshare_store::recipient::withdraw_waiting(conn.reborrow(), &replaced).await?;
                if let Some((person, (channel, address))) = &code_contact {
                    ehrshare_store::person::set_code_contact(
                        conn.reborrow(),
                        *person,
                        channel.code(),
                        address,
                    )
                    .await?;
                }
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
                fields: vec![FieldError::new("/reason", "required", "required")],
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
        let (key_hash, mut notices) = if event == RecipientEvent::Verify {
            let (hash, notice) =
                issue_access_key(&reg.recipient, sdm.or(messaged_sdm(&reg, now)?)).await?;
            (Some(hash), vec![notice])
        } else {
            (None, Vec::new())
        };
        if event != RecipientEvent::Verify {
            notices.push(recipient_notice(
                &reg.recipient,
                sdm.or(messaged_sdm(&reg, now)?),
                "registration-changed",
                Carries::RegistrationChange,
                BTreeMap::from([("status".to_owned(), next.code().to_owned())]),
            ));
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

    /// Tells the SDMs of children turning 16 within `core::recipient::SDM_ENDING_NOTICE_DAYS`
    /// that their authority ends, and the children that they take over (SPEC 3.3), once per
    /// SDM. The authority itself ends by the date of birth at each action, not by this pass
    /// (which may run late); run by the background worker with the alert scan. Returns how
    /// many SDMs were told.
    pub async fn notify_sdm_endings(&self) -> Result<usize, AppError> {
        use ehrshare_core::recipient::SDM_ENDING_NOTICE_DAYS;
        let now = self.clock().now();
        let today = hong_kong_date(now);
        // Born after (today - 16 years) and by (today + the notice days - 16 years), with a
        // day's margin each side: `sdm_ending_notice_due` decides exactly.
        let years = |d: time::Date| {
            time::Date::from_calendar_date(d.year() - 16, d.month(), 1)
                .map(|first| first + time::Duration::days(i64::from(d.day()) - 1))
                .unwrap_or(d)
        };
        let after = years(today) - time::Duration::days(1);
        let by =
            years(today + time::Duration::days(SDM_ENDING_NOTICE_DAYS)) + time::Duration::days(1);
        let categories: Vec<&str> = [
            SdmCategory::Parent,
            SdmCategory::ChildGuardian,
            SdmCategory::ChildCourtAppointed,
            SdmCategory::ChildFamilyOrCoResident,
            SdmCategory::ChildCareProvider,
        ]
        .iter()
        .map(|c| c.code())
        .collect();
        let candidates = self
            .db()
            .sdm_endings_untold(&categories, &date_text(after), &date_text(by))
            .await?;
        let mut told = 0;
        for (recipient, sdm_id) in candidates {
            // One that fails (a second worker told them first) does not stop the others.
            match self.tell_sdm_ending(recipient, sdm_id, today, now).await {
                Ok(true) => told += 1,
                Ok(false) => {}
                Err(e) => tracing::warn!(error = %e, "an SDM ending notice failed"),
            }
        }
        Ok(told)
    }

    /// One SDM's notice (and the child's, if not sent before); whether it was sent.
    async fn tell_sdm_ending(
        &self,
        recipient: Uuid,
        sdm_id: Uuid,
        today: time::Date,
        now: time::OffsetDateTime,
    ) -> Result<bool, AppError> {
        use ehrshare_core::recipient::sdm_ending_notice_due;
        let reg = self.load_recipient(recipient).await?;
        let Some(born) = parse_date(&reg.recipient.date_of_birth) else {
            return Ok(false);
        };
        let Some(birthday) = sdm_ending_notice_due(born, today) else {
            return Ok(false);
        };
        let Some(sdm) = reg.sdms.iter().find(|s| s.sdm_id == sdm_id) else {
            return Ok(false);
        };
        let params = BTreeMap::from([("date".to_owned(), date_text(birthday))]);
        let mut notices = vec![recipient_notice(
            &reg.recipient,
            Some(sdm),
            "sdm-ending",
            Carries::RegistrationChange,
            params.clone(),
        )];
        // The child is told once, however many SDMs they have.
        if !self.db().sdm_ending_told(recipient).await? {
            notices.push(recipient_notice(
                &reg.recipient,
                None,
                "takeover",
                Carries::RegistrationChange,
                params,
            ));
        }
        let caller = Caller {
            actor: ehrshare_core::audit::Actor::system(),
            request_id: None,
            client_addr: None,
        };
        let mut entry = caller.entry(self, "recipient.sdm-ending-notice", Outcome::Allowed);
        entry.recipient = Some(recipient);
        entry.sdm = Some(sdm_id);
        let note = change(move |conn: Conn<'_>| {
            Box::pin(async move {
                ehrshare_store::recipient::note_sdm_ending_notice(conn, recipient, sdm_id, now)
                    .await
            })
        });
        self.audit_and_notify(entry, Some(note), notices).await?;
        Ok(true)
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
