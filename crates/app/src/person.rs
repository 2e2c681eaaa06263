//! Patients and SDMs logging in to the patient portal (SPEC 4.2): identity document number +
//! password + a one-time code sent through their notification channel.
//!
//! A person sets up their login with their document and the access key the registration sent
//! them (a recipient's own key, or, for an SDM, the key of a recipient they represent, which
//! was sent to them). The login belongs to the document, so an SDM who is also a recipient has
//! one login that acts for both; whom a person may act for is worked out at each request from
//! the registrations (an SDM's authority over a child ends at 16).
//!
//! Security-sensitive: the same 401 `login-failed` for an unknown document, a wrong password
//! or a locked one; codes are six digits, live five minutes, allow five tries and are used
//! once; every attempt is audited.

use std::collections::BTreeMap;

use ehrshare_core::audit::{Actor, ActorKind, Outcome};
use ehrshare_core::identity::{Document, DocumentType};
use ehrshare_core::locale::Locale;
use ehrshare_core::notification::Channel;
use ehrshare_core::recipient::PersonStatus;
use ehrshare_core::recipient::SdmCategory;
use ehrshare_store::account::SessionRow;
use ehrshare_store::person::{ChallengeRow, PersonRow};
use ehrshare_store::{Conn, change};
use time::Date;
use time::macros::format_description;
use uuid::Uuid;

use crate::auth::{Stage, Subject};
use crate::caller::Caller;
use crate::login::{LoggedIn, login_failed, throttle_keys};
use crate::outbox::Notice;
use crate::password::password_problems;
use crate::secret::{hash_secret, new_code, new_token, token_hash, verify_secret};
use crate::{App, AppError};

/// Most wrong codes per challenge.
const MAX_CODE_ATTEMPTS: i64 = 5;

/// What a one-time code sent to a person is for: a code answers its own purpose only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CodeFor {
    Login,
    /// Setting a new password (forgotten, or changed in the portal).
    Password,
    /// Confirming a new mobile number or e-mail address (the code went to it).
    Contact,
}

impl CodeFor {
    fn code(self) -> &'static str {
        match self {
            CodeFor::Login => "login",
            CodeFor::Password => "password",
            CodeFor::Contact => "contact",
        }
    }
}

/// A document as typed at login.
#[derive(Debug, Clone, Default)]
pub struct DocumentLogin {
    /// `hkid` (default), `passport`, ...
    pub kind: Option<String>,
    pub issuer: Option<String>,
    pub number: String,
}

/// Whom a logged-in person may act for, now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Represented {
    /// Their own registration, if active.
    pub own: Option<Uuid>,
    /// Recipients they act for as SDM with authority now: (recipient, SDM id).
    pub as_sdm: Vec<(Uuid, Uuid)>,
}

pub(crate) fn document(d: &DocumentLogin) -> Option<Document> {
    let kind = DocumentType::parse(d.kind.as_deref().unwrap_or("hkid"))?;
    let default_issuer = match kind {
        DocumentType::Hkid | DocumentType::HkBirthCertificate => "HK",
        DocumentType::MacaoId => "MO",
        DocumentType::MainlandTravelPermit => "CN",
        DocumentType::Passport | DocumentType::Other => "",
    };
    Document::parse(
        kind,
        d.issuer.as_deref().unwrap_or(default_issuer),
        &d.number,
    )
    .ok()
}

pub(crate) fn doc_key(d: Option<&Document>, typed: &DocumentLogin) -> String {
    match d {
        Some(d) => format!("{}:{}:{}", d.kind.code(), d.issuer, d.number),
        None => format!("raw:{}", typed.number.trim().to_uppercase()),
    }
}

pub(crate) fn person_actor(id: Option<Uuid>) -> Actor {
    Actor {
        kind: ActorKind::Recipient,
        account: id,
        role: None,
        hcp: None,
        location: None,
    }
}

fn activation_failed() -> AppError {
    AppError::AuthFailed {
        code: "activation-failed",
        message: "the document number or access key is not right".to_owned(),
    }
}

