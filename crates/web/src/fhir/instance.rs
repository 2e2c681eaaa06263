//! `GET /fhir/{type}/{id}` (read), `.../_history/{version}` (vread) and `.../_history`
//! (history-instance): one record through the access decision, audited before it leaves. A type not served, an id that
//! is no record id, a record of another type, a version that does not exist and a record the
//! caller may not see are one and the same 404.

use axum::Extension;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use ehrshare_app::record::{Record, RecordTarget};
use ehrshare_app::{App, AppError};
use ehrshare_core::record::RecordStatus;
use ehrshare_fhir::bundle::{Link, MadeBy, Version};
use ehrshare_fhir::capability::TypeInteraction;
use ehrshare_fhir::served::RecordMeta;

use super::format::{FhirJson, fhir_json, only_format, server_id, with_version};
use super::served::FhirBase;
use crate::error::HttpError;
use crate::session::LoggedIn;

/// `read`.
pub async fn read(
    State(app): State<App>,
    LoggedIn { session, caller }: LoggedIn,
    _: FhirJson,
    Path((resource_type, id)): Path<(String, String)>,
) -> Result<Response, HttpError> {
    match resource_type.as_str() {
        "Patient" => return super::patient::read(&app, &session, &caller, &id).await,
        "AuditEvent" => return super::audit_event::read(&app, &session, &id).await,
        "Consent" => return super::consent::read(&app, &session, &caller, &id).await,
        t if super::directory::TYPES.contains(&t) => {
            return super::directory::read(&app, &session, t, &id).await;
        }
        _ => {}
    }
    let target = target(&resource_type, &id, None, TypeInteraction::Read)?;
    let record = app.read_record_as(&session, &caller, target).await?;
    served(&record)
}

/// `vread`.
pub async fn vread(
    State(app): State<App>,
    LoggedIn { session, caller }: LoggedIn,
    _: FhirJson,
    Path((resource_type, id, version)): Path<(String, String, String)>,
) -> Result<Response, HttpError> {
    let version = version
        .parse::<i64>()
        .ok()
        .filter(|v| *v >= 1)
        .ok_or(AppError::NotFound)?;
    let target = target(&resource_type, &id, Some(version), TypeInteraction::Vread)?;
    let record = app.read_record_as(&session, &caller, target).await?;
    served(&record)
}

/// `history-instance`: every version, newest first.
pub async fn history(
    State(app): State<App>,
    Extension(base): Extension<FhirBase>,
    LoggedIn { session, caller }: LoggedIn,
    _: FhirJson,
    Path((resource_type, id)): Path<(String, String)>,
    RawQuery(query): RawQuery,
) -> Result<Response, HttpError> {
    // Every version is answered; a parameter that would narrow the history (`_since`,
    // `_count`, `_at`) is refused by name rather than ignored.
    only_format(query.as_deref(), "the history is answered whole")?;
    let target = target(&resource_type, &id, None, TypeInteraction::HistoryInstance)?;
    let versions = app.record_history(&session, &caller, target).await?;
    let mut entries = Vec::with_capacity(versions.len());
    for v in &versions {
        let resource = resource(v)?;
        entries.push(Version {
            full_url: format!("{}/{}/{}", base.url, v.resource_type, v.id),
            relative_url: format!("{}/{}", v.resource_type, v.id),
            resource,
            made_by: if v.status == RecordStatus::EnteredInError {
                MadeBy::Delete
            } else if v.version == 1 {
                MadeBy::Create
            } else {
                MadeBy::Update
            },
            etag: ehrshare_fhir::served::etag(v.version),
            last_modified: ehrshare_fhir::served::instant(v.updated_at),
        });
    }
    let link = [Link {
        relation: "self",
        url: format!("{}/{resource_type}/{id}/_history", base.url),
    }];
    Ok(fhir_json(
        StatusCode::OK,
        ehrshare_fhir::bundle::history(&link, entries).to_string(),
    ))
}

fn target<'a>(
    resource_type: &'a str,
    id: &str,
    version: Option<i64>,
    interaction: TypeInteraction,
) -> Result<RecordTarget<'a>, AppError> {
    if resource_type == "Patient"
        || super::served::OWN_OBJECTS.contains(&resource_type)
        || !super::served::serves(resource_type, interaction)
    {
        return Err(AppError::NotFound);
    }
    // FHIR ids are case-sensitive: only the canonical spelling of a record id names it.
    let id = server_id(id).ok_or(AppError::NotFound)?;
    Ok(RecordTarget {
        id,
        resource_type: Some(resource_type),
        version,
        tell_withdrawn: true,
    })
}

/// A record as FHIR serves it, with its version's `ETag` and `Last-Modified`.
pub(crate) fn served(record: &Record) -> Result<Response, HttpError> {
    let body = ehrshare_fhir::served::record_text(
        &record.body,
        RecordMeta {
            id: record.id,
            version: record.version,
            updated_at: record.updated_at,
            source_hcp: record.source_hcp,
        },
    )
    .map_err(|e| AppError::Internal(e.into()))?;
    Ok(with_version(
        fhir_json(StatusCode::OK, body),
        record.version,
        record.updated_at,
    ))
}

/// A record's version as FHIR serves it.
pub(super) fn resource(
    record: &Record,
) -> Result<serde_json::Map<String, serde_json::Value>, AppError> {
    ehrshare_fhir::served::record(
        &record.body,
        RecordMeta {
            id: record.id,
            version: record.version,
            updated_at: record.updated_at,
            source_hcp: record.source_hcp,
        },
    )
    .map_err(|e| AppError::Internal(e.into()))
}
