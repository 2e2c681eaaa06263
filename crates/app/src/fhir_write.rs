//! Writes as FHIR asks for them (SPEC 5, ADR 0014): `create` (and conditional create by the
//! provider's own id), `update` (update-as-create by the provider's own id), `delete` as
//! "entered in error", and `batch` and `transaction` Bundles of them.
//!
//! Each write is a deposit (`deposit`) or a withdrawal (`record`): staged (validated, decided,
//! checked, a refusal audited), then committed with its audit entry. A batch commits each
//! entry alone. A transaction stages every entry first and commits them all in one database
//! transaction with all their audit entries, or none: any entry refused, or any record
//! changed by someone else meanwhile, and nothing is stored.
//!
//! In a transaction, an entry's `fullUrl` of the form `urn:uuid:...` may be referred to by
//! the others: a created record's becomes `{type}/{its server id}`; a `Patient` entry's names
//! the registered person its identity document names (the subject rule of
//! `deposit_by_subject`), and becomes `Patient/{recipient id}`, while the Patient resource
//! itself is deposited as that person's demographics.

use std::collections::{HashMap, HashSet};

use ehrshare_core::record::RecordStatus;
use ehrshare_fhir::served::server_id;
use ehrshare_store::record::RecordRow;
use serde_json::Value;
use uuid::Uuid;

use crate::auth::Session;
use crate::caller::Caller;
use crate::deposit::{DepositOptions, Staged, Staging};
use crate::error::FieldError;
use crate::{App, AppError};

/// The reason a FHIR `DELETE` records.
const DELETE_REASON: &str = "withdrawn through the FHIR API (DELETE)";

/// Most entries in one Bundle: a clinic's day, and bounded work for one request.
pub const MAX_ENTRIES: usize = 1000;

/// The accepted writes of an import committed together ([`App::fhir_import`], ADR 0025).
pub const IMPORT_COMMIT: usize = 500;

/// One write, as FHIR's request names it.
#[derive(Debug, Clone)]
pub enum WriteRequest {
    /// `POST {type}`: a new record; the resource's `id` is ignored, unless `own_id` (from
    /// `If-None-Exist: identifier={provider system}|{id}`) names the provider's own id,
    /// which then answers the record held under it instead of creating one.
    Create {
        resource: Value,
        own_id: Option<String>,
    },
    /// `PUT {type}/{id}`: `id` is a record's server id (only its provider may update it) or
    /// the provider's own id (update-as-create). `expected_version` is `If-Match`.
    Update {
        id: String,
        resource: Value,
        expected_version: Option<i64>,
    },
    /// `DELETE {type}/{id}`.
    Delete { resource_type: String, id: String },
}

impl WriteRequest {
    fn resource_type(&self) -> &str {
        match self {
            WriteRequest::Create { resource, .. } | WriteRequest::Update { resource, .. } => {
                ehrshare_fhir::resource::type_of(resource).unwrap_or_default()
            }
            WriteRequest::Delete { resource_type, .. } => resource_type,
        }
    }

    fn resource_mut(&mut self) -> Option<&mut Value> {
        match self {
            WriteRequest::Create { resource, .. } | WriteRequest::Update { resource, .. } => {
                Some(resource)
            }
            WriteRequest::Delete { .. } => None,
        }
    }
}

/// What a write did.
#[derive(Debug, Clone)]
pub enum Written {
    /// A record stored: `created` when it is a new record (201), else a new version or, when
    /// the content was the same, the current one (200).
    Stored { record: RecordRow, created: bool },
    /// `If-None-Exist` found the record held under the provider's own id: nothing done.
    Exists(RecordRow),
    /// The record is entered in error (now, or already before: a repeated delete is no
    /// error).
    Deleted,
}

/// One entry of a Bundle: its `fullUrl` and its request.
#[derive(Debug, Clone)]
pub struct BundleEntry {
    pub full_url: Option<String>,
    pub request: WriteRequest,
}

