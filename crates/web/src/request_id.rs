//! Request ids: every request gets a fresh UUIDv7, echoed in the `x-request-id` response header,
//! recorded in logs (the trace span) and in the audit entry of the request's decision.
//!
//! An `x-request-id` sent by the client is replaced, not trusted: the id names this server's
//! handling of the request and must be unique and unforgeable in the audit log.

use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use uuid::Uuid;

/// The header carrying the request id.
pub static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The id of the request being handled (in the request's extensions).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestId(pub Uuid);

/// Middleware: assigns the request id and echoes it on the response.
pub async fn assign(mut request: Request, next: Next) -> Response {
    let id = RequestId(Uuid::now_v7());
    let value = HeaderValue::from_str(&id.0.to_string()).ok();
    if let Some(v) = &value {
        request
            .headers_mut()
            .insert(X_REQUEST_ID.clone(), v.clone());
    }
    request.extensions_mut().insert(id);
    let mut response = next.run(request).await;
    if let Some(v) = value {
        response.headers_mut().insert(X_REQUEST_ID.clone(), v);
    }
    response
}
