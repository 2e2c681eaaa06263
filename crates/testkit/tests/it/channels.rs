//! Notices by the person's channel (issue 26, item 3; SPEC 3.10): the portal's inbox kept in
//! the database and read through `/api/v1/me`, letters in the office's print queue, the SDM's
//! own channel, registration changes by channel, and access notices that cannot be turned off
//! where a restricted item was unlocked.

use ehrshare_app::duty::Scope;
use serde_json::{Value, json};

use crate::world::{World, condition, log_in, register, world};

async fn consent_by_key(w: &World, recipient: &str, key: &str) {
    let body = if w.t.app.settings().regime.consents_are_typed() {
        json!({"method": "access-key", "access_key": key, "kind": "indefinite"})
    } else {
        json!({"method": "access-key", "access_key": key})
    };
    let r = w
        .post(
            &w.clerk,
            &format!("/api/v1/recipients/{recipient}/consents"),
            body,
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
}

#[tokio::test]
async fn notices_by_app_wait_in_the_inbox_that_only_the_recipient_reads() {
    let w = world().await;
    let id = register(
        &w,
        "C123456(9)",
        "6000 1111",
        json!({"notify_channel": "app"}),
    )
    .await;
    // The access key cannot wait in the inbox it opens: it went by SMS.
    let key = w.t.last_message("+85260001111", "access-key").await["key"]
        .as_str()
        .unwrap()
        .to_owned();
    consent_by_key(&w, &id, &key).await;

    // Nothing of it is in the delivery queue: the worker has nothing to send.
    let db = w.t.db.connect().await;
    let queued = db.outbox_for_recipient(id.parse().unwrap()).await.unwrap();
    assert!(
        queued.iter().all(|m| m.message.channel != "app"),
        "{queued:?}"
    );
    w.t.app.deliver_due().await.unwrap();

    let patient = log_in(&w, "C123456(9)", &key, "+85260001111").await;
    let inbox = format!("/api/v1/me/recipients/{id}/inbox");
    let r = w.get(&patient, &inbox).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let notices = r.json().as_array().unwrap().clone();
    assert_eq!(notices.len(), 1, "{notices:?}");
    let n = &notices[0];
    assert_eq!(n["kind"], "consent-changed");
    assert_eq!(n["language"], "zh-HK");
    assert!(n["body"].as_str().unwrap().contains("Clinic A"), "{n}");
    assert!(n["read_at"].is_null());
    let message = n["id"].as_str().unwrap().to_owned();

    // Another recipient's login cannot read it or mark it, by either path.
    let other = w.patient().await;
    assert_eq!(w.get(&other, &inbox).await.status, 404);
    let r = w
        .post(&other, &format!("{inbox}/{message}/read"), Value::Null)
        .await;
    assert_eq!(r.status, 404);
    let r = w
        .post(
            &other,
            &format!("/api/v1/me/recipients/{}/inbox/{message}/read", w.recipient),
            Value::Null,
        )
        .await;
    assert_eq!(r.status, 404, "not a message of that recipient");
    // Nor can a professional.
    assert_eq!(w.get(&w.doctor, &inbox).await.status, 404);

    let r = w
        .post(&patient, &format!("{inbox}/{message}/read"), Value::Null)
        .await;
    assert_eq!(r.status, 204, "{}", r.text());
    let first = w.get(&patient, &inbox).await.json()[0]["read_at"].clone();
    assert!(first.is_string(), "{first}");
    w.t.clock.advance(time::Duration::minutes(5));
    w.post(&patient, &format!("{inbox}/{message}/read"), Value::Null)
        .await;
    assert_eq!(
        w.get(&patient, &inbox).await.json()[0]["read_at"],
        first,
        "the first reading is kept"
    );
    // Paging: nothing older than the only message.
    let r = w.get(&patient, &format!("{inbox}?before={message}")).await;
    assert_eq!(r.json().as_array().unwrap().len(), 0);
    let r = w.get(&patient, &format!("{inbox}?page=2")).await;
    assert_eq!(r.status, 400, "an unknown parameter is named, not ignored");
}

#[tokio::test]
async fn letters_wait_in_the_print_queue_for_a_registration_officer() {
    let w = world().await;
    let address = "Flat 3A, 12 Nathan Road, Tsim Sha Tsui, Kowloon";
    let id = register(
        &w,
        "D123456(1)",
        "6000 2222",
        json!({"notify_channel": "post", "address": address}),
    )
    .await;
    // The worker does not send letters; they wait for the office.
    w.t.app.deliver_due().await.unwrap();

    let officer = w.t.office().await;
    let r = w.get(&officer, "/api/v1/office/print-queue").await;
    assert_eq!(r.status, 200, "{}", r.text());
    // Listed without address or words: only the letter opened to print shows them.
    assert!(!r.text().contains("Nathan Road"), "{}", r.text());
    let letters: Vec<Value> = r
        .json()
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["kind"] == "access-key")
        .cloned()
        .collect();
    assert_eq!(letters.len(), 1, "{letters:?}");
    let letter_id = letters[0]["id"].as_str().unwrap().to_owned();
    let r = w
        .get(&officer, &format!("/api/v1/office/print-queue/{letter_id}"))
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let letter = r.json();
    assert_eq!(letter["recipient"], id.as_str());
    assert_eq!(letter["address"], address);
    assert!(
        letter["body"].as_str().unwrap().contains("授權號碼"),
        "{letter}"
    );
    // Opening it is in the recipient's own log.
    let entry = w.last_entry().await.entry;
    assert_eq!(entry.action, "print-queue.open");
    assert_eq!(entry.recipient, Some(id.parse().unwrap()));

    // Not for the office's other roles, nor for providers.
    let privacy =
        w.t.agent(Scope::Office, "office.privacy", "privacy-officer", false)
            .await;
    let printed = format!("/api/v1/office/print-queue/{letter_id}/printed");
    for agent in [&privacy, &w.ua, &w.doctor] {
        assert_eq!(w.get(agent, "/api/v1/office/print-queue").await.status, 404);
        assert_eq!(
            w.get(agent, &format!("/api/v1/office/print-queue/{letter_id}"))
                .await
                .status,
            404
        );
        assert_eq!(w.post(agent, &printed, Value::Null).await.status, 404);
    }
    // A message that is not a letter is not in the queue.
    let db = w.t.db.connect().await;
    let sms = db.outbox_to("+85291234567").await.unwrap()[0].message.id;
    let r = w
        .post(
            &officer,
            &format!("/api/v1/office/print-queue/{sms}/printed"),
            Value::Null,
        )
        .await;
    assert_eq!(r.status, 404);

    let r = w.post(&officer, &printed, Value::Null).await;
    assert_eq!(r.status, 204, "{}", r.text());
    let entry = w.last_entry().await.entry;
    assert_eq!(entry.action, "print-queue.printed");
    assert_eq!(entry.recipient, Some(id.parse().unwrap()));
    let r = w.post(&officer, &printed, Value::Null).await;
    assert_eq!(r.status, 409);
    assert_eq!(r.json()["code"], "already-printed");
    let r = w.get(&officer, "/api/v1/office/print-queue").await;
    assert!(!r.text().contains(&letter_id));
    let r = w
        .get(&officer, &format!("/api/v1/office/print-queue/{letter_id}"))
        .await;
    assert_eq!(r.status, 404, "out of the queue");
    // The key is not kept once the letter is out.
    let stored = db
        .outbox_message(letter_id.parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.status, "delivered");
    assert_eq!(stored.message.params, json!({}));
}

