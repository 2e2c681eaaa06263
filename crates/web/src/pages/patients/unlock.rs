//! `/hcp/patients/{id}/unlock`: restricted items unlocked by the patient's one-time code.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::{Extension, Form};
use ehrshare_app::{App, AppError};
use serde::Deserialize;
use uuid::Uuid;

use crate::error::HttpError;
use crate::i18n::{Locale, PortalLocale};
use crate::pages::hcp::{PortalUser, form_again, problems, see_other};

#[derive(Template)]
#[template(path = "hcp_unlock.html")]
struct UnlockPage {
    locale: Locale,
    all_locales: [Locale; 2],
    csrf_token: String,
    id: Uuid,
    /// The request waiting for the patient's code, once asked.
    challenge: Option<Uuid>,
    reason: String,
    problems: Vec<String>,
}

fn unlock_page(
    locale: Locale,
    user: &PortalUser,
    id: Uuid,
    challenge: Option<Uuid>,
    reason: String,
    problems: Vec<String>,
) -> Result<Html<String>, HttpError> {
    let page = UnlockPage {
        locale,
        all_locales: crate::pages::ALL_LOCALES,
        csrf_token: user.session.csrf_token.clone().unwrap_or_default(),
        id,
        challenge,
        reason,
        problems,
    };
    Ok(Html(crate::render::render_template(&page)?))
}

/// The reason for an unlock.
#[derive(Debug, Deserialize)]
pub struct UnlockForm {
    #[serde(default)]
    reason: String,
}

/// `POST /hcp/patients/{id}/unlock`: states a reason; a one-time password goes to the patient
/// (the answer is the same whether or not anything is restricted).
pub async fn request_unlock(
    State(app): State<App>,
    Extension(locale): Extension<Locale>,
    user: PortalUser,
    Path(id): Path<Uuid>,
    Form(form): Form<UnlockForm>,
) -> Result<Response, HttpError> {
    match app
        .request_unlock(&user.session, &user.caller, id, &form.reason)
        .await
    {
        Ok(challenge) => Ok(unlock_page(
            locale,
            &user,
            id,
            Some(challenge),
            form.reason.trim().to_owned(),
            Vec::new(),
        )?
        .into_response()),
        Err(e @ (AppError::Invalid { .. } | AppError::Forbidden { .. })) => {
            let page = unlock_page(locale, &user, id, None, form.reason, problems(locale, &e))?;
            Ok(form_again(StatusCode::UNPROCESSABLE_ENTITY, page))
        }
        Err(e) => Err(HttpError(e)),
    }
}

/// The patient's one-time password.
#[derive(Debug, Deserialize)]
pub struct UnlockCodeForm {
    challenge: Uuid,
    #[serde(default)]
    reason: String,
    #[serde(default)]
    code: String,
}

/// `POST /hcp/patients/{id}/unlock/confirm`: the patient's code unlocks the restricted items
/// for this provider's care episode (four hours); then the summary.
pub async fn confirm_unlock(
    State(app): State<App>,
    Extension(locale): Extension<Locale>,
    user: PortalUser,
    Path(id): Path<Uuid>,
    Form(form): Form<UnlockCodeForm>,
) -> Result<Response, HttpError> {
    match app
        .confirm_unlock(&user.session, &user.caller, id, form.challenge, &form.code)
        .await
    {
        Ok(()) => Ok(see_other(format!("/hcp/patients/{id}/record"))),
        Err(e @ (AppError::Invalid { .. } | AppError::Forbidden { .. })) => {
            let page = unlock_page(
                locale,
                &user,
                id,
                Some(form.challenge),
                form.reason,
                problems(locale, &e),
            )?;
            Ok(form_again(StatusCode::UNPROCESSABLE_ENTITY, page))
        }
        Err(e) => Err(HttpError(e)),
    }
}
