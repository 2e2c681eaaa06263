//! Logging in through an external OpenID Connect provider (as iAM Smart), end to end against
//! a provider the test starts, including the ways an ID token must be refused.

use axum::body::Body;
use axum::http::Request;
use ehrshare_app::Settings;
use ehrshare_app::duty::Scope;
use ehrshare_app::outbound::Outbound;
use ehrshare_app::settings::OidcSettings;
use ehrshare_core::audit::Outcome;
use ehrshare_testkit::{
    Agent, IDP_CLIENT_ID, IDP_CLIENT_SECRET, SignedBy, TestApp, TestIdp, TestResponse,
};
use ehrshare_web::WebSettings;
use serde_json::{Value, json};

async fn app() -> (TestApp, TestIdp) {
    let idp = TestIdp::start().await;
    let settings = Settings {
        oidc: Some(OidcSettings {
            issuer: idp.issuer.clone(),
            client_id: IDP_CLIENT_ID.to_owned(),
            client_secret: IDP_CLIENT_SECRET.to_owned(),
            redirect_uri: "http://127.0.0.1:8080/auth/oidc/callback".to_owned(),
            hkid_claim: "hkid".to_owned(),
            client: Outbound::new(std::time::Duration::from_secs(5), &[]).unwrap(),
        }),
        ..Settings::default()
    };
    (
        TestApp::with_settings(settings, WebSettings::default()).await,
        idp,
    )
}

fn now(t: &TestApp) -> i64 {
    ehrshare_core::clock::Clock::now(&t.clock).unix_timestamp()
}

/// The browser's round trip: our start (or link) response, the provider, our callback.
async fn round_trip(
    t: &TestApp,
    idp: &TestIdp,
    start: TestResponse,
    claims: Value,
) -> TestResponse {
    assert_eq!(start.status, 303, "{}", start.text());
    let location = start.header("location").to_owned();
    assert!(
        location.starts_with(&format!("{}/authorize?", idp.issuer)),
        "{location}"
    );
    let state_cookie = start
        .headers
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|c| c.starts_with("ehrshare-oidc-state="))
        .unwrap();
    let state_cookie = state_cookie.split(';').next().unwrap().to_owned();
    let state = state_cookie.split_once('=').unwrap().1.to_owned();
    let code = idp.authorize(&location, claims);
    t.send(
        Request::get(format!("/auth/oidc/callback?code={code}&state={state}"))
            .header("cookie", state_cookie)
            .body(Body::empty())
            .unwrap(),
    )
    .await
}

async fn start_patient(t: &TestApp) -> TestResponse {
    t.get("/auth/oidc/start?for=patient").await
}

fn session_of(r: &TestResponse) -> String {
    r.headers
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|c| c.starts_with("__Host-ehrshare-session="))
        .map(|c| c.split(';').next().unwrap().to_owned())
        .unwrap_or_default()
}

async fn denials(t: &TestApp) -> Vec<String> {
    t.db.connect()
        .await
        .audit_entries(0, 10_000)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.entry.action == "oidc.login" && e.entry.outcome == Outcome::Denied)
        .map(|e| e.entry.denial_reason.unwrap_or_default())
        .collect()
}

