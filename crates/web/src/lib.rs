//! ehrshare-web: the HTTP surface. JSON API under `/api/v1` (with its OpenAPI document), FHIR R4
//! under `/fhir`, portals (`/`, `/hcp`, `/me`, `/office`).
//!
//! Invariants:
//! - Only this crate knows HTTP. Handlers parse, call one `app` use case, and shape the answer;
//!   they never touch the store and never decide access.
//! - Errors become responses in one place ([`error`]); internal causes are logged with the
//!   request id and never shown.
//! - Every response carries the request id and the security headers ([`security`]).

pub mod api;
pub mod error;
pub mod i18n;
pub mod oauth;
#[cfg(feature = "oidc")]
pub mod oidc;
pub mod pages;
pub mod qr;
pub mod ratelimit;
mod render;
pub mod request_id;
pub mod security;
pub mod session;

use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{Request, StatusCode};
use axum::middleware;
use axum::routing::get;
use ehrshare_app::{App, AppError};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use crate::error::HttpError;

/// HTTP settings (a subset of the server's configuration).
#[derive(Debug, Clone)]
pub struct WebSettings {
    /// Largest request body accepted, in bytes; larger ones get 413.
    pub body_limit: usize,
    /// Longest a request may take before it is answered with 503 `timeout`.
    pub request_timeout: Duration,
    /// Whether cookies carry `Secure` (turn off only for plain-http local development).
    pub cookie_secure: bool,
    /// The public URL clients reach this server at (links in messages, OAuth redirects).
    pub public_base_url: String,
    /// Requests per client address.
    pub rate_limit: ratelimit::RateLimit,
}

impl Default for WebSettings {
    fn default() -> Self {
        WebSettings {
            body_limit: 2 * 1024 * 1024,
            request_timeout: Duration::from_secs(30),
            cookie_secure: true,
            public_base_url: "http://127.0.0.1:8080".to_owned(),
            rate_limit: ratelimit::RateLimit::default(),
        }
    }
}

