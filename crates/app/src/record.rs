//! Depositing and reading records (SPEC 2, 3.8, 3.9): every path asks `core::access::decide`
//! and makes the decision's audit entry durable before any data moves (a deposit's entry
//! commits in the same transaction as the record).
//!
//! Security-sensitive:
//! - A refused read of a record by id answers 404, like a record that does not exist: the
//!   caller must not learn that the id belongs to someone. The audit entry keeps the reason.
//! - Restricted records are filtered out before anything is counted or listed; their domains
//!   stay listed like any other, and a restricted record read by id is the same 404 as a
//!   missing one: nothing hints at a restriction (SPEC 3.7). Only the audit says `restricted`.
//! - Access notices: at most once per provider per Hong Kong day for ordinary access (claimed
//!   in the decision's transaction), every time for restricted-control access; a recipient who
//!   refused access notices gets none.

use std::collections::BTreeMap;

use ehrshare_core::access::{
    Action, Ask, Basis, Decision, DenyReason, Obligations, RecordRef, Restricted, need_to_know,
};
use ehrshare_core::alert::AlertStatus;
use ehrshare_core::audit::{Disclosed, NewAuditEntry, Outcome, SetRef};
use ehrshare_core::domain::Domain;
use ehrshare_core::record::RecordStatus;
use ehrshare_store::alert::AlertRow;
use ehrshare_store::audit::{NoticeClaim, ReadEffects};
use ehrshare_store::record::RecordRow;
use uuid::Uuid;

use crate::access::{Asker, Facts, deny_error};
use crate::auth::Session;
use crate::caller::Caller;
use crate::error::FieldError;
use crate::recipient::recipient_notice;
use crate::{App, AppError};

pub use ehrshare_store::facts::ListedRecord;
pub use ehrshare_store::record::RecordRow as Record;

/// A recipient's record, by domain, as the caller may see it.
#[derive(Debug, Clone)]
pub struct Summary {
    pub recipient: Uuid,
    /// The domains the caller may see (each listed, even when empty or restricted).
    pub domains: BTreeMap<Domain, Vec<ListedRecord>>,
    /// How many records may be shown in all (more than listed when a page was asked for).
    pub total: usize,
}

/// Which record a read is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordTarget<'a> {
    pub id: Uuid,
    /// The FHIR type the caller named: a record of another type is not there.
    pub resource_type: Option<&'a str>,
    /// A version (FHIR's vread); the latest when `None`.
    pub version: Option<i64>,
    /// Whether a record entered in error answers [`AppError::Gone`] (FHIR's 410) to a caller
    /// who may see it, rather than the 404 of the JSON API.
    pub tell_withdrawn: bool,
}

/// What of a record a read answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Want {
    /// The version the target names (the latest when it names none).
    One,
    /// Every version, newest first (FHIR's instance history).
    History,
}

impl RecordTarget<'_> {
    /// The latest version of record `id`, whatever its type.
    pub fn latest(id: Uuid) -> RecordTarget<'static> {
        RecordTarget {
            id,
            resource_type: None,
            version: None,
            tell_withdrawn: false,
        }
    }
}

/// The candidates of a read's disclosure (ADR 0023): of `all`, the records the facts were read
/// with (every current record of the domains fetched), those in `scope`, which must be
/// domains that were fetched whole.
pub(crate) fn candidates(all: &[ListedRecord], scope: &[Domain]) -> Vec<(Uuid, u64)> {
    all.iter()
        .filter(|r| scope.contains(&r.domain))
        .map(|r| (r.id, u64::try_from(r.version).unwrap_or(0)))
        .collect()
}

/// What a read of `released` among `candidates` ([`candidates`]) at record revision `rev`
/// discloses, by reference.
pub(crate) fn disclosed_set(
    rev: u64,
    scope: &[Domain],
    candidates: &[(Uuid, u64)],
    released: &[ListedRecord],
) -> Disclosed {
    let released: Vec<Uuid> = released.iter().map(|r| r.id).collect();
    Disclosed::Set(SetRef::new(rev, scope, candidates, &released))
}

