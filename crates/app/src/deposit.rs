//! Depositing records (SPEC 2, 3.8): validated against FHIR R4 and our rules, filed in a
//! domain, decided by the access decision, and committed with the decision's audit entry.

use ehrshare_core::access::{Action, Ask, Decision};
use ehrshare_core::audit::Outcome;
use ehrshare_core::record::RecordStatus;
use ehrshare_store::record::RecordRow;
use ehrshare_store::{Conn, change};
use uuid::Uuid;

use crate::access::deny_error;
use crate::auth::Session;
use crate::caller::Caller;
use crate::error::FieldError;
use crate::{App, AppError};

/// How a deposit is made beyond its resource.
#[derive(Debug, Clone, Copy, Default)]
pub struct DepositOptions<'a> {
    /// A client's idempotency key (`Idempotency-Key`).
    pub idempotency_key: Option<&'a str>,
    /// The version the client last saw (`If-Match`).
    pub expected_version: Option<i64>,
    /// The id a new record takes (a FHIR transaction names it before it commits); by
    /// default a new one.
    pub record_id: Option<Uuid>,
}

/// What a deposit did.
#[derive(Debug, Clone)]
pub struct Deposited {
    pub record: RecordRow,
    /// False when the same resource had been deposited before (nothing changed).
    pub created: bool,
}

