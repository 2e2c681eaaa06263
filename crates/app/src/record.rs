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
    Action, Ask, Basis, Decision, DenyReason, Obligations, RecipientFacts, RecordRef, Restricted,
    decide, need_to_know,
};
use ehrshare_core::audit::{NewAuditEntry, Outcome};
use ehrshare_core::domain::Domain;
use ehrshare_store::alert::AlertRow;
use ehrshare_store::audit::{NoticeClaim, ReadEffects};
use ehrshare_store::record::RecordRow;
use ehrshare_store::{Conn, change};
use uuid::Uuid;

use crate::auth::Session;
use crate::caller::Caller;
use crate::error::FieldError;
use crate::recipient::recipient_notice;
use crate::sharing::{Asker, Facts};
use crate::{App, AppError};

pub use ehrshare_store::facts::ListedRecord;
pub use ehrshare_store::record::RecordRow as Record;

/// What a deposit did.
#[derive(Debug, Clone)]
pub struct Deposited {
    pub record: RecordRow,
    /// False when the same resource had been deposited before (nothing changed).
    pub created: bool,
}

/// A recipient's record, by domain, as the caller may see it.
#[derive(Debug, Clone)]
pub struct Summary {
    pub recipient: Uuid,
    /// The domains the caller may see (each listed, even when empty or restricted).
    pub domains: BTreeMap<Domain, Vec<ListedRecord>>,
    /// How many records may be shown in all (more than listed when a page was asked for).
    pub total: usize,
}

/// The 403 a denial reason answers with.
pub(crate) fn deny_error(reason: ehrshare_core::access::DenyReason) -> AppError {
    AppError::Forbidden {
        code: reason.code(),
        message: match reason {
            ehrshare_core::access::DenyReason::ConsentRequired => {
                "the recipient has not given this provider a sharing consent"
            }
            ehrshare_core::access::DenyReason::ConsentExpired => {
                "the recipient's sharing consent with this provider has expired"
            }
            ehrshare_core::access::DenyReason::NoCareRelationship => {
                "the recipient is not under this provider's care: open a care episode, or state a reason"
            }
            ehrshare_core::access::DenyReason::RoleNotPermitted => {
                "this role may not see that part of the record"
            }
            ehrshare_core::access::DenyReason::AccountInactive => "this account is not active",
            ehrshare_core::access::DenyReason::ProviderInactive => "this provider is not active",
            ehrshare_core::access::DenyReason::RecipientNotRegistered => {
                "the recipient's registration is not active"
            }
            ehrshare_core::access::DenyReason::Restricted => "restricted",
        }
        .to_owned(),
    }
}

/// Every reference to a patient in a deposited `resource` that does not name `recipient`,
/// and for a `Patient` resource, its identity document if it is not the recipient's (issue 23,
/// item 2; the accepted forms are in `ehrshare_fhir::subject`).
/// Compiles the R4 validators of the shared types now (about 50 ms each), so that no
/// deposit waits for one; the server calls it at start, off the async runtime.
pub fn warm_validation() {
    ehrshare_fhir::r4::Definitions::shipped().warm(&ehrshare_fhir::resource::SHARED_TYPES);
}

/// A resource's problems as the `invalid-resource` answer, each with its path.
fn invalid_resource(problems: Vec<ehrshare_fhir::resource::Problem>) -> AppError {
    AppError::Invalid {
        code: "invalid-resource",
        message: "the resource is not valid FHIR R4 for this system".to_owned(),
        fields: problems
            .into_iter()
            .map(|p| FieldError {
                field: p.path,
                code: "invalid-resource",
                message: p.message,
            })
            .collect(),
    }
}