/// The disclosure of one record at a version (`history`: and all before it).
pub(crate) fn disclosed_version(version: i64, history: bool) -> Disclosed {
    Disclosed::Version {
        version: u64::try_from(version).unwrap_or(0),
        history,
    }
}

/// Whether a record falls under a restriction the decision says to hide.
pub(crate) fn hidden(o: &Obligations, r: &ListedRecord) -> bool {
    o.hidden.contains(&Restricted::Record(r.id)) || o.hidden.contains(&Restricted::Domain(r.domain))
}

impl App {
    /// The recipient's record as the caller may see it: the role's domains (narrowed to
    /// `domains` if given), restricted items left out. The decision's audit entry is durable
    /// before anything is returned; a stated `reason` allows access outside an episode (with
    /// an alert).
    pub async fn summary(
        &self,
        session: &Session,
        caller: &Caller,
        recipient: Uuid,
        domains: &[Domain],
        reason: Option<&str>,
    ) -> Result<Summary, AppError> {
        self.read_records(session, caller, recipient, domains, reason, None)
            .await
    }

    /// One domain's records, a page at a time (`page` = (number from 0, size)), oldest
    /// first, with the count of all that may be shown. Audited with the records of the page.
    pub async fn domain_records(
        &self,
        session: &Session,
        caller: &Caller,
        recipient: Uuid,
        domain: Domain,
        (page, per_page): (usize, usize),
        reason: Option<&str>,
    ) -> Result<Summary, AppError> {
        let per_page = per_page.clamp(1, 200);
        self.read_records(
            session,
            caller,
            recipient,
            &[domain],
            reason,
            Some((page.saturating_mul(per_page), per_page)),
        )
        .await
    }

    async fn read_records(
        &self,
        session: &Session,
        caller: &Caller,
        recipient: Uuid,
        domains: &[Domain],
        reason: Option<&str>,
        window: Option<(usize, usize)>,
    ) -> Result<Summary, AppError> {
        crate::limits::check("reason", reason, crate::limits::REASON)?;
        let asker = self.asker(session).await?;
        if asker.system_only {
            return Err(AppError::Forbidden {
                code: "professional-required",
                message: "records are read by a professional (a user token), not by a system alone"
                    .to_owned(),
            });
        }
        // A summary spans every resource type: a token needs `user/*.read`.
        asker.require_scope(ehrshare_core::oauth::Access::Read, "*")?;
        let ask = Ask {
            action: Action::Read,
            domains,
            record: None,
            reason,
        };
        // The records a permit could release come with the facts, in the same statement:
        // none of them leaves unless the decision permits, and then only its domains.
        let prefetch: Vec<String> =
            need_to_know(asker.requester.role, &ask, self.policy().profiles)
                .iter()
                .map(|d| d.code().to_owned())
                .collect();
        let mut facts = self.facts(recipient, &prefetch).await?;
        let decision = self.decide_for(&asker, &facts, &ask);
        let entry = self.decision_entry(caller, "record.summary", recipient, &decision, reason);
        let Decision::Permit { basis, obligations } = &decision else {
            self.audit(entry).await?;
            return Err(deny_error(
                decision
                    .denial()
                    .unwrap_or(ehrshare_core::access::DenyReason::RoleNotPermitted),
            ));
        };
        // What left is named by reference: the permitted domains that were fetched are the
        // scope.
        let scope: Vec<Domain> = obligations
            .domains
            .iter()
            .filter(|d| prefetch.iter().any(|p| p == d.code()))
            .copied()
            .collect();
        let candidates = candidates(&facts.records, &scope);
        let visible: Vec<ListedRecord> = std::mem::take(&mut facts.records)
            .into_iter()
            .filter(|r| obligations.domains.contains(&r.domain))
            .filter(|r| !hidden(obligations, r))
            .collect();
        let total = visible.len();
        let visible: Vec<ListedRecord> = match window {
            Some((skip, take)) => visible.into_iter().skip(skip).take(take).collect(),
            None => visible,
        };
        let mut entry = entry;
        entry.disclosed = Some(disclosed_set(
            facts.record_rev,
            &scope,
            &candidates,
            &visible,
        ));
        self.record_access(entry, &asker, &facts, basis, obligations)
            .await?;
        // Every domain the permit covers is listed, even when empty, a restricted one too (its
        // restricted records were left out above): a missing domain would hint at a
        // restriction (SPEC 3.7).
        let mut by_domain: BTreeMap<Domain, Vec<ListedRecord>> = obligations
            .domains
            .iter()
            .map(|d| (*d, Vec::new()))
            .collect();
        // Each domain's list sized before it is filled: the records come grouped by domain.
        for run in visible.chunk_by(|a, b| a.domain == b.domain) {
            by_domain
                .entry(run[0].domain)
                .or_default()
                .reserve(run.len());
        }
        for r in visible {
            by_domain.entry(r.domain).or_default().push(r);
        }
        Ok(Summary {
            recipient,
            domains: by_domain,
            total,
        })
    }

