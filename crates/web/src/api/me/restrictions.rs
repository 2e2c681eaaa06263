//! `/api/v1/me/recipients/{id}/restrictions`: a recipient puts records or domains under
//! restricted control, and lifts it.

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

/// What to restrict: one domain or one record.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RestrictBody {
    #[serde(default)]
    pub domain: Option<String>,
    #[serde(default)]
    pub record: Option<Uuid>,
}

/// A restriction as shown to its recipient.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RestrictionView {
    pub id: Uuid,
    pub domain: Option<String>,
    pub record: Option<Uuid>,
}

/// `POST /api/v1/me/recipients/{id}/restrictions`: put a domain or record under restricted
/// control.
#[utoipa::path(post, path = "/api/v1/me/recipients/{id}/restrictions", tag = "me", request_body = RestrictBody,
    params(("id" = Uuid, Path, description = "Recipient id")),
    responses((status = 201, description = "Restricted", body = RestrictionView)))]
pub async fn restrict(
    State(app): State<App>,
    LoggedIn { session, caller }: LoggedIn,
    Path(id): Path<Uuid>,
    ApiJson(body): ApiJson<RestrictBody>,
) -> Result<(StatusCode, Json<RestrictionView>), HttpError> {
    let r = app
        .restrict(&session, &caller, id, body.domain.as_deref(), body.record)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(RestrictionView {
            id: r.id,
            domain: r.domain,
            record: r.record_id,
        }),
    ))
}

/// `DELETE /api/v1/me/recipients/{id}/restrictions/{restriction}`: lift it.
#[utoipa::path(delete, path = "/api/v1/me/recipients/{id}/restrictions/{restriction}", tag = "me",
    params(("id" = Uuid, Path, description = "Recipient id"), ("restriction" = Uuid, Path, description = "Restriction id")),
    responses((status = 204, description = "Lifted")))]
pub async fn lift_restriction(
    State(app): State<App>,
    LoggedIn { session, caller }: LoggedIn,
    Path((id, restriction)): Path<(Uuid, Uuid)>,
) -> Result<StatusCode, HttpError> {
    app.lift_restriction(&session, &caller, id, restriction)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
