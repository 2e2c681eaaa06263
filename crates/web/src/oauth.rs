//! `/oauth/*`: the OAuth 2 endpoints for clinic systems. Token, revocation and introspection
//! speak RFC 6749 / 7009 / 7662 (form bodies in, JSON out, `{"error": ...}` on failure); the
//! authorization endpoint is a page for the logged-in professional. The rules are in
//! `ehrshare_app::oauth`.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::header::{AUTHORIZATION, CACHE_CONTROL, LOCATION};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::{Extension, Form, Json};
use ehrshare_app::oauth::{AuthorizeRequest, TokenRequest};
use ehrshare_app::{App, AppError};
use serde::Deserialize;
use serde_json::json;

use crate::error::{HttpError, Rendered};
use crate::i18n::{Locale, PortalLocale};
use crate::session::{Anonymous, LoggedIn};

/// An RFC 6749 §5.2 error response.
fn oauth_error(err: AppError) -> Response {
    let (status, code, description) = match &err {
        AppError::AuthFailed { message, .. } => {
            (StatusCode::UNAUTHORIZED, "invalid_client", message.clone())
        }
        AppError::Invalid { code, message, .. } => {
            (StatusCode::BAD_REQUEST, *code, message.clone())
        }
        _ => return HttpError(err).into_response(),
    };
    let mut r = (
        status,
        Json(json!({"error": code, "error_description": description})),
    )
        .into_response();
    r.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if status == StatusCode::UNAUTHORIZED {
        r.headers_mut().insert(
            axum::http::header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"ehrshare\""),
        );
    }
    r.extensions_mut().insert(Rendered);
    r
}

/// Client credentials from HTTP Basic (RFC 6749 §2.3.1) or, failing that, the form.
fn client_credentials(
    headers: &HeaderMap,
    id: &Option<String>,
    secret: &Option<String>,
) -> (String, String) {
    let basic = headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| data_encoding::BASE64.decode(b.trim().as_bytes()).ok())
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| {
            s.split_once(':')
                .map(|(i, p)| (form_decode(i), form_decode(p)))
        });
    basic.unwrap_or_else(|| {
        (
            id.clone().unwrap_or_default(),
            secret.clone().unwrap_or_default(),
        )
    })
}

/// Basic credentials are form-encoded before base64 (RFC 6749 §2.3.1).
fn form_decode(s: &str) -> String {
    serde_urlencoded::from_str::<Vec<(String, String)>>(&format!("v={s}"))
        .ok()
        .and_then(|mut v| v.pop())
        .map(|(_, v)| v)
        .unwrap_or_default()
}

/// The token request's form.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct TokenForm {
    #[serde(default)]
    pub grant_type: String,
    #[serde(default)]
    pub client_id: Option<String>,
    #[serde(default)]
    pub client_secret: Option<String>,
    #[serde(default)]
    pub scope: Option<String>,
    #[serde(default)]
    pub code: Option<String>,
    #[serde(default)]
    pub redirect_uri: Option<String>,
    #[serde(default)]
    pub code_verifier: Option<String>,
    #[serde(default)]
    pub client_assertion_type: Option<String>,
    #[serde(default)]
    pub client_assertion: Option<String>,
}

/// `POST /oauth/token`.
pub async fn token(
    State(app): State<App>,
    Extension(base): Extension<crate::fhir::FhirBase>,
    Anonymous(caller): Anonymous,
    headers: HeaderMap,
    Form(form): Form<TokenForm>,
) -> Response {
    let (client_id, client_secret) =
        client_credentials(&headers, &form.client_id, &form.client_secret);
    let request = TokenRequest {
        grant_type: form.grant_type,
        client_id,
        client_secret,
        scope: form.scope,
        code: form.code,
        redirect_uri: form.redirect_uri,
        code_verifier: form.code_verifier,
        client_assertion_type: form.client_assertion_type,
        client_assertion: form.client_assertion,
        token_endpoint: format!("{}/oauth/token", base.url.trim_end_matches("/fhir")),
    };
    match app.token(&caller, request).await {
        Ok(t) => {
            let mut body = json!({
                "access_token": t.access_token,
                "token_type": "Bearer",
                "expires_in": t.expires_in,
                "scope": t.scope,
            });
            // SMART's launch context: the patient the token was launched for.
            if let Some(p) = t.patient {
                body["patient"] = json!(p.to_string());
            }
            let mut r = Json(body).into_response();
            r.headers_mut()
                .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
            r
        }
        Err(e) => oauth_error(e),
    }
}

/// The revocation and introspection requests' form.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct TokenOnlyForm {
    #[serde(default)]
    pub token: String,
    #[serde(default)]
    pub client_id: Option<String>,
    #[serde(default)]
    pub client_secret: Option<String>,
    #[serde(default)]
    pub client_assertion_type: Option<String>,
    #[serde(default)]
    pub client_assertion: Option<String>,
}

