//! User administration: `/api/v1/providers/{id}/accounts` (a provider's user administrators,
//! and the office for a provider's first administrator) and `/api/v1/office/accounts` (the
//! office's system administrators). Another provider's accounts answer 404.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use ehrshare_app::App;
use ehrshare_app::AppError;
use ehrshare_app::account::NewAccount;
use ehrshare_app::duty::Scope;
use ehrshare_app::user_admin::{AdminAction, RoleChange};
use serde::Deserialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::api::json::ApiJson;
use crate::api::session::AccountView;
use crate::error::HttpError;
use crate::session::LoggedIn;

/// A new account. There is no password field: the first password is generated and sent to
/// the holder's mobile; a body naming one is refused.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewAccountBody {
    pub user_name: String,
    #[schema(max_length = 100)]
    pub name_en: String,
    #[serde(default)]
    #[schema(max_length = 100)]
    pub name_zh: Option<String>,
    /// A profession (`doctor`, `chinese-medicine-practitioner`, ...), `registration-staff` or
    /// `user-administrator`; for office accounts `registration-officer`, `privacy-officer` or
    /// `system-administrator`.
    pub role: String,
    #[serde(default)]
    pub user_admin: bool,
    /// Required for professionals, in the profession's format.
    #[serde(default)]
    pub prof_reg_no: Option<String>,
    pub mobile: String,
    #[serde(default)]
    pub email: Option<String>,
    /// `en` or `zh-HK` (default).
    #[serde(default)]
    pub language: Option<String>,
    /// The holder's identity document: required (the separation of duties compares it with
    /// the administrator's own: nobody opens an account bearing their own document, and a
    /// registration number stays with one document). Reading the holder's own record, or a
    /// colleague's reading it, raises an alert. Never shown back.
    #[serde(default)]
    pub document: Option<crate::api::recipients::DocumentBody>,
}

/// A change of role.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RoleBody {
    pub role: String,
    #[serde(default)]
    pub prof_reg_no: Option<String>,
    #[serde(default)]
    pub user_admin: bool,
}

/// An administrator's action on an account.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ActionBody {
    /// `suspend`, `reinstate`, `terminate`, `reset` or `unlock`.
    pub action: String,
    #[serde(default)]
    #[schema(max_length = 500)]
    pub reason: Option<String>,
}

fn new_account(b: NewAccountBody) -> NewAccount {
    NewAccount {
        user_name: b.user_name,
        name_en: b.name_en,
        name_zh: b.name_zh,
        role: b.role,
        user_admin: b.user_admin,
        prof_reg_no: b.prof_reg_no,
        mobile: b.mobile,
        email: b.email,
        language: b.language,
        document: b.document.map(crate::api::recipients::document),
    }
}

fn action(b: &ActionBody) -> Result<AdminAction, HttpError> {
    AdminAction::parse(&b.action).ok_or_else(|| {
        HttpError(AppError::Invalid {
            code: "invalid-action",
            message: "suspend, reinstate, terminate, reset or unlock".to_owned(),
            fields: Vec::new(),
        })
    })
}

/// `GET /api/v1/providers/{id}/accounts`: a provider's accounts, with their last login.
#[utoipa::path(
    get,
    path = "/api/v1/providers/{id}/accounts",
    tag = "accounts",
    params(("id" = Uuid, Path, description = "Provider id")),
    responses(
        (status = 200, description = "The accounts", body = [AccountView]),
        (status = 404, description = "Not a provider whose accounts the caller manages", body = crate::error::ProblemBody, content_type = "application/problem+json"),
    )
)]
pub async fn list(
    State(app): State<App>,
    LoggedIn { session, .. }: LoggedIn,
    Path(hcp): Path<Uuid>,
) -> Result<Json<Vec<AccountView>>, HttpError> {
    let rows = app.accounts(&session, Scope::Hcp(hcp)).await?;
    Ok(Json(rows.into_iter().map(AccountView::from).collect()))
}

/// `POST /api/v1/providers/{id}/accounts`: open an account (the first password goes to the
/// holder's mobile).
#[utoipa::path(
    post,
    path = "/api/v1/providers/{id}/accounts",
    tag = "accounts",
    params(("id" = Uuid, Path, description = "Provider id")),
    request_body = NewAccountBody,
    responses(
        (status = 201, description = "Opened, pending the holder's first login", body = AccountView),
        (status = 400, description = "Malformed, or an unknown field such as `password`", body = crate::error::ProblemBody, content_type = "application/problem+json"),
        (status = 404, description = "Not a provider whose accounts the caller manages", body = crate::error::ProblemBody, content_type = "application/problem+json"),
        (status = 409, description = "`user-name-taken`", body = crate::error::ProblemBody, content_type = "application/problem+json"),
        (status = 422, description = "`invalid-role`, `invalid-registration-number`, ...", body = crate::error::ProblemBody, content_type = "application/problem+json"),
    )
)]
pub async fn create(
    State(app): State<App>,
    LoggedIn { session, caller }: LoggedIn,
    Path(hcp): Path<Uuid>,
    ApiJson(body): ApiJson<NewAccountBody>,
) -> Result<(StatusCode, Json<AccountView>), HttpError> {
    let row = app
        .create_account(&session, &caller, Scope::Hcp(hcp), new_account(body))
        .await?;
    Ok((StatusCode::CREATED, Json(row.into())))
}