fn subject_problems(
    resource: &serde_json::Value,
    resource_type: &str,
    recipient: &ehrshare_store::recipient::RecipientRow,
) -> Vec<FieldError> {
    use ehrshare_fhir::subject::{Target, document_system, patient_references};
    let system = document_system(&recipient.doc_type, &recipient.doc_issuer);
    let our_number = |value: &str| {
        ehrshare_core::identity::DocumentType::parse(&recipient.doc_type)
            .and_then(|kind| {
                ehrshare_core::identity::Document::parse(kind, &recipient.doc_issuer, value).ok()
            })
            .is_some_and(|d| d.number == recipient.doc_number)
    };
    let mut problems: Vec<FieldError> = patient_references(resource)
        .into_iter()
        .filter(|r| match &r.target {
            Target::Id(id) => *id != recipient.id.to_string(),
            Target::Identifier { system: s, value } => *s != system || !our_number(value),
            Target::Other(_) => true,
        })
        .take(ehrshare_fhir::r4::MAX_PROBLEMS)
        .map(|r| FieldError {
            field: r.path,
            code: "subject-mismatch",
            message: "refers to someone other than the recipient: use the recipient's id or identity document".to_owned(),
        })
        .collect();
    if resource_type == "Patient" {
        let identifiers = resource
            .get("identifier")
            .and_then(serde_json::Value::as_array)
            .cloned()
            .unwrap_or_default();
        let ours = identifiers.iter().any(|i| {
            i.get("system").and_then(serde_json::Value::as_str) == Some(system.as_str())
                && i.get("value")
                    .and_then(serde_json::Value::as_str)
                    .is_some_and(our_number)
        });
        if !ours {
            problems.push(FieldError {
                field: "Patient.identifier".to_owned(),
                code: "subject-mismatch",
                message: format!("a Patient carries the recipient's identity document ({system})"),
            });
        }
    }
    problems
}

impl App {
    /// Asks the one access decision, on the facts loaded for this request, now.
    pub(crate) fn decide_for(&self, asker: &Asker, facts: &Facts, ask: &Ask<'_>) -> Decision {
        let registered = facts.registration.recipient.status == "active";
        decide(
            &asker.requester,
            &RecipientFacts {
                registered,
                consents: &facts.consents,
                episodes: &facts.episodes,
                restrictions: &facts.restrictions,
            },
            ask,
            &self.policy(),
            self.clock().now(),
        )
    }

    /// The entry for a decision: outcome, reason, basis.
    fn decision_entry(
        &self,
        caller: &Caller,
        action: &'static str,
        recipient: Uuid,
        decision: &Decision,
        reason: Option<&str>,
    ) -> NewAuditEntry {
        let mut entry = caller.entry(self, action, Outcome::Allowed);
        entry.recipient = Some(recipient);
        entry.reason = reason.map(str::to_owned).filter(|r| !r.trim().is_empty());
        match decision {
            Decision::Deny { reason } => {
                entry.outcome = Outcome::Denied;
                entry.denial_reason = Some(reason.code().to_owned());
            }
            Decision::Permit { basis, obligations } => {
                entry.consent_id = basis.consent;
                entry.episode_id = basis.episode;
                entry.domains = obligations
                    .domains
                    .iter()
                    .map(|d| d.code().to_owned())
                    .collect();
            }
        }
        entry
    }

    /// Deposits a FHIR resource into a recipient's record. The same resource (provider and
    /// source id) twice is one record; changed content under the same source id is a new
    /// version (an amendment).
    pub async fn deposit(
        &self,
        session: &Session,
        caller: &Caller,
        recipient: Uuid,
        resource: &serde_json::Value,
    ) -> Result<Deposited, AppError> {
        self.deposit_keyed(session, caller, recipient, resource, None)
            .await
    }

    /// Reads a deposit's JSON text as it was written (`ehrshare_fhir::json`): a key twice in
    /// one object is refused with its path, numbers keep their text.
    pub fn read_resource(text: &[u8]) -> Result<serde_json::Value, AppError> {
        ehrshare_fhir::json::parse(text).map_err(invalid_resource)
    }

