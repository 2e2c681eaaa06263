//! One's own record through `/api/v1/me` (issue 27, item 2; basis `self`), under both consent
//! regimes: every domain, the records of providers the patient never consented to (or
//! consented to and revoked) and their own restricted items included, each with its
//! provider, its own clinical date and its versions; the read in the patient's own log as
//! `self`; the whole record as a FHIR Bundle. A parent reads a child's record until the
//! child's sixteenth birthday (Hong Kong time), to the second, and is refused from then on.
//! Nobody else, and no staff session, reads anything: 404.

use ehrshare_core::clock::Clock;
use serde_json::{Value, json};
use time::Duration;

use crate::world::{
    both_regimes, condition, log_in, log_in_with, medication, note, register, sign_in, with_kind,
    world,
};

fn dated_condition(id: &str, date: &str) -> Value {
    let mut c = condition(id);
    c["recordedDate"] = json!(date);
    c
}

fn records_of(view: &Value, domain: &str) -> Vec<Value> {
    view["domains"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["domain"] == domain)
        .unwrap_or_else(|| panic!("no {domain}: {view}"))["records"]
        .as_array()
        .unwrap()
        .clone()
}

async fn a_patient_reads_every_domain_of_their_own_record_as_self() {
    let w = world().await;
    assert_eq!(w.consent("indefinite").await.status, 201);
    assert_eq!(w.episode().await.status, 201);
    let r = w.deposit(dated_condition("dx-own", "2025-12-01")).await;
    assert_eq!(r.status, 201, "{}", r.text());
    let dx = r.json()["id"].as_str().unwrap().to_owned();
    // A second version of it.
    let r = w.deposit(dated_condition("dx-own", "2025-12-02")).await;
    assert_eq!(r.json()["version"], 2, "{}", r.text());
    assert_eq!(w.deposit(note("note-own")).await.status, 201);

    // Clinic B deposits under a consent the patient then revokes.
    let office = w.t.office().await;
    let b = w.other_doctor_hcp().await;
    let r = w
        .post(
            &office,
            &format!("/api/v1/office/recipients/{}/consents", w.recipient),
            with_kind(json!({"hcp": b, "call_ref": "CALL-B"}), "indefinite"),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let r = w
        .post(
            &w.other_doctor,
            &format!("/api/v1/recipients/{}/episodes", w.recipient),
            json!({"kind": "attendance"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let r = w
        .post(
            &w.other_doctor,
            &format!("/api/v1/recipients/{}/records", w.recipient),
            dated_condition("dx-b", "2024-03-04"),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let patient = w.patient().await;
    let r =
        w.t.send_json(
            Some(&patient),
            axum::http::Request::delete(format!(
                "/api/v1/me/recipients/{}/consents/{b}",
                w.recipient
            )),
            &Value::Null,
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.text());
    // And restricts the clinical notes, against providers.
    let r = w
        .post(
            &patient,
            &format!("/api/v1/me/recipients/{}/restrictions", w.recipient),
            json!({"domain": "clinical-note"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());

    let own = format!("/api/v1/me/recipients/{}/record", w.recipient);
    let r = w.get(&patient, &own).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("cache-control"), "no-store");
    let view = r.json();
    assert_eq!(view["domains"].as_array().unwrap().len(), 15, "{view}");
    let diagnoses = records_of(&view, "diagnosis");
    assert_eq!(diagnoses.len(), 2, "{diagnoses:?}");
    let mine = diagnoses.iter().find(|d| d["id"] == dx.as_str()).unwrap();
    assert_eq!(mine["provider_en"], "Clinic A");
    assert_eq!(
        mine["clinical_date"], "2025-12-02",
        "the resource's own date"
    );
    assert_eq!(mine["headline"], "Asthma");
    assert_eq!(mine["version"], 2);
    assert!(
        diagnoses.iter().any(|d| d["provider_en"] == "Clinic B"),
        "a provider no longer consented to: {diagnoses:?}"
    );
    assert_eq!(
        records_of(&view, "clinical-note").len(),
        1,
        "own restricted items"
    );
    // In the patient's own log, as `self`.
    let e = w.last_entry().await.entry;
    assert_eq!(e.action, "record.summary");
    assert_eq!(e.reason.as_deref(), Some("self"));
    assert_eq!(e.disclosed.as_ref().map(|d| d.count()), Some(3));
    assert!(e.record_ids.is_empty(), "named by reference");
    let log = w
        .get(
            &patient,
            &format!("/api/v1/me/recipients/{}/access-log", w.recipient),
        )
        .await
        .json();
    assert!(
        log.as_array()
            .unwrap()
            .iter()
            .any(|l| l["action"] == "record.summary" && l["reason"] == "self"),
        "{log}"
    );

    // One record with its versions, newest first.
    let r = w
        .get(
            &patient,
            &format!("/api/v1/me/recipients/{}/records/{dx}", w.recipient),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let detail = r.json();
    assert_eq!(detail["versions"].as_array().unwrap().len(), 2);
    assert_eq!(detail["versions"][0]["version"], 2);
    assert_eq!(
        detail["versions"][1]["resource"]["recordedDate"],
        "2025-12-01"
    );
    assert_eq!(detail["clinician"]["role"], "doctor", "{detail}");

    // The whole record to keep, as FHIR.
    let r = w
        .get(
            &patient,
            &format!("/api/v1/me/recipients/{}/record/bundle", w.recipient),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("content-type"), "application/fhir+json");
    let bundle = r.json();
    assert_eq!(bundle["resourceType"], "Bundle");
    assert_eq!(bundle["type"], "collection");
    assert_eq!(bundle["entry"].as_array().unwrap().len(), 3);

    // Nobody else: a professional's session, another patient, another recipient's record.
    assert_eq!(w.get(&w.doctor, &own).await.status, 404);
    let other = register(
        &w,
        "C123456(9)",
        "6000 7777",
        json!({"notify_channel": "sms"}),
    )
    .await;
    let key = w.t.last_message("+85260007777", "access-key").await["key"]
        .as_str()
        .unwrap()
        .to_owned();
    let stranger = log_in(&w, "C123456(9)", &key, "+85260007777").await;
    let before = w.audit_count().await;
    for path in [
        own.clone(),
        format!("/api/v1/me/recipients/{}/records/{dx}", w.recipient),
        format!("/api/v1/me/recipients/{}/record/bundle", w.recipient),
    ] {
        let r = w.get(&stranger, &path).await;
        assert_eq!(r.status, 404, "{path}: {}", r.text());
    }
    assert_eq!(
        w.audit_count().await,
        before,
        "nothing read, nothing to log"
    );
    let r = w
        .get(
            &stranger,
            &format!("/api/v1/me/recipients/{other}/records/{dx}"),
        )
        .await;
    assert_eq!(r.status, 404, "not a record of theirs");
    assert_eq!(
        w.last_entry().await.entry.denial_reason.as_deref(),
        Some("not-found")
    );
}

both_regimes!(a_patient_reads_every_domain_of_their_own_record_as_self);

#[tokio::test]
async fn a_parent_reads_the_childs_record_until_the_sixteenth_birthday() {
    let w = world().await;
    let office = w.t.office().await;
    let parent_doc = json!({"type": "passport", "issuer": "GB", "number": "123456789"});
    let r = w
        .post(
            &office,
            "/api/v1/recipients",
            json!({"channel": "in-person", "name_en": "WONG Siu Ming",
                "date_of_birth": "2010-01-20", "sex": "male",
                "document": {"type": "hkid", "number": "D123456(1)"},
                "phone": "6100 0000", "language": "en", "notify_channel": "sms",
                "sdm": {"name_en": "WONG Tai Man", "document": parent_doc,
                        "category": "parent", "relationship_proof": "birth certificate",
                        "phone": "6100 0001", "notify_channel": "sms"}}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let child = r.json()["id"].as_str().unwrap().to_owned();
    let key = w.t.last_message("+85261000001", "access-key").await["key"]
        .as_str()
        .unwrap()
        .to_owned();
    let parent = log_in_with(&w, parent_doc.clone(), &key, "+85261000001").await;
    // The portal's home names whom the parent acts for, and when that ends (item 7).
    let home =
        w.t.send(ehrshare_testkit::page_get(&parent, "/me?lang=en"))
            .await;
    assert_eq!(home.status, 200, "{}", home.text());
    assert!(home.text().contains("WONG Siu Ming"), "{}", home.text());
    assert!(
        home.text().contains("ends on 2026-01-20"),
        "{}",
        home.text()
    );
    assert!(home.text().contains(&format!("/me/{child}/record")));
    let own = format!("/api/v1/me/recipients/{child}/record");
    let r = w.get(&parent, &own).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let e = w.last_entry().await.entry;
    assert_eq!(e.reason.as_deref(), Some("self"));
    assert!(e.sdm.is_some(), "read by the SDM, named");

    // The sixteenth birthday begins at midnight in Hong Kong: 2026-01-19 16:00 UTC.
    let birthday = time::macros::datetime!(2026-01-19 16:00 UTC);
    // Thirty days before, the parent and the child are told, once (the worker's pass).
    w.t.clock.set(birthday - Duration::days(31));
    assert_eq!(w.t.app.notify_sdm_endings().await.unwrap(), 0, "not yet");
    w.t.clock.set(birthday - Duration::days(20));
    assert_eq!(w.t.app.notify_sdm_endings().await.unwrap(), 1);
    assert_eq!(
        w.t.last_message("+85261000001", "sdm-ending").await["date"],
        "2026-01-20"
    );
    assert_eq!(
        w.t.last_message("+85261000000", "takeover").await["date"],
        "2026-01-20"
    );
    assert_eq!(w.t.app.notify_sdm_endings().await.unwrap(), 0, "once");
    w.t.clock.set(birthday - Duration::seconds(1));
    let parent = sign_in(&w, parent_doc.clone(), "+85261000001").await;
    assert_eq!(w.t.clock.now(), birthday - Duration::seconds(1));
    assert_eq!(w.get(&parent, &own).await.status, 200);
    w.t.clock.set(birthday);
    let r = w.get(&parent, &own).await;
    assert_eq!(r.status, 403, "{}", r.text());
    assert_eq!(r.json()["code"], "sdm-authority-ended");
    let e = w.last_entry().await.entry;
    assert_eq!(e.denial_reason.as_deref(), Some("sdm-authority-ended"));
    // Everywhere, and audited: the young adult's log shows each attempt. A record id is
    // refused the same whether it is theirs or not.
    for path in [
        format!("/api/v1/me/recipients/{child}/access-key"),
        format!("/api/v1/me/recipients/{child}/preferences"),
        format!("/api/v1/me/recipients/{child}/sharing"),
        format!(
            "/api/v1/me/recipients/{child}/records/{}",
            uuid::Uuid::now_v7()
        ),
        format!("/api/v1/me/recipients/{child}/access-log"),
        format!("/api/v1/me/recipients/{child}/inbox"),
        format!("/api/v1/me/recipients/{child}/reports"),
        format!("/api/v1/me/recipients/{child}/record/bundle"),
    ] {
        let before = w.audit_count().await;
        let r = w.get(&parent, &path).await;
        assert_eq!(r.status, 403, "{path}: {}", r.text());
        assert_eq!(r.json()["code"], "sdm-authority-ended");
        assert_eq!(w.audit_count().await, before + 1, "{path}");
    }
    // Changes too: a consent, a restriction, a new contact.
    for (path, body) in [
        (
            format!("/api/v1/me/recipients/{child}/restrictions"),
            json!({"domain": "allergy"}),
        ),
        (
            format!("/api/v1/me/recipients/{child}/contact"),
            json!({"kind": "phone", "value": "6100 0009"}),
        ),
    ] {
        let r = w.post(&parent, &path, body).await;
        assert_eq!(r.status, 403, "{path}: {}", r.text());
        assert_eq!(r.json()["code"], "sdm-authority-ended");
    }

    // The young adult takes over: the office issues a new key, sent to them now (no SDM
    // acts), and they set up their own login with their own document.
    let office = w.t.office().await;
    let r = w
        .post(
            &office,
            &format!("/api/v1/recipients/{child}/access-key"),
            json!({}),
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.text());
    let key = w.t.last_message("+85261000000", "access-key").await["key"]
        .as_str()
        .unwrap()
        .to_owned();
    let me = log_in_with(&w, json!({"number": "D123456(1)"}), &key, "+85261000000").await;
    let r = w.get(&me, &own).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = w.get(&me, "/api/v1/me").await;
    assert_eq!(r.json()["recipient"], child.as_str());
    assert_eq!(r.json()["represents"], json!([]));
}

async fn who_can_see_me_lists_what_the_decision_allows_and_a_revoke_is_the_next_answer() {
    let w = world().await;
    let (public, _) =
        w.t.active_provider_in("Tuen Mun Hospital", "p", "public")
            .await;
    assert_eq!(w.consent("one-year").await.status, 201);
    assert_eq!(w.episode().await.status, 201);
    let patient = w.patient().await;
    let sharing = format!("/api/v1/me/recipients/{}/sharing", w.recipient);
    let r = w.get(&patient, &sharing).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("cache-control"), "no-store");
    let view = r.json();
    let consents = view["consents"].as_array().unwrap();
    assert_eq!(consents.len(), 1, "{view}");
    assert_eq!(consents[0]["provider"]["hcp"], w.hcp.as_str());
    assert_eq!(consents[0]["provider"]["name_en"], "Clinic A");
    assert_eq!(consents[0]["method"], "access-key");
    assert_eq!(consents[0]["kind"], crate::world::stored_kind("one-year"));
    assert_eq!(
        consents[0]["expires_at"].is_string(),
        crate::world::regime().consents_are_typed(),
        "a one-year consent ends; under 2025 none does: {view}"
    );
    assert_eq!(view["episodes"][0]["provider"]["hcp"], w.hcp.as_str());
    assert!(view["episodes"][0]["ends_at"].is_string());
    assert!(
        view["deemed_consent"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["hcp"] == public.as_str()),
        "{view}"
    );
    assert!(view["unlocks"].as_array().unwrap().is_empty());

    // One tap: revoked, and the provider's very next request is refused.
    assert_eq!(w.summary(&w.doctor).await.status, 200);
    let r =
        w.t.send_json(
            Some(&patient),
            axum::http::Request::delete(format!(
                "/api/v1/me/recipients/{}/consents/{}",
                w.recipient, w.hcp
            )),
            &Value::Null,
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.text());
    let r = w.summary(&w.doctor).await;
    assert_eq!(r.status, 403, "{}", r.text());
    assert_eq!(r.json()["code"], "consent-required");
    let view = w.get(&patient, &sharing).await.json();
    assert!(view["consents"].as_array().unwrap().is_empty(), "{view}");

    // Nobody else.
    assert_eq!(w.get(&w.doctor, &sharing).await.status, 404);
    assert_eq!(w.get(&w.ua, &sharing).await.status, 404);
}

both_regimes!(who_can_see_me_lists_what_the_decision_allows_and_a_revoke_is_the_next_answer);

#[tokio::test]
async fn the_owner_sees_when_the_access_key_was_issued_and_has_a_new_one_sent() {
    let w = world().await;
    let patient = w.patient().await;
    let path = format!("/api/v1/me/recipients/{}/access-key", w.recipient);
    let r = w.get(&patient, &path).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let state = r.json();
    assert!(state["issued_at"].is_string(), "{state}");
    assert_eq!(state["locked"], false);
    assert!(!r.text().contains(&w.key), "the key itself is never shown");

    // Once a minute at most: each costs a message.
    w.t.clock.advance(Duration::seconds(61));
    let patient = crate::world::sign_in(&w, json!({"number": "A123456(3)"}), "+85291234567").await;
    let r = w.post(&patient, &path, Value::Null).await;
    assert_eq!(r.status, 202, "{}", r.text());
    assert!(!r.text().contains(&w.key));
    let r = w.post(&patient, &path, Value::Null).await;
    assert_eq!(r.status, 429, "{}", r.text());
    assert_eq!(r.json()["code"], "access-key-just-issued");
    assert!(!r.header("retry-after").is_empty());

    // The new key went by the recipient's channel; the old one no longer works.
    let fresh = w.t.last_message("+85291234567", "access-key").await["key"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(fresh, w.key);
    let consent = |key: String| {
        let body = with_kind(
            json!({"method": "access-key", "access_key": key}),
            "indefinite",
        );
        let path = format!("/api/v1/recipients/{}/consents", w.recipient);
        let clerk = &w.clerk;
        let w = &w;
        async move { w.post(clerk, &path, body).await }
    };
    let r = consent(w.key.clone()).await;
    assert_eq!(r.status, 422, "{}", r.text());
    assert_eq!(r.json()["code"], "wrong-access-key");
    assert_eq!(consent(fresh).await.status, 201);
    let e = w.last_entry().await.entry;
    assert_eq!(e.action, "consent.give");

    // Two asks at once a minute later: one key is sent, the other refused.
    w.t.clock.advance(Duration::seconds(61));
    let patient = crate::world::sign_in(&w, json!({"number": "A123456(3)"}), "+85291234567").await;
    let sent_before =
        w.t.db
            .connect()
            .await
            .outbox_to("+85291234567")
            .await
            .unwrap()
            .iter()
            .filter(|m| m.message.template == "access-key")
            .count();
    let (a, b) = tokio::join!(
        w.post(&patient, &path, Value::Null),
        w.post(&patient, &path, Value::Null)
    );
    let mut statuses = [a.status.as_u16(), b.status.as_u16()];
    statuses.sort_unstable();
    assert_eq!(statuses, [202, 429], "{} / {}", a.text(), b.text());
    let sent_after =
        w.t.db
            .connect()
            .await
            .outbox_to("+85291234567")
            .await
            .unwrap()
            .iter()
            .filter(|m| m.message.template == "access-key")
            .count();
    assert_eq!(sent_after, sent_before + 1, "one key sent");

    // Nobody else: a professional, or anyone for another recipient.
    assert_eq!(w.get(&w.doctor, &path).await.status, 404);
    assert_eq!(w.post(&w.clerk, &path, Value::Null).await.status, 404);
}

#[tokio::test]
async fn the_owner_chooses_how_notices_come_and_is_told_by_the_old_and_new_channel() {
    let w = world().await;
    let patient = w.patient().await;
    let path = format!("/api/v1/me/recipients/{}/preferences", w.recipient);
    let r = w.get(&patient, &path).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["notify_channel"], "sms");
    assert_eq!(r.json()["language"], "zh-HK");

    // Refused by name, nothing changed: a channel with nothing on file, unknown codes,
    // unknown fields.
    let before = w.audit_count().await;
    for (body, field, code) in [
        (
            json!({"notify_channel": "email", "language": "en", "refuses_access_notices": false}),
            "/notify_channel",
            "channel-unreachable",
        ),
        (
            json!({"notify_channel": "post", "language": "en", "refuses_access_notices": false}),
            "/notify_channel",
            "channel-unreachable",
        ),
        (
            json!({"notify_channel": "fax", "language": "en", "refuses_access_notices": false}),
            "/notify_channel",
            "invalid-channel",
        ),
        (
            json!({"notify_channel": "app", "language": "fr", "refuses_access_notices": false}),
            "/language",
            "invalid-language",
        ),
    ] {
        let r =
            w.t.send_json(Some(&patient), axum::http::Request::put(&path), &body)
                .await;
        assert_eq!(r.status, 422, "{body}: {}", r.text());
        assert_eq!(r.json()["code"], code);
        assert_eq!(r.json()["errors"][0]["field"], field);
    }
    let r = w
        .t
        .send_json(
            Some(&patient),
            axum::http::Request::put(&path),
            &json!({"notify_channel": "app", "language": "en", "refuses_access_notices": false, "phone": "1"}),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(
        w.audit_count().await,
        before,
        "nothing done, nothing logged"
    );

    // To the portal's inbox, in English, ordinary access notices off.
    let r =
        w.t.send_json(
            Some(&patient),
            axum::http::Request::put(&path),
            &json!({"notify_channel": "app", "language": "en", "refuses_access_notices": true}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(w.last_entry().await.entry.action, "recipient.preferences");
    // Told by the old channel (SMS, in the old language) and the new (the inbox, English).
    let told =
        w.t.last_message("+85291234567", "preferences-changed")
            .await;
    assert!(told.is_object());
    let inbox = w
        .get(
            &patient,
            &format!("/api/v1/me/recipients/{}/inbox", w.recipient),
        )
        .await
        .json();
    assert_eq!(inbox[0]["kind"], "preferences-changed");
    assert_eq!(inbox[0]["language"], "en");
    // And it holds: a consent's notice now lands in the inbox, not by SMS.
    assert_eq!(w.consent("indefinite").await.status, 201);
    let inbox = w
        .get(
            &patient,
            &format!("/api/v1/me/recipients/{}/inbox", w.recipient),
        )
        .await
        .json();
    assert_eq!(inbox[0]["kind"], "consent-changed", "{inbox}");
    let r = w.get(&patient, &path).await;
    assert_eq!(r.json()["refuses_access_notices"], true);

    // Nobody else.
    assert_eq!(w.get(&w.doctor, &path).await.status, 404);
}

/// Issue 27, item 2: the PDF summary, read back by `pdftotext` (poppler, which `.ci/run` and
/// `scripts/test` install): the patient's Chinese name and each record's headline are there
/// as text; it is audited like any read of one's record.
#[tokio::test]
async fn the_pdf_summary_has_the_chinese_name_and_every_headline() {
    let w = world().await;
    assert_eq!(w.consent("indefinite").await.status, 201);
    assert_eq!(w.episode().await.status, 201);
    assert_eq!(w.deposit(condition("dx-pdf")).await.status, 201);
    assert_eq!(w.deposit(medication("rx-pdf")).await.status, 201);
    let patient = w.patient().await;
    let path = format!(
        "/api/v1/me/recipients/{}/record/pdf?lang=zh-HK",
        w.recipient
    );
    let r = w.get(&patient, &path).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("content-type"), "application/pdf");
    assert_eq!(r.header("cache-control"), "no-store");
    let e = w.last_entry().await.entry;
    assert_eq!(e.reason.as_deref(), Some("self"));
    assert_eq!(
        e.disclosed.as_ref().map(|d| d.count()),
        Some(2),
        "every record in it is named"
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("summary.pdf");
    std::fs::write(&file, &r.body).unwrap();
    let out = std::process::Command::new("pdftotext")
        .args(["-enc", "UTF-8"])
        .arg(&file)
        .arg("-")
        .output()
        .expect("pdftotext (poppler-utils) runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    for wanted in [
        "陳大文",
        "CHAN Tai Man",
        "醫健通紀錄摘要",
        "Asthma",
        "Salbutamol inhaler",
    ] {
        assert!(text.contains(wanted), "{wanted} in {text}");
    }
    // Nobody else's, and a staff session gets nothing.
    let r = w.get(&w.doctor, &path).await;
    assert_eq!(r.status, 404);
    let other = format!("/api/v1/me/recipients/{}/record/pdf", uuid::Uuid::now_v7());
    assert_eq!(w.get(&patient, &other).await.status, 404);
}
