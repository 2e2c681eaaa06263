//! The provider portal's entry (`/hcp`, SPEC 4.2 and 5): the login page as the real system
//! shows it (user name, password, security token; the five important reminders and the user
//! tips), the logged-in start page, and logout.
//!
//! Security-sensitive:
//! - Login and logout are POSTs (no state change on GET); the session middleware checks the
//!   origin of every form post and the CSRF token of every one a session cookie authenticates
//!   (the logout form carries it).
//! - A refused login says one thing whatever the reason (the audit log has the reason); the
//!   user name is shown back escaped, the password and code never.
//! - Pages about a logged-in user are `Cache-Control: no-store` (the security middleware's
//!   default), so after logout the back button finds nothing to show.

use askama::Template;
use axum::extract::{FromRequestParts, State};
use axum::http::StatusCode;
use axum::http::header::{LOCATION, SET_COOKIE};
use axum::http::request::Parts;
use axum::response::{Html, IntoResponse, Response};
use axum::{Extension, Form};
use ehrshare_app::auth::{Session, Stage, Subject};
use ehrshare_app::caller::Caller;
use ehrshare_app::login::LoginInput;
use ehrshare_app::{App, AppError};
use serde::Deserialize;

use crate::error::HttpError;
use crate::i18n::{Locale, PortalLocale};
use crate::session::{Anonymous, AnyStage, CookieSettings};

/// Where the portal starts.
pub const HOME: &str = "/hcp";
/// The login page.
pub const LOGIN: &str = "/hcp/login";
/// The first login's (or a reset's) password change.
pub const PASSWORD: &str = "/hcp/password";
/// The first login's token enrolment.
pub const TOKEN: &str = "/hcp/token";

/// The page a session at `stage` must see next.
fn next_page(stage: Stage) -> &'static str {
    match stage {
        Stage::Ready => HOME,
        Stage::MustChangePassword => PASSWORD,
        Stage::MustEnrolToken => TOKEN,
    }
}

/// A provider's user at any stage of logging in (for the first-login pages); anyone else is
/// sent to the login page.
#[derive(Debug)]
pub struct PortalSession {
    pub session: Session,
    pub caller: Caller,
}

impl FromRequestParts<App> for PortalSession {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, Self::Rejection> {
        match AnyStage::from_request_parts(parts, app).await {
            Ok(AnyStage { session, caller }) if matches!(&session.subject, Subject::Account(a) if a.hcp_id.is_some()) => {
                Ok(PortalSession { session, caller })
            }
            _ => Err(see_other(LOGIN)),
        }
    }
}

/// A provider's user, fully logged in (password changed, token enrolled). Anyone else is sent
/// to the login page.
#[derive(Debug)]
pub struct PortalUser {
    pub session: Session,
    pub caller: Caller,
}

impl FromRequestParts<App> for PortalUser {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, Self::Rejection> {
        let PortalSession { session, caller } =
            PortalSession::from_request_parts(parts, app).await?;
        if session.stage == Stage::Ready {
            Ok(PortalUser { session, caller })
        } else {
            Err(see_other(next_page(session.stage)))
        }
    }
}

/// A 303 to `to`: after every portal form post, and for pages that need a login.
pub(crate) fn see_other(to: impl Into<String>) -> Response {
    (StatusCode::SEE_OTHER, [(LOCATION, to.into())]).into_response()
}

#[derive(Template)]
#[template(path = "hcp_login.html")]
struct LoginPage {
    locale: Locale,
    all_locales: [Locale; 2],
    /// The user name as typed, shown back after a refusal.
    user_name: String,
    /// The message id of why the login was refused.
    problem: Option<&'static str>,
}

/// `GET /hcp/login`.
pub async fn login_page(Extension(locale): Extension<Locale>) -> Result<Html<String>, HttpError> {
    render_login(locale, String::new(), None)
}

fn render_login(
    locale: Locale,
    user_name: String,
    problem: Option<&'static str>,
) -> Result<Html<String>, HttpError> {
    let page = LoginPage {
        locale,
        all_locales: super::ALL_LOCALES,
        user_name,
        problem,
    };
    Ok(Html(crate::render::render_template(&page)?))
}

/// The login form (its `Debug` shows no secret).
#[derive(Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    user_name: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    totp: String,
}

impl std::fmt::Debug for LoginForm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginForm")
            .field("user_name", &self.user_name)
            .finish_non_exhaustive()
    }
}