    /// The depositing provider withdraws a record deposited in error: it stays, with its
    /// versions, but is no longer shown. Only a user of the provider that deposited it, with
    /// the right to deposit in its domain now; anyone else gets 404.
    pub async fn mark_entered_in_error(
        &self,
        session: &Session,
        caller: &Caller,
        id: Uuid,
        reason: &str,
    ) -> Result<RecordRow, AppError> {
        let staged = self
            .stage_withdrawal(
                session,
                caller,
                id,
                reason,
                &mut crate::deposit::Staging::default(),
            )
            .await?;
        Ok(self.commit(vec![staged]).await?.remove(0).record)
    }

    /// The decision on a write into `record` (a withdrawal, or the answer that it exists):
    /// as a deposit in its domain, for its recipient; and the decision's audit entry naming
    /// the record, for the caller to commit.
    pub(crate) async fn decide_write_into(
        &self,
        asker: &Asker,
        caller: &Caller,
        action: &'static str,
        record: &RecordRow,
        reason: Option<&str>,
    ) -> Result<(Decision, NewAuditEntry), AppError> {
        let facts = self.facts(record.recipient_id, &[]).await?;
        let domain = Domain::parse(&record.domain)
            .ok_or_else(|| AppError::Internal("stored record domain unknown".into()))?;
        let domains = [domain];
        let ask = Ask {
            action: Action::Deposit,
            domains: &domains,
            record: None,
            reason: None,
        };
        let decision = self.decide_for(asker, &facts, &ask);
        let mut entry = self.decision_entry(caller, action, record.recipient_id, &decision, reason);
        entry.record_ids = vec![record.id];
        Ok((decision, entry))
    }

    /// [`App::mark_entered_in_error`] but its commit (as [`App::stage_deposit`]).
    pub(crate) async fn stage_withdrawal(
        &self,
        session: &Session,
        caller: &Caller,
        id: Uuid,
        reason: &str,
        staging: &mut crate::deposit::Staging,
    ) -> Result<crate::deposit::Staged, AppError> {
        crate::limits::check("/reason", Some(reason.trim()), crate::limits::REASON)?;
        let now = self.clock().now();
        let asker = self.staged_asker(session, staging).await?;
        let record = self
            .db()
            .record(id)
            .await?
            .filter(|r| r.source_hcp == asker.requester.hcp && r.status == RecordStatus::Current)
            .ok_or(AppError::NotFound)?;
        asker.require_scope(ehrshare_core::oauth::Access::Delete, &record.resource_type)?;
        let reason = reason.trim();
        if reason.is_empty() {
            return Err(AppError::Invalid {
                code: "reason-required",
                message: "say why the record was entered in error".to_owned(),
                fields: vec![FieldError::new("/reason", "required", "required")],
            });
        }
        let (decision, entry) = self
            .decide_write_into(
                &asker,
                caller,
                "record.entered-in-error",
                &record,
                Some(reason),
            )
            .await?;
        if let Decision::Deny { reason } = decision {
            self.audit(entry).await?;
            return Err(deny_error(reason));
        }
        let updated = RecordRow {
            version: record.version + 1,
            status: RecordStatus::EnteredInError,
            updated_at: now,
            deposited_by: asker.account,
            ..record
        };
        Ok(crate::deposit::Staged {
            entry,
            writes: vec![crate::deposit::Write::Record(updated.clone())],
            answer: crate::deposit::Deposited {
                record: updated,
                created: true,
            },
        })
    }

