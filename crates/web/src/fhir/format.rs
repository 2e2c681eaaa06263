//! The representation of `/fhir` answers (FHIR R4 http, "Content Types and encodings"):
//! JSON only. `_format` wins over `Accept`; asking only for XML, Turtle or anything but JSON
//! is 406 with an OperationOutcome. Answers are `application/fhir+json`.

use axum::extract::FromRequestParts;
use axum::http::header::{ACCEPT, CONTENT_TYPE, ETAG, LAST_MODIFIED};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use time::OffsetDateTime;
use time::macros::format_description;

use crate::error::{Problem, problem_response};

/// A request whose caller takes FHIR JSON.
#[derive(Debug, Clone, Copy)]
pub struct FhirJson;

/// Whether a media type (with any parameters) is FHIR JSON or plain JSON, or accepts them.
fn takes_json(media: &str) -> bool {
    let essence = media
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    matches!(
        essence.as_str(),
        "json" | "application/json" | "application/fhir+json" | "application/*" | "*/*"
    )
}

impl<S: Send + Sync> FromRequestParts<S> for FhirJson {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let format = parts.uri.query().and_then(|q| {
            serde_urlencoded::from_str::<Vec<(String, String)>>(q)
                .ok()?
                .into_iter()
                .find(|(k, _)| k == "_format")
                .map(|(_, v)| v)
        });
        let ok = match format {
            // `_format=application/fhir+json` written without escaping its `+` reaches us
            // form-decoded, with a space.
            Some(f) => takes_json(&f.replace(' ', "+")),
            None => match parts.headers.get(ACCEPT).map(HeaderValue::to_str) {
                None => true,
                Some(Ok(accept)) => accept.trim().is_empty() || accept.split(',').any(takes_json),
                Some(Err(_)) => false,
            },
        };
        if ok {
            Ok(FhirJson)
        } else {
            Err(problem_response(Problem::not_acceptable(
                "only FHIR JSON (application/fhir+json) is served",
            )))
        }
    }
}

pub use ehrshare_fhir::served::server_id;

/// A 400 naming the parameter or header at fault.
pub fn bad_parameter(field: &str, code: &'static str, message: &str) -> ehrshare_app::AppError {
    ehrshare_app::AppError::Malformed {
        code,
        message: format!("{field}: {message}"),
        fields: vec![ehrshare_app::error::FieldError::new(field, code, message)],
    }
}

/// The parameters of a query or a form body, or a 400.
pub fn parameters(text: &str) -> Result<Vec<(String, String)>, ehrshare_app::AppError> {
    serde_urlencoded::from_str(text).map_err(|_| ehrshare_app::AppError::Malformed {
        code: "malformed-search",
        message: "the parameters are not form-encoded".to_owned(),
        fields: Vec::new(),
    })
}

/// Refuses, by name, every parameter but how the answer is written (`_format`, `_pretty`):
/// for interactions answered whole, where an ignored parameter would mislead.
pub fn only_format(query: Option<&str>, why: &str) -> Result<(), ehrshare_app::AppError> {
    let params = parameters(query.unwrap_or_default())?;
    match params
        .iter()
        .find(|(k, _)| k != "_format" && k != "_pretty")
    {
        Some((name, _)) => Err(bad_parameter(name, "unknown-parameter", why)),
        None => Ok(()),
    }
}

/// A listed record (of a search, `$everything`) as FHIR serves it.
pub fn listed(
    r: &ehrshare_app::record::ListedRecord,
) -> Result<serde_json::Map<String, serde_json::Value>, ehrshare_app::AppError> {
    ehrshare_fhir::served::record(
        &r.body,
        ehrshare_fhir::served::RecordMeta {
            id: r.id,
            version: r.version,
            updated_at: r.updated_at,
            source_hcp: r.source_hcp,
        },
    )
    .map_err(|e| ehrshare_app::AppError::Internal(e.into()))
}

/// An answer with a FHIR JSON body.
pub fn fhir_json(status: StatusCode, body: String) -> Response {
    let mut response = (status, body).into_response();
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static(ehrshare_fhir::FHIR_JSON),
    );
    response
}

/// Adds a version's `ETag` and `Last-Modified`.
pub fn with_version(mut response: Response, version: i64, at: OffsetDateTime) -> Response {
    let headers = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&ehrshare_fhir::served::etag(version)) {
        headers.insert(ETAG, v);
    }
    if let Ok(v) = HeaderValue::from_str(&http_date(at)) {
        headers.insert(LAST_MODIFIED, v);
    }
    response
}

/// An HTTP date (RFC 9110, IMF-fixdate).
pub fn http_date(at: OffsetDateTime) -> String {
    at.to_offset(time::UtcOffset::UTC)
        .format(format_description!(
            "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
        ))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    #[test]
    fn json_in_any_spelling_is_taken_and_nothing_else() {
        for m in [
            "application/fhir+json",
            "application/fhir+json; fhirVersion=4.0",
            "application/json",
            "json",
            "*/*",
            "application/*;q=0.5",
        ] {
            assert!(takes_json(m), "{m}");
        }
        for m in [
            "application/fhir+xml",
            "xml",
            "text/turtle",
            "text/html",
            "",
        ] {
            assert!(!takes_json(m), "{m}");
        }
    }

    #[test]
    fn http_dates_are_imf_fixdate() {
        assert_eq!(
            http_date(datetime!(1994-11-06 16:49:37 +08:00)),
            "Sun, 06 Nov 1994 08:49:37 GMT"
        );
    }
}