/// A transaction refused: the entry at fault (its index in the Bundle) and why.
#[derive(Debug)]
pub struct EntryRefused {
    pub index: usize,
    pub error: AppError,
}

/// An import's writes staged and not yet committed, and the records they touch.
#[derive(Default)]
struct Group {
    lines: Vec<(usize, Staged, Kind, WriteRequest)>,
    records: HashSet<Uuid>,
    /// The provider's own ids of its records (`Type/id`): a new record has no server id the
    /// next line could name.
    sources: HashSet<String>,
}

/// What an import's line may write into: the provider's own id (`Type/id`) and a server id.
fn import_keys(request: &Result<WriteRequest, AppError>) -> (Option<String>, Option<Uuid>) {
    use ehrshare_fhir::served::server_id;
    match request {
        Ok(WriteRequest::Update { id, resource, .. }) => {
            let resource_type = ehrshare_fhir::resource::type_of(resource).unwrap_or_default();
            (Some(format!("{resource_type}/{id}")), server_id(id))
        }
        Ok(WriteRequest::Create {
            resource,
            own_id: Some(own_id),
        }) => {
            let resource_type = ehrshare_fhir::resource::type_of(resource).unwrap_or_default();
            (Some(format!("{resource_type}/{own_id}")), None)
        }
        Ok(WriteRequest::Delete { id, .. }) => (None, server_id(id)),
        _ => (None, None),
    }
}

/// What staging a write found.
enum Stage {
    Staged(Box<Staged>, Kind),
    Done(Box<Written>),
}

#[derive(Debug, Clone, Copy)]
enum Kind {
    Deposit,
    Delete,
}

fn written(staged: crate::deposit::Deposited, kind: Kind) -> Written {
    match kind {
        Kind::Delete => Written::Deleted,
        Kind::Deposit => Written::Stored {
            created: staged.created && staged.record.version == 1,
            record: staged.record,
        },
    }
}

impl App {
    /// One write, committed with its audit entry.
    pub async fn fhir_write(
        &self,
        session: &Session,
        caller: &Caller,
        request: WriteRequest,
    ) -> Result<Written, AppError> {
        self.write_staged(session, caller, request, &mut Staging::default())
            .await
    }

    /// [`App::fhir_write`], sharing `staging` with the other writes of the request.
    async fn write_staged(
        &self,
        session: &Session,
        caller: &Caller,
        request: WriteRequest,
        staging: &mut Staging,
    ) -> Result<Written, AppError> {
        match self
            .stage_write(
                session,
                caller,
                request,
                DepositOptions::default(),
                None,
                staging,
            )
            .await?
        {
            Stage::Done(w) => Ok(*w),
            Stage::Staged(staged, kind) => {
                let d = self.commit(vec![*staged]).await?.remove(0);
                Ok(written(d, kind))
            }
        }
    }

    /// A batch: each entry on its own, as if sent alone; one answer per entry, in order.
    /// Entries may not refer to each other (R4).
    pub async fn fhir_batch(
        &self,
        session: &Session,
        caller: &Caller,
        entries: Vec<BundleEntry>,
    ) -> Vec<Result<Written, AppError>> {
        let mut out = Vec::with_capacity(entries.len());
        let mut staging = Staging::default();
        for entry in entries {
            out.push(
                self.write_staged(session, caller, entry.request, &mut staging)
                    .await,
            );
        }
        out
    }

