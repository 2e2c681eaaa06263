//! The provider portal's user administration (SPEC 4.2, issue 7): a provider's user
//! administrators list its accounts, open new ones (the first password goes to the holder's
//! mobile) and suspend, reinstate, terminate, reset or unlock them. The same use cases as
//! `/api/v1/providers/{id}/accounts`: who may manage which accounts is decided there
//! (`core::account`), and anyone else gets 404.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{Html, Response};
use axum::{Extension, Form};
use ehrshare_app::account::NewAccount;
use ehrshare_app::auth::Subject;
use ehrshare_app::duty::Scope;
use ehrshare_app::user_admin::AdminAction;
use ehrshare_app::{App, AppError};
use ehrshare_core::profession::Role;
use serde::Deserialize;
use uuid::Uuid;

use super::hcp::{PortalUser, form_again, problems, see_other};
use crate::error::HttpError;
use crate::i18n::{Locale, PortalLocale};

/// The page.
pub const USERS: &str = "/hcp/users";

/// One account as listed.
struct UserLine {
    id: Uuid,
    user_name: String,
    name: String,
    role: String,
    status: String,
    status_code: String,
    last_login: String,
}

/// A role offered on the form.
struct RoleOption {
    code: &'static str,
    name: String,
}

/// What was typed into the new-account form, kept after a refusal.
#[derive(Debug, Default, Deserialize)]
pub struct NewUserForm {
    #[serde(default)]
    user_name: String,
    #[serde(default)]
    name_en: String,
    #[serde(default)]
    name_zh: String,
    #[serde(default)]
    role: String,
    #[serde(default)]
    prof_reg_no: String,
    #[serde(default)]
    mobile: String,
    #[serde(default)]
    language: String,
    /// The holder's identity document (required: the separation of duties compares it).
    #[serde(default)]
    kind: String,
    #[serde(default)]
    issuer: String,
    #[serde(default)]
    number: String,
}

#[derive(Template)]
#[template(path = "hcp_users.html")]
struct UsersPage {
    locale: Locale,
    all_locales: [Locale; 2],
    csrf_token: String,
    users: Vec<UserLine>,
    roles: Vec<RoleOption>,
    typed: NewUserForm,
    done: Option<String>,
    problems: Vec<String>,
}

impl UsersPage {
    fn types(&self) -> &'static [&'static str] {
        &super::patients::DOCUMENT_TYPES
    }
}

/// The provider whose accounts the user manages (their own).
fn provider_of(user: &PortalUser) -> Result<Uuid, HttpError> {
    match &user.session.subject {
        Subject::Account(a) => a.hcp_id.ok_or(HttpError(AppError::NotFound)),
        _ => Err(HttpError(AppError::NotFound)),
    }
}

fn in_words(locale: Locale, role: &str) -> String {
    Role::parse(role)
        .map(|r| match locale {
            Locale::ZhHk => r.name_zh().to_owned(),
            Locale::En => r.name_en().to_owned(),
        })
        .unwrap_or_else(|| role.to_owned())
}

async fn page(
    app: &App,
    locale: Locale,
    user: &PortalUser,
    typed: NewUserForm,
    done: Option<String>,
    problems: Vec<String>,
) -> Result<Html<String>, HttpError> {
    let hcp = provider_of(user)?;
    let rows = app.accounts(&user.session, Scope::Hcp(hcp)).await?;
    let users = rows
        .into_iter()
        .map(|a| UserLine {
            id: a.id,
            name: match (locale, &a.name_zh) {
                (Locale::ZhHk, Some(zh)) => format!("{zh} {}", a.name_en),
                _ => a.name_en.clone(),
            },
            role: in_words(locale, &a.role),
            status: locale.t(&format!("account-status-{}", a.status.code())),
            status_code: a.status.code().to_owned(),
            last_login: a
                .last_login_at
                .map(|t| t.date().to_string())
                .unwrap_or_else(|| "-".to_owned()),
            user_name: a.user_name,
        })
        .collect();
    let roles = Role::ALL
        .into_iter()
        .map(|r| RoleOption {
            code: r.code(),
            name: in_words(locale, r.code()),
        })
        .collect();
    let page = UsersPage {
        locale,
        all_locales: super::ALL_LOCALES,
        csrf_token: user.session.csrf_token.clone().unwrap_or_default(),
        users,
        roles,
        typed,
        done,
        problems,
    };
    Ok(Html(crate::render::render_template(&page)?))
}