/// `POST /oauth/revoke` (RFC 7009).
pub async fn revoke(
    State(app): State<App>,
    Extension(base): Extension<crate::fhir::FhirBase>,
    Anonymous(caller): Anonymous,
    headers: HeaderMap,
    Form(form): Form<TokenOnlyForm>,
) -> Response {
    let (client_id, client_secret) =
        client_credentials(&headers, &form.client_id, &form.client_secret);
    // A client with keys signs an assertion for the token endpoint, as for a token.
    let auth = TokenRequest {
        client_id,
        client_secret,
        client_assertion_type: form.client_assertion_type,
        client_assertion: form.client_assertion,
        token_endpoint: format!("{}/oauth/token", base.url.trim_end_matches("/fhir")),
        ..TokenRequest::default()
    };
    match app.revoke_token(&caller, &auth, &form.token).await {
        Ok(()) => StatusCode::OK.into_response(),
        Err(e) => oauth_error(e),
    }
}

/// `POST /oauth/introspect` (RFC 7662): for the client holding the token.
pub async fn introspect(
    State(app): State<App>,
    headers: HeaderMap,
    Form(form): Form<TokenOnlyForm>,
) -> Response {
    let (id, secret) = client_credentials(&headers, &form.client_id, &form.client_secret);
    match app.introspect(&id, &secret, &form.token).await {
        Ok(None) => Json(json!({"active": false})).into_response(),
        Ok(Some((g, exp))) => Json(json!({
            "active": true,
            "client_id": g.client_id,
            "scope": g.scopes.iter().map(|s| s.text()).collect::<Vec<_>>().join(" "),
            "exp": exp.unix_timestamp(),
            "token_type": "Bearer",
            "sub": g.account.as_ref().map(|a| a.id.to_string()),
            "username": g.account.as_ref().map(|a| a.user_name.clone()),
            "hcp": g.hcp_id,
        }))
        .into_response(),
        Err(e) => oauth_error(e),
    }
}

/// The authorization request (query on GET, form on POST).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct AuthorizeForm {
    #[serde(default)]
    pub response_type: String,
    #[serde(default)]
    pub client_id: String,
    #[serde(default)]
    pub redirect_uri: String,
    #[serde(default)]
    pub scope: String,
    #[serde(default)]
    pub state: Option<String>,
    #[serde(default)]
    pub code_challenge: String,
    #[serde(default)]
    pub code_challenge_method: String,
    /// With `launch/patient`: the patient's HKID, typed by the professional.
    #[serde(default)]
    pub patient_hkid: Option<String>,
}

impl From<AuthorizeForm> for AuthorizeRequest {
    fn from(f: AuthorizeForm) -> Self {
        AuthorizeRequest {
            response_type: f.response_type,
            client_id: f.client_id,
            redirect_uri: f.redirect_uri,
            scope: f.scope,
            state: f.state,
            code_challenge: f.code_challenge,
            code_challenge_method: f.code_challenge_method,
            patient_hkid: f.patient_hkid,
        }
    }
}

#[derive(Debug, Template)]
#[template(path = "authorize.html")]
struct AuthorizePage {
    locale: Locale,
    all_locales: [Locale; 2],
    csrf_token: String,
    user_name: String,
    response_type: String,
    client_id: String,
    redirect_uri: String,
    scope: String,
    state: String,
    code_challenge: String,
    code_challenge_method: String,
    /// The app asks to be launched for one patient: the page asks which.
    launch_patient: bool,
}

/// `GET /oauth/authorize`: asks the logged-in professional to allow the clinic system.
pub async fn authorize_page(
    Extension(locale): Extension<Locale>,
    LoggedIn { session, .. }: LoggedIn,
    Query(q): Query<AuthorizeForm>,
) -> Result<Html<String>, HttpError> {
    let user_name = session
        .account()
        .map(|a| a.user_name.clone())
        .ok_or(HttpError(AppError::NotFound))?;
    let launch_patient = q
        .scope
        .split_ascii_whitespace()
        .any(|s| s == ehrshare_core::oauth::LAUNCH_PATIENT);
    let page = AuthorizePage {
        launch_patient,
        locale,
        all_locales: crate::pages::ALL_LOCALES,
        csrf_token: session.csrf_token.clone().unwrap_or_default(),
        user_name,
        response_type: q.response_type,
        client_id: q.client_id,
        redirect_uri: q.redirect_uri,
        scope: q.scope,
        state: q.state.unwrap_or_default(),
        code_challenge: q.code_challenge,
        code_challenge_method: q.code_challenge_method,
    };
    Ok(Html(crate::render::render_template(&page)?))
}

/// `POST /oauth/authorize`: allowed; back to the clinic system with a code.
pub async fn authorize(
    State(app): State<App>,
    LoggedIn { session, caller }: LoggedIn,
    Form(form): Form<AuthorizeForm>,
) -> Result<Response, HttpError> {
    let location = app.authorize(&session, &caller, form.into()).await?;
    let mut r = StatusCode::SEE_OTHER.into_response();
    r.headers_mut().insert(
        LOCATION,
        HeaderValue::from_str(&location).map_err(|e| HttpError(AppError::Internal(Box::new(e))))?,
    );
    Ok(r)
}