    /// An import (`POST /fhir/$import`, ADR 0025): each write on its own, decided and audited
    /// as in a batch, but the accepted ones committed together, [`IMPORT_COMMIT`] at a time,
    /// each with its audit entry. A write that touches a record already in the group (by
    /// whatever name) first has the group committed, and is then staged again, so that the
    /// writes apply in line order. A group that loses a race (a record changed meanwhile, a
    /// consent revoked) is written again one write at a time, so that one line's conflict
    /// costs no other line; one that fails otherwise (the database unavailable) answers its
    /// writes and every later one with that failure, nothing more being tried. One answer per
    /// request, in order; a request that could not be read is answered with its own error.
    pub async fn fhir_import(
        &self,
        session: &Session,
        caller: &Caller,
        requests: Vec<Result<WriteRequest, AppError>>,
    ) -> Vec<Result<Written, AppError>> {
        let mut answers: Vec<Option<Result<Written, AppError>>> =
            (0..requests.len()).map(|_| None).collect();
        let keys: Vec<(Option<String>, Option<Uuid>)> = requests.iter().map(import_keys).collect();
        let mut staging = self.import_staging(session, &keys).await;
        let mut group = Group::default();
        let mut failed: Option<std::sync::Arc<ehrshare_store::StoreError>> = None;
        for (i, request) in requests.into_iter().enumerate() {
            if let Some(cause) = &failed {
                answers[i] = Some(Err(AppError::Unavailable(
                    ehrshare_store::StoreError::Shared(std::sync::Arc::clone(cause)),
                )));
                continue;
            }
            let request = match request {
                Ok(request) => request,
                Err(e) => {
                    answers[i] = Some(Err(e));
                    continue;
                }
            };
            let mut staged = self
                .stage_write(
                    session,
                    caller,
                    request.clone(),
                    DepositOptions::default(),
                    None,
                    &mut staging,
                )
                .await;
            let touches = |s: &Result<Stage, AppError>, group: &Group| match s {
                Ok(Stage::Staged(s, _)) => {
                    group.records.contains(&s.answer.record.id)
                        || group.sources.contains(&s.answer.record.source_id)
                }
                _ => false,
            };
            let touched = touches(&staged, &group);
            if group.lines.len() >= IMPORT_COMMIT || touched {
                let written: Vec<(usize, Uuid, String)> = group
                    .lines
                    .iter()
                    .map(|(i, s, _, _)| (*i, s.answer.record.id, s.answer.record.source_id.clone()))
                    .collect();
                failed = self
                    .commit_group(session, caller, std::mem::take(&mut group), &mut answers)
                    .await;
                // What the group committed is read afresh (a new version, an episode's
                // activity), and a write to one of its records staged again against it. The
                // records read ahead stay, with what the group wrote in place of what it
                // changed.
                let mut next = staging.take_records();
                for (at, id, source) in written {
                    match &answers[at] {
                        Some(Ok(Written::Stored { record, .. })) => next.now_is(record),
                        _ => next.forget(id, &source),
                    }
                }
                staging = next;
                if touched && failed.is_none() {
                    staged = self
                        .stage_write(
                            session,
                            caller,
                            request.clone(),
                            DepositOptions::default(),
                            None,
                            &mut staging,
                        )
                        .await;
                }
                if let Some(cause) = &failed {
                    answers[i] = Some(Err(AppError::Unavailable(
                        ehrshare_store::StoreError::Shared(std::sync::Arc::clone(cause)),
                    )));
                    continue;
                }
            }
            match staged {
                Ok(Stage::Done(w)) => answers[i] = Some(Ok(*w)),
                Ok(Stage::Staged(s, kind)) => {
                    group.records.insert(s.answer.record.id);
                    group.sources.insert(s.answer.record.source_id.clone());
                    group.lines.push((i, *s, kind, request));
                }
                Err(e) => answers[i] = Some(Err(e)),
            }
        }
        if failed.is_none() {
            self.commit_group(session, caller, group, &mut answers)
                .await;
        }
        answers
            .into_iter()
            .map(|a| {
                a.unwrap_or_else(|| {
                    Err(AppError::Internal("an import line left unanswered".into()))
                })
            })
            .collect()
    }

