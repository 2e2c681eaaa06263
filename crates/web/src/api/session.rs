//! `/api/v1/session`: log in, see who is logged in, log out, change the password, enrol the
//! security token. The session lives in a cookie (see [`crate::session`]); the CSRF token
//! returned here must accompany every state-changing request made with it.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use ehrshare_app::App;
use ehrshare_app::account::AccountRow;
use ehrshare_app::auth::{Session, Stage, Subject};
use ehrshare_app::login::LoginInput;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::api::json::ApiJson;
use crate::error::HttpError;
use crate::session::{Anonymous, AnyStage, CookieSettings, with_cookie};

/// What a user types at login.
#[derive(Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginBody {
    pub user_name: String,
    pub password: String,
    /// The security token's six-digit code (not needed before a token is enrolled).
    #[serde(default)]
    pub totp: Option<String>,
}

impl std::fmt::Debug for LoginBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginBody")
            .field("user_name", &self.user_name)
            .finish_non_exhaustive()
    }
}

/// An account as its holder or an administrator sees it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AccountView {
    pub id: Uuid,
    /// `hcp` or `office`.
    pub realm: String,
    pub hcp_id: Option<Uuid>,
    pub user_name: String,
    pub name_en: String,
    pub name_zh: Option<String>,
    pub role: String,
    pub user_admin: bool,
    pub prof_reg_no: Option<String>,
    pub mobile: String,
    pub email: Option<String>,
    pub language: String,
    /// `pending`, `active`, `suspended` or `terminated`.
    pub status: String,
    pub token_enrolled: bool,
    /// Whether the holder's identity document is recorded (never the document itself).
    pub document_recorded: bool,
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_login_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
}

impl From<AccountRow> for AccountView {
    fn from(a: AccountRow) -> Self {
        AccountView {
            id: a.id,
            realm: a.realm.code().to_owned(),
            hcp_id: a.hcp_id,
            user_name: a.user_name,
            name_en: a.name_en,
            name_zh: a.name_zh,
            role: a.role,
            user_admin: a.user_admin,
            prof_reg_no: a.prof_reg_no,
            mobile: a.mobile,
            email: a.email,
            language: a.language,
            status: a.status.code().to_owned(),
            token_enrolled: a.totp_secret.is_some(),
            document_recorded: a.document.is_some(),
            last_login_at: a.last_login_at,
            created_at: a.created_at,
        }
    }
}

/// The session as its holder sees it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SessionView {
    /// `ready`, `must-change-password` or `must-enrol-token`.
    pub stage: String,
    /// Send as `X-CSRF-Token` with every state-changing request.
    pub csrf_token: Option<String>,
    /// `account`, `person` or `client`.
    pub kind: String,
    pub account: Option<AccountView>,
    /// Set when the password is close to its age limit: change it before then.
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub password_expires_at: Option<OffsetDateTime>,
}

fn view(session: &Session, expires: Option<OffsetDateTime>) -> SessionView {
    SessionView {
        stage: session.stage.code().to_owned(),
        csrf_token: session.csrf_token.clone(),
        kind: match &session.subject {
            Subject::Account(_) => "account",
            Subject::Person(_) => "person",
            Subject::Client(_) => "client",
        }
        .to_owned(),
        account: session.account().cloned().map(AccountView::from),
        password_expires_at: expires,
    }
}

/// `POST /api/v1/session`: log in with user name, password and security code.
#[utoipa::path(
    post,
    path = "/api/v1/session",
    tag = "session",
    request_body = LoginBody,
    responses(
        (status = 201, description = "Logged in; the session cookie is set", body = SessionView),
        (status = 401, description = "`login-failed`: the same for every reason", body = crate::error::ProblemBody, content_type = "application/problem+json"),
        (status = 403, description = "`csrf-cross-site`", body = crate::error::ProblemBody, content_type = "application/problem+json"),
        (status = 429, description = "`login-throttled`, with Retry-After", body = crate::error::ProblemBody, content_type = "application/problem+json"),
    )
)]
pub async fn log_in(
    State(app): State<App>,
    axum::Extension(cookies): axum::Extension<CookieSettings>,
    Anonymous(caller): Anonymous,
    ApiJson(body): ApiJson<LoginBody>,
) -> Result<Response, HttpError> {
    let done = app
        .log_in(
            &caller,
            LoginInput {
                user_name: body.user_name,
                password: body.password,
                totp: body.totp,
            },
        )
        .await?;
    let session = Session {
        token_hash: None,
        csrf_token: Some(done.csrf_token.clone()),
        stage: done.stage,
        subject: done.subject,
    };
    let response = (
        StatusCode::CREATED,
        Json(view(&session, done.password_expires)),
    )
        .into_response();
    Ok(with_cookie(response, cookies.set(&done.token)))
}

/// `GET /api/v1/session`: who is logged in, at which stage.
#[utoipa::path(
    get,
    path = "/api/v1/session",
    tag = "session",
    responses(
        (status = 200, description = "The session", body = SessionView),
        (status = 401, description = "Not logged in", body = crate::error::ProblemBody, content_type = "application/problem+json"),
    )
)]
pub async fn show(AnyStage { session, .. }: AnyStage) -> Json<SessionView> {
    Json(view(&session, None))
}

