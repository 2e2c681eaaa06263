//! Restricted control (SPEC 3.7): the recipient (or an SDM) puts records or whole domains
//! under restricted control; a professional who needs them states a reason and obtains the
//! recipient's fresh authorisation, a one-time code sent to the recipient (or the SDM), which
//! unlocks the restricted items for that provider and episode for four hours. Until then they
//! are not listed, not counted, not hinted at: the decision hides them, and an unlock request
//! looks the same whether or not anything is restricted. A request's code takes five wrong
//! tries; across requests, wrong codes are limited per recipient and per provider as access
//! keys are (`attempt::Typed`), so asking for fresh codes does not widen the guessing.

use std::collections::BTreeMap;

use ehrshare_core::access::{Action, Ask, Decision};
use ehrshare_core::audit::Outcome;
use ehrshare_core::domain::Domain;
use ehrshare_core::notification::Carries;
use ehrshare_store::restriction::RestrictionRow;
use ehrshare_store::restriction::UnlockChallengeRow;
use ehrshare_store::{Conn, change};
use time::Duration;
use uuid::Uuid;

use crate::attempt::Typed;
use crate::auth::Session;
use crate::caller::Caller;
use crate::error::FieldError;
use crate::recipient::recipient_notice;
use crate::secret::{new_code, token_hash};
use crate::{App, AppError};

/// How long an unlock lasts.
pub const UNLOCK_FOR: Duration = Duration::hours(4);
/// How long an unlock code lives.
const CODE_FOR: Duration = Duration::minutes(10);
/// Most wrong codes per request.
const MAX_ATTEMPTS: i64 = 5;

/// A stated reason for an unlock: required, at most 500 characters.
fn unlock_reason(reason: &str) -> Result<&str, AppError> {
    let reason = reason.trim();
    if reason.is_empty() || reason.chars().count() > 500 {
        return Err(AppError::Invalid {
            code: "reason-required",
            message: "state why the restricted items are needed (up to 500 characters)".to_owned(),
            fields: vec![FieldError {
                field: "/reason".to_owned(),
                code: "required",
                message: "required".to_owned(),
            }],
        });
    }
    Ok(reason)
}

fn wrong_code() -> AppError {
    AppError::Invalid {
        code: "wrong-code",
        message: "the code is not right, or has expired or been used".to_owned(),
        fields: vec![FieldError {
            field: "/code".to_owned(),
            code: "wrong-code",
            message: "the code is not right, or has expired or been used".to_owned(),
        }],
    }
}