/// The most nodes, and bytes of keys and strings, a resource may have to be checked on an
/// async worker (a few hundred microseconds at most); a larger one is checked on a blocking
/// thread.
const INLINE_CHECK_NODES: usize = 1_000;
const INLINE_CHECK_BYTES: usize = 32 * 1024;

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

    /// Deposits through FHIR, where no URL names the recipient: into the record of the one
    /// recipient the resource's patient references name, by id or by identity document (the
    /// forms `ehrshare_fhir::subject` accepts). The resource's `id` is the provider's own, as
    /// in any deposit (a create without one gets one). A resource that names no registered
    /// recipient is refused (422 `subject-unknown`) and audited.
    ///
    /// Security-sensitive: finding a recipient by identity document is the counter's look-up,
    /// so it is open only to whom a deposit is (a provider's professional, registration staff
    /// or clinic system with a write scope for the type; no user administrator, patient or
    /// office account), checked before anything is looked up, and every look-up by document
    /// is audited as `recipient.find`, found or not, as the counter's is.
    pub async fn deposit_by_subject(
        &self,
        session: &Session,
        caller: &Caller,
        resource: &serde_json::Value,
        options: DepositOptions<'_>,
    ) -> Result<Deposited, AppError> {
        let staged = self
            .stage_by_subject(session, caller, resource, options, &mut Staging::default())
            .await?;
        Ok(self.commit(vec![staged]).await?.remove(0))
    }

    /// [`App::deposit_by_subject`] but its commit ([`App::stage_deposit`]).
    pub(crate) async fn stage_by_subject(
        &self,
        session: &Session,
        caller: &Caller,
        resource: &serde_json::Value,
        options: DepositOptions<'_>,
        staging: &mut Staging,
    ) -> Result<Staged, AppError> {
        let recipient = self
            .subject_for_write(session, caller, resource, staging)
            .await?;
        self.stage_deposit(session, caller, recipient, resource, options, staging)
            .await
    }

    /// The recipient a FHIR write is about, found as [`App::deposit_by_subject`] says (the
    /// caller checked first, every look-up by document audited, a failure audited).
    pub(crate) async fn subject_for_write(
        &self,
        session: &Session,
        caller: &Caller,
        resource: &serde_json::Value,
        staging: &mut Staging,
    ) -> Result<Uuid, AppError> {
        let asker = self.staged_asker(session, staging).await?;
        let resource_type = ehrshare_fhir::resource::type_of(resource).unwrap_or_default();
        // A role that could deposit none of the type's domains (a user administrator) is
        // refused before any look-up: the role's domains are core's (`need_to_know`).
        let domains = ehrshare_core::domain::domains_holding(resource_type);
        let ask = Ask {
            action: Action::Deposit,
            domains,
            record: None,
            reason: None,
        };
        if domains.is_empty()
            || ehrshare_core::access::need_to_know(
                asker.requester.role,
                &ask,
                self.policy().profiles,
            )
            .is_empty()
        {
            return Err(AppError::NotFound);
        }
        asker.require_scope(ehrshare_core::oauth::Access::Write, resource_type)?;
        let found = self.subject_of(caller, resource, staging).await.and_then(|r| {
            // A token launched for one patient knows no one else: another registered person
            // is answered as one who is not registered (no oracle of who is).
            match asker.launch_patient {
                Some(p) if p != r => Err(AppError::Invalid {
                    code: "subject-unknown",
                    message: "names no registered recipient: use Patient/<id> or the identity document".to_owned(),
                    fields: vec![FieldError::new(
                        "subject",
                        "subject-unknown",
                        "names no registered recipient",
                    )],
                }),
                _ => Ok(r),
            }
        });
        match found {
            Ok(recipient) => Ok(recipient),
            Err(e) => {
                let mut entry = caller.entry(self, "record.deposit", Outcome::Failed);
                entry.reason = Some(e.code().to_owned());
                self.audit(entry).await?;
                Err(e)
            }
        }
    }

    /// The one registered recipient `resource`'s patient references name.
    async fn subject_of(
        &self,
        caller: &Caller,
        resource: &serde_json::Value,
        staging: &mut Staging,
    ) -> Result<Uuid, AppError> {
        use ehrshare_fhir::subject::{Target, document_of_system, patient_references};
        let unknown = |path: &str, code: &'static str, message: &str| AppError::Invalid {
            code,
            message: message.to_owned(),
            fields: vec![FieldError::new(path, code, message)],
        };
        // A Patient names the recipient by its identity documents (the demographics a
        // provider deposits); any other resource by its patient references.
        let references = if ehrshare_fhir::resource::type_of(resource) == Some("Patient") {
            ehrshare_fhir::subject::patient_documents(resource)
        } else {
            patient_references(resource)
        };
        let mut found: Option<Uuid> = None;
        for r in &references {
            let id = match &r.target {
                Target::Id(id) => match Uuid::parse_str(id) {
                    Ok(id) if staging.registered.contains(&id) => Some(id),
                    Ok(id) if self.db().recipient(id).await?.is_some() => {
                        staging.registered.insert(id);
                        Some(id)
                    }
                    _ => None,
                },
                Target::Identifier { system, value } => match document_of_system(system) {
                    Some((kind, issuer)) => {
                        let doc = ehrshare_core::registration::DocumentInput {
                            kind: kind.to_owned(),
                            issuer: issuer.map(str::to_owned),
                            number: value.clone(),
                        }
                        .parse(&r.path)
                        .map_err(|e| AppError::Invalid {
                            code: "subject-unknown",
                            message: e.message.clone(),
                            fields: vec![e],
                        })?;
                        let found = self
                            .db()
                            .recipient_by_document(doc.kind.code(), &doc.issuer, &doc.number)
                            .await?;
                        let mut entry = caller.entry(self, "recipient.find", Outcome::Allowed);
                        entry.recipient = found;
                        entry.reason = Some("subject of a FHIR write".to_owned());
                        if found.is_none() {
                            entry.outcome = Outcome::Denied;
                            entry.denial_reason = Some("not-found".to_owned());
                        }
                        self.audit(entry).await?;
                        found
                    }
                    None => None,
                },
                Target::Other(_) => None,
            };
            match (id, found) {
                (None, _) => {
                    return Err(unknown(
                        &r.path,
                        "subject-unknown",
                        "names no registered recipient: use Patient/<id> or the identity document",
                    ));
                }
                (Some(id), Some(before)) if id != before => {
                    return Err(unknown(
                        &r.path,
                        "subject-mismatch",
                        "names another recipient than the rest of the resource",
                    ));
                }
                (Some(id), _) => found = Some(id),
            }
        }
        found.ok_or_else(|| {
            unknown(
                if ehrshare_fhir::resource::type_of(resource) == Some("Patient") {
                    "Patient.identifier"
                } else {
                    "subject"
                },
                "subject-required",
                "a record names the patient it is about",
            )
        })
    }

    /// A record the caller's provider deposited (and may so update or withdraw), by its id
    /// here: `None` for any other, as for one that does not exist.
    pub async fn own_record(
        &self,
        session: &Session,
        id: Uuid,
    ) -> Result<Option<RecordRow>, AppError> {
        let asker = self.asker(session).await?;
        Ok(self
            .db()
            .record(id)
            .await?
            .filter(|r| r.source_hcp == asker.requester.hcp))
    }

    /// A record the caller's provider deposited, by the provider's own id for it (`Type/id`).
    pub async fn own_record_by_source(
        &self,
        session: &Session,
        source_id: &str,
    ) -> Result<Option<RecordRow>, AppError> {
        let asker = self.asker(session).await?;
        Ok(self
            .db()
            .record_by_source(asker.requester.hcp, source_id)
            .await?)
    }

    /// The identifier system in which the caller's provider names its own resources.
    pub async fn own_source_system(&self, session: &Session) -> Result<String, AppError> {
        let asker = self.asker(session).await?;
        Ok(ehrshare_fhir::served::source_system(asker.requester.hcp))
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
        self.deposit_with(
            session,
            caller,
            recipient,
            resource,
            DepositOptions {
                idempotency_key,
                ..DepositOptions::default()
            },
        )
        .await
    }

    /// [`App::deposit_keyed`], with a precondition: `expected_version` is the version the
    /// client last saw (FHIR's `If-Match`); another one, or no record yet, is 412
    /// `version-conflict` and changes nothing.
    pub async fn deposit_with(
        &self,
        session: &Session,
        caller: &Caller,
        recipient: Uuid,
        resource: &serde_json::Value,
        options: DepositOptions<'_>,
    ) -> Result<Deposited, AppError> {
        let staged = self
            .stage_deposit(
                session,
                caller,
                recipient,
                resource,
                options,
                &mut Staging::default(),
            )
            .await?;
        Ok(self.commit(vec![staged]).await?.remove(0))
    }

    /// Everything of a deposit but its commit: validated, decided, checked against what is
    /// stored. A refusal is audited here and returned; what is accepted is returned
    /// [`Staged`], for [`App::commit`] to write with its audit entry (alone, or with the
    /// rest of a FHIR transaction).
    pub(crate) async fn stage_deposit(
        &self,
        session: &Session,
        caller: &Caller,
        recipient: Uuid,
        resource: &serde_json::Value,
        options: DepositOptions<'_>,
        staging: &mut Staging,
    ) -> Result<Staged, AppError> {
        let DepositOptions {
            idempotency_key,
            expected_version,
            record_id,
        } = options;
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
        let asker = self.staged_asker(session, staging).await?;
        // Off the async workers when it may take long: a type seen for the first time
        // compiles its validator (about 50 ms, ADR 0011), and a large resource takes its
        // time. A small one of a ready type (tens of microseconds) is checked in place: the
        // hand-over to a blocking thread and back cost more than the check (ADR 0025).
        let contained = resource
            .get("contained")
            .and_then(serde_json::Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default();
        let ready =
            std::iter::once(resource).chain(contained).all(|r| {
                ehrshare_fhir::resource::type_of(r)
                    .is_some_and(ehrshare_fhir::r4::Definitions::ready_for)
            }) && ehrshare_fhir::json::within(resource, INLINE_CHECK_NODES, INLINE_CHECK_BYTES);
        let checked = if ready {
            let terms = &self.settings().terminology;
            // A panic stays this write's, as it would on a blocking thread.
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                ehrshare_fhir::resource::check(resource, terms)
            }))
            .map_err(|_| AppError::Internal("a resource's check failed".into()))?
            .map_err(invalid_resource)?
        } else {
            let (resource, terms) = (resource.clone(), self.settings().terminology.clone());
            tokio::task::spawn_blocking(move || ehrshare_fhir::resource::check(&resource, &terms))
                .await
                .map_err(|e| AppError::Internal(Box::new(e)))?
                .map_err(invalid_resource)?
        };
        asker.require_scope(ehrshare_core::oauth::Access::Write, &checked.resource_type)?;
        let facts = self.staged_facts(recipient, staging).await?;
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
            self.audit(entry).await?;
            return Err(deny_error(reason));
        }
        let mut mismatched = subject_problems(
            resource,
            &checked.resource_type,
            &facts.registration.recipient,
        );
        mismatched.extend(
            ehrshare_fhir::served::foreign_source_identifiers(resource, asker.requester.hcp)
                .into_iter()
                .map(|path| {
                    FieldError::new(
                        &path,
                        "identifier-system-reserved",
                        "this system names another provider's own ids",
                    )
                }),
        );
        if !mismatched.is_empty() {
            // About someone else, about no one we know, or passed off as another provider's:
            // refused, nothing stored, audited. The code is the first problem's (the subject's
            // when there is one).
            let code = mismatched[0].code;
            entry.outcome = Outcome::Failed;
            entry.reason = Some(code.to_owned());
            self.audit(entry).await?;
            return Err(AppError::Invalid {
                code,
                message: if code == "subject-mismatch" {
                    "the resource is not about the recipient it is deposited for"
                } else {
                    "the resource claims another provider's identifier system"
                }
                .to_owned(),
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
                self.audit(entry).await?;
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
            return Ok(Staged {
                entry,
                writes: Vec::new(),
                answer: Deposited {
                    record,
                    created: first.created,
                },
            });
        }
        // A FHIR id is unique only within its resource type: the key is both (issue 23).
        let source_key = format!("{}/{}", checked.resource_type, checked.source_id);
        let existing = self.staged_by_source(hcp, &source_key, staging).await?;
        if let Some(expected) = expected_version
            && existing.as_ref().map(|r| r.version) != Some(expected)
        {
            entry.outcome = Outcome::Failed;
            entry.reason = Some("version-conflict".to_owned());
            self.audit(entry).await?;
            return Err(AppError::PreconditionFailed {
                code: "version-conflict",
                message: match &existing {
                    Some(r) => format!("the record is at version {}", r.version),
                    None => "there is no such record yet".to_owned(),
                },
            });
        }
        if let Some(r) = &existing {
            if r.status == RecordStatus::EnteredInError {
                entry.outcome = Outcome::Failed;
                entry.reason = Some("record-withdrawn".to_owned());
                self.audit(entry).await?;
                return Err(AppError::Conflict {
                    code: "record-withdrawn",
                    message:
                        "this record was entered in error; deposit the resource under a new id"
                            .to_owned(),
                });
            }
            if r.recipient_id != recipient {
                entry.outcome = Outcome::Denied;
                entry.denial_reason = Some("source-id-of-another-recipient".to_owned());
                self.audit(entry).await?;
                return Err(AppError::Conflict {
                    code: "source-id-taken",
                    message: "this provider used that resource id for another recipient".to_owned(),
                });
            }
            if r.body == checked.canonical {
                // The same content again is a create or an update retried: one of the two.
                if !asker.scope_allows(ehrshare_core::oauth::Access::Create, &checked.resource_type)
                {
                    asker.require_scope(
                        ehrshare_core::oauth::Access::Update,
                        &checked.resource_type,
                    )?;
                }
                entry.record_ids = vec![r.id];
                entry.reason = Some("unchanged: already deposited".to_owned());
                // The key is kept with this answer too, so that other content under it later
                // is the conflict it would have been.
                let writes = idempotency_key
                    .zip(request_hash)
                    .map(|(key, request_hash)| {
                        Write::Key(
                            ehrshare_store::record::DepositKeyRow {
                                source_hcp: hcp,
                                key: key.to_owned(),
                                request_hash,
                                record_id: r.id,
                                created: false,
                                created_at: now,
                            },
                            false,
                        )
                    })
                    .into_iter()
                    .collect();
                return Ok(Staged {
                    entry,
                    writes,
                    answer: Deposited {
                        record: r.clone(),
                        created: false,
                    },
                });
            }
        }
        // Which write this is, now that it is known: a token's scope may allow one and not
        // the other (SMART v2's `c` and `u`); the same content again is neither.
        asker.require_scope(
            if existing.is_some() {
                ehrshare_core::oauth::Access::Update
            } else {
                ehrshare_core::oauth::Access::Create
            },
            &checked.resource_type,
        )?;
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
                id: record_id.unwrap_or_else(Uuid::now_v7),
                recipient_id: recipient,
                domain: checked.domain.code().to_owned(),
                resource_type: checked.resource_type,
                source_hcp: hcp,
                source_id: source_key,
                version: 1,
                status: RecordStatus::Current,
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
        let mut writes = vec![Write::Record(record.clone())];
        // Activity only in the provider's episode that has started and not ended: never one
        // in its follow-up window (which would revive it) nor one still ahead (ADR 0016).
        if let Some(episode) = ehrshare_core::episode::active_episode(
            &facts.episodes,
            hcp,
            now,
            self.settings().care_window.idle,
        ) {
            writes.push(Write::Activity(episode, now));
        }
        if let Some((key, request_hash)) = idempotency_key.zip(request_hash) {
            // Two first tries with one key: the second finds it taken and is rolled back
            // whole; its retry gets the first answer.
            writes.push(Write::Key(
                ehrshare_store::record::DepositKeyRow {
                    source_hcp: hcp,
                    key: key.to_owned(),
                    request_hash,
                    record_id: record.id,
                    created: true,
                    created_at: now,
                },
                true,
            ));
        }
        Ok(Staged {
            entry,
            writes,
            answer: Deposited {
                record,
                created: true,
            },
        })
    }

    /// Commits staged writes with their audit entries, all or none: a record changed since
    /// it was staged (a lost race) is 409 `changed-meanwhile` and nothing is kept.
    pub(crate) async fn commit(&self, staged: Vec<Staged>) -> Result<Vec<Deposited>, AppError> {
        let mut entries = Vec::with_capacity(staged.len());
        let mut writes = Vec::new();
        let mut answers = Vec::with_capacity(staged.len());
        for s in staged {
            entries.push(s.entry);
            writes.extend(s.writes);
            answers.push(s.answer);
        }
        if writes.is_empty() && entries.len() == 1 {
            self.audit(entries.remove(0)).await?;
            return Ok(answers);
        }
        // New records first, all in one statement (a transaction's many); then amendments and
        // idempotency keys (a key refers to its record), in order.
        // An episode's activity once, at its latest: a transaction's fifty entries in one
        // episode are one statement, not fifty.
        let mut active: std::collections::BTreeMap<Uuid, time::OffsetDateTime> =
            std::collections::BTreeMap::new();
        let writes: Vec<Write> = writes
            .into_iter()
            .filter(|w| match w {
                Write::Activity(episode, at) => {
                    let latest = active.entry(*episode).or_insert(*at);
                    *latest = (*latest).max(*at);
                    false
                }
                _ => true,
            })
            .collect();
        let (new, mut rest): (Vec<Write>, Vec<Write>) = writes
            .into_iter()
            .partition(|w| matches!(w, Write::Record(r) if r.version == 1));
        rest.extend(active.into_iter().map(|(e, at)| Write::Activity(e, at)));
        let new: Vec<RecordRow> = new
            .into_iter()
            .filter_map(|w| match w {
                Write::Record(r) => Some(r),
                Write::Key(..) | Write::Activity(..) => None,
            })
            .collect();
        // The consents the writes rest on are checked again inside the commit: one revoked
        // since the facts were read (a long transaction's staging takes a while) stops the
        // whole write, as it stops a read (`record_access`).
        let mut consents: Vec<Uuid> = entries.iter().filter_map(|e| e.consent_id).collect();
        consents.sort_unstable();
        consents.dedup();
        let refusal = entries.first().cloned();
        let write = change(move |mut conn: Conn<'_>| {
            Box::pin(async move {
                if !consents.is_empty() {
                    let live =
                        ehrshare_store::audit::unrevoked_consents(conn.reborrow(), &consents)
                            .await?;
                    if consents.iter().any(|c| !live.contains(c)) {
                        return Err(ehrshare_store::StoreError::ConsentRevoked);
                    }
                }
                let stale = || ehrshare_store::StoreError::Stale(ehrshare_store::Stale::Record);
                let inserted = match new.as_slice() {
                    [] => true,
                    [one] => ehrshare_store::record::insert_record(conn.reborrow(), one).await?,
                    many => ehrshare_store::record::insert_records(conn.reborrow(), many).await?,
                };
                if !inserted {
                    return Err(stale());
                }
                for w in &rest {
                    let done = match w {
                        Write::Record(r) if r.version == 1 => {
                            ehrshare_store::record::insert_record(conn.reborrow(), r).await?
                        }
                        Write::Record(r) => {
                            ehrshare_store::record::update_record(conn.reborrow(), r).await?
                        }
                        Write::Key(k, required) => {
                            ehrshare_store::record::insert_deposit_key(conn.reborrow(), k).await?
                                || !required
                        }
                        Write::Activity(episode, at) => {
                            ehrshare_store::episode::note_activity(conn.reborrow(), *episode, *at)
                                .await?;
                            true
                        }
                    };
                    if !done {
                        return Err(stale());
                    }
                }
                Ok(())
            })
        });
        match self.audit_all_with(entries, write).await {
            Ok(_) => Ok(answers),
            Err(AppError::Conflict {
                code: "consent-revoked",
                ..
            }) => {
                // Nothing was kept; the refusal is.
                if let Some(mut entry) = refusal {
                    entry.outcome = Outcome::Denied;
                    entry.denial_reason = Some("consent-required".to_owned());
                    entry.reason = Some("the consent was revoked meanwhile".to_owned());
                    entry.consent_id = None;
                    self.audit(entry).await?;
                }
                Err(deny_error(
                    ehrshare_core::access::DenyReason::ConsentRequired,
                ))
            }
            Err(e) => Err(e),
        }
    }
}

