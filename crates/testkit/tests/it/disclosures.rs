//! The disclosure ledger (issue 26, item 6; SPEC 3.11): privacy officers record disclosures
//! outside care; the recipient sees each in their access log, a withheld one exactly when the
//! withholding period ends (proof included), never before.

use ehrshare_app::duty::Scope;
use ehrshare_core::clock::Clock;
use serde_json::{Value, json};
use time::Duration;
use time::format_description::well_known::Rfc3339;

use crate::world::{World, world_with};

fn log_disclosures(log: &Value) -> Vec<Value> {
    log.as_array()
        .unwrap()
        .iter()
        .filter(|l| l["action"] == "disclosure.record")
        .cloned()
        .collect()
}

async fn log(w: &World, patient: &ehrshare_testkit::Agent) -> Value {
    let r = w
        .get(
            patient,
            &format!("/api/v1/me/recipients/{}/access-log", w.recipient),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()
}

#[tokio::test]
async fn a_withheld_disclosure_appears_in_the_patients_log_exactly_when_the_period_ends() {
    let w = world_with(ehrshare_app::Settings {
        auth: ehrshare_app::settings::AuthSettings {
            password_max_age: Duration::ZERO,
            ..Default::default()
        },
        ..ehrshare_app::Settings::default()
    })
    .await;
    let officer =
        w.t.agent(Scope::Office, "office.privacy", "privacy-officer", false)
            .await;
    let path = format!("/api/v1/office/recipients/{}/disclosures", w.recipient);
    let now = w.t.clock.now();
    let today = now
        .to_offset(ehrshare_core::clock::HONG_KONG)
        .date()
        .to_string();

    // Refused by name, nothing stored: a basis not in the list, empty or oversize text, a
    // date ahead, a withholding period already over; and not for other office roles.
    let before = w.audit_count().await;
    let tomorrow = (now + Duration::days(1))
        .to_offset(ehrshare_core::clock::HONG_KONG)
        .date()
        .to_string();
    for (body, field) in [
        (
            json!({"legal_basis": "curiosity", "requesting_body": "x", "data_disclosed": "x", "disclosed_on": today}),
            "/legal_basis",
        ),
        (
            json!({"legal_basis": "police", "requesting_body": " ", "data_disclosed": "x", "disclosed_on": today}),
            "/requesting_body",
        ),
        (
            json!({"legal_basis": "police", "requesting_body": "x", "data_disclosed": "x".repeat(1001), "disclosed_on": today}),
            "/data_disclosed",
        ),
        (
            json!({"legal_basis": "police", "requesting_body": "x", "data_disclosed": "x", "disclosed_on": "14/12/2026"}),
            "/disclosed_on",
        ),
        (
            json!({"legal_basis": "police", "requesting_body": "x", "data_disclosed": "x", "disclosed_on": tomorrow}),
            "/disclosed_on",
        ),
        (
            json!({"legal_basis": "police", "requesting_body": "x", "data_disclosed": "x", "disclosed_on": today,
                "withhold_until": now.format(&Rfc3339).unwrap()}),
            "/withhold_until",
        ),
    ] {
        let r = w.post(&officer, &path, body).await;
        assert_eq!(r.status, 422, "{}", r.text());
        assert_eq!(r.json()["errors"][0]["field"], field, "{}", r.text());
    }
    let registration = w.t.office().await;
    let ok = json!({"legal_basis": "police", "requesting_body": "Hong Kong Police Force",
                    "data_disclosed": "diagnoses 2025-2026", "disclosed_on": today});
    assert_eq!(w.post(&registration, &path, ok.clone()).await.status, 404);
    assert_eq!(w.post(&w.doctor, &path, ok.clone()).await.status, 404);
    assert_eq!(w.audit_count().await, before);

    // One told at once, one withheld for 90 days.
    let r = w.post(&officer, &path, ok).await;
    assert_eq!(r.status, 201, "{}", r.text());
    let until = now + Duration::days(90);
    let r = w
        .post(
            &officer,
            &path,
            json!({"legal_basis": "court-order", "requesting_body": "High Court HCA 123/2026",
                   "data_disclosed": "the whole record", "disclosed_on": today,
                   "withhold_until": until.format(&Rfc3339).unwrap()}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let withheld = r.json()["id"].as_str().unwrap().to_owned();
    let seq = w.last_entry().await.seq;
    let listed = w.get(&officer, &path).await.json();
    assert_eq!(listed.as_array().unwrap().len(), 2, "{listed}");

    let patient = w.patient().await;
    let shown = log_disclosures(&log(&w, &patient).await);
    assert_eq!(shown.len(), 1, "{shown:?}");
    assert_eq!(shown[0]["disclosure"]["legal_basis"], "police");
    assert_eq!(
        shown[0]["disclosure"]["requesting_body"],
        "Hong Kong Police Force"
    );
    assert_eq!(
        shown[0]["disclosure"]["data_disclosed"],
        "diagnoses 2025-2026"
    );
    let proof = format!(
        "/api/v1/me/recipients/{}/access-log/{seq}/proof",
        w.recipient
    );
    assert_eq!(
        w.get(&patient, &proof).await.status,
        404,
        "withheld: no proof either"
    );

    // A second before the end: still withheld. At the end: shown, with its proof.
    w.t.clock.set(until - Duration::seconds(1));
    let patient = w.patient().await;
    assert_eq!(log_disclosures(&log(&w, &patient).await).len(), 1);
    w.t.clock.set(until);
    let shown = log_disclosures(&log(&w, &patient).await);
    assert_eq!(shown.len(), 2, "{shown:?}");
    let court = shown
        .iter()
        .find(|l| l["disclosure"]["id"] == withheld.as_str())
        .unwrap();
    assert_eq!(court["disclosure"]["legal_basis"], "court-order");
    assert_eq!(court["seq"], seq);
    w.t.app.write_checkpoint().await.unwrap();
    assert_eq!(w.get(&patient, &proof).await.status, 200);
}
