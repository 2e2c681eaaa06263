//! Batch and transaction Bundles (`POST /fhir`): a transaction is all or none, with its audit
//! entries; `urn:uuid` references resolve; a batch answers each entry on its own; a Bundle
//! that is not what it should be is refused whole, naming what is wrong.

use serde_json::{Value, json};

use super::*;

fn bundle(kind: &str, entries: Vec<Value>) -> Value {
    json!({"resourceType": "Bundle", "type": kind, "entry": entries})
}

/// The registered person as a clinic's export names them.
fn patient_entry(full_url: &str) -> Value {
    json!({"fullUrl": full_url,
           "resource": {"resourceType": "Patient", "id": "chart-1",
                        "identifier": [{"system": SUBJECT, "value": "A1234563"},
                                       {"system": "https://clinic.example/chart", "value": "C-77"}],
                        "name": [{"family": "CHAN", "given": ["Tai Man"]}]},
           "request": {"method": "POST", "url": "Patient"}})
}

/// An Observation about `urn:uuid:patient`, in `urn:uuid:encounter`.
fn observation_entry(n: usize, method: &str) -> Value {
    let id = format!("obs-{n}");
    let mut o = resource_of("Observation", &id);
    o["subject"] = json!({"reference": "urn:uuid:patient"});
    o["encounter"] = json!({"reference": "urn:uuid:encounter"});
    let url = if method == "PUT" {
        format!("Observation/{id}")
    } else {
        "Observation".to_owned()
    };
    json!({"fullUrl": format!("urn:uuid:00000000-0000-4000-8000-{n:012}"), "resource": o,
           "request": {"method": method, "url": url}})
}

fn encounter_entry() -> Value {
    let mut e = resource_of("Encounter", "enc-1");
    e["subject"] = json!({"reference": "urn:uuid:patient"});
    json!({"fullUrl": "urn:uuid:encounter", "resource": e,
           "request": {"method": "PUT", "url": "Encounter/enc-1"}})
}

/// The patient, an encounter, and `n` observations in it.
fn visit(n: usize, method: &str) -> Vec<Value> {
    let mut entries = vec![patient_entry("urn:uuid:patient"), encounter_entry()];
    entries.extend((0..n).map(|i| observation_entry(i, method)));
    entries
}

async fn post_bundle(w: &World, agent: &Agent, body: &Value, prefer: Option<&str>) -> TestResponse {
    let headers: Vec<(&str, &str)> = prefer.map(|p| ("prefer", p)).into_iter().collect();
    fhir_send(w, agent, "POST", "/fhir", body, &headers).await
}

