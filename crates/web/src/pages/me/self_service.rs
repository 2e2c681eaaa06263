//! The patient portal's self-service pages (issue 27, items 1 and 8; ADR 0021): registering
//! online, setting up a login with the access key, a forgotten or changed password, and a new
//! contact confirmed by a code sent to it. The login-side pages accept a browser that has a
//! staff session (see `CurrentCsrf`), as the login page does.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{Html, Response};
use axum::{Extension, Form};
use ehrshare_app::person::DocumentLogin;
use ehrshare_app::self_service::Online;
use ehrshare_app::{App, AppError};
use serde::Deserialize;
use uuid::Uuid;

use super::PatientUser;
use crate::error::HttpError;
use crate::i18n::{Locale, PortalLocale};
use crate::pages::hcp::{form_again, problems, see_other};
use crate::session::{Anonymous, CurrentCsrf, PersonSession};

/// The registration form as typed (kept after a refusal).
#[derive(Debug, Default, Deserialize)]
pub struct RegisterForm {
    #[serde(default)]
    who: String,
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
    email: String,
    #[serde(default)]
    language: String,
    #[serde(default)]
    channel: String,
    #[serde(default)]
    parent_name_en: String,
    #[serde(default)]
    parent_kind: String,
    #[serde(default)]
    parent_number: String,
    #[serde(default)]
    parent_phone: String,
    #[serde(default)]
    declared: Option<String>,
}

#[derive(Template)]
#[template(path = "me_register.html")]
struct RegisterPage {
    locale: Locale,
    all_locales: [Locale; 2],
    csrf: Option<String>,
    typed: RegisterForm,
    problems: Vec<String>,
    /// Whether "Register with iAM Smart" can be offered.
    iam_smart: bool,
    /// The identity provider that verified the logged-in person, if any.
    verified: Option<String>,
}

impl RegisterPage {
    fn types(&self) -> &'static [&'static str] {
        &crate::pages::patients::DOCUMENT_TYPES
    }
}

async fn register_page(
    app: &App,
    locale: Locale,
    csrf: Option<String>,
    session: &PersonSession,
    mut typed: RegisterForm,
    problems: Vec<String>,
) -> Result<Html<String>, HttpError> {
    let verified = match &session.0 {
        Some(s) => app.verified_through(s).await?,
        None => None,
    };
    // The person iAM Smart verified registers the document it asserted.
    if let (Some(_), Some(ehrshare_app::auth::Subject::Person(p))) =
        (&verified, session.0.as_ref().map(|s| &s.subject))
        && typed.number.is_empty()
    {
        typed.kind = p.doc_type.clone();
        typed.number = p.doc_number.clone();
    }
    let page = RegisterPage {
        locale,
        all_locales: crate::pages::ALL_LOCALES,
        csrf,
        typed,
        problems,
        iam_smart: app.settings().external_login(),
        verified,
    };
    Ok(Html(crate::render::render_template(&page)?))
}

/// `GET /me/register`.
pub async fn register_form(
    State(app): State<App>,
    Extension(locale): Extension<Locale>,
    CurrentCsrf(csrf): CurrentCsrf,
    session: PersonSession,
) -> Result<Html<String>, HttpError> {
    let typed = RegisterForm {
        who: "self".to_owned(),
        kind: "hkid".to_owned(),
        parent_kind: "hkid".to_owned(),
        language: locale.tag().to_owned(),
        channel: "sms".to_owned(),
        ..RegisterForm::default()
    };
    register_page(&app, locale, csrf, &session, typed, Vec::new()).await
}

#[derive(Template)]
#[template(path = "me_registered.html")]
struct RegisteredPage {
    locale: Locale,
    all_locales: [Locale; 2],
    /// The registration, when it is active at once (otherwise its reference is sent).
    reference: Option<Uuid>,
}