/// `POST /hcp/login`: a new session, then the start page (or the first-login steps).
pub async fn log_in(
    State(app): State<App>,
    Extension(locale): Extension<Locale>,
    Extension(cookies): Extension<CookieSettings>,
    Anonymous(caller): Anonymous,
    Form(form): Form<LoginForm>,
) -> Result<Response, HttpError> {
    let totp = Some(form.totp.trim().to_owned()).filter(|t| !t.is_empty());
    let user_name = form.user_name.trim().to_owned();
    let refused = |status: StatusCode, problem| -> Result<Response, HttpError> {
        let page = render_login(locale, user_name.clone(), Some(problem))?;
        Ok(form_again(status, page))
    };
    let done = match app
        .log_in(
            &caller,
            LoginInput {
                user_name: form.user_name,
                password: form.password,
                totp,
            },
        )
        .await
    {
        Ok(done) => done,
        Err(AppError::AuthFailed { .. } | AppError::Invalid { .. }) => {
            return refused(StatusCode::UNAUTHORIZED, "login-refused");
        }
        Err(AppError::Throttled { .. }) => {
            return refused(StatusCode::TOO_MANY_REQUESTS, "login-throttled");
        }
        Err(e) => return Err(HttpError(e)),
    };
    let mut response = see_other(next_page(done.stage));
    response
        .headers_mut()
        .insert(SET_COOKIE, cookies.set(&done.token));
    Ok(response)
}

#[derive(Template)]
#[template(path = "hcp_home.html")]
struct HomePage {
    locale: Locale,
    all_locales: [Locale; 2],
    name: String,
    role: String,
    provider: String,
    csrf_token: String,
    /// Whether the user manages the provider's accounts.
    user_admin: bool,
}

/// `GET /hcp`: the start page of a logged-in provider's user.
pub async fn home(
    State(app): State<App>,
    Extension(locale): Extension<Locale>,
    user: PortalUser,
) -> Result<Html<String>, HttpError> {
    let Subject::Account(account) = &user.session.subject else {
        return Err(HttpError(AppError::Unauthenticated));
    };
    let provider = match account.hcp_id {
        Some(h) => {
            let p = app.provider(h).await?;
            match locale {
                Locale::ZhHk => p.hcp.name_zh,
                Locale::En => p.hcp.name_en,
            }
        }
        None => String::new(),
    };
    let name = match (locale, &account.name_zh) {
        (Locale::ZhHk, Some(zh)) => zh.clone(),
        _ => account.name_en.clone(),
    };
    let page = HomePage {
        locale,
        all_locales: super::ALL_LOCALES,
        name,
        role: ehrshare_core::profession::Role::parse(&account.role)
            .map(|r| match locale {
                Locale::ZhHk => r.name_zh().to_owned(),
                Locale::En => r.name_en().to_owned(),
            })
            .unwrap_or_else(|| account.role.clone()),
        provider,
        csrf_token: user.session.csrf_token.clone().unwrap_or_default(),
        user_admin: account.user_admin,
    };
    Ok(Html(crate::render::render_template(&page)?))
}

/// `POST /hcp/logout`: ends the session (its CSRF token checked by the session middleware).
pub async fn log_out(
    State(app): State<App>,
    Extension(cookies): Extension<CookieSettings>,
    user: PortalUser,
) -> Result<Response, HttpError> {
    app.log_out(&user.session, &user.caller).await?;
    let mut response = see_other(LOGIN);
    response.headers_mut().insert(SET_COOKIE, cookies.clear());
    Ok(response)
}

/// A page's final body with a status other than 200 (a form shown again with its problems),
/// which the error renderer must leave alone.
pub(crate) fn form_again(status: StatusCode, page: Html<String>) -> Response {
    let mut response = (status, page).into_response();
    response.extensions_mut().insert(crate::error::Rendered);
    response
}

/// The messages for an application's refusal of a form (`problem-<code>` where the portal
/// has one): a single problem's refusal message, else each field problem's, else a generic one.
pub(crate) fn problems(locale: Locale, e: &AppError) -> Vec<String> {
    let known = |code: &str| {
        let id = format!("problem-{code}");
        locale.has(&id).then(|| locale.t(&id))
    };
    match e {
        // One problem: the refusal's own message says it best where the portal has one.
        AppError::Invalid { code, fields, .. } if fields.len() <= 1 && known(code).is_some() => {
            known(code).into_iter().collect()
        }
        AppError::Invalid { code, fields, .. } => {
            let mut out: Vec<String> = fields.iter().filter_map(|f| known(f.code)).collect();
            if out.is_empty() {
                out.push(known(code).unwrap_or_else(|| locale.t("problem-generic")));
            }
            out
        }
        AppError::Conflict { code, .. } | AppError::Forbidden { code, .. } => {
            vec![known(code).unwrap_or_else(|| locale.t("problem-generic"))]
        }
        _ => vec![locale.t("problem-generic")],
    }
}

#[derive(Template)]
#[template(path = "hcp_password.html")]
struct PasswordPage {
    locale: Locale,
    all_locales: [Locale; 2],
    csrf_token: String,
    first: bool,
    rules: String,
    problems: Vec<String>,
}

