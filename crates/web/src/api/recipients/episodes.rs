//! `/api/v1/recipients/{id}/episodes`: care episodes opened and closed at a provider.

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

/// A care episode to open.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EpisodeBody {
    /// `attendance`, `admission`, `appointment` or `referral`.
    pub kind: String,
    #[serde(default)]
    pub location: Option<Uuid>,
}

/// A care episode as shown.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct EpisodeView {
    pub id: Uuid,
    pub hcp: Uuid,
    pub kind: String,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub start: OffsetDateTime,
}

/// `POST /api/v1/recipients/{id}/episodes`: open a care episode at the caller's provider.
#[utoipa::path(post, path = "/api/v1/recipients/{id}/episodes", tag = "sharing", request_body = EpisodeBody,
    params(("id" = Uuid, Path, description = "Recipient id")),
    responses((status = 201, description = "Opened", body = EpisodeView)))]
pub async fn open_episode(
    State(app): State<App>,
    LoggedIn { session, caller }: LoggedIn,
    Path(id): Path<Uuid>,
    ApiJson(body): ApiJson<EpisodeBody>,
) -> Result<(StatusCode, Json<EpisodeView>), HttpError> {
    let e = app
        .open_episode(&session, &caller, id, &body.kind, body.location)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(EpisodeView {
            id: e.id,
            hcp: e.hcp_id,
            kind: e.kind,
            start: e.start_at,
        }),
    ))
}

/// `POST /api/v1/recipients/{id}/episodes/{episode}/close`: close it.
#[utoipa::path(post, path = "/api/v1/recipients/{id}/episodes/{episode}/close", tag = "sharing",
    params(("id" = Uuid, Path, description = "Recipient id"), ("episode" = Uuid, Path, description = "Episode id")),
    responses((status = 204, description = "Closed")))]
pub async fn close_episode(
    State(app): State<App>,
    LoggedIn { session, caller }: LoggedIn,
    Path((id, episode)): Path<(Uuid, Uuid)>,
) -> Result<StatusCode, HttpError> {
    app.close_episode(&session, &caller, id, episode).await?;
    Ok(StatusCode::NO_CONTENT)
}
