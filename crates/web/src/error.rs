//! The one mapping from errors to responses.
//!
//! Handlers return [`HttpError`] (an `AppError` on its way out). Its `IntoResponse` logs any
//! internal cause (inside the request's span, so with the request id) and attaches a
//! [`Problem`]: status, stable code, safe English title, field errors. Nothing else is exposed.
//!
//! The [`render`] middleware then turns every error response into the body its surface speaks:
//! problem+json under `/api` (and `/healthz`), a FHIR OperationOutcome under `/fhir`, a bilingual
//! HTML page elsewhere. It also catches error responses that did not come from a handler (413
//! from the body limit, 405 from the router, 503 from the timeout, a caught panic) so that every
//! error a client sees has the same shape and carries the request id.

use askama::Template;
use axum::Json;
use axum::extract::Request;
use axum::http::header::{CONTENT_TYPE, RETRY_AFTER};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};
use ehrshare_app::AppError;
use ehrshare_app::error::FieldError;
use ehrshare_fhir::operation_outcome::{IssueType, OperationOutcome};
use serde::Serialize;
use utoipa::ToSchema;

use crate::i18n::Locale;
use crate::request_id::RequestId;

/// The media type of problem details (RFC 9457).
pub const PROBLEM_JSON: &str = "application/problem+json";

/// Where a problem `type` URI points: `urn:ehrshare:problem:<code>`.
pub const PROBLEM_TYPE_PREFIX: &str = "urn:ehrshare:problem:";

/// A safe description of an error: what the client may see.
#[derive(Debug, Clone)]
pub struct Problem {
    pub status: StatusCode,
    pub code: &'static str,
    pub title: String,
    pub fields: Vec<FieldError>,
    pub retry_after_secs: Option<u32>,
}

impl Problem {
    fn new(status: StatusCode, code: &'static str, title: impl Into<String>) -> Problem {
        Problem {
            status,
            code,
            title: title.into(),
            fields: Vec::new(),
            retry_after_secs: None,
        }
    }

    /// 406: the caller accepts no representation this route serves.
    pub fn not_acceptable(title: &str) -> Problem {
        Problem::new(StatusCode::NOT_ACCEPTABLE, "not-acceptable", title)
    }

    /// The problem for an error response that carries no [`Problem`] of its own.
    pub fn from_status(status: StatusCode) -> Problem {
        match status {
            StatusCode::NOT_FOUND => Problem::new(status, "not-found", "Not found"),
            StatusCode::METHOD_NOT_ALLOWED => {
                Problem::new(status, "method-not-allowed", "Method not allowed")
            }
            StatusCode::PAYLOAD_TOO_LARGE => {
                Problem::new(status, "payload-too-large", "The request body is too large")
            }
            StatusCode::UNSUPPORTED_MEDIA_TYPE => Problem::new(
                status,
                "unsupported-media-type",
                "The request body's media type is not accepted here",
            ),
            StatusCode::TOO_MANY_REQUESTS => {
                let mut p = Problem::new(status, "rate-limited", "Too many requests; slow down");
                p.retry_after_secs = Some(1);
                p
            }
            StatusCode::REQUEST_TIMEOUT | StatusCode::GATEWAY_TIMEOUT => {
                let mut p = Problem::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "timeout",
                    "The request took too long",
                );
                p.retry_after_secs = Some(5);
                p
            }
            StatusCode::SERVICE_UNAVAILABLE => {
                let mut p = Problem::new(status, "unavailable", "Temporarily unavailable");
                p.retry_after_secs = Some(5);
                p
            }
            s if s.is_server_error() => Problem::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "Internal error",
            ),
            s => Problem::new(
                s,
                "malformed-request",
                "The request could not be understood",
            ),
        }
    }

    /// The problem for an application error. Internal causes are logged, never shown.
    pub fn from_app_error(err: &AppError) -> Problem {
        match err {
            AppError::Malformed {
                code,
                message,
                fields,
            } => {
                let mut p = Problem::new(StatusCode::BAD_REQUEST, code, message.clone());
                p.fields = fields.clone();
                p
            }
            AppError::Invalid {
                code,
                message,
                fields,
            } => {
                let mut p = Problem::new(StatusCode::UNPROCESSABLE_ENTITY, code, message.clone());
                p.fields = fields.clone();
                p
            }
            AppError::NotFound => Problem::new(StatusCode::NOT_FOUND, "not-found", "Not found"),
            AppError::Gone => Problem::new(
                StatusCode::GONE,
                "gone",
                "The record was entered in error and withdrawn",
            ),
            AppError::PreconditionFailed { code, message } => {
                Problem::new(StatusCode::PRECONDITION_FAILED, code, message.clone())
            }
            AppError::UnsupportedMedia { message } => Problem::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported-media-type",
                message.clone(),
            ),
            AppError::Forbidden { code, message } => {
                Problem::new(StatusCode::FORBIDDEN, code, message.clone())
            }
            AppError::Unauthenticated => Problem::new(
                StatusCode::UNAUTHORIZED,
                "unauthenticated",
                "Authentication required",
            ),
            AppError::Conflict { code, message } => {
                Problem::new(StatusCode::CONFLICT, code, message.clone())
            }
            AppError::AuthFailed { code, message } => {
                Problem::new(StatusCode::UNAUTHORIZED, code, message.clone())
            }
            AppError::Throttled {
                code,
                message,
                retry_after_secs,
            } => {
                let mut p = Problem::new(StatusCode::TOO_MANY_REQUESTS, code, message.clone());
                p.retry_after_secs = Some((*retry_after_secs).max(1));
                p
            }
            AppError::Unavailable(_) => {
                let mut p = Problem::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    err.code(),
                    "The store is temporarily unavailable",
                );
                p.retry_after_secs = Some(5);
                p
            }
            AppError::Internal(_) => Problem::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "Internal error",
            ),
        }
    }
}