fn back(done: &str) -> Response {
    see_other(format!("{USERS}?done={done}"))
}

/// `?done=` after an action.
#[derive(Debug, Deserialize)]
pub struct Done {
    #[serde(default)]
    done: Option<String>,
}

/// What `?done=` may say.
const DONE: [&str; 6] = [
    "create",
    "suspend",
    "reinstate",
    "terminate",
    "reset",
    "unlock",
];

/// `GET /hcp/users`: the provider's accounts (user administrators only; others 404).
pub async fn list(
    State(app): State<App>,
    Extension(locale): Extension<Locale>,
    user: PortalUser,
    axum::extract::Query(q): axum::extract::Query<Done>,
) -> Result<Html<String>, HttpError> {
    let done = q
        .done
        .filter(|d| DONE.contains(&d.as_str()))
        .map(|d| locale.t(&format!("users-done-{d}")));
    page(
        &app,
        locale,
        &user,
        NewUserForm::default(),
        done,
        Vec::new(),
    )
    .await
}

/// `POST /hcp/users`: opens an account.
pub async fn create(
    State(app): State<App>,
    Extension(locale): Extension<Locale>,
    user: PortalUser,
    Form(form): Form<NewUserForm>,
) -> Result<Response, HttpError> {
    let hcp = provider_of(&user)?;
    let blank = |s: &str| Some(s.trim().to_owned()).filter(|v| !v.is_empty());
    let input = NewAccount {
        user_name: form.user_name.trim().to_owned(),
        name_en: form.name_en.trim().to_owned(),
        name_zh: blank(&form.name_zh),
        role: form.role.trim().to_owned(),
        user_admin: form.role.trim() == Role::UserAdministrator.code(),
        prof_reg_no: blank(&form.prof_reg_no),
        mobile: form.mobile.trim().to_owned(),
        email: None,
        language: blank(&form.language),
        document: Some(ehrshare_core::registration::DocumentInput {
            kind: form.kind.trim().to_owned(),
            issuer: blank(&form.issuer),
            number: form.number.trim().to_owned(),
        }),
    };
    match app
        .create_account(&user.session, &user.caller, Scope::Hcp(hcp), input)
        .await
    {
        Ok(_) => Ok(back("create")),
        Err(
            e @ (AppError::Invalid { .. } | AppError::Conflict { .. } | AppError::Forbidden { .. }),
        ) => {
            let shown = problems(locale, &e);
            let html = page(&app, locale, &user, form, None, shown).await?;
            Ok(form_again(StatusCode::UNPROCESSABLE_ENTITY, html))
        }
        Err(e) => Err(HttpError(e)),
    }
}

/// An action on an account.
#[derive(Debug, Deserialize)]
pub struct ActionForm {
    #[serde(default)]
    action: String,
    #[serde(default)]
    reason: String,
}

/// `POST /hcp/users/{id}/action`: suspend, reinstate, terminate, reset or unlock.
pub async fn act(
    State(app): State<App>,
    Extension(locale): Extension<Locale>,
    user: PortalUser,
    Path(id): Path<Uuid>,
    Form(form): Form<ActionForm>,
) -> Result<Response, HttpError> {
    let hcp = provider_of(&user)?;
    let Some(action) = AdminAction::parse(form.action.trim()) else {
        let shown = vec![locale.t("problem-generic")];
        let html = page(&app, locale, &user, NewUserForm::default(), None, shown).await?;
        return Ok(form_again(StatusCode::UNPROCESSABLE_ENTITY, html));
    };
    let reason = Some(form.reason.trim().to_owned()).filter(|r| !r.is_empty());
    match app
        .account_action(
            &user.session,
            &user.caller,
            Scope::Hcp(hcp),
            id,
            action,
            reason,
        )
        .await
    {
        Ok(_) => Ok(back(form.action.trim())),
        Err(
            e @ (AppError::Invalid { .. } | AppError::Conflict { .. } | AppError::Forbidden { .. }),
        ) => {
            let shown = problems(locale, &e);
            let html = page(&app, locale, &user, NewUserForm::default(), None, shown).await?;
            Ok(form_again(StatusCode::UNPROCESSABLE_ENTITY, html))
        }
        Err(e) => Err(HttpError(e)),
    }
}
