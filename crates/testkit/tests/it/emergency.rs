//! Emergency access, "break-glass" (issue 26, item 5; SPEC 3.11), through HTTP under both
//! consent regimes: off unless the deployment allows it and the provider turns it on; a doctor
//! only, on a stated reason; the emergency domains for four hours to the second; the patient
//! told at once; an alert open; every read flagged; repeated use alerted again.

use ehrshare_app::Settings;
use ehrshare_app::settings::BreakGlassSettings;
use ehrshare_core::audit::Outcome;
use ehrshare_core::clock::Clock;
use ehrshare_testkit::Agent;
use serde_json::{Value, json};
use time::Duration;
use time::format_description::well_known::Rfc3339;

use crate::world::{SEED, World, both_regimes, condition, medication, note, with_kind, world_with};

fn settings(enabled: bool) -> Settings {
    Settings {
        break_glass: BreakGlassSettings {
            enabled,
            repeat_per_week: 2,
        },
        auth: ehrshare_app::settings::AuthSettings {
            password_max_age: Duration::ZERO,
            ..Default::default()
        },
        ..Settings::default()
    }
}

impl World {
    async fn break_glass(&self, agent: &Agent, body: Value) -> ehrshare_testkit::TestResponse {
        self.post(
            agent,
            &format!("/api/v1/recipients/{}/break-glass", self.recipient),
            body,
        )
        .await
    }

    async fn switch(&self, enabled: bool) -> ehrshare_testkit::TestResponse {
        self.t
            .send_json(
                Some(&self.ua),
                axum::http::Request::put(format!("/api/v1/providers/{}/break-glass", self.hcp)),
                &json!({ "enabled": enabled }),
            )
            .await
    }

    /// Clinic B, with the patient's consent and an episode, deposits a diagnosis, a
    /// medication and a clinical note: a record for Clinic A's doctor to find.
    async fn records_at_clinic_b(&self) {
        let office = self.t.office().await;
        let b = self.other_doctor_hcp().await;
        let r = self
            .post(
                &office,
                &format!("/api/v1/office/recipients/{}/consents", self.recipient),
                with_kind(json!({"hcp": b, "call_ref": "CALL-B"}), "indefinite"),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text());
        let r = self
            .post(
                &self.other_doctor,
                &format!("/api/v1/recipients/{}/episodes", self.recipient),
                json!({"kind": "attendance"}),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text());
        for resource in [condition("dx-b"), medication("rx-b"), note("note-b")] {
            let r = self
                .post(
                    &self.other_doctor,
                    &format!("/api/v1/recipients/{}/records", self.recipient),
                    resource,
                )
                .await;
            assert_eq!(r.status, 201, "{}", r.text());
        }
    }
}

async fn the_feature_is_off_unless_the_deployment_and_the_provider_turn_it_on() {
    let reason = json!({"reason": "unconscious", "details": "brought in by ambulance"});
    // Off for the deployment: refused, audited; the provider cannot turn it on.
    let w = world_with(settings(false)).await;
    let r = w.break_glass(&w.doctor, reason.clone()).await;
    assert_eq!(r.status, 403, "{}", r.text());
    assert_eq!(r.json()["code"], "break-glass-disabled");
    let e = w.last_entry().await;
    assert_eq!(
        (e.entry.action.as_str(), e.entry.outcome),
        ("break-glass", Outcome::Denied)
    );
    assert_eq!(w.switch(true).await.json()["code"], "break-glass-disabled");

    // On for the deployment, not yet for the provider: refused too.
    let w = world_with(settings(true)).await;
    let r = w.break_glass(&w.doctor, reason.clone()).await;
    assert_eq!(r.json()["code"], "break-glass-disabled", "{}", r.text());
    // Only the provider's user administrator turns it on.
    let r =
        w.t.send_json(
            Some(&w.doctor),
            axum::http::Request::put(format!("/api/v1/providers/{}/break-glass", w.hcp)),
            &json!({"enabled": true}),
        )
        .await;
    assert_eq!(r.status, 404, "{}", r.text());
    let r = w.switch(true).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(w.last_entry().await.entry.action, "break-glass.configure");

    // A reason is required, from the list, with words; nothing is decided or stored without.
    let before = w.audit_count().await;
    for (body, field) in [
        (json!({"details": "brought in by ambulance"}), "/reason"),
        (json!({"reason": "curious", "details": "x"}), "/reason"),
        (json!({"reason": "other"}), "/details"),
        (
            json!({"reason": "other", "details": "x".repeat(501)}),
            "/details",
        ),
        (
            json!({"reason": "other", "details": "call \u{202e}0000"}),
            "/details",
        ),
        (json!({"reason": "other", "details": "a\u{0}b"}), "/details"),
    ] {
        let r = w.break_glass(&w.doctor, body).await;
        assert_eq!(r.status, 422, "{}", r.text());
        assert_eq!(r.json()["errors"][0]["field"], field);
    }
    assert_eq!(w.audit_count().await, before);
    // A doctor only.
    let r = w.break_glass(&w.pharmacist, reason.clone()).await;
    assert_eq!(r.status, 403, "{}", r.text());
    assert_eq!(r.json()["code"], "role-not-permitted");
    assert_eq!(
        w.last_entry().await.entry.denial_reason.as_deref(),
        Some("role-not-permitted")
    );
    // Not where a consent already lets the doctor in.
    assert_eq!(w.consent("indefinite").await.status, 201);
    let r = w.break_glass(&w.doctor, reason).await;
    assert_eq!(r.status, 409, "{}", r.text());
    assert_eq!(r.json()["code"], "break-glass-not-needed");
    // Turned off again: refused again.
    assert_eq!(w.switch(false).await.status, 200);
}

