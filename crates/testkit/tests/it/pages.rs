//! The public pages in both languages.

use axum::body::Body;
use axum::http::Request;
use ehrshare_testkit::TestApp;
use ehrshare_web::i18n::{Locale, PortalLocale, SOURCES, message_ids};

fn assert_no_message_ids(html: &str) {
    for id in message_ids(SOURCES[0].1) {
        assert!(!html.contains(&format!(">{id}<")), "untranslated {id}");
    }
}

#[tokio::test]
async fn home_page_in_english_by_default() {
    let t = TestApp::spawn().await;
    let r = t.get("/").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), "text/html; charset=utf-8");
    let html = r.text();
    assert!(html.contains("<html lang=\"en\">"));
    assert!(html.contains(&Locale::En.t("home-title")));
    assert!(html.contains("href=\"?lang=zh-HK\""));
    assert_no_message_ids(&html);
}

#[tokio::test]
async fn home_page_in_chinese_by_choice_and_remembered() {
    let t = TestApp::spawn().await;
    let r = t.get("/?lang=zh-HK").await;
    assert_eq!(r.status, 200);
    let html = r.text();
    assert!(html.contains("<html lang=\"zh-HK\">"));
    assert!(html.contains("歡迎使用 ehrshare"));
    assert_no_message_ids(&html);
    let cookie = r.header("set-cookie");
    assert!(cookie.starts_with("lang=zh-HK;"), "{cookie}");
    assert!(cookie.contains("SameSite=Lax"));

    // The cookie, sent back, keeps Chinese even though the browser prefers English.
    let r = t
        .send(
            Request::get("/")
                .header("cookie", "lang=zh-HK")
                .header("accept-language", "en")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert!(r.text().contains("<html lang=\"zh-HK\">"));
    assert_eq!(r.header("set-cookie"), "", "nothing new to remember");
}

#[tokio::test]
async fn browser_language_chooses_when_nothing_else_does() {
    let t = TestApp::spawn().await;
    let r = t
        .send(
            Request::get("/")
                .header("accept-language", "zh-HK,zh;q=0.9,en;q=0.8")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert!(r.text().contains(&Locale::ZhHk.t("home-intro")));
}

#[tokio::test]
async fn stylesheet_is_served_and_cacheable() {
    let t = TestApp::spawn().await;
    let r = t.get("/static/site.css").await;
    assert_eq!(r.status, 200);
    assert!(r.header("content-type").starts_with("text/css"));
    assert_eq!(r.header("cache-control"), "public, max-age=3600");
    assert!(r.text().contains("--brand"));
}

#[tokio::test]
async fn openapi_document_describes_the_api() {
    let t = TestApp::spawn().await;
    let r = t.get("/api/v1/openapi.json").await;
    assert_eq!(r.status, 200);
    assert!(r.header("content-type").starts_with("application/json"));
    let doc = r.json();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    assert_eq!(doc["info"]["version"], env!("CARGO_PKG_VERSION"));
    assert!(doc["paths"]["/healthz"]["get"].is_object());
    assert!(doc["paths"]["/api/v1/openapi.json"]["get"].is_object());
    assert!(doc["components"]["schemas"]["ProblemBody"].is_object());
    for path in [
        "/api/v1/recipients",
        "/api/v1/recipients/{id}",
        "/api/v1/recipients/{id}/events",
        "/api/v1/recipients/{id}/access-key",
        "/api/v1/providers",
        "/api/v1/providers/{id}/events",
        "/api/v1/providers/{id}/documents",
        "/api/v1/directory",
    ] {
        assert!(doc["paths"][path].is_object(), "{path} is documented");
    }
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    assert_eq!(
        doc["components"]["securitySchemes"]["session"]["in"],
        "cookie"
    );
}
