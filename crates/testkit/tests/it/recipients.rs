//! Registering recipients through `/api/v1/recipients` (the office's registration officers).

use axum::body::Body;
use axum::http::Request;
use ehrshare_app::Settings;
use ehrshare_testkit::{SignedBy, TestApp, TestResponse};
use ehrshare_web::WebSettings;
use serde_json::{Value, json};

/// Stands for the office's registration officer's session in [`post`].
const TOKEN: &str = "office";

async fn app() -> TestApp {
    TestApp::with_settings(Settings::default(), WebSettings::default()).await
}

/// Posts a registration: as the office (`Some(TOKEN)`), with a made-up session cookie
/// (`Some(other)`), or with no credentials.
async fn post(t: &TestApp, body: &Value, token: Option<&str>) -> TestResponse {
    let mut req = Request::post("/api/v1/recipients").header("content-type", "application/json");
    match token {
        Some(TOKEN) => req = req.signed_by(&t.office().await),
        Some(other) => req = req.header("cookie", format!("__Host-ehrshare-session={other}")),
        None => {}
    }
    t.send(req.body(Body::from(body.to_string())).unwrap())
        .await
}

fn adult(hkid: &str) -> Value {
    json!({
        "channel": "in-person",
        "name_en": "CHAN Tai Man",
        "name_zh": "陳大文",
        "date_of_birth": "1980-03-02",
        "sex": "male",
        "document": {"type": "hkid", "number": hkid},
        "phone": "9123 4567",
        "language": "zh-HK",
        "notify_channel": "sms"
    })
}

/// `body` with the check digit that makes it a valid HKID, as typed: `B987654(x)`.
fn valid_hkid(body: &str) -> String {
    "0123456789A"
        .chars()
        .map(|d| format!("{body}({d})"))
        .find(|id| ehrshare_core::identity::Hkid::parse(id).is_ok())
        .unwrap()
}

async fn stored_with(t: &TestApp, number: &str) -> i64 {
    t.db.connect()
        .await
        .recipients_with_document("hkid", "HK", number)
        .await
        .unwrap()
}

#[tokio::test]
async fn an_hkid_is_accepted_as_typed_and_stored_canonical() {
    let t = app().await;
    let r = post(&t, &adult("A123456(3)"), Some(TOKEN)).await;
    assert_eq!(r.status, 201, "{}", r.text());
    let request_id = r.header("x-request-id").to_owned();
    let body = r.json();
    assert_eq!(body["document"]["number"], "A1234563");
    assert_eq!(body["document"]["issuer"], "HK");
    assert_eq!(body["status"], "active");
    assert_eq!(body["phone"], "+85291234567");
    let text = r.text();
    assert!(
        !text.contains("key"),
        "no access key in any response: {text}"
    );

    // The access key: only its hash is stored; the clear key waits in the outbox.
    let id: uuid::Uuid = body["id"].as_str().unwrap().parse().unwrap();
    let db = t.db.connect().await;
    let hash = db.access_key_hash(id).await.unwrap().expect("a key hash");
    assert!(hash.starts_with("$argon2id$"));
    let messages = db.outbox_for_recipient(id).await.unwrap();
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].message.template, "access-key");
    assert_eq!(messages[0].message.address, "+85291234567");
    let key = messages[0].message.params["key"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(key.len(), 8);
    assert!(!hash.contains(&key));
    assert!(ehrshare_app::secret::verify_secret(key.clone(), hash).await);

    // The read never shows the key either.
    let r = t
        .send(
            Request::get(format!("/api/v1/recipients/{id}"))
                .signed_by(&t.office().await)
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["name_zh"], "陳大文");
    assert!(!r.text().contains(&key));

    // Audited: the registration, then the reading (after the test's office login).
    let entries: Vec<_> = db
        .audit_entries(0, 20)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.entry.action.starts_with("recipient."))
        .collect();
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[0].entry.action, "recipient.register");
    assert_eq!(entries[0].entry.recipient, Some(id));
    assert_eq!(entries[1].entry.action, "recipient.read");
    assert_eq!(entries[1].entry.recipient, Some(id));
    assert_eq!(entries[1].entry.domains, vec!["demographics"]);
    assert_eq!(
        entries[0].entry.request_id.map(|r| r.to_string()),
        Some(request_id)
    );
}

