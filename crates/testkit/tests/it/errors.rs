//! Every error a client sees has the shape of its surface and carries the request id.

use axum::body::Body;
use axum::http::Request;
use ehrshare_app::Settings;
use ehrshare_testkit::TestApp;
use ehrshare_web::WebSettings;

#[tokio::test]
async fn unknown_api_route_is_problem_json_404() {
    let t = TestApp::spawn().await;
    let r = t.get("/api/v1/no-such-thing").await;
    assert_eq!(r.status, 404);
    assert_eq!(r.header("content-type"), "application/problem+json");
    let body = r.json();
    assert_eq!(body["type"], "urn:ehrshare:problem:not-found");
    assert_eq!(body["code"], "not-found");
    assert_eq!(body["status"], 404);
    assert_eq!(body["title"], "Not found");
    let request_id = r.header("x-request-id");
    assert_eq!(request_id.len(), 36, "a UUID: {request_id}");
    assert_eq!(body["request_id"], request_id);
}

#[tokio::test]
async fn wrong_method_is_problem_json_405_with_allow() {
    let t = TestApp::spawn().await;
    let r = t
        .send(
            Request::delete("/api/v1/openapi.json")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, 405);
    assert_eq!(r.header("content-type"), "application/problem+json");
    assert_eq!(r.json()["code"], "method-not-allowed");
    assert!(
        r.header("allow").contains("GET"),
        "allow: {}",
        r.header("allow")
    );
}

#[tokio::test]
async fn oversized_body_is_413_and_reaches_no_handler() {
    let web = WebSettings {
        body_limit: 1024,
        ..WebSettings::default()
    };
    let t = TestApp::with_settings(Settings::default(), web).await;
    let body = vec![b'x'; 4096];
    let r = t
        .send(
            Request::post("/api/v1/anything")
                .header("content-type", "application/json")
                .header("content-length", body.len())
                .body(Body::from(body))
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, 413, "{}", r.text());
    assert_eq!(r.header("content-type"), "application/problem+json");
    let json = r.json();
    assert_eq!(json["code"], "payload-too-large");
    assert_eq!(json["request_id"], r.header("x-request-id"));
}

#[tokio::test]
async fn fhir_errors_are_operation_outcomes() {
    let t = TestApp::spawn().await;
    let r = t.get("/fhir/Patient/does-not-exist").await;
    assert_eq!(r.status, 404);
    assert_eq!(r.header("content-type"), "application/fhir+json");
    let body = r.json();
    assert_eq!(body["resourceType"], "OperationOutcome");
    let issue = &body["issue"][0];
    assert_eq!(issue["severity"], "error");
    assert_eq!(issue["code"], "not-found");
    assert_eq!(issue["details"]["coding"][0]["code"], "not-found");
    let diagnostics = issue["diagnostics"].as_str().unwrap();
    assert!(
        diagnostics.contains(r.header("x-request-id")),
        "{diagnostics}"
    );
}

#[tokio::test]
async fn page_errors_are_bilingual_html_with_the_request_id() {
    let t = TestApp::spawn().await;
    let r = t.get("/no/such/page").await;
    assert_eq!(r.status, 404);
    assert!(r.header("content-type").starts_with("text/html"));
    let html = r.text();
    assert!(html.contains("<html lang=\"en\">"));
    assert!(html.contains("The page you asked for does not exist."));
    assert!(html.contains(r.header("x-request-id")));

    let r = t
        .send(
            Request::get("/no/such/page")
                .header("accept-language", "zh-HK,zh;q=0.9")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, 404);
    let html = r.text();
    assert!(html.contains("<html lang=\"zh-HK\">"));
    assert!(html.contains("你要求的頁面並不存在。"));
    assert!(html.contains(r.header("x-request-id")));
}
