//! `/hcp/patients/{id}`: a patient's page at the user's provider: their care here (the
//! consent in force, open episodes), consent by access key or form, care episodes opened and
//! closed.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, Response};
use axum::{Extension, Form};
use ehrshare_app::consent::ConsentInput;
use ehrshare_app::{App, AppError};
use ehrshare_core::consent::Method;
use ehrshare_core::domain::Domain;
use serde::Deserialize;
use uuid::Uuid;

use super::*;
use crate::error::HttpError;
use crate::i18n::{Locale, PortalLocale};
use crate::pages::hcp::{PortalUser, form_again, problems, see_other};

#[derive(Template)]
#[template(path = "hcp_patient.html")]
struct PatientPage {
    locale: Locale,
    all_locales: [Locale; 2],
    csrf_token: String,
    id: Uuid,
    name_en: String,
    name_zh: Option<String>,
    date_of_birth: String,
    /// The consent in force with the user's provider, in words.
    consent: Option<String>,
    /// Whether a new consent has a kind to choose (the 2016 rules; not under 2025).
    consent_typed: bool,
    /// Open care episodes here: (id, kind in words, since).
    episodes: Vec<(Uuid, String, String)>,
    /// The deposit forms of the domains the user's role may write: (address, title).
    deposits: Vec<(String, String)>,
    /// Whether the role may write Chinese medicine prescriptions.
    cm_prescription: bool,
    done: Option<String>,
    problems: Vec<String>,
}

async fn patient(
    app: &App,
    locale: Locale,
    user: &PortalUser,
    id: Uuid,
    done: Option<&str>,
    problems: Vec<String>,
) -> Result<Html<String>, HttpError> {
    let found = app
        .recipient_at_counter(&user.session, &user.caller, id)
        .await?;
    let care = app.care_here(&user.session, id).await?;
    let consent = care.consent.map(|c| {
        let kind = locale.t(&format!("consent-kind-{}", c.kind));
        let since = c.given_at.date().to_string();
        locale.t_with(
            "hcp-patient-consent-in-force",
            &[("kind", kind), ("since", since)],
        )
    });
    let episodes = care
        .open_episodes
        .into_iter()
        .map(|e| {
            (
                e.id,
                locale.t(&format!("episode-{}", e.kind)),
                e.start_at.date().to_string(),
            )
        })
        .collect();
    // Only the forms of the role's domains are offered, by the decision's own need-to-know
    // rule; the deposit itself is decided when sent.
    let offered: Vec<Domain> = DEPOSIT_FORMS.iter().map(|(d, _, _)| *d).collect();
    let writable = user
        .session
        .account()
        .and_then(|a| ehrshare_core::profession::Role::parse(&a.role))
        .map(|role| {
            let ask = ehrshare_core::access::Ask {
                action: ehrshare_core::access::Action::Deposit,
                domains: &offered,
                record: None,
                reason: None,
            };
            ehrshare_core::access::need_to_know(role, &ask, &app.settings().access_profiles)
        })
        .unwrap_or_default();
    let deposits = DEPOSIT_FORMS
        .iter()
        .filter(|(d, _, _)| writable.contains(d))
        .map(|(_, path, title)| (format!("/hcp/patients/{id}/{path}"), locale.t(title)))
        .collect();
    let page = PatientPage {
        locale,
        deposits,
        cm_prescription: writable.contains(&Domain::CmPrescription),
        all_locales: crate::pages::ALL_LOCALES,
        csrf_token: user.session.csrf_token.clone().unwrap_or_default(),
        id,
        name_en: found.name_en,
        name_zh: found.name_zh,
        date_of_birth: found.date_of_birth,
        consent,
        consent_typed: app.settings().regime.consents_are_typed(),
        episodes,
        done: done
            .filter(|d| DONE.contains(d))
            .map(|d| locale.t(&format!("hcp-patient-done-{d}"))),
        problems,
    };
    Ok(Html(crate::render::render_template(&page)?))
}

/// `?done=` after a form.
#[derive(Debug, Deserialize)]
pub struct Done {
    #[serde(default)]
    done: Option<String>,
}

/// `GET /hcp/patients/{id}`: the patient's page at the counter (audited as a look-up).
pub async fn show(
    State(app): State<App>,
    Extension(locale): Extension<Locale>,
    user: PortalUser,
    Path(id): Path<Uuid>,
    Query(q): Query<Done>,
) -> Result<Html<String>, HttpError> {
    patient(&app, locale, &user, id, q.done.as_deref(), Vec::new()).await
}