/// What the writes of one request share while they are staged: who asks, each recipient's
/// facts, and the recipients known to exist, each read once (a transaction of 50 entries about
/// one patient reads them once, not 50 times). Every entry is still decided on its own.
#[derive(Debug, Default)]
pub(crate) struct Staging {
    asker: Option<crate::access::Asker>,
    facts: std::collections::HashMap<Uuid, std::sync::Arc<crate::access::Facts>>,
    registered: std::collections::HashSet<Uuid>,
    /// The caller's provider's records by their own id, read once: only for a transaction,
    /// whose entries each touch a different record (a batch's may touch one twice), and an
    /// import's group, which is committed before a record is touched twice.
    by_source: Option<std::collections::HashMap<String, Option<RecordRow>>>,
    /// Records by their server id, read ahead for an import's group (the same rule).
    by_id: Option<std::collections::HashMap<Uuid, Option<RecordRow>>>,
}

impl Staging {
    /// For a transaction: its records are read once too.
    pub(crate) fn for_transaction() -> Staging {
        Staging {
            by_source: Some(std::collections::HashMap::new()),
            ..Staging::default()
        }
    }

    /// For an import's group: the records its writes may touch, read ahead in one go
    /// (`sources` and `ids` not among `found` are known not to exist).
    pub(crate) fn read_ahead(
        &mut self,
        hcp: Uuid,
        sources: &[String],
        ids: &[Uuid],
        found: Vec<RecordRow>,
    ) {
        let mut by_source: std::collections::HashMap<String, Option<RecordRow>> =
            sources.iter().map(|s| (s.clone(), None)).collect();
        let mut by_id: std::collections::HashMap<Uuid, Option<RecordRow>> =
            ids.iter().map(|id| (*id, None)).collect();
        // Only the provider's own: another's record under the same own id is not this one.
        for r in found.into_iter().filter(|r| r.source_hcp == hcp) {
            if by_source.contains_key(&r.source_id) {
                by_source.insert(r.source_id.clone(), Some(r.clone()));
            }
            if by_id.contains_key(&r.id) {
                by_id.insert(r.id, Some(r));
            }
        }
        self.by_source = Some(by_source);
        self.by_id = Some(by_id);
    }

