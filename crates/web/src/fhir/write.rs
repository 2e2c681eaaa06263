//! Writes: `POST /fhir/{type}` (create, and conditional create with `If-None-Exist`),
//! `PUT /fhir/{type}/{id}` (update, with `If-Match`; update-as-create by the provider's own
//! id) and `DELETE /fhir/{type}/{id}` (the record entered in error: its versions stay, a
//! read answers 410). Each is a deposit: validated, decided, and committed with its audit
//! entry (`App::deposit_with`).
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
use ehrshare_app::deposit::DepositOptions;
use ehrshare_app::record::Record;
use ehrshare_app::{App, AppError};
use ehrshare_core::record::RecordStatus;
use ehrshare_fhir::capability::TypeInteraction;
use ehrshare_fhir::operation_outcome::OperationOutcome;
use serde_json::Value;

use super::format::{FhirJson, bad_parameter, fhir_json, server_id, with_version};
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
enum Return {
    Minimal,
    Representation,
    OperationOutcome,
}

fn preference(headers: &HeaderMap) -> Return {
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
    let location = format!(
        "{}/{}/{}/_history/{}",
        base.url, record.resource_type, record.id, record.version
    );
    if let Ok(v) = HeaderValue::from_str(&location) {
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
    let mut resource = resource_of(&resource_type, text.get())?;
    let own_id = match headers.get("if-none-exist") {
        None => None,
        Some(condition) => Some(own_id_of(&app, &session, condition).await?),
    };
    if let Some(own_id) = &own_id {
        let source = format!("{resource_type}/{own_id}");
        if let Some(existing) = app.own_record_by_source(&session, &source).await? {
            // It exists: nothing is created, and R4 answers 200 with where it is. Its content
            // would leave only through a read (a clinic system, which never reads, retries
            // here), so the answer has none, whatever `Prefer` asked.
            let mut response = with_version(
                StatusCode::OK.into_response(),
                existing.version,
                existing.updated_at,
            );
            let location = format!(
                "{}/{}/{}/_history/{}",
                base.url, existing.resource_type, existing.id, existing.version
            );
            if let Ok(v) = HeaderValue::from_str(&location) {
                response.headers_mut().insert(LOCATION, v);
            }
            return Ok(response);
        }
    }
    if let Some(obj) = resource.as_object_mut() {
        match own_id {
            Some(id) => obj.insert("id".to_owned(), Value::String(id)),
            None => obj.remove("id"),
        };
    }
    let d = app
        .deposit_by_subject(&session, &caller, &resource, DepositOptions::default())
        .await?;
    written(&base, &headers, StatusCode::CREATED, &d.record)
}

/// The provider's own id an `If-None-Exist` condition names.
async fn own_id_of(
    app: &App,
    session: &ehrshare_app::auth::Session,
    condition: &HeaderValue,
) -> Result<String, AppError> {
    let unsupported = || {
        bad_parameter(
            "If-None-Exist",
            "unsupported-condition",
            "the one condition supported is identifier=<your provider's id system>|<your id>",
        )
    };
    let text = condition.to_str().map_err(|_| unsupported())?;
    let pairs: Vec<(String, String)> =
        serde_urlencoded::from_str(text).map_err(|_| unsupported())?;
    let [(name, value)] = pairs.as_slice() else {
        return Err(unsupported());
    };
    let system = app.own_source_system(session).await?;
    match value.split_once('|') {
        Some((s, id)) if name == "identifier" && s == system && valid_id(id) => Ok(id.to_owned()),
        _ => Err(unsupported()),
    }
}

/// A FHIR id: 1 to 64 of `A-Z a-z 0-9 - .`.
fn valid_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}

/// `If-Match`: `W/"3"` (or `"3"`).
fn expected_version(headers: &HeaderMap) -> Result<Option<i64>, AppError> {
    let Some(v) = headers.get("if-match") else {
        return Ok(None);
    };
    v.to_str()
        .ok()
        .map(|t| t.trim().trim_start_matches("W/").trim_matches('"'))
        .and_then(|n| n.parse::<i64>().ok())
        .filter(|n| *n >= 1)
        .map(Some)
        .ok_or_else(|| {
            bad_parameter(
                "If-Match",
                "invalid-etag",
                "a version's ETag, such as W/\"3\"",
            )
        })
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
    let mut resource = resource_of(&resource_type, text.get())?;
    if resource.get("id").and_then(Value::as_str) != Some(id.as_str()) {
        return Err(bad_parameter(
            "id",
            "id-mismatch",
            "the resource's id is the id in the URL",
        )
        .into());
    }
    if !valid_id(&id) {
        return Err(bad_parameter("id", "invalid-id", "1 to 64 of A-Z, a-z, 0-9, - and .").into());
    }
    let options = DepositOptions {
        idempotency_key: None,
        expected_version: expected_version(&headers)?,
    };
    let record_id = server_id(&id);
    let own = match record_id {
        Some(u) => app
            .own_record(&session, u)
            .await?
            .filter(|r| r.resource_type == resource_type),
        None => None,
    };
    let d = match own {
        // This record: the provider's own id goes back in, and the record's recipient.
        Some(record) => {
            let own_id = record
                .source_id
                .split_once('/')
                .map_or(record.source_id.as_str(), |(_, id)| id);
            resource["id"] = Value::String(own_id.to_owned());
            app.deposit_with(&session, &caller, record.recipient_id, &resource, options)
                .await?
        }
        // The provider's own id: update-as-create.
        None => {
            app.deposit_by_subject(&session, &caller, &resource, options)
                .await?
        }
    };
    let status = if d.created && d.record.version == 1 {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    written(&base, &headers, status, &d.record)
}

/// `delete`: the record entered in error.
pub async fn delete(
    State(app): State<App>,
    LoggedIn { session, caller }: LoggedIn,
    _: FhirJson,
    Path((resource_type, id)): Path<(String, String)>,
) -> Result<Response, HttpError> {
    if !serves(&resource_type, TypeInteraction::Delete) {
        return Err(AppError::NotFound.into());
    }
    let record_id = server_id(&id).ok_or(AppError::NotFound)?;
    let own = app
        .own_record(&session, record_id)
        .await?
        .filter(|r| r.resource_type == resource_type)
        .ok_or(AppError::NotFound)?;
    // Deleting what is deleted changes nothing and succeeds (R4), so a retry after a lost
    // answer is no error.
    if own.status == RecordStatus::Current {
        app.mark_entered_in_error(
            &session,
            &caller,
            own.id,
            "withdrawn through the FHIR API (DELETE)",
        )
        .await?;
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}
