//! Writes: `POST /fhir/{type}` (create, and conditional create with `If-None-Exist`),
//! `PUT /fhir/{type}/{id}` (update, with `If-Match`; update-as-create by the provider's own
//! id) and `DELETE /fhir/{type}/{id}` (the record entered in error: its versions stay, a
//! read answers 410). Each is a deposit: validated, decided, and committed with its audit
//! entry (`ehrshare_app::fhir_write`, which Bundles share).
//!
//! Ids: a record's FHIR id is the server's record id. A provider's own id for a resource is
//! kept as an identifier in that provider's system (`ehrshare_fhir::served`). `PUT` with a
//! record id updates that record (only its provider may); `PUT` with any other id is the
//! provider's own id: it updates the record the provider deposited under it, or creates one.
//! `POST` ignores a resource's `id` (FHIR's create), unless `If-None-Exist` names the
//! provider's own id: `identifier={provider system}|{id}`, the one condition supported.

use axum::Extension;
use axum::extract::{Path, State};
use axum::http::header::{ETAG, LOCATION};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use ehrshare_app::fhir_write::{WriteRequest, Written, valid_id};
use ehrshare_app::record::Record;
use ehrshare_app::{App, AppError};
use ehrshare_fhir::capability::TypeInteraction;
use ehrshare_fhir::operation_outcome::OperationOutcome;
use serde_json::Value;

use super::format::{FhirJson, bad_parameter, fhir_json, with_version};
use super::instance::served;
use super::served::{FhirBase, serves};
use crate::api::json::ApiJson;
use crate::error::HttpError;
use crate::session::LoggedIn;

/// The body as a resource of `resource_type`.
fn resource_of(resource_type: &str, text: &str) -> Result<Value, AppError> {
    let resource = App::read_resource(text.as_bytes())?;
    if ehrshare_fhir::resource::type_of(&resource) != Some(resource_type) {
        return Err(bad_parameter(
            ehrshare_fhir::resource::TYPE_ELEMENT,
            "resource-type-mismatch",
            &format!("the body is not a {resource_type}"),
        ));
    }
    Ok(resource)
}

/// What the client asked to get back (`Prefer: return=...`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Return {
    Minimal,
    Representation,
    OperationOutcome,
}

pub(super) fn preference(headers: &HeaderMap) -> Return {
    let prefer = headers
        .get_all("prefer")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split([',', ';']))
        .map(str::trim)
        .find_map(|p| p.strip_prefix("return="));
    match prefer {
        Some("minimal") => Return::Minimal,
        Some("OperationOutcome") => Return::OperationOutcome,
        _ => Return::Representation,
    }
}

/// The answer to a write that left `record` at its current version.
fn written(
    base: &FhirBase,
    headers: &HeaderMap,
    status: StatusCode,
    record: &Record,
) -> Result<Response, HttpError> {
    let response = match preference(headers) {
        Return::Representation => {
            let mut r = served(record)?;
            *r.status_mut() = status;
            r
        }
        Return::Minimal => with_version(status.into_response(), record.version, record.updated_at),
        Return::OperationOutcome => {
            let outcome = OperationOutcome::information(&format!(
                "{} {} is at version {}",
                record.resource_type, record.id, record.version
            ));
            with_version(
                fhir_json(status, serde_json::to_string(&outcome).unwrap_or_default()),
                record.version,
                record.updated_at,
            )
        }
    };
    let mut response = response;
    if let Ok(v) = HeaderValue::from_str(&location(base, record)) {
        response.headers_mut().insert(LOCATION, v);
    }
    if let Ok(v) = HeaderValue::from_str(&ehrshare_fhir::served::etag(record.version)) {
        response.headers_mut().insert(ETAG, v);
    }
    Ok(response)
}

/// `create`.
pub async fn create(
    State(app): State<App>,
    Extension(base): Extension<FhirBase>,
    LoggedIn { session, caller }: LoggedIn,
    _: FhirJson,
    Path(resource_type): Path<String>,
    headers: HeaderMap,
    ApiJson(text): ApiJson<Box<serde_json::value::RawValue>>,
) -> Result<Response, HttpError> {
    if !serves(&resource_type, TypeInteraction::Create) {
        return Err(AppError::NotFound.into());
    }
    let resource = resource_of(&resource_type, text.get())?;
    let own_id = match headers.get("if-none-exist") {
        None => None,
        Some(condition) => Some(own_id_of(&app, &session, condition).await?),
    };
    let w = app
        .fhir_write(&session, &caller, WriteRequest::Create { resource, own_id })
        .await?;
    answer(&base, &headers, &w)
}

