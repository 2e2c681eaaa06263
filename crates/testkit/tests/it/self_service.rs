//! The patient portal's self-service (issue 27, items 1 and 8; ADR 0021): registering online
//! and being verified by the office, activating, a forgotten password by the access key and a
//! code, a new contact confirmed by a code sent to it, and the ways each must refuse.

use axum::http::Request;
use ehrshare_testkit::Agent;
use serde_json::{Value, json};

use crate::world::{World, log_in, sign_in, world};

/// An HKID with a valid check digit, `letter` and six digits.
fn hkid(stem: &str) -> String {
    "0123456789A"
        .chars()
        .map(|d| format!("{stem}({d})"))
        .find(|id| ehrshare_core::identity::Hkid::parse(id).is_ok())
        .unwrap()
}

fn canonical(hkid: &str) -> String {
    hkid.replace(['(', ')'], "")
}

fn online(number: &str, phone: &str) -> Value {
    json!({"name_en": "LEE Ka Yan", "name_zh": "李家欣", "date_of_birth": "1985-07-14",
           "sex": "female", "document": {"type": "hkid", "number": number},
           "phone": phone, "language": "zh-HK", "notify_channel": "sms"})
}

async fn anonymous_post(w: &World, path: &str, body: Value) -> ehrshare_testkit::TestResponse {
    w.t.send_json(None, Request::post(path), &body).await
}

/// The registration of `number` waiting for verification (the registrant is not told its id:
/// the office finds it by the document).
pub(crate) async fn waiting_registration(w: &World, number: &str) -> String {
    let doc = ehrshare_core::identity::Hkid::parse(number).unwrap();
    let db = w.t.db.connect().await;
    db.recipient_by_document("hkid", "HK", doc.as_str())
        .await
        .unwrap()
        .expect("a registration")
        .to_string()
}

async fn count_recipients(w: &World) -> usize {
    let db = w.t.db.connect().await;
    db.active_recipients(10_000).await.unwrap().len()
}

