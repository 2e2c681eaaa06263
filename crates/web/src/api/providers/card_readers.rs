//! `POST /api/v1/providers/{id}/card-readers`: a provider registers a smart ID card reader.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use ehrshare_app::App;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::api::json::ApiJson;
use crate::error::HttpError;
use crate::session::LoggedIn;

/// A card reader to register.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReaderBody {
    pub location: Uuid,
    /// The reader's Ed25519 public key, 64 hex digits.
    pub public_key: String,
}

/// A registered card reader.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ReaderView {
    pub id: Uuid,
    pub location: Uuid,
}

/// `POST /api/v1/providers/{id}/card-readers`: register a smart ID card reader (user
/// administrators).
#[utoipa::path(post, path = "/api/v1/providers/{id}/card-readers", tag = "sharing", request_body = ReaderBody,
    params(("id" = Uuid, Path, description = "Provider id")),
    responses((status = 201, description = "Registered", body = ReaderView)))]
pub async fn register_reader(
    State(app): State<App>,
    LoggedIn { session, caller }: LoggedIn,
    Path(id): Path<Uuid>,
    ApiJson(body): ApiJson<ReaderBody>,
) -> Result<(StatusCode, Json<ReaderView>), HttpError> {
    let r = app
        .register_reader(&session, &caller, id, body.location, &body.public_key)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(ReaderView {
            id: r.id,
            location: r.location_id,
        }),
    ))
}