impl App {
    /// A fresh challenge for `person` and its code in clear (for the notice that carries it,
    /// never stored).
    pub(crate) fn challenge_for(
        &self,
        person: Uuid,
        purpose: CodeFor,
        payload: Option<String>,
    ) -> Result<(ChallengeRow, String), AppError> {
        let now = self.clock().now();
        let code = new_code()?;
        let row = ChallengeRow {
            id: Uuid::now_v7(),
            person_id: person,
            code_hash: token_hash(&code),
            attempts: 0,
            created_at: now,
            expires_at: now + self.settings().auth.login_code_ttl,
            used_at: None,
            purpose: purpose.code().to_owned(),
            payload,
        };
        Ok((row, code))
    }

    /// The challenge `id` and its person, if `code` answers it for `purpose` now (unused,
    /// unexpired, one of its five tries left: every answer spends one). Otherwise the refusal
    /// is audited as a refused `action`, and `refused` is the answer, whatever the reason. The
    /// caller still marks the challenge used in its own transaction
    /// (`store::person::use_challenge`).
    pub(crate) async fn answer_challenge(
        &self,
        caller: &Caller,
        id: Uuid,
        code: &str,
        purpose: CodeFor,
        action: &'static str,
        refused: AppError,
    ) -> Result<(ChallengeRow, PersonRow), AppError> {
        let now = self.clock().now();
        let ch = self
            .db()
            .challenge(id)
            .await?
            .filter(|c| c.purpose == purpose.code());
        // Every answer spends a try first, in one statement (see `take_challenge_try`).
        let fresh = ch.as_ref().is_some_and(|c| now < c.expires_at)
            && self.db().take_challenge_try(id, MAX_CODE_ATTEMPTS).await?;
        let matches = ch.as_ref().is_some_and(|c| {
            subtle::ConstantTimeEq::ct_eq(
                token_hash(code.trim()).as_bytes(),
                c.code_hash.as_bytes(),
            )
            .into()
        });
        let person = match &ch {
            Some(c) => self.db().person(c.person_id).await?,
            None => None,
        };
        match (ch, person, fresh, matches) {
            (Some(c), Some(p), true, true) => Ok((c, p)),
            (_, _, fresh, _) => {
                let mut entry = caller.entry(self, action, Outcome::Denied);
                entry.denial_reason = Some(
                    if fresh {
                        "wrong-code"
                    } else {
                        "code-expired-or-used"
                    }
                    .to_owned(),
                );
                self.audit(entry).await?;
                Err(refused)
            }
        }
    }

    /// The registered contact (channel, address, language) of the registration whose access
    /// key `access_key` is, among those `doc`'s holder may use: their own, or one of a
    /// recipient they represent as SDM (then the SDM's phone).
    pub(crate) async fn access_key_contact(
        &self,
        d: &Document,
        access_key: &str,
    ) -> Result<Option<(Channel, String, String)>, AppError> {
        let (own, as_sdm) = self
            .db()
            .recipients_of_document(d.kind.code(), &d.issuer, &d.number)
            .await?;
        if own.is_none() && as_sdm.is_empty() {
            // As long as for a registered document: the time says nothing.
            let stand_in = self.stand_in_hash().await?.to_owned();
            verify_secret(access_key.trim().to_owned(), stand_in).await;
            return Ok(None);
        }
        if let Some(id) = own
            && let Some(hash) = self.db().access_key_hash(id).await?
            && verify_secret(access_key.trim().to_owned(), hash).await
        {
            let r = self.load_recipient(id).await?.recipient;
            return Ok(Some(match (Channel::parse(&r.notify_channel), &r.email) {
                (Some(Channel::Email), Some(e)) => (Channel::Email, e.clone(), r.language),
                _ => (Channel::Sms, r.phone, r.language),
            }));
        }
        for (recipient, sdm) in as_sdm {
            if let Some(hash) = self.db().access_key_hash(recipient).await?
                && verify_secret(access_key.trim().to_owned(), hash).await
            {
                let reg = self.load_recipient(recipient).await?;
                // A child's key in the hands of an SDM whose authority ended opens nothing.
                if let Some(s) = reg.sdms.iter().find(|s| s.sdm_id == sdm)
                    && crate::recipient::sdm_may_act_now(&reg, s, self.clock().now())?
                {
                    return Ok(Some((
                        Channel::Sms,
                        s.phone.clone(),
                        reg.recipient.language,
                    )));
                }
            }
        }
        Ok(None)
    }

