//! Access logs and alerts over JSON: the recipient's own log, a provider's for its user
//! administrators, any for the office's privacy officers; alerts and their review.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use ehrshare_app::access_log::AuditFilter;
use ehrshare_app::access_log::LogLine;
use ehrshare_app::{App, AppError};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::api::json::ApiJson;
use crate::error::HttpError;
use crate::session::LoggedIn;

/// One access, as the log shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct LogLineView {
    pub seq: u64,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub at: OffsetDateTime,
    pub action: String,
    /// `allowed` or `denied`.
    pub outcome: String,
    pub denial_reason: Option<String>,
    /// `hcp-user`, `clinic-system`, `recipient`, `sdm`, `office`, `system`, `anonymous`.
    pub actor_kind: String,
    pub actor_name_en: Option<String>,
    pub actor_name_zh: Option<String>,
    /// The acting account's user name: unique, plain ASCII, unlike a display name that could
    /// look like another person's.
    pub actor_user_name: Option<String>,
    pub role: Option<String>,
    pub hcp: Option<Uuid>,
    pub hcp_name_en: Option<String>,
    pub hcp_name_zh: Option<String>,
    pub sdm: Option<Uuid>,
    pub recipient: Option<Uuid>,
    pub domains: Vec<String>,
    /// The purpose stated, if any.
    pub reason: Option<String>,
    /// What a recorded disclosure gave to whom (the recipient's log, once not withheld).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disclosure: Option<DisclosureView>,
    /// The records a read released, exactly, each at the version that left; empty for
    /// anything else (a refusal, a deposit, a login).
    pub records: Vec<LoggedRecord>,
    /// False when the record history no longer gives back what this entry says left (it was
    /// altered; `ehrshare audit verify` names the entry): `records` is then empty.
    pub records_checked: bool,
}

/// A record a read released.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct LoggedRecord {
    pub id: Uuid,
    /// The version that left (`null` in reads logged before versions were recorded).
    pub version: Option<u64>,
    /// Every version up to `version` left (an instance history).
    pub history: bool,
}

/// A disclosure outside care (SPEC 3.11).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DisclosureView {
    pub id: Uuid,
    /// `court-order`, `police`, `coroner` or `research`.
    pub legal_basis: String,
    pub requesting_body: String,
    pub data_disclosed: String,
    /// `YYYY-MM-DD` (Hong Kong's date).
    pub disclosed_on: String,
    /// Until when the recipient is not told (none: told at once).
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub withhold_until: Option<OffsetDateTime>,
}

impl From<ehrshare_app::disclosure::DisclosureRow> for DisclosureView {
    fn from(d: ehrshare_app::disclosure::DisclosureRow) -> Self {
        DisclosureView {
            id: d.id,
            legal_basis: d.legal_basis,
            requesting_body: d.requesting_body,
            data_disclosed: d.data_disclosed,
            disclosed_on: d.disclosed_on,
            withhold_until: d.withhold_until,
        }
    }
}

fn line(l: LogLine) -> LogLineView {
    let e = l.entry.entry;
    LogLineView {
        seq: l.entry.seq,
        at: e.at,
        action: e.action,
        outcome: e.outcome.code().to_owned(),
        denial_reason: e.denial_reason,
        actor_kind: e.actor.kind.code().to_owned(),
        actor_name_en: l.actor_name_en,
        actor_name_zh: l.actor_name_zh,
        actor_user_name: l.actor_user_name,
        role: e.actor.role,
        hcp: e.actor.hcp,
        hcp_name_en: l.hcp_name_en,
        hcp_name_zh: l.hcp_name_zh,
        sdm: e.sdm,
        recipient: e.recipient,
        domains: e.domains,
        reason: e.reason,
        disclosure: l.disclosure.map(DisclosureView::from),
        records: l
            .records
            .into_iter()
            .map(|r| LoggedRecord {
                id: r.id,
                version: r.version,
                history: r.history,
            })
            .collect(),
        records_checked: l.records_checked,
    }
}

/// Paging: entries before this sequence number.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct LogQuery {
    #[serde(default)]
    pub before: Option<u64>,
    #[serde(default)]
    pub recipient: Option<Uuid>,
    #[serde(default)]
    pub provider: Option<Uuid>,
}

