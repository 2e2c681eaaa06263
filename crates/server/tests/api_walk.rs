//! No 5xx for a valid request (issue 22): one walk over every operation of the OpenAPI
//! document, as each demo role and anonymously, with ids of the demo population (the caller's
//! own provider's objects and another provider's) and a random one, and bodies built from each
//! operation's schema. A 4xx is an answer; a 5xx is a bug, and the walk names each one.
//! (It lives beside the binary's crate because the demo population is loaded from here.)
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;

use axum::body::Body;
use axum::http::Request;
use ehrshare_testkit::{Agent, SignedBy, TestApp, session_cookie};
use serde_json::{Value, json};

/// The demo accounts the walk acts as: every kind of role, at two providers, and the office.
const ACTORS: [&str; 11] = [
    "office.admin",
    "office.registration",
    "office.privacy",
    "sth.doctor",
    "sth.nurse",
    "sth.registration-staff",
    "sth.user-administrator",
    "sth.pharmacist",
    "hvc.doctor",
    "hvc.user-administrator",
    "tsc.chinese-medicine-practitioner",
];

async fn log_in(t: &TestApp, user: &str) -> Agent {
    t.clock.advance(time::Duration::seconds(30));
    let code = t.app.demo_totp_code(user).await.unwrap();
    let r = t
        .log_in(user, ehrshare::demo::DEMO_PASSWORD, Some(&code))
        .await;
    assert_eq!(r.status, 201, "{user}: {}", r.text());
    Agent {
        cookie: session_cookie(&r),
        csrf: r.json()["csrf_token"].as_str().unwrap().to_owned(),
        user_name: user.to_owned(),
        account: None,
    }
}

/// Ids by the collection a path names them under, from the demo population.
async fn ids(t: &TestApp) -> BTreeMap<&'static str, Vec<String>> {
    let db = t.db.connect().await;
    let mut out = BTreeMap::new();
    for (segment, sql) in [
        (
            "recipients",
            "SELECT recipient_id FROM recipient ORDER BY created_at LIMIT 3",
        ),
        ("providers", "SELECT hcp_id FROM hcp ORDER BY created_at"),
        (
            "accounts",
            "SELECT account_id FROM account ORDER BY user_name LIMIT 40",
        ),
        (
            "records",
            "SELECT record_id FROM record ORDER BY created_at LIMIT 3",
        ),
        ("alerts", "SELECT alert_id FROM alert LIMIT 3"),
        ("clients", "SELECT client_id FROM oauth_client LIMIT 3"),
        ("locations", "SELECT location_id FROM hcp_location LIMIT 3"),
    ] {
        let found: Vec<String> = ehrshare_store::on_pool!(&db, p => {
            match sqlx::query_scalar::<_, uuid::Uuid>(sql).fetch_all(p).await {
                Ok(v) => v.into_iter().map(|u| u.to_string()).collect(),
                Err(_) => sqlx::query_scalar::<_, String>(sql)
                    .fetch_all(p)
                    .await
                    .unwrap_or_default(),
            }
        });
        out.insert(segment, found);
    }
    out
}

/// A value for `schema`: what a client that read the document would send.
fn example(doc: &Value, schema: &Value, depth: usize) -> Value {
    if depth > 6 {
        return Value::Null;
    }
    if let Some(r) = schema.get("$ref").and_then(Value::as_str) {
        let name = r.trim_start_matches("#/components/schemas/");
        return example(doc, &doc["components"]["schemas"][name], depth + 1);
    }
    if let Some(e) = schema.get("example") {
        return e.clone();
    }
    for key in ["oneOf", "anyOf", "allOf"] {
        if let Some(options) = schema.get(key).and_then(Value::as_array) {
            let chosen = options
                .iter()
                .find(|o| o.get("type").and_then(Value::as_str) != Some("null"));
            return chosen.map_or(Value::Null, |o| example(doc, o, depth + 1));
        }
    }
    if let Some(values) = schema.get("enum").and_then(Value::as_array) {
        return values.first().cloned().unwrap_or(Value::Null);
    }
    let kind = match schema.get("type") {
        Some(Value::Array(types)) => types
            .iter()
            .find(|t| t.as_str() != Some("null"))
            .and_then(Value::as_str)
            .unwrap_or("null"),
        Some(Value::String(t)) => t.as_str(),
        _ if schema.get("properties").is_some() => "object",
        _ => "null",
    };
    match kind {
        "object" => {
            let mut o = serde_json::Map::new();
            if let Some(props) = schema.get("properties").and_then(Value::as_object) {
                for (name, p) in props {
                    o.insert(name.clone(), example(doc, p, depth + 1));
                }
            }
            Value::Object(o)
        }
        "array" => json!([example(doc, &schema["items"], depth + 1)]),
        "integer" | "number" => json!(1),
        "boolean" => json!(false),
        "string" => match schema.get("format").and_then(Value::as_str) {
            Some("date") => json!("1980-03-02"),
            Some("date-time") => json!("2026-03-02T10:00:00Z"),
            Some("uuid") => json!(uuid::Uuid::now_v7().to_string()),
            _ => json!("x"),
        },
        _ => Value::Null,
    }
}

