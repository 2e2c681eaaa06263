//! `PUT /api/v1/providers/{id}/break-glass`: a provider's user administrator turns emergency
//! access on or off for the provider (SPEC 3.11; only where the deployment allows it).

use axum::Json;
use axum::extract::{Path, State};
use ehrshare_app::App;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::api::json::ApiJson;
use crate::error::HttpError;
use crate::session::LoggedIn;

/// Whether emergency access is on.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BreakGlassSwitch {
    pub enabled: bool,
}

/// `PUT /api/v1/providers/{id}/break-glass`: turn emergency access on or off (user
/// administrators; 403 `break-glass-disabled` to turn it on where the deployment does not
/// allow it).
#[utoipa::path(put, path = "/api/v1/providers/{id}/break-glass", tag = "sharing", request_body = BreakGlassSwitch,
    params(("id" = Uuid, Path, description = "Provider id")),
    responses((status = 200, description = "Set", body = BreakGlassSwitch)))]
pub async fn set_break_glass(
    State(app): State<App>,
    LoggedIn { session, caller }: LoggedIn,
    Path(id): Path<Uuid>,
    ApiJson(body): ApiJson<BreakGlassSwitch>,
) -> Result<Json<BreakGlassSwitch>, HttpError> {
    app.set_break_glass(&session, &caller, id, body.enabled)
        .await?;
    Ok(Json(body))
}