/// The whole HTTP application.
pub fn router(app: App, settings: &WebSettings) -> Router {
    let hsts = security::Hsts(settings.public_base_url.starts_with("https://"));
    let cookies = session::CookieSettings {
        secure: settings.cookie_secure,
        origin: session::origin_of(&settings.public_base_url),
        body_limit: settings.body_limit,
    };
    Router::new()
        .route("/", get(pages::home::show))
        .route("/static/site.css", get(pages::stylesheet))
        .route("/pics", get(pages::info::collection_statement))
        .route("/privacy", get(pages::info::privacy_policy))
        .route(pages::hcp::HOME, get(pages::hcp::home))
        .route(
            pages::hcp::LOGIN,
            get(pages::hcp::login_page).post(pages::hcp::log_in),
        )
        .route("/hcp/logout", axum::routing::post(pages::hcp::log_out))
        .route(
            pages::hcp::PASSWORD,
            get(pages::hcp::password_form).post(pages::hcp::change_password),
        )
        .route(
            pages::hcp::TOKEN,
            get(pages::hcp::token_form).post(pages::hcp::begin_token),
        )
        .route(
            pages::patients::FIND,
            get(pages::patients::find_form).post(pages::patients::find),
        )
        .route(
            "/hcp/patients/register",
            get(pages::patients::register_form).post(pages::patients::register),
        )
        .route("/hcp/patients/{id}", get(pages::patients::show))
        .route(
            "/hcp/patients/{id}/consent",
            axum::routing::post(pages::patients::give_consent),
        )
        .route("/hcp/patients/{id}/card", get(pages::card::show))
        .route(
            "/hcp/patients/{id}/card/read",
            axum::routing::post(pages::card::demo_read),
        )
        .route(
            "/hcp/patients/{id}/consent/card",
            axum::routing::post(pages::card::give_consent),
        )
        .route(
            "/hcp/patients/{id}/episode",
            axum::routing::post(pages::patients::open_episode),
        )
        .route("/hcp/patients/{id}/record", get(pages::patients::record))
        .route(
            "/hcp/patients/{id}/records/{record}",
            get(pages::patients::record_detail),
        )
        .route(
            "/hcp/patients/{id}/episodes/{episode}/close",
            axum::routing::post(pages::patients::close_episode),
        )
        .route(
            "/hcp/patients/{id}/unlock",
            axum::routing::post(pages::patients::request_unlock),
        )
        .route(
            "/hcp/patients/{id}/unlock/confirm",
            axum::routing::post(pages::patients::confirm_unlock),
        )
        .route("/hcp/access-log", get(pages::activity::access_log))
        .route("/hcp/alerts", get(pages::activity::alerts))
        .route(
            "/hcp/alerts/{id}/review",
            axum::routing::post(pages::activity::review),
        )
        .route(
            pages::users::USERS,
            get(pages::users::list).post(pages::users::create),
        )
        .route(
            "/hcp/users/{id}/action",
            axum::routing::post(pages::users::act),
        )
        .route(
            "/hcp/patients/{id}/deposit/{kind}",
            get(pages::deposit::deposit_form).post(pages::deposit::deposit),
        )
        .route(
            "/hcp/patients/{id}/cm-prescription",
            get(pages::deposit::prescription_form).post(pages::deposit::deposit_prescription),
        )
        .route(
            "/hcp/token/confirm",
            axum::routing::post(pages::hcp::confirm_token),
        )
        .route("/healthz", get(api::health::healthz))
        .route("/readyz", get(api::health::readyz))
        .route("/api/v1/openapi.json", get(api::openapi_json))
        .route(
            "/api/v1/recipients",
            axum::routing::post(api::recipients::register),
        )
        .route("/api/v1/recipients/{id}", get(api::recipients::show))
        .route(
            "/api/v1/providers",
            axum::routing::post(api::providers::apply),
        )
        .route("/api/v1/providers/{id}", get(api::providers::show))
        .route(
            "/api/v1/providers/{id}/events",
            axum::routing::post(api::providers::event),
        )
        .route(
            "/api/v1/providers/{id}/locations",
            axum::routing::post(api::providers::add_location),
        )
        .route(
            "/api/v1/providers/{id}/documents",
            get(api::providers::documents).post(api::providers::upload_document),
        )
        .route(
            "/api/v1/providers/{id}/documents/{doc}",
            get(api::providers::document),
        )
        .route("/api/v1/directory", get(api::providers::directory))
        .route(
            "/api/v1/recipients/{id}/events",
            axum::routing::post(api::recipients::event),
        )
        .route(
            "/api/v1/recipients/{id}/access-key",
            axum::routing::post(api::recipients::regenerate_access_key),
        )
        .route(
            "/api/v1/session",
            get(api::session::show)
                .post(api::session::log_in)
                .delete(api::session::log_out),
        )
        .route(
            "/api/v1/session/password",
            axum::routing::post(api::session::change_password),
        )
        .route(
            "/api/v1/session/token",
            axum::routing::post(api::session::begin_enrolment),
        )
        .route(
            "/api/v1/session/token/confirm",
            axum::routing::post(api::session::confirm_enrolment),
        )
        .route(
            "/api/v1/providers/{id}/accounts",
            get(api::accounts::list).post(api::accounts::create),
        )
        .route(
            "/api/v1/providers/{id}/accounts/{account}",
            get(api::accounts::show),
        )
        .route(
            "/api/v1/providers/{id}/accounts/{account}/role",
            axum::routing::put(api::accounts::change_role),
        )
        .route(
            "/api/v1/providers/{id}/accounts/{account}/actions",
            axum::routing::post(api::accounts::act),
        )
        .route(
            "/api/v1/providers/{id}/clients",
            axum::routing::post(api::accounts::register_client),
        )
        .route(
            "/api/v1/providers/{id}/clients/{client}/revoke",
            axum::routing::post(api::accounts::revoke_client),
        )
        .route(
            "/api/v1/office/accounts",
            get(api::accounts::office_list).post(api::accounts::office_create),
        )
        .route(
            "/api/v1/office/accounts/{account}/actions",
            axum::routing::post(api::accounts::office_act),
        )
        .route("/api/v1/me", get(api::me::show))
        .route(
            "/api/v1/me/recipients/{id}/consents",
            axum::routing::post(api::sharing::give_consent_in_app),
        )
        .route(
            "/api/v1/me/recipients/{id}/consents/{hcp}",
            axum::routing::delete(api::sharing::revoke_consent),
        )
        .route(
            "/api/v1/recipients/find",
            axum::routing::post(api::sharing::find),
        )
        .route(
            "/api/v1/recipients/{id}/consents",
            axum::routing::post(api::sharing::give_consent),
        )
        .route(
            "/api/v1/recipients/{id}/episodes",
            axum::routing::post(api::sharing::open_episode),
        )
        .route(
            "/api/v1/recipients/{id}/episodes/{episode}/close",
            axum::routing::post(api::sharing::close_episode),
        )
        .route(
            "/api/v1/recipients/{id}/records",
            get(api::sharing::domain_records).post(api::sharing::deposit),
        )
        .route(
            "/api/v1/recipients/{id}/summary",
            get(api::sharing::summary),
        )
        .route("/api/v1/records/{id}", get(api::sharing::record))
        .route(
            "/api/v1/records/{id}/entered-in-error",
            axum::routing::post(api::sharing::entered_in_error),
        )
        .route("/api/v1/terminology/cm", get(api::sharing::terminology))
        .route(
            "/api/v1/providers/{id}/card-readers",
            axum::routing::post(api::sharing::register_reader),
        )
        .route(
            "/api/v1/office/recipients/{id}/consents",
            axum::routing::post(api::sharing::consent_by_phone),
        )
        .route(
            "/api/v1/consents/card",
            axum::routing::post(api::sharing::consent_by_card),
        )
        .route(
            "/api/v1/me/recipients/{id}/access-log",
            get(api::access_log::recipient_log),
        )
        .route(
            "/api/v1/me/recipients/{id}/access-log/{seq}/proof",
            get(api::access_log::entry_proof),
        )
        .route(
            "/api/v1/providers/{id}/access-log",
            get(api::access_log::provider_log),
        )
        .route(
            "/api/v1/office/access-log",
            get(api::access_log::office_log),
        )
        .route(
            "/api/v1/providers/{id}/alerts",
            get(api::access_log::provider_alerts),
        )
        .route("/api/v1/office/alerts", get(api::access_log::office_alerts))
        .route(
            "/api/v1/alerts/{id}/review",
            axum::routing::post(api::access_log::review),
        )
        .route(
            "/api/v1/me/recipients/{id}/restrictions",
            axum::routing::post(api::sharing::restrict),
        )
        .route(
            "/api/v1/me/recipients/{id}/restrictions/{restriction}",
            axum::routing::delete(api::sharing::lift_restriction),
        )
        .route(
            "/api/v1/recipients/{id}/unlock",
            axum::routing::post(api::sharing::request_unlock),
        )
        .route(
            "/api/v1/recipients/{id}/unlock/confirm",
            axum::routing::post(api::sharing::confirm_unlock),
        )
        .route(
            "/api/v1/recipients/{id}/unlock/card",
            axum::routing::post(api::sharing::unlock_by_card),
        )
        .route(
            "/api/v1/access-profiles",
            get(api::session::access_profiles),
        )
        .route(
            "/api/v1/me/activate",
            axum::routing::post(api::me::activate),
        )
        .route(
            "/api/v1/me/login",
            axum::routing::post(api::me::begin_login),
        )
        .route(
            "/api/v1/me/login/verify",
            axum::routing::post(api::me::finish_login),
        )
        .route(
            "/oauth/authorize",
            get(oauth::authorize_page).post(oauth::authorize),
        )
        .route("/oauth/token", axum::routing::post(oauth::token))
        .route("/oauth/revoke", axum::routing::post(oauth::revoke))
        .route("/oauth/introspect", axum::routing::post(oauth::introspect))
        .merge(oidc_routes())
        .fallback(not_found)
        .with_state(app.clone())
        // Layers run outside-in in the reverse of the order they are added here.
        .layer(middleware::from_fn_with_state(
            (app, cookies.clone()),
            session::load,
        ))
        .layer(axum::Extension(cookies))
        .layer(DefaultBodyLimit::max(settings.body_limit))
        .layer(RequestBodyLimitLayer::new(settings.body_limit))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            settings.request_timeout,
        ))
        .layer(CatchPanicLayer::new())
        .layer(middleware::from_fn_with_state(
            ratelimit::RateLimiter::new(settings.rate_limit),
            ratelimit::limit,
        ))
        .layer(middleware::from_fn(error::render))
        .layer(middleware::from_fn(i18n::negotiate))
        .layer(middleware::from_fn_with_state(hsts, security::headers))
        .layer(
            TraceLayer::new_for_http().make_span_with(|request: &Request<_>| {
                // The path only: query strings may carry identifiers of patients.
                let id = request
                    .headers()
                    .get(&request_id::X_REQUEST_ID)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("");
                tracing::info_span!(
                    "request",
                    method = %request.method(),
                    path = %request.uri().path(),
                    request_id = %id,
                )
            }),
        )
        .layer(middleware::from_fn(request_id::assign))
}

/// The OpenID Connect routes (with the `oidc` feature).
#[cfg(feature = "oidc")]
fn oidc_routes() -> Router<App> {
    Router::new()
        .route("/auth/oidc/start", get(oidc::start))
        .route("/auth/oidc/link", axum::routing::post(oidc::link))
        .route("/auth/oidc/callback", get(oidc::callback))
}

#[cfg(not(feature = "oidc"))]
fn oidc_routes() -> Router<App> {
    Router::new()
}

async fn not_found() -> HttpError {
    HttpError(AppError::NotFound)
}