/// The URLs to try for `path`: each id parameter filled from the collection it follows, with
/// each known id and a random one (one parameter varied at a time).
fn urls(path: &str, pool: &BTreeMap<&'static str, Vec<String>>) -> Vec<String> {
    let parts: Vec<&str> = path.split('/').collect();
    let choices: Vec<Vec<String>> = parts
        .iter()
        .enumerate()
        .map(|(i, part)| {
            if !part.starts_with('{') {
                return vec![(*part).to_owned()];
            }
            if *part == "{seq}" {
                return vec!["1".to_owned(), u64::MAX.to_string()];
            }
            let before = if i > 0 { parts[i - 1] } else { "" };
            let mut known = pool.get(before).cloned().unwrap_or_default();
            known.push(uuid::Uuid::now_v7().to_string());
            known
        })
        .collect();
    let base: Vec<String> = choices.iter().map(|c| c[0].clone()).collect();
    let mut out = vec![base.join("/")];
    for (i, options) in choices.iter().enumerate() {
        for option in options.iter().skip(1) {
            let mut parts = base.clone();
            parts[i] = option.clone();
            out.push(parts.join("/"));
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn no_operation_answers_5xx_to_any_demo_role() {
    let t = TestApp::spawn().await;
    ehrshare::demo::load(&t.app).await.unwrap();
    let doc = t.get("/api/v1/openapi.json").await.json();
    let pool = ids(&t).await;
    let mut agents: Vec<Option<Agent>> = vec![None];
    for user in ACTORS {
        agents.push(Some(log_in(&t, user).await));
    }
    let mut failures = Vec::new();
    let mut requests = 0;
    let mut statuses: BTreeMap<u16, usize> = BTreeMap::new();
    // Reads first, then writes; deletions last (they may end what later requests use).
    let mut operations: Vec<(String, String, Value)> = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            operations.push((method.clone(), path.clone(), op.clone()));
        }
    }
    let rank = |m: &str| match m {
        "get" => 0,
        "delete" => 2,
        _ => 1,
    };
    operations.sort_by_key(|(m, p, _)| (rank(m), p.clone()));
    for (method, path, op) in &operations {
        // Logging out ends the walk's sessions; tested on its own.
        if path == "/api/v1/session" && method == "delete" {
            continue;
        }
        let body = op
            .pointer("/requestBody/content/application~1json/schema")
            .map(|s| example(&doc, s, 0));
        for url in urls(path, &pool) {
            for agent in &agents {
                let mut request = Request::builder()
                    .method(method.to_uppercase().as_str())
                    .uri(&url);
                if let Some(a) = agent {
                    request = request.signed_by(a);
                }
                let body = match &body {
                    Some(b) => {
                        request = request.header("content-type", "application/json");
                        Body::from(b.to_string())
                    }
                    None => Body::empty(),
                };
                let r = t.send(request.body(body).unwrap()).await;
                requests += 1;
                *statuses.entry(r.status.as_u16()).or_default() += 1;
                if r.status.is_server_error() {
                    failures.push(format!(
                        "{} {method} {url}: {} {}",
                        agent.as_ref().map_or("anonymous", |a| a.user_name.as_str()),
                        r.status,
                        r.text()
                    ));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} 5xx answers:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(requests > 1_000, "{requests} requests");
    // The walk reached the use cases, not only the doors.
    let succeeded: usize = statuses.range(200..300).map(|(_, n)| n).sum();
    assert!(succeeded > 150, "{statuses:?}");
    assert!(
        pool.values().filter(|v| !v.is_empty()).count() >= 4,
        "{pool:?}"
    );
    eprintln!("{requests} requests, no 5xx: {statuses:?}");
}