/// Paging and filters of a recipient's own access log.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OwnLogQuery {
    #[serde(default)]
    pub before: Option<u64>,
    /// Only the accesses by this provider's users.
    #[serde(default)]
    pub provider: Option<Uuid>,
    /// From this Hong Kong day (`YYYY-MM-DD`), inclusive.
    #[serde(default)]
    pub from: Option<String>,
    /// To this Hong Kong day, inclusive.
    #[serde(default)]
    pub to: Option<String>,
}

impl OwnLogQuery {
    /// The filters as the store reads them; a date that is not one is 422 naming it.
    pub fn narrowing(&self) -> Result<ehrshare_app::access_log::LogNarrowing, HttpError> {
        let day = |field: &str, text: &Option<String>| match text.as_deref().map(str::trim) {
            None | Some("") => Ok(None),
            Some(t) => ehrshare_core::registration::parse_date(t)
                .map(Some)
                .ok_or_else(|| {
                    HttpError(ehrshare_app::error::invalid(
                        field,
                        "invalid-date",
                        "a date as YYYY-MM-DD",
                    ))
                }),
        };
        let (from, to) =
            ehrshare_core::clock::hong_kong_days(day("/from", &self.from)?, day("/to", &self.to)?);
        Ok(ehrshare_app::access_log::LogNarrowing {
            hcp: self.provider,
            from,
            to,
        })
    }
}

/// `GET /api/v1/me/recipients/{id}/access-log`: who looked at the record.
#[utoipa::path(get, path = "/api/v1/me/recipients/{id}/access-log", tag = "me",
    params(("id" = Uuid, Path, description = "Recipient id"),
           ("before" = Option<u64>, Query, description = "Older than this sequence number"),
           ("provider" = Option<Uuid>, Query, description = "Only the accesses by this provider's users"),
           ("from" = Option<String>, Query, description = "From this Hong Kong day (YYYY-MM-DD), inclusive"),
           ("to" = Option<String>, Query, description = "To this Hong Kong day (YYYY-MM-DD), inclusive")),
    responses((status = 200, description = "Newest first, 100 a page", body = [LogLineView]),
              (status = 403, description = "`sdm-authority-ended`", body = crate::error::ProblemBody, content_type = "application/problem+json"),
              (status = 422, description = "`invalid-date`", body = crate::error::ProblemBody, content_type = "application/problem+json")))]
pub async fn recipient_log(
    State(app): State<App>,
    LoggedIn { session, .. }: LoggedIn,
    Path(id): Path<Uuid>,
    Query(q): Query<OwnLogQuery>,
) -> Result<Json<Vec<LogLineView>>, HttpError> {
    let lines = app
        .recipient_access_log(&session, id, q.narrowing()?, q.before)
        .await?;
    Ok(Json(lines.into_iter().map(line).collect()))
}

/// `GET /api/v1/providers/{id}/access-log`: what the provider's users did.
#[utoipa::path(get, path = "/api/v1/providers/{id}/access-log", tag = "accounts",
    params(("id" = Uuid, Path, description = "Provider id"), ("before" = Option<u64>, Query, description = "Older than this sequence number")),
    responses((status = 200, description = "Newest first, 100 a page", body = [LogLineView])))]
pub async fn provider_log(
    State(app): State<App>,
    LoggedIn { session, .. }: LoggedIn,
    Path(id): Path<Uuid>,
    Query(q): Query<LogQuery>,
) -> Result<Json<Vec<LogLineView>>, HttpError> {
    let lines = app.provider_access_log(&session, id, q.before).await?;
    Ok(Json(lines.into_iter().map(line).collect()))
}

/// `GET /api/v1/office/access-log?recipient=ID` or `?provider=ID`: for privacy officers.
#[utoipa::path(get, path = "/api/v1/office/access-log", tag = "accounts",
    params(("recipient" = Option<Uuid>, Query, description = "A recipient's log"),
           ("provider" = Option<Uuid>, Query, description = "A provider's users' log"),
           ("before" = Option<u64>, Query, description = "Older than this sequence number")),
    responses((status = 200, description = "Newest first, 100 a page", body = [LogLineView])))]
pub async fn office_log(
    State(app): State<App>,
    LoggedIn { session, .. }: LoggedIn,
    Query(q): Query<LogQuery>,
) -> Result<Json<Vec<LogLineView>>, HttpError> {
    let filter = match (q.recipient, q.provider) {
        (Some(r), None) => AuditFilter::Recipient(r),
        (None, Some(p)) => AuditFilter::Provider(p),
        _ => {
            return Err(HttpError(AppError::Malformed {
                code: "malformed-request",
                message: "name recipient= or provider=".to_owned(),
                fields: Vec::new(),
            }));
        }
    };
    let lines = app.office_access_log(&session, filter, q.before).await?;
    Ok(Json(lines.into_iter().map(line).collect()))
}

