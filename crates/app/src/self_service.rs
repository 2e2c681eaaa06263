//! The patient portal's self-service (issue 27, items 1 and 8; ADR 0021): registering online,
//! setting a new password when it is forgotten, and changing the mobile number or e-mail
//! address on a registration.
//!
//! Security-sensitive:
//! - An online registration waits for the office to verify the person's identity, unless the
//!   person registering is logged in through the identity provider (iAM Smart) that asserted
//!   the same document: then it is active at once. One verified on the spot replaces a waiting
//!   registration of the same document, so nobody can hold another's document by typing it.
//!   Registrations from one address are throttled like logins.
//! - A forgotten password is never reset by document and date of birth: it takes the access
//!   key (or a session, for a person who logged in through iAM Smart) and a one-time code sent
//!   to the registered contact. Setting it ends every other session of the person.
//! - A new contact is confirmed by a code sent to it, and the old contact is told.
//! - Every code has a purpose: a login code cannot set a password or a contact, nor the other
//!   way round; each is single use, lives five minutes and allows five tries.

use std::collections::BTreeMap;

use ehrshare_core::audit::{ActorKind, Outcome};
use ehrshare_core::contact::{Email, Phone};
use ehrshare_core::locale::Locale;
use ehrshare_core::notification::Channel;
use ehrshare_core::recipient::PersonStatus;
use ehrshare_core::registration::RegistrationInput;
use ehrshare_store::person::PersonRow;
use ehrshare_store::{Conn, change};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::auth::{Session, Subject};
use crate::caller::Caller;
use crate::error::invalid;
use crate::login::throttle_keys;
use crate::outbox::Notice;
use crate::password::password_problems;
use crate::person::{CodeFor, DocumentLogin, doc_key, document, person_actor};
use crate::recipient::{Checked, Registration};
use crate::secret::hash_secret;
use crate::{App, AppError};

/// The answer to every refused step of a password reset, whatever the reason.
fn reset_failed() -> AppError {
    AppError::AuthFailed {
        code: "reset-failed",
        message: "the document number, access key or code is not right".to_owned(),
    }
}

/// The answer to a code for a new contact that does not answer.
fn contact_code_refused() -> AppError {
    invalid(
        "/code",
        "code-refused",
        "the code is not right, has expired or was used",
    )
}

/// What an online registration answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Online {
    /// Verified at once (through the identity provider): active, its access key sent.
    Verified(Box<Registration>),
    /// Received: it waits for verification, or the document was registered already; which,
    /// the answer does not say (the notices do, to the right people).
    Received,
}

/// Where a registration's notices go, as typed: the SDM's phone for one an SDM registers,
/// else the person's channel (e-mail or post when chosen and given, otherwise SMS).
fn typed_contact(n: &ehrshare_core::registration::NewRecipient) -> (Channel, String) {
    use ehrshare_core::notification::{Carries, channel_for};
    if let Some(s) = &n.sdm {
        return (Channel::Sms, s.phone.as_str().to_owned());
    }
    match channel_for(
        n.notify_channel,
        Carries::RegistrationChange,
        n.email.is_some(),
    ) {
        Channel::Email => (
            Channel::Email,
            n.email
                .as_ref()
                .map(|e| e.as_str().to_owned())
                .unwrap_or_default(),
        ),
        Channel::Post => (Channel::Post, n.address.clone().unwrap_or_default()),
        _ => (Channel::Sms, n.phone.as_str().to_owned()),
    }
}

/// A new contact waiting for its codes: one sent to it, one to the registration's mobile
/// number on file (whose hash waits here).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
struct NewContact {
    recipient: Uuid,
    #[serde(default)]
    phone: Option<String>,
    #[serde(default)]
    email: Option<String>,
    confirm_hash: String,
}

fn logged_in_person(session: &Session) -> Result<&PersonRow, AppError> {
    match &session.subject {
        Subject::Person(p) => Ok(p),
        _ => Err(AppError::NotFound),
    }
}

