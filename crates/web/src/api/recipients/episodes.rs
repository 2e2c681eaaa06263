//! `/api/v1/recipients/{id}/episodes`: care episodes opened and closed at a provider.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use ehrshare_app::App;
use ehrshare_app::episode::EpisodeRow;
use ehrshare_app::episode::{EndsBy, EpisodeInput};
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
    /// When it starts (RFC 3339; default now): up to 366 days ahead for an appointment
    /// booked ahead (access opens 7 days before it), or up to 30 days back.
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub start: Option<OffsetDateTime>,
    /// When it is planned to end (RFC 3339), if known. Without it the episode ends 90 days
    /// (configurable) after its last deposit or attendance.
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub planned_end: Option<OffsetDateTime>,
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
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub planned_end: Option<OffsetDateTime>,
    /// The last deposit or recorded attendance in it.
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_activity: Option<OffsetDateTime>,
}

impl From<EpisodeRow> for EpisodeView {
    fn from(e: EpisodeRow) -> Self {
        EpisodeView {
            id: e.id,
            hcp: e.hcp_id,
            kind: e.kind,
            start: e.start_at,
            planned_end: e.planned_end_at,
            last_activity: e.last_activity_at,
        }
    }
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
    let input = EpisodeInput {
        kind: body.kind,
        location: body.location,
        start: body.start,
        planned_end: body.planned_end,
    };
    let e = app.open_episode(&session, &caller, id, input).await?;
    Ok((StatusCode::CREATED, Json(e.into())))
}

/// `POST /api/v1/recipients/{id}/episodes/{episode}/attendance`: record an attendance in an
/// open episode (activity: its end by itself moves on). 409 `episode-ended` once it ended.
#[utoipa::path(post, path = "/api/v1/recipients/{id}/episodes/{episode}/attendance", tag = "sharing",
    params(("id" = Uuid, Path, description = "Recipient id"), ("episode" = Uuid, Path, description = "Episode id")),
    responses((status = 200, description = "Recorded", body = EpisodeView)))]
pub async fn record_attendance(
    State(app): State<App>,
    LoggedIn { session, caller }: LoggedIn,
    Path((id, episode)): Path<(Uuid, Uuid)>,
) -> Result<Json<EpisodeView>, HttpError> {
    let e = app
        .record_attendance(&session, &caller, id, episode)
        .await?;
    Ok(Json(e.into()))
}

/// An open episode in the provider's review.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct OpenEpisodeView {
    #[serde(flatten)]
    pub episode: EpisodeView,
    pub recipient: Uuid,
    pub name_en: String,
    pub name_zh: Option<String>,
    /// When it ends if nothing more is recorded.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub ends_at: OffsetDateTime,
    /// `plan` (its planned end) or `inactivity` (after the idle period).
    pub ends_by: &'static str,
}

/// `GET /api/v1/episodes`: the caller's provider's open episodes, oldest start first, for
/// review (counter staff and professionals; audited).
#[utoipa::path(get, path = "/api/v1/episodes", tag = "sharing",
    responses((status = 200, description = "Open episodes", body = [OpenEpisodeView])))]
pub async fn open_episodes(
    State(app): State<App>,
    LoggedIn { session, caller }: LoggedIn,
) -> Result<Json<Vec<OpenEpisodeView>>, HttpError> {
    let open = app.open_episodes(&session, &caller).await?;
    Ok(Json(
        open.into_iter()
            .map(|o| OpenEpisodeView {
                recipient: o.episode.recipient_id,
                episode: o.episode.into(),
                name_en: o.name_en,
                name_zh: o.name_zh,
                ends_at: o.ends_at,
                ends_by: match o.ends_by {
                    EndsBy::Plan => "plan",
                    EndsBy::Inactivity => "inactivity",
                },
            })
            .collect(),
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
