//! Patients and SDMs logging in: document + password + a one-time code through the outbox.

use axum::http::Request;
use ehrshare_testkit::{Agent, TestApp, TestResponse, session_cookie};
use serde_json::{Value, json};

/// Registers a recipient (and, for a child, a parent as SDM) through the office; returns the
/// recipient's id and the access key sent.
async fn register(t: &TestApp, hkid: &str, born: &str, sdm: Option<Value>) -> (String, String) {
    let office = t.office().await;
    let mut body = json!({
        "channel": "in-person", "name_en": "CHAN Tai Man", "date_of_birth": born, "sex": "male",
        "document": {"type": "hkid", "number": hkid}, "phone": "9123 4567",
        "language": "en", "notify_channel": "sms"
    });
    if let Some(s) = sdm {
        body["sdm"] = s;
    }
    let r = t
        .send_json(Some(&office), Request::post("/api/v1/recipients"), &body)
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let id = r.json()["id"].as_str().unwrap().to_owned();
    let db = t.db.connect().await;
    let key = db.outbox_for_recipient(id.parse().unwrap()).await.unwrap()[0]
        .message
        .params["key"]
        .as_str()
        .unwrap()
        .to_owned();
    (id, key)
}

async fn post(t: &TestApp, path: &str, body: Value) -> TestResponse {
    t.send_json(None, Request::post(path), &body).await
}

