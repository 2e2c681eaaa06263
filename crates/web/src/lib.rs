//! ehrshare-web: the HTTP surface. The JSON API under `/api/v1` (with its OpenAPI document; each
//! handler's file mirrors its URL), the FHIR R4 API under `/fhir`, OAuth under `/oauth`, the
//! provider portal under `/hcp`, the public pages (`/`, `/pics`, `/privacy`), `/healthz` and
//! `/readyz`.
//!
//! Invariants:
//! - Only this crate knows HTTP. Handlers parse, call one `app` use case, and shape the answer;
//!   they never touch the store and never decide access.
//! - Errors become responses in one place ([`error`]); internal causes are logged with the
//!   request id and never shown.
//! - Every response carries the request id and the security headers ([`security`]).

pub mod api;
pub mod client;
pub mod error;
pub mod fhir;
pub mod i18n;
pub mod oauth;
#[cfg(feature = "oidc")]
pub mod oidc;
pub mod pages;
pub mod pdf;
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
    /// The proxies whose `X-Forwarded-For` names the client (ADR 0024).
    pub trusted_proxies: client::TrustedProxies,
}

impl Default for WebSettings {
    fn default() -> Self {
        WebSettings {
            body_limit: 2 * 1024 * 1024,
            request_timeout: Duration::from_secs(30),
            cookie_secure: true,
            public_base_url: "http://127.0.0.1:8080".to_owned(),
            rate_limit: ratelimit::RateLimit::default(),
            trusted_proxies: client::TrustedProxies::default(),
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
    let fhir_base = fhir::FhirBase {
        url: format!("{}/fhir", settings.public_base_url.trim_end_matches('/')),
        started: app.clock().now(),
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
            get(pages::patients::register::register_form).post(pages::patients::register::register),
        )
        .route("/hcp/patients/{id}", get(pages::patients::show::show))
        .route(
            "/hcp/patients/{id}/consent",
            axum::routing::post(pages::patients::show::give_consent),
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
            axum::routing::post(pages::patients::show::open_episode),
        )
        .route(
            "/hcp/patients/{id}/record",
            get(pages::patients::record::record),
        )
        .route(
            "/hcp/patients/{id}/records/{record}",
            get(pages::patients::record::record_detail),
        )
        .route(
            "/hcp/patients/{id}/episodes/{episode}/close",
            axum::routing::post(pages::patients::show::close_episode),
        )
        .route(
            "/hcp/patients/{id}/unlock",
            axum::routing::post(pages::patients::unlock::request_unlock),
        )
        .route(
            "/hcp/patients/{id}/unlock/confirm",
            axum::routing::post(pages::patients::unlock::confirm_unlock),
        )
        .route(pages::me::HOME, get(pages::me::home))
        .route(
            pages::me::LOGIN,
            get(pages::me::login_page).post(pages::me::log_in),
        )
        .route(
            "/me/login/code",
            axum::routing::post(pages::me::verify_code),
        )
        .route("/me/logout", axum::routing::post(pages::me::log_out))
        .route(
            "/me/register",
            get(pages::me::self_service::register_form).post(pages::me::self_service::register),
        )
        .route(
            "/me/activate",
            get(pages::me::self_service::activate_form).post(pages::me::self_service::activate),
        )
        .route(
            "/me/forgot",
            get(pages::me::self_service::forgot_form).post(pages::me::self_service::forgot),
        )
        .route(
            "/me/password",
            axum::routing::post(pages::me::self_service::set_password),
        )
        .route(
            "/me/password/code",
            axum::routing::post(pages::me::self_service::password_code),
        )
        .route(
            "/me/{id}/contact",
            axum::routing::post(pages::me::self_service::change_contact),
        )
        .route(
            "/me/{id}/contact/verify",
            axum::routing::post(pages::me::self_service::verify_contact),
        )
        .route("/me/{id}/record", get(pages::me::record))
        .route("/me/{id}/sharing", get(pages::me::sharing))
        .route("/me/{id}/access-log", get(pages::me::access_log))
        .route(
            "/me/{id}/access-log/{seq}/report",
            axum::routing::post(pages::me::report),
        )
        .route(
            "/me/{id}/scan",
            get(pages::me::scan_form).post(pages::me::scan),
        )
        .route(
            "/me/{id}/scan/confirm",
            axum::routing::post(pages::me::confirm_scan),
        )
        .route("/static/scan.js", get(pages::scan_script))
        .route("/me/{id}/inbox", get(pages::me::inbox))
        .route(
            "/me/{id}/restrictions",
            get(pages::me::restrictions).post(pages::me::restrict),
        )
        .route(
            "/me/{id}/restrictions/{restriction}/lift",
            axum::routing::post(pages::me::lift),
        )
        .route(
            "/me/{id}/inbox/{message}/read",
            axum::routing::post(pages::me::mark_read),
        )
        .route(
            "/me/{id}/settings",
            get(pages::me::settings).post(pages::me::save_settings),
        )
        .route(
            "/me/{id}/access-key",
            get(pages::me::access_key).post(pages::me::new_access_key),
        )
        .route("/me/{id}/consents", axum::routing::post(pages::me::give))
        .route(
            "/me/{id}/consents/{hcp}/revoke",
            axum::routing::post(pages::me::revoke),
        )
        .route("/hcp/locations", get(pages::locations::list))
        .route("/hcp/locations/{id}/qr.svg", get(pages::locations::qr_svg))
        .route("/hcp/locations/{id}/qr.png", get(pages::locations::qr_png))
        .route("/hcp/locations/{id}/poster", get(pages::locations::poster))
        .route(
            "/hcp/locations/{id}/qr",
            axum::routing::post(pages::locations::replace),
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
        .merge(api::routes().0)
        .merge(fhir::routes())
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
            (app.clone(), cookies.clone()),
            session::load,
        ))
        .layer(axum::Extension(cookies))
        .layer(axum::Extension(fhir_base))
        .layer(DefaultBodyLimit::max(settings.body_limit))
        .layer(RequestBodyLimitLayer::new(settings.body_limit))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            settings.request_timeout,
        ))
        .layer(CatchPanicLayer::new())
        .layer(middleware::from_fn_with_state(
            ratelimit::RateLimiter::for_app(settings.rate_limit, &app),
            ratelimit::limit,
        ))
        .layer(middleware::from_fn_with_state(
            std::sync::Arc::new(settings.trusted_proxies.clone()),
            client::resolve,
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
