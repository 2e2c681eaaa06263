//! `/api/v1/me`: the patient portal's login (document + password + one-time code) and who the
//! logged-in person may act for. Logging out is `DELETE /api/v1/session`, as for staff.

pub mod consents;
pub mod inbox;
pub mod record;
pub mod restrictions;
pub mod scan;
pub mod self_service;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use ehrshare_app::auth::Session;
use ehrshare_app::person::{DocumentLogin, person_of};
use ehrshare_app::{App, AppError};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::api::json::ApiJson;
use crate::api::session::SessionView;
use crate::error::HttpError;
use crate::session::{Anonymous, CookieSettings, LoggedIn, with_cookie};

/// An identity document as typed at login.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DocumentLoginBody {
    /// `hkid` (default), `passport`, ...
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    #[serde(default)]
    pub issuer: Option<String>,
    pub number: String,
}

impl From<DocumentLoginBody> for DocumentLogin {
    fn from(d: DocumentLoginBody) -> Self {
        DocumentLogin {
            kind: d.kind,
            issuer: d.issuer,
            number: d.number,
        }
    }
}

/// Setting up a login with the access key the registration sent.
#[derive(Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ActivateBody {
    pub document: DocumentLoginBody,
    pub access_key: String,
    pub password: String,
}

impl std::fmt::Debug for ActivateBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ActivateBody")
    }
}

/// The first step of a login.
#[derive(Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PersonLoginBody {
    pub document: DocumentLoginBody,
    pub password: String,
}

impl std::fmt::Debug for PersonLoginBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PersonLoginBody")
    }
}

/// A login waiting for its one-time code.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ChallengeView {
    pub challenge: Uuid,
}

/// The second step.
#[derive(Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VerifyBody {
    pub challenge: Uuid,
    pub code: String,
}

impl std::fmt::Debug for VerifyBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("VerifyBody")
    }
}

/// Whom the logged-in person may act for.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct MeView {
    pub person: Uuid,
    /// Their own registration, if active.
    pub recipient: Option<Uuid>,
    /// Recipients they act for as SDM now.
    pub represents: Vec<RepresentedView>,
}

/// One recipient an SDM acts for.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RepresentedView {
    pub recipient: Uuid,
    pub sdm: Uuid,
}

/// `POST /api/v1/me/activate`: set up a login with the access key.
#[utoipa::path(
    post,
    path = "/api/v1/me/activate",
    tag = "me",
    request_body = ActivateBody,
    responses(
        (status = 204, description = "The login is set up"),
        (status = 401, description = "`activation-failed`", body = crate::error::ProblemBody, content_type = "application/problem+json"),
        (status = 422, description = "The password breaks the rules", body = crate::error::ProblemBody, content_type = "application/problem+json"),
        (status = 429, description = "`login-throttled`", body = crate::error::ProblemBody, content_type = "application/problem+json"),
    )
)]
pub async fn activate(
    State(app): State<App>,
    Anonymous(caller): Anonymous,
    ApiJson(body): ApiJson<ActivateBody>,
) -> Result<StatusCode, HttpError> {
    app.activate_person(
        &caller,
        body.document.into(),
        &body.access_key,
        &body.password,
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/v1/me/login`: document and password; a one-time code is sent.
#[utoipa::path(
    post,
    path = "/api/v1/me/login",
    tag = "me",
    request_body = PersonLoginBody,
    responses(
        (status = 202, description = "A code was sent; answer the challenge with it", body = ChallengeView),
        (status = 401, description = "`login-failed`: the same for every reason", body = crate::error::ProblemBody, content_type = "application/problem+json"),
        (status = 429, description = "`login-throttled`", body = crate::error::ProblemBody, content_type = "application/problem+json"),
    )
)]
pub async fn begin_login(
    State(app): State<App>,
    Anonymous(caller): Anonymous,
    ApiJson(body): ApiJson<PersonLoginBody>,
) -> Result<(StatusCode, Json<ChallengeView>), HttpError> {
    let challenge = app
        .begin_person_login(&caller, body.document.into(), &body.password)
        .await?;
    Ok((StatusCode::ACCEPTED, Json(ChallengeView { challenge })))
}

/// `POST /api/v1/me/login/verify`: the one-time code; the session cookie is set.
#[utoipa::path(
    post,
    path = "/api/v1/me/login/verify",
    tag = "me",
    request_body = VerifyBody,
    responses(
        (status = 201, description = "Logged in", body = SessionView),
        (status = 401, description = "`login-failed`", body = crate::error::ProblemBody, content_type = "application/problem+json"),
    )
)]
pub async fn finish_login(
    State(app): State<App>,
    axum::Extension(cookies): axum::Extension<CookieSettings>,
    Anonymous(caller): Anonymous,
    ApiJson(body): ApiJson<VerifyBody>,
) -> Result<Response, HttpError> {
    let done = app
        .finish_person_login(&caller, body.challenge, &body.code)
        .await?;
    let view = SessionView {
        stage: done.stage.code().to_owned(),
        csrf_token: Some(done.csrf_token.clone()),
        kind: "person".to_owned(),
        account: None,
        password_expires_at: None,
    };
    let response = (StatusCode::CREATED, Json(view)).into_response();
    Ok(with_cookie(response, cookies.set(&done.token)))
}

/// `GET /api/v1/me`: the logged-in person and whom they act for.
#[utoipa::path(
    get,
    path = "/api/v1/me",
    tag = "me",
    responses(
        (status = 200, description = "The person", body = MeView),
        (status = 401, description = "Not logged in", body = crate::error::ProblemBody, content_type = "application/problem+json"),
        (status = 404, description = "Not a patient-portal session", body = crate::error::ProblemBody, content_type = "application/problem+json"),
    )
)]
pub async fn show(
    State(app): State<App>,
    LoggedIn { session, .. }: LoggedIn,
) -> Result<Json<MeView>, HttpError> {
    let Session { subject, .. } = session;
    let person = person_of(&subject).ok_or(HttpError(AppError::NotFound))?;
    let r = app.represented(person).await?;
    Ok(Json(MeView {
        person: person.id,
        recipient: r.own,
        represents: r
            .as_sdm
            .into_iter()
            .map(|(recipient, sdm)| RepresentedView { recipient, sdm })
            .collect(),
    }))
}