    /// A staging for an import's lines from `keys` on, with the records they may write into
    /// read ahead in a few statements instead of one or two a line. If that read fails, the
    /// lines read their records one by one (and meet the failure themselves).
    async fn import_staging(
        &self,
        session: &Session,
        keys: &[(Option<String>, Option<Uuid>)],
    ) -> Staging {
        let mut staging = Staging::default();
        let Ok(asker) = self.staged_asker(session, &mut staging).await else {
            return staging;
        };
        let mut sources: Vec<String> = keys.iter().filter_map(|(s, _)| s.clone()).collect();
        let mut ids: Vec<Uuid> = keys.iter().filter_map(|(_, id)| *id).collect();
        sources.sort_unstable();
        sources.dedup();
        ids.sort_unstable();
        ids.dedup();
        match self
            .db()
            .records_for_writes(asker.requester.hcp, &sources, &ids)
            .await
        {
            Ok(found) => staging.read_ahead(asker.requester.hcp, &sources, &ids, found),
            Err(e) => tracing::debug!(error = %e, "an import's records not read ahead"),
        }
        staging
    }

    /// Commits an import's group; if it lost a race, each of its writes on its own. A failure
    /// of another kind answers every write of the group and is returned, shared.
    async fn commit_group(
        &self,
        session: &Session,
        caller: &Caller,
        group: Group,
        answers: &mut [Option<Result<Written, AppError>>],
    ) -> Option<std::sync::Arc<ehrshare_store::StoreError>> {
        if group.lines.is_empty() {
            return None;
        }
        let mut places = Vec::with_capacity(group.lines.len());
        let mut staged = Vec::with_capacity(group.lines.len());
        for (i, s, kind, request) in group.lines {
            staged.push(s);
            places.push((i, kind, request));
        }
        match self.commit(staged).await {
            Ok(done) => {
                for ((i, kind, _), d) in places.into_iter().zip(done) {
                    answers[i] = Some(Ok(written(d, kind)));
                }
                None
            }
            // A record changed meanwhile, or a consent revoked (`App::commit` answers the
            // latter as the refusal it is): each write on its own, so that only the lines it
            // concerns are refused.
            Err(AppError::Conflict { code, .. } | AppError::Forbidden { code, .. }) => {
                tracing::debug!(code, "an import's group lost a race: one write at a time");
                for (i, _, request) in places {
                    answers[i] = Some(
                        self.write_staged(session, caller, request, &mut Staging::default())
                            .await,
                    );
                }
                None
            }
            Err(e) => {
                let cause = std::sync::Arc::new(match e {
                    AppError::Unavailable(store) => store,
                    other => ehrshare_store::StoreError::Corrupt(other.to_string()),
                });
                for (i, _, _) in places {
                    answers[i] = Some(Err(AppError::Unavailable(
                        ehrshare_store::StoreError::Shared(std::sync::Arc::clone(&cause)),
                    )));
                }
                Some(cause)
            }
        }
    }

