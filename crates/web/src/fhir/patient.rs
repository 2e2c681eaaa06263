//! `GET /fhir/Patient/{id}` and `GET /fhir/Patient?identifier={system}|{number}`: a registered
//! recipient, exactly as the counter finds them (`App::find_recipient`,
//! `App::recipient_at_counter`): only by identity document or by id, only by a professional or
//! registration staff, demographics only, every look-up audited. No other Patient search is
//! served, so none reveals or counts people.

use axum::http::StatusCode;
use axum::response::Response;
use ehrshare_app::auth::Session;
use ehrshare_app::caller::Caller;
use ehrshare_app::counter::Found;
use ehrshare_app::{App, AppError};
use ehrshare_core::recipient::RecipientStatus;
use ehrshare_fhir::bundle::{Link, searchset};
use ehrshare_fhir::served::{PatientFacts, patient};

use super::format::{bad_parameter, fhir_json, server_id};
use super::served::FhirBase;
use crate::error::HttpError;

fn resource(
    f: &Found,
    identifier: Option<(&str, &str)>,
) -> serde_json::Map<String, serde_json::Value> {
    patient(PatientFacts {
        id: f.id,
        name_en: &f.name_en,
        name_zh: f.name_zh.as_deref(),
        birth_date: &f.date_of_birth,
        active: f.status == RecipientStatus::Active,
        identifier,
    })
}

/// `GET /fhir/Patient/{id}/$everything`: the patient's record as the caller may see it, the
/// eHR summary as a searchset Bundle: the role's domains only, restricted items neither
/// there nor counted, one audit entry (`App::summary`). A refusal is the 404 of a record the
/// caller may not see (the JSON API's summary says why; a FHIR client learns nothing).
pub async fn everything(
    axum::extract::State(app): axum::extract::State<App>,
    axum::Extension(base): axum::Extension<FhirBase>,
    crate::session::LoggedIn { session, caller }: crate::session::LoggedIn,
    _: super::format::FhirJson,
    axum::extract::Path(id): axum::extract::Path<String>,
    axum::extract::RawQuery(query): axum::extract::RawQuery,
) -> Result<Response, HttpError> {
    super::format::only_format(query.as_deref(), "$everything takes no parameter here")?;
    let recipient = server_id(&id).ok_or(AppError::NotFound)?;
    let summary = match app.summary(&session, &caller, recipient, &[], None).await {
        Ok(summary) => summary,
        Err(AppError::Forbidden { .. }) => return Err(AppError::NotFound.into()),
        Err(e) => return Err(e.into()),
    };
    let mut matches = Vec::with_capacity(summary.total);
    for r in summary.domains.values().flatten() {
        matches.push((
            format!("{}/{}/{}", base.url, r.resource_type, r.id),
            super::format::listed(r)?,
        ));
    }
    let link = [Link {
        relation: "self",
        url: format!("{}/Patient/{id}/$everything", base.url),
    }];
    Ok(fhir_json(
        StatusCode::OK,
        searchset(matches.len(), &link, matches).to_string(),
    ))
}

/// `read`.
pub async fn read(
    app: &App,
    session: &Session,
    caller: &Caller,
    id: &str,
) -> Result<Response, HttpError> {
    let id = server_id(id).ok_or(AppError::NotFound)?;
    let found = app.recipient_at_counter(session, caller, id).await?;
    let body = serde_json::Value::Object(resource(&found, None)).to_string();
    Ok(fhir_json(StatusCode::OK, body))
}

/// `search-type`, by `identifier` only.
pub async fn search(
    app: &App,
    base: &FhirBase,
    session: &Session,
    caller: &Caller,
    params: &[(String, String)],
) -> Result<Response, HttpError> {
    let mut identifier = None;
    for (name, value) in params {
        match name.as_str() {
            "identifier" if identifier.is_none() => identifier = Some(value.as_str()),
            "identifier" => {
                return Err(
                    bad_parameter(name, "one-identifier", "a search names one identifier").into(),
                );
            }
            "_format" | "_pretty" => {}
            other => {
                return Err(bad_parameter(
                    other,
                    "unknown-search-parameter",
                    "a Patient is found by identifier (an identity document) only",
                )
                .into());
            }
        }
    }
    let Some(identifier) = identifier else {
        return Err(bad_parameter(
            "identifier",
            "identifier-required",
            "a Patient is found by identifier",
        )
        .into());
    };
    let (system, number) = identifier
        .split_once('|')
        .filter(|(s, n)| !s.is_empty() && !n.is_empty())
        .ok_or_else(|| {
            bad_parameter(
                "identifier",
                "invalid-search-value",
                "system|value, the system one of our identity documents",
            )
        })?;
    let (kind, issuer) = ehrshare_fhir::subject::document_of_system(system).ok_or_else(|| {
        bad_parameter(
            "identifier",
            "invalid-search-value",
            "the system is not one of our identity documents",
        )
    })?;
    let found = match app
        .find_recipient(session, caller, kind, issuer, number)
        .await
    {
        Ok(found) => Some(found),
        Err(AppError::NotFound) => None,
        Err(AppError::Invalid { code, message, .. }) => {
            return Err(bad_parameter("identifier", code, &message).into());
        }
        Err(e) => return Err(e.into()),
    };
    let link = [Link {
        relation: "self",
        url: format!(
            "{}/Patient?{}",
            base.url,
            serde_urlencoded::to_string([("identifier", identifier)]).unwrap_or_default()
        ),
    }];
    let matches: Vec<_> = found
        .iter()
        .map(|f| {
            (
                format!("{}/Patient/{}", base.url, f.id),
                resource(f, Some((system, number))),
            )
        })
        .collect();
    Ok(fhir_json(
        StatusCode::OK,
        searchset(matches.len(), &link, matches).to_string(),
    ))
}