    /// One record by id. Any refusal is audited with its reason and answered 404.
    pub async fn read_record(
        &self,
        session: &Session,
        caller: &Caller,
        id: Uuid,
        reason: Option<&str>,
    ) -> Result<RecordRow, AppError> {
        self.read_one(session, caller, RecordTarget::latest(id), Want::One, reason)
            .await
            .map(|(record, _)| record)
    }

    /// Every version of one record, newest first, through the same decision and audit as a
    /// read of it (FHIR's instance `_history`).
    pub async fn record_history(
        &self,
        session: &Session,
        caller: &Caller,
        target: RecordTarget<'_>,
    ) -> Result<Vec<RecordRow>, AppError> {
        let (_, versions) = self
            .read_one(session, caller, target, Want::History, None)
            .await?;
        Ok(versions)
    }

    /// One record (or one version of it) as FHIR names it: `resource_type/id`, optionally
    /// `_history/version`. A record of another type is the same 404 as a missing one; any
    /// refusal is audited with its reason and answered 404.
    pub async fn read_record_as(
        &self,
        session: &Session,
        caller: &Caller,
        target: RecordTarget<'_>,
    ) -> Result<RecordRow, AppError> {
        self.read_one(session, caller, target, Want::One, None)
            .await
            .map(|(record, _)| record)
    }

    async fn read_one(
        &self,
        session: &Session,
        caller: &Caller,
        target: RecordTarget<'_>,
        want: Want,
        reason: Option<&str>,
    ) -> Result<(RecordRow, Vec<RecordRow>), AppError> {
        crate::limits::check("reason", reason, crate::limits::REASON)?;
        let id = target.id;
        let asker = self.asker(session).await?;
        let found = self
            .db()
            .record(id)
            .await?
            .filter(|r| target.resource_type.is_none_or(|t| r.resource_type == t));
        let Some(record) = found else {
            let mut entry = caller.entry(self, "record.read", Outcome::Denied);
            entry.record_ids = vec![id];
            entry.denial_reason = Some("not-found".to_owned());
            self.audit(entry).await?;
            return Err(AppError::NotFound);
        };
        let facts = self.facts(record.recipient_id, &[]).await?;
        let domain = Domain::parse(&record.domain)
            .ok_or_else(|| AppError::Internal("stored record domain unknown".into()))?;
        let ask = Ask {
            action: Action::Read,
            domains: &[],
            record: Some(RecordRef { id, domain }),
            reason,
        };
        let decision = if asker.system_only
            || !asker.scope_allows(ehrshare_core::oauth::Access::Read, &record.resource_type)
        {
            Decision::Deny {
                reason: ehrshare_core::access::DenyReason::RoleNotPermitted,
            }
        } else {
            self.decide_for(&asker, &facts, &ask)
        };
        let mut entry = self.decision_entry(
            caller,
            "record.read",
            record.recipient_id,
            &decision,
            reason,
        );
        entry.record_ids = vec![id];
        let Decision::Permit { basis, obligations } = &decision else {
            self.audit(entry).await?;
            return Err(AppError::NotFound);
        };
        // A withdrawn record's history is still told (every version stays); nothing else of it.
        if record.status != RecordStatus::Current && want != Want::History {
            self.audit(entry).await?;
            return Err(if target.tell_withdrawn {
                AppError::Gone
            } else {
                AppError::NotFound
            });
        }
        // An earlier version is loaded before the permit is committed, so that no entry says
        // a version was read that does not exist.
        let record = match target.version {
            Some(v) if v != record.version => match self.db().record_version(id, v).await? {
                Some(version) => version,
                None => {
                    entry.outcome = Outcome::Denied;
                    entry.denial_reason = Some("not-found".to_owned());
                    self.audit(entry).await?;
                    return Err(AppError::NotFound);
                }
            },
            _ => record,
        };
        let history = match want {
            Want::One => Vec::new(),
            Want::History => self.db().record_versions(id).await?,
        };
        entry.disclosed = Some(match want {
            Want::One => disclosed_version(record.version, false),
            Want::History => disclosed_version(
                history
                    .first()
                    .map_or(record.version, |latest| latest.version),
                true,
            ),
        });
        self.record_access(entry, &asker, &facts, basis, obligations)
            .await
            .map_err(|e| match e {
                AppError::Forbidden { .. } => AppError::NotFound,
                other => other,
            })?;
        Ok((record, history))
    }