    /// A transaction: every entry or none (module docs). Answers one [`Written`] per entry,
    /// in order, or the first entry refused.
    pub async fn fhir_transaction(
        &self,
        session: &Session,
        caller: &Caller,
        mut entries: Vec<BundleEntry>,
    ) -> Result<Vec<Written>, EntryRefused> {
        let refused = |index: usize, error: AppError| EntryRefused { index, error };
        distinct_targets(&entries)?;
        let mut staging = Staging::for_transaction();
        // Each `urn:uuid` fullUrl's server reference, and the record id a created entry
        // takes so that the others can name it before it exists.
        let mut resolved: HashMap<String, String> = HashMap::new();
        let mut record_ids: Vec<Option<Uuid>> = vec![None; entries.len()];
        // The recipient each Patient entry names, found once.
        let mut subjects: Vec<Option<Uuid>> = vec![None; entries.len()];
        for (i, entry) in entries.iter().enumerate() {
            let Some(url) = entry
                .full_url
                .as_deref()
                .filter(|u| u.starts_with("urn:uuid:"))
            else {
                continue;
            };
            let resource_type = entry.request.resource_type().to_owned();
            let target = match &entry.request {
                WriteRequest::Create { resource, .. } | WriteRequest::Update { resource, .. }
                    if resource_type == "Patient" =>
                {
                    let recipient = self
                        .subject_for_write(session, caller, resource, &mut staging)
                        .await
                        .map_err(|e| refused(i, e))?;
                    subjects[i] = Some(recipient);
                    format!("Patient/{recipient}")
                }
                WriteRequest::Create { own_id, .. } => {
                    let existing = match own_id {
                        Some(own_id) => self
                            .own_staged(
                                session,
                                Own::Source(&format!("{resource_type}/{own_id}")),
                                &mut staging,
                            )
                            .await
                            .map_err(|e| refused(i, e))?,
                        None => None,
                    };
                    let id = match existing {
                        // `If-None-Exist` will find it: the others refer to it.
                        Some(record) => record.id,
                        None => *record_ids[i].insert(Uuid::now_v7()),
                    };
                    format!("{resource_type}/{id}")
                }
                WriteRequest::Update { id, .. } => {
                    // The record it updates (by its server id or the provider's own), or
                    // the one it creates.
                    let mut existing = match server_id(id) {
                        Some(u) => self
                            .own_staged(session, Own::Id(u), &mut staging)
                            .await
                            .map_err(|e| refused(i, e))?
                            .filter(|r| r.resource_type == resource_type),
                        None => None,
                    };
                    if existing.is_none() {
                        existing = self
                            .own_staged(
                                session,
                                Own::Source(&format!("{resource_type}/{id}")),
                                &mut staging,
                            )
                            .await
                            .map_err(|e| refused(i, e))?;
                    }
                    let id = match existing {
                        Some(record) => record.id,
                        None => *record_ids[i].insert(Uuid::now_v7()),
                    };
                    format!("{resource_type}/{id}")
                }
                // A delete's fullUrl names nothing another entry may refer to.
                WriteRequest::Delete { .. } => continue,
            };
            resolved.insert(url.to_owned(), target);
        }
        for (i, entry) in entries.iter_mut().enumerate() {
            if let Some(resource) = entry.request.resource_mut() {
                rewrite_references(resource, &resolved);
                // R4: a `urn:uuid` no entry defines fails the transaction, unless it is a
                // registered recipient's id (issue 23's accepted form of the subject).
                let mut left = Vec::new();
                unresolved(resource, "", &mut left);
                for (path, id) in left {
                    let known = match Uuid::parse_str(&id) {
                        Ok(id) => self
                            .db()
                            .recipient(id)
                            .await
                            .map_err(|e| refused(i, e.into()))?
                            .is_some(),
                        Err(_) => false,
                    };
                    if !known {
                        return Err(refused(
                            i,
                            malformed(
                                &format!("resource{path}"),
                                "unresolved-reference",
                                "a urn:uuid that no entry of the transaction has as its fullUrl",
                            ),
                        ));
                    }
                }
            }
        }
        let mut staged = Vec::with_capacity(entries.len());
        let mut answers: Vec<Option<Written>> = Vec::with_capacity(entries.len());
        for (i, entry) in entries.into_iter().enumerate() {
            let options = DepositOptions {
                record_id: record_ids[i],
                ..DepositOptions::default()
            };
            match self
                .stage_write(
                    session,
                    caller,
                    entry.request,
                    options,
                    subjects[i],
                    &mut staging,
                )
                .await
                .map_err(|e| refused(i, e))?
            {
                Stage::Done(w) => answers.push(Some(*w)),
                Stage::Staged(s, kind) => {
                    staged.push((i, *s, kind));
                    answers.push(None);
                }
            }
        }
        let places: Vec<(usize, Kind)> = staged.iter().map(|(i, _, k)| (*i, *k)).collect();
        if !staged.is_empty() {
            let committed = self
                .commit(staged.into_iter().map(|(_, s, _)| s).collect())
                .await
                // Nothing of it is kept: the error is the whole transaction's, shown on the
                // first entry.
                .map_err(|e| refused(0, e))?;
            for ((i, kind), d) in places.into_iter().zip(committed) {
                answers[i] = Some(written(d, kind));
            }
        }
        Ok(answers.into_iter().flatten().collect())
    }

