//! `/auth/oidc/*`: logging in (or linking an account) through the external OpenID Connect
//! provider, such as iAM Smart. The rules and token checks are in `ehrshare_app::oidc`.
//!
//! Security-sensitive: the state is also kept in a short-lived HttpOnly cookie set when the
//! browser leaves for the provider, and the callback must bring both back. Without that, an
//! attacker could hand a victim a callback URL from the attacker's own flow (login CSRF) and
//! link the victim's identity to the attacker's account, or log the victim in as the attacker.

use axum::Extension;
use axum::extract::{Query, State};
use axum::http::header::{COOKIE, LOCATION};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use ehrshare_app::oidc::{Finished, Purpose};
use ehrshare_app::{App, AppError};
use serde::Deserialize;

use crate::error::HttpError;
use crate::session::{Anonymous, CookieSettings, LoggedIn, with_cookie};

const STATE_COOKIE: &str = "ehrshare-oidc-state";

fn redirect(location: &str) -> Result<Response, HttpError> {
    let mut r = StatusCode::SEE_OTHER.into_response();
    r.headers_mut().insert(
        LOCATION,
        HeaderValue::from_str(location).map_err(|e| HttpError(AppError::Internal(Box::new(e))))?,
    );
    Ok(r)
}

/// The state in the URL we send the browser to.
fn state_of(url: &str) -> &str {
    url.split(['?', '&'])
        .find_map(|p| p.strip_prefix("state="))
        .unwrap_or("")
}

fn state_cookie(cookies: &CookieSettings, state: &str) -> HeaderValue {
    let secure = if cookies.secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{STATE_COOKIE}={state}; Path=/auth/oidc; HttpOnly; SameSite=Lax; Max-Age=600{secure}"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// Who is logging in.
#[derive(Debug, Clone, Deserialize)]
pub struct StartQuery {
    /// `patient` or `staff`.
    #[serde(rename = "for", default)]
    pub who: String,
}

/// `GET /auth/oidc/start?for=patient|staff`: off to the identity provider.
pub async fn start(
    State(app): State<App>,
    Extension(cookies): Extension<CookieSettings>,
    Query(q): Query<StartQuery>,
) -> Result<Response, HttpError> {
    let purpose = match q.who.as_str() {
        "patient" => Purpose::PersonLogin,
        "staff" => Purpose::AccountLogin,
        _ => {
            return Err(HttpError(AppError::Malformed {
                code: "malformed-request",
                message: "for=patient or for=staff".to_owned(),
                fields: Vec::new(),
            }));
        }
    };
    let url = app.begin_oidc(purpose, None).await?;
    let cookie = state_cookie(&cookies, state_of(&url));
    Ok(with_cookie(redirect(&url)?, cookie))
}

/// `POST /auth/oidc/link`: link the logged-in account to an identity at the provider.
pub async fn link(
    State(app): State<App>,
    Extension(cookies): Extension<CookieSettings>,
    LoggedIn { session, .. }: LoggedIn,
) -> Result<Response, HttpError> {
    let url = app.begin_oidc(Purpose::AccountLink, Some(&session)).await?;
    let cookie = state_cookie(&cookies, state_of(&url));
    Ok(with_cookie(redirect(&url)?, cookie))
}

/// What the provider sends back.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct CallbackQuery {
    #[serde(default)]
    pub code: String,
    #[serde(default)]
    pub state: String,
    #[serde(default)]
    pub error: Option<String>,
}

/// `GET /auth/oidc/callback`: back from the provider.
pub async fn callback(
    State(app): State<App>,
    Extension(cookies): Extension<CookieSettings>,
    Anonymous(caller): Anonymous,
    headers: HeaderMap,
    Query(q): Query<CallbackQuery>,
) -> Result<Response, HttpError> {
    let bound = headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .any(|(k, v)| k == STATE_COOKIE && !v.is_empty() && v == q.state);
    if q.error.is_some() || !bound {
        return Err(HttpError(AppError::AuthFailed {
            code: "external-login-failed",
            message: "the login through the identity provider could not be completed".to_owned(),
        }));
    }
    let clear = HeaderValue::from_static("ehrshare-oidc-state=; Path=/auth/oidc; Max-Age=0");
    match app.finish_oidc(&caller, &q.code, &q.state).await? {
        // Back to the portal the login was for: patients to `/me`, staff to `/hcp`.
        Finished::Linked => Ok(with_cookie(redirect("/hcp")?, clear)),
        Finished::LoggedIn(done) => {
            let home = match done.subject {
                ehrshare_app::auth::Subject::Person(_) => crate::pages::me::HOME,
                _ => "/hcp",
            };
            let r = with_cookie(redirect(home)?, cookies.set(&done.token));
            Ok(with_cookie(r, clear))
        }
    }
}