#[tokio::test]
async fn a_patient_logs_in_through_the_identity_provider() {
    let (t, idp) = app().await;
    let office = t.office().await;
    let r = t
        .send_json(
            Some(&office),
            Request::post("/api/v1/recipients"),
            &json!({"channel": "in-person", "name_en": "CHAN Tai Man", "date_of_birth": "1980-03-02",
                    "sex": "male", "document": {"type": "hkid", "number": "A123456(3)"},
                    "phone": "9123 4567", "language": "en", "notify_channel": "sms"}),
        )
        .await;
    let recipient = r.json()["id"].as_str().unwrap().to_owned();

    let mut claims = idp.claims("iam-smart-001", now(&t));
    claims["hkid"] = json!("A123456(3)");
    let r = round_trip(&t, &idp, start_patient(&t).await, claims).await;
    assert_eq!(r.status, 303, "{}", r.text());
    let cookie = session_of(&r);
    assert!(!cookie.is_empty());
    let me = t
        .send(
            Request::get("/api/v1/me")
                .header("cookie", &cookie)
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(me.status, 200, "{}", me.text());
    assert_eq!(me.json()["recipient"], recipient);

    // Next time the link is enough (no document claim needed).
    let r = round_trip(
        &t,
        &idp,
        start_patient(&t).await,
        idp.claims("iam-smart-001", now(&t)),
    )
    .await;
    assert_eq!(r.status, 303, "{}", r.text());
    assert!(!session_of(&r).is_empty());

    assert_eq!(r.header("location"), "/me", "patients land on the portal");

    // Someone the provider knows but who is not registered gets a login that acts for nobody,
    // and registers online with the document the provider asserted: verified at once.
    let stranger_hkid = "0123456789A"
        .chars()
        .map(|d| format!("B123456({d})"))
        .find(|id| ehrshare_core::identity::Hkid::parse(id).is_ok())
        .unwrap();
    let other_hkid = "0123456789A"
        .chars()
        .map(|d| format!("C123456({d})"))
        .find(|id| ehrshare_core::identity::Hkid::parse(id).is_ok())
        .unwrap();
    let mut stranger = idp.claims("iam-smart-002", now(&t));
    stranger["hkid"] = json!(stranger_hkid);
    stranger["birthdate"] = json!("1975-05-05");
    let r = round_trip(&t, &idp, start_patient(&t).await, stranger).await;
    assert_eq!(r.status, 303, "{} {:?}", r.text(), denials(&t).await);
    let cookie = session_of(&r);
    let me = t
        .send(
            Request::get("/api/v1/me")
                .header("cookie", &cookie)
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(me.json()["recipient"], Value::Null, "{}", me.text());
    assert_eq!(me.json()["represents"], json!([]));
    let agent = Agent {
        cookie: cookie.clone(),
        csrf: csrf_of(&t, &cookie).await,
        user_name: "stranger".to_owned(),
        account: None,
    };
    let body = |number: &str| {
        json!({"name_en": "WONG Siu Ming", "date_of_birth": "1975-05-05", "sex": "male",
               "document": {"type": "hkid", "number": number}, "phone": "9555 6666",
               "language": "en", "notify_channel": "sms"})
    };
    // Someone else's document typed in this session waits for the office like any other.
    let r = t
        .send_json(
            Some(&agent),
            Request::post("/api/v1/me/registrations"),
            &body(&other_hkid),
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.text());
    assert_eq!(r.json()["status"], "received");
    let r = t
        .send_json(
            Some(&agent),
            Request::post("/api/v1/me/registrations"),
            &body(&stranger_hkid),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(
        r.json()["status"],
        "active",
        "verified through the provider"
    );
    let own = r.json()["id"].clone();
    t.last_message("+85295556666", "access-key").await;
    let me = t
        .send(
            Request::get("/api/v1/me")
                .header("cookie", &cookie)
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(me.json()["recipient"], own, "{}", me.text());
    // Their codes now go to the contact they registered: a new password by code.
    let r = t
        .send_json(
            Some(&agent),
            Request::post("/api/v1/me/password/code"),
            &Value::Null,
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.text());
    let challenge = r.json()["challenge"].clone();
    let code = t.last_message("+85295556666", "password-code").await["code"].clone();
    let r = t
        .send_json(
            Some(&agent),
            Request::post("/api/v1/me/password"),
            &json!({"challenge": challenge, "code": code, "password": "Iam-Smart-2026"}),
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.text());
    let r = t
        .send_json(
            None,
            Request::post("/api/v1/me/login"),
            &json!({"document": {"number": stranger_hkid}, "password": "Iam-Smart-2026"}),
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.text());
}

/// The CSRF token of a session, as `GET /api/v1/session` reports it.
async fn csrf_of(t: &TestApp, cookie: &str) -> String {
    let r = t
        .send(
            Request::get("/api/v1/session")
                .header("cookie", cookie)
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    r.json()["csrf_token"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn bad_signatures_wrong_audiences_and_expired_tokens_are_refused() {
    let (t, idp) = app().await;
    let office = t.office().await;
    t.send_json(
        Some(&office),
        Request::post("/api/v1/recipients"),
        &json!({"channel": "in-person", "name_en": "CHAN Tai Man", "date_of_birth": "1980-03-02",
                "sex": "male", "document": {"type": "hkid", "number": "A123456(3)"},
                "phone": "9123 4567", "language": "en", "notify_channel": "sms"}),
    )
    .await;
    let good = |t: &TestApp| {
        let mut c = idp.claims("iam-smart-001", now(t));
        c["hkid"] = json!("A123456(3)");
        c
    };

    idp.sign_with_wrong_key(true);
    let r = round_trip(&t, &idp, start_patient(&t).await, good(&t)).await;
    assert_eq!(r.status, 401, "{}", r.text());
    assert!(session_of(&r).is_empty());
    idp.sign_with_wrong_key(false);

    let mut c = good(&t);
    c["aud"] = json!("another-client");
    let r = round_trip(&t, &idp, start_patient(&t).await, c).await;
    assert_eq!(r.status, 401);

    let mut c = good(&t);
    c["aud"] = json!([IDP_CLIENT_ID, "another-client"]);
    let r = round_trip(&t, &idp, start_patient(&t).await, c).await;
    assert_eq!(r.status, 401, "several audiences need azp naming us");

    let mut c = good(&t);
    c["exp"] = json!(now(&t) - 120);
    let r = round_trip(&t, &idp, start_patient(&t).await, c).await;
    assert_eq!(r.status, 401);

    let mut c = good(&t);
    c["iss"] = json!("https://impostor.example");
    let r = round_trip(&t, &idp, start_patient(&t).await, c).await;
    assert_eq!(r.status, 401);

    assert_eq!(
        denials(&t).await,
        vec![
            "bad-signature",
            "wrong-audience",
            "wrong-audience",
            "expired",
            "wrong-issuer"
        ]
    );

    // The callback without the state cookie of the browser that started (login CSRF), and a
    // replayed callback, are refused.
    let start = start_patient(&t).await;
    let location = start.header("location").to_owned();
    let state = location
        .split("state=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap()
        .to_owned();
    let code = idp.authorize(&location, good(&t));
    let r = t
        .get(&format!("/auth/oidc/callback?code={code}&state={state}"))
        .await;
    assert_eq!(r.status, 401);
    let r = round_trip(&t, &idp, start_patient(&t).await, good(&t)).await;
    assert_eq!(r.status, 303, "a good token still works: {}", r.text());
}

#[tokio::test]
async fn a_professional_links_the_identity_then_logs_in_through_it() {
    let (t, idp) = app().await;
    let (hcp, ua) = t.active_provider("Linked Clinic", "link").await;
    let doctor: Agent = t
        .agent(Scope::Hcp(hcp.parse().unwrap()), "dr.iam", "doctor", false)
        .await;

    // Not linked yet: refused.
    let r = round_trip(
        &t,
        &idp,
        t.get("/auth/oidc/start?for=staff").await,
        idp.claims("iam-doc", now(&t)),
    )
    .await;
    assert_eq!(r.status, 401);

    // Linking needs the logged-in session (with its CSRF token).
    let r = t
        .send(
            Request::post("/auth/oidc/link")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, 401);
    let link = t
        .send(
            Request::post("/auth/oidc/link")
                .signed_by(&doctor)
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    let r = round_trip(&t, &idp, link, idp.claims("iam-doc", now(&t))).await;
    assert_eq!(r.status, 303, "{}", r.text());

    let r = round_trip(
        &t,
        &idp,
        t.get("/auth/oidc/start?for=staff").await,
        idp.claims("iam-doc", now(&t)),
    )
    .await;
    assert_eq!(r.status, 303, "{}", r.text());
    let cookie = session_of(&r);
    let s = t
        .send(
            Request::get("/api/v1/session")
                .header("cookie", &cookie)
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(s.json()["account"]["user_name"], "dr.iam");
    assert_eq!(s.json()["stage"], "ready");

    // The account's status still decides: suspended, the external login is refused.
    let id = doctor.account.unwrap();
    let r = t
        .send_json(
            Some(&ua),
            Request::post(format!("/api/v1/providers/{hcp}/accounts/{id}/actions")),
            &json!({"action": "suspend"}),
        )
        .await;
    assert_eq!(r.status, 200);
    let r = round_trip(
        &t,
        &idp,
        t.get("/auth/oidc/start?for=staff").await,
        idp.claims("iam-doc", now(&t)),
    )
    .await;
    assert_eq!(r.status, 401);
}
