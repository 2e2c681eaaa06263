//! `GET /fhir/Consent?patient={id}` and `GET /fhir/Consent/{id}`: the sharing consents a
//! patient gave the caller's provider, as R4 `Consent`s (issue 25, item 5), read-only: they
//! are given and revoked at the counter, in the patient's app or through the office. Another
//! provider's consents are not there, as if they did not exist. Each look-up is audited.

use axum::http::StatusCode;
use axum::response::Response;
use ehrshare_app::consent::ConsentState;
use ehrshare_app::{App, AppError};
use ehrshare_fhir::bundle::{Link, searchset};
use ehrshare_fhir::consent::{ConsentFacts, consent};

use super::format::{bad_parameter, fhir_json, server_id};
use super::page::patient_id;
use super::served::FhirBase;
use crate::error::HttpError;

fn resource(c: &ConsentState) -> serde_json::Map<String, serde_json::Value> {
    consent(ConsentFacts {
        id: c.row.id,
        recipient: c.row.recipient_id,
        hcp: c.row.hcp_id,
        kind: &c.row.kind,
        method: &c.row.method,
        given_at: c.row.given_at,
        ends_at: c.ends_at,
        in_force: c.in_force,
    })
}

/// `read`.
pub async fn read(
    app: &App,
    session: &ehrshare_app::auth::Session,
    caller: &ehrshare_app::caller::Caller,
    id: &str,
) -> Result<Response, HttpError> {
    let id = server_id(id).ok_or(AppError::NotFound)?;
    let c = app.provider_consent(session, caller, id).await?;
    Ok(fhir_json(
        StatusCode::OK,
        serde_json::Value::Object(resource(&c)).to_string(),
    ))
}

/// `search-type`: one patient's, every one (a patient gives a provider few).
pub async fn search(
    app: &App,
    base: &FhirBase,
    session: &ehrshare_app::auth::Session,
    caller: &ehrshare_app::caller::Caller,
    params: &[(String, String)],
) -> Result<Response, HttpError> {
    let mut patient = None;
    for (name, value) in params {
        match name.as_str() {
            "patient" if patient.is_none() => patient = Some(value.clone()),
            "patient" => {
                return Err(
                    bad_parameter(name, "one-patient", "a search names one patient").into(),
                );
            }
            "_format" | "_pretty" => {}
            other => {
                return Err(bad_parameter(
                    other,
                    "unknown-search-parameter",
                    "not a search parameter of this type here (see /fhir/metadata)",
                )
                .into());
            }
        }
    }
    let patient = patient.ok_or_else(|| {
        bad_parameter(
            "patient",
            "patient-required",
            "a search of consents names the patient",
        )
    })?;
    let found = app
        .provider_consents(session, caller, patient_id(base, &patient))
        .await?;
    let query = serde_urlencoded::to_string(params).unwrap_or_default();
    let links = [Link {
        relation: "self",
        url: format!("{}/Consent?{query}", base.url),
    }];
    let matches = found
        .iter()
        .map(|c| (format!("{}/Consent/{}", base.url, c.row.id), resource(c)))
        .collect();
    Ok(fhir_json(
        StatusCode::OK,
        searchset(found.len(), &links, matches).to_string(),
    ))
}