/// `GET /api/v1/providers/{id}/accounts/{account}`: one account.
#[utoipa::path(
    get,
    path = "/api/v1/providers/{id}/accounts/{account}",
    tag = "accounts",
    params(("id" = Uuid, Path, description = "Provider id"), ("account" = Uuid, Path, description = "Account id")),
    responses(
        (status = 200, description = "The account", body = AccountView),
        (status = 404, description = "No such account at a provider the caller manages", body = crate::error::ProblemBody, content_type = "application/problem+json"),
    )
)]
pub async fn show(
    State(app): State<App>,
    LoggedIn { session, .. }: LoggedIn,
    Path((hcp, id)): Path<(Uuid, Uuid)>,
) -> Result<Json<AccountView>, HttpError> {
    Ok(Json(
        app.account_in(&session, Scope::Hcp(hcp), id).await?.into(),
    ))
}

/// `PUT /api/v1/providers/{id}/accounts/{account}/role`: change an account's role.
#[utoipa::path(
    put,
    path = "/api/v1/providers/{id}/accounts/{account}/role",
    tag = "accounts",
    params(("id" = Uuid, Path, description = "Provider id"), ("account" = Uuid, Path, description = "Account id")),
    request_body = RoleBody,
    responses(
        (status = 200, description = "Changed", body = AccountView),
        (status = 404, description = "No such account at a provider the caller manages", body = crate::error::ProblemBody, content_type = "application/problem+json"),
        (status = 422, description = "`invalid-role`, `invalid-registration-number`", body = crate::error::ProblemBody, content_type = "application/problem+json"),
    )
)]
pub async fn change_role(
    State(app): State<App>,
    LoggedIn { session, caller }: LoggedIn,
    Path((hcp, id)): Path<(Uuid, Uuid)>,
    ApiJson(body): ApiJson<RoleBody>,
) -> Result<Json<AccountView>, HttpError> {
    let change = RoleChange {
        role: body.role,
        prof_reg_no: body.prof_reg_no,
        user_admin: body.user_admin,
    };
    Ok(Json(
        app.change_role(&session, &caller, Scope::Hcp(hcp), id, change)
            .await?
            .into(),
    ))
}

/// `POST /api/v1/providers/{id}/accounts/{account}/actions`: suspend, reinstate, terminate,
/// reset or unlock an account.
#[utoipa::path(
    post,
    path = "/api/v1/providers/{id}/accounts/{account}/actions",
    tag = "accounts",
    params(("id" = Uuid, Path, description = "Provider id"), ("account" = Uuid, Path, description = "Account id")),
    request_body = ActionBody,
    responses(
        (status = 200, description = "Done", body = AccountView),
        (status = 404, description = "No such account at a provider the caller manages", body = crate::error::ProblemBody, content_type = "application/problem+json"),
        (status = 409, description = "`invalid-transition`", body = crate::error::ProblemBody, content_type = "application/problem+json"),
    )
)]
pub async fn act(
    State(app): State<App>,
    LoggedIn { session, caller }: LoggedIn,
    Path((hcp, id)): Path<(Uuid, Uuid)>,
    ApiJson(body): ApiJson<ActionBody>,
) -> Result<Json<AccountView>, HttpError> {
    let a = action(&body)?;
    Ok(Json(
        app.account_action(&session, &caller, Scope::Hcp(hcp), id, a, body.reason)
            .await?
            .into(),
    ))
}

/// `GET /api/v1/office/accounts`: the office's accounts (its system administrators).
#[utoipa::path(
    get,
    path = "/api/v1/office/accounts",
    tag = "accounts",
    responses(
        (status = 200, description = "The accounts", body = [AccountView]),
        (status = 404, description = "Not an office system administrator", body = crate::error::ProblemBody, content_type = "application/problem+json"),
    )
)]
pub async fn office_list(
    State(app): State<App>,
    LoggedIn { session, .. }: LoggedIn,
) -> Result<Json<Vec<AccountView>>, HttpError> {
    let rows = app.accounts(&session, Scope::Office).await?;
    Ok(Json(rows.into_iter().map(AccountView::from).collect()))
}