/// The answer to a write that is done.
pub(super) fn answer(
    base: &FhirBase,
    headers: &HeaderMap,
    w: &Written,
) -> Result<Response, HttpError> {
    match w {
        Written::Stored { record, created } => {
            let status = if *created {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            };
            written(base, headers, status, record)
        }
        // It exists: nothing is created, and R4 answers 200 with where it is. Its content
        // would leave only through a read (a clinic system, which never reads, retries
        // here), so the answer has none, whatever `Prefer` asked.
        Written::Exists(existing) => {
            let mut response = with_version(
                StatusCode::OK.into_response(),
                existing.version,
                existing.updated_at,
            );
            if let Ok(v) = HeaderValue::from_str(&location(base, existing)) {
                response.headers_mut().insert(LOCATION, v);
            }
            Ok(response)
        }
        Written::Deleted => Ok(StatusCode::NO_CONTENT.into_response()),
    }
}

/// Where a record's current version is: a deposited Patient is the demographics of the
/// registered person, whose URL it answers (ADR 0014).
pub(super) fn location(base: &FhirBase, record: &Record) -> String {
    if record.resource_type == "Patient" {
        format!("{}/Patient/{}", base.url, record.recipient_id)
    } else {
        format!(
            "{}/{}/{}/_history/{}",
            base.url, record.resource_type, record.id, record.version
        )
    }
}

/// The provider's own id an `If-None-Exist` condition names.
pub(super) async fn own_id_of(
    app: &App,
    session: &ehrshare_app::auth::Session,
    condition: &HeaderValue,
) -> Result<String, AppError> {
    let text = condition.to_str().map_err(|_| unsupported_condition())?;
    own_id_in(app, session, text).await
}

fn unsupported_condition() -> AppError {
    bad_parameter(
        "If-None-Exist",
        "unsupported-condition",
        "the one condition supported is identifier=<your provider's id system>|<your id>",
    )
}

/// The provider's own id a condition's text names.
pub(super) async fn own_id_in(
    app: &App,
    session: &ehrshare_app::auth::Session,
    text: &str,
) -> Result<String, AppError> {
    let pairs: Vec<(String, String)> =
        serde_urlencoded::from_str(text).map_err(|_| unsupported_condition())?;
    let [(name, value)] = pairs.as_slice() else {
        return Err(unsupported_condition());
    };
    let system = app.own_source_system(session).await?;
    match value.split_once('|') {
        Some((s, id)) if name == "identifier" && s == system && valid_id(id) => Ok(id.to_owned()),
        _ => Err(unsupported_condition()),
    }
}

/// `If-Match`: `W/"3"` (or `"3"`).
fn expected_version(headers: &HeaderMap) -> Result<Option<i64>, AppError> {
    headers
        .get("if-match")
        .map(|v| etag_version(v.to_str().unwrap_or_default(), "If-Match"))
        .transpose()
}

/// The version an ETag names (`W/"3"` or `"3"`); `field` names where it came from.
pub(super) fn etag_version(text: &str, field: &str) -> Result<i64, AppError> {
    Some(text.trim().trim_start_matches("W/").trim_matches('"'))
        .and_then(|n| n.parse::<i64>().ok())
        .filter(|n| *n >= 1)
        .ok_or_else(|| bad_parameter(field, "invalid-etag", "a version's ETag, such as W/\"3\""))
}

/// `update`.
pub async fn update(
    State(app): State<App>,
    Extension(base): Extension<FhirBase>,
    LoggedIn { session, caller }: LoggedIn,
    _: FhirJson,
    Path((resource_type, id)): Path<(String, String)>,
    headers: HeaderMap,
    ApiJson(text): ApiJson<Box<serde_json::value::RawValue>>,
) -> Result<Response, HttpError> {
    if !serves(&resource_type, TypeInteraction::Update) {
        return Err(AppError::NotFound.into());
    }
    let resource = resource_of(&resource_type, text.get())?;
    let request = WriteRequest::Update {
        id,
        resource,
        expected_version: expected_version(&headers)?,
    };
    let w = app.fhir_write(&session, &caller, request).await?;
    answer(&base, &headers, &w)
}

/// `delete`: the record entered in error.
pub async fn delete(
    State(app): State<App>,
    Extension(base): Extension<FhirBase>,
    LoggedIn { session, caller }: LoggedIn,
    _: FhirJson,
    Path((resource_type, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, HttpError> {
    if !serves(&resource_type, TypeInteraction::Delete) {
        return Err(AppError::NotFound.into());
    }
    let w = app
        .fhir_write(
            &session,
            &caller,
            WriteRequest::Delete { resource_type, id },
        )
        .await?;
    answer(&base, &headers, &w)
}
