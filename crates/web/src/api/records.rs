//! `/api/v1/records/{id}`: one record, and marking it entered in error.

use axum::Json;
use axum::extract::{Path, Query, State};
use ehrshare_app::App;
use ehrshare_app::record::Record;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::api::json::ApiJson;
use crate::error::HttpError;
use crate::session::LoggedIn;

/// What to read (the summary, a domain's page, one record).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct SummaryQuery {
    /// Comma-separated domain codes (default: every domain the role may see).
    #[serde(default)]
    pub domains: Option<String>,
    /// A reason, for access outside a care episode (allowed, audited, alerted).
    #[serde(default)]
    pub reason: Option<String>,
}

/// A record as shown: its metadata and the FHIR resource.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RecordView {
    pub id: Uuid,
    pub recipient: Uuid,
    pub domain: String,
    pub resource_type: String,
    pub source_hcp: Uuid,
    pub version: i64,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: OffsetDateTime,
    /// The FHIR resource, as stored (canonical JSON, sent without re-serialising).
    #[schema(value_type = Object)]
    pub resource: Box<serde_json::value::RawValue>,
}

pub(crate) fn record_view(r: Record) -> RecordView {
    RecordView {
        resource: serde_json::value::RawValue::from_string(r.body)
            .unwrap_or_else(|_| serde_json::value::RawValue::NULL.to_owned()),
        id: r.id,
        recipient: r.recipient_id,
        domain: r.domain,
        resource_type: r.resource_type,
        source_hcp: r.source_hcp,
        version: r.version,
        updated_at: r.updated_at,
    }
}

/// `GET /api/v1/records/{id}`: one record (404 unless the caller may see it).
#[utoipa::path(get, path = "/api/v1/records/{id}", tag = "sharing",
    params(("id" = Uuid, Path, description = "Record id"),
           ("reason" = Option<String>, Query, description = "Reason for access outside a care episode")),
    responses((status = 200, description = "The record", body = RecordView),
              (status = 404, description = "Not there, or not for the caller to see", body = crate::error::ProblemBody, content_type = "application/problem+json")))]
pub async fn record(
    State(app): State<App>,
    LoggedIn { session, caller }: LoggedIn,
    Path(id): Path<Uuid>,
    Query(q): Query<SummaryQuery>,
) -> Result<Json<RecordView>, HttpError> {
    Ok(Json(record_view(
        app.read_record(&session, &caller, id, q.reason.as_deref())
            .await?,
    )))
}

/// Why a record was entered in error.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ErrorBody {
    pub reason: String,
}

/// `POST /api/v1/records/{id}/entered-in-error`: the depositing provider withdraws a record
/// (kept with its versions, no longer shown).
#[utoipa::path(post, path = "/api/v1/records/{id}/entered-in-error", tag = "sharing", request_body = ErrorBody,
    params(("id" = Uuid, Path, description = "Record id")),
    responses((status = 200, description = "Withdrawn", body = RecordView),
              (status = 404, description = "Not a current record of the caller's provider", body = crate::error::ProblemBody, content_type = "application/problem+json")))]
pub async fn entered_in_error(
    State(app): State<App>,
    LoggedIn { session, caller }: LoggedIn,
    Path(id): Path<Uuid>,
    ApiJson(body): ApiJson<ErrorBody>,
) -> Result<Json<RecordView>, HttpError> {
    Ok(Json(record_view(
        app.mark_entered_in_error(&session, &caller, id, &body.reason)
            .await?,
    )))
}