impl App {
    /// The identity provider that asserted the logged-in person's document, if one did.
    pub async fn verified_through(&self, session: &Session) -> Result<Option<String>, AppError> {
        let person = logged_in_person(session)?;
        Ok(self.db().person_identity(person.id).await?.map(|(i, _)| i))
    }

    /// Registers online (SPEC 3.2): anyone, or a person logged in to the portal. It waits for
    /// the office's verification, unless `session` is a person whose document and date of
    /// birth an identity provider asserted and the registration is their own.
    ///
    /// What it reveals: nothing about who is registered. A registration that waits and one
    /// refused because the document is registered already get the same answer (`Received`);
    /// the registrant is told the reference through the contact typed, the holder of a
    /// registered document that someone tried to register again through the contact on file.
    /// Each attempt counts against the client address (a lock is 429).
    pub async fn register_online(
        &self,
        caller: &Caller,
        session: Option<&Session>,
        mut input: RegistrationInput,
    ) -> Result<Online, AppError> {
        input.channel = "online".to_owned();
        let checked = match session {
            None => Checked::ByChannel,
            Some(s) => {
                let person = logged_in_person(s)?;
                match self.db().person_identity(person.id).await? {
                    Some((issuer, birth_date)) => Checked::ByIdentityProvider {
                        issuer,
                        birth_date,
                        person: Box::new(person.clone()),
                    },
                    None => Checked::ByChannel,
                }
            }
        };
        // One address registers a few at a time (a family at one computer), not a flood.
        let keys: Vec<String> = caller
            .client_addr
            .iter()
            .map(|a| format!("addr:register:{a}"))
            .collect();
        let (records, locked) = self
            .throttle_gate(
                &keys,
                caller,
                "recipient.register",
                "registration-throttled",
            )
            .await?;
        if locked {
            return Err(AppError::Throttled {
                code: "registration-throttled",
                message: "too many registrations from this address: try again later".to_owned(),
                retry_after_secs: 900,
            });
        }
        let (rows, _) = self.after_failure(keys.clone(), records.clone());
        let today = ehrshare_core::clock::hong_kong_date(self.clock().now());
        let parsed = ehrshare_core::registration::NewRecipient::parse(&input, today).ok();
        // The contact typed hears the same words whether the registration was stored or the
        // document was registered already: no reference, nothing that tells them apart.
        let received = parsed.as_ref().map(|n| {
            let (channel, address) = typed_contact(n);
            Notice {
                recipient: None,
                address,
                channel,
                template: "registration-received".to_owned(),
                params: BTreeMap::new(),
                locale: n.language,
            }
        });
        match self.register_checked(caller, input, checked, rows).await {
            Ok(reg) if reg.recipient.activated_at.is_some() => Ok(Online::Verified(Box::new(reg))),
            Ok(reg) => {
                let mut entry = caller.entry(self, "recipient.register-notice", Outcome::Allowed);
                entry.recipient = Some(reg.recipient.id);
                self.audit_and_notify(entry, None, received.into_iter().collect())
                    .await?;
                Ok(Online::Received)
            }
            Err(AppError::Conflict {
                code: "duplicate-document",
                ..
            }) => {
                let mut anonymous = caller.clone();
                anonymous.actor.kind = ActorKind::Anonymous;
                self.record_failure(
                    &anonymous,
                    "recipient.register",
                    keys,
                    records,
                    "duplicate-document",
                    None,
                )
                .await?;
                let mut notices: Vec<Notice> = received.into_iter().collect();
                // The holder on file is told only when verified: a waiting registration's
                // contact is whoever typed it.
                let mut about = None;
                if let Some(d) = parsed.as_ref().map(|n| &n.document)
                    && let Some(existing) = self
                        .db()
                        .recipient_by_document(d.kind.code(), &d.issuer, &d.number)
                        .await?
                {
                    let reg = self.load_recipient(existing).await?;
                    if reg.recipient.status == ehrshare_core::recipient::RecipientStatus::Active {
                        let now = self.clock().now();
                        notices.push(crate::recipient::recipient_notice(
                            &reg.recipient,
                            crate::recipient::messaged_sdm(&reg, now)?,
                            "registration-attempt",
                            ehrshare_core::notification::Carries::RegistrationChange,
                            BTreeMap::new(),
                        ));
                        about = Some(existing);
                    }
                }
                let mut entry = caller.entry(self, "recipient.register-notice", Outcome::Allowed);
                entry.recipient = about;
                self.audit_and_notify(entry, None, notices).await?;
                Ok(Online::Received)
            }
            Err(e) => Err(e),
        }
    }