/// `POST /api/v1/office/accounts`: open an office account.
#[utoipa::path(
    post,
    path = "/api/v1/office/accounts",
    tag = "accounts",
    request_body = NewAccountBody,
    responses(
        (status = 201, description = "Opened", body = AccountView),
        (status = 404, description = "Not an office system administrator", body = crate::error::ProblemBody, content_type = "application/problem+json"),
        (status = 422, description = "`invalid-role`, ...", body = crate::error::ProblemBody, content_type = "application/problem+json"),
    )
)]
pub async fn office_create(
    State(app): State<App>,
    LoggedIn { session, caller }: LoggedIn,
    ApiJson(body): ApiJson<NewAccountBody>,
) -> Result<(StatusCode, Json<AccountView>), HttpError> {
    let row = app
        .create_account(&session, &caller, Scope::Office, new_account(body))
        .await?;
    Ok((StatusCode::CREATED, Json(row.into())))
}

/// `POST /api/v1/office/accounts/{account}/actions`: act on an office account.
#[utoipa::path(
    post,
    path = "/api/v1/office/accounts/{account}/actions",
    tag = "accounts",
    params(("account" = Uuid, Path, description = "Account id")),
    request_body = ActionBody,
    responses(
        (status = 200, description = "Done", body = AccountView),
        (status = 404, description = "No such office account, or not a system administrator", body = crate::error::ProblemBody, content_type = "application/problem+json"),
    )
)]
pub async fn office_act(
    State(app): State<App>,
    LoggedIn { session, caller }: LoggedIn,
    Path(id): Path<Uuid>,
    ApiJson(body): ApiJson<ActionBody>,
) -> Result<Json<AccountView>, HttpError> {
    let a = action(&body)?;
    Ok(Json(
        app.account_action(&session, &caller, Scope::Office, id, a, body.reason)
            .await?
            .into(),
    ))
}

/// A clinic system to register.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClientBody {
    pub name: String,
    /// Exact redirect URIs for the authorization-code flow (https, or http on the loopback).
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    /// The most it may be granted, space-separated: SMART v2 (`system/*.c`, `user/*.rs`) or
    /// v1 (`system/*.write`, `user/*.read`).
    pub scopes: String,
    /// A backend service's public keys, a JWK Set (RS384 or ES384, each with its `kid`): it
    /// then authenticates by signed assertion (SMART Backend Services) and has no secret.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub jwks: Option<serde_json::Value>,
}

/// A registered clinic system, with its secret (shown this once only; none for a client
/// with keys).
#[derive(Debug, Clone, serde::Serialize, ToSchema)]
pub struct ClientView {
    pub client_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
    pub name: String,
    pub redirect_uris: Vec<String>,
    pub scopes: String,
}

/// `POST /api/v1/providers/{id}/clients`: register a clinic system (user administrators).
#[utoipa::path(
    post,
    path = "/api/v1/providers/{id}/clients",
    tag = "accounts",
    params(("id" = Uuid, Path, description = "Provider id")),
    request_body = ClientBody,
    responses(
        (status = 201, description = "Registered; the secret is shown once", body = ClientView),
        (status = 404, description = "Not a provider whose accounts the caller manages", body = crate::error::ProblemBody, content_type = "application/problem+json"),
        (status = 422, description = "`invalid-redirect-uri`, `invalid-scope`, `invalid-jwks`", body = crate::error::ProblemBody, content_type = "application/problem+json"),
    )
)]
pub async fn register_client(
    State(app): State<App>,
    LoggedIn { session, caller }: LoggedIn,
    Path(hcp): Path<Uuid>,
    ApiJson(body): ApiJson<ClientBody>,
) -> Result<(StatusCode, Json<ClientView>), HttpError> {
    let r = app
        .register_client(
            &session,
            &caller,
            hcp,
            ehrshare_app::oauth::NewClient {
                name: body.name,
                redirect_uris: body.redirect_uris,
                scopes: body.scopes,
                jwks: body.jwks,
            },
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(ClientView {
            client_id: r.client.client_id,
            client_secret: r.secret,
            name: r.client.name,
            redirect_uris: r.client.redirect_uris,
            scopes: r.client.scopes,
        }),
    ))
}

/// `POST /api/v1/providers/{id}/clients/{client}/revoke`: revoke a clinic system and its tokens.
#[utoipa::path(
    post,
    path = "/api/v1/providers/{id}/clients/{client}/revoke",
    tag = "accounts",
    params(("id" = Uuid, Path, description = "Provider id"), ("client" = String, Path, description = "Client id")),
    responses(
        (status = 204, description = "Revoked"),
        (status = 404, description = "No such client at a provider the caller manages", body = crate::error::ProblemBody, content_type = "application/problem+json"),
    )
)]
pub async fn revoke_client(
    State(app): State<App>,
    LoggedIn { session, caller }: LoggedIn,
    Path((hcp, client)): Path<(Uuid, String)>,
) -> Result<StatusCode, HttpError> {
    app.revoke_client(&session, &caller, hcp, &client).await?;
    Ok(StatusCode::NO_CONTENT)
}
