//! `POST /api/v1/recipients/{id}/break-glass`: a doctor opens a recipient's record in an
//! emergency, without a sharing consent (SPEC 3.11).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use ehrshare_app::App;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::api::json::ApiJson;
use crate::error::HttpError;
use crate::session::LoggedIn;

/// The emergency and its reason.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BreakGlassBody {
    /// `unconscious`, `life-threatening`, `unable-to-communicate` or `other`.
    #[serde(default)]
    pub reason: String,
    /// What makes this an emergency (1 to 500 characters).
    #[serde(default)]
    pub details: String,
}

/// Emergency access granted.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct BreakGlassView {
    pub id: Uuid,
    /// Four hours from now, to the second.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub until: OffsetDateTime,
    /// The domains it shows (the access profile's emergency domains).
    pub domains: Vec<String>,
}

/// `POST /api/v1/recipients/{id}/break-glass`: emergency access for the calling doctor, four
/// hours, the emergency domains only; the recipient is told at once; an alert is opened.
/// 403 `break-glass-disabled` where it is not turned on; 409 `break-glass-not-needed` where a
/// consent already allows access; 422 without a reason.
#[utoipa::path(post, path = "/api/v1/recipients/{id}/break-glass", tag = "sharing", request_body = BreakGlassBody,
    params(("id" = Uuid, Path, description = "Recipient id")),
    responses((status = 201, description = "Granted", body = BreakGlassView)))]
pub async fn break_glass(
    State(app): State<App>,
    LoggedIn { session, caller }: LoggedIn,
    Path(id): Path<Uuid>,
    ApiJson(body): ApiJson<BreakGlassBody>,
) -> Result<(StatusCode, Json<BreakGlassView>), HttpError> {
    let g = app
        .break_glass(&session, &caller, id, &body.reason, &body.details)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(BreakGlassView {
            id: g.id,
            until: g.until,
            domains: g.domains,
        }),
    ))
}