    /// A write up to its commit; `subject`, the recipient a Patient entry was found to name.
    async fn stage_write(
        &self,
        session: &Session,
        caller: &Caller,
        request: WriteRequest,
        options: DepositOptions<'_>,
        subject: Option<Uuid>,
        staging: &mut Staging,
    ) -> Result<Stage, AppError> {
        let by_subject = async |resource: &Value, options, staging: &mut Staging| match subject {
            Some(recipient) => {
                self.stage_deposit(session, caller, recipient, resource, options, staging)
                    .await
            }
            None => {
                self.stage_by_subject(session, caller, resource, options, staging)
                    .await
            }
        };
        match request {
            WriteRequest::Create {
                mut resource,
                own_id,
            } => {
                let resource_type = ehrshare_fhir::resource::type_of(&resource)
                    .unwrap_or_default()
                    .to_owned();
                if let Some(own_id) = &own_id {
                    let source = format!("{resource_type}/{own_id}");
                    if let Some(existing) = self
                        .own_staged(session, Own::Source(&source), staging)
                        .await?
                    {
                        self.answer_exists(session, caller, &existing, staging)
                            .await?;
                        return Ok(Stage::Done(Box::new(Written::Exists(existing))));
                    }
                }
                // A Patient keeps its id: it is the provider's own id for the demographics
                // it deposits, not a new Patient (module docs).
                if let Some(obj) = resource.as_object_mut()
                    && resource_type != "Patient"
                {
                    match own_id {
                        Some(id) => obj.insert("id".to_owned(), Value::String(id)),
                        None => obj.remove("id"),
                    };
                }
                let staged = by_subject(&resource, options, staging).await?;
                Ok(Stage::Staged(Box::new(staged), Kind::Deposit))
            }
            WriteRequest::Update {
                id,
                mut resource,
                expected_version,
            } => {
                if resource.get("id").and_then(Value::as_str) != Some(id.as_str()) {
                    return Err(malformed(
                        "id",
                        "id-mismatch",
                        "the resource's id is the id in the URL",
                    ));
                }
                if !valid_id(&id) {
                    return Err(malformed(
                        "id",
                        "invalid-id",
                        "1 to 64 of A-Z, a-z, 0-9, - and .",
                    ));
                }
                let options = DepositOptions {
                    expected_version,
                    ..options
                };
                let resource_type = ehrshare_fhir::resource::type_of(&resource)
                    .unwrap_or_default()
                    .to_owned();
                let own = match server_id(&id) {
                    Some(u) => self
                        .own_staged(session, Own::Id(u), staging)
                        .await?
                        .filter(|r| r.resource_type == resource_type),
                    None => None,
                };
                let staged = match own {
                    // This record: the provider's own id goes back in, and the record's
                    // recipient.
                    Some(record) => {
                        let own_id = record
                            .source_id
                            .split_once('/')
                            .map_or(record.source_id.as_str(), |(_, id)| id);
                        resource["id"] = Value::String(own_id.to_owned());
                        self.stage_deposit(
                            session,
                            caller,
                            record.recipient_id,
                            &resource,
                            options,
                            staging,
                        )
                        .await?
                    }
                    // The provider's own id: update-as-create.
                    None => by_subject(&resource, options, staging).await?,
                };
                Ok(Stage::Staged(Box::new(staged), Kind::Deposit))
            }
            WriteRequest::Delete { resource_type, id } => {
                let record_id = server_id(&id).ok_or(AppError::NotFound)?;
                let own = self
                    .own_staged(session, Own::Id(record_id), staging)
                    .await?
                    .filter(|r| r.resource_type == resource_type)
                    .ok_or(AppError::NotFound)?;
                // Deleting what is deleted changes nothing and succeeds (R4), so a retry
                // after a lost answer is no error; for whom a delete would be.
                if own.status != RecordStatus::Current {
                    let asker = self.staged_asker(session, staging).await?;
                    if asker.launch_patient.is_some_and(|p| p != own.recipient_id) {
                        return Err(AppError::NotFound);
                    }
                    asker.require_scope(ehrshare_core::oauth::Access::Delete, &resource_type)?;
                    return Ok(Stage::Done(Box::new(Written::Deleted)));
                }
                let staged = self
                    .stage_withdrawal(session, caller, own.id, DELETE_REASON, staging)
                    .await?;
                Ok(Stage::Staged(Box::new(staged), Kind::Delete))
            }
        }
    }
}