    /// Sets up a person's login with their document and an access key: their own
    /// registration's, or one of a recipient they represent as SDM. A login that has a
    /// password already is 409 `already-activated`.
    pub async fn activate_person(
        &self,
        caller: &Caller,
        typed: DocumentLogin,
        access_key: &str,
        password: &str,
    ) -> Result<Uuid, AppError> {
        let now = self.clock().now();
        let doc = document(&typed);
        let keys = throttle_keys("person", &doc_key(doc.as_ref(), &typed), caller);
        let (records, locked) = self
            .throttle_gate(&keys, caller, "person.activate", "login-throttled")
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
                "person.activate",
                keys,
                records,
                if locked { "locked" } else { "bad-credentials" },
                None,
            )
            .await?;
            return Err(activation_failed());
        };
        let normalised = ehrshare_core::password::check(
            password,
            &self.settings().auth.password,
            &d.number,
            |p| crate::password::COMMON_PASSWORDS.contains(p),
        )
        .map_err(password_problems)?;
        let existing = self
            .db()
            .person_by_document(d.kind.code(), &d.issuer, &d.number)
            .await?;
        // The key alone never replaces a password: the key is shown at providers' counters.
        // A forgotten password takes the key and a code to the registered contact
        // (`App::begin_password_reset`).
        if let Some(p) = existing.as_ref().filter(|p| p.password_hash.is_some()) {
            let mut entry = caller.entry(self, "person.activate", Outcome::Denied);
            entry.actor = person_actor(Some(p.id));
            entry.denial_reason = Some("already-activated".to_owned());
            self.audit(entry).await?;
            return Err(AppError::Conflict {
                code: "already-activated",
                message: "this login is set up already: log in, or set a new password with \
                          the access key and a code sent to you"
                    .to_owned(),
            });
        }
        let id = existing.as_ref().map_or_else(Uuid::now_v7, |p| p.id);
        let row = PersonRow {
            id,
            doc_type: d.kind.code().to_owned(),
            doc_issuer: d.issuer.clone(),
            doc_number: d.number.clone(),
            password_hash: Some(hash_secret(normalised).await?),
            password_set_at: Some(now),
            otp_channel: channel.code().to_owned(),
            otp_address: address,
            language,
            status: PersonStatus::Active,
            created_at: existing.map_or(now, |p| p.created_at),
        };
        let mut entry = caller.entry(self, "person.activate", Outcome::Allowed);
        entry.actor = person_actor(Some(id));
        let user_key = keys[0].clone();
        let upsert = change(move |mut conn: Conn<'_>| {
            Box::pin(async move {
                ehrshare_store::account::clear_failures(conn.reborrow(), &user_key).await?;
                ehrshare_store::person::upsert(conn, &row).await
            })
        });
        self.audit_with(entry, upsert).await?;
        Ok(id)
    }

    /// First step of a person's login: document and password. On success a six-digit code
    /// goes out through the person's channel; the answer is the challenge to answer with it.
    pub async fn begin_person_login(
        &self,
        caller: &Caller,
        typed: DocumentLogin,
        password: &str,
    ) -> Result<Uuid, AppError> {
        let doc = document(&typed);
        let keys = throttle_keys("person", &doc_key(doc.as_ref(), &typed), caller);
        let (records, locked) = self
            .throttle_gate(&keys, caller, "person.login", "login-throttled")
            .await?;
        let person = match &doc {
            Some(d) => {
                self.db()
                    .person_by_document(d.kind.code(), &d.issuer, &d.number)
                    .await?
            }
            None => None,
        };
        let hash = match person.as_ref().and_then(|p| p.password_hash.clone()) {
            Some(h) => h,
            None => self.stand_in_hash().await?.to_owned(),
        };
        let ok = verify_secret(ehrshare_core::password::normalise(password), hash).await;
        let refusal = match &person {
            None => Some("unknown-person"),
            Some(_) if locked => Some("locked"),
            Some(p) if p.password_hash.is_none() => Some("no-password"),
            Some(_) if !ok => Some("wrong-password"),
            Some(p) if p.status != PersonStatus::Active => Some("person-suspended"),
            Some(_) => None,
        };
        let (Some(p), None) = (person.clone(), refusal) else {
            let mut anonymous = caller.clone();
            anonymous.actor = person_actor(person.as_ref().map(|p| p.id));
            anonymous.actor.kind = ActorKind::Anonymous;
            self.record_failure(
                &anonymous,
                "person.login",
                keys,
                records,
                refusal.unwrap_or("unknown-person"),
                None,
            )
            .await?;
            return Err(login_failed());
        };
        let (challenge, code) = self.challenge_for(p.id, CodeFor::Login, None)?;
        let ttl = self.settings().auth.login_code_ttl;
        let locale = Locale::parse(&p.language).unwrap_or_default();
        let notice = Notice {
            recipient: None,
            address: p.otp_address.clone(),
            channel: Channel::parse(&p.otp_channel).unwrap_or(Channel::Sms),
            template: "login-code".to_owned(),
            params: BTreeMap::from([
                ("code".to_owned(), code),
                ("minutes".to_owned(), ttl.whole_minutes().to_string()),
            ]),
            locale,
        };
        let mut entry = caller.entry(self, "person.login-code", Outcome::Allowed);
        entry.actor = person_actor(Some(p.id));
        let id = challenge.id;
        let insert = change(move |conn: Conn<'_>| {
            Box::pin(
                async move { ehrshare_store::person::insert_challenge(conn, &challenge).await },
            )
        });
        self.audit_and_notify(entry, Some(insert), vec![notice])
            .await?;
        Ok(id)
    }

    /// Second step: the code. Success opens a session for the person.
    pub async fn finish_person_login(
        &self,
        caller: &Caller,
        challenge: Uuid,
        code: &str,
    ) -> Result<LoggedIn, AppError> {
        let now = self.clock().now();
        let (c, p) = self
            .answer_challenge(
                caller,
                challenge,
                code,
                CodeFor::Login,
                "person.login",
                login_failed(),
            )
            .await?;
        let token = new_token()?;
        let csrf_token = new_token()?;
        let session = SessionRow {
            token_hash: token_hash(&token),
            account_id: None,
            person_id: Some(p.id),
            stage: Stage::Ready.code().to_owned(),
            csrf_token: csrf_token.clone(),
            created_at: now,
            last_seen_at: now,
            ended_at: None,
            client_addr: caller.client_addr.clone(),
        };
        let mut entry = caller.entry(self, "person.login", Outcome::Allowed);
        entry.actor = person_actor(Some(p.id));
        let used = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
        let used_in = used.clone();
        let id = c.id;
        let open = change(move |mut conn: Conn<'_>| {
            Box::pin(async move {
                if !ehrshare_store::person::use_challenge(conn.reborrow(), id, now).await? {
                    used_in.store(false, std::sync::atomic::Ordering::SeqCst);
                    return Err(ehrshare_store::StoreError::Stale(
                        ehrshare_store::Stale::CodeUsed,
                    ));
                }
                ehrshare_store::account::insert_session(conn, &session).await
            })
        });
        if let Err(e) = self.audit_with(entry, open).await {
            return Err(if used.load(std::sync::atomic::Ordering::SeqCst) {
                e
            } else {
                login_failed()
            });
        }
        Ok(LoggedIn {
            token,
            csrf_token,
            stage: Stage::Ready,
            subject: Subject::Person(p),
            password_expires: None,
        })
    }

    /// Gives a registered recipient a login with a known password, without the access key
    /// (for `ehrshare demo` only; there is no HTTP route to it). Codes still go through the
    /// outbox.
    pub async fn create_demo_person(
        &self,
        recipient: Uuid,
        password: &str,
    ) -> Result<PersonRow, AppError> {
        let now = self.clock().now();
        let r = self.load_recipient(recipient).await?.recipient;
        let row = PersonRow {
            id: Uuid::now_v7(),
            doc_type: r.doc_type.clone(),
            doc_issuer: r.doc_issuer.clone(),
            doc_number: r.doc_number.clone(),
            password_hash: Some(hash_secret(ehrshare_core::password::normalise(password)).await?),
            password_set_at: Some(now),
            otp_channel: Channel::Sms.code().to_owned(),
            otp_address: r.phone.clone(),
            language: r.language.clone(),
            status: PersonStatus::Active,
            created_at: now,
        };
        let caller = Caller {
            actor: Actor::system(),
            request_id: None,
            client_addr: None,
        };
        let mut entry = caller.entry(self, "person.activate", Outcome::Allowed);
        entry.record_ids = vec![row.id];
        entry.recipient = Some(recipient);
        let stored = row.clone();
        let upsert = change(move |conn: Conn<'_>| {
            Box::pin(async move { ehrshare_store::person::upsert(conn, &stored).await })
        });
        self.audit_with(entry, upsert).await?;
        Ok(row)
    }

    /// Whom a person may act for now: their own active registration, and recipients naming
    /// them as SDM whose authority has not ended (a child's parent until the child is 16).
    pub async fn represented(&self, person: &PersonRow) -> Result<Represented, AppError> {
        let now = self.clock().now();
        let (own, candidates) = self
            .db()
            .recipients_of_document(&person.doc_type, &person.doc_issuer, &person.doc_number)
            .await?;
        let mut as_sdm = Vec::new();
        for (recipient, sdm) in candidates {
            let reg = self.load_recipient(recipient).await?;
            let Some(s) = reg.sdms.iter().find(|s| s.sdm_id == sdm) else {
                continue;
            };
            let born = Date::parse(
                &reg.recipient.date_of_birth,
                format_description!("[year]-[month]-[day]"),
            )
            .map_err(|e| AppError::Internal(Box::new(e)))?;
            let Some(category) = SdmCategory::parse(&s.category) else {
                continue;
            };
            if ehrshare_core::recipient::sdm_may_act(category, born, now) {
                as_sdm.push((recipient, sdm));
            }
        }
        Ok(Represented { own, as_sdm })
    }
}

