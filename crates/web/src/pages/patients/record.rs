//! `/hcp/patients/{id}/record`: the patient's eHR summary by domain, and one record's detail,
//! only what the user's role may see.

use askama::Template;
use axum::Extension;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use ehrshare_app::{App, AppError};
use ehrshare_core::domain::Domain;
use uuid::Uuid;

use crate::error::HttpError;
use crate::i18n::{Locale, PortalLocale};
use crate::pages::hcp::{PortalUser, form_again};

/// One record as listed.
struct RecordLine {
    id: Uuid,
    headline: String,
    date: String,
}

/// One domain as listed.
struct DomainBlock {
    code: &'static str,
    name: String,
    /// For demographics: the registration's own facts (label, value).
    facts: Vec<(String, String)>,
    records: Vec<RecordLine>,
}

#[derive(Template)]
#[template(path = "hcp_record.html")]
struct RecordPage {
    locale: Locale,
    all_locales: [Locale; 2],
    csrf_token: String,
    id: Uuid,
    name: String,
    domains: Vec<DomainBlock>,
    /// How many records the user may see, in words.
    total: String,
    /// Why the record cannot be read (the decision's reason, in the page's language).
    refused: Option<String>,
}

/// `GET /hcp/patients/{id}/record`: the eHR summary by domain (audited, through the access
/// decision; a refusal is shown with its reason).
pub async fn record(
    State(app): State<App>,
    Extension(locale): Extension<Locale>,
    user: PortalUser,
    Path(id): Path<Uuid>,
) -> Result<Response, HttpError> {
    let found = app
        .recipient_at_counter(&user.session, &user.caller, id)
        .await?;
    let name = match (locale, &found.name_zh) {
        (Locale::ZhHk, Some(zh)) => format!("{zh} {}", found.name_en),
        _ => found.name_en.clone(),
    };
    let page = |domains, total: usize, refused| RecordPage {
        locale,
        all_locales: crate::pages::ALL_LOCALES,
        csrf_token: user.session.csrf_token.clone().unwrap_or_default(),
        id,
        name: name.clone(),
        domains,
        total: locale.t_with("hcp-record-total", &[("count", total.to_string())]),
        refused,
    };
    match app
        .summary(&user.session, &user.caller, id, &[], None)
        .await
    {
        Ok(summary) => {
            let domains = summary
                .domains
                .into_iter()
                .map(|(d, rows)| DomainBlock {
                    code: d.code(),
                    name: domain_name(locale, d),
                    // The registration is the demographics' first record.
                    facts: if d == Domain::Demographics {
                        vec![
                            (locale.t("record-name-en"), found.name_en.clone()),
                            (
                                locale.t("record-name-zh"),
                                found.name_zh.clone().unwrap_or_default(),
                            ),
                            (locale.t("hcp-patient-dob"), found.date_of_birth.clone()),
                        ]
                    } else {
                        Vec::new()
                    },
                    records: rows
                        .into_iter()
                        .map(|r| RecordLine {
                            id: r.id,
                            headline: serde_json::from_str(&r.body)
                                .map(|v| ehrshare_fhir::headline::headline(&v))
                                .unwrap_or_default(),
                            date: r.created_at.date().to_string(),
                        })
                        .collect(),
                })
                .collect();
            let html = crate::render::render_template(&page(domains, summary.total, None))?;
            Ok(Html(html).into_response())
        }
        Err(AppError::Forbidden { code, .. }) => {
            let id = format!("problem-{code}");
            let reason = if locale.has(&id) {
                locale.t(&id)
            } else {
                locale.t("problem-generic")
            };
            let html = crate::render::render_template(&page(Vec::new(), 0, Some(reason)))?;
            Ok(form_again(StatusCode::FORBIDDEN, Html(html)))
        }
        Err(e) => Err(HttpError(e)),
    }
}

fn domain_name(locale: Locale, d: Domain) -> String {
    match locale {
        Locale::ZhHk => d.name_zh().to_owned(),
        Locale::En => d.name_en().to_owned(),
    }
}

#[derive(Template)]
#[template(path = "hcp_record_detail.html")]
struct RecordDetailPage {
    locale: Locale,
    all_locales: [Locale; 2],
    id: Uuid,
    domain: String,
    headline: String,
    resource_type: String,
    version: i64,
    deposited: String,
    updated: String,
    /// The stored resource, indented for reading (escaped by the template).
    json: String,
}

/// `GET /hcp/patients/{id}/records/{record}`: one record (audited, through the access
/// decision; anything the user may not see is 404, whatever the reason).
pub async fn record_detail(
    State(app): State<App>,
    Extension(locale): Extension<Locale>,
    user: PortalUser,
    Path((_, record)): Path<(Uuid, Uuid)>,
) -> Result<Html<String>, HttpError> {
    let r = app
        .read_record(&user.session, &user.caller, record, None)
        .await
        .map_err(|e| match e {
            AppError::Forbidden { .. } => HttpError(AppError::NotFound),
            e => HttpError(e),
        })?;
    // The record names its recipient; the path's id only makes the address readable.
    let id = r.recipient_id;
    let value: serde_json::Value = serde_json::from_str(&r.body).unwrap_or_default();
    let page = RecordDetailPage {
        locale,
        all_locales: crate::pages::ALL_LOCALES,
        id,
        domain: Domain::parse(&r.domain)
            .map(|d| domain_name(locale, d))
            .unwrap_or_else(|| r.domain.clone()),
        headline: ehrshare_fhir::headline::headline(&value),
        resource_type: r.resource_type,
        version: r.version,
        deposited: r.created_at.date().to_string(),
        updated: r.updated_at.date().to_string(),
        json: serde_json::to_string_pretty(&value).unwrap_or(r.body),
    };
    Ok(Html(crate::render::render_template(&page)?))
}
