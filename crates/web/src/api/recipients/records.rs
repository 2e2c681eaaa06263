//! `/api/v1/recipients/{id}/records`: deposits (a FHIR resource as sent) and a domain's
//! records, a page at a time.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use ehrshare_app::App;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::api::json::ApiJson;
use crate::api::records::{RecordView, record_view};
use crate::error::HttpError;
use crate::session::LoggedIn;

/// `POST /api/v1/recipients/{id}/records`: deposit a FHIR R4 resource (idempotent on the
/// provider's resource id; changed content is a new version). Without an `id` the server
/// assigns one; an `Idempotency-Key` makes a retry create nothing new.
#[utoipa::path(post, path = "/api/v1/recipients/{id}/records", tag = "sharing",
    params(("id" = Uuid, Path, description = "Recipient id"),
           ("Idempotency-Key" = Option<String>, Header, description = "The client's key for this deposit (1 to 200 visible ASCII characters, unique per provider): a retry with the same key and the same content gets the first answer and creates nothing; the same key with other content is 409 `idempotency-key-reused`")),
    request_body(content = Object, description = "A FHIR R4 resource of a shared type, validated against the published R4 definitions (ADR 0011); numbers keep their text; a key twice in one object is refused", content_type = "application/fhir+json"),
    responses((status = 201, description = "Deposited; `Location` names the record. A resource without `id` gets a server-assigned id, in the answer's resource", body = RecordView),
              (status = 200, description = "Deposited before, unchanged", body = RecordView),
              (status = 400, description = "`invalid-idempotency-key`", body = crate::error::ProblemBody, content_type = "application/problem+json"),
              (status = 403, description = "A denial reason (`consent-required`, `no-care-relationship`, ...)", body = crate::error::ProblemBody, content_type = "application/problem+json"),
              (status = 409, description = "`source-id-taken`, `idempotency-key-reused` or `changed-meanwhile`", body = crate::error::ProblemBody, content_type = "application/problem+json"),
              (status = 422, description = "`invalid-resource`, or `subject-mismatch`: each error with its path. Every reference to a patient in the resource (contained resources included) must name the recipient: `Patient/<recipient id>` (or an absolute URL ending so, or `urn:uuid:<recipient id>`), or by the recipient's identity document, `{\"identifier\": {\"system\": \"https://ehrshare.example/fhir/NamingSystem/<type>\", \"value\": <number>}}`, where `<type>` is `hkid`, `hk-birth-certificate`, `macao-id` or `mainland-travel-permit`, or for a passport or other document the type and issuing place (`passport-GB`); a patient or group contained in the resource, a subject given by display alone, and a reference to anything but a Patient in a subject or patient element are refused; a deposited Patient carries that identifier. `invalid-resource` lists at most 100 problems", body = crate::error::ProblemBody, content_type = "application/problem+json")))]
pub async fn deposit(
    State(app): State<App>,
    LoggedIn { session, caller }: LoggedIn,
    Path(id): Path<Uuid>,
    headers: axum::http::HeaderMap,
    ApiJson(text): ApiJson<Box<serde_json::value::RawValue>>,
) -> Result<Response, HttpError> {
    let key = match headers.get("idempotency-key") {
        Some(v) => Some(v.to_str().map_err(|_| {
            HttpError(ehrshare_app::AppError::Malformed {
                code: "invalid-idempotency-key",
                message: "Idempotency-Key: visible ASCII characters".to_owned(),
                fields: Vec::new(),
            })
        })?),
        None => None,
    };
    let resource = App::read_resource(text.get().as_bytes())?;
    let d = app
        .deposit_keyed(&session, &caller, id, &resource, key)
        .await?;
    let status = if d.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let location = format!("/api/v1/records/{}", d.record.id);
    Ok((
        status,
        [(axum::http::header::LOCATION, location)],
        Json(record_view(d.record)),
    )
        .into_response())
}

/// A page of one domain.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct PageQuery {
    pub domain: String,
    #[serde(default)]
    pub page: usize,
    #[serde(default = "default_per_page")]
    pub per_page: usize,
    #[serde(default)]
    pub reason: Option<String>,
}

pub(crate) fn default_per_page() -> usize {
    20
}

/// A page of a domain's records.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RecordPage {
    pub domain: String,
    pub page: usize,
    pub per_page: usize,
    /// All the records the caller may see in the domain.
    pub total: usize,
    pub records: Vec<RecordView>,
}

/// `GET /api/v1/recipients/{id}/records?domain=&page=&per_page=`: one domain's records, paged.
#[utoipa::path(get, path = "/api/v1/recipients/{id}/records", tag = "sharing",
    params(("id" = Uuid, Path, description = "Recipient id"),
           ("domain" = String, Query, description = "A domain code"),
           ("page" = Option<usize>, Query, description = "From 0"),
           ("per_page" = Option<usize>, Query, description = "1 to 200, default 20")),
    responses((status = 200, description = "The page", body = RecordPage),
              (status = 403, description = "A denial reason", body = crate::error::ProblemBody, content_type = "application/problem+json")))]
pub async fn domain_records(
    State(app): State<App>,
    LoggedIn { session, caller }: LoggedIn,
    Path(id): Path<Uuid>,
    Query(q): Query<PageQuery>,
) -> Result<Response, HttpError> {
    let domain = ehrshare_core::domain::Domain::parse(&q.domain).ok_or_else(|| {
        HttpError(ehrshare_app::AppError::Invalid {
            code: "invalid-domain",
            message: format!("unknown domain {:?}", q.domain),
            fields: Vec::new(),
        })
    })?;
    let s = app
        .domain_records(
            &session,
            &caller,
            id,
            domain,
            (q.page, q.per_page),
            q.reason.as_deref(),
        )
        .await?;
    let page = crate::api::listed_json::page(domain, q.page, q.per_page.clamp(1, 200), &s)?;
    Ok(crate::api::listed_json::response(page))
}
