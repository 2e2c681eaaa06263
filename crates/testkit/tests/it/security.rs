//! Security headers and request ids on every kind of response.

use axum::body::Body;
use axum::http::Request;
use ehrshare_testkit::{TestApp, TestResponse};

fn assert_security_headers(r: &TestResponse) {
    let csp = r.header("content-security-policy");
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert!(csp.contains("script-src 'self'"), "{csp}");
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    assert_eq!(r.header("x-content-type-options"), "nosniff");
    assert_eq!(r.header("x-frame-options"), "DENY");
    assert_eq!(r.header("referrer-policy"), "no-referrer");
    assert_eq!(
        r.header("strict-transport-security"),
        "",
        "not over plain http"
    );
}

#[tokio::test]
async fn every_response_carries_security_headers() {
    let t = TestApp::spawn().await;
    for path in [
        "/",
        "/healthz",
        "/api/v1/openapi.json",
        "/api/v1/nope",
        "/fhir/x",
        "/nope",
    ] {
        let r = t.get(path).await;
        assert_security_headers(&r);
        assert_eq!(r.header("x-request-id").len(), 36, "{path}");
    }
}

#[tokio::test]
async fn a_client_supplied_request_id_is_replaced() {
    let t = TestApp::spawn().await;
    let r = t
        .send(
            Request::get("/healthz")
                .header("x-request-id", "forged-id")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    let id = r.header("x-request-id");
    assert_ne!(id, "forged-id");
    assert!(uuid::Uuid::parse_str(id).is_ok(), "{id}");
    let other = t.get("/healthz").await;
    assert_ne!(other.header("x-request-id"), id, "ids are unique");
}
