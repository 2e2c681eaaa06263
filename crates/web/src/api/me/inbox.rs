//! `/api/v1/me/recipients/{id}/inbox`: notices by the "app" channel, kept in the database and
//! read here (the patient portal's page comes with issue 27).

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use ehrshare_app::App;
use ehrshare_app::inbox::Rendered;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::error::HttpError;
use crate::session::LoggedIn;

/// A notice as its recipient reads it, in the language it was written in.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct NoticeView {
    pub id: Uuid,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub at: OffsetDateTime,
    /// What it is about: `consent-changed`, `access-notice`, `emergency-access`, ...
    pub kind: String,
    /// `en` or `zh-HK`.
    pub language: String,
    pub subject: String,
    pub body: String,
    /// When it was first marked read; none: unread.
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub read_at: Option<OffsetDateTime>,
}

impl From<Rendered> for NoticeView {
    fn from(r: Rendered) -> Self {
        NoticeView {
            id: r.id,
            at: r.at,
            kind: r.kind,
            language: r.locale.tag().to_owned(),
            subject: r.subject,
            body: r.body,
            read_at: r.read_at,
        }
    }
}

/// Paging of the inbox.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InboxQuery {
    /// Older than this message.
    #[serde(default)]
    pub before: Option<Uuid>,
}

/// `GET /api/v1/me/recipients/{id}/inbox`: the recipient's notices, newest first.
#[utoipa::path(get, path = "/api/v1/me/recipients/{id}/inbox", tag = "me",
    params(("id" = Uuid, Path, description = "Recipient id (oneself, or one the SDM represents)"),
           ("before" = Option<Uuid>, Query, description = "Older than this message")),
    responses((status = 200, description = "Newest first, 50 a page", body = [NoticeView]),
              (status = 404, description = "Not oneself nor represented", body = crate::error::ProblemBody, content_type = "application/problem+json")))]
pub async fn inbox(
    State(app): State<App>,
    LoggedIn { session, .. }: LoggedIn,
    Path(id): Path<Uuid>,
    Query(q): Query<InboxQuery>,
) -> Result<Json<Vec<NoticeView>>, HttpError> {
    let notices = app.inbox(&session, id, q.before).await?;
    Ok(Json(notices.into_iter().map(NoticeView::from).collect()))
}

/// `POST /api/v1/me/recipients/{id}/inbox/{message}/read`: mark a notice read.
#[utoipa::path(post, path = "/api/v1/me/recipients/{id}/inbox/{message}/read", tag = "me",
    params(("id" = Uuid, Path, description = "Recipient id"), ("message" = Uuid, Path, description = "The notice")),
    responses((status = 204, description = "Marked read (the first reading is kept)"),
              (status = 404, description = "No such notice of this recipient", body = crate::error::ProblemBody, content_type = "application/problem+json")))]
pub async fn mark_read(
    State(app): State<App>,
    LoggedIn { session, .. }: LoggedIn,
    Path((id, message)): Path<(Uuid, Uuid)>,
) -> Result<StatusCode, HttpError> {
    app.mark_inbox_read(&session, id, message).await?;
    Ok(StatusCode::NO_CONTENT)
}