/// Someone a person may act for, as the portal's home lists them (issue 27, item 7).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActsFor {
    pub recipient: Uuid,
    /// Their own registration (else one they act for as SDM).
    pub own: bool,
    pub name_en: String,
    pub name_zh: Option<String>,
    /// The day a child's SDM's authority ends (the 16th birthday).
    pub authority_ends: Option<Date>,
}

impl App {
    /// Whom a person may act for now, named: themself first, then each person they act for.
    pub async fn acts_for(&self, person: &PersonRow) -> Result<Vec<ActsFor>, AppError> {
        let r = self.represented(person).await?;
        let mut out = Vec::new();
        let own = r.own.into_iter().map(|id| (id, None));
        let sdm = r.as_sdm.into_iter().map(|(id, sdm)| (id, Some(sdm)));
        for (id, sdm) in own.chain(sdm) {
            let reg = self.load_recipient(id).await?;
            let authority_ends = sdm
                .and_then(|s| reg.sdms.iter().find(|x| x.sdm_id == s))
                .and_then(|s| SdmCategory::parse(&s.category))
                .filter(|c| c.for_children())
                .and_then(|_| ehrshare_core::registration::parse_date(&reg.recipient.date_of_birth))
                .map(ehrshare_core::recipient::sixteenth_birthday);
            out.push(ActsFor {
                recipient: id,
                own: sdm.is_none(),
                name_en: reg.recipient.name_en,
                name_zh: reg.recipient.name_zh,
                authority_ends,
            });
        }
        Ok(out)
    }
}

/// The subject's person, for use cases of the patient portal.
pub fn person_of(subject: &Subject) -> Option<&PersonRow> {
    match subject {
        Subject::Person(p) => Some(p),
        _ => None,
    }
}
