//! JSON request bodies: a malformed body is a problem+json 400 naming what is wrong (a member
//! the operation does not accept as `unknown-field` with its JSON pointer, issue 22); a body
//! that is not JSON is a 415.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use ehrshare_app::AppError;
use ehrshare_app::error::FieldError;
use serde::de::DeserializeOwned;
use serde_json::value::RawValue;

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
        // The media type, the size and the syntax first, as axum checks them; then the shape,
        // with the path of the member at fault.
        let raw = match Json::<Box<RawValue>>::from_request(req, state).await {
            Ok(Json(raw)) => raw,
            Err(rejection) => {
                return Err(match rejection.status() {
                    // Rendered by `error::render` as unsupported-media-type /
                    // payload-too-large.
                    StatusCode::UNSUPPORTED_MEDIA_TYPE | StatusCode::PAYLOAD_TOO_LARGE => {
                        rejection.status().into_response()
                    }
                    _ => HttpError(AppError::Malformed {
                        code: "malformed-request",
                        message: body_text(&rejection),
                        fields: Vec::new(),
                    })
                    .into_response(),
                });
            }
        };
        parse(raw.get())
            .map(ApiJson)
            .map_err(|e| HttpError(e).into_response())
    }
}

/// `T` from JSON text, or the 400 that names the member at fault.
pub(crate) fn parse<T: DeserializeOwned>(text: &str) -> Result<T, AppError> {
    let mut de = serde_json::Deserializer::from_str(text);
    serde_path_to_error::deserialize(&mut de).map_err(|err| {
        let inner = err.inner().to_string();
        // serde's own words, without the position (the pointer says where).
        let message = inner
            .rsplit_once(" at line ")
            .map_or(inner.as_str(), |(m, _)| m)
            .to_owned();
        let mut pointer = String::new();
        for segment in err.path().iter() {
            use serde_path_to_error::Segment;
            match segment {
                Segment::Seq { index } => pointer.push_str(&format!("/{index}")),
                Segment::Map { key } => {
                    pointer.push('/');
                    pointer.push_str(&key.replace('~', "~0").replace('/', "~1"));
                }
                Segment::Enum { variant } => {
                    pointer.push('/');
                    pointer.push_str(variant);
                }
                Segment::Unknown => break,
            }
        }
        let (code, field) = if message.starts_with("unknown field ") {
            ("unknown-field", pointer)
        } else if let Some(name) = message
            .strip_prefix("missing field `")
            .and_then(|rest| rest.split('`').next())
        {
            ("required", format!("{pointer}/{name}"))
        } else {
            ("invalid-value", pointer)
        };
        AppError::Malformed {
            code: if code == "unknown-field" {
                "unknown-field"
            } else {
                "malformed-request"
            },
            message: format!("{}: {message}", if field.is_empty() { "/" } else { &field }),
            fields: vec![FieldError {
                field,
                code,
                message,
            }],
        }
    })
}

fn body_text(rejection: &JsonRejection) -> String {
    rejection.body_text()
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        name: String,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Outer {
        id: u32,
        #[serde(default)]
        items: Vec<Inner>,
    }

    fn field(text: &str) -> (&'static str, String, &'static str) {
        match parse::<Outer>(text) {
            Err(AppError::Malformed { code, fields, .. }) => {
                (code, fields[0].field.clone(), fields[0].code)
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_member_at_fault_is_named_by_its_pointer() {
        assert_eq!(
            field(r#"{"id": 1, "status": "active"}"#),
            ("unknown-field", "/status".to_owned(), "unknown-field")
        );
        assert_eq!(
            field(r#"{"id": 1, "items": [{"name": "a"}, {"name": "b", "x/y": 1}]}"#),
            ("unknown-field", "/items/1/x~1y".to_owned(), "unknown-field")
        );
        assert_eq!(
            field(r#"{"items": []}"#),
            ("malformed-request", "/id".to_owned(), "required")
        );
        assert_eq!(
            field(r#"{"id": "one"}"#),
            ("malformed-request", "/id".to_owned(), "invalid-value")
        );
        assert!(parse::<Outer>(r#"{"id": 1, "items": [{"name": "a"}]}"#).is_ok());
    }
}