/// `POST /me/register`: registered online; the answer says whether it waits for verification.
pub async fn register(
    State(app): State<App>,
    Extension(locale): Extension<Locale>,
    Anonymous(mut caller): Anonymous,
    CurrentCsrf(csrf): CurrentCsrf,
    session: PersonSession,
    Form(form): Form<RegisterForm>,
) -> Result<Response, HttpError> {
    let blank = |s: &str| Some(s.trim().to_owned()).filter(|v| !v.is_empty());
    let child = form.who == "child";
    if child && form.declared.is_none() {
        let page = register_page(
            &app,
            locale,
            csrf,
            &session,
            form,
            vec![locale.t("me-register-declaration-missing")],
        )
        .await?;
        return Ok(form_again(StatusCode::UNPROCESSABLE_ENTITY, page));
    }
    let input = ehrshare_core::registration::RegistrationInput {
        channel: "online".to_owned(),
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
        email: blank(&form.email),
        address: None,
        language: form.language.trim().to_owned(),
        notify_channel: form.channel.trim().to_owned(),
        refuses_access_notices: false,
        sdm: child.then(|| ehrshare_core::registration::SdmInput {
            name_en: form.parent_name_en.trim().to_owned(),
            name_zh: None,
            document: ehrshare_core::registration::DocumentInput {
                kind: form.parent_kind.trim().to_owned(),
                issuer: None,
                number: form.parent_number.trim().to_owned(),
            },
            category: "parent".to_owned(),
            no_higher_available: false,
            relationship_proof: Some("declared online by the parent".to_owned()),
            phone: form.parent_phone.trim().to_owned(),
            email: None,
            notify_channel: None,
        }),
    };
    if let Some(s) = &session.0 {
        caller.actor = s.actor();
    }
    match app
        .register_online(&caller, session.0.as_ref(), input)
        .await
    {
        Ok(done) => {
            let (status, reference) = match done {
                Online::Verified(reg) => (StatusCode::CREATED, Some(reg.recipient.id)),
                Online::Received => (StatusCode::ACCEPTED, None),
            };
            let page = RegisteredPage {
                locale,
                all_locales: crate::pages::ALL_LOCALES,
                reference,
            };
            Ok(form_again(
                status,
                Html(crate::render::render_template(&page)?),
            ))
        }
        Err(
            e @ (AppError::Invalid { .. } | AppError::Conflict { .. } | AppError::Throttled { .. }),
        ) => {
            let status = match e {
                AppError::Throttled { .. } => StatusCode::TOO_MANY_REQUESTS,
                AppError::Conflict { .. } => StatusCode::CONFLICT,
                _ => StatusCode::UNPROCESSABLE_ENTITY,
            };
            let list = match &e {
                AppError::Throttled { code, .. } => vec![locale.t(&format!("problem-{code}"))],
                _ => problems(locale, &e),
            };
            let page = register_page(&app, locale, csrf, &session, form, list).await?;
            Ok(form_again(status, page))
        }
        Err(e) => Err(HttpError(e)),
    }
}

/// The access-key form (activation, forgotten password): its `Debug` shows no secret.
#[derive(Default, Deserialize)]
pub struct KeyForm {
    #[serde(default)]
    doc_type: String,
    #[serde(default)]
    issuer: String,
    #[serde(default)]
    number: String,
    #[serde(default)]
    access_key: String,
    #[serde(default)]
    password: String,
}

impl std::fmt::Debug for KeyForm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyForm")
    }
}

impl KeyForm {
    fn document(&self) -> DocumentLogin {
        DocumentLogin {
            kind: Some(self.doc_type.clone()).filter(|k| !k.is_empty()),
            issuer: Some(self.issuer.trim().to_owned()).filter(|i| !i.is_empty()),
            number: self.number.clone(),
        }
    }
}

#[derive(Template)]
#[template(path = "me_activate.html")]
struct KeyPage {
    locale: Locale,
    all_locales: [Locale; 2],
    csrf: Option<String>,
    title: String,
    intro: String,
    action: &'static str,
    with_password: bool,
    doc_type: String,
    issuer: String,
    number: String,
    problems: Vec<String>,
}

fn key_page(
    locale: Locale,
    csrf: Option<String>,
    activation: bool,
    typed: &KeyForm,
    problems: Vec<String>,
) -> Result<Html<String>, HttpError> {
    let (title, intro, action) = if activation {
        ("me-activate-title", "me-activate-intro", "/me/activate")
    } else {
        ("me-forgot-title", "me-forgot-intro", "/me/forgot")
    };
    let page = KeyPage {
        locale,
        all_locales: crate::pages::ALL_LOCALES,
        csrf,
        title: locale.t(title),
        intro: locale.t(intro),
        action,
        with_password: activation,
        doc_type: if typed.doc_type.is_empty() {
            "hkid".to_owned()
        } else {
            typed.doc_type.clone()
        },
        issuer: typed.issuer.clone(),
        number: typed.number.clone(),
        problems,
    };
    Ok(Html(crate::render::render_template(&page)?))
}

/// `GET /me/activate`: set up a login with the access key.
pub async fn activate_form(
    Extension(locale): Extension<Locale>,
    CurrentCsrf(csrf): CurrentCsrf,
) -> Result<Html<String>, HttpError> {
    key_page(locale, csrf, true, &KeyForm::default(), Vec::new())
}