/// `DELETE /api/v1/session`: log out (the cookie is cleared and the session ended).
#[utoipa::path(
    delete,
    path = "/api/v1/session",
    tag = "session",
    responses(
        (status = 204, description = "Logged out"),
        (status = 401, description = "Not logged in", body = crate::error::ProblemBody, content_type = "application/problem+json"),
    )
)]
pub async fn log_out(
    State(app): State<App>,
    axum::Extension(cookies): axum::Extension<CookieSettings>,
    AnyStage { session, caller }: AnyStage,
) -> Result<Response, HttpError> {
    app.log_out(&session, &caller).await?;
    Ok(with_cookie(
        StatusCode::NO_CONTENT.into_response(),
        cookies.clear(),
    ))
}

/// A password change.
#[derive(Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordBody {
    pub current_password: String,
    pub new_password: String,
}

impl std::fmt::Debug for PasswordBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PasswordBody")
    }
}

/// The stage a session reached.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct StageView {
    pub stage: String,
}

fn stage(s: Stage) -> Json<StageView> {
    Json(StageView {
        stage: s.code().to_owned(),
    })
}

/// `POST /api/v1/session/password`: change one's own password.
#[utoipa::path(
    post,
    path = "/api/v1/session/password",
    tag = "session",
    request_body = PasswordBody,
    responses(
        (status = 200, description = "Changed; the session's next stage", body = StageView),
        (status = 422, description = "`wrong-password`, `password-too-short`, `password-common`, `password-reused`, ...", body = crate::error::ProblemBody, content_type = "application/problem+json"),
    )
)]
pub async fn change_password(
    State(app): State<App>,
    AnyStage { session, caller }: AnyStage,
    ApiJson(body): ApiJson<PasswordBody>,
) -> Result<Json<StageView>, HttpError> {
    let s = app
        .change_password(
            &session,
            &caller,
            &body.current_password,
            &body.new_password,
        )
        .await?;
    Ok(stage(s))
}

/// A token enrolment under way.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct EnrolmentView {
    /// For an authenticator app (`otpauth://totp/...`).
    pub otpauth_uri: String,
    /// The secret in base32, to type by hand.
    pub secret: String,
    /// The URI as a QR code (SVG).
    pub qr_svg: String,
}

/// `POST /api/v1/session/token`: start enrolling a security token.
#[utoipa::path(
    post,
    path = "/api/v1/session/token",
    tag = "session",
    responses(
        (status = 200, description = "A new secret to add to an authenticator", body = EnrolmentView),
        (status = 403, description = "`password-change-required`", body = crate::error::ProblemBody, content_type = "application/problem+json"),
    )
)]
pub async fn begin_enrolment(
    State(app): State<App>,
    AnyStage { session, caller }: AnyStage,
) -> Result<Json<EnrolmentView>, HttpError> {
    let e = app.begin_token_enrolment(&session, &caller).await?;
    let qr_svg = crate::qr::svg(&e.otpauth_uri).map_err(HttpError)?;
    Ok(Json(EnrolmentView {
        otpauth_uri: e.otpauth_uri,
        secret: e.secret,
        qr_svg,
    }))
}

/// A code from the new token.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CodeBody {
    pub code: String,
}

/// `POST /api/v1/session/token/confirm`: finish enrolment with a code from the new token.
#[utoipa::path(
    post,
    path = "/api/v1/session/token/confirm",
    tag = "session",
    request_body = CodeBody,
    responses(
        (status = 200, description = "Enrolled; the session's next stage", body = StageView),
        (status = 422, description = "`wrong-token`", body = crate::error::ProblemBody, content_type = "application/problem+json"),
    )
)]
pub async fn confirm_enrolment(
    State(app): State<App>,
    AnyStage { session, caller }: AnyStage,
    ApiJson(body): ApiJson<CodeBody>,
) -> Result<Json<StageView>, HttpError> {
    Ok(stage(
        app.confirm_token_enrolment(&session, &caller, &body.code)
            .await?,
    ))
}

/// The role -> domains matrix in force.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AccessProfilesView {
    pub version: String,
    /// Role code -> domain codes.
    pub roles: std::collections::BTreeMap<String, Vec<String>>,
}

/// `GET /api/v1/access-profiles`: which domains each role may see, and the matrix's version.
#[utoipa::path(
    get,
    path = "/api/v1/access-profiles",
    tag = "session",
    responses(
        (status = 200, description = "The matrix in force", body = AccessProfilesView),
        (status = 401, description = "Not logged in", body = crate::error::ProblemBody, content_type = "application/problem+json"),
    )
)]
pub async fn access_profiles(
    State(app): State<App>,
    crate::session::LoggedIn { .. }: crate::session::LoggedIn,
) -> Json<AccessProfilesView> {
    let p = &app.settings().access_profiles;
    Json(AccessProfilesView {
        version: p.version().to_owned(),
        roles: p
            .entries()
            .map(|(r, d)| {
                (
                    r.code().to_owned(),
                    d.iter().map(|d| d.code().to_owned()).collect(),
                )
            })
            .collect(),
    })
}
