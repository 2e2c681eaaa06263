//! `/hcp/patients/register`: registering a person at the provider (channel `hcp`).

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{Html, Response};
use axum::{Extension, Form};
use ehrshare_app::{App, AppError};
use serde::Deserialize;

use super::*;
use crate::error::HttpError;
use crate::i18n::{Locale, PortalLocale};
use crate::pages::hcp::{PortalUser, form_again, problems, see_other};

/// The registration form as typed (kept after a refusal).
#[derive(Debug, Default, Deserialize)]
pub struct RegisterForm {
    #[serde(default)]
    name_en: String,
    #[serde(default)]
    name_zh: String,
    #[serde(default)]
    date_of_birth: String,
    #[serde(default)]
    sex: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    issuer: String,
    #[serde(default)]
    number: String,
    #[serde(default)]
    phone: String,
    #[serde(default)]
    language: String,
}

#[derive(Template)]
#[template(path = "hcp_register.html")]
struct RegisterPage {
    locale: Locale,
    all_locales: [Locale; 2],
    csrf_token: String,
    typed: RegisterForm,
    problems: Vec<String>,
}

impl RegisterPage {
    fn types(&self) -> &'static [&'static str] {
        &DOCUMENT_TYPES
    }
}

fn register_page(
    locale: Locale,
    user: &PortalUser,
    typed: RegisterForm,
    problems: Vec<String>,
) -> Result<Html<String>, HttpError> {
    let page = RegisterPage {
        locale,
        all_locales: crate::pages::ALL_LOCALES,
        csrf_token: user.session.csrf_token.clone().unwrap_or_default(),
        typed,
        problems,
    };
    Ok(Html(crate::render::render_template(&page)?))
}

/// `GET /hcp/patients/register`: register a person who is not yet in the system.
pub async fn register_form(
    Extension(locale): Extension<Locale>,
    user: PortalUser,
) -> Result<Html<String>, HttpError> {
    let typed = RegisterForm {
        kind: "hkid".to_owned(),
        sex: "female".to_owned(),
        language: "zh-HK".to_owned(),
        ..RegisterForm::default()
    };
    register_page(locale, &user, typed, Vec::new())
}

/// `POST /hcp/patients/register`: registers them (identity seen at the counter) and opens
/// their page; the access key is sent to them.
pub async fn register(
    State(app): State<App>,
    Extension(locale): Extension<Locale>,
    user: PortalUser,
    Form(form): Form<RegisterForm>,
) -> Result<Response, HttpError> {
    let blank = |s: &str| Some(s.trim().to_owned()).filter(|v| !v.is_empty());
    let input = ehrshare_core::registration::RegistrationInput {
        channel: "hcp".to_owned(),
        name_en: form.name_en.trim().to_owned(),
        name_zh: blank(&form.name_zh),
        date_of_birth: form.date_of_birth.trim().to_owned(),
        sex: form.sex.trim().to_owned(),
        capacity: None,
        document: ehrshare_core::registration::DocumentInput {
            kind: form.kind.trim().to_owned(),
            issuer: blank(&form.issuer),
            number: form.number.trim().to_owned(),
        },
        phone: form.phone.trim().to_owned(),
        phone2: None,
        email: None,
        address: None,
        language: form.language.trim().to_owned(),
        notify_channel: "sms".to_owned(),
        refuses_access_notices: false,
        sdm: None,
    };
    match app
        .register_at_provider(&user.session, &user.caller, input)
        .await
    {
        Ok(reg) => Ok(see_other(patient_page(
            reg.recipient.id,
            Some("registered"),
        ))),
        Err(e @ (AppError::Invalid { .. } | AppError::Conflict { .. })) => {
            let page = register_page(locale, &user, form, problems(locale, &e))?;
            Ok(form_again(StatusCode::UNPROCESSABLE_ENTITY, page))
        }
        Err(e) => Err(HttpError(e)),
    }
}
