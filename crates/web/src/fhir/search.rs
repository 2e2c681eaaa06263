//! `GET /fhir/{type}?...` and `POST /fhir/{type}/_search` (a form body): a search of one
//! resource type in one patient's record, answered as a searchset Bundle.
//!
//! The parameters are the type's own (`served::SERVED`, as R4 defines them) and `_count`,
//! `_offset` (the page) and `_format`; anything else is a 400 naming it rather than silently
//! ignored, since a misspelt filter would otherwise widen the search. A search names one
//! patient: the access decision is taken for that patient. The paging links repeat the
//! search in full, so editing one is only a new search, decided again.

use axum::Extension;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use ehrshare_app::search::{Found, RecordSearch, SortBy};
use ehrshare_app::{App, AppError};
use ehrshare_core::search::DateParam;
use ehrshare_fhir::bundle::searchset;
use ehrshare_fhir::capability::TypeInteraction;
use ehrshare_fhir::search::Token;
use uuid::Uuid;

use super::format::{FhirJson, bad_parameter, fhir_json, listed, parameters, server_id};
use super::page::{DEFAULT_COUNT, MAX_COUNT, page_links, patient_id};
use super::served::{FhirBase, serves, support};
use crate::error::HttpError;
use crate::session::LoggedIn;

/// `GET /fhir/{type}`.
pub async fn get(
    State(app): State<App>,
    Extension(base): Extension<FhirBase>,
    LoggedIn { session, caller }: LoggedIn,
    _: FhirJson,
    Path(resource_type): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, HttpError> {
    let params = parameters(query.as_deref().unwrap_or_default())?;
    search(&app, &base, &session, &caller, &resource_type, params).await
}

/// `POST /fhir/{type}/_search`: the parameters in an `application/x-www-form-urlencoded` body
/// (and the URL).
pub async fn post(
    State(app): State<App>,
    Extension(base): Extension<FhirBase>,
    LoggedIn { session, caller }: LoggedIn,
    _: FhirJson,
    Path(resource_type): Path<String>,
    RawQuery(query): RawQuery,
    body: String,
) -> Result<Response, HttpError> {
    let mut params = parameters(query.as_deref().unwrap_or_default())?;
    params.extend(parameters(&body)?);
    search(&app, &base, &session, &caller, &resource_type, params).await
}

fn number(field: &str, value: &str) -> Result<usize, AppError> {
    value
        .parse::<usize>()
        .map_err(|_| bad_parameter(field, "invalid-search-value", "a whole number is expected"))
}

async fn search(
    app: &App,
    base: &FhirBase,
    session: &ehrshare_app::auth::Session,
    caller: &ehrshare_app::caller::Caller,
    resource_type: &str,
    params: Vec<(String, String)>,
) -> Result<Response, HttpError> {
    let Some(support) =
        support(resource_type).filter(|_| serves(resource_type, TypeInteraction::SearchType))
    else {
        return Err(AppError::NotFound.into());
    };
    match resource_type {
        "Patient" => return super::patient::search(app, base, session, caller, &params).await,
        "AuditEvent" => return super::audit_event::search(app, base, session, &params).await,
        "Consent" => return super::consent::search(app, base, session, caller, &params).await,
        t if super::directory::TYPES.contains(&t) => {
            return super::directory::search(app, base, session, t, &params).await;
        }
        _ => {}
    }
    let mut patient: Option<String> = None;
    let mut ids: Option<Vec<Uuid>> = None;
    let mut last_updated = Vec::new();
    let mut codes = Vec::new();
    let mut dates = Vec::new();
    let mut tokens = Vec::new();
    let mut sort = None;
    let mut count = DEFAULT_COUNT;
    let mut offset = 0;
    for (name, value) in &params {
        let name = name.as_str();
        let known = support.search_params.iter().any(|p| p.name == name);
        match name {
            "patient" | "subject" if known => {
                // `patient=X&subject=Patient/X` name one patient; two names of two do not.
                let same = |p: &String| {
                    p == value
                        || patient_id(base, p)
                            .zip(patient_id(base, value))
                            .is_some_and(|(a, b)| a == b)
                };
                if value.contains(',') || patient.as_ref().is_some_and(|p| !same(p)) {
                    return Err(
                        bad_parameter(name, "one-patient", "a search names one patient").into(),
                    );
                }
                patient = Some(value.clone());
            }
            "_id" => {
                let wanted = value.split(',').map(server_id);
                // An id that is no record id matches nothing; the others still may.
                let wanted: Vec<Uuid> = wanted.flatten().collect();
                ids = Some(match ids {
                    None => wanted,
                    Some(before) => before
                        .into_iter()
                        .filter(|id| wanted.contains(id))
                        .collect(),
                });
            }
            "code" if known => {
                let tokens: Vec<Token> = value.split(',').filter_map(Token::parse).collect();
                if tokens.is_empty() {
                    return Err(bad_parameter(
                        name,
                        "invalid-search-value",
                        "system|code, code, |code or system|",
                    )
                    .into());
                }
                codes.push(tokens);
            }
            "category" | "status" | "identifier" if known => {
                let any: Vec<Token> = value.split(',').filter_map(Token::parse).collect();
                if any.is_empty() {
                    return Err(bad_parameter(
                        name,
                        "invalid-search-value",
                        "system|code, code, |code or system|",
                    )
                    .into());
                }
                tokens.push((name.to_owned(), any));
            }
            "date" if known => dates.push(
                DateParam::parse(value)
                    .map_err(|e| bad_parameter(name, "invalid-search-value", &e.to_string()))?,
            ),
            "_lastUpdated" => last_updated.push(
                DateParam::parse(value)
                    .map_err(|e| bad_parameter(name, "invalid-search-value", &e.to_string()))?,
            ),
            "_sort" if sort.is_none() => {
                let descending = value.starts_with('-');
                sort = Some(match value.trim_start_matches('-') {
                    "_lastUpdated" => SortBy::LastUpdated { descending },
                    "date" if support.search_params.iter().any(|p| p.name == "date") => {
                        SortBy::Date { descending }
                    }
                    _ => {
                        return Err(bad_parameter(
                            name,
                            "unsupported-sort",
                            "one of _lastUpdated, -_lastUpdated, and date, -date where the type has date",
                        )
                        .into());
                    }
                });
            }
            "_sort" => {
                return Err(bad_parameter(name, "one-sort", "a search is sorted one way").into());
            }
            "_count" => count = number(name, value)?.min(MAX_COUNT),
            "_offset" => offset = number(name, value)?,
            // How the answer is written, not what it holds.
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
    let Some(patient) = patient else {
        return Err(bad_parameter(
            "patient",
            "patient-required",
            "a search of records names the patient (patient or subject)",
        )
        .into());
    };
    let found = match patient_id(base, &patient) {
        Some(recipient) => {
            app.search_records(
                session,
                caller,
                &RecordSearch {
                    recipient,
                    resource_type: resource_type.to_owned(),
                    ids: ids.clone(),
                    last_updated,
                    codes,
                    dates,
                    tokens,
                    sort,
                    offset,
                    count,
                },
            )
            .await?
        }
        // A reference that names no one of ours finds no one.
        None => Found {
            records: Vec::new(),
            total: 0,
        },
    };
    let links = page_links(base, resource_type, &params, count, offset, found.total);
    let mut matches = Vec::with_capacity(found.records.len());
    for r in &found.records {
        matches.push((
            format!("{}/{}/{}", base.url, r.resource_type, r.id),
            listed(r)?,
        ));
    }
    Ok(fhir_json(
        StatusCode::OK,
        searchset(found.total, &links, matches).to_string(),
    ))
}
