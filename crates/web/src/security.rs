//! Security headers on every response.
//!
//! The content security policy allows no inline script or style and no framing; pages load
//! their CSS (and later their little JavaScript) from `/static`. Responses default to
//! `Cache-Control: no-store` because most of what this server says is about patients; the few
//! cacheable responses (static assets) set their own. `Referrer-Policy: same-origin`: no URL
//! (which may name a recipient) leaves for another site, while our own form posts keep their
//! `Origin` header, which the session middleware's CSRF check needs (under `no-referrer`
//! browsers send `Origin: null` with a form post).

use axum::extract::{Request, State};
use axum::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, REFERRER_POLICY, STRICT_TRANSPORT_SECURITY,
    X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS,
};
use axum::http::{HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;

/// The content security policy of every response.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
     font-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; \
     base-uri 'none'; object-src 'none'";

static PERMISSIONS_POLICY: HeaderName = HeaderName::from_static("permissions-policy");
static CROSS_ORIGIN_OPENER_POLICY: HeaderName =
    HeaderName::from_static("cross-origin-opener-policy");

/// Whether to send Strict-Transport-Security (only when served over HTTPS).
#[derive(Debug, Clone, Copy)]
pub struct Hsts(pub bool);

/// Middleware: sets the security headers unless a handler set its own.
pub async fn headers(State(hsts): State<Hsts>, request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let h = response.headers_mut();
    let mut set = |name: &HeaderName, value: &'static str| {
        h.entry(name).or_insert(HeaderValue::from_static(value));
    };
    set(&CONTENT_SECURITY_POLICY, CSP);
    set(&X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(&X_FRAME_OPTIONS, "DENY");
    set(&REFERRER_POLICY, "same-origin");
    set(
        &PERMISSIONS_POLICY,
        "camera=(), microphone=(), geolocation=(), payment=()",
    );
    set(&CROSS_ORIGIN_OPENER_POLICY, "same-origin");
    set(&CACHE_CONTROL, "no-store");
    if hsts.0 {
        set(
            &STRICT_TRANSPORT_SECURITY,
            "max-age=31536000; includeSubDomains",
        );
    }
    response
}
