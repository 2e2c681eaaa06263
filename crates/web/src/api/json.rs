//! JSON request bodies: a malformed body is a problem+json 400 naming what is wrong; a body
//! that is not JSON is a 415.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use ehrshare_app::AppError;
use serde::de::DeserializeOwned;

use crate::error::HttpError;

/// A JSON body of type `T`.
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = axum::response::Response;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(value)) => Ok(ApiJson(value)),
            Err(rejection) => Err(match rejection.status() {
                // Rendered by `error::render` as unsupported-media-type / payload-too-large.
                StatusCode::UNSUPPORTED_MEDIA_TYPE | StatusCode::PAYLOAD_TOO_LARGE => {
                    rejection.status().into_response()
                }
                _ => HttpError(AppError::Malformed {
                    code: "malformed-request",
                    message: body_text(&rejection),
                })
                .into_response(),
            }),
        }
    }
}

fn body_text(rejection: &JsonRejection) -> String {
    rejection.body_text()
}