both_regimes!(the_feature_is_off_unless_the_deployment_and_the_provider_turn_it_on);

async fn a_doctor_sees_the_emergency_domains_for_four_hours_and_everyone_is_told() {
    let w = world_with(settings(true)).await;
    assert_eq!(w.switch(true).await.status, 200);
    w.records_at_clinic_b().await;
    // No consent with Clinic A: nothing.
    assert_eq!(
        w.summary(&w.doctor).await.json()["code"],
        "consent-required"
    );

    let granted_at = w.t.clock.now();
    let r = w
        .break_glass(
            &w.doctor,
            json!({"reason": "unconscious", "details": "collapsed in the waiting room"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let until = time::OffsetDateTime::parse(r.json()["until"].as_str().unwrap(), &Rfc3339).unwrap();
    assert_eq!(
        until,
        granted_at + Duration::hours(4),
        "four hours to the second"
    );
    let e = w.last_entry().await;
    assert_eq!(e.entry.action, "break-glass");
    assert_eq!(e.entry.outcome, Outcome::Allowed);
    // The reason's code only: the doctor's words stay with the grant and its alert.
    assert_eq!(e.entry.reason.as_deref(), Some("unconscious"));
    let grant = r.json()["id"].as_str().unwrap().to_owned();

    // The patient is told at once, with the reason in their language's words, not the
    // doctor's free text.
    let notice = w.t.last_message("+85291234567", "emergency-access").await;
    assert_eq!(notice["reason"], "unconscious", "{notice}");
    // The alert is open for the provider's privacy review (and the office's).
    let alerts = w
        .get(&w.ua, &format!("/api/v1/providers/{}/alerts", w.hcp))
        .await
        .json();
    let alert = alerts
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["rule"] == "break-glass")
        .unwrap_or_else(|| panic!("{alerts}"))
        .clone();
    assert_eq!(alert["status"], "open");

    // The emergency domains only, every read flagged.
    let r = w.summary(&w.doctor).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let mut shown: Vec<String> = r.json()["domains"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["domain"].as_str().unwrap().to_owned())
        .collect();
    shown.sort();
    assert_eq!(shown, ["allergy", "diagnosis", "medication"]);
    assert!(!r.text().contains("V2hlZXpl"), "no clinical note");
    let e = w.last_entry().await;
    assert_eq!(
        e.entry.reason.as_deref(),
        Some(format!("break-glass {grant}").as_str())
    );
    assert_eq!(e.entry.consent_id, None);
    // Not for anyone else at the provider, and never a deposit (under 2016, where a deposit
    // needs a consent; under 2025 joining alone allows it, emergency or not).
    assert_eq!(
        w.summary(&w.pharmacist).await.json()["code"],
        "consent-required"
    );
    if crate::world::regime().consent_needed_to_deposit() {
        let r = w.deposit(condition("dx-a")).await;
        assert_eq!(r.json()["code"], "consent-required", "{}", r.text());
    }

    // To the second: a second before the end still reads; at the end, nothing.
    w.t.clock.set(until - Duration::seconds(31));
    let doctor = w.t.login_agent("dr.a", SEED, None).await;
    assert_eq!(w.t.clock.now(), until - Duration::seconds(1));
    assert_eq!(w.summary(&doctor).await.status, 200);
    w.t.clock.set(until);
    let r = w.summary(&doctor).await;
    assert_eq!(r.status, 403, "{}", r.text());
    assert_eq!(r.json()["code"], "consent-required");

    // Again the same week: a second grant raises the further alert.
    let r = w
        .break_glass(
            &doctor,
            json!({"reason": "life-threatening", "details": "arrest"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let alerts =
        w.t.db
            .connect()
            .await
            .alerts(w.hcp.parse().unwrap())
            .await
            .unwrap();
    assert!(
        alerts.iter().any(|a| a.rule == "break-glass-repeated"),
        "{alerts:?}"
    );
    // The patient's own log shows each flagged read.
    let patient = w.patient().await;
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
            .any(|l| l["action"] == "record.summary"
                && l["reason"]
                    .as_str()
                    .is_some_and(|r| r.starts_with("break-glass "))),
        "{log}"
    );
}

both_regimes!(a_doctor_sees_the_emergency_domains_for_four_hours_and_everyone_is_told);

async fn turning_the_feature_off_ends_the_grants_in_force() {
    let w = world_with(settings(true)).await;
    assert_eq!(w.switch(true).await.status, 200);
    let r = w
        .break_glass(&w.doctor, json!({"reason": "other", "details": "seizure"}))
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(w.summary(&w.doctor).await.status, 200);
    assert_eq!(w.switch(false).await.status, 200);
    assert_eq!(
        w.summary(&w.doctor).await.json()["code"],
        "consent-required"
    );
}

both_regimes!(turning_the_feature_off_ends_the_grants_in_force);

#[tokio::test]
async fn a_childs_emergency_access_reaches_every_channel_and_the_parent_by_theirs() {
    let w = world_with(settings(true)).await;
    assert_eq!(w.switch(true).await.status, 200);
    let office = w.t.office().await;
    let r = w
        .post(
            &office,
            "/api/v1/recipients",
            json!({"channel": "in-person", "name_en": "WONG Siu Ming",
                "date_of_birth": "2020-05-01", "sex": "male",
                "document": {"type": "hkid", "number": "C123456(9)"},
                "phone": "6100 0000", "email": "child@example.org", "language": "en",
                "notify_channel": "app",
                "sdm": {"name_en": "WONG Tai Man", "document": {"type": "passport", "issuer": "GB", "number": "123456789"},
                        "category": "parent", "relationship_proof": "birth certificate",
                        "phone": "6100 0001", "email": "parent@example.org", "notify_channel": "email"}}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let child = r.json()["id"].as_str().unwrap().to_owned();
    let r = w
        .post(
            &w.doctor,
            &format!("/api/v1/recipients/{child}/break-glass"),
            json!({"reason": "unconscious", "details": "found at school"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    // The parent, by the parent's own channel; the child by SMS and e-mail ...
    for address in ["parent@example.org", "+85261000000", "child@example.org"] {
        let notice = w.t.last_message(address, "emergency-access").await;
        assert_eq!(notice["reason"], "unconscious", "{address}: {notice}");
    }
    // ... and in the portal's inbox, the child's chosen channel.
    let db = w.t.db.connect().await;
    let inbox = db.inbox(child.parse().unwrap(), None, 10).await.unwrap();
    assert_eq!(inbox.len(), 1, "{inbox:?}");
    assert_eq!(inbox[0].template, "emergency-access");
    assert!(
        db.outbox_to("+85261000001")
            .await
            .unwrap()
            .iter()
            .all(|m| m.message.template != "emergency-access"),
        "not to the parent's phone: they chose e-mail"
    );
    // A consent recorded for the child is told to the parent who acts for them, by e-mail.
    let r = w
        .post(
            &office,
            &format!("/api/v1/office/recipients/{child}/consents"),
            with_kind(json!({"hcp": w.hcp, "call_ref": "CALL-C"}), "indefinite"),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let notice =
        w.t.last_message("parent@example.org", "consent-changed")
            .await;
    assert!(
        notice["provider"].as_str().unwrap().contains("Clinic A"),
        "{notice}"
    );
}
