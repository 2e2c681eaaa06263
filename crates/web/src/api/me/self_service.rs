//! `/api/v1/me` self-service (issue 27, items 1 and 8; ADR 0021): registering online, a
//! forgotten or changed password, and a new mobile number or e-mail address, each confirmed
//! by a one-time code.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use ehrshare_app::App;
use ehrshare_app::self_service::Online;
use serde::Deserialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::api::json::ApiJson;
use crate::api::me::{ChallengeView, DocumentLoginBody};
use crate::api::recipients::{RecipientView, RegistrationBody};
use crate::error::HttpError;
use crate::session::{Anonymous, LoggedIn, PersonSession};

/// `POST /api/v1/me/registrations`: register online (SPEC 3.2). It waits for the office to
/// verify the person's identity; a person logged in through iAM Smart who registers their own
/// document is verified at once. A parent registers a child under 16 with `sdm` (the
/// relationship declared in `relationship_proof`).
#[utoipa::path(
    post,
    path = "/api/v1/me/registrations",
    tag = "me",
    request_body = RegistrationBody,
    responses(
        (status = 201, description = "Verified through iAM Smart: active, the access key sent", body = RecipientView),
        (status = 202, description = "Received: it waits for verification (the reference goes to the contact given), or the document is registered already (its holder is told); the answer does not say which", body = ReceivedView),
        (status = 422, description = "Invalid fields, or the age and capacity rules (`sdm-required-for-child`, ...)", body = crate::error::ProblemBody, content_type = "application/problem+json"),
        (status = 429, description = "`registration-throttled`", body = crate::error::ProblemBody, content_type = "application/problem+json"),
    )
)]
pub async fn register(
    State(app): State<App>,
    Anonymous(mut caller): Anonymous,
    PersonSession(session): PersonSession,
    ApiJson(body): ApiJson<RegistrationBody>,
) -> Result<impl IntoResponse, HttpError> {
    if !matches!(body.channel.as_str(), "" | "online") {
        return Err(HttpError(ehrshare_app::error::invalid(
            "/channel",
            "invalid-channel",
            "a registration made here is `online`",
        )));
    }
    if let Some(s) = &session {
        caller.actor = s.actor();
    }
    match app
        .register_online(&caller, session.as_ref(), body.into())
        .await?
    {
        Online::Verified(reg) => {
            Ok((StatusCode::CREATED, Json(RecipientView::from(*reg))).into_response())
        }
        Online::Received => Ok((
            StatusCode::ACCEPTED,
            Json(ReceivedView {
                status: "received".to_owned(),
            }),
        )
            .into_response()),
    }
}

/// An online registration received (`status` is `received`).
#[derive(Debug, Clone, serde::Serialize, ToSchema)]
pub struct ReceivedView {
    pub status: String,
}

/// A forgotten password: the document and the access key.
#[derive(Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetBody {
    pub document: DocumentLoginBody,
    pub access_key: String,
}

impl std::fmt::Debug for ResetBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ResetBody")
    }
}

/// `POST /api/v1/me/password/reset`: a forgotten password, first step; a code goes to the
/// registered contact.
#[utoipa::path(
    post,
    path = "/api/v1/me/password/reset",
    tag = "me",
    request_body = ResetBody,
    responses(
        (status = 202, description = "A code was sent to the registered contact", body = ChallengeView),
        (status = 401, description = "`reset-failed`: the same for every reason", body = crate::error::ProblemBody, content_type = "application/problem+json"),
        (status = 429, description = "`login-throttled`", body = crate::error::ProblemBody, content_type = "application/problem+json"),
    )
)]
pub async fn begin_reset(
    State(app): State<App>,
    Anonymous(caller): Anonymous,
    ApiJson(body): ApiJson<ResetBody>,
) -> Result<(StatusCode, Json<ChallengeView>), HttpError> {
    let challenge = app
        .begin_password_reset(&caller, body.document.into(), &body.access_key)
        .await?;
    Ok((StatusCode::ACCEPTED, Json(ChallengeView { challenge })))
}

/// `POST /api/v1/me/password/code`: a new password from inside the portal (a login made
/// through iAM Smart has none); a code goes to the registered contact.
#[utoipa::path(
    post,
    path = "/api/v1/me/password/code",
    tag = "me",
    responses(
        (status = 202, description = "A code was sent to the registered contact", body = ChallengeView),
        (status = 404, description = "Not a patient-portal session", body = crate::error::ProblemBody, content_type = "application/problem+json"),
        (status = 409, description = "`no-registered-contact`", body = crate::error::ProblemBody, content_type = "application/problem+json"),
    )
)]
pub async fn begin_change(
    State(app): State<App>,
    LoggedIn { session, caller }: LoggedIn,
) -> Result<(StatusCode, Json<ChallengeView>), HttpError> {
    let challenge = app.begin_password_change(&session, &caller).await?;
    Ok((StatusCode::ACCEPTED, Json(ChallengeView { challenge })))
}

