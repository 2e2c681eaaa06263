//! `GET /healthz`: liveness and database reachability, for load balancers and operators.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::http::header::RETRY_AFTER;
use axum::response::{IntoResponse, Response};
use ehrshare_app::App;
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::Rendered;

/// The health report.
#[derive(Debug, Serialize, ToSchema)]
pub struct HealthBody {
    /// `ok`, or `unavailable` when the database does not answer.
    pub status: &'static str,
    /// The server's version.
    pub version: &'static str,
    /// The database backend: `sqlite` or `postgres`.
    pub backend: &'static str,
}

/// `GET /healthz`. Answers within the health timeout even when the database hangs.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "meta",
    responses(
        (status = 200, description = "Serving; the database answers", body = HealthBody),
        (status = 503, description = "The database does not answer; retry later", body = HealthBody),
    )
)]
pub async fn healthz(State(app): State<App>) -> Response {
    let health = app.health().await;
    let body = HealthBody {
        status: if health.database_ok {
            "ok"
        } else {
            "unavailable"
        },
        version: env!("CARGO_PKG_VERSION"),
        backend: health.backend.name(),
    };
    let mut response = if health.database_ok {
        Json(body).into_response()
    } else {
        let mut r = (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response();
        r.headers_mut().insert(RETRY_AFTER, 5.into());
        r
    };
    response.extensions_mut().insert(Rendered);
    response
}