/// How a record of the caller's provider is named: by its server id, or by the provider's
/// own (`Type/id`).
enum Own<'a> {
    Id(Uuid),
    Source(&'a str),
}

impl App {
    /// `If-None-Exist` found the provider's record: saying so says where it is, so it is
    /// decided as a deposit into it would be (the write scope, the access decision, a launch's
    /// patient), and audited.
    async fn answer_exists(
        &self,
        session: &Session,
        caller: &Caller,
        existing: &RecordRow,
        staging: &mut Staging,
    ) -> Result<(), AppError> {
        use ehrshare_core::access::Decision;
        let asker = self.staged_asker(session, staging).await?;
        asker.require_scope(ehrshare_core::oauth::Access::Write, &existing.resource_type)?;
        let (decision, mut entry) = self
            .decide_write_into(&asker, caller, "record.deposit", existing, None)
            .await?;
        entry.reason = Some("exists: If-None-Exist".to_owned());
        self.audit(entry).await?;
        match decision {
            Decision::Deny { reason } => Err(crate::access::deny_error(reason)),
            Decision::Permit { .. } => Ok(()),
        }
    }

    /// [`App::own_record`] and [`App::own_record_by_source`], with the staging's asker.
    async fn own_staged(
        &self,
        session: &Session,
        own: Own<'_>,
        staging: &mut Staging,
    ) -> Result<Option<RecordRow>, AppError> {
        let hcp = self.staged_asker(session, staging).await?.requester.hcp;
        Ok(match own {
            Own::Id(id) => match staging.read_by_id(id) {
                Some(read) => read,
                None => self.db().record(id).await?,
            }
            .filter(|r| r.source_hcp == hcp),
            Own::Source(source) => self.staged_by_source(hcp, source, staging).await?,
        })
    }
}

/// A transaction may touch a record once, and name each `fullUrl` once (R4: otherwise it
/// "SHALL fail").
fn distinct_targets(entries: &[BundleEntry]) -> Result<(), EntryRefused> {
    let mut urls = HashSet::new();
    let mut targets = HashSet::new();
    for (index, entry) in entries.iter().enumerate() {
        if let Some(url) = &entry.full_url
            && !urls.insert(url.as_str())
        {
            return Err(EntryRefused {
                index,
                error: malformed(
                    "fullUrl",
                    "duplicate-full-url",
                    "another entry has this fullUrl",
                ),
            });
        }
        let target = match &entry.request {
            WriteRequest::Create {
                own_id: Some(id), ..
            } => Some(id.clone()),
            WriteRequest::Create { resource, .. }
                if ehrshare_fhir::resource::type_of(resource) == Some("Patient") =>
            {
                resource
                    .get("id")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            }
            WriteRequest::Create { .. } => None,
            WriteRequest::Update { id, .. } | WriteRequest::Delete { id, .. } => Some(id.clone()),
        };
        if let Some(id) = target
            && !targets.insert(format!("{}/{id}", entry.request.resource_type()))
        {
            return Err(EntryRefused {
                index,
                error: malformed(
                    "request.url",
                    "duplicate-target",
                    "another entry of this transaction writes the same resource",
                ),
            });
        }
    }
    Ok(())
}