/// An alert.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AlertView {
    pub id: Uuid,
    pub rule: String,
    pub hcp: Option<Uuid>,
    pub account: Option<Uuid>,
    pub recipient: Option<Uuid>,
    pub detail: Option<String>,
    /// `open` or `reviewed`.
    pub status: String,
    pub note: Option<String>,
    /// The audit entry it is about (a patient's report names the access reported).
    pub entry: Option<i64>,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
}

fn alert(a: ehrshare_app::access_log::Alert) -> AlertView {
    AlertView {
        id: a.id,
        rule: a.rule,
        hcp: a.hcp_id,
        account: a.account_id,
        recipient: a.recipient_id,
        detail: a.detail,
        status: a.status.code().to_owned(),
        note: a.note,
        entry: a.audit_seq,
        created_at: a.created_at,
    }
}

/// A report of a suspicious access as its reporter sees it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ReportView {
    pub id: Uuid,
    /// The access-log entry reported.
    pub entry: Option<i64>,
    /// What the reporter said.
    pub words: Option<String>,
    /// `open` (being looked into) or `reviewed` (concluded).
    pub status: String,
    /// The outcome, once reviewed.
    pub outcome: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
}

impl From<ehrshare_app::access_log::Alert> for ReportView {
    fn from(a: ehrshare_app::access_log::Alert) -> Self {
        ReportView {
            id: a.id,
            entry: a.audit_seq,
            words: a.detail,
            status: a.status.code().to_owned(),
            outcome: a.note,
            created_at: a.created_at,
        }
    }
}

/// A report of a suspicious access.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReportBody {
    /// What looks wrong (up to 1000 characters).
    #[schema(max_length = 1000)]
    pub words: String,
}

/// `POST /api/v1/me/recipients/{id}/access-log/{seq}/report`: report an access as suspicious:
/// a case for the provider's user administrators and the office's privacy officers, beside
/// the alerts; the reporter is told the outcome.
#[utoipa::path(post, path = "/api/v1/me/recipients/{id}/access-log/{seq}/report", tag = "me",
    params(("id" = Uuid, Path, description = "Recipient id"), ("seq" = u64, Path, description = "The entry's sequence number")),
    request_body = ReportBody,
    responses((status = 201, description = "Reported", body = ReportView),
              (status = 403, description = "`sdm-authority-ended`", body = crate::error::ProblemBody, content_type = "application/problem+json"),
              (status = 404, description = "Not an entry of this recipient's log", body = crate::error::ProblemBody, content_type = "application/problem+json"),
              (status = 409, description = "`already-reported`, `too-many-open-reports` (ten at once)", body = crate::error::ProblemBody, content_type = "application/problem+json"),
              (status = 422, description = "`report-words-required`", body = crate::error::ProblemBody, content_type = "application/problem+json")))]
pub async fn report(
    State(app): State<App>,
    LoggedIn { session, caller }: LoggedIn,
    Path((id, seq)): Path<(Uuid, u64)>,
    ApiJson(body): ApiJson<ReportBody>,
) -> Result<(StatusCode, Json<ReportView>), HttpError> {
    let r = app
        .report_access(&session, &caller, id, seq, &body.words)
        .await?;
    Ok((StatusCode::CREATED, Json(r.into())))
}

/// `GET /api/v1/me/recipients/{id}/reports`: the recipient's reports and their outcomes.
#[utoipa::path(get, path = "/api/v1/me/recipients/{id}/reports", tag = "me",
    params(("id" = Uuid, Path, description = "Recipient id")),
    responses((status = 200, description = "Newest first", body = [ReportView]),
              (status = 404, description = "Not a recipient the person acts for", body = crate::error::ProblemBody, content_type = "application/problem+json")))]
pub async fn reports(
    State(app): State<App>,
    LoggedIn { session, caller }: LoggedIn,
    Path(id): Path<Uuid>,
) -> Result<Json<Vec<ReportView>>, HttpError> {
    let list = app.own_reports(&session, &caller, id).await?;
    Ok(Json(list.into_iter().map(ReportView::from).collect()))
}