#[tokio::test]
async fn a_wrong_check_digit_is_422_naming_the_field_and_stores_nothing() {
    let t = app().await;
    let r = post(&t, &adult("A123456(4)"), Some(TOKEN)).await;
    assert_eq!(r.status, 422, "{}", r.text());
    assert_eq!(r.header("content-type"), "application/problem+json");
    let body = r.json();
    assert_eq!(body["code"], "invalid-hkid");
    assert_eq!(body["errors"][0]["field"], "/document/number");
    assert_eq!(body["errors"][0]["code"], "invalid-hkid");
    assert_eq!(stored_with(&t, "A1234564").await, 0);
    assert_eq!(
        t.app.audit_head().size,
        1,
        "only the test's office account was recorded"
    );
}

#[tokio::test]
async fn a_second_registration_of_a_document_is_409_and_stores_nothing() {
    let t = app().await;
    assert_eq!(
        post(&t, &adult("A123456(3)"), Some(TOKEN)).await.status,
        201
    );
    let r = post(&t, &adult("a1234563"), Some(TOKEN)).await;
    assert_eq!(r.status, 409, "{}", r.text());
    assert_eq!(r.json()["code"], "duplicate-document");
    assert_eq!(stored_with(&t, "A1234563").await, 1);
    assert_eq!(
        t.app.audit_head().size,
        2,
        "only the office account and the first registration were recorded"
    );
}

#[tokio::test]
async fn a_child_registers_through_a_parent_only() {
    let t = app().await;
    let mut child = adult(&valid_hkid("B987654"));
    child["date_of_birth"] = json!("2010-06-01");
    child["name_en"] = json!("CHAN Siu Ming");
    let r = post(&t, &child, Some(TOKEN)).await;
    assert_eq!(r.status, 422, "{}", r.text());
    assert_eq!(r.json()["code"], "sdm-required-for-child");
    assert_eq!(t.app.audit_head().size, 1, "the office account only");

    child["sdm"] = json!({
        "name_en": "CHAN Tai Man",
        "document": {"type": "hkid", "number": "A123456(3)"},
        "category": "parent",
        "relationship_proof": "birth certificate",
        "phone": "+852 6123 4567"
    });
    let r = post(&t, &child, Some(TOKEN)).await;
    assert_eq!(r.status, 201, "{}", r.text());
    let body = r.json();
    assert_eq!(body["sdms"][0]["category"], "parent");
    let id: uuid::Uuid = body["id"].as_str().unwrap().parse().unwrap();
    // The access key goes to the parent.
    let messages = t.db.connect().await.outbox_for_recipient(id).await.unwrap();
    assert_eq!(messages[0].message.address, "+85261234567");
    let entries = t.db.connect().await.audit_entries(0, 10).await.unwrap();
    let register = entries
        .iter()
        .find(|e| e.entry.action == "recipient.register")
        .unwrap();
    assert!(register.entry.sdm.is_some(), "the SDM acting is recorded");

    // A lower-priority SDM must declare that no higher one is available.
    let mut other = child.clone();
    other["document"]["number"] = json!(valid_hkid("C123456"));
    other["sdm"]["category"] = json!("child-family-or-co-resident");
    let r = post(&t, &other, Some(TOKEN)).await;
    assert_eq!(r.json()["code"], "sdm-priority-not-declared");
}