    /// Makes a permitted access's entry durable with what it obliges: the alert for access
    /// without an episode, and the recipient's notice (once a day per provider, or every time
    /// a restricted item was unlocked).
    ///
    /// The consent the permit rests on is checked again inside the audit writer's transaction:
    /// if a revocation committed after the facts were read, this access is not committed; it
    /// is audited as refused instead (`consent-required`), so no permitted read is ever logged
    /// after the revocation that should have stopped it.
    pub(crate) async fn record_access(
        &self,
        entry: NewAuditEntry,
        asker: &Asker,
        facts: &Facts,
        basis: &Basis,
        obligations: &Obligations,
    ) -> Result<(), AppError> {
        let now = self.clock().now();
        let r = &facts.registration.recipient;
        let hk = ehrshare_core::clock::in_hong_kong(now);
        let day = format!(
            "{:04}-{:02}-{:02}",
            hk.year(),
            u8::from(hk.month()),
            hk.day()
        );
        let time_text = format!("{day} {:02}:{:02}", hk.hour(), hk.minute());
        let params = BTreeMap::from([
            (
                "provider".to_owned(),
                format!("{} {}", asker.hcp_names.1, asker.hcp_names.0),
            ),
            ("time".to_owned(), time_text),
        ]);
        let restricted_used = !obligations.unlocked.is_empty();
        let wants_notices = ehrshare_core::notification::access_notice_due(
            r.refuses_access_notices,
            restricted_used,
        );
        // Built only when one is due (the template is rendered to check it); to the SDM who
        // acts for the recipient now, if any, by the SDM's own channel.
        let notice = if wants_notices {
            let sdm = crate::recipient::messaged_sdm(&facts.registration, now)?;
            self.messages(vec![recipient_notice(
                r,
                sdm,
                "access-notice",
                ehrshare_core::notification::Carries::News,
                params,
            )])?
        } else {
            Vec::new()
        };
        let alert = obligations.alert_no_episode.then(|| AlertRow {
            id: Uuid::now_v7(),
            rule: "access-without-episode".to_owned(),
            hcp_id: Some(asker.requester.hcp),
            account_id: asker.account,
            recipient_id: Some(r.id),
            detail: entry.reason.clone(),
            status: AlertStatus::Open,
            note: None,
            audit_seq: None,
            reported_by: None,
            created_at: now,
        });
        let effects = ReadEffects {
            consent: basis.consent,
            notice: wants_notices.then_some(NoticeClaim {
                recipient: r.id,
                hcp: asker.requester.hcp,
                day,
                always: restricted_used,
                messages: notice,
            }),
            alert,
        };
        let denial = {
            let mut d = entry.clone();
            d.outcome = Outcome::Denied;
            d.denial_reason = Some(DenyReason::ConsentRequired.code().to_owned());
            d.consent_id = None;
            d.episode_id = None;
            d.domains = Vec::new();
            d.record_ids = Vec::new();
            d.disclosed = None;
            d
        };
        match self.audit_read(entry, effects).await? {
            Some(_) => Ok(()),
            None => {
                self.audit(denial).await?;
                Err(deny_error(DenyReason::ConsentRequired))
            }
        }
    }
}