/// An application error leaving through HTTP.
#[derive(Debug)]
pub struct HttpError(pub AppError);

impl From<AppError> for HttpError {
    fn from(err: AppError) -> Self {
        HttpError(err)
    }
}

impl IntoResponse for HttpError {
    fn into_response(self) -> Response {
        match &self.0 {
            AppError::Internal(cause) => tracing::error!(error = %cause, "internal error"),
            AppError::Unavailable(cause) => tracing::warn!(error = %cause, "store unavailable"),
            _ => {}
        }
        problem_response(Problem::from_app_error(&self.0))
    }
}

/// A bare response carrying `problem`; [`render`] gives it its body.
pub fn problem_response(problem: Problem) -> Response {
    let mut response = problem.status.into_response();
    response.extensions_mut().insert(problem);
    response
}

/// Marks a response whose body is already final (such as `/healthz`'s 503), so that [`render`]
/// leaves it alone.
#[derive(Debug, Clone, Copy)]
pub struct Rendered;

/// The part of the site a request is for, which decides the error format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Surface {
    Api,
    Fhir,
    Page,
}

impl Surface {
    /// The surface a path belongs to.
    pub fn of(path: &str) -> Surface {
        let under = |prefix: &str| {
            path == prefix
                || path
                    .strip_prefix(prefix)
                    .is_some_and(|rest| rest.starts_with('/'))
        };
        if under("/api") || under("/healthz") || under("/readyz") {
            Surface::Api
        } else if under("/fhir") {
            Surface::Fhir
        } else {
            Surface::Page
        }
    }
}

/// The problem+json body (RFC 9457) with ehrshare's extension members.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProblemBody {
    /// `urn:ehrshare:problem:<code>`.
    #[serde(rename = "type")]
    pub type_uri: String,
    pub title: String,
    pub status: u16,
    /// The stable error code (also the last part of `type`).
    pub code: String,
    /// The request id, also sent in the `x-request-id` header; quote it in support requests.
    pub request_id: String,
    /// Field-level errors, if any.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldErrorBody>,
}

/// One invalid field.
#[derive(Debug, Serialize, ToSchema)]
pub struct FieldErrorBody {
    pub field: String,
    pub code: String,
    pub message: String,
}

/// Middleware: gives every error response the body of its surface.
pub async fn render(request: Request, next: Next) -> Response {
    let surface = Surface::of(request.uri().path());
    let locale = request
        .extensions()
        .get::<Locale>()
        .copied()
        .unwrap_or_default();
    let request_id = request
        .extensions()
        .get::<RequestId>()
        .map(|r| r.0.to_string())
        .unwrap_or_default();
    let response = next.run(request).await;
    if response.extensions().get::<Rendered>().is_some() {
        return response;
    }
    let problem = match response.extensions().get::<Problem>() {
        Some(p) => p.clone(),
        None if response.status().is_client_error() || response.status().is_server_error() => {
            Problem::from_status(response.status())
        }
        None => return response,
    };
    let mut rendered = match surface {
        Surface::Api => api_body(&problem, request_id),
        Surface::Fhir => fhir_body(&problem, request_id),
        Surface::Page => page_body(&problem, locale, &request_id),
    };
    *rendered.status_mut() = problem.status;
    if problem.status == StatusCode::UNAUTHORIZED && surface != Surface::Page {
        rendered.headers_mut().insert(
            axum::http::header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer"),
        );
    }
    if let Some(secs) = problem.retry_after_secs {
        rendered
            .headers_mut()
            .insert(RETRY_AFTER, HeaderValue::from(secs));
    }
    // Keep the headers the inner layers set (Allow on a 405, for example).
    for (name, value) in response.headers() {
        if name != CONTENT_TYPE && name != axum::http::header::CONTENT_LENGTH {
            rendered.headers_mut().entry(name).or_insert(value.clone());
        }
    }
    rendered.extensions_mut().insert(Rendered);
    rendered
}

