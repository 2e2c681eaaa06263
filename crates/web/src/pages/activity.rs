//! The provider portal's oversight pages for user administrators (SPEC 3.9, issue 7): what
//! the provider's users did (its access log, a page at a time, newest first) and the alerts
//! raised about them, each reviewed with a note. The same use cases as the JSON API decide
//! who may see them (the provider's user administrators; anyone else 404).

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, Response};
use axum::{Extension, Form};
use ehrshare_app::auth::Subject;
use ehrshare_app::{App, AppError};
use ehrshare_core::audit::Outcome;
use serde::Deserialize;
use uuid::Uuid;

use super::hcp::{PortalUser, form_again, problems, see_other};
use super::hk_time;
use crate::error::HttpError;
use crate::i18n::{Locale, PortalLocale};

fn provider_of(user: &PortalUser) -> Result<Uuid, HttpError> {
    match &user.session.subject {
        Subject::Account(a) => a.hcp_id.ok_or(HttpError(AppError::NotFound)),
        _ => Err(HttpError(AppError::NotFound)),
    }
}

/// One access-log line as shown.
struct Line {
    at: String,
    who: String,
    action: String,
    recipient: String,
    outcome: String,
    allowed: bool,
    detail: String,
}

#[derive(Template)]
#[template(path = "hcp_access_log.html")]
struct LogPage {
    locale: Locale,
    all_locales: [Locale; 2],
    lines: Vec<Line>,
    /// The link to older lines, when the page is full.
    older: Option<String>,
}

/// `?before=` a sequence number.
#[derive(Debug, Deserialize)]
pub struct Before {
    #[serde(default)]
    before: Option<u64>,
}

/// `GET /hcp/access-log`: the provider's users' accesses, newest first.
pub async fn access_log(
    State(app): State<App>,
    Extension(locale): Extension<Locale>,
    user: PortalUser,
    Query(q): Query<Before>,
) -> Result<Html<String>, HttpError> {
    let hcp = provider_of(&user)?;
    let entries = app
        .provider_access_log(&user.session, hcp, q.before)
        .await?;
    let older = (entries.len() == ehrshare_app::access_log::PAGE as usize)
        .then(|| {
            entries
                .last()
                .map(|l| format!("/hcp/access-log?before={}", l.entry.seq))
        })
        .flatten();
    let lines = entries
        .into_iter()
        .map(|l| {
            let e = l.entry.entry;
            let name = match (locale, l.actor_name_zh) {
                (Locale::ZhHk, Some(zh)) => zh,
                _ => l.actor_name_en.unwrap_or_default(),
            };
            // With the unique user name: a look-alike display name cannot pass for another's.
            let name = match l.actor_user_name {
                Some(user) => format!("{name} ({user})"),
                None => name,
            };
            Line {
                at: hk_time(e.at),
                who: name,
                action: e.action,
                recipient: e
                    .recipient
                    .map(|r| r.to_string()[..8].to_owned())
                    .unwrap_or_default(),
                outcome: locale.t(match e.outcome {
                    Outcome::Allowed => "log-allowed",
                    Outcome::Denied => "log-denied",
                    Outcome::Failed => "log-failed",
                }),
                allowed: e.outcome == Outcome::Allowed,
                detail: [e.denial_reason, e.reason]
                    .into_iter()
                    .flatten()
                    .collect::<Vec<_>>()
                    .join(" · "),
            }
        })
        .collect();
    let page = LogPage {
        locale,
        all_locales: super::ALL_LOCALES,
        lines,
        older,
    };
    Ok(Html(crate::render::render_template(&page)?))
}

/// One alert as shown.
struct AlertLine {
    id: Uuid,
    at: String,
    rule: String,
    detail: String,
    open: bool,
    note: String,
    /// A patient's report: the office reviews it (ADR 0021).
    report: bool,
}

#[derive(Template)]
#[template(path = "hcp_alerts.html")]
struct AlertsPage {
    locale: Locale,
    all_locales: [Locale; 2],
    csrf_token: String,
    alerts: Vec<AlertLine>,
    done: bool,
    problems: Vec<String>,
}

async fn alerts_page(
    app: &App,
    locale: Locale,
    user: &PortalUser,
    done: bool,
    problems: Vec<String>,
) -> Result<Html<String>, HttpError> {
    let hcp = provider_of(user)?;
    let rows = app.alerts(&user.session, Some(hcp)).await?;
    let alerts = rows
        .into_iter()
        .map(|a| {
            let id = format!("alert-rule-{}", a.rule);
            AlertLine {
                id: a.id,
                at: hk_time(a.created_at),
                rule: if locale.has(&id) {
                    locale.t(&id)
                } else {
                    a.rule.clone()
                },
                detail: a.detail.unwrap_or_default(),
                open: a.status == ehrshare_core::alert::AlertStatus::Open,
                note: a.note.unwrap_or_default(),
                report: a.rule == ehrshare_app::access_log::PATIENT_REPORT,
            }
        })
        .collect();
    let page = AlertsPage {
        locale,
        all_locales: super::ALL_LOCALES,
        csrf_token: user.session.csrf_token.clone().unwrap_or_default(),
        alerts,
        done,
        problems,
    };
    Ok(Html(crate::render::render_template(&page)?))
}

/// `?done=1` after a review.
#[derive(Debug, Deserialize)]
pub struct Reviewed {
    #[serde(default)]
    done: Option<String>,
}

/// `GET /hcp/alerts`: the provider's alerts, open ones to review.
pub async fn alerts(
    State(app): State<App>,
    Extension(locale): Extension<Locale>,
    user: PortalUser,
    Query(q): Query<Reviewed>,
) -> Result<Html<String>, HttpError> {
    alerts_page(&app, locale, &user, q.done.is_some(), Vec::new()).await
}

/// A review.
#[derive(Debug, Deserialize)]
pub struct ReviewForm {
    #[serde(default)]
    note: String,
}

/// `POST /hcp/alerts/{id}/review`: marks an alert reviewed, with a note (audited).
pub async fn review(
    State(app): State<App>,
    Extension(locale): Extension<Locale>,
    user: PortalUser,
    Path(id): Path<Uuid>,
    Form(form): Form<ReviewForm>,
) -> Result<Response, HttpError> {
    match app
        .review_alert(&user.session, &user.caller, id, &form.note)
        .await
    {
        Ok(()) => Ok(see_other("/hcp/alerts?done=1")),
        Err(e @ (AppError::Invalid { .. } | AppError::Conflict { .. })) => {
            let html = alerts_page(&app, locale, &user, false, problems(locale, &e)).await?;
            Ok(form_again(StatusCode::UNPROCESSABLE_ENTITY, html))
        }
        Err(e) => Err(HttpError(e)),
    }
}
