//! OAuth 2 for clinic systems: client credentials, authorization code with PKCE, revocation.

use axum::body::Body;
use axum::http::Request;
use ehrshare_app::duty::Scope;
use ehrshare_core::audit::Outcome;
use ehrshare_testkit::{Agent, SignedBy, TestApp, TestResponse};
use serde_json::{Value, json};

const REDIRECT: &str = "https://cms.example/callback";
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

async fn register(t: &TestApp, ua: &Agent, hcp: &str) -> (String, String) {
    let r = t
        .send_json(
            Some(ua),
            Request::post(format!("/api/v1/providers/{hcp}/clients")),
            &json!({"name": "Clinic CMS", "redirect_uris": [REDIRECT],
                    "scopes": "system/*.read user/*.read"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let c = r.json();
    (
        c["client_id"].as_str().unwrap().to_owned(),
        c["client_secret"].as_str().unwrap().to_owned(),
    )
}

async fn form(
    t: &TestApp,
    path: &str,
    fields: &[(&str, &str)],
    basic: Option<(&str, &str)>,
) -> TestResponse {
    let body = serde_urlencoded_pairs(fields);
    let mut req = Request::post(path).header("content-type", "application/x-www-form-urlencoded");
    if let Some((id, secret)) = basic {
        let b = data_encoding::BASE64.encode(format!("{id}:{secret}").as_bytes());
        req = req.header("authorization", format!("Basic {b}"));
    }
    t.send(req.body(Body::from(body)).unwrap()).await
}

fn serde_urlencoded_pairs(fields: &[(&str, &str)]) -> String {
    fields
        .iter()
        .map(|(k, v)| format!("{k}={}", ehrshare_app::auth::uri_escape(v)))
        .collect::<Vec<_>>()
        .join("&")
}

async fn bearer_get(t: &TestApp, token: &str, path: &str) -> TestResponse {
    t.send(
        Request::get(path)
            .header("authorization", format!("Bearer {token}"))
            .body(Body::empty())
            .unwrap(),
    )
    .await
}

#[tokio::test]
async fn client_credentials_give_a_token_bound_to_the_clients_provider() {
    let t = TestApp::spawn().await;
    let (a, ua_a) = t.active_provider("Clinic A", "a").await;
    let (b, _) = t.active_provider("Clinic B", "b").await;
    let (id, secret) = register(&t, &ua_a, &a).await;

    let r = form(
        &t,
        "/oauth/token",
        &[
            ("grant_type", "client_credentials"),
            ("scope", "system/*.read"),
        ],
        Some((&id, &secret)),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("cache-control"), "no-store");
    let token = r.json()["access_token"].as_str().unwrap().to_owned();
    assert_eq!(r.json()["token_type"], "Bearer");
    assert_eq!(r.json()["expires_in"], 600);
    let stored =
        t.db.connect()
            .await
            .oauth_token(&ehrshare_app::secret::token_hash(&token))
            .await
            .unwrap()
            .unwrap();
    assert_eq!(
        stored.hcp_id.to_string(),
        a,
        "bound to the client's provider"
    );
    assert!(!stored.token_hash.contains(&token), "stored hashed");

    let r = form(
        &t,
        "/oauth/introspect",
        &[("token", &token)],
        Some((&id, &secret)),
    )
    .await;
    assert_eq!(r.json()["active"], true);
    assert_eq!(r.json()["hcp"], a);
    assert_eq!(r.json()["scope"], "system/*.read");
    let r = bearer_get(&t, &token, "/api/v1/session").await;
    assert_eq!(r.json()["kind"], "client");

    // Beyond what the client was given, or beyond the system's own context: refused.
    for scope in [
        "system/*.write",
        "user/*.read",
        "patient/*.read",
        "system/*.read hcp/other",
    ] {
        let r = form(
            &t,
            "/oauth/token",
            &[("grant_type", "client_credentials"), ("scope", scope)],
            Some((&id, &secret)),
        )
        .await;
        assert_eq!(r.status, 400, "{scope}: {}", r.text());
        assert_eq!(r.json()["error"], "invalid_scope", "{scope}");
    }
    // A wrong secret, and form-posted credentials.
    let r = form(
        &t,
        "/oauth/token",
        &[("grant_type", "client_credentials")],
        Some((&id, "wrong")),
    )
    .await;
    assert_eq!(r.status, 401);
    assert_eq!(r.json()["error"], "invalid_client");
    let r = form(
        &t,
        "/oauth/token",
        &[
            ("grant_type", "client_credentials"),
            ("client_id", &id),
            ("client_secret", &secret),
        ],
        None,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = form(
        &t,
        "/oauth/token",
        &[("grant_type", "password")],
        Some((&id, &secret)),
    )
    .await;
    assert_eq!(r.json()["error"], "unsupported_grant_type");

    // The token reaches nothing of another provider's (as if it did not exist).
    let r = bearer_get(&t, &token, &format!("/api/v1/providers/{b}/accounts")).await;
    assert_eq!(r.status, 404);

    // Revoked: dead at once.
    let r = form(
        &t,
        "/oauth/revoke",
        &[("token", &token)],
        Some((&id, &secret)),
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(bearer_get(&t, &token, "/api/v1/session").await.status, 401);
    let r = form(
        &t,
        "/oauth/introspect",
        &[("token", &token)],
        Some((&id, &secret)),
    )
    .await;
    assert_eq!(r.json()["active"], false);

    // Tokens are short-lived.
    let r = form(
        &t,
        "/oauth/token",
        &[("grant_type", "client_credentials")],
        Some((&id, &secret)),
    )
    .await;
    let token = r.json()["access_token"].as_str().unwrap().to_owned();
    t.clock.advance(time::Duration::minutes(10));
    assert_eq!(bearer_get(&t, &token, "/api/v1/session").await.status, 401);
}

#[tokio::test]
async fn the_authorization_code_flow_needs_the_right_pkce_verifier() {
    let t = TestApp::spawn().await;
    let (a, ua_a) = t.active_provider("Clinic A", "a").await;
    let (b, _) = t.active_provider("Clinic B", "b").await;
    let (id, secret) = register(&t, &ua_a, &a).await;
    let doctor = t
        .agent(Scope::Hcp(a.parse().unwrap()), "dr.pkce", "doctor", false)
        .await;

    let query = format!(
        "response_type=code&client_id={id}&redirect_uri={}&scope=user%2F*.read&state=xyz&code_challenge={CHALLENGE}&code_challenge_method=S256",
        ehrshare_app::auth::uri_escape(REDIRECT)
    );
    let r = t
        .send_json(
            Some(&doctor),
            Request::get(format!("/oauth/authorize?{query}")),
            &Value::Null,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.text().contains(&id) && r.text().contains("user/*.read"));
    // Not logged in: nothing.
    let r = t.get(&format!("/oauth/authorize?{query}")).await;
    assert_eq!(r.status, 401);

    let approve = |agent: &Agent| {
        let body = format!("{query}&csrf_token={}", agent.csrf);
        Request::post("/oauth/authorize")
            .header("cookie", &agent.cookie)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(Body::from(body))
            .unwrap()
    };
    let r = t.send(approve(&doctor)).await;
    assert_eq!(r.status, 303, "{}", r.text());
    let location = r.header("location").to_owned();
    assert!(
        location.starts_with(&format!("{REDIRECT}?code=")),
        "{location}"
    );
    assert!(location.ends_with("&state=xyz"), "{location}");
    let code = location
        .split("code=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap()
        .to_owned();

    let exchange = |verifier: &'static str, code: String| {
        let (t, id, secret) = (&t, id.clone(), secret.clone());
        async move {
            form(
                t,
                "/oauth/token",
                &[
                    ("grant_type", "authorization_code"),
                    ("code", &code),
                    ("redirect_uri", REDIRECT),
                    ("code_verifier", verifier),
                ],
                Some((&id, &secret)),
            )
            .await
        }
    };
    let r = exchange("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXK", code.clone()).await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(r.json()["error"], "invalid_grant");
    let r = exchange(VERIFIER, code.clone()).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["scope"], "user/*.read");
    let token = r.json()["access_token"].as_str().unwrap().to_owned();
    let introspect = |token: String| {
        let (t, id, secret) = (&t, id.clone(), secret.clone());
        async move {
            form(
                t,
                "/oauth/introspect",
                &[("token", &token)],
                Some((&id, &secret)),
            )
            .await
            .json()
        }
    };
    assert_eq!(introspect(token.clone()).await["username"], "dr.pkce");
    assert_eq!(bearer_get(&t, &token, "/api/v1/session").await.status, 200);
    // A code presented again is refused, and the token issued from it dies (RFC 6749
    // section 10.5), audited.
    let r = exchange(VERIFIER, code.clone()).await;
    assert_eq!(r.json()["error"], "invalid_grant", "a code is used once");
    assert_eq!(bearer_get(&t, &token, "/api/v1/session").await.status, 401);
    assert_eq!(introspect(token.clone()).await["active"], false);
    let log =
        t.db.connect()
            .await
            .audit_entries(0, 100_000)
            .await
            .unwrap();
    assert!(
        log.iter()
            .any(|e| e.entry.action == "oauth.revoke" && e.entry.outcome == Outcome::Allowed),
        "the revocation is audited"
    );

    // A new code gives a new token, which the old code's replay leaves alone.
    let r = t.send(approve(&doctor)).await;
    assert_eq!(r.status, 303, "{}", r.text());
    let code2 = r
        .header("location")
        .split("code=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap()
        .to_owned();
    let r = exchange(VERIFIER, code2).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let token = r.json()["access_token"].as_str().unwrap().to_owned();
    let r = exchange(VERIFIER, code.clone()).await;
    assert_eq!(r.json()["error"], "invalid_grant");
    assert_eq!(bearer_get(&t, &token, "/api/v1/session").await.status, 200);
    // The professional's suspension kills the token at once.
    let doctor_id = doctor.account.unwrap();
    let r = t
        .send_json(
            Some(&ua_a),
            Request::post(format!(
                "/api/v1/providers/{a}/accounts/{doctor_id}/actions"
            )),
            &json!({"action": "suspend"}),
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(bearer_get(&t, &token, "/api/v1/session").await.status, 401);

    // A professional of another provider cannot authorise this provider's system.
    let other = t
        .agent(Scope::Hcp(b.parse().unwrap()), "dr.other", "doctor", false)
        .await;
    let r = t.send(approve(&other)).await;
    assert_eq!(r.status, 403);
    // An unregistered redirect URI is never redirected to.
    let bad = query.replace("cms.example", "evil.example");
    let r = t
        .send(
            Request::post("/oauth/authorize")
                .signed_by(&ua_a)
                .header("content-type", "application/x-www-form-urlencoded")
                .body(Body::from(bad))
                .unwrap(),
        )
        .await;
    assert_ne!(r.status, 303);
    assert!(!r.header("location").contains("evil"));
}