/// The code and the new password.
#[derive(Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewPasswordBody {
    pub challenge: Uuid,
    pub code: String,
    pub password: String,
}

impl std::fmt::Debug for NewPasswordBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NewPasswordBody")
    }
}

/// `POST /api/v1/me/password`: the code and the new password; every other session of the
/// person ends.
#[utoipa::path(
    post,
    path = "/api/v1/me/password",
    tag = "me",
    request_body = NewPasswordBody,
    responses(
        (status = 204, description = "The password is set"),
        (status = 401, description = "`reset-failed`", body = crate::error::ProblemBody, content_type = "application/problem+json"),
        (status = 422, description = "The password breaks the rules", body = crate::error::ProblemBody, content_type = "application/problem+json"),
    )
)]
pub async fn set_password(
    State(app): State<App>,
    Anonymous(caller): Anonymous,
    PersonSession(session): PersonSession,
    ApiJson(body): ApiJson<NewPasswordBody>,
) -> Result<StatusCode, HttpError> {
    app.finish_password_reset(
        &caller,
        session.as_ref(),
        body.challenge,
        &body.code,
        &body.password,
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A new contact for a registration.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ContactBody {
    /// `phone` (a mobile number) or `email`.
    pub kind: String,
    #[schema(max_length = 254)]
    pub value: String,
}

/// `POST /api/v1/me/recipients/{id}/contact`: a new mobile number or e-mail address, first
/// step; a code goes to the new contact, and another to the mobile number on file.
#[utoipa::path(
    post,
    path = "/api/v1/me/recipients/{id}/contact",
    tag = "me",
    params(("id" = Uuid, Path, description = "Recipient id")),
    request_body = ContactBody,
    responses(
        (status = 202, description = "A code was sent to the new contact", body = ChallengeView),
        (status = 403, description = "`sdm-authority-ended`", body = crate::error::ProblemBody, content_type = "application/problem+json"),
        (status = 404, description = "Not a recipient the person acts for", body = crate::error::ProblemBody, content_type = "application/problem+json"),
        (status = 422, description = "`invalid-phone`, `invalid-email`, `invalid-kind`, `same-contact`", body = crate::error::ProblemBody, content_type = "application/problem+json"),
    )
)]
pub async fn begin_contact(
    State(app): State<App>,
    LoggedIn { session, caller }: LoggedIn,
    Path(id): Path<Uuid>,
    ApiJson(body): ApiJson<ContactBody>,
) -> Result<(StatusCode, Json<ChallengeView>), HttpError> {
    let challenge = app
        .begin_contact_change(&session, &caller, id, &body.kind, &body.value)
        .await?;
    Ok((StatusCode::ACCEPTED, Json(ChallengeView { challenge })))
}

/// The codes: the one sent to the new contact, and the one sent to the mobile number on file.
#[derive(Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ContactCodeBody {
    pub challenge: Uuid,
    pub code: String,
    pub current_code: String,
}

impl std::fmt::Debug for ContactCodeBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ContactCodeBody")
    }
}

/// `POST /api/v1/me/recipients/{id}/contact/verify`: the code; the registration takes the new
/// contact and the old one is told.
#[utoipa::path(
    post,
    path = "/api/v1/me/recipients/{id}/contact/verify",
    tag = "me",
    params(("id" = Uuid, Path, description = "Recipient id")),
    request_body = ContactCodeBody,
    responses(
        (status = 204, description = "The contact is changed"),
        (status = 404, description = "Not a recipient the person acts for", body = crate::error::ProblemBody, content_type = "application/problem+json"),
        (status = 422, description = "`code-refused`", body = crate::error::ProblemBody, content_type = "application/problem+json"),
    )
)]
pub async fn verify_contact(
    State(app): State<App>,
    LoggedIn { session, caller }: LoggedIn,
    Path(id): Path<Uuid>,
    ApiJson(body): ApiJson<ContactCodeBody>,
) -> Result<StatusCode, HttpError> {
    app.finish_contact_change(
        &session,
        &caller,
        id,
        body.challenge,
        &body.code,
        &body.current_code,
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}
