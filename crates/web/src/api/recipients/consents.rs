//! `POST /api/v1/recipients/{id}/consents`: a sharing consent given at a provider.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use ehrshare_app::App;
use ehrshare_app::consent::ConsentInput;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::api::json::ApiJson;
use crate::error::HttpError;
use crate::session::LoggedIn;

/// A consent recorded at a provider.
#[derive(Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConsentBody {
    /// `access-key` or `form`.
    pub method: String,
    #[serde(default)]
    pub access_key: Option<String>,
    #[serde(default)]
    #[schema(max_length = 100)]
    pub form_ref: Option<String>,
    /// `one-year` or `indefinite` (default); under the 2025 rules consents have no kind and
    /// one given is refused (422 `consent-kind-not-applicable`).
    #[serde(default)]
    pub kind: Option<String>,
}

impl std::fmt::Debug for ConsentBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConsentBody")
            .field("method", &self.method)
            .finish_non_exhaustive()
    }
}

/// A consent as shown.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ConsentView {
    pub id: Uuid,
    pub recipient: Uuid,
    pub hcp: Uuid,
    pub kind: String,
    pub method: String,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub given_at: OffsetDateTime,
}

pub(crate) fn consent_view(c: ehrshare_app::consent::ConsentRecord) -> ConsentView {
    ConsentView {
        id: c.id,
        recipient: c.recipient_id,
        hcp: c.hcp_id,
        kind: c.kind,
        method: c.method,
        given_at: c.given_at,
    }
}

/// `POST /api/v1/recipients/{id}/consents`: record the recipient's sharing consent with the
/// caller's provider (access key or signed form).
#[utoipa::path(post, path = "/api/v1/recipients/{id}/consents", tag = "sharing", request_body = ConsentBody,
    params(("id" = Uuid, Path, description = "Recipient id")),
    responses((status = 201, description = "Given", body = ConsentView),
              (status = 403, description = "`access-key-locked`, `recipient-not-registered`", body = crate::error::ProblemBody, content_type = "application/problem+json"),
              (status = 422, description = "`wrong-access-key`, `invalid-method`", body = crate::error::ProblemBody, content_type = "application/problem+json")))]
pub async fn give_consent(
    State(app): State<App>,
    LoggedIn { session, caller }: LoggedIn,
    Path(id): Path<Uuid>,
    ApiJson(body): ApiJson<ConsentBody>,
) -> Result<(StatusCode, Json<ConsentView>), HttpError> {
    let c = app
        .give_consent(
            &session,
            &caller,
            id,
            ConsentInput {
                method: body.method,
                access_key: body.access_key,
                form_ref: body.form_ref,
                kind: body.kind,
            },
        )
        .await?;
    Ok((StatusCode::CREATED, Json(consent_view(c))))
}
