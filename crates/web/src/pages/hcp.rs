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
use ehrshare_app::auth::{LoginInput, Session, Stage, Subject};
use ehrshare_app::caller::Caller;
use ehrshare_app::{App, AppError};
use serde::Deserialize;

use crate::error::HttpError;
use crate::i18n::{Locale, PortalLocale};
use crate::session::{Anonymous, AnyStage, CookieSettings};

/// Where the portal starts.
pub const HOME: &str = "/hcp";
/// The login page.
pub const LOGIN: &str = "/hcp/login";

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
        match AnyStage::from_request_parts(parts, app).await {
            Ok(AnyStage { session, caller })
                if session.stage == Stage::Ready
                    && matches!(&session.subject, Subject::Account(a) if a.hcp_id.is_some()) =>
            {
                Ok(PortalUser { session, caller })
            }
            _ => Err(see_other(LOGIN)),
        }
    }
}

/// A 303 to `to` (after a form post, and for pages that need a login).
fn see_other(to: &'static str) -> Response {
    (StatusCode::SEE_OTHER, [(LOCATION, to)]).into_response()
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
    Ok(Html(crate::render_template(&page)?))
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
        // The form again, with its message: a final body, not an error page.
        let mut response = (status, page).into_response();
        response.extensions_mut().insert(crate::error::Rendered);
        Ok(response)
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
    // The first-login steps (password change, token enrolment) are not pages yet: such a
    // session is sent to the start page, which sends it back here with the login refused.
    let mut response = see_other(HOME);
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
    };
    Ok(Html(crate::render_template(&page)?))
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