    /// [`App::deposit`], with a create that has no `id` given one by the server, and a
    /// client's idempotency key (issue 23, item 5): the same key with the same content
    /// answers as the first time and creates nothing; with other content it is a conflict.
    pub async fn deposit_keyed(
        &self,
        session: &Session,
        caller: &Caller,
        recipient: Uuid,
        resource: &serde_json::Value,
        idempotency_key: Option<&str>,
    ) -> Result<Deposited, AppError> {
        let now = self.clock().now();
        if let Some(key) = idempotency_key
            && (!(1..=crate::limits::IDEMPOTENCY_KEY).contains(&key.len())
                || !key.bytes().all(|b| b.is_ascii_graphic()))
        {
            return Err(AppError::Malformed {
                code: "invalid-idempotency-key",
                message: format!(
                    "Idempotency-Key: 1 to {} visible ASCII characters",
                    crate::limits::IDEMPOTENCY_KEY
                ),
                fields: vec![FieldError {
                    field: "Idempotency-Key".to_owned(),
                    code: "invalid-value",
                    message: "1 to 200 visible ASCII characters".to_owned(),
                }],
            });
        }
        // What a retry under the same key must repeat: the recipient and the content as sent.
        let request_hash = idempotency_key.map(|_| {
            use sha2::Digest;
            let mut h = sha2::Sha256::new();
            h.update(recipient.as_bytes());
            h.update(
                serde_json::to_string(resource)
                    .unwrap_or_default()
                    .as_bytes(),
            );
            h.finalize()
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        });
        // A create without an id gets one (FHIR: the server assigns ids); a retry under the
        // same idempotency key is answered below before this id is used.
        let assigned = resource.get("id").is_none() && resource.is_object();
        let mut owned;
        let resource = if assigned {
            owned = resource.clone();
            owned["id"] = serde_json::Value::String(Uuid::now_v7().to_string());
            &owned
        } else {
            resource
        };
        let asker = self.asker(session).await?;
        // Off the async workers: a type seen for the first time compiles its validator
        // (about 50 ms, ADR 0011), and a large resource takes its time.
        let checked = {
            let (resource, terms) = (resource.clone(), self.settings().terminology.clone());
            tokio::task::spawn_blocking(move || ehrshare_fhir::resource::check(&resource, &terms))
                .await
                .map_err(|e| AppError::Internal(Box::new(e)))?
                .map_err(invalid_resource)?
        };
        asker.require_scope(ehrshare_core::oauth::Access::Write, &checked.resource_type)?;
        let facts = self.facts(recipient, &[]).await?;
        let domains = [checked.domain];
        let ask = Ask {
            action: Action::Deposit,
            domains: &domains,
            record: None,
            reason: None,
        };
        let decision = self.decide_for(&asker, &facts, &ask);
        let mut entry = self.decision_entry(caller, "record.deposit", recipient, &decision, None);
        if let Decision::Deny { reason } = decision {
            self.record(entry).await?;
            return Err(deny_error(reason));
        }
        let mismatched = subject_problems(
            resource,
            &checked.resource_type,
            &facts.registration.recipient,
        );
        if !mismatched.is_empty() {
            // About someone else, or about no one we know: refused, nothing stored, audited.
            entry.outcome = Outcome::Failed;
            entry.reason = Some("subject-mismatch".to_owned());
            self.record(entry).await?;
            return Err(AppError::Invalid {
                code: "subject-mismatch",
                message: "the resource is not about the recipient it is deposited for".to_owned(),
                fields: mismatched,
            });
        }
        let hcp = asker.requester.hcp;
        if let Some(key) = idempotency_key
            && let Some(first) = self.db().deposit_key(hcp, key).await?
        {
            if Some(&first.request_hash) != request_hash.as_ref() {
                entry.outcome = Outcome::Failed;
                entry.reason = Some("idempotency-key-reused".to_owned());
                self.record(entry).await?;
                return Err(AppError::Conflict {
                    code: "idempotency-key-reused",
                    message: "this Idempotency-Key came with other content before".to_owned(),
                });
            }
            let record = self.db().record(first.record_id).await?.ok_or_else(|| {
                AppError::Internal("the record of an idempotency key is gone".into())
            })?;
            entry.record_ids = vec![record.id];
            entry.reason = Some("retried: idempotency key".to_owned());
            self.record(entry).await?;
            return Ok(Deposited {
                record,
                created: first.created,
            });
        }
        // A FHIR id is unique only within its resource type: the key is both (issue 23).
        let source_key = format!("{}/{}", checked.resource_type, checked.source_id);
        let existing = self.db().record_by_source(hcp, &source_key).await?;
        if let Some(r) = &existing {
            if r.recipient_id != recipient {
                entry.outcome = Outcome::Denied;
                entry.denial_reason = Some("source-id-of-another-recipient".to_owned());
                self.record(entry).await?;
                return Err(AppError::Conflict {
                    code: "source-id-taken",
                    message: "this provider used that resource id for another recipient".to_owned(),
                });
            }
            if r.body == checked.canonical {
                entry.record_ids = vec![r.id];
                entry.reason = Some("unchanged: already deposited".to_owned());
                match idempotency_key.zip(request_hash) {
                    // The key is kept with this answer too, so that other content under it
                    // later is the conflict it would have been.
                    Some((key, request_hash)) => {
                        let k = ehrshare_store::record::DepositKeyRow {
                            source_hcp: hcp,
                            key: key.to_owned(),
                            request_hash,
                            record_id: r.id,
                            created: false,
                            created_at: now,
                        };
                        let write = change(move |conn: Conn<'_>| {
                            Box::pin(async move {
                                ehrshare_store::record::insert_deposit_key(conn, &k).await?;
                                Ok(())
                            })
                        });
                        self.record_with(entry, write).await?;
                    }
                    None => {
                        self.record(entry).await?;
                    }
                }
                return Ok(Deposited {
                    record: r.clone(),
                    created: false,
                });
            }
        }
        let record = match existing {
            Some(r) => RecordRow {
                version: r.version + 1,
                body: checked.canonical,
                domain: checked.domain.code().to_owned(),
                updated_at: now,
                deposited_by: asker.account,
                ..r
            },
            None => RecordRow {
                id: Uuid::now_v7(),
                recipient_id: recipient,
                domain: checked.domain.code().to_owned(),
                resource_type: checked.resource_type,
                source_hcp: hcp,
                source_id: source_key,
                version: 1,
                status: "current".to_owned(),
                body: checked.canonical,
                deposited_by: asker.account,
                created_at: now,
                updated_at: now,
            },
        };
        entry.record_ids = vec![record.id];
        if record.version > 1 {
            entry.reason = Some(format!("amended: version {}", record.version));
        }
        let stored = record.clone();
        let keyed = idempotency_key
            .zip(request_hash)
            .map(
                |(key, request_hash)| ehrshare_store::record::DepositKeyRow {
                    source_hcp: hcp,
                    key: key.to_owned(),
                    request_hash,
                    record_id: record.id,
                    created: true,
                    created_at: now,
                },
            );
        let write = change(move |mut conn: Conn<'_>| {
            Box::pin(async move {
                let mut done = if stored.version == 1 {
                    ehrshare_store::record::insert_record(conn.reborrow(), &stored).await?
                } else {
                    ehrshare_store::record::update_record(conn.reborrow(), &stored).await?
                };
                if done && let Some(k) = &keyed {
                    // Two first tries with one key: the second finds it taken and is
                    // rolled back whole; its retry gets the first answer.
                    done = ehrshare_store::record::insert_deposit_key(conn, k).await?;
                }
                if done {
                    Ok(())
                } else {
                    Err(ehrshare_store::StoreError::Corrupt(
                        "record-changed-meanwhile".to_owned(),
                    ))
                }
            })
        });
        match self.record_with(entry, write).await {
            Ok(_) => Ok(Deposited {
                record,
                created: true,
            }),
            Err(AppError::Internal(e)) if e.to_string().contains("record-changed-meanwhile") => {
                Err(AppError::Conflict {
                    code: "changed-meanwhile",
                    message: "the same resource was deposited meanwhile; send it again".to_owned(),
                })
            }
            Err(e) => Err(e),
        }
    }

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
            self.record(entry).await?;
            return Err(deny_error(
                decision
                    .denial()
                    .unwrap_or(ehrshare_core::access::DenyReason::RoleNotPermitted),
            ));
        };
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
        entry.record_ids = visible.iter().map(|r| r.id).collect();
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
        crate::limits::check("/reason", Some(reason.trim()), crate::limits::REASON)?;
        let now = self.clock().now();
        let asker = self.asker(session).await?;
        let record = self
            .db()
            .record(id)
            .await?
            .filter(|r| r.source_hcp == asker.requester.hcp && r.status == "current")
            .ok_or(AppError::NotFound)?;
        asker.require_scope(ehrshare_core::oauth::Access::Write, &record.resource_type)?;
        let reason = reason.trim();
        if reason.is_empty() {
            return Err(AppError::Invalid {
                code: "reason-required",
                message: "say why the record was entered in error".to_owned(),
                fields: vec![FieldError {
                    field: "/reason".to_owned(),
                    code: "required",
                    message: "required".to_owned(),
                }],
            });
        }
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
        let decision = self.decide_for(&asker, &facts, &ask);
        let mut entry = self.decision_entry(
            caller,
            "record.entered-in-error",
            record.recipient_id,
            &decision,
            Some(reason),
        );
        entry.record_ids = vec![id];
        if let Decision::Deny { reason } = decision {
            self.record(entry).await?;
            return Err(deny_error(reason));
        }
        let updated = RecordRow {
            version: record.version + 1,
            status: "entered-in-error".to_owned(),
            updated_at: now,
            deposited_by: asker.account,
            ..record
        };
        let stored = updated.clone();
        let write = change(move |conn: Conn<'_>| {
            Box::pin(async move {
                if ehrshare_store::record::update_record(conn, &stored).await? {
                    Ok(())
                } else {
                    Err(ehrshare_store::StoreError::Corrupt(
                        "record-changed-meanwhile".to_owned(),
                    ))
                }
            })
        });
        self.record_with(entry, write).await?;
        Ok(updated)
    }

    /// One record by id. Any refusal is audited with its reason and answered 404.
    pub async fn read_record(
        &self,
        session: &Session,
        caller: &Caller,
        id: Uuid,
        reason: Option<&str>,
    ) -> Result<RecordRow, AppError> {
        crate::limits::check("reason", reason, crate::limits::REASON)?;
        let asker = self.asker(session).await?;
        let Some(record) = self.db().record(id).await? else {
            let mut entry = caller.entry(self, "record.read", Outcome::Denied);
            entry.record_ids = vec![id];
            entry.denial_reason = Some("not-found".to_owned());
            self.record(entry).await?;
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
            self.record(entry).await?;
            return Err(AppError::NotFound);
        };
        if record.status != "current" {
            self.record(entry).await?;
            return Err(AppError::NotFound);
        }
        self.record_access(entry, &asker, &facts, basis, obligations)
            .await
            .map_err(|e| match e {
                AppError::Forbidden { .. } => AppError::NotFound,
                other => other,
            })?;
        Ok(record)
    }

    /// Makes a permitted access's entry durable with what it obliges: the alert for access
    /// without an episode, and the recipient's notice (once a day per provider, or every time
    /// a restricted item was unlocked).
    ///
    /// The consent the permit rests on is checked again inside the audit writer's transaction:
    /// if a revocation committed after the facts were read, this access is not committed; it
    /// is audited as refused instead (`consent-required`), so no permitted read is ever logged
    /// after the revocation that should have stopped it.
    async fn record_access(
        &self,
        entry: NewAuditEntry,
        asker: &Asker,
        facts: &Facts,
        basis: &Basis,
        obligations: &Obligations,
    ) -> Result<(), AppError> {
        let now = self.clock().now();
        let r = &facts.registration.recipient;
        let hk = now.to_offset(time::UtcOffset::from_hms(8, 0, 0).unwrap_or(time::UtcOffset::UTC));
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
        let wants_notices = !r.refuses_access_notices;
        let restricted_used = !obligations.unlocked.is_empty();
        // Built only for a recipient who wants notices (the template is rendered to check it).
        let notice = if wants_notices {
            self.messages(vec![recipient_notice(r, None, "access-notice", params)])?
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
            status: "open".to_owned(),
            note: None,
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
            d
        };
        match self.record_read(entry, effects).await? {
            Some(_) => Ok(()),
            None => {
                self.record(denial).await?;
                Err(deny_error(DenyReason::ConsentRequired))
            }
        }
    }
}