    /// A fresh staging with the records read ahead, taken from this one.
    pub(crate) fn take_records(&mut self) -> Staging {
        Staging {
            by_source: self.by_source.take(),
            by_id: self.by_id.take(),
            ..Staging::default()
        }
    }

    /// `record` as a commit left it, where it was read ahead.
    pub(crate) fn now_is(&mut self, record: &RecordRow) {
        if let Some(m) = self.by_source.as_mut() {
            m.insert(record.source_id.clone(), Some(record.clone()));
        }
        if let Some(m) = self.by_id.as_mut() {
            m.insert(record.id, Some(record.clone()));
        }
    }

    /// A record whose state after a commit is not known here: read again when asked for.
    pub(crate) fn forget(&mut self, id: Uuid, source: &str) {
        if let Some(m) = self.by_source.as_mut() {
            m.remove(source);
        }
        if let Some(m) = self.by_id.as_mut() {
            m.remove(&id);
        }
    }

    /// A record by its server id, when it was read ahead.
    pub(crate) fn read_by_id(&self, id: Uuid) -> Option<Option<RecordRow>> {
        self.by_id.as_ref().and_then(|m| m.get(&id).cloned())
    }
}

impl App {
    /// [`App::asker`], once per [`Staging`].
    pub(crate) async fn staged_asker(
        &self,
        session: &Session,
        staging: &mut Staging,
    ) -> Result<crate::access::Asker, AppError> {
        if let Some(a) = &staging.asker {
            return Ok(a.clone());
        }
        let a = self.asker(session).await?;
        staging.asker = Some(a.clone());
        Ok(a)
    }

