//! The public directory under `/fhir` (issue 25, item 5): `Organization` (a provider active
//! now), `Location` (its service locations) and `PractitionerRole` (its professionals who agreed
//! to be listed), read and searched; only what the public directory shows
//! (`ehrshare_fhir::directory`). Anyone logged in may look; a token as far as its scopes say.
//!
//! Searches: `Organization?name=` (any part of the English or Chinese name) `&type=` (the
//! provider's kind), paged; `Location?organization=` and `PractitionerRole?organization=`
//! (`&role=`), every match at once (a provider has few).

use axum::http::StatusCode;
use axum::response::Response;
use ehrshare_app::provider::{DirectoryFilter, Owned, Provider, StaffRow, directory_scope_allows};
use ehrshare_app::{App, AppError};
use ehrshare_core::oauth::Access;
use ehrshare_fhir::bundle::{Link, searchset};
use ehrshare_fhir::directory::{Listed, Place, location, organization, practitioner_role};
use ehrshare_fhir::search::Token;
use serde_json::{Map, Value};

use super::format::{bad_parameter, fhir_json, server_id};
use super::page::{DEFAULT_COUNT, MAX_COUNT, page_links};
use super::served::FhirBase;
use crate::error::HttpError;

/// The types this file answers.
pub const TYPES: [&str; 3] = ["Organization", "Location", "PractitionerRole"];

fn org(p: &Provider) -> Map<String, Value> {
    organization(p.hcp.id, &p.hcp.name_en, &p.hcp.name_zh, &p.hcp.hcp_type)
}

fn locations(p: &Provider) -> Vec<(uuid::Uuid, Map<String, Value>)> {
    p.locations
        .iter()
        .map(|l| {
            let lines: Vec<&str> = [l.room_floor.as_deref(), l.building.as_deref()]
                .into_iter()
                .flatten()
                .chain([l.street.as_str()])
                .filter(|s| !s.is_empty())
                .collect();
            (
                l.id,
                location(Place {
                    id: l.id,
                    hcp: l.hcp_id,
                    name_en: &l.name_en,
                    name_zh: &l.name_zh,
                    lines: &lines,
                    district: &l.district,
                    phone: &l.phone,
                }),
            )
        })
        .collect()
}

fn role(s: &StaffRow) -> Map<String, Value> {
    practitioner_role(Listed {
        id: s.id,
        hcp: s.hcp_id,
        name: &s.name_en,
        role: &s.role,
        registration: s.prof_reg_no.as_deref(),
    })
}

/// `read`.
pub async fn read(
    app: &App,
    session: &ehrshare_app::auth::Session,
    resource_type: &str,
    id: &str,
) -> Result<Response, HttpError> {
    if !directory_scope_allows(session, Access::Read, resource_type) {
        return Err(AppError::NotFound.into());
    }
    let id = server_id(id).ok_or(AppError::NotFound)?;
    let found = match resource_type {
        "Organization" => Some(org(&app.listed_provider(id).await?)),
        "Location" => locations(&app.listed_owner(Owned::Location, id).await?)
            .into_iter()
            .find(|(l, _)| *l == id)
            .map(|(_, r)| r),
        _ => app
            .listed_owner(Owned::Staff, id)
            .await?
            .staff
            .iter()
            .find(|s| s.id == id)
            .map(role),
    };
    let found = found.ok_or(AppError::NotFound)?;
    Ok(fhir_json(StatusCode::OK, Value::Object(found).to_string()))
}

fn number(field: &str, value: &str) -> Result<usize, AppError> {
    value
        .parse::<usize>()
        .map_err(|_| bad_parameter(field, "invalid-search-value", "a whole number is expected"))
}

fn unknown(name: &str) -> AppError {
    bad_parameter(
        name,
        "unknown-search-parameter",
        "not a search parameter of this type here (see /fhir/metadata)",
    )
}

/// `search-type`.
pub async fn search(
    app: &App,
    base: &FhirBase,
    session: &ehrshare_app::auth::Session,
    resource_type: &str,
    params: &[(String, String)],
) -> Result<Response, HttpError> {
    if !directory_scope_allows(session, Access::Search, resource_type) {
        return Err(AppError::NotFound.into());
    }
    let mut filter = DirectoryFilter::default();
    let (mut count, mut offset) = (DEFAULT_COUNT, 0usize);
    let mut owner: Option<String> = None;
    let mut roles: Option<Vec<String>> = None;
    for (name, value) in params {
        match (resource_type, name.as_str()) {
            ("Organization", "name") => filter.name = Some(value.clone()),
            ("Organization", "type") => {
                let t = Token::parse(value).ok_or_else(|| {
                    bad_parameter(name, "invalid-search-value", "a kind of provider")
                })?;
                filter.hcp_type = t.code.clone();
            }
            ("Location" | "PractitionerRole", "organization") => owner = Some(value.clone()),
            ("PractitionerRole", "role") => {
                roles = Some(
                    value
                        .split(',')
                        .filter_map(Token::parse)
                        .filter_map(|t| t.code)
                        .collect(),
                );
            }
            (_, "_count") => count = number(name, value)?.min(MAX_COUNT),
            (_, "_offset") => offset = number(name, value)?,
            (_, "_format" | "_pretty") => {}
            (_, other) => return Err(unknown(other).into()),
        }
    }
    let (total, matches, links) = if resource_type == "Organization" {
        if count == 0 || offset % count != 0 {
            return Err(bad_parameter(
                "_offset",
                "invalid-search-value",
                "a multiple of _count (the links give the pages)",
            )
            .into());
        }
        let page_number = (offset / count)
            .checked_add(1)
            .ok_or_else(|| bad_parameter("_offset", "invalid-search-value", "too large"))?;
        let (page, total) = app.directory(&filter, page_number, count).await?;
        let matches = page
            .iter()
            .map(|p| (format!("{}/Organization/{}", base.url, p.hcp.id), org(p)))
            .collect();
        let links = page_links(base, resource_type, params, count, offset, total);
        (total, matches, links)
    } else {
        let owner = owner.ok_or_else(|| {
            bad_parameter(
                "organization",
                "organization-required",
                "a search of locations or roles names the provider",
            )
        })?;
        let id = owner.rsplit('/').next().and_then(server_id);
        let provider = match id {
            Some(id) => match app.listed_provider(id).await {
                Ok(p) => Some(p),
                Err(AppError::NotFound) => None,
                Err(e) => return Err(e.into()),
            },
            None => None,
        };
        let matches: Vec<(String, Map<String, Value>)> = match (&provider, resource_type) {
            (None, _) => Vec::new(),
            (Some(p), "Location") => locations(p)
                .into_iter()
                .map(|(id, r)| (format!("{}/Location/{id}", base.url), r))
                .collect(),
            (Some(p), _) => p
                .staff
                .iter()
                .filter(|s| roles.as_ref().is_none_or(|r| r.contains(&s.role)))
                .map(|s| (format!("{}/PractitionerRole/{}", base.url, s.id), role(s)))
                .collect(),
        };
        let links = vec![Link {
            relation: "self",
            url: format!(
                "{}/{resource_type}?{}",
                base.url,
                serde_urlencoded::to_string(params).unwrap_or_default()
            ),
        }];
        (matches.len(), matches, links)
    };
    Ok(fhir_json(
        StatusCode::OK,
        searchset(total, &links, matches).to_string(),
    ))
}
