//! `/api/v1/office/recipients/{id}/consents`: the eHR Office records a consent given by phone.

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

/// A consent given over the office's telephone line.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PhoneConsentBody {
    pub hcp: Uuid,
    /// `one-year` or `indefinite` (default); under the 2025 rules consents have no kind and
    /// one given is refused (422 `consent-kind-not-applicable`).
    #[serde(default)]
    pub kind: Option<String>,
    /// The call's reference in the office's telephone system.
    #[schema(max_length = 100)]
    pub call_ref: String,
}

/// `POST /api/v1/office/recipients/{id}/consents`: the office records a consent given by phone.
#[utoipa::path(post, path = "/api/v1/office/recipients/{id}/consents", tag = "sharing", request_body = PhoneConsentBody,
    params(("id" = Uuid, Path, description = "Recipient id")),
    responses((status = 201, description = "Given", body = ConsentView),
              (status = 404, description = "Not a registration officer, or no such provider", body = crate::error::ProblemBody, content_type = "application/problem+json")))]
pub async fn consent_by_phone(
    State(app): State<App>,
    LoggedIn { session, caller }: LoggedIn,
    Path(id): Path<Uuid>,
    ApiJson(body): ApiJson<PhoneConsentBody>,
) -> Result<(StatusCode, Json<ConsentView>), HttpError> {
    let c = app
        .give_consent_by_phone(
            &session,
            &caller,
            id,
            body.hcp,
            body.kind.as_deref(),
            &body.call_ref,
        )
        .await?;
    Ok((StatusCode::CREATED, Json(consent_view(c))))
}