#[tokio::test]
async fn several_invalid_fields_are_named_together() {
    let t = app().await;
    let mut body = adult("A123456(3)");
    body["phone"] = json!("12345");
    body["email"] = json!("not-an-address");
    body["date_of_birth"] = json!("1980-13-40");
    let r = post(&t, &body, Some(TOKEN)).await;
    assert_eq!(r.status, 422);
    let json = r.json();
    assert_eq!(json["code"], "invalid-input");
    let fields: Vec<&str> = json["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, vec!["/date_of_birth", "/phone", "/email"]);
}

#[tokio::test]
async fn the_office_api_needs_a_registration_officers_session() {
    let t = app().await;
    let r = post(&t, &adult("A123456(3)"), None).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.header("www-authenticate"), "Bearer");
    assert_eq!(r.json()["code"], "unauthenticated");
    let r = post(
        &t,
        &adult("A123456(3)"),
        Some("not-a-session-of-anyone-0123456789"),
    )
    .await;
    assert_eq!(r.status, 401);
    assert_eq!(stored_with(&t, "A1234563").await, 0);

    // Logged in, but not as a registration officer: a privacy officer, a provider's doctor.
    for (user, role, scope) in [
        (
            "office.privacy",
            "privacy-officer",
            ehrshare_app::duty::Scope::Office,
        ),
        (
            "office.sysadmin",
            "system-administrator",
            ehrshare_app::duty::Scope::Office,
        ),
    ] {
        let agent = t.agent(scope, user, role, false).await;
        let r = t
            .send(
                Request::post("/api/v1/recipients")
                    .header("content-type", "application/json")
                    .signed_by(&agent)
                    .body(Body::from(adult("A123456(3)").to_string()))
                    .unwrap(),
            )
            .await;
        assert_eq!(r.status, 403, "{user}: {}", r.text());
        assert_eq!(r.json()["code"], "office-role-required");
        let last = t.db.connect().await.audit_entries(0, 1000).await.unwrap();
        let last = last.last().unwrap();
        assert_eq!(last.entry.outcome, ehrshare_core::audit::Outcome::Denied);
        assert_eq!(
            last.entry.denial_reason.as_deref(),
            Some("office-role-required")
        );
        assert_eq!(last.entry.actor.role.as_deref(), Some(role));
    }
    assert_eq!(stored_with(&t, "A1234563").await, 0);

    // A professional of any provider reaching for a recipient by id (a path with an id in
    // it): refused like the rest, with a constant audit action, never 500.
    let (hcp, _) = t.active_provider("Any Clinic", "any").await;
    let doctor = t
        .agent(
            ehrshare_app::duty::Scope::Hcp(hcp.parse().unwrap()),
            "dr.any",
            "doctor",
            false,
        )
        .await;
    let r = t
        .send(
            Request::get(format!("/api/v1/recipients/{}", uuid::Uuid::now_v7()))
                .header("cookie", &doctor.cookie)
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.text());
    assert_eq!(r.json()["code"], "office-role-required");
    let last = t.db.connect().await.audit_entries(0, 1000).await.unwrap();
    assert_eq!(last.last().unwrap().entry.action, "office.registration");
}

