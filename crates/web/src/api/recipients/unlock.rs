//! `/api/v1/recipients/{id}/unlock`: restricted items unlocked by the recipient's one-time
//! code (requested, then confirmed) or by their smart ID card.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use ehrshare_app::App;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::api::consents::card_assertion;
use crate::api::json::ApiJson;
use crate::error::HttpError;
use crate::session::LoggedIn;

/// Why the restricted items are needed.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UnlockBody {
    #[schema(max_length = 500)]
    pub reason: String,
}

/// An unlock request waiting for the recipient's code.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct UnlockView {
    pub challenge: Uuid,
}

/// `POST /api/v1/recipients/{id}/unlock`: ask the recipient for a one-time code.
#[utoipa::path(post, path = "/api/v1/recipients/{id}/unlock", tag = "sharing", request_body = UnlockBody,
    params(("id" = Uuid, Path, description = "Recipient id")),
    responses((status = 202, description = "A code went to the recipient", body = UnlockView),
              (status = 403, description = "No consent or care episode", body = crate::error::ProblemBody, content_type = "application/problem+json")))]
pub async fn request_unlock(
    State(app): State<App>,
    LoggedIn { session, caller }: LoggedIn,
    Path(id): Path<Uuid>,
    ApiJson(body): ApiJson<UnlockBody>,
) -> Result<(StatusCode, Json<UnlockView>), HttpError> {
    let challenge = app
        .request_unlock(&session, &caller, id, &body.reason)
        .await?;
    Ok((StatusCode::ACCEPTED, Json(UnlockView { challenge })))
}

/// The recipient's code.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UnlockCodeBody {
    pub challenge: Uuid,
    pub code: String,
}

/// `POST /api/v1/recipients/{id}/unlock/confirm`: unlock with the recipient's code.
#[utoipa::path(post, path = "/api/v1/recipients/{id}/unlock/confirm", tag = "sharing", request_body = UnlockCodeBody,
    params(("id" = Uuid, Path, description = "Recipient id")),
    responses((status = 204, description = "Unlocked for this episode, four hours"),
              (status = 422, description = "`wrong-code`", body = crate::error::ProblemBody, content_type = "application/problem+json")))]
pub async fn confirm_unlock(
    State(app): State<App>,
    LoggedIn { session, caller }: LoggedIn,
    Path(id): Path<Uuid>,
    ApiJson(body): ApiJson<UnlockCodeBody>,
) -> Result<StatusCode, HttpError> {
    app.confirm_unlock(&session, &caller, id, body.challenge, &body.code)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// An unlock by the recipient's (or an SDM's) smart ID card, read at the provider.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CardUnlockBody {
    #[schema(max_length = 500)]
    pub reason: String,
    pub reader: Uuid,
    pub hkid: String,
    pub card_serial: String,
    /// When the card was read (RFC 3339).
    pub time: String,
    pub nonce: String,
    /// Ed25519 over the assertion's message (`ehrshare-card-assertion-v1` lines), base64url.
    pub signature: String,
}

/// `POST /api/v1/recipients/{id}/unlock/card`: unlock with the recipient's smart ID card.
#[utoipa::path(post, path = "/api/v1/recipients/{id}/unlock/card", tag = "sharing", request_body = CardUnlockBody,
    params(("id" = Uuid, Path, description = "Recipient id")),
    responses((status = 204, description = "Unlocked for this episode, four hours"),
              (status = 403, description = "`card-assertion-refused` (unknown reader, bad signature, stale, replayed, not the recipient's card), or no consent or care episode", body = crate::error::ProblemBody, content_type = "application/problem+json")))]
pub async fn unlock_by_card(
    State(app): State<App>,
    LoggedIn { session, caller }: LoggedIn,
    Path(id): Path<Uuid>,
    ApiJson(body): ApiJson<CardUnlockBody>,
) -> Result<StatusCode, HttpError> {
    let assertion = card_assertion(
        body.reader,
        &body.hkid,
        body.card_serial,
        &body.time,
        body.nonce,
    )?;
    app.unlock_by_card(
        &session,
        &caller,
        id,
        &body.reason,
        assertion,
        &body.signature,
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}