fn api_body(problem: &Problem, request_id: String) -> Response {
    let body = ProblemBody {
        type_uri: format!("{PROBLEM_TYPE_PREFIX}{}", problem.code),
        title: problem.title.clone(),
        status: problem.status.as_u16(),
        code: problem.code.to_owned(),
        request_id,
        errors: problem
            .fields
            .iter()
            .map(|f| FieldErrorBody {
                field: f.field.clone(),
                code: f.code.to_owned(),
                message: f.message.clone(),
            })
            .collect(),
    };
    let mut response = Json(body).into_response();
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
    response
}

fn fhir_body(problem: &Problem, request_id: String) -> Response {
    let outcome = fhir_outcome(problem, Some(format!("request id {request_id}")));
    let mut response = Json(outcome).into_response();
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static(ehrshare_fhir::FHIR_JSON),
    );
    response
}

/// A problem as FHIR says it: an OperationOutcome whose issue type follows the status, with
/// the problem's code and the paths at fault.
pub fn fhir_outcome(problem: &Problem, diagnostics: Option<String>) -> OperationOutcome {
    let issue_type = match problem.status {
        StatusCode::NOT_FOUND | StatusCode::GONE => IssueType::NotFound,
        StatusCode::FORBIDDEN => IssueType::Forbidden,
        StatusCode::UNAUTHORIZED => IssueType::Login,
        StatusCode::CONFLICT | StatusCode::PRECONDITION_FAILED => IssueType::Conflict,
        StatusCode::PAYLOAD_TOO_LARGE => IssueType::TooLong,
        StatusCode::TOO_MANY_REQUESTS => IssueType::Throttled,
        StatusCode::METHOD_NOT_ALLOWED
        | StatusCode::UNSUPPORTED_MEDIA_TYPE
        | StatusCode::NOT_ACCEPTABLE => IssueType::NotSupported,
        StatusCode::SERVICE_UNAVAILABLE => IssueType::Transient,
        StatusCode::UNPROCESSABLE_ENTITY => IssueType::Invalid,
        s if s.is_server_error() => IssueType::Exception,
        _ => IssueType::Structure,
    };
    OperationOutcome::error(issue_type, problem.code, &problem.title, diagnostics)
        .with_expressions(problem.fields.iter().map(|f| f.field.clone()).collect())
}

fn page_body(problem: &Problem, locale: Locale, request_id: &str) -> Response {
    let page = crate::pages::error::ErrorPage::new(
        locale,
        problem.status.as_u16(),
        problem.code,
        request_id,
    );
    match page.render() {
        Ok(html) => Html(html).into_response(),
        Err(err) => {
            tracing::error!(error = %err, "error page failed to render");
            "error".into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn surfaces_by_path_prefix() {
        let check = |p: &str, s: Surface| assert_eq!(Surface::of(p), s, "{p}");
        check("/api", Surface::Api);
        check("/api/v1/nothing", Surface::Api);
        check("/apiary", Surface::Page);
        check("/healthz", Surface::Api);
        check("/readyz", Surface::Api);
        check("/fhir/metadata", Surface::Fhir);
        check("/fhirx", Surface::Page);
        check("/", Surface::Page);
        check("/hcp/login", Surface::Page);
    }

    #[test]
    fn statuses_without_a_problem_get_stable_codes() {
        let check = |s: StatusCode, code: &str, out: StatusCode| {
            let p = Problem::from_status(s);
            assert_eq!((p.code, p.status), (code, out), "{s}");
        };
        check(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload-too-large",
            StatusCode::PAYLOAD_TOO_LARGE,
        );
        check(
            StatusCode::METHOD_NOT_ALLOWED,
            "method-not-allowed",
            StatusCode::METHOD_NOT_ALLOWED,
        );
        check(
            StatusCode::REQUEST_TIMEOUT,
            "timeout",
            StatusCode::SERVICE_UNAVAILABLE,
        );
        check(
            StatusCode::BAD_GATEWAY,
            "internal",
            StatusCode::INTERNAL_SERVER_ERROR,
        );
        check(
            StatusCode::BAD_REQUEST,
            "malformed-request",
            StatusCode::BAD_REQUEST,
        );
    }
}