/// `POST /me/activate`.
pub async fn activate(
    State(app): State<App>,
    Extension(locale): Extension<Locale>,
    Anonymous(caller): Anonymous,
    CurrentCsrf(csrf): CurrentCsrf,
    Form(form): Form<KeyForm>,
) -> Result<Response, HttpError> {
    let refused = |status, list: Vec<String>| -> Result<Response, HttpError> {
        Ok(form_again(
            status,
            key_page(locale, csrf.clone(), true, &form, list)?,
        ))
    };
    match app
        .activate_person(&caller, form.document(), &form.access_key, &form.password)
        .await
    {
        Ok(_) => Ok(see_other("/me/login?done=activated")),
        Err(AppError::AuthFailed { .. }) => {
            refused(StatusCode::UNAUTHORIZED, vec![locale.t("me-reset-refused")])
        }
        Err(AppError::Conflict { .. }) => {
            refused(StatusCode::CONFLICT, vec![locale.t("me-already-activated")])
        }
        Err(e @ AppError::Invalid { .. }) => {
            refused(StatusCode::UNPROCESSABLE_ENTITY, problems(locale, &e))
        }
        Err(AppError::Throttled { .. }) => refused(
            StatusCode::TOO_MANY_REQUESTS,
            vec![locale.t("login-throttled")],
        ),
        Err(e) => Err(HttpError(e)),
    }
}

/// `GET /me/forgot`: a forgotten password, with the access key.
pub async fn forgot_form(
    Extension(locale): Extension<Locale>,
    CurrentCsrf(csrf): CurrentCsrf,
) -> Result<Html<String>, HttpError> {
    key_page(locale, csrf, false, &KeyForm::default(), Vec::new())
}

#[derive(Template)]
#[template(path = "me_password.html")]
struct PasswordPage {
    locale: Locale,
    all_locales: [Locale; 2],
    csrf: Option<String>,
    challenge: Uuid,
    problems: Vec<String>,
}

fn password_page(
    locale: Locale,
    csrf: Option<String>,
    challenge: Uuid,
    problems: Vec<String>,
) -> Result<Html<String>, HttpError> {
    let page = PasswordPage {
        locale,
        all_locales: crate::pages::ALL_LOCALES,
        csrf,
        challenge,
        problems,
    };
    Ok(Html(crate::render::render_template(&page)?))
}

/// `POST /me/forgot`: a code goes to the registered contact; its form is shown.
pub async fn forgot(
    State(app): State<App>,
    Extension(locale): Extension<Locale>,
    Anonymous(caller): Anonymous,
    CurrentCsrf(csrf): CurrentCsrf,
    Form(form): Form<KeyForm>,
) -> Result<Response, HttpError> {
    match app
        .begin_password_reset(&caller, form.document(), &form.access_key)
        .await
    {
        Ok(challenge) => Ok(form_again(
            StatusCode::OK,
            password_page(locale, csrf, challenge, Vec::new())?,
        )),
        Err(AppError::AuthFailed { .. }) => Ok(form_again(
            StatusCode::UNAUTHORIZED,
            key_page(
                locale,
                csrf,
                false,
                &form,
                vec![locale.t("me-reset-refused")],
            )?,
        )),
        Err(AppError::Throttled { .. }) => Ok(form_again(
            StatusCode::TOO_MANY_REQUESTS,
            key_page(
                locale,
                csrf,
                false,
                &form,
                vec![locale.t("login-throttled")],
            )?,
        )),
        Err(e) => Err(HttpError(e)),
    }
}

/// `POST /me/password/code`: from the settings, a code to set a new password.
pub async fn password_code(
    State(app): State<App>,
    Extension(locale): Extension<Locale>,
    user: PatientUser,
) -> Result<Response, HttpError> {
    let csrf = user.session.csrf_token.clone();
    match app.begin_password_change(&user.session, &user.caller).await {
        Ok(challenge) => Ok(form_again(
            StatusCode::OK,
            password_page(locale, csrf, challenge, Vec::new())?,
        )),
        Err(e) => Err(HttpError(e)),
    }
}

/// The code and the new password (`Debug` shows no secret).
#[derive(Deserialize)]
pub struct NewPasswordForm {
    challenge: Uuid,
    #[serde(default)]
    code: String,
    #[serde(default)]
    password: String,
}

impl std::fmt::Debug for NewPasswordForm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NewPasswordForm")
    }
}