async fn observations(w: &World) -> u64 {
    let r = fhir_get(
        w,
        Some(&w.doctor),
        &format!("/fhir/Observation?patient={}&_count=1", w.recipient),
        None,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()["total"].as_u64().unwrap()
}

#[tokio::test]
async fn a_transaction_stores_every_entry_with_its_audit_entry_or_nothing() {
    let w = under_care().await;
    let cs = fhir_get(&w, None, "/fhir/metadata", None).await.json();
    let system: Vec<&str> = cs["rest"][0]["interaction"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["code"].as_str().unwrap())
        .collect();
    assert_eq!(system, ["transaction", "batch"]);

    // 50 entries, one of them not valid (an Observation needs a status): nothing is stored,
    // and the answer names the entry and the element.
    let mut entries = visit(48, "POST");
    entries[37]["resource"]
        .as_object_mut()
        .unwrap()
        .remove("status");
    let before = w.audit_count().await;
    let r = post_bundle(&w, &w.doctor, &bundle("transaction", entries), None).await;
    assert_eq!(r.status, 422, "{}", r.text());
    let outcome = r.json();
    assert_eq!(outcome["resourceType"], "OperationOutcome");
    let expressions = outcome["issue"][0]["expression"].to_string();
    assert!(
        expressions.contains("Bundle.entry[37].resource"),
        "{expressions}"
    );
    // The one thing that happened: the look-up of the patient by document, audited.
    assert_eq!(w.audit_count().await - before, 1);
    assert_eq!(w.last_entry().await.entry.action, "recipient.find");
    assert_eq!(observations(&w).await, 0);
    assert_eq!(
        w.record_count().await,
        0,
        "not the Patient, not the Encounter"
    );

    // The same 50, all valid: every one stored, each with its audit entry.
    let before = w.audit_count().await;
    let r = post_bundle(
        &w,
        &w.doctor,
        &bundle("transaction", visit(48, "POST")),
        Some("return=minimal"),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let answer = r.json();
    assert_eq!(answer["type"], "transaction-response");
    let answered = answer["entry"].as_array().unwrap();
    assert_eq!(answered.len(), 50);
    assert!(
        answered[0]["response"]["location"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/fhir/Patient/{}", w.recipient)),
        "a Patient entry is the registered person: {}",
        answered[0]
    );
    for e in &answered[1..] {
        assert_eq!(e["response"]["status"], "201 Created", "{e}");
        assert!(e.get("resource").is_none(), "return=minimal");
    }
    assert_eq!(
        w.audit_count().await - before,
        1 + 50,
        "the find, then 50 deposits"
    );
    assert_eq!(observations(&w).await, 48);

    // References to the Bundle's own entries now name what the server stored.
    let encounter = answered[1]["response"]["location"].as_str().unwrap();
    let encounter_id = encounter.split('/').nth(5).unwrap();
    let obs = answered[2]["response"]["location"].as_str().unwrap();
    let path = &obs[obs.find("/fhir/").unwrap()..obs.find("/_history").unwrap()];
    let o = fhir_get(&w, Some(&w.doctor), path, None).await.json();
    assert_eq!(
        o["subject"]["reference"],
        format!("Patient/{}", w.recipient)
    );
    assert_eq!(
        o["encounter"]["reference"],
        format!("Encounter/{encounter_id}")
    );
    let e = fhir_get(
        &w,
        Some(&w.doctor),
        &format!("/fhir/Encounter/{encounter_id}"),
        None,
    )
    .await;
    assert_eq!(e.status, 200, "the reference resolves: {}", e.text());
}

#[tokio::test]
async fn a_transaction_sent_again_changes_nothing_and_a_stale_entry_stops_it_all() {
    let w = under_care().await;
    let r = post_bundle(&w, &w.doctor, &bundle("transaction", visit(3, "PUT")), None).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let first = r.json();
    assert_eq!(first["entry"][2]["response"]["status"], "201 Created");
    assert_eq!(first["entry"][2]["resource"]["resourceType"], "Observation");
    // A clinic that lost the answer sends it again: the same records, no new version.
    let r = post_bundle(&w, &w.doctor, &bundle("transaction", visit(3, "PUT")), None).await;
    assert_eq!(r.status, 200, "{}", r.text());
    for e in &r.json()["entry"].as_array().unwrap()[1..] {
        assert_eq!(e["response"]["status"], "200 OK");
        assert_eq!(e["response"]["etag"], "W/\"1\"");
    }
    assert_eq!(observations(&w).await, 3);

    // An amendment of obs-0 and obs-1, and a delete of obs-2, where obs-1's If-Match is
    // stale: 412, and obs-0 is not amended, obs-2 not deleted.
    let obs2 = first["entry"][4]["response"]["location"].as_str().unwrap();
    let obs2_id = obs2.split('/').nth(5).unwrap().to_owned();
    let amended = |n: usize, if_match: &str| {
        let mut e = observation_entry(n, "PUT");
        e["resource"]["valueQuantity"]["value"] = json!(6.1);
        e["request"]["ifMatch"] = json!(if_match);
        e
    };
    let delete = json!({"request": {"method": "DELETE", "url": format!("Observation/{obs2_id}")}});
    let mut entries = vec![patient_entry("urn:uuid:patient"), encounter_entry()];
    entries.extend([amended(0, "W/\"1\""), amended(1, "W/\"7\""), delete.clone()]);
    let r = post_bundle(&w, &w.doctor, &bundle("transaction", entries), None).await;
    assert_eq!(r.status, 412, "{}", r.text());
    let o = fhir_get(
        &w,
        Some(&w.doctor),
        &format!("/fhir/Observation/{obs2_id}"),
        None,
    )
    .await;
    assert_eq!(o.status, 200, "not deleted");
    let history = fhir_get(
        &w,
        Some(&w.doctor),
        &format!(
            "/fhir/Observation/{}/_history",
            first["entry"][2]["resource"]["id"].as_str().unwrap()
        ),
        None,
    )
    .await;
    assert_eq!(history.json()["total"], 1, "obs-0 not amended");

    // With the right versions: all three happen.
    let mut entries = vec![patient_entry("urn:uuid:patient"), encounter_entry()];
    entries.extend([amended(0, "W/\"1\""), amended(1, "W/\"1\""), delete]);
    let r = post_bundle(&w, &w.doctor, &bundle("transaction", entries), None).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let statuses: Vec<String> = r.json()["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["response"]["status"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(statuses[2..], ["200 OK", "200 OK", "204 No Content"]);
    let o = fhir_get(
        &w,
        Some(&w.doctor),
        &format!("/fhir/Observation/{obs2_id}"),
        None,
    )
    .await;
    assert_eq!(o.status, 410);
    assert_eq!(observations(&w).await, 2);
}

#[tokio::test]
async fn a_transaction_the_decision_refuses_stores_nothing_and_is_audited() {
    let w = under_care().await;
    // The doctor of a provider the patient has given no consent to, and who has no episode.
    let before = w.audit_count().await;
    let r = post_bundle(
        &w,
        &w.other_doctor,
        &bundle("transaction", visit(2, "POST")),
        None,
    )
    .await;
    assert_eq!(r.status, 403, "{}", r.text());
    let last = w.last_entry().await.entry;
    assert_eq!(last.action, "record.deposit");
    assert_eq!(
        last.outcome,
        ehrshare_core::audit::Outcome::Denied,
        "the refusal is on the record"
    );
    assert!(w.audit_count().await > before);
    assert_eq!(observations(&w).await, 0);
    assert_eq!(w.record_count().await, 0);

    // An entry about someone who is not registered: 422 naming it, nothing stored.
    let mut entries = visit(2, "POST");
    let mut stranger = resource_of("Condition", "dx-x");
    stranger["subject"] = json!({"identifier": {"system": SUBJECT, "value": "Z9999990"}});
    entries.push(json!({"resource": stranger, "request": {"method": "POST", "url": "Condition"}}));
    let r = post_bundle(&w, &w.doctor, &bundle("transaction", entries), None).await;
    assert_eq!(r.status, 422, "{}", r.text());
    assert!(
        r.json()["issue"][0]["expression"]
            .to_string()
            .contains("Bundle.entry[4].resource.subject"),
        "{}",
        r.text()
    );
    assert_eq!(w.record_count().await, 0);
}

#[tokio::test]
async fn a_batch_answers_each_entry_on_its_own() {
    let w = under_care().await;
    let good = observation_entry(1, "PUT");
    let mut bad = observation_entry(2, "PUT");
    bad["resource"].as_object_mut().unwrap().remove("status");
    let read = json!({"request": {"method": "GET", "url": format!("Patient/{}", w.recipient)}});
    let direct = |e: Value| {
        let mut e = e;
        e["resource"]["subject"] = json!({"reference": format!("Patient/{}", w.recipient)});
        e["resource"].as_object_mut().unwrap().remove("encounter");
        e.as_object_mut().unwrap().remove("fullUrl");
        e
    };
    let entries = vec![direct(good), direct(bad), read];
    let r = post_bundle(&w, &w.doctor, &bundle("batch", entries), None).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let answer = r.json();
    assert_eq!(answer["type"], "batch-response");
    let e = answer["entry"].as_array().unwrap();
    assert_eq!(e[0]["response"]["status"], "201 Created");
    assert_eq!(e[1]["response"]["status"], "422 Unprocessable Entity");
    assert_eq!(
        e[1]["response"]["outcome"]["resourceType"],
        "OperationOutcome"
    );
    assert!(
        e[1]["response"]["outcome"]["issue"][0]["expression"]
            .to_string()
            .contains("Bundle.entry[1].resource")
    );
    assert_eq!(e[2]["response"]["status"], "400 Bad Request");
    assert_eq!(
        e[2]["response"]["outcome"]["issue"][0]["details"]["coding"][0]["code"],
        "unsupported-method"
    );
    assert_eq!(observations(&w).await, 1);
}

#[tokio::test]
async fn a_bundle_that_is_not_what_it_should_be_is_refused_whole_naming_why() {
    let w = under_care().await;
    let cases: Vec<(Value, u16, &str, &str)> = vec![
        (
            json!({"resourceType": "Bundle", "type": "collection", "entry": []}),
            400,
            "unsupported-bundle-type",
            "Bundle.type",
        ),
        (
            json!({"resourceType": "Bundle", "type": "transaction", "entries": []}),
            400,
            "unknown-element",
            "Bundle.entries",
        ),
        (
            json!({"resourceType": "Bundle", "type": "transaction",
                   "entry": [{"modifierExtension": [{"url": "x"}], "request": {"method": "DELETE", "url": "Condition/x"}}]}),
            400,
            "unknown-element",
            "Bundle.entry[0].modifierExtension",
        ),
        (
            json!({"resourceType": "Bundle", "type": "transaction",
                   "entry": [{"request": {"method": "POST", "url": "Condition"}}]}),
            400,
            "required",
            "Bundle.entry[0].resource",
        ),
        (
            json!({"resourceType": "Bundle", "type": "transaction",
                   "entry": [{"resource": resource_of("Condition", "a"), "request": {"method": "POST", "url": "Observation"}}]}),
            400,
            "resource-type-mismatch",
            "Bundle.entry[0].resource.resourceType",
        ),
        (
            json!({"resourceType": "Bundle", "type": "transaction",
                   "entry": [{"resource": resource_of("Condition", "a"), "request": {"method": "PUT", "url": "Condition?identifier=x"}}]}),
            400,
            "invalid-url",
            "Bundle.entry[0].request.url",
        ),
        (
            json!({"resourceType": "Bundle", "type": "transaction",
                   "entry": [{"resource": resource_of("Condition", "a"), "request": {"method": "PUT", "url": "Condition/a"}},
                             {"resource": resource_of("Condition", "a"), "request": {"method": "PUT", "url": "Condition/a"}}]}),
            400,
            "duplicate-target",
            "Bundle.entry[1].request.url",
        ),
        (
            json!({"resourceType": "Bundle", "type": "transaction",
                   "entry": (0..1001).map(|_| json!({})).collect::<Vec<_>>()}),
            400,
            "too-many-entries",
            "Bundle.entry",
        ),
        (
            resource_of("Condition", "a"),
            400,
            "resource-type-mismatch",
            "resourceType",
        ),
    ];
    for (body, status, code, expression) in cases {
        let r = post_bundle(&w, &w.doctor, &body, None).await;
        assert_eq!(r.status, status, "{body}: {}", r.text());
        let outcome = r.json();
        assert_eq!(
            outcome["issue"][0]["details"]["coding"][0]["code"],
            code,
            "{}",
            r.text()
        );
        assert_eq!(
            outcome["issue"][0]["expression"][0],
            expression,
            "{}",
            r.text()
        );
    }
    // A urn:uuid no entry defines: the transaction fails, naming the reference.
    let mut entries = visit(1, "POST");
    entries[2]["resource"]["encounter"] =
        json!({"reference": "urn:uuid:0b4f5a1e-7c1d-4c33-9a57-1d2f3e4a5b6c"});
    let r = post_bundle(&w, &w.doctor, &bundle("transaction", entries), None).await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(
        r.json()["issue"][0]["expression"][0],
        "Bundle.entry[2].resource.encounter.reference"
    );
    assert_eq!(w.record_count().await, 0);
    // No one logged in: 401, as for any FHIR write.
    let r =
        w.t.send(
            Request::post("/fhir")
                .header("content-type", "application/fhir+json")
                .body(axum::body::Body::from(
                    bundle("transaction", visit(1, "POST")).to_string(),
                ))
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, 401, "{}", r.text());
}