#[tokio::test]
async fn a_registration_change_goes_by_the_recipients_channel() {
    let w = world().await;
    let id = register(
        &w,
        "E123456(4)",
        "6000 3333",
        json!({"notify_channel": "email", "email": "ho@example.org"}),
    )
    .await;
    let office = w.t.office().await;
    let r = w
        .post(
            &office,
            &format!("/api/v1/recipients/{id}/events"),
            json!({"event": "suspend", "reason": "document under review"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let params =
        w.t.last_message("ho@example.org", "registration-changed")
            .await;
    assert_eq!(params["status"], "suspended");
    let db = w.t.db.connect().await;
    assert!(
        db.outbox_to("+85260003333")
            .await
            .unwrap()
            .iter()
            .all(|m| m.message.template != "registration-changed"),
        "not by SMS"
    );

    // Chosen the portal's inbox: a suspension could shut the portal, so it goes by SMS.
    let app_user = register(
        &w,
        "C123456(9)",
        "6000 5555",
        json!({"notify_channel": "app"}),
    )
    .await;
    let r = w
        .post(
            &office,
            &format!("/api/v1/recipients/{app_user}/events"),
            json!({"event": "suspend", "reason": "document under review"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let params =
        w.t.last_message("+85260005555", "registration-changed")
            .await;
    assert_eq!(params["status"], "suspended");
    assert!(
        db.inbox(app_user.parse().unwrap(), None, 10)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn a_restricted_access_is_notified_to_a_recipient_who_turned_notices_off() {
    let w = world().await;
    let phone = "+85260004444";
    let id = register(
        &w,
        "K654321(9)",
        "6000 4444",
        json!({"notify_channel": "sms", "refuses_access_notices": true}),
    )
    .await;
    let key = w.t.last_message(phone, "access-key").await["key"]
        .as_str()
        .unwrap()
        .to_owned();
    consent_by_key(&w, &id, &key).await;
    let r = w
        .post(
            &w.clerk,
            &format!("/api/v1/recipients/{id}/episodes"),
            json!({"kind": "attendance"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let mut dx = condition("dx-quiet");
    dx["subject"]["identifier"]["value"] = json!("K6543219");
    let r = w
        .post(&w.doctor, &format!("/api/v1/recipients/{id}/records"), dx)
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let notices = || async {
        w.t.db
            .connect()
            .await
            .outbox_to(phone)
            .await
            .unwrap()
            .iter()
            .filter(|m| m.message.template == "access-notice")
            .count()
    };
    // An ordinary read: no notice, as chosen.
    let summary = format!("/api/v1/recipients/{id}/summary");
    assert_eq!(w.get(&w.doctor, &summary).await.status, 200);
    assert_eq!(notices().await, 0);

    // The recipient restricts their diagnoses; the doctor unlocks them with the code.
    let patient = log_in(&w, "K654321(9)", &key, phone).await;
    let r = w
        .post(
            &patient,
            &format!("/api/v1/me/recipients/{id}/restrictions"),
            json!({"domain": "diagnosis"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let unlock = format!("/api/v1/recipients/{id}/unlock");
    let r = w
        .post(&w.doctor, &unlock, json!({"reason": "allergy check"}))
        .await;
    assert_eq!(r.status, 202, "{}", r.text());
    let challenge = r.json()["challenge"].as_str().unwrap().to_owned();
    let code = w.t.last_message(phone, "one-time-password").await["code"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = w
        .post(
            &w.doctor,
            &format!("{unlock}/confirm"),
            json!({"challenge": challenge, "code": code}),
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.text());
    let r = w.get(&w.doctor, &summary).await;
    assert!(r.text().contains("J45"), "{}", r.text());
    assert_eq!(notices().await, 1, "a restricted access is always notified");
}