/// `POST /me/password`: sets the new password; logged in, back to the portal, otherwise to
/// the login page.
pub async fn set_password(
    State(app): State<App>,
    Extension(locale): Extension<Locale>,
    Anonymous(caller): Anonymous,
    CurrentCsrf(csrf): CurrentCsrf,
    session: PersonSession,
    Form(form): Form<NewPasswordForm>,
) -> Result<Response, HttpError> {
    match app
        .finish_password_reset(
            &caller,
            session.0.as_ref(),
            form.challenge,
            &form.code,
            &form.password,
        )
        .await
    {
        Ok(()) if session.0.is_some() => Ok(see_other("/me?done=password")),
        Ok(()) => Ok(see_other("/me/login?done=password")),
        Err(AppError::AuthFailed { .. }) => Ok(form_again(
            StatusCode::UNAUTHORIZED,
            password_page(
                locale,
                csrf,
                form.challenge,
                vec![locale.t("me-password-refused")],
            )?,
        )),
        Err(e @ AppError::Invalid { .. }) => Ok(form_again(
            StatusCode::UNPROCESSABLE_ENTITY,
            password_page(locale, csrf, form.challenge, problems(locale, &e))?,
        )),
        Err(e) => Err(HttpError(e)),
    }
}

/// A new contact as typed.
#[derive(Debug, Deserialize)]
pub struct ContactForm {
    #[serde(default)]
    kind: String,
    #[serde(default)]
    value: String,
}

#[derive(Template)]
#[template(path = "me_contact_code.html")]
struct ContactCodePage {
    locale: Locale,
    all_locales: [Locale; 2],
    csrf_token: String,
    recipient: Uuid,
    challenge: Uuid,
    problems: Vec<String>,
}

fn contact_code_page(
    locale: Locale,
    user: &PatientUser,
    recipient: Uuid,
    challenge: Uuid,
    problems: Vec<String>,
) -> Result<Html<String>, HttpError> {
    let page = ContactCodePage {
        locale,
        all_locales: crate::pages::ALL_LOCALES,
        csrf_token: user.session.csrf_token.clone().unwrap_or_default(),
        recipient,
        challenge,
        problems,
    };
    Ok(Html(crate::render::render_template(&page)?))
}

/// `POST /me/{recipient}/contact`: a code goes to the new contact; its form is shown.
pub async fn change_contact(
    State(app): State<App>,
    Extension(locale): Extension<Locale>,
    user: PatientUser,
    Path(recipient): Path<Uuid>,
    Form(form): Form<ContactForm>,
) -> Result<Response, HttpError> {
    match app
        .begin_contact_change(
            &user.session,
            &user.caller,
            recipient,
            &form.kind,
            &form.value,
        )
        .await
    {
        Ok(challenge) => Ok(form_again(
            StatusCode::OK,
            contact_code_page(locale, &user, recipient, challenge, Vec::new())?,
        )),
        Err(e @ AppError::Invalid { .. }) => {
            let html = super::settings_page(
                &app,
                locale,
                &user,
                recipient,
                super::SettingsNote::None,
                problems(locale, &e),
            )
            .await?;
            Ok(form_again(StatusCode::UNPROCESSABLE_ENTITY, html))
        }
        Err(e) => Err(HttpError(e)),
    }
}

/// The codes sent to the new contact and to the mobile number on file (`Debug` shows
/// neither).
#[derive(Deserialize)]
pub struct ContactCodeForm {
    challenge: Uuid,
    #[serde(default)]
    code: String,
    #[serde(default)]
    current_code: String,
}

impl std::fmt::Debug for ContactCodeForm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ContactCodeForm")
    }
}

/// `POST /me/{recipient}/contact/verify`: the registration takes the new contact.
pub async fn verify_contact(
    State(app): State<App>,
    Extension(locale): Extension<Locale>,
    user: PatientUser,
    Path(recipient): Path<Uuid>,
    Form(form): Form<ContactCodeForm>,
) -> Result<Response, HttpError> {
    match app
        .finish_contact_change(
            &user.session,
            &user.caller,
            recipient,
            form.challenge,
            &form.code,
            &form.current_code,
        )
        .await
    {
        Ok(()) => Ok(see_other(format!("/me/{recipient}/settings?contact=1"))),
        Err(e @ AppError::Invalid { .. }) => Ok(form_again(
            StatusCode::UNPROCESSABLE_ENTITY,
            contact_code_page(
                locale,
                &user,
                recipient,
                form.challenge,
                problems(locale, &e),
            )?,
        )),
        Err(e) => Err(HttpError(e)),
    }
}