/// `GET /api/v1/providers/{id}/alerts`: the provider's alerts (user administrators).
#[utoipa::path(get, path = "/api/v1/providers/{id}/alerts", tag = "accounts",
    params(("id" = Uuid, Path, description = "Provider id")),
    responses((status = 200, description = "Newest first", body = [AlertView])))]
pub async fn provider_alerts(
    State(app): State<App>,
    LoggedIn { session, .. }: LoggedIn,
    Path(id): Path<Uuid>,
) -> Result<Json<Vec<AlertView>>, HttpError> {
    Ok(Json(
        app.alerts(&session, Some(id))
            .await?
            .into_iter()
            .map(alert)
            .collect(),
    ))
}

/// `GET /api/v1/office/alerts`: every open alert (privacy officers).
#[utoipa::path(get, path = "/api/v1/office/alerts", tag = "accounts",
    responses((status = 200, description = "Newest first", body = [AlertView])))]
pub async fn office_alerts(
    State(app): State<App>,
    LoggedIn { session, .. }: LoggedIn,
) -> Result<Json<Vec<AlertView>>, HttpError> {
    Ok(Json(
        app.alerts(&session, None)
            .await?
            .into_iter()
            .map(alert)
            .collect(),
    ))
}

/// A review.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReviewBody {
    #[schema(max_length = 2000)]
    pub note: String,
}

/// `POST /api/v1/alerts/{id}/review`: mark an alert reviewed, with a note.
#[utoipa::path(post, path = "/api/v1/alerts/{id}/review", tag = "accounts", request_body = ReviewBody,
    params(("id" = Uuid, Path, description = "Alert id")),
    responses((status = 204, description = "Reviewed"),
              (status = 409, description = "`already-reviewed`", body = crate::error::ProblemBody, content_type = "application/problem+json")))]
pub async fn review(
    State(app): State<App>,
    LoggedIn { session, caller }: LoggedIn,
    Path(id): Path<Uuid>,
    ApiJson(body): ApiJson<ReviewBody>,
) -> Result<StatusCode, HttpError> {
    app.review_alert(&session, &caller, id, &body.note).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// An entry's inclusion proof (RFC 6962 / 9162) in a signed head.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ProofView {
    pub seq: u64,
    /// The entry's canonical bytes, hex: the leaf is SHA-256(0x00 || these).
    pub canonical: String,
    pub leaf_hash: String,
    /// The signed head's size.
    pub tree_size: u64,
    /// The signed head's root, which the proof leads to.
    pub root: String,
    /// The audit path, leaf to root, hex.
    pub proof: Vec<String>,
    /// The signed head (also at `/api/v1/audit/heads`, with the key that signs it).
    pub head: crate::api::transparency::HeadView,
}

/// Which signed head to prove an entry in.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProofQuery {
    /// A published head's size (default: the latest).
    #[serde(default)]
    pub tree_size: Option<u64>,
}

/// `GET /api/v1/me/recipients/{id}/access-log/{seq}/proof`: prove an entry about the recipient
/// is in the log, in a signed head the server publishes (never the live root).
#[utoipa::path(get, path = "/api/v1/me/recipients/{id}/access-log/{seq}/proof", tag = "me",
    params(("id" = Uuid, Path, description = "Recipient id"), ("seq" = u64, Path, description = "Entry sequence number"),
           ("tree_size" = Option<u64>, Query, description = "A published head's size (default: the latest)")),
    responses((status = 200, description = "The proof", body = ProofView),
              (status = 404, description = "Not an entry about this recipient, or no such head", body = crate::error::ProblemBody, content_type = "application/problem+json"),
              (status = 409, description = "`not-yet-checkpointed`: no signed head covers it yet; the message says by when one will", body = crate::error::ProblemBody, content_type = "application/problem+json")))]
pub async fn entry_proof(
    State(app): State<App>,
    LoggedIn { session, .. }: LoggedIn,
    Path((id, seq)): Path<(Uuid, u64)>,
    Query(q): Query<ProofQuery>,
) -> Result<Json<ProofView>, HttpError> {
    use ehrshare_core::audit::checkpoint::hex;
    let (entry, proof, head) = app
        .recipient_entry_proof_signed(&session, id, seq, q.tree_size)
        .await?;
    Ok(Json(ProofView {
        seq,
        canonical: hex(&entry.canonical_bytes()),
        leaf_hash: hex(&entry.leaf_hash()),
        tree_size: head.size,
        root: hex(&head.root),
        proof: proof.iter().map(|h| hex(h)).collect(),
        head: (&head).into(),
    }))
}