#[tokio::test]
async fn malformed_bodies_are_400_and_415() {
    let t = app().await;
    let r = t
        .send(
            Request::post("/api/v1/recipients")
                .header("content-type", "application/json")
                .signed_by(&t.office().await)
                .body(Body::from("{\"channel\": "))
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(r.json()["code"], "malformed-request");
    let r = t
        .send(
            Request::post("/api/v1/recipients")
                .header("content-type", "text/plain")
                .signed_by(&t.office().await)
                .body(Body::from("hello"))
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, 415);
    assert_eq!(r.json()["code"], "unsupported-media-type");
}

async fn regenerate(t: &TestApp, id: &str, acting_sdm: Option<&str>) -> TestResponse {
    let body = match acting_sdm {
        Some(s) => json!({ "acting_sdm": s }),
        None => json!({}),
    };
    t.send(
        Request::post(format!("/api/v1/recipients/{id}/access-key"))
            .header("content-type", "application/json")
            .signed_by(&t.office().await)
            .body(Body::from(body.to_string()))
            .unwrap(),
    )
    .await
}

#[tokio::test]
async fn a_new_access_key_replaces_the_old_one_at_once() {
    let t = app().await;
    let created = post(&t, &adult("A123456(3)"), Some(TOKEN)).await.json();
    let id = created["id"].as_str().unwrap();
    let uuid: uuid::Uuid = id.parse().unwrap();
    let db = t.db.connect().await;
    let old_hash = db.access_key_hash(uuid).await.unwrap().unwrap();
    let old_key = db.outbox_for_recipient(uuid).await.unwrap()[0]
        .message
        .params["key"]
        .as_str()
        .unwrap()
        .to_owned();

    let r = regenerate(&t, id, None).await;
    assert_eq!(r.status, 204, "{}", r.text());
    assert!(r.body.is_empty(), "the key is never in a response");
    let new_hash = db.access_key_hash(uuid).await.unwrap().unwrap();
    assert_ne!(new_hash, old_hash, "the stored hash changed");
    assert!(
        !ehrshare_app::secret::verify_secret(old_key, new_hash.clone()).await,
        "the old key is dead"
    );
    let messages = db.outbox_for_recipient(uuid).await.unwrap();
    assert_eq!(messages.len(), 2, "the outbox holds the new key");
    let new_key = messages[0].message.params["key"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(ehrshare_app::secret::verify_secret(new_key, new_hash).await);
}

#[tokio::test]
async fn a_childs_sdm_may_act_until_the_16th_birthday() {
    let t = app().await;
    let mut child = adult(&valid_hkid("D555555"));
    // Born 2010-01-20: 16 on 2026-01-20 in Hong Kong (2026-01-19 16:00 UTC).
    child["date_of_birth"] = json!("2010-01-20");
    child["sdm"] = json!({
        "name_en": "CHAN Tai Man",
        "document": {"type": "hkid", "number": "A123456(3)"},
        "category": "parent",
        "phone": "6123 4567"
    });
    let created = post(&t, &child, Some(TOKEN)).await.json();
    let id = created["id"].as_str().unwrap().to_owned();
    let sdm = created["sdms"][0]["id"].as_str().unwrap().to_owned();

    t.clock
        .set(time::macros::datetime!(2026-01-19 15:59:59 UTC));
    assert_eq!(regenerate(&t, &id, Some(&sdm)).await.status, 204);
    let db = t.db.connect().await;
    let hash = db.access_key_hash(id.parse().unwrap()).await.unwrap();

    t.clock
        .set(time::macros::datetime!(2026-01-19 16:00:00 UTC));
    let r = regenerate(&t, &id, Some(&sdm)).await;
    assert_eq!(r.status, 403, "{}", r.text());
    assert_eq!(r.json()["code"], "sdm-authority-ended");
    assert_eq!(
        db.access_key_hash(id.parse().unwrap()).await.unwrap(),
        hash,
        "nothing changed"
    );
    // The refusal is audited, naming the SDM.
    let entries = db.audit_entries(0, 100).await.unwrap();
    let last = entries.last().unwrap();
    assert_eq!(last.entry.action, "access-key.regenerate");
    assert_eq!(last.entry.outcome, ehrshare_core::audit::Outcome::Denied);
    assert_eq!(
        last.entry.denial_reason.as_deref(),
        Some("sdm-authority-ended")
    );
    assert_eq!(last.entry.sdm.map(|s| s.to_string()), Some(sdm.clone()));
    // The now 16-year-old's own request (without an SDM) still works.
    assert_eq!(regenerate(&t, &id, None).await.status, 204);
    // An SDM that is not the recipient's is not found.
    let stranger = uuid::Uuid::now_v7().to_string();
    assert_eq!(regenerate(&t, &id, Some(&stranger)).await.status, 404);
}

async fn recipient_event(t: &TestApp, id: &str, body: Value) -> TestResponse {
    t.send(
        Request::post(format!("/api/v1/recipients/{id}/events"))
            .header("content-type", "application/json")
            .signed_by(&t.office().await)
            .body(Body::from(body.to_string()))
            .unwrap(),
    )
    .await
}

#[tokio::test]
async fn an_online_registration_waits_for_verification() {
    let t = app().await;
    let mut online = adult("A123456(3)");
    online["channel"] = json!("online");
    let created = post(&t, &online, Some(TOKEN)).await.json();
    assert_eq!(created["status"], "pending-verification");
    let id = created["id"].as_str().unwrap();
    let uuid: uuid::Uuid = id.parse().unwrap();
    let db = t.db.connect().await;
    assert_eq!(
        db.access_key_hash(uuid).await.unwrap(),
        None,
        "no key before verification"
    );
    assert!(db.outbox_for_recipient(uuid).await.unwrap().is_empty());
    assert_eq!(regenerate(&t, id, None).await.status, 409);

    let r = recipient_event(&t, id, json!({"event": "verify"})).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["status"], "active");
    assert!(r.json()["activated_at"].is_string());
    assert!(db.access_key_hash(uuid).await.unwrap().is_some());
    assert_eq!(
        db.outbox_for_recipient(uuid).await.unwrap()[0]
            .message
            .template,
        "access-key"
    );
    assert_eq!(
        recipient_event(&t, id, json!({"event": "verify"}))
            .await
            .json()["code"],
        "invalid-transition"
    );
}

#[tokio::test]
async fn suspension_and_withdrawal() {
    let t = app().await;
    let id = post(&t, &adult("A123456(3)"), Some(TOKEN)).await.json()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = recipient_event(&t, &id, json!({"event": "suspend"})).await;
    assert_eq!(r.status, 422);
    assert_eq!(r.json()["code"], "reason-required");
    let r = recipient_event(
        &t,
        &id,
        json!({"event": "suspend", "reason": "identity in doubt"}),
    )
    .await;
    assert_eq!(r.json()["status"], "suspended");
    assert_eq!(
        recipient_event(&t, &id, json!({"event": "reinstate"}))
            .await
            .json()["status"],
        "active"
    );
    let r = recipient_event(&t, &id, json!({"event": "withdraw"})).await;
    assert_eq!(r.json()["status"], "withdrawn");
    // Final; the recipient was told of each change.
    assert_eq!(
        recipient_event(&t, &id, json!({"event": "reinstate"}))
            .await
            .status,
        409
    );
    let messages =
        t.db.connect()
            .await
            .outbox_for_recipient(id.parse().unwrap())
            .await
            .unwrap();
    let templates: Vec<&str> = messages
        .iter()
        .map(|m| m.message.template.as_str())
        .collect();
    assert_eq!(
        templates
            .iter()
            .filter(|t| **t == "registration-changed")
            .count(),
        3
    );
    // The document may be registered again once the old registration is withdrawn.
    assert_eq!(
        post(&t, &adult("A123456(3)"), Some(TOKEN)).await.status,
        201
    );
    assert_eq!(stored_with(&t, "A1234563").await, 2);
    assert_eq!(
        recipient_event(&t, &id, json!({"event": "dance"}))
            .await
            .json()["code"],
        "invalid-event"
    );
}

/// Names are stored in normal form C, and a name that would show as something else is refused
/// with its field, nothing stored (issue 22): bidirectional overrides, invisible characters,
/// letters of two alphabets (a Cyrillic 'А' in a Latin name, which looks like another person's).
#[tokio::test]
async fn names_are_stored_nfc_and_look_alike_or_hidden_characters_are_refused() {
    let t = app().await;
    let office = t.office().await;
    let mut body = adult("A123456(3)");
    body["name_en"] = json!("Ame\u{0301}lie CHAN");
    let r = t
        .send_json(Some(&office), Request::post("/api/v1/recipients"), &body)
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.json()["name_en"], "Am\u{00E9}lie CHAN");
    let id = r.json()["id"].as_str().unwrap().to_owned();
    let r = t
        .send_json(
            Some(&office),
            Request::get(format!("/api/v1/recipients/{id}")),
            &Value::Null,
        )
        .await;
    assert_eq!(r.json()["name_en"], "Am\u{00E9}lie CHAN");
    for (field, name) in [
        ("name_en", "CHAN\u{202E}namiaT"),
        ("name_en", "CHAN\u{200B}Tai Man"),
        ("name_en", "CH\u{0410}N Tai Man"),
        ("name_zh", "陳\u{2066}大文"),
    ] {
        let mut body = adult(&valid_hkid("B234567"));
        body[field] = json!(name);
        let r = t
            .send_json(Some(&office), Request::post("/api/v1/recipients"), &body)
            .await;
        assert_eq!(r.status, 422, "{name:?}: {}", r.text());
        assert!(
            r.json()["errors"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["field"] == format!("/{field}") && e["code"] == "invalid-name"),
            "{name:?}: {}",
            r.text()
        );
    }
    let stored =
        t.db.connect()
            .await
            .recipients_with_document(
                "hkid",
                "HK",
                ehrshare_core::identity::Hkid::parse(&valid_hkid("B234567"))
                    .unwrap()
                    .as_str(),
            )
            .await
            .unwrap();
    assert_eq!(stored, 0, "nothing stored");
}