/// Replaces every `reference` that is a key of `resolved` with its value.
fn rewrite_references(value: &mut Value, resolved: &HashMap<String, String>) {
    if resolved.is_empty() {
        return;
    }
    match value {
        Value::Object(obj) => {
            for (key, child) in obj.iter_mut() {
                if key == "reference"
                    && let Value::String(text) = child
                {
                    if let Some(target) = resolved.get(text.as_str()) {
                        *text = target.clone();
                    }
                } else {
                    rewrite_references(child, resolved);
                }
            }
        }
        Value::Array(items) => {
            for item in items {
                rewrite_references(item, resolved);
            }
        }
        _ => {}
    }
}

/// Every `reference` of `value` that is still a `urn:uuid`, with its path (`.subject`), and
/// the uuid.
fn unresolved(value: &Value, path: &str, out: &mut Vec<(String, String)>) {
    match value {
        Value::Object(obj) => {
            for (key, child) in obj {
                let here = format!("{path}.{key}");
                match child {
                    Value::String(text) if key == "reference" => {
                        if let Some(id) = text.strip_prefix("urn:uuid:") {
                            out.push((here, id.to_owned()));
                        }
                    }
                    _ => unresolved(child, &here, out),
                }
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                unresolved(item, &format!("{path}[{i}]"), out);
            }
        }
        _ => {}
    }
}

/// A FHIR id: 1 to 64 of `A-Z a-z 0-9 - .`.
pub fn valid_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}

fn malformed(field: &str, code: &'static str, message: &str) -> AppError {
    AppError::Malformed {
        code,
        message: format!("{field}: {message}"),
        fields: vec![FieldError::new(field, code, message)],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn references_to_full_urls_are_rewritten_everywhere_and_nothing_else() {
        let mut resource = json!({
            "subject": {"reference": "urn:uuid:p"},
            "encounter": {"reference": "urn:uuid:e"},
            "performer": [{"reference": "Practitioner/1"}, {"reference": "urn:uuid:x"}],
            "note": [{"text": "urn:uuid:p"}]
        });
        resource[ehrshare_fhir::resource::TYPE_ELEMENT] = json!("Observation");
        let resolved: HashMap<String, String> = [
            ("urn:uuid:p".to_owned(), "Patient/r".to_owned()),
            ("urn:uuid:e".to_owned(), "Encounter/9".to_owned()),
        ]
        .into();
        rewrite_references(&mut resource, &resolved);
        assert_eq!(resource["subject"]["reference"], "Patient/r");
        assert_eq!(resource["encounter"]["reference"], "Encounter/9");
        assert_eq!(resource["performer"][0]["reference"], "Practitioner/1");
        assert_eq!(resource["performer"][1]["reference"], "urn:uuid:x");
        assert_eq!(resource["note"][0]["text"], "urn:uuid:p");
    }

    #[test]
    fn a_transaction_touches_a_resource_once() {
        let put = |id: &str| BundleEntry {
            full_url: None,
            request: WriteRequest::Update {
                id: id.to_owned(),
                resource: {
                    let mut r = json!({"id": id});
                    r[ehrshare_fhir::resource::TYPE_ELEMENT] = json!("Condition");
                    r
                },
                expected_version: None,
            },
        };
        assert!(distinct_targets(&[put("a"), put("b")]).is_ok());
        let e = distinct_targets(&[put("a"), put("b"), put("a")]).unwrap_err();
        assert_eq!(e.index, 2);
        assert_eq!(e.error.code(), "duplicate-target");
    }
}
