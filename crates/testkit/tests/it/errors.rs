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
    // No route: a 404 before any login is asked for.
    let r = t.get("/fhir/Patient/does-not-exist/_history/1/more").await;
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

const PROBE: &str = "x_unknown_probe";

/// The object schema a request body's schema names (through `$ref`, `oneOf`/`anyOf`, arrays'
/// `items`), if it is one.
fn object_schema<'a>(
    doc: &'a serde_json::Value,
    schema: &'a serde_json::Value,
) -> Option<&'a serde_json::Value> {
    if let Some(r) = schema.get("$ref").and_then(|r| r.as_str()) {
        let name = r.trim_start_matches("#/components/schemas/");
        return object_schema(doc, &doc["components"]["schemas"][name]);
    }
    for key in ["oneOf", "anyOf", "allOf"] {
        if let Some(options) = schema.get(key).and_then(|o| o.as_array()) {
            return options
                .iter()
                .filter(|o| o.get("type").and_then(|t| t.as_str()) != Some("null"))
                .find_map(|o| object_schema(doc, o));
        }
    }
    schema.get("properties").is_some().then_some(schema)
}

/// Bodies that carry an unknown member at the top and inside each nested object (or array of
/// objects), with the pointer the answer must name.
fn probes(
    doc: &serde_json::Value,
    schema: &serde_json::Value,
    depth: usize,
) -> Vec<(serde_json::Value, String)> {
    let mut out = vec![(serde_json::json!({ PROBE: true }), format!("/{PROBE}"))];
    if depth >= 3 {
        return out;
    }
    let Some(object) = object_schema(doc, schema) else {
        return out;
    };
    for (name, property) in object["properties"].as_object().unwrap() {
        let items = property.get("items").or_else(|| {
            property
                .get("oneOf")
                .and_then(|o| o.as_array().unwrap().iter().find_map(|x| x.get("items")))
        });
        if let Some(items) = items {
            if object_schema(doc, items).is_some() {
                for (inner, pointer) in probes(doc, items, depth + 1) {
                    out.push((
                        serde_json::json!({ name: [inner] }),
                        format!("/{name}/0{pointer}"),
                    ));
                }
            }
        } else if object_schema(doc, property).is_some() {
            for (inner, pointer) in probes(doc, property, depth + 1) {
                out.push((
                    serde_json::json!({ name: inner }),
                    format!("/{name}{pointer}"),
                ));
            }
        }
    }
    out
}

/// Every operation of the OpenAPI document that takes a JSON body refuses a member it does not
/// know, at any depth, with 400 `unknown-field` naming it by its JSON pointer (issue 22); the
/// FHIR deposit alone takes a resource, which the record rules judge.
#[tokio::test]
async fn every_json_body_refuses_an_unknown_member_by_name() {
    let t = TestApp::spawn().await;
    let office = t.office().await;
    let doc = t.get("/api/v1/openapi.json").await.json();
    let mut operations = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let Some(schema) = op.pointer("/requestBody/content/application~1json/schema") else {
                continue;
            };
            let url: String = path
                .split('/')
                .map(|part| {
                    if part == "{seq}" {
                        "1".to_owned()
                    } else if part.starts_with('{') {
                        uuid::Uuid::now_v7().to_string()
                    } else {
                        part.to_owned()
                    }
                })
                .collect::<Vec<_>>()
                .join("/");
            for (body, pointer) in probes(&doc, schema, 0) {
                let r = t
                    .send_json(
                        Some(&office),
                        Request::builder()
                            .method(method.to_uppercase().as_str())
                            .uri(&url),
                        &body,
                    )
                    .await;
                assert_eq!(r.status, 400, "{method} {path} {body}: {}", r.text());
                let j = r.json();
                assert_eq!(j["code"], "unknown-field", "{method} {path} {body}: {j}");
                assert!(
                    j["errors"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .any(|e| e["field"] == pointer.as_str() && e["code"] == "unknown-field"),
                    "{method} {path} {body}: {j}"
                );
            }
            operations += 1;
        }
    }
    assert!(operations >= 30, "the walk found {operations} JSON bodies");
}