fn password_page(
    app: &App,
    locale: Locale,
    s: &PortalSession,
    problems: Vec<String>,
) -> Result<Html<String>, HttpError> {
    let policy = app.settings().auth.password;
    let page = PasswordPage {
        locale,
        all_locales: super::ALL_LOCALES,
        csrf_token: s.session.csrf_token.clone().unwrap_or_default(),
        first: s.session.stage == Stage::MustChangePassword,
        rules: locale.t_with(
            "hcp-password-rules",
            &[
                ("min", policy.min_chars.to_string()),
                ("max", policy.max_chars.to_string()),
                ("classes", policy.min_classes.to_string()),
                ("history", policy.history.to_string()),
            ],
        ),
        problems,
    };
    Ok(Html(crate::render::render_template(&page)?))
}

/// `GET /hcp/password`: change one's password (required at the first login and after a reset).
pub async fn password_form(
    State(app): State<App>,
    Extension(locale): Extension<Locale>,
    s: PortalSession,
) -> Result<Html<String>, HttpError> {
    password_page(&app, locale, &s, Vec::new())
}

/// The password form.
#[derive(Deserialize)]
pub struct PasswordForm {
    #[serde(default)]
    current_password: String,
    #[serde(default)]
    new_password: String,
    #[serde(default)]
    confirm_password: String,
}

impl std::fmt::Debug for PasswordForm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PasswordForm")
    }
}

/// `POST /hcp/password`: the change, then the next step (token enrolment, or the portal).
pub async fn change_password(
    State(app): State<App>,
    Extension(locale): Extension<Locale>,
    s: PortalSession,
    Form(form): Form<PasswordForm>,
) -> Result<Response, HttpError> {
    if form.new_password != form.confirm_password {
        let page = password_page(
            &app,
            locale,
            &s,
            vec![locale.t("problem-password-mismatch")],
        )?;
        return Ok(form_again(StatusCode::UNPROCESSABLE_ENTITY, page));
    }
    match app
        .change_password(
            &s.session,
            &s.caller,
            &form.current_password,
            &form.new_password,
        )
        .await
    {
        Ok(stage) => Ok(see_other(next_page(stage))),
        Err(e @ AppError::Invalid { .. }) => {
            let page = password_page(&app, locale, &s, problems(locale, &e))?;
            Ok(form_again(StatusCode::UNPROCESSABLE_ENTITY, page))
        }
        Err(e) => Err(HttpError(e)),
    }
}

#[derive(Template)]
#[template(path = "hcp_token.html")]
struct TokenPage {
    locale: Locale,
    all_locales: [Locale; 2],
    csrf_token: String,
    /// Set once a secret is offered: the QR code (our own SVG) and the secret for typing.
    offer: Option<(String, String)>,
    problems: Vec<String>,
}

fn token_page(
    locale: Locale,
    s: &PortalSession,
    offer: Option<(String, String)>,
    problems: Vec<String>,
) -> Result<Html<String>, HttpError> {
    let page = TokenPage {
        locale,
        all_locales: super::ALL_LOCALES,
        csrf_token: s.session.csrf_token.clone().unwrap_or_default(),
        offer,
        problems,
    };
    Ok(Html(crate::render::render_template(&page)?))
}

/// `GET /hcp/token`: enrol the security token (the first login's second step).
pub async fn token_form(
    Extension(locale): Extension<Locale>,
    s: PortalSession,
) -> Result<Response, HttpError> {
    if s.session.stage != Stage::MustEnrolToken {
        return Ok(see_other(next_page(s.session.stage)));
    }
    Ok(token_page(locale, &s, None, Vec::new())?.into_response())
}

/// `POST /hcp/token`: a fresh secret, shown as a QR code and as text.
pub async fn begin_token(
    State(app): State<App>,
    Extension(locale): Extension<Locale>,
    s: PortalSession,
) -> Result<Response, HttpError> {
    if s.session.stage != Stage::MustEnrolToken {
        return Ok(see_other(next_page(s.session.stage)));
    }
    let e = app.begin_token_enrolment(&s.session, &s.caller).await?;
    let qr = crate::qr::svg(&e.otpauth_uri).map_err(HttpError)?;
    Ok(token_page(locale, &s, Some((qr, e.secret)), Vec::new())?.into_response())
}

/// The code from the new token.
#[derive(Debug, Deserialize)]
pub struct TokenCodeForm {
    #[serde(default)]
    code: String,
}

/// `POST /hcp/token/confirm`: the code from the new token finishes the first login.
pub async fn confirm_token(
    State(app): State<App>,
    Extension(locale): Extension<Locale>,
    s: PortalSession,
    Form(form): Form<TokenCodeForm>,
) -> Result<Response, HttpError> {
    match app
        .confirm_token_enrolment(&s.session, &s.caller, form.code.trim())
        .await
    {
        Ok(stage) => Ok(see_other(next_page(stage))),
        Err(e @ (AppError::Invalid { .. } | AppError::Conflict { .. })) => {
            let page = token_page(locale, &s, None, problems(locale, &e))?;
            Ok(form_again(StatusCode::UNPROCESSABLE_ENTITY, page))
        }
        Err(e) => Err(HttpError(e)),
    }
}