    /// The caller's provider's record under its own id `source` (`Type/id`).
    pub(crate) async fn staged_by_source(
        &self,
        hcp: Uuid,
        source: &str,
        staging: &mut Staging,
    ) -> Result<Option<RecordRow>, AppError> {
        // Never another provider's record, whatever a staging holds.
        if let Some(found) = staging.by_source.as_ref().and_then(|m| m.get(source)) {
            return Ok(found.clone().filter(|r| r.source_hcp == hcp));
        }
        let found = self.db().record_by_source(hcp, source).await?;
        if let Some(m) = staging.by_source.as_mut() {
            m.insert(source.to_owned(), found.clone());
        }
        Ok(found)
    }

    /// [`App::facts`] (no records), once per recipient per [`Staging`].
    async fn staged_facts(
        &self,
        recipient: Uuid,
        staging: &mut Staging,
    ) -> Result<std::sync::Arc<crate::access::Facts>, AppError> {
        // Shared, not copied: an import stages hundreds of writes for one recipient.
        if let Some(f) = staging.facts.get(&recipient) {
            return Ok(std::sync::Arc::clone(f));
        }
        let f = std::sync::Arc::new(self.facts(recipient, &[]).await?);
        staging.facts.insert(recipient, std::sync::Arc::clone(&f));
        Ok(f)
    }
}

/// A write decided and checked but not committed ([`App::stage_deposit`]): its audit entry,
/// what it stores, and what it answers once committed.
#[derive(Debug)]
pub(crate) struct Staged {
    pub(crate) entry: ehrshare_core::audit::NewAuditEntry,
    pub(crate) writes: Vec<Write>,
    pub(crate) answer: Deposited,
}

/// One row a staged write stores.
#[derive(Debug)]
pub(crate) enum Write {
    /// A record's first version (inserted) or its next (the stored version must be the one
    /// before, or the commit fails as stale).
    Record(RecordRow),
    /// An idempotency key; `true` when it must be new (else the commit fails as stale).
    Key(ehrshare_store::record::DepositKeyRow, bool),
    /// Activity in the care episode the deposit was permitted in: its end by itself moves
    /// (`core::episode`). Reads never do this.
    Activity(Uuid, time::OffsetDateTime),
}