/// Free text has documented limits, checked first: over them a 422 `too-long` naming the
/// field, never the 500 an over-long audit reason caused (issue 22); a page number at the
/// edge of its type is no 500 either.
#[tokio::test]
async fn free_text_over_its_limit_is_422_naming_the_field() {
    use ehrshare_app::limits;
    let t = TestApp::spawn().await;
    let office = t.office().await;
    let (hcp, ua) = t.active_provider("Limit Clinic", "limit").await;
    let doctor = t
        .agent(
            ehrshare_app::duty::Scope::Hcp(hcp.parse().unwrap()),
            "dr.limit",
            "doctor",
            false,
        )
        .await;
    let id = uuid::Uuid::now_v7();
    let long = |n: usize| "x".repeat(n + 1);
    let reason = long(limits::REASON);
    let cases: Vec<(&ehrshare_testkit::Agent, Request<Body>, &str)> = vec![
        (
            &doctor,
            Request::get(format!("/api/v1/recipients/{id}/summary?reason={reason}"))
                .body(Body::empty())
                .unwrap(),
            "reason",
        ),
        (
            &doctor,
            Request::get(format!("/api/v1/records/{id}?reason={reason}"))
                .body(Body::empty())
                .unwrap(),
            "reason",
        ),
    ];
    for (agent, request, field) in cases {
        let (mut parts, body) = request.into_parts();
        parts
            .headers
            .insert("cookie", agent.cookie.parse().unwrap());
        let r = t.send(Request::from_parts(parts, body)).await;
        assert_eq!(r.status, 422, "{}", r.text());
        assert_eq!(r.json()["code"], "too-long");
        assert_eq!(r.json()["errors"][0]["field"], field);
    }
    let posts = [
        (
            &office,
            format!("/api/v1/recipients/{id}/events"),
            serde_json::json!({"event": "suspend", "reason": long(2_000)}),
            "/reason",
        ),
        (
            &office,
            format!("/api/v1/providers/{id}/events"),
            serde_json::json!({"event": "suspend", "reason": reason}),
            "/reason",
        ),
        (
            &ua,
            format!("/api/v1/providers/{hcp}/accounts/{id}/actions"),
            serde_json::json!({"action": "suspend", "reason": reason}),
            "/reason",
        ),
        (
            &office,
            "/api/v1/recipients".to_owned(),
            serde_json::json!({"channel": "in-person", "name_en": "CHAN Tai Man",
                "date_of_birth": "1980-03-02", "sex": "male",
                "document": {"type": "hkid", "number": "A123456(3)"},
                "phone": "9123 4567", "language": "en", "notify_channel": "sms",
                "address": long(limits::ADDRESS)}),
            "/address",
        ),
    ];
    for (agent, path, body, field) in posts {
        let r = t.send_json(Some(agent), Request::post(&path), &body).await;
        assert_eq!(r.status, 422, "{path}: {}", r.text());
        assert!(
            r.json()["errors"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["field"] == field && e["code"] == "too-long"),
            "{path}: {}",
            r.text()
        );
    }
    // A page number at the edge of its type.
    let r = t
        .get(&format!("/api/v1/directory?page={}&per_page=2", u64::MAX))
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    // The limits are documented where clients read them, the same numbers.
    let doc = t.get("/api/v1/openapi.json").await.json();
    for (schema, field, max) in [
        ("RegistrationBody", "address", limits::ADDRESS),
        ("SdmBody", "relationship_proof", limits::RELATIONSHIP_PROOF),
        ("RecipientEventBody", "reason", limits::REASON),
        ("EventBody", "reason", limits::REASON),
        ("ActionBody", "reason", limits::REASON),
        ("RegistrationBody", "name_en", 100),
    ] {
        let documented = &doc["components"]["schemas"][schema]["properties"][field]["maxLength"];
        assert_eq!(documented, &serde_json::json!(max), "{schema}.{field}");
    }
}
