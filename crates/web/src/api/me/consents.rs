//! `/api/v1/me/recipients/{id}/consents`: a recipient (or their SDM) gives and revokes
//! sharing consents in the app.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use ehrshare_app::App;
use serde::Deserialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::api::json::ApiJson;
use crate::api::recipients::consents::{ConsentView, consent_view};
use crate::error::HttpError;
use crate::session::LoggedIn;

/// A consent given in the patient portal.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AppConsentBody {
    pub hcp: Uuid,
    /// `one-year` or `indefinite` (default); under the 2025 rules consents have no kind and
    /// one given is refused (422 `consent-kind-not-applicable`).
    #[serde(default)]
    pub kind: Option<String>,
}

/// `POST /api/v1/me/recipients/{id}/consents`: the recipient (or their SDM) gives a provider
/// sharing consent.
#[utoipa::path(post, path = "/api/v1/me/recipients/{id}/consents", tag = "me", request_body = AppConsentBody,
    params(("id" = Uuid, Path, description = "Recipient id (oneself, or one the SDM represents)")),
    responses((status = 201, description = "Given", body = ConsentView),
              (status = 404, description = "Not oneself nor represented", body = crate::error::ProblemBody, content_type = "application/problem+json")))]
pub async fn give_consent_in_app(
    State(app): State<App>,
    LoggedIn { session, caller }: LoggedIn,
    Path(id): Path<Uuid>,
    ApiJson(body): ApiJson<AppConsentBody>,
) -> Result<(StatusCode, Json<ConsentView>), HttpError> {
    let c = app
        .give_consent_in_app(&session, &caller, id, body.hcp, body.kind.as_deref())
        .await?;
    Ok((StatusCode::CREATED, Json(consent_view(c))))
}

/// `DELETE /api/v1/me/recipients/{id}/consents/{hcp}`: revoke, effective at once.
#[utoipa::path(delete, path = "/api/v1/me/recipients/{id}/consents/{hcp}", tag = "me",
    params(("id" = Uuid, Path, description = "Recipient id"), ("hcp" = Uuid, Path, description = "Provider id")),
    responses((status = 204, description = "Revoked")))]
pub async fn revoke_consent(
    State(app): State<App>,
    LoggedIn { session, caller }: LoggedIn,
    Path((id, hcp)): Path<(Uuid, Uuid)>,
) -> Result<StatusCode, HttpError> {
    app.revoke_consent(&session, &caller, id, hcp).await?;
    Ok(StatusCode::NO_CONTENT)
}
