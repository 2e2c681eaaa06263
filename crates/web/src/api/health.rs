//! `GET /healthz` (liveness: does the database answer) and `GET /readyz` (readiness: can this
//! instance serve now), for supervisors, load balancers and operators (issue 22).
//!
//! A full disk leaves the database answering but the audit writer unable to commit: `/healthz`
//! stays 200 and says `degraded` with the cause, so that a supervisor does not restart the
//! process in a loop, while `/readyz` answers 503 until the writer commits again.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::http::header::RETRY_AFTER;
use axum::response::{IntoResponse, Response};
use ehrshare_app::App;
use ehrshare_app::health::Health;
use serde::Serialize;
use time::format_description::well_known::Rfc3339;
use utoipa::ToSchema;

use crate::error::Rendered;

/// The health report.
#[derive(Debug, Serialize, ToSchema)]
pub struct HealthBody {
    /// `ok`; `degraded` when the database answers but the audit writer cannot commit (nothing
    /// can be served); `unavailable` when the database does not answer.
    pub status: &'static str,
    /// The server's version.
    pub version: &'static str,
    /// The database backend: `sqlite` or `postgres`.
    pub backend: &'static str,
    /// Why it is not `ok`: `disk-full`, `read-only`, `io-error`, `cannot-open`,
    /// `connection-lost`, `pool-timeout`, `busy`, `closed`, `resources`, `timeout` or `error`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cause: Option<&'static str>,
    /// Since when the audit writer cannot commit (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failing_since: Option<String>,
    /// Whether this process runs the alert scanner and signs audit checkpoints: one of the
    /// processes sharing a database does (ADR 0024).
    pub leader: bool,
}

fn respond(health: &Health, up: bool) -> Response {
    let body = HealthBody {
        status: if !health.database_ok {
            "unavailable"
        } else if health.audit.is_some() {
            "degraded"
        } else {
            "ok"
        },
        version: env!("CARGO_PKG_VERSION"),
        backend: health.backend.name(),
        cause: health
            .database_cause
            .or(health.audit.as_ref().map(|f| f.cause)),
        failing_since: health
            .audit
            .as_ref()
            .and_then(|f| f.since.format(&Rfc3339).ok()),
        leader: health.leads,
    };
    let mut response = if up {
        Json(body).into_response()
    } else {
        let mut r = (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response();
        r.headers_mut().insert(RETRY_AFTER, 5.into());
        r
    };
    response.extensions_mut().insert(Rendered);
    response
}

/// `GET /healthz`: liveness. Answers within the health timeout even when the database hangs.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "meta",
    responses(
        (status = 200, description = "Alive; the database answers (status `degraded` with a cause while the audit writer cannot commit)", body = HealthBody),
        (status = 503, description = "The database does not answer; retry later", body = HealthBody),
    )
)]
pub async fn healthz(State(app): State<App>) -> Response {
    let health = app.health().await;
    respond(&health, health.database_ok)
}

/// `GET /readyz`: readiness, for load balancers. 503 while the database does not answer or the
/// audit writer cannot commit (a full disk, a read-only file system); 200 again, without a
/// restart, once it commits.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "meta",
    responses(
        (status = 200, description = "Ready to serve", body = HealthBody),
        (status = 503, description = "Not ready: the cause says why; retry later", body = HealthBody),
    )
)]
pub async fn readyz(State(app): State<App>) -> Response {
    let health = app.health().await;
    respond(&health, health.ready())
}