impl App {
    /// Writes a population for benchmarks and the demo, as a fixture (not through deposits):
    /// the first `n` active recipients get an indefinite consent with `hcp`, an open episode
    /// there and `records` records from `resource(i)` (domain, resource type, body). One
    /// audited change per recipient, by the system. Returns the recipients' ids.
    pub async fn bench_population(
        &self,
        hcp: Uuid,
        n: usize,
        records: usize,
        resource: fn(usize) -> (String, String, serde_json::Value),
    ) -> Result<Vec<Uuid>, AppError> {
        let now = self.clock().now();
        let caller = Caller {
            actor: ehrshare_core::audit::Actor::system(),
            request_id: None,
            client_addr: None,
        };
        let ids = self.db().active_recipients(n).await?;
        let mut k = 0usize;
        for recipient in &ids {
            let recipient = *recipient;
            let consent = ehrshare_store::consent::ConsentRow {
                id: Uuid::now_v7(),
                recipient_id: recipient,
                hcp_id: hcp,
                kind: "indefinite".to_owned(),
                method: "form".to_owned(),
                method_ref: Some("fixture".to_owned()),
                given_at: now,
                revoked_at: None,
                sdm_id: None,
                account_id: None,
                created_at: now,
            };
            let episode = ehrshare_store::episode::EpisodeRow {
                id: Uuid::now_v7(),
                recipient_id: recipient,
                hcp_id: hcp,
                location_id: None,
                kind: "attendance".to_owned(),
                start_at: now,
                end_at: None,
                opened_by: Uuid::nil(),
                closed_by: None,
                created_at: now,
            };
            let mut rows = Vec::with_capacity(records);
            for _ in 0..records {
                let (domain, resource_type, mut body) = resource(k);
                // About this recipient, by its id: what a deposit must say (issue 23).
                for element in ["subject", "patient"] {
                    if let Some(reference) = body.get_mut(element) {
                        *reference =
                            serde_json::json!({"reference": format!("Patient/{recipient}")});
                    }
                }
                let source_id = format!("{resource_type}/fixture-{k}");
                rows.push(RecordRow {
                    id: Uuid::now_v7(),
                    recipient_id: recipient,
                    domain,
                    resource_type,
                    source_hcp: hcp,
                    source_id,
                    version: 1,
                    status: "current".to_owned(),
                    body: body.to_string(),
                    deposited_by: None,
                    created_at: now,
                    updated_at: now,
                });
                k += 1;
            }
            let mut entry = caller.entry(self, "fixture.population", Outcome::Allowed);
            entry.recipient = Some(recipient);
            entry.consent_id = Some(consent.id);
            entry.episode_id = Some(episode.id);
            let write = change(move |mut conn: Conn<'_>| {
                Box::pin(async move {
                    ehrshare_store::consent::insert_consent(conn.reborrow(), &consent).await?;
                    ehrshare_store::episode::insert_episode(conn.reborrow(), &episode).await?;
                    for r in &rows {
                        ehrshare_store::record::insert_record(conn.reborrow(), r).await?;
                    }
                    Ok(())
                })
            });
            self.record_with(entry, write).await?;
        }
        Ok(ids)
    }
}

/// Whether a record falls under a restriction the decision says to hide.
fn hidden(o: &Obligations, r: &ListedRecord) -> bool {
    o.hidden.contains(&Restricted::Record(r.id)) || o.hidden.contains(&Restricted::Domain(r.domain))
}