#[tokio::test]
async fn a_patient_registers_online_is_verified_activates_and_reads_the_record() {
    let w = world().await;
    let number = hkid("C123456");

    // Refusals store nothing: another channel, unknown fields, a child without a parent.
    let mut body = online(&number, "9222 3333");
    body["channel"] = json!("in-person");
    let r = anonymous_post(&w, "/api/v1/me/registrations", body).await;
    assert_eq!(r.status, 422, "{}", r.text());
    assert_eq!(r.json()["code"], "invalid-channel");
    let mut body = online(&number, "9222 3333");
    body["verified"] = json!(true);
    let r = anonymous_post(&w, "/api/v1/me/registrations", body).await;
    assert!(matches!(r.status.as_u16(), 400 | 422), "{}", r.text());
    let mut body = online(&hkid("C654321"), "9222 3333");
    body["date_of_birth"] = json!("2015-01-01");
    let r = anonymous_post(&w, "/api/v1/me/registrations", body).await;
    assert_eq!(r.status, 422, "{}", r.text());
    assert_eq!(r.json()["code"], "sdm-required-for-child");

    // Registered online: it waits for verification, and says so to the registrant.
    let r = anonymous_post(&w, "/api/v1/me/registrations", online(&number, "9222 3333")).await;
    assert_eq!(r.status, 202, "{}", r.text());
    assert_eq!(r.json(), json!({"status": "received"}), "no id, no status");
    w.t.last_message("+85292223333", "registration-received")
        .await;
    let id = waiting_registration(&w, &number).await;
    // No key yet: activation fails as for a wrong key.
    let r = anonymous_post(
        &w,
        "/api/v1/me/activate",
        json!({"document": {"number": number}, "access_key": "12345678", "password": "Patient-2026"}),
    )
    .await;
    assert_eq!(r.status, 401);

    // The office verifies it (the existing API): the access key goes out.
    let office = w.t.office().await;
    let r = w
        .post(
            &office,
            &format!("/api/v1/recipients/{id}/events"),
            json!({"event": "verify"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let key = w.t.last_message("+85292223333", "access-key").await["key"]
        .as_str()
        .unwrap()
        .to_owned();

    // A provider with consent deposits a record.
    let r = w
        .post(
            &w.clerk,
            &format!("/api/v1/recipients/{id}/consents"),
            if w.t.app.settings().regime.consents_are_typed() {
                json!({"method": "access-key", "access_key": key, "kind": "indefinite"})
            } else {
                json!({"method": "access-key", "access_key": key})
            },
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let r = w
        .post(
            &w.clerk,
            &format!("/api/v1/recipients/{id}/episodes"),
            json!({"kind": "attendance"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let r = w
        .post(
            &w.doctor,
            &format!("/api/v1/recipients/{id}/records"),
            json!({"resourceType": "Condition", "id": "dx-online",
                   "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10", "code": "E11", "display": "Type 2 diabetes"}]},
                   "subject": {"identifier": {"system": "https://ehrshare.example/fhir/NamingSystem/hkid", "value": canonical(&number)}}}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());

    // Activates, logs in, reads the record; the read is in the access log as `self`.
    let me = log_in(&w, &number, &key, "+85292223333").await;
    let r = w
        .get(&me, &format!("/api/v1/me/recipients/{id}/record"))
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.text().contains("Type 2 diabetes"), "{}", r.text());
    let log = w
        .get(&me, &format!("/api/v1/me/recipients/{id}/access-log"))
        .await;
    let own_read = log
        .json()
        .as_array()
        .unwrap()
        .iter()
        .any(|l| l["action"] == "record.summary" && l["reason"] == "self");
    assert!(own_read, "{}", log.text());

    // Activating again with the key is refused: the key alone never replaces a password.
    let r = anonymous_post(
        &w,
        "/api/v1/me/activate",
        json!({"document": {"number": number}, "access_key": key, "password": "Another-2026-x"}),
    )
    .await;
    assert_eq!(r.status, 409, "{}", r.text());
    assert_eq!(r.json()["code"], "already-activated");
}

#[tokio::test]
async fn an_online_registration_cannot_hold_another_persons_document() {
    let w = world().await;
    let number = hkid("D123456");
    let before = count_recipients(&w).await;
    let r = anonymous_post(&w, "/api/v1/me/registrations", online(&number, "9444 5555")).await;
    assert_eq!(r.status, 202, "{}", r.text());
    w.t.last_message("+85294445555", "registration-received")
        .await;
    let pending = waiting_registration(&w, &number).await;
    assert_eq!(count_recipients(&w).await, before, "pending is not active");
    // The real holder registers in person: that registration replaces the pending one.
    let office = w.t.office().await;
    let mut body = online(&number, "9666 7777");
    body["channel"] = json!("in-person");
    let r = w.post(&office, "/api/v1/recipients", body).await;
    assert_eq!(r.status, 201, "{}", r.text());
    let active = r.json()["id"].as_str().unwrap().to_owned();
    let r = w
        .get(&office, &format!("/api/v1/recipients/{pending}"))
        .await;
    assert_eq!(r.json()["status"], "withdrawn", "{}", r.text());
    let entries =
        w.t.db
            .connect()
            .await
            .audit_entries(0, 100_000)
            .await
            .unwrap();
    let e = entries
        .iter()
        .rev()
        .find(|e| {
            e.entry.action == "recipient.register"
                && e.entry.recipient.map(|r| r.to_string()) == Some(active.clone())
        })
        .unwrap();
    let named: Vec<String> = e.entry.record_ids.iter().map(|i| i.to_string()).collect();
    assert_eq!(
        named,
        vec![pending.clone()],
        "the replaced registration is named"
    );
    // A second online registration of a registered document answers as any other: the
    // registrant learns nothing, the holder on file is told.
    let r = anonymous_post(&w, "/api/v1/me/registrations", online(&number, "9444 5555")).await;
    assert_eq!(r.status, 202, "{}", r.text());
    assert_eq!(r.json(), json!({"status": "received"}));
    w.t.last_message("+85296667777", "registration-attempt")
        .await;
}

#[tokio::test]
async fn a_parent_registers_a_child_online_and_the_office_verifies_it() {
    let w = world().await;
    let child = hkid("E123456");
    let mut body = online(&child, "9888 1111");
    body["date_of_birth"] = json!("2018-02-03");
    body["sdm"] = json!({"name_en": "LEE Tai Man", "document": {"type": "hkid", "number": hkid("F123456")},
                         "category": "parent", "relationship_proof": "declared online by the parent",
                         "phone": "9888 1111"});
    let r = anonymous_post(&w, "/api/v1/me/registrations", body).await;
    assert_eq!(r.status, 202, "{}", r.text());
    w.t.last_message("+85298881111", "registration-received")
        .await;
    let id = waiting_registration(&w, &child).await;
    let office = w.t.office().await;
    let r = w.get(&office, &format!("/api/v1/recipients/{id}")).await;
    assert_eq!(r.json()["status"], "pending-verification");
    assert_eq!(r.json()["sdms"][0]["category"], "parent");
    let r = w
        .post(
            &office,
            &format!("/api/v1/recipients/{id}/events"),
            json!({"event": "verify"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    // The key goes to the parent, who sets up their own login with it and acts for the child.
    let key = w.t.last_message("+85298881111", "access-key").await["key"]
        .as_str()
        .unwrap()
        .to_owned();
    let parent = log_in(&w, &hkid("F123456"), &key, "+85298881111").await;
    let me = w.get(&parent, "/api/v1/me").await;
    assert_eq!(me.json()["represents"][0]["recipient"], id, "{}", me.text());
}

/// The code last sent to `address` with `template`.
async fn code(w: &World, address: &str, template: &str) -> String {
    w.t.last_message(address, template).await["code"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn a_forgotten_password_takes_the_access_key_and_a_code_to_the_registered_contact() {
    let w = world().await;
    let me = log_in(&w, "A123456(3)", &w.key, "+85291234567").await;

    // A wrong key, an unknown document: the same 401, nothing sent.
    for (number, key) in [("A123456(3)", "00000000"), ("B123456(5)", w.key.as_str())] {
        let r = anonymous_post(
            &w,
            "/api/v1/me/password/reset",
            json!({"document": {"number": number}, "access_key": key}),
        )
        .await;
        assert_eq!(r.status, 401, "{}", r.text());
        assert_eq!(r.json()["code"], "reset-failed");
    }
    let r = anonymous_post(
        &w,
        "/api/v1/me/password/reset",
        json!({"document": {"number": "A123456(3)"}, "access_key": w.key}),
    )
    .await;
    assert_eq!(r.status, 202, "{}", r.text());
    let challenge = r.json()["challenge"].as_str().unwrap().to_owned();
    let sent = code(&w, "+85291234567", "password-code").await;

    // A login's challenge and code do not set a password.
    let r = anonymous_post(
        &w,
        "/api/v1/me/login",
        json!({"document": {"number": "A123456(3)"}, "password": "Patient-2026"}),
    )
    .await;
    let login_challenge = r.json()["challenge"].as_str().unwrap().to_owned();
    let login_code = code(&w, "+85291234567", "login-code").await;
    let r = anonymous_post(
        &w,
        "/api/v1/me/password",
        json!({"challenge": login_challenge, "code": login_code, "password": "Brand-New-2026"}),
    )
    .await;
    assert_eq!(r.status, 401, "{}", r.text());
    // Nor does a password code log in.
    let r = anonymous_post(
        &w,
        "/api/v1/me/login/verify",
        json!({"challenge": challenge, "code": sent}),
    )
    .await;
    assert_eq!(r.status, 401, "{}", r.text());

    // The rules apply to the new password; then it is set, and the other session ends.
    let r = anonymous_post(
        &w,
        "/api/v1/me/password",
        json!({"challenge": challenge, "code": sent, "password": "short"}),
    )
    .await;
    assert_eq!(r.status, 422, "{}", r.text());
    let r = anonymous_post(
        &w,
        "/api/v1/me/password",
        json!({"challenge": challenge, "code": sent, "password": "Brand-New-2026"}),
    )
    .await;
    assert_eq!(r.status, 204, "{}", r.text());
    w.t.last_message("+85291234567", "password-changed").await;
    let r = w.get(&me, "/api/v1/me").await;
    assert_eq!(r.status, 401, "the old session ended: {}", r.text());
    // The code was used.
    let r = anonymous_post(
        &w,
        "/api/v1/me/password",
        json!({"challenge": challenge, "code": sent, "password": "Other-New-2026"}),
    )
    .await;
    assert_eq!(r.status, 401, "{}", r.text());
    // The new password logs in; the old one does not.
    let r = anonymous_post(
        &w,
        "/api/v1/me/login",
        json!({"document": {"number": "A123456(3)"}, "password": "Patient-2026"}),
    )
    .await;
    assert_eq!(r.status, 401);
    let r = anonymous_post(
        &w,
        "/api/v1/me/login",
        json!({"document": {"number": "A123456(3)"}, "password": "Brand-New-2026"}),
    )
    .await;
    assert_eq!(r.status, 202, "{}", r.text());
}

#[tokio::test]
async fn a_new_contact_is_confirmed_by_a_code_sent_to_it_and_the_old_one_is_told() {
    let w = world().await;
    let me = log_in(&w, "A123456(3)", &w.key, "+85291234567").await;
    let path = format!("/api/v1/me/recipients/{}/contact", w.recipient);

    let r = w
        .post(&me, &path, json!({"kind": "phone", "value": "12"}))
        .await;
    assert_eq!(r.status, 422, "{}", r.text());
    assert_eq!(r.json()["code"], "invalid-phone");
    let r = w
        .post(&me, &path, json!({"kind": "fax", "value": "9123 4567"}))
        .await;
    assert_eq!(r.status, 422);
    let r = w
        .post(&me, &path, json!({"kind": "phone", "value": "9123 4567"}))
        .await;
    assert_eq!(r.status, 422, "{}", r.text());
    assert_eq!(r.json()["code"], "same-contact");
    let r = w
        .post(&me, &path, json!({"kind": "phone", "value": "6777 8888"}))
        .await;
    assert_eq!(r.status, 202, "{}", r.text());
    let challenge = r.json()["challenge"].as_str().unwrap().to_owned();
    let sent = code(&w, "+85267778888", "contact-code").await;
    // The number on file confirms it too: a session someone else took cannot move the codes.
    let current = code(&w, "+85291234567", "contact-confirm-code").await;

    // A wrong code changes nothing.
    let r = w
        .post(
            &me,
            &format!("{path}/verify"),
            json!({"challenge": challenge, "code": "000000", "current_code": current}),
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.text());
    assert_eq!(r.json()["code"], "code-refused");
    let prefs = w
        .get(
            &me,
            &format!("/api/v1/me/recipients/{}/preferences", w.recipient),
        )
        .await;
    assert_eq!(prefs.json()["phone"], "+85291234567");
    // Another recipient's path with this challenge: not theirs.
    let r = w
        .post(
            &me,
            &format!(
                "/api/v1/me/recipients/{}/contact/verify",
                uuid::Uuid::now_v7()
            ),
            json!({"challenge": challenge, "code": sent, "current_code": current}),
        )
        .await;
    assert_eq!(r.status, 404, "{}", r.text());

    // The new contact's code alone is not enough.
    let r = w
        .post(
            &me,
            &format!("{path}/verify"),
            json!({"challenge": challenge, "code": sent, "current_code": "000000"}),
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.text());
    let r = w
        .post(
            &me,
            &format!("{path}/verify"),
            json!({"challenge": challenge, "code": sent, "current_code": current}),
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.text());
    let prefs = w
        .get(
            &me,
            &format!("/api/v1/me/recipients/{}/preferences", w.recipient),
        )
        .await;
    assert_eq!(prefs.json()["phone"], "+85267778888");
    w.t.last_message("+85291234567", "contact-changed").await;
    w.t.last_message("+85267778888", "contact-changed").await;
    // Used once.
    let r = w
        .post(
            &me,
            &format!("{path}/verify"),
            json!({"challenge": challenge, "code": sent, "current_code": current}),
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.text());
    // The next login code goes to the new number.
    let again: Agent = sign_in(&w, json!({"number": "A123456(3)"}), "+85267778888").await;
    assert_eq!(w.get(&again, "/api/v1/me").await.status, 200);
    // A staff session cannot use it.
    let r = w
        .post(
            &w.doctor,
            &path,
            json!({"kind": "phone", "value": "6777 9999"}),
        )
        .await;
    assert_eq!(r.status, 404, "{}", r.text());
}

#[tokio::test]
async fn guesses_sent_at_once_cannot_pass_the_five_tries_of_a_code() {
    let w = world().await;
    let _ = log_in(&w, "A123456(3)", &w.key, "+85291234567").await;
    let r = anonymous_post(
        &w,
        "/api/v1/me/password/reset",
        json!({"document": {"number": "A123456(3)"}, "access_key": w.key}),
    )
    .await;
    assert_eq!(r.status, 202, "{}", r.text());
    let challenge = r.json()["challenge"].as_str().unwrap().to_owned();
    let right = code(&w, "+85291234567", "password-code").await;
    // Eight wrong guesses at once: however they interleave, five tries is all there is.
    let guesses = (0..8).map(|i| {
        let body = json!({"challenge": challenge, "code": format!("{:06}", (right.parse::<u32>().unwrap() + 1 + i) % 1_000_000), "password": "Brand-New-2026"});
        let t = &w.t;
        async move {
            t.send_json(None, Request::post("/api/v1/me/password"), &body)
                .await
        }
    });
    let mut set = Vec::new();
    for g in guesses {
        set.push(g);
    }
    let answers = futures_join(set).await;
    assert!(answers.iter().all(|r| r.status == 401));
    let stored =
        w.t.db
            .connect()
            .await
            .challenge(challenge.parse().unwrap())
            .await
            .unwrap()
            .unwrap();
    assert_eq!(stored.attempts, 5, "no try counted past the limit");
    let r = anonymous_post(
        &w,
        "/api/v1/me/password",
        json!({"challenge": challenge, "code": right, "password": "Brand-New-2026"}),
    )
    .await;
    assert_eq!(r.status, 401, "the tries are spent: {}", r.text());
}

/// Runs the futures concurrently on this task (the test's requests interleave at each await).
async fn futures_join<F: std::future::Future>(futures: Vec<F>) -> Vec<F::Output> {
    let mut pinned: Vec<std::pin::Pin<Box<F>>> = futures.into_iter().map(Box::pin).collect();
    let mut out: Vec<Option<F::Output>> = (0..pinned.len()).map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (i, f) in pinned.iter_mut().enumerate() {
            if out[i].is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => out[i] = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    out.into_iter().map(|v| v.expect("done")).collect()
}