/// The consent form: by the access key the patient tells, or a signed paper form's
/// reference (`method` = `form`).
#[derive(Deserialize)]
pub struct ConsentForm {
    #[serde(default)]
    method: String,
    #[serde(default)]
    access_key: String,
    #[serde(default)]
    form_ref: String,
    #[serde(default)]
    kind: Option<String>,
}

impl std::fmt::Debug for ConsentForm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConsentForm")
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

/// `POST /hcp/patients/{id}/consent`: records the sharing consent by access key or paper form.
pub async fn give_consent(
    State(app): State<App>,
    Extension(locale): Extension<Locale>,
    user: PortalUser,
    Path(id): Path<Uuid>,
    Form(form): Form<ConsentForm>,
) -> Result<Response, HttpError> {
    // The page offers two methods; anything but the paper form is taken as the access key.
    let input = if Method::parse(&form.method) == Some(Method::Form) {
        ConsentInput {
            method: Method::Form.code().to_owned(),
            access_key: None,
            form_ref: Some(form.form_ref.trim().to_owned()),
            kind: form.kind.filter(|k| !k.is_empty()),
        }
    } else {
        ConsentInput {
            method: Method::AccessKey.code().to_owned(),
            access_key: Some(form.access_key.trim().to_owned()),
            form_ref: None,
            kind: form.kind.filter(|k| !k.is_empty()),
        }
    };
    match app
        .give_consent(&user.session, &user.caller, id, input)
        .await
    {
        Ok(_) => Ok(see_other(patient_page(id, Some("consent")))),
        Err(e @ (AppError::Invalid { .. } | AppError::Forbidden { .. })) => {
            let page = patient(&app, locale, &user, id, None, problems(locale, &e)).await?;
            Ok(form_again(StatusCode::UNPROCESSABLE_ENTITY, page))
        }
        Err(e) => Err(HttpError(e)),
    }
}

/// The care episode form: the times as Hong Kong's wall clock (`datetime-local`), optional.
#[derive(Debug, Deserialize)]
pub struct EpisodeForm {
    #[serde(default)]
    kind: String,
    #[serde(default)]
    start: String,
    #[serde(default)]
    planned_end: String,
}

/// An optional `datetime-local` field: empty is none; anything else must be a time.
fn local_time(field: &'static str, text: &str) -> Result<Option<time::OffsetDateTime>, AppError> {
    if text.trim().is_empty() {
        return Ok(None);
    }
    ehrshare_core::clock::parse_hong_kong_local(text)
        .map(Some)
        .ok_or_else(|| ehrshare_app::error::invalid(field, "invalid-time", "a date and a time"))
}

/// `POST /hcp/patients/{id}/episode`: opens a care episode at the user's provider.
pub async fn open_episode(
    State(app): State<App>,
    Extension(locale): Extension<Locale>,
    user: PortalUser,
    Path(id): Path<Uuid>,
    Form(form): Form<EpisodeForm>,
) -> Result<Response, HttpError> {
    let opened = match (
        local_time("/start", &form.start),
        local_time("/planned_end", &form.planned_end),
    ) {
        (Ok(start), Ok(planned_end)) => {
            app.open_episode(
                &user.session,
                &user.caller,
                id,
                ehrshare_app::episode::EpisodeInput {
                    kind: form.kind.trim().to_owned(),
                    location: None,
                    start,
                    planned_end,
                },
            )
            .await
        }
        (Err(e), _) | (_, Err(e)) => Err(e),
    };
    match opened {
        Ok(_) => Ok(see_other(patient_page(id, Some("episode")))),
        Err(e @ (AppError::Invalid { .. } | AppError::Forbidden { .. })) => {
            let page = patient(&app, locale, &user, id, None, problems(locale, &e)).await?;
            Ok(form_again(StatusCode::UNPROCESSABLE_ENTITY, page))
        }
        Err(e) => Err(HttpError(e)),
    }
}

/// `POST /hcp/patients/{id}/episodes/{episode}/close`: closes a care episode of the user's
/// provider (the after-care window then runs from now).
pub async fn close_episode(
    State(app): State<App>,
    Extension(locale): Extension<Locale>,
    user: PortalUser,
    Path((id, episode)): Path<(Uuid, Uuid)>,
) -> Result<Response, HttpError> {
    match app
        .close_episode(&user.session, &user.caller, id, episode)
        .await
    {
        Ok(()) => Ok(see_other(patient_page(id, Some("closed")))),
        Err(
            e @ (AppError::Invalid { .. } | AppError::Forbidden { .. } | AppError::Conflict { .. }),
        ) => {
            let page = patient(&app, locale, &user, id, None, problems(locale, &e)).await?;
            Ok(form_again(StatusCode::UNPROCESSABLE_ENTITY, page))
        }
        Err(e) => Err(HttpError(e)),
    }
}