    /// A forgotten password, first step: the document and the access key the registration
    /// sent. A code goes to the registered contact; the answer is its challenge. Refusals are
    /// 401 `reset-failed` whatever the reason, throttled like logins.
    pub async fn begin_password_reset(
        &self,
        caller: &Caller,
        typed: DocumentLogin,
        access_key: &str,
    ) -> Result<Uuid, AppError> {
        let now = self.clock().now();
        let doc = document(&typed);
        let keys = throttle_keys("person", &doc_key(doc.as_ref(), &typed), caller);
        let (records, locked) = self
            .throttle_gate(&keys, caller, "person.password-reset", "login-throttled")
            .await?;
        let contact = match (&doc, locked) {
            (Some(d), false) => self.access_key_contact(d, access_key).await?,
            _ => None,
        };
        let (Some(d), Some((channel, address, language))) = (doc, contact) else {
            let mut anonymous = caller.clone();
            anonymous.actor = person_actor(None);
            anonymous.actor.kind = ActorKind::Anonymous;
            self.record_failure(
                &anonymous,
                "person.password-reset",
                keys,
                records,
                if locked { "locked" } else { "bad-credentials" },
                None,
            )
            .await?;
            return Err(reset_failed());
        };
        // A holder of the key who never set up a login gets one (without a password yet).
        let existing = self
            .db()
            .person_by_document(d.kind.code(), &d.issuer, &d.number)
            .await?;
        let new_person = existing.is_none().then(|| PersonRow {
            id: Uuid::now_v7(),
            doc_type: d.kind.code().to_owned(),
            doc_issuer: d.issuer.clone(),
            doc_number: d.number.clone(),
            password_hash: None,
            password_set_at: None,
            otp_channel: channel.code().to_owned(),
            otp_address: address.clone(),
            language: language.clone(),
            status: PersonStatus::Active,
            created_at: now,
        });
        let person = existing
            .or_else(|| new_person.clone())
            .ok_or_else(|| AppError::Internal("no person".into()))?;
        if person.status != PersonStatus::Active {
            return Err(reset_failed());
        }
        let (challenge, code) = self.challenge_for(person.id, CodeFor::Password, None)?;
        let notice = self.code_notice(channel, address, &language, "password-code", code);
        let mut entry = caller.entry(self, "person.password-code", Outcome::Allowed);
        entry.actor = person_actor(Some(person.id));
        let id = challenge.id;
        // Each request counts like a failed login (a new password clears it): the key is
        // shown at counters, and each request texts the person.
        let (rows, _) = self.after_failure(keys, records);
        let store = change(move |mut conn: Conn<'_>| {
            Box::pin(async move {
                for (k, f) in &rows {
                    f.write(conn.reborrow(), k).await?;
                }
                if let Some(p) = &new_person {
                    ehrshare_store::person::upsert(conn.reborrow(), p).await?;
                }
                ehrshare_store::person::insert_challenge(conn, &challenge).await
            })
        });
        self.audit_and_notify(entry, Some(store), vec![notice])
            .await?;
        Ok(id)
    }

    /// A new password from inside the portal (a person who logged in through iAM Smart has
    /// none): a code goes to the person's registered contact.
    pub async fn begin_password_change(
        &self,
        session: &Session,
        caller: &Caller,
    ) -> Result<Uuid, AppError> {
        let person = logged_in_person(session)?;
        if person.otp_address.is_empty() {
            return Err(AppError::Conflict {
                code: "no-registered-contact",
                message: "there is no registered contact to send a code to: register first"
                    .to_owned(),
            });
        }
        let (challenge, code) = self.challenge_for(person.id, CodeFor::Password, None)?;
        let channel = Channel::parse(&person.otp_channel).unwrap_or(Channel::Sms);
        let notice = self.code_notice(
            channel,
            person.otp_address.clone(),
            &person.language,
            "password-code",
            code,
        );
        let entry = caller.entry(self, "person.password-code", Outcome::Allowed);
        let id = challenge.id;
        let store = change(move |conn: Conn<'_>| {
            Box::pin(
                async move { ehrshare_store::person::insert_challenge(conn, &challenge).await },
            )
        });
        self.audit_and_notify(entry, Some(store), vec![notice])
            .await?;
        Ok(id)
    }

    /// A forgotten or changed password, second step: the code and the new password. Every
    /// other session of the person ends (the current one, when logged in, stays); the person
    /// is told through the same contact.
    pub async fn finish_password_reset(
        &self,
        caller: &Caller,
        session: Option<&Session>,
        challenge: Uuid,
        code: &str,
        password: &str,
    ) -> Result<(), AppError> {
        let now = self.clock().now();
        let (c, person) = self
            .answer_challenge(
                caller,
                challenge,
                code,
                CodeFor::Password,
                "person.password-reset",
                reset_failed(),
            )
            .await?;
        if let Some(s) = session
            && logged_in_person(s)?.id != person.id
        {
            return Err(reset_failed());
        }
        if person.status != PersonStatus::Active {
            return Err(reset_failed());
        }
        let normalised = ehrshare_core::password::check(
            password,
            &self.settings().auth.password,
            &person.doc_number,
            |p| crate::password::COMMON_PASSWORDS.contains(p),
        )
        .map_err(password_problems)?;
        let hash = hash_secret(normalised).await?;
        let keep = session.and_then(|s| s.token_hash.clone());
        let channel = Channel::parse(&person.otp_channel).unwrap_or(Channel::Sms);
        let notice = Notice {
            recipient: None,
            address: person.otp_address.clone(),
            channel,
            template: "password-changed".to_owned(),
            params: BTreeMap::new(),
            locale: Locale::parse(&person.language).unwrap_or_default(),
        };
        let mut entry = caller.entry(self, "person.password-reset", Outcome::Allowed);
        entry.actor = person_actor(Some(person.id));
        let user_key = format!(
            "person:{}:{}:{}",
            person.doc_type, person.doc_issuer, person.doc_number
        );
        let (id, person_id) = (c.id, person.id);
        let store = change(move |mut conn: Conn<'_>| {
            Box::pin(async move {
                if !ehrshare_store::person::use_challenge(conn.reborrow(), id, now).await? {
                    return Err(ehrshare_store::StoreError::Stale(
                        ehrshare_store::Stale::CodeUsed,
                    ));
                }
                ehrshare_store::account::clear_failures(conn.reborrow(), &user_key).await?;
                ehrshare_store::person::set_password(conn, person_id, &hash, keep.as_deref(), now)
                    .await
            })
        });
        match self
            .audit_and_notify(entry, Some(store), vec![notice])
            .await
        {
            Ok(_) => Ok(()),
            Err(AppError::Conflict {
                code: "code-used", ..
            }) => Err(reset_failed()),
            Err(e) => Err(e),
        }
    }

    /// A new mobile number (`kind` `phone`) or e-mail address (`email`) for a registration,
    /// first step: a code goes to the new contact. For the recipient or an SDM with authority.
    pub async fn begin_contact_change(
        &self,
        session: &Session,
        caller: &Caller,
        recipient: Uuid,
        kind: &str,
        value: &str,
    ) -> Result<Uuid, AppError> {
        let sdm = self
            .owner_with_authority(session, caller, recipient, "recipient.contact-change")
            .await?;
        let person = logged_in_person(session)?;
        let keys = vec![format!("contact:{}", person.id)];
        let (records, locked) = self
            .throttle_gate(
                &keys,
                caller,
                "recipient.contact-code",
                "contact-change-throttled",
            )
            .await?;
        if locked {
            return Err(AppError::Throttled {
                code: "contact-change-throttled",
                message: "too many changes of contact asked for: try again later".to_owned(),
                retry_after_secs: 900,
            });
        }
        let confirm = crate::secret::new_code()?;
        let confirm_hash = crate::secret::token_hash(&confirm);
        let (channel, address, contact) = match kind {
            "phone" => {
                let p = Phone::parse(value)
                    .map_err(|_| invalid("/value", "invalid-phone", "a phone number"))?;
                let a = p.as_str().to_owned();
                (
                    Channel::Sms,
                    a.clone(),
                    NewContact {
                        recipient,
                        phone: Some(a),
                        email: None,
                        confirm_hash,
                    },
                )
            }
            "email" => {
                let e = Email::parse(value)
                    .map_err(|_| invalid("/value", "invalid-email", "an e-mail address"))?;
                let a = e.as_str().to_owned();
                (
                    Channel::Email,
                    a.clone(),
                    NewContact {
                        recipient,
                        phone: None,
                        email: Some(a),
                        confirm_hash,
                    },
                )
            }
            _ => return Err(invalid("/kind", "invalid-kind", "phone or email")),
        };
        let reg = self.load_recipient(recipient).await?;
        if contact.phone.as_deref() == Some(reg.recipient.phone.as_str())
            || (contact.email.is_some() && contact.email == reg.recipient.email)
        {
            return Err(invalid(
                "/value",
                "same-contact",
                "this is the contact on file already",
            ));
        }
        let payload =
            serde_json::to_string(&contact).map_err(|e| AppError::Internal(Box::new(e)))?;
        let (challenge, code) = self.challenge_for(person.id, CodeFor::Contact, Some(payload))?;
        let language = &reg.recipient.language;
        // A session someone else took cannot move the codes away: the mobile number on file
        // confirms the change too.
        let notices = vec![
            self.code_notice(channel, address, language, "contact-code", code),
            self.code_notice(
                Channel::Sms,
                reg.recipient.phone.clone(),
                language,
                "contact-confirm-code",
                confirm,
            ),
        ];
        let mut entry = caller.entry(self, "recipient.contact-code", Outcome::Allowed);
        entry.recipient = Some(recipient);
        entry.sdm = sdm;
        let id = challenge.id;
        let (rows, _) = self.after_failure(keys, records);
        let store = change(move |mut conn: Conn<'_>| {
            Box::pin(async move {
                for (k, f) in &rows {
                    f.write(conn.reborrow(), k).await?;
                }
                ehrshare_store::person::insert_challenge(conn, &challenge).await
            })
        });
        self.audit_and_notify(entry, Some(store), notices).await?;
        Ok(id)
    }

    /// A new contact, second step: the code that was sent to it. The registration takes the
    /// new contact (and, for the recipient's own login, its codes go there too); the old
    /// contact is told.
    pub async fn finish_contact_change(
        &self,
        session: &Session,
        caller: &Caller,
        recipient: Uuid,
        challenge: Uuid,
        code: &str,
        current_code: &str,
    ) -> Result<(), AppError> {
        let now = self.clock().now();
        let sdm = self
            .owner_with_authority(session, caller, recipient, "recipient.contact-change")
            .await?;
        let me = logged_in_person(session)?;
        let (c, person) = self
            .answer_challenge(
                caller,
                challenge,
                code,
                CodeFor::Contact,
                "recipient.contact-change",
                contact_code_refused(),
            )
            .await?;
        let contact: NewContact = c
            .payload
            .as_deref()
            .and_then(|p| serde_json::from_str(p).ok())
            .ok_or_else(contact_code_refused)?;
        let confirmed: bool = subtle::ConstantTimeEq::ct_eq(
            crate::secret::token_hash(current_code.trim()).as_bytes(),
            contact.confirm_hash.as_bytes(),
        )
        .into();
        if person.id != me.id || contact.recipient != recipient || !confirmed {
            let mut entry = caller.entry(self, "recipient.contact-change", Outcome::Denied);
            entry.recipient = Some(recipient);
            entry.denial_reason = Some("wrong-code".to_owned());
            let count = change(move |conn: Conn<'_>| {
                Box::pin(async move {
                    ehrshare_store::person::count_challenge_attempt(conn, challenge).await
                })
            });
            self.audit_with(entry, count).await?;
            return Err(contact_code_refused());
        }
        let reg = self.load_recipient(recipient).await?;
        let r = &reg.recipient;
        let locale = Locale::parse(&r.language).unwrap_or_default();
        let (kind, old) = match (&contact.phone, &contact.email) {
            (Some(_), _) => ("phone", Some((Channel::Sms, r.phone.clone()))),
            // No e-mail on file before: the phone is told.
            _ => (
                "email",
                Some(
                    r.email
                        .clone()
                        .map_or((Channel::Sms, r.phone.clone()), |e| (Channel::Email, e)),
                ),
            ),
        };
        let new = contact
            .phone
            .clone()
            .map(|p| (Channel::Sms, p))
            .or_else(|| contact.email.clone().map(|e| (Channel::Email, e)))
            .ok_or_else(contact_code_refused)?;
        let tell = |(channel, address): (Channel, String)| Notice {
            recipient: Some(recipient),
            address,
            channel,
            template: "contact-changed".to_owned(),
            params: BTreeMap::from([(
                "kind".to_owned(),
                match (kind, locale) {
                    ("phone", Locale::ZhHk) => "手提電話號碼",
                    ("phone", _) => "mobile number",
                    (_, Locale::ZhHk) => "電郵地址",
                    _ => "e-mail address",
                }
                .to_owned(),
            )]),
            locale,
        };
        let mut notices = vec![tell(new.clone())];
        if let Some(o) = old.filter(|o| o.1 != new.1) {
            notices.push(tell(o));
        }
        // The recipient's own login sends its codes to the contact of the same kind.
        let own_codes = (sdm.is_none() && person.otp_channel == new.0.code()).then_some(new);
        let mut entry = caller.entry(self, "recipient.contact-change", Outcome::Allowed);
        entry.recipient = Some(recipient);
        entry.sdm = sdm;
        entry.reason = Some(kind.to_owned());
        let (id, person_id) = (c.id, person.id);
        let store = change(move |mut conn: Conn<'_>| {
            Box::pin(async move {
                if !ehrshare_store::person::use_challenge(conn.reborrow(), id, now).await? {
                    return Err(ehrshare_store::StoreError::Stale(
                        ehrshare_store::Stale::CodeUsed,
                    ));
                }
                if let Some((channel, address)) = &own_codes {
                    ehrshare_store::person::set_code_contact(
                        conn.reborrow(),
                        person_id,
                        channel.code(),
                        address,
                    )
                    .await?;
                }
                ehrshare_store::recipient::set_contact(
                    conn,
                    recipient,
                    contact.phone.as_deref(),
                    contact.email.as_deref(),
                )
                .await
            })
        });
        match self.audit_and_notify(entry, Some(store), notices).await {
            Ok(_) => Ok(()),
            Err(AppError::Conflict {
                code: "code-used", ..
            }) => Err(contact_code_refused()),
            Err(e) => Err(e),
        }
    }

    /// A notice that carries a one-time code (never into the portal's inbox: it may be the
    /// very thing the code protects).
    fn code_notice(
        &self,
        channel: Channel,
        address: String,
        language: &str,
        template: &str,
        code: String,
    ) -> Notice {
        let minutes = self.settings().auth.login_code_ttl.whole_minutes();
        Notice {
            recipient: None,
            address,
            channel: match channel {
                Channel::Email => Channel::Email,
                _ => Channel::Sms,
            },
            template: template.to_owned(),
            params: BTreeMap::from([
                ("code".to_owned(), code),
                ("minutes".to_owned(), minutes.to_string()),
            ]),
            locale: Locale::parse(language).unwrap_or_default(),
        }
    }
}