impl App {
    /// The recipient (or an SDM) restricts a domain or one record.
    pub async fn restrict(
        &self,
        session: &Session,
        caller: &Caller,
        recipient: Uuid,
        domain: Option<&str>,
        record: Option<Uuid>,
    ) -> Result<RestrictionRow, AppError> {
        let now = self.clock().now();
        let sdm = self.acting_for(session, recipient).await?;
        let (domain, record) = match (domain.map(Domain::parse), record) {
            (Some(Some(d)), None) => (Some(d.code().to_owned()), None),
            (None, Some(id)) => {
                let r = self.db().record(id).await?;
                if r.is_none_or(|r| r.recipient_id != recipient) {
                    return Err(AppError::NotFound);
                }
                (None, Some(id))
            }
            _ => {
                return Err(AppError::Invalid {
                    code: "invalid-restriction",
                    message: "name one domain or one record".to_owned(),
                    fields: Vec::new(),
                });
            }
        };
        let row = RestrictionRow {
            id: Uuid::now_v7(),
            recipient_id: recipient,
            domain,
            record_id: record,
            created_at: now,
            unlocks: Vec::new(),
        };
        let mut entry = caller.entry(self, "restriction.add", Outcome::Allowed);
        entry.recipient = Some(recipient);
        entry.sdm = sdm;
        entry.record_ids = vec![row.id];
        let stored = row.clone();
        let insert = change(move |conn: Conn<'_>| {
            Box::pin(
                async move { ehrshare_store::restriction::insert_restriction(conn, &stored).await },
            )
        });
        self.audit_with(entry, insert).await?;
        Ok(row)
    }

    /// The recipient (or an SDM) lifts a restriction.
    pub async fn lift_restriction(
        &self,
        session: &Session,
        caller: &Caller,
        recipient: Uuid,
        id: Uuid,
    ) -> Result<(), AppError> {
        let now = self.clock().now();
        let sdm = self.acting_for(session, recipient).await?;
        let facts = self
            .db()
            .recipient_facts(recipient, &[])
            .await?
            .ok_or(AppError::NotFound)?;
        if !facts.restrictions.iter().any(|r| r.id == id) {
            return Err(AppError::NotFound);
        }
        let mut entry = caller.entry(self, "restriction.lift", Outcome::Allowed);
        entry.recipient = Some(recipient);
        entry.sdm = sdm;
        entry.record_ids = vec![id];
        let lift = change(move |conn: Conn<'_>| {
            Box::pin(async move {
                ehrshare_store::restriction::lift_restriction(conn, recipient, id, now)
                    .await
                    .map(|_| ())
            })
        });
        self.audit_with(entry, lift).await?;
        Ok(())
    }

    /// A professional asks to see the recipient's restricted items, stating a reason: the
    /// access decision must permit reading under a care episode; a one-time code goes to the
    /// recipient (or their SDM). Returns the request to answer with the code.
    pub async fn request_unlock(
        &self,
        session: &Session,
        caller: &Caller,
        recipient: Uuid,
        reason: &str,
    ) -> Result<Uuid, AppError> {
        let now = self.clock().now();
        let reason = unlock_reason(reason)?;
        let asker = self.asker(session).await?;
        let account = asker.account.ok_or(AppError::NotFound)?;
        let facts = self.facts(recipient, &[]).await?;
        let mut entry = caller.entry(self, "restriction.unlock-request", Outcome::Allowed);
        entry.recipient = Some(recipient);
        entry.reason = Some(reason.to_owned());
        let episode = self.unlock_episode(&asker, &facts, entry.clone()).await?;
        entry.episode_id = Some(episode);
        let code = new_code()?;
        let challenge = UnlockChallengeRow {
            id: Uuid::now_v7(),
            recipient_id: recipient,
            hcp_id: asker.requester.hcp,
            account_id: account,
            episode_id: episode,
            restriction_ids: facts.restrictions.iter().map(|r| r.id).collect(),
            reason: reason.to_owned(),
            code_hash: token_hash(&code),
            attempts: 0,
            created_at: now,
            expires_at: now + CODE_FOR,
            used_at: None,
        };
        let reg = &facts.registration;
        let notice = recipient_notice(
            &reg.recipient,
            crate::recipient::messaged_sdm(reg, now)?,
            "one-time-password",
            Carries::OneTimeCode,
            BTreeMap::from([
                ("code".to_owned(), code),
                ("minutes".to_owned(), CODE_FOR.whole_minutes().to_string()),
            ]),
        );
        let id = challenge.id;
        let insert = change(move |conn: Conn<'_>| {
            Box::pin(async move {
                ehrshare_store::restriction::insert_unlock_challenge(conn, &challenge).await
            })
        });
        self.audit_and_notify(entry, Some(insert), vec![notice])
            .await?;
        Ok(id)
    }

    /// Unlocks with the recipient's (or an SDM's) smart ID card read at the provider, instead
    /// of a code: the same reason and decision as [`App::request_unlock`]; the assertion must
    /// pass [`App::check_card`], name the recipient's or an SDM's HKID, and be claimed once.
    /// Unlocked for this provider and episode for four hours.
    pub async fn unlock_by_card(
        &self,
        session: &Session,
        caller: &Caller,
        recipient: Uuid,
        reason: &str,
        assertion: ehrshare_core::consent::CardAssertion,
        signature_b64: &str,
    ) -> Result<(), AppError> {
        const ACTION: &str = "restriction.unlock-card";
        let now = self.clock().now();
        let reason = unlock_reason(reason)?;
        let asker = self.asker(session).await?;
        let account = asker.account.ok_or(AppError::NotFound)?;
        self.check_card(
            asker.requester.hcp,
            caller,
            ACTION,
            &assertion,
            signature_b64,
        )
        .await?;
        let facts = self.facts(recipient, &[]).await?;
        let mut entry = caller.entry(self, "restriction.unlock", Outcome::Allowed);
        entry.recipient = Some(recipient);
        entry.reason = Some(reason.to_owned());
        let episode = self.unlock_episode(&asker, &facts, entry.clone()).await?;
        let reg = &facts.registration;
        let card = ehrshare_core::identity::Document::parse(
            ehrshare_core::identity::DocumentType::Hkid,
            "HK",
            &assertion.hkid,
        )
        .ok();
        let holds = |kind: &str, issuer: &str, number: &str| {
            card.as_ref()
                .is_some_and(|c| c.kind.code() == kind && c.issuer == issuer && c.number == number)
        };
        let r = &reg.recipient;
        // The recipient's own card, or the card of an SDM whose authority has not ended.
        let mut theirs = holds(&r.doc_type, &r.doc_issuer, &r.doc_number);
        for s in &reg.sdms {
            theirs = theirs
                || (holds(&s.doc_type, &s.doc_issuer, &s.doc_number)
                    && crate::recipient::sdm_may_act_now(reg, s, now)?);
        }
        if !theirs {
            return self
                .refuse_card(
                    caller,
                    ACTION,
                    Some(recipient),
                    &assertion,
                    "not-the-recipients-card",
                )
                .await;
        }
        self.claim_card(caller, ACTION, recipient, &assertion)
            .await?;
        let restrictions: Vec<Uuid> = facts.restrictions.iter().map(|r| r.id).collect();
        entry.episode_id = Some(episode);
        entry.record_ids = restrictions.clone();
        let hcp = asker.requester.hcp;
        let reason = reason.to_owned();
        let unlock = change(move |conn: Conn<'_>| {
            Box::pin(async move {
                ehrshare_store::restriction::insert_unlocks(
                    conn,
                    &ehrshare_store::restriction::UnlockGrant {
                        restriction_ids: &restrictions,
                        recipient,
                        hcp,
                        episode,
                        account,
                        reason: &reason,
                        until: now + UNLOCK_FOR,
                        at: now,
                    },
                )
                .await
            })
        });
        self.audit_with(entry, unlock).await?;
        Ok(())
    }

    /// The care episode an unlock is for: the access decision must permit reading under one
    /// (a stated reason is not enough here). A refusal is audited as `entry`, denied.
    async fn unlock_episode(
        &self,
        asker: &crate::access::Asker,
        facts: &crate::access::Facts,
        mut entry: ehrshare_core::audit::NewAuditEntry,
    ) -> Result<Uuid, AppError> {
        let ask = Ask {
            action: Action::Read,
            domains: &[],
            record: None,
            reason: None,
        };
        let decision = self.decide_for(asker, facts, &ask);
        if let Decision::Permit {
            basis:
                ehrshare_core::access::Basis {
                    episode: Some(episode),
                    ..
                },
            ..
        } = decision
        {
            return Ok(episode);
        }
        let denial = decision
            .denial()
            .unwrap_or(ehrshare_core::access::DenyReason::NoCareRelationship);
        entry.outcome = Outcome::Denied;
        entry.denial_reason = Some(denial.code().to_owned());
        self.audit(entry).await?;
        Err(AppError::Forbidden {
            code: denial.code(),
            message: "unlocking needs consent and a care episode at this provider".to_owned(),
        })
    }

    /// The professional enters the code the recipient gave them: the restricted items are
    /// unlocked for this provider and episode for four hours. A code works once.
    pub async fn confirm_unlock(
        &self,
        session: &Session,
        caller: &Caller,
        recipient: Uuid,
        challenge: Uuid,
        code: &str,
    ) -> Result<(), AppError> {
        let now = self.clock().now();
        let asker = self.asker(session).await?;
        let c = self
            .db()
            .unlock_challenge(challenge)
            .await?
            .filter(|c| c.recipient_id == recipient && Some(c.account_id) == asker.account)
            .ok_or(AppError::NotFound)?;
        let attempt = self
            .attempt(Typed::UnlockCode, caller, recipient, asker.requester.hcp)
            .await?;
        let mut entry = caller.entry(self, Typed::UnlockCode.action(), Outcome::Allowed);
        entry.recipient = Some(recipient);
        entry.episode_id = Some(c.episode_id);
        entry.reason = Some(c.reason.clone());
        entry.record_ids = c.restriction_ids.clone();
        let live = c.used_at.is_none() && now < c.expires_at && c.attempts < MAX_ATTEMPTS;
        let matches: bool = subtle::ConstantTimeEq::ct_eq(
            token_hash(code.trim()).as_bytes(),
            c.code_hash.as_bytes(),
        )
        .into();
        if attempt.locked || !live || !matches {
            let (registration, _) = self
                .db()
                .recipient(recipient)
                .await?
                .ok_or(AppError::NotFound)?;
            let mut failed = self.attempt_failed(attempt, &registration, caller).await?;
            entry.outcome = Outcome::Denied;
            entry.denial_reason = Some(
                if failed.was_locked {
                    "locked"
                } else if live {
                    "wrong-code"
                } else {
                    "code-expired-or-used"
                }
                .to_owned(),
            );
            let (error, notices) = failed.error(wrong_code());
            let id = c.id;
            let count = change(move |mut conn: Conn<'_>| {
                Box::pin(async move {
                    ehrshare_store::restriction::count_unlock_attempt(conn.reborrow(), id).await?;
                    failed.write(conn).await
                })
            });
            self.audit_and_notify(entry, Some(count), notices).await?;
            return Err(error);
        }
        let clear = attempt.clear_on_success();
        let used = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
        let used_in = used.clone();
        let unlock = change(move |mut conn: Conn<'_>| {
            Box::pin(async move {
                if ehrshare_store::restriction::use_unlock_challenge(
                    conn.reborrow(),
                    &c,
                    now + UNLOCK_FOR,
                    now,
                )
                .await?
                {
                    ehrshare_store::account::clear_failures(conn, &clear).await
                } else {
                    used_in.store(false, std::sync::atomic::Ordering::SeqCst);
                    Err(ehrshare_store::StoreError::Stale(
                        ehrshare_store::Stale::CodeUsed,
                    ))
                }
            })
        });
        match self.audit_with(entry, unlock).await {
            Ok(_) => Ok(()),
            Err(_) if !used.load(std::sync::atomic::Ordering::SeqCst) => Err(wrong_code()),
            Err(e) => Err(e),
        }
    }
}