/// Logs a person in with password and the code from the outbox.
async fn log_in(t: &TestApp, hkid: &str, password: &str, phone: &str) -> Agent {
    let r = post(
        t,
        "/api/v1/me/login",
        json!({"document": {"number": hkid}, "password": password}),
    )
    .await;
    assert_eq!(r.status, 202, "{}", r.text());
    let challenge = r.json()["challenge"].as_str().unwrap().to_owned();
    let code = t.last_message(phone, "login-code").await["code"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = post(
        t,
        "/api/v1/me/login/verify",
        json!({"challenge": challenge, "code": code}),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text());
    Agent {
        cookie: session_cookie(&r),
        csrf: r.json()["csrf_token"].as_str().unwrap().to_owned(),
        user_name: hkid.to_owned(),
        account: None,
    }
}

#[tokio::test]
async fn a_patient_logs_in_with_document_password_and_a_one_time_code() {
    let t = TestApp::spawn().await;
    let (id, key) = register(&t, "A123456(3)", "1980-03-02", None).await;

    // Setting up the login needs the access key.
    let r = post(&t, "/api/v1/me/activate", json!({"document": {"number": "A123456(3)"}, "access_key": "00000000", "password": "Patient-2026"})).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.json()["code"], "activation-failed");
    let r = post(
        &t,
        "/api/v1/me/activate",
        json!({"document": {"number": "A123456(3)"}, "access_key": key, "password": "password"}),
    )
    .await;
    assert_eq!(r.status, 422, "the password rules apply");
    let r = post(
        &t,
        "/api/v1/me/activate",
        json!({"document": {"number": "a1234563"}, "access_key": key, "password": "Patient-2026"}),
    )
    .await;
    assert_eq!(r.status, 204, "{}", r.text());

    // A wrong password and an unknown document look the same.
    let wrong = post(
        &t,
        "/api/v1/me/login",
        json!({"document": {"number": "A123456(3)"}, "password": "Wrong-2026"}),
    )
    .await;
    let unknown = post(
        &t,
        "/api/v1/me/login",
        json!({"document": {"number": "B123456(5)"}, "password": "Wrong-2026"}),
    )
    .await;
    assert_eq!(wrong.status, 401);
    assert_eq!(unknown.status, 401);
    assert_eq!(wrong.json()["code"], unknown.json()["code"]);
    assert_eq!(wrong.json()["title"], unknown.json()["title"]);

    // The right password sends a code; a wrong code fails, the right one logs in, once.
    let r = post(
        &t,
        "/api/v1/me/login",
        json!({"document": {"number": "A123456(3)"}, "password": "Patient-2026"}),
    )
    .await;
    assert_eq!(r.status, 202, "{}", r.text());
    let challenge = r.json()["challenge"].as_str().unwrap().to_owned();
    let code = t.last_message("+85291234567", "login-code").await["code"]
        .as_str()
        .unwrap()
        .to_owned();
    let wrong_code = format!("{:06}", (code.parse::<u32>().unwrap() + 1) % 1_000_000);
    let r = post(
        &t,
        "/api/v1/me/login/verify",
        json!({"challenge": challenge, "code": wrong_code}),
    )
    .await;
    assert_eq!(r.status, 401);
    let r = post(
        &t,
        "/api/v1/me/login/verify",
        json!({"challenge": challenge, "code": code}),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let cookie = session_cookie(&r);
    let r = post(
        &t,
        "/api/v1/me/login/verify",
        json!({"challenge": challenge, "code": code}),
    )
    .await;
    assert_eq!(r.status, 401, "a code is used once");

    let me = t
        .send(
            Request::get("/api/v1/me")
                .header("cookie", &cookie)
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(me.status, 200, "{}", me.text());
    assert_eq!(me.json()["recipient"], id);
    assert_eq!(me.json()["represents"], json!([]));

    // An expired code is refused.
    let r = post(
        &t,
        "/api/v1/me/login",
        json!({"document": {"number": "A123456(3)"}, "password": "Patient-2026"}),
    )
    .await;
    let challenge = r.json()["challenge"].as_str().unwrap().to_owned();
    let code = t.last_message("+85291234567", "login-code").await["code"]
        .as_str()
        .unwrap()
        .to_owned();
    t.clock.advance(time::Duration::minutes(5));
    let r = post(
        &t,
        "/api/v1/me/login/verify",
        json!({"challenge": challenge, "code": code}),
    )
    .await;
    assert_eq!(r.status, 401);
}

#[tokio::test]
async fn a_parent_logs_in_as_themself_and_acts_for_the_child_until_sixteen() {
    let t = TestApp::spawn().await;
    let parent_sdm = json!({"name_en": "CHAN Tai Man", "document": {"type": "hkid", "number": "A123456(3)"},
                            "category": "parent", "relationship_proof": "birth certificate",
                            "phone": "6123 4567"});
    let child_hkid = "0123456789A"
        .chars()
        .map(|d| format!("B987654({d})"))
        .find(|id| ehrshare_core::identity::Hkid::parse(id).is_ok())
        .unwrap();
    let (child, key) = register(&t, &child_hkid, "2012-06-01", Some(parent_sdm)).await;
    // The child's key went to the parent, who sets up their own login with it.
    let r = post(
        &t,
        "/api/v1/me/activate",
        json!({"document": {"number": "A123456(3)"}, "access_key": key, "password": "Parent-2026"}),
    )
    .await;
    assert_eq!(r.status, 204, "{}", r.text());
    let parent = log_in(&t, "A123456(3)", "Parent-2026", "+85261234567").await;
    let me = t
        .send_json(Some(&parent), Request::get("/api/v1/me"), &Value::Null)
        .await;
    assert_eq!(
        me.json()["recipient"],
        Value::Null,
        "the parent is not registered"
    );
    assert_eq!(me.json()["represents"][0]["recipient"], child);

    // On the child's 16th birthday (Hong Kong time) the parent's authority ends.
    t.clock
        .set(time::macros::datetime!(2028-05-31 16:00:00 UTC));
    let parent = log_in(&t, "A123456(3)", "Parent-2026", "+85261234567").await;
    let me = t
        .send_json(Some(&parent), Request::get("/api/v1/me"), &Value::Null)
        .await;
    assert_eq!(me.json()["represents"], json!([]), "{}", me.text());

    // The decision's facts, packed in one statement, carry the SDM exactly as its own
    // query reads it (text, optional text, a boolean, a timestamp), on either backend.
    let db = t.db.connect().await;
    let id: uuid::Uuid = child.parse().unwrap();
    let (registration, sdms) = db.recipient(id).await.unwrap().unwrap();
    let facts = db.recipient_facts(id, &[]).await.unwrap().unwrap();
    assert_eq!(sdms.len(), 1);
    assert_eq!(facts.sdms, sdms);
    assert_eq!(facts.registration, registration);
}
