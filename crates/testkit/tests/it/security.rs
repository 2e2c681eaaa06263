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
    assert_eq!(r.header("referrer-policy"), "same-origin");
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

/// Retry-After is rounded up: at 40 a minute a token comes every 1.5 s, so the answer says 2
/// (it said 1, and a client waiting exactly that long was refused again).
#[tokio::test]
async fn retry_after_is_never_too_short() {
    use std::net::SocketAddr;

    use axum::extract::ConnectInfo;
    use ehrshare_app::Settings;
    use ehrshare_web::WebSettings;
    use ehrshare_web::ratelimit::RateLimit;

    let web = WebSettings {
        rate_limit: RateLimit {
            per_minute: 40,
            burst: 1,
        },
        ..WebSettings::default()
    };
    let t = TestApp::with_settings(Settings::default(), web).await;
    let from = || {
        let addr: SocketAddr = "198.51.100.9:40000".parse().unwrap();
        Request::get("/api/v1/directory")
            .extension(ConnectInfo(addr))
            .body(Body::empty())
            .unwrap()
    };
    assert_eq!(t.send(from()).await.status, 200);
    let r = t.send(from()).await;
    assert_eq!(r.status, 429);
    assert_eq!(r.header("retry-after"), "2");
}

#[tokio::test]
async fn one_address_is_rate_limited_and_others_are_not() {
    use std::net::SocketAddr;

    use axum::extract::ConnectInfo;
    use ehrshare_app::Settings;
    use ehrshare_web::WebSettings;
    use ehrshare_web::ratelimit::RateLimit;

    let web = WebSettings {
        rate_limit: RateLimit {
            per_minute: 60,
            burst: 3,
        },
        ..WebSettings::default()
    };
    let t = TestApp::with_settings(Settings::default(), web).await;
    let from = |ip: &str, path: &str| {
        let addr: SocketAddr = format!("{ip}:40000").parse().unwrap();
        Request::get(path)
            .extension(ConnectInfo(addr))
            .body(Body::empty())
            .unwrap()
    };
    for _ in 0..3 {
        assert_eq!(
            t.send(from("198.51.100.7", "/api/v1/directory"))
                .await
                .status,
            200
        );
    }
    let r = t.send(from("198.51.100.7", "/api/v1/directory")).await;
    assert_eq!(r.status, 429);
    assert_eq!(r.header("content-type"), "application/problem+json");
    assert_eq!(r.json()["code"], "rate-limited");
    assert_eq!(r.header("retry-after"), "1");
    // Another address, and the health check, are unaffected.
    assert_eq!(
        t.send(from("198.51.100.8", "/api/v1/directory"))
            .await
            .status,
        200
    );
    assert_eq!(t.send(from("198.51.100.7", "/healthz")).await.status, 200);
    // Pages say it in the visitor's language.
    let r = t
        .send({
            let mut req = from("198.51.100.7", "/");
            req.headers_mut()
                .insert("accept-language", "zh-HK".parse().unwrap());
            req
        })
        .await;
    assert_eq!(r.status, 429);
    assert!(r.text().contains("請求過多"), "{}", r.text());
}
