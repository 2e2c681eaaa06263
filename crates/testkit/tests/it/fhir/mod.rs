//! The FHIR R4 API under `/fhir` (issue 25): capability, read and vread, formats, and refusals
//! that reveal nothing. Every FHIR body a test here receives is written to
//! `EHRSHARE_FHIR_CAPTURE` (if set), where `.ci/run` checks it with the external validators
//! (`scripts/fhir-externals responses`, ADR 0011).

use std::sync::atomic::{AtomicUsize, Ordering};

use axum::http::Request;
use ehrshare_testkit::{Agent, SignedBy, TestResponse};
use serde_json::{Value, json};

use crate::world::*;

mod backend_services;
mod bundle;
mod clients;
mod import;
mod launch;
mod own_objects;

const SUBJECT: &str = "https://ehrshare.example/fhir/NamingSystem/hkid";

static CAPTURED: AtomicUsize = AtomicUsize::new(0);

/// Keeps a FHIR body for the external validators.
fn capture(path: &str, r: &TestResponse) {
    let Ok(dir) = std::env::var("EHRSHARE_FHIR_CAPTURE") else {
        return;
    };
    if !r
        .header("content-type")
        .starts_with("application/fhir+json")
        || r.body.is_empty()
    {
        return;
    }
    let backend = if std::env::var("EHRSHARE_TEST_DATABASE_URL").is_ok() {
        "postgres"
    } else {
        "sqlite"
    };
    let dir = std::path::Path::new(&dir).join(backend);
    std::fs::create_dir_all(&dir).unwrap();
    let n = CAPTURED.fetch_add(1, Ordering::Relaxed);
    let name: String = path
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .take(80)
        .collect();
    std::fs::write(
        dir.join(format!("{}-{n:04}{name}.json", std::process::id())),
        &r.body,
    )
    .unwrap();
}

/// `method path` with a JSON body (none for `null`) as `agent`, with extra headers.
async fn fhir_send(
    w: &World,
    agent: &Agent,
    method: &str,
    path: &str,
    body: &Value,
    headers: &[(&str, &str)],
) -> TestResponse {
    let mut b = Request::builder().method(method).uri(path).signed_by(agent);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    let body = if body.is_null() {
        axum::body::Body::empty()
    } else {
        b = b.header("content-type", "application/fhir+json");
        axum::body::Body::from(body.to_string())
    };
    let r = w.t.send(b.body(body).unwrap()).await;
    capture(path, &r);
    r
}

/// `GET path` as `agent` (or no one), with an `Accept` header if given.
async fn fhir_get(
    w: &World,
    agent: Option<&Agent>,
    path: &str,
    accept: Option<&str>,
) -> TestResponse {
    let mut b = Request::get(path);
    if let Some(a) = agent {
        b = b.signed_by(a);
    }
    if let Some(a) = accept {
        b = b.header("accept", a);
    }
    let r = w.t.send(b.body(axum::body::Body::empty()).unwrap()).await;
    capture(path, &r);
    r
}

fn subject() -> Value {
    json!({"identifier": {"system": SUBJECT, "value": "A1234563"}})
}

/// The coding every example with a `code` element carries, and the date of every example's
/// `date` element.
const TEST_CODE: &str = "https://ehrshare.example/fhir/CodeSystem/test|T-1";
const TEST_DATE: &str = "2026-10-01";

/// A small valid resource of each served type, with the provider's own id `id`.
fn resource_of(resource_type: &str, id: &str) -> Value {
    let category = || json!({"coding": [{"system": "https://ehrshare.example/fhir/CodeSystem/test-category", "code": "C-1"}]});
    let code = |text: &str| json!({"coding": [{"system": "https://ehrshare.example/fhir/CodeSystem/test", "code": "T-1"}], "text": text});
    let mut v = match resource_type {
        "AllergyIntolerance" => {
            json!({"category": ["medication"], "code": code("Penicillin"), "patient": subject(), "recordedDate": TEST_DATE})
        }
        "Condition" => {
            json!({"category": [category()], "code": code("Asthma"), "subject": subject()})
        }
        "Procedure" => {
            json!({"status": "completed", "category": category(), "code": code("Spirometry"), "subject": subject(),
            "performedDateTime": TEST_DATE})
        }
        "MedicationRequest" => {
            json!({"status": "active", "intent": "order", "category": [category()],
            "medicationCodeableConcept": code("Salbutamol"), "subject": subject()})
        }
        "MedicationDispense" => json!({"status": "completed",
            "medicationCodeableConcept": code("Salbutamol"), "subject": subject()}),
        "MedicationStatement" => json!({"status": "active", "category": category(),
            "medicationCodeableConcept": code("Salbutamol"), "subject": subject()}),
        "Encounter" => json!({"status": "finished",
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
            "subject": subject(), "period": {"start": TEST_DATE, "end": TEST_DATE}}),
        "Appointment" => {
            json!({"status": "booked", "start": "2026-10-01T09:00:00+08:00", "end": "2026-10-01T09:30:00+08:00",
            "participant": [{"actor": {"type": "Patient", "identifier": {"system": SUBJECT, "value": "A1234563"}},
                             "status": "accepted"}]})
        }
        "DocumentReference" => {
            json!({"status": "current", "category": [category()], "subject": subject(), "date": "2026-10-01T09:00:00+08:00",
            "content": [{"attachment": {"contentType": "text/plain", "data": "V2hlZXpl"}}]})
        }
        "Immunization" => json!({"status": "completed", "vaccineCode": {"text": "Influenza"},
            "patient": subject(), "occurrenceDateTime": TEST_DATE}),
        "Observation" => json!({"status": "final",
            "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "laboratory"}]}],
            "code": {"coding": [{"system": "http://loinc.org", "code": "2345-7", "display": "Glucose"},
                                {"system": "https://ehrshare.example/fhir/CodeSystem/test", "code": "T-1"}]},
            "subject": subject(), "effectiveDateTime": TEST_DATE, "valueQuantity": {"value": 5.4, "unit": "mmol/L"}}),
        "DiagnosticReport" => json!({"status": "final",
            "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0074", "code": "LAB"}]}],
            "code": code("Blood glucose"), "subject": subject(), "effectiveDateTime": TEST_DATE}),
        "ImagingStudy" => json!({"status": "available", "subject": subject()}),
        "ServiceRequest" => json!({"status": "active", "intent": "order", "category": [category()],
            "code": code("Physiotherapy"), "subject": subject()}),
        other => panic!("no example of {other}"),
    };
    v["resourceType"] = json!(resource_type);
    v["id"] = json!(id);
    v
}

/// A world whose doctor may read: consent and a care episode at the doctor's provider.
async fn under_care() -> World {
    let w = world().await;
    assert_eq!(w.consent("indefinite").await.status, 201);
    assert_eq!(w.episode().await.status, 201);
    w
}

/// Deposits `resource` as the doctor and answers the server's record id.
async fn deposited(w: &World, resource: Value) -> String {
    let r = w.deposit(resource).await;
    assert!(r.status == 201 || r.status == 200, "{}", r.text());
    r.json()["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn metadata_lists_exactly_the_interactions_that_work() {
    let w = under_care().await;
    let r = fhir_get(&w, None, "/fhir/metadata", None).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("content-type"), "application/fhir+json");
    let cs = r.json();
    assert_eq!(cs["resourceType"], "CapabilityStatement");
    assert_eq!(cs["fhirVersion"], "4.0.1");
    assert_eq!(cs["kind"], "instance");
    let oauth = &cs["rest"][0]["security"]["extension"][0];
    assert_eq!(
        oauth["url"],
        "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris"
    );
    let listed = cs["rest"][0]["resource"].as_array().unwrap().clone();
    assert_eq!(
        listed.len(),
        20,
        "Patient, AuditEvent, Consent, the directory's three and every shared record type"
    );
    let patient = format!("Patient/{}", w.recipient);
    for entry in &listed {
        let t = entry["type"].as_str().unwrap();
        // ehrshare's own objects are walked by their own test (`own_objects`), with the
        // callers they answer.
        if matches!(
            t,
            "AuditEvent" | "Consent" | "Organization" | "Location" | "PractitionerRole"
        ) {
            continue;
        }
        let codes: Vec<&str> = entry["interaction"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["code"].as_str().unwrap())
            .collect();
        let params: Vec<&str> = entry["searchParam"]
            .as_array()
            .map(|a| a.iter().map(|p| p["name"].as_str().unwrap()).collect())
            .unwrap_or_default();
        let example = if t == "Patient" {
            Value::Null
        } else {
            resource_of(t, &format!("{t}-1"))
        };
        let id = if t == "Patient" {
            w.recipient.clone()
        } else {
            deposited(&w, example.clone()).await
        };
        for code in &codes {
            let (path, bundle) = match *code {
                "create" | "update" | "delete" => continue,
                "read" => (format!("/fhir/{t}/{id}"), None),
                "vread" => (format!("/fhir/{t}/{id}/_history/1"), None),
                "history-instance" => (format!("/fhir/{t}/{id}/_history"), Some("history")),
                "search-type" if t == "Patient" => (
                    format!("/fhir/Patient?identifier={SUBJECT}|A123456(3)"),
                    Some("searchset"),
                ),
                "search-type" => (format!("/fhir/{t}?patient={patient}"), Some("searchset")),
                other => panic!("{t}: {other} is listed but this test does not know it"),
            };
            let r = fhir_get(&w, Some(&w.doctor), &path, None).await;
            assert_eq!(r.status, 200, "{t} {code}: {}", r.text());
            let v = r.json();
            match bundle {
                None => {
                    assert_eq!(v["resourceType"], t);
                    assert_eq!(v["id"], id.as_str());
                }
                Some(kind) => {
                    assert_eq!(v["resourceType"], "Bundle");
                    assert_eq!(v["type"], kind);
                    assert_eq!(v["total"], 1, "{t} {code}");
                    assert_eq!(v["entry"][0]["resource"]["id"], id.as_str());
                }
            }
        }
        // Every search parameter listed works: each finds the one record.
        for p in params.iter().filter(|_| t != "Patient") {
            let value = match *p {
                "patient" | "subject" => patient.clone(),
                "_id" => id.clone(),
                "_lastUpdated" => "ge2000-01-01".to_owned(),
                "code" => TEST_CODE.replace('|', "%7C"),
                "date" => TEST_DATE.to_owned(),
                "status" => example["status"].as_str().unwrap().to_owned(),
                "category" => {
                    let c = match &example["category"] {
                        Value::Array(list) => list[0].clone(),
                        one => one.clone(),
                    };
                    c["coding"][0]["code"]
                        .as_str()
                        .or(c.as_str())
                        .unwrap()
                        .to_owned()
                }
                "identifier" => format!(
                    "https://ehrshare.example/fhir/NamingSystem/provider-id/{}%7C{t}-1",
                    w.hcp
                ),
                other => panic!("{t}: {other} is listed but this test does not know it"),
            };
            let r = fhir_get(
                &w,
                Some(&w.doctor),
                &format!("/fhir/{t}?patient={patient}&{p}={value}"),
                None,
            )
            .await;
            assert_eq!(r.status, 200, "{t} {p}: {}", r.text());
            assert_eq!(r.json()["total"], 1, "{t} {p}");
        }
        // The writes listed work: create, update, delete (then the read is 410).
        for code in codes
            .iter()
            .filter(|c| ["create", "update", "delete"].contains(c))
        {
            let created = match *code {
                "create" => {
                    let r = fhir_send(
                        &w,
                        &w.doctor,
                        "POST",
                        &format!("/fhir/{t}"),
                        &resource_of(t, "ignored"),
                        &[],
                    )
                    .await;
                    assert_eq!(r.status, 201, "{t} create: {}", r.text());
                    assert!(r.header("location").contains(&format!("/fhir/{t}/")), "{t}");
                    r.json()["id"].as_str().unwrap().to_owned()
                }
                "update" => {
                    let mut changed = resource_of(t, &id);
                    changed["text"] = json!({"status": "generated", "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\">changed</div>"});
                    let r = fhir_send(
                        &w,
                        &w.doctor,
                        "PUT",
                        &format!("/fhir/{t}/{id}"),
                        &changed,
                        &[("if-match", "W/\"1\"")],
                    )
                    .await;
                    assert_eq!(r.status, 200, "{t} update: {}", r.text());
                    assert_eq!(r.json()["meta"]["versionId"], "2", "{t}");
                    continue;
                }
                _ => {
                    let doomed = deposited(&w, resource_of(t, &format!("{t}-doomed"))).await;
                    let r = fhir_send(
                        &w,
                        &w.doctor,
                        "DELETE",
                        &format!("/fhir/{t}/{doomed}"),
                        &Value::Null,
                        &[],
                    )
                    .await;
                    assert_eq!(r.status, 204, "{t} delete: {}", r.text());
                    let r =
                        fhir_get(&w, Some(&w.doctor), &format!("/fhir/{t}/{doomed}"), None).await;
                    assert_eq!(r.status, 410, "{t} read after delete");
                    continue;
                }
            };
            let r = fhir_get(&w, Some(&w.doctor), &format!("/fhir/{t}/{created}"), None).await;
            assert_eq!(r.status, 200, "{t} read after create");
        }
        // What is not listed is not served.
        let r = fhir_send(
            &w,
            &w.doctor,
            "PATCH",
            &format!("/fhir/{t}/{id}"),
            &Value::Null,
            &[],
        )
        .await;
        assert_eq!(r.status, 405, "{t} patch");
        assert_eq!(r.header("content-type"), "application/fhir+json");
        if t == "Patient" {
            for method in ["PUT", "DELETE"] {
                let r = fhir_send(
                    &w,
                    &w.doctor,
                    method,
                    &format!("/fhir/Patient/{id}"),
                    &json!({"resourceType": "Patient", "id": id}),
                    &[],
                )
                .await;
                assert_eq!(r.status, 404, "Patient {method}");
            }
        }
        if t != "Patient" && !params.contains(&"subject") {
            let r = fhir_get(
                &w,
                Some(&w.doctor),
                &format!("/fhir/{t}?subject={patient}"),
                None,
            )
            .await;
            assert_eq!(r.status, 400, "{t} has no subject parameter");
            assert_eq!(r.json()["issue"][0]["expression"][0], "subject");
        }
    }
    // The operations listed work: a Patient's $everything holds what the doctor deposited.
    let patient_entry = listed.iter().find(|e| e["type"] == "Patient").unwrap();
    for op in patient_entry["operation"].as_array().unwrap() {
        assert_eq!(op["name"], "everything");
        let r = fhir_get(
            &w,
            Some(&w.doctor),
            &format!("/fhir/Patient/{}/$everything", w.recipient),
            None,
        )
        .await;
        assert_eq!(r.status, 200, "{}", r.text());
        let b = r.json();
        assert_eq!(b["type"], "searchset");
        assert!(b["total"].as_u64().unwrap() >= 14, "{}", b["total"]);
    }
    // A Patient has no versions here.
    let r = fhir_get(
        &w,
        Some(&w.doctor),
        &format!("/fhir/Patient/{}/_history/1", w.recipient),
        None,
    )
    .await;
    assert_eq!(r.status, 404);
}

#[tokio::test]
async fn read_and_vread_serve_each_version_with_its_identity() {
    let w = under_care().await;
    let mut first = condition("c-1");
    first["note"] = json!([{"text": "first"}]);
    let id = deposited(&w, first).await;
    let mut second = condition("c-1");
    second["note"] = json!([{"text": "second"}]);
    assert_eq!(
        deposited(&w, second).await,
        id,
        "one source id is one record"
    );

    let r = fhir_get(&w, Some(&w.doctor), &format!("/fhir/Condition/{id}"), None).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("content-type"), "application/fhir+json");
    assert_eq!(r.header("etag"), "W/\"2\"");
    assert!(r.header("last-modified").ends_with(" GMT"));
    let v = r.json();
    assert_eq!(v["id"], id.as_str());
    assert_eq!(v["meta"]["versionId"], "2");
    assert!(v["meta"]["lastUpdated"].as_str().unwrap().ends_with('Z'));
    assert_eq!(v["note"][0]["text"], "second");
    let own: Vec<&Value> = v["identifier"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["value"] == "c-1")
        .collect();
    assert_eq!(
        own.len(),
        1,
        "the provider's own id is kept as an identifier"
    );
    assert!(own[0]["system"].as_str().unwrap().ends_with(&w.hcp));

    let r = fhir_get(
        &w,
        Some(&w.doctor),
        &format!("/fhir/Condition/{id}/_history/1"),
        None,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("etag"), "W/\"1\"");
    assert_eq!(r.json()["meta"]["versionId"], "1");
    assert_eq!(r.json()["note"][0]["text"], "first");
    for missing in [
        format!("/fhir/Condition/{id}/_history/3"),
        format!("/fhir/Condition/{id}/_history/0"),
        format!("/fhir/Condition/{id}/_history/one"),
        format!("/fhir/Observation/{id}"),
        format!("/fhir/Condition/{}", id.to_uppercase()),
        format!("/fhir/Condition/{}", id.replace('-', "")),
        "/fhir/Condition/c-1".to_owned(),
        format!("/fhir/Condition/{}", uuid::Uuid::now_v7()),
    ] {
        let r = fhir_get(&w, Some(&w.doctor), &missing, None).await;
        assert_eq!(r.status, 404, "{missing}: {}", r.text());
        assert_eq!(r.json()["resourceType"], "OperationOutcome", "{missing}");
        assert_eq!(r.json()["issue"][0]["code"], "not-found", "{missing}");
    }
}

#[tokio::test]
async fn json_is_served_and_other_formats_are_refused_with_406() {
    let w = under_care().await;
    let id = deposited(&w, condition("c-2")).await;
    let path = format!("/fhir/Condition/{id}");
    for accept in [
        "application/fhir+json",
        "application/fhir+json; fhirVersion=4.0",
        "application/json",
        "text/html, */*;q=0.1",
    ] {
        let r = fhir_get(&w, Some(&w.doctor), &path, Some(accept)).await;
        assert_eq!(r.status, 200, "{accept}");
        assert_eq!(
            r.header("content-type"),
            "application/fhir+json",
            "{accept}"
        );
    }
    for accept in ["application/fhir+xml", "application/xml, text/xml"] {
        let r = fhir_get(&w, Some(&w.doctor), &path, Some(accept)).await;
        assert_eq!(r.status, 406, "{accept}");
        assert_eq!(r.json()["issue"][0]["code"], "not-supported");
    }
    for (format, status) in [
        ("json", 200),
        ("application/fhir+json", 200),
        ("xml", 406),
        ("ttl", 406),
    ] {
        let r = fhir_get(
            &w,
            Some(&w.doctor),
            &format!("{path}?_format={}", format.replace('+', "%2B")),
            Some("application/fhir+xml"),
        )
        .await;
        assert_eq!(r.status, status, "_format={format} wins over Accept");
    }
}

#[tokio::test]
async fn a_record_the_decision_refuses_is_the_same_404_as_none_and_is_audited() {
    let w = under_care().await;
    let id = deposited(&w, condition("c-3")).await;
    let unknown = uuid::Uuid::now_v7();
    // Another provider's doctor has no consent and no care episode.
    let refused = fhir_get(
        &w,
        Some(&w.other_doctor),
        &format!("/fhir/Condition/{id}"),
        None,
    )
    .await;
    let missing = fhir_get(
        &w,
        Some(&w.other_doctor),
        &format!("/fhir/Condition/{unknown}"),
        None,
    )
    .await;
    assert_eq!(refused.status, 404);
    assert_eq!(missing.status, 404);
    let strip = |mut v: Value| {
        v["issue"][0]["diagnostics"] = Value::Null;
        v
    };
    assert_eq!(
        strip(refused.json()),
        strip(missing.json()),
        "nothing tells them apart"
    );
    // Registration staff see demographics only.
    let r = fhir_get(&w, Some(&w.clerk), &format!("/fhir/Condition/{id}"), None).await;
    assert_eq!(r.status, 404);
    // No login: 401, as an OperationOutcome.
    let r = fhir_get(&w, None, &format!("/fhir/Condition/{id}"), None).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.json()["issue"][0]["code"], "login");

    let db = w.t.db.connect().await;
    let entries = db.audit_entries(0, 100_000).await.unwrap();
    let reads: Vec<_> = entries
        .iter()
        .map(|e| &e.entry)
        .filter(|e| e.action == "record.read" && e.record_ids.contains(&id.parse().unwrap()))
        .map(|e| (e.actor.account, e.outcome))
        .collect();
    use ehrshare_core::audit::Outcome;
    assert!(
        reads.contains(&(w.other_doctor.account, Outcome::Denied)),
        "{reads:?}"
    );
    assert!(
        reads.contains(&(w.clerk.account, Outcome::Denied)),
        "{reads:?}"
    );
}

/// The records a search answers, following `next` links to the end: (ids, totals seen).
async fn every_page(w: &World, agent: &Agent, first: &str) -> (Vec<String>, Vec<u64>, usize) {
    let (mut ids, mut totals, mut pages) = (Vec::new(), Vec::new(), 0);
    let mut next = Some(first.to_owned());
    while let Some(path) = next.take() {
        let r = fhir_get(w, Some(agent), &path, None).await;
        assert_eq!(r.status, 200, "{path}: {}", r.text());
        let b = r.json();
        pages += 1;
        totals.push(b["total"].as_u64().unwrap());
        for e in b["entry"].as_array().cloned().unwrap_or_default() {
            ids.push(e["resource"]["id"].as_str().unwrap().to_owned());
        }
        next = b["link"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["relation"] == "next")
            .map(|l| {
                let url = l["url"].as_str().unwrap();
                url[url.find("/fhir/").unwrap()..].to_owned()
            });
        assert!(pages < 50, "the links go round");
    }
    (ids, totals, pages)
}

#[tokio::test]
async fn a_search_pages_through_every_match_once_and_filters_by_id_and_update_time() {
    let w = under_care().await;
    let mut deposited_ids = Vec::new();
    for i in 0..25 {
        deposited_ids.push(deposited(&w, condition(&format!("c-{i}"))).await);
    }
    deposited(&w, medication("m-1")).await;
    let first = format!("/fhir/Condition?patient={}&_count=10", w.recipient);
    let (ids, totals, pages) = every_page(&w, &w.doctor, &first).await;
    assert_eq!(pages, 3);
    assert!(totals.iter().all(|t| *t == 25), "{totals:?}");
    let mut sorted = ids.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), 25, "each once");
    let mut expected = deposited_ids.clone();
    expected.sort();
    assert_eq!(sorted, expected, "only Conditions");

    // Two names of one patient are one patient.
    let r = fhir_get(
        &w,
        Some(&w.doctor),
        &format!(
            "/fhir/Condition?patient={0}&subject=Patient/{0}&_count=1",
            w.recipient
        ),
        None,
    )
    .await;
    assert_eq!(r.json()["total"], 25);
    // POST _search says the same.
    let r =
        w.t.send(
            Request::post("/fhir/Condition/_search")
                .signed_by(&w.doctor)
                .header("content-type", "application/x-www-form-urlencoded")
                .body(axum::body::Body::from(format!(
                    "subject=Patient/{}&_count=5",
                    w.recipient
                )))
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["total"], 25);
    assert_eq!(r.json()["entry"].as_array().unwrap().len(), 5);
    capture("/fhir/Condition/_search", &r);

    // The far end of the pages is empty, not an overflow.
    let r = fhir_get(
        &w,
        Some(&w.doctor),
        &format!(
            "/fhir/Condition?patient={}&_offset={}",
            w.recipient,
            usize::MAX
        ),
        None,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        (r.json()["total"].as_u64(), r.json().get("entry")),
        (Some(25), None)
    );
    let two = format!("{},{}", deposited_ids[3], deposited_ids[7]);
    let r = fhir_get(
        &w,
        Some(&w.doctor),
        &format!("/fhir/Condition?patient={}&_id={two}", w.recipient),
        None,
    )
    .await;
    assert_eq!(r.json()["total"], 2);
    for (updated, total) in [("ge2000", 25), ("lt2000-01-01", 0), ("gt2999", 0)] {
        let r = fhir_get(
            &w,
            Some(&w.doctor),
            &format!(
                "/fhir/Condition?patient={}&_lastUpdated={updated}",
                w.recipient
            ),
            None,
        )
        .await;
        assert_eq!(r.json()["total"], total, "{updated}");
    }
    for (query, field, code) in [
        (
            "patient=x&clinical-status=active",
            "clinical-status",
            "unknown-search-parameter",
        ),
        ("patient=x&_sort=date", "_sort", "unsupported-sort"),
        ("patient=x&_count=ten", "_count", "invalid-search-value"),
        ("patient=x&_offset=-1", "_offset", "invalid-search-value"),
        (
            "patient=x&_lastUpdated=yesterday",
            "_lastUpdated",
            "invalid-search-value",
        ),
        ("_count=10", "patient", "patient-required"),
        ("patient=a,b", "patient", "one-patient"),
        ("patient=a&subject=b", "subject", "one-patient"),
    ] {
        let r = fhir_get(
            &w,
            Some(&w.doctor),
            &format!("/fhir/Condition?{query}"),
            None,
        )
        .await;
        assert_eq!(r.status, 400, "{query}: {}", r.text());
        assert_eq!(r.json()["issue"][0]["expression"][0], field, "{query}");
        assert_eq!(
            r.json()["issue"][0]["details"]["coding"][0]["code"],
            code,
            "{query}"
        );
    }
}

#[tokio::test]
async fn no_search_reveals_or_counts_a_patient_or_record_the_decision_would_deny() {
    let w = under_care().await;
    let kept = deposited(&w, condition("c-open")).await;
    let hidden = deposited(&w, condition("c-hidden")).await;
    let patient = w.patient().await;
    let r = w
        .post(
            &patient,
            &format!("/api/v1/me/recipients/{}/restrictions", w.recipient),
            json!({"record": hidden}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    // The doctor under care: the restricted record is neither listed nor counted, on any page
    // size, by id or not.
    for count in [0, 1, 10] {
        let r = fhir_get(
            &w,
            Some(&w.doctor),
            &format!("/fhir/Condition?patient={}&_count={count}", w.recipient),
            None,
        )
        .await;
        assert_eq!(r.json()["total"], 1, "_count={count}");
    }
    let r = fhir_get(
        &w,
        Some(&w.doctor),
        &format!("/fhir/Condition?patient={}&_id={hidden}", w.recipient),
        None,
    )
    .await;
    assert_eq!(r.json()["total"], 0);
    let (ids, _, _) = every_page(
        &w,
        &w.doctor,
        &format!("/fhir/Condition?patient={}&_count=1", w.recipient),
    )
    .await;
    assert_eq!(ids.as_slice(), std::slice::from_ref(&kept));

    // Those the decision refuses find what a search of no one finds.
    let nobody = uuid::Uuid::now_v7();
    let shape = |r: &TestResponse| {
        let mut v = r.json();
        for l in v["link"].as_array_mut().unwrap() {
            l["url"] = Value::Null;
        }
        v
    };
    let empty = shape(
        &fhir_get(
            &w,
            Some(&w.other_doctor),
            &format!("/fhir/Condition?patient={nobody}"),
            None,
        )
        .await,
    );
    assert_eq!(empty["total"], 0);
    for (who, agent) in [
        ("another provider's doctor", &w.other_doctor),
        ("registration staff", &w.clerk),
    ] {
        for count in ["", "&_count=0", "&_count=100"] {
            let r = fhir_get(
                &w,
                Some(agent),
                &format!("/fhir/Condition?patient={}{count}", w.recipient),
                None,
            )
            .await;
            assert_eq!(r.status, 200, "{who}");
            let mut got = shape(&r);
            let mut want = empty.clone();
            if !count.is_empty() {
                got["link"] = Value::Null;
                want["link"] = Value::Null;
            }
            assert_eq!(got, want, "{who}{count}");
        }
        let r = fhir_get(
            &w,
            Some(agent),
            &format!("/fhir/Condition?patient={}&_id={kept}", w.recipient),
            None,
        )
        .await;
        assert_eq!(r.json()["total"], 0, "{who}");
    }
    // The refusals are audited with their reasons.
    let db = w.t.db.connect().await;
    let entries = db.audit_entries(0, 100_000).await.unwrap();
    let refused: Vec<_> = entries
        .iter()
        .map(|e| &e.entry)
        .filter(|e| e.action == "record.search" && e.actor.account == w.other_doctor.account)
        .map(|e| e.denial_reason.clone())
        .collect();
    assert!(
        refused.contains(&Some("not-found".to_owned())),
        "{refused:?}"
    );
    assert!(
        refused
            .iter()
            .any(|r| r.as_deref() == Some("consent-required")),
        "{refused:?}"
    );
}

#[tokio::test]
async fn an_instance_history_lists_every_version_newest_first() {
    let w = under_care().await;
    let id = deposited(&w, condition("c-h")).await;
    let mut second = condition("c-h");
    second["note"] = json!([{"text": "amended"}]);
    deposited(&w, second).await;
    let r = fhir_get(
        &w,
        Some(&w.doctor),
        &format!("/fhir/Condition/{id}/_history"),
        None,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let b = r.json();
    assert_eq!(b["type"], "history");
    assert_eq!(b["total"], 2);
    assert_eq!(b["entry"][0]["resource"]["meta"]["versionId"], "2");
    assert_eq!(b["entry"][0]["request"]["method"], "PUT");
    assert_eq!(b["entry"][1]["resource"]["meta"]["versionId"], "1");
    assert_eq!(b["entry"][1]["request"]["method"], "POST");
    assert_eq!(b["entry"][1]["response"]["etag"], "W/\"1\"");
    let r = fhir_get(
        &w,
        Some(&w.other_doctor),
        &format!("/fhir/Condition/{id}/_history"),
        None,
    )
    .await;
    assert_eq!(r.status, 404);
    let r = fhir_get(
        &w,
        Some(&w.doctor),
        &format!("/fhir/Condition/{id}/_history?_since=2026-01-01"),
        None,
    )
    .await;
    assert_eq!(r.status, 400, "what would narrow the history is refused");
    assert_eq!(r.json()["issue"][0]["expression"][0], "_since");
}

#[tokio::test]
async fn a_patient_is_found_as_the_counter_finds_them_by_document_only() {
    let w = world().await;
    let by = |number: &str| format!("/fhir/Patient?identifier={SUBJECT}%7C{number}");
    let r = fhir_get(&w, Some(&w.clerk), &by("A123456(3)"), None).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let b = r.json();
    assert_eq!(b["total"], 1);
    let p = &b["entry"][0]["resource"];
    assert_eq!(p["id"], w.recipient.as_str());
    assert_eq!(p["birthDate"], "1980-03-02");
    assert_eq!(p["name"][0]["text"], "CHAN Tai Man");
    assert_eq!(p["name"][1]["text"], "陳大文");
    assert_eq!(p["identifier"][0]["value"], "A123456(3)");
    assert!(
        p.get("telecom").is_none() && p.get("address").is_none(),
        "demographics only"
    );
    let r = fhir_get(
        &w,
        Some(&w.doctor),
        &format!("/fhir/Patient/{}", w.recipient),
        None,
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["active"], true);

    // Nobody with that document; a user administrator, who looks no one up: found nothing.
    let none = fhir_get(&w, Some(&w.clerk), &by("B123456(6)"), None).await;
    assert_eq!(none.status, 200, "{}", none.text());
    assert_eq!(none.json()["total"], 0);
    let r = fhir_get(&w, Some(&w.ua), &by("A123456(3)"), None).await;
    assert_eq!(r.json()["total"], 0);
    let r = fhir_get(
        &w,
        Some(&w.ua),
        &format!("/fhir/Patient/{}", w.recipient),
        None,
    )
    .await;
    assert_eq!(r.status, 404);
    // Any other Patient search is refused by name, counting no one.
    for (query, field) in [
        ("name=CHAN", "name"),
        ("birthdate=1980-03-02", "birthdate"),
        ("_count=1", "_count"),
        ("", "identifier"),
        ("identifier=A123456(3)", "identifier"),
        ("identifier=urn:oid:1.2|A123456(3)", "identifier"),
    ] {
        let r = fhir_get(&w, Some(&w.clerk), &format!("/fhir/Patient?{query}"), None).await;
        assert_eq!(r.status, 400, "{query}: {}", r.text());
        assert_eq!(r.json()["issue"][0]["expression"][0], field, "{query}");
    }
    let r = fhir_get(&w, Some(&w.clerk), &by("A123456(4)"), None).await;
    assert_eq!(r.status, 400, "a wrong check digit is the caller's mistake");
    // Each look-up is audited as the counter's is.
    let db = w.t.db.connect().await;
    let finds: Vec<_> = db
        .audit_entries(0, 100_000)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.entry)
        .filter(|e| e.action == "recipient.find")
        .map(|e| (e.recipient.map(|r| r.to_string()), e.denial_reason))
        .collect();
    assert!(
        finds.contains(&(Some(w.recipient.clone()), None)),
        "{finds:?}"
    );
    assert!(
        finds.contains(&(None, Some("not-found".to_owned()))),
        "{finds:?}"
    );
}

const REDIRECT: &str = "https://cms.example/callback";
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

/// The doctor's app, registered by the provider's user administrator, gets a user token with
/// `scope` through the authorization code flow with PKCE, as SMART's discovery says.
async fn doctors_token(w: &World, scope: &str) -> String {
    doctors_token_from(w, "user/*.read system/*.write", scope).await
}

/// [`doctors_token`], from a client registered with the scopes `registered`.
async fn doctors_token_from(w: &World, registered: &str, scope: &str) -> String {
    let r = authorized(w, registered, scope, &[]).await;
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()["access_token"].as_str().unwrap().to_owned()
}

/// The token endpoint's answer for the doctor's app, registered with `registered`, after the
/// doctor allowed `scope` with the `extra` fields of the authorization form.
async fn authorized(
    w: &World,
    registered: &str,
    scope: &str,
    extra: &[(&str, &str)],
) -> TestResponse {
    let smart = fhir_get(w, None, "/fhir/.well-known/smart-configuration", None)
        .await
        .json();
    let path = |url: &Value| {
        let url = url.as_str().unwrap();
        url[url.find("/oauth/").unwrap()..].to_owned()
    };
    let r = w
        .post(
            &w.ua,
            &format!("/api/v1/providers/{}/clients", w.hcp),
            json!({"name": "Clinic app", "redirect_uris": [REDIRECT], "scopes": registered}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let (id, secret) = (
        r.json()["client_id"].as_str().unwrap().to_owned(),
        r.json()["client_secret"].as_str().unwrap().to_owned(),
    );
    let mut form = vec![
        ("response_type", "code"),
        ("client_id", id.as_str()),
        ("redirect_uri", REDIRECT),
        ("scope", scope),
        ("state", "s"),
        ("code_challenge", CHALLENGE),
        ("code_challenge_method", "S256"),
    ];
    form.extend_from_slice(extra);
    let query = serde_urlencoded::to_string(&form).unwrap();
    let r =
        w.t.send(
            Request::post(path(&smart["authorization_endpoint"]))
                .header("cookie", &w.doctor.cookie)
                .header("content-type", "application/x-www-form-urlencoded")
                .body(axum::body::Body::from(format!(
                    "{query}&csrf_token={}",
                    w.doctor.csrf
                )))
                .unwrap(),
        )
        .await;
    // Refused before any code (a page), or back to the app with an error.
    if r.status != 303 || !r.header("location").contains("code=") {
        return r;
    }
    let location = r.header("location").to_owned();
    let code = location
        .split("code=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap()
        .to_owned();
    let body = serde_urlencoded::to_string([
        ("grant_type", "authorization_code"),
        ("code", &code),
        ("redirect_uri", REDIRECT),
        ("code_verifier", VERIFIER),
        ("client_id", &id),
        ("client_secret", &secret),
    ])
    .unwrap();
    w.t.send(
        Request::post(path(&smart["token_endpoint"]))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(axum::body::Body::from(body))
            .unwrap(),
    )
    .await
}

async fn bearer(w: &World, token: &str, path: &str) -> TestResponse {
    let r =
        w.t.send(
            Request::get(path)
                .header("authorization", format!("Bearer {token}"))
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await;
    capture(path, &r);
    r
}

#[tokio::test]
async fn smart_discovery_says_what_the_oauth_server_does_and_a_scope_only_narrows() {
    let w = under_care().await;
    let at_base = fhir_get(&w, None, "/fhir/.well-known/smart-configuration", None).await;
    let at_root = fhir_get(&w, None, "/.well-known/smart-configuration", None).await;
    assert_eq!(at_base.status, 200);
    assert_eq!(at_base.json(), at_root.json());
    let smart = at_base.json();
    assert_eq!(smart["code_challenge_methods_supported"], json!(["S256"]));
    for scope in smart["scopes_supported"].as_array().unwrap() {
        let scope = scope.as_str().unwrap();
        assert!(
            scope == ehrshare_core::oauth::LAUNCH_PATIENT
                || ehrshare_core::oauth::Scope::parse(scope).is_some(),
            "{scope}"
        );
    }
    let condition = deposited(&w, condition("c-s")).await;
    let medication = deposited(&w, medication("m-s")).await;

    // A token for Conditions reads Conditions, and nothing else, whatever the doctor may see.
    let token = doctors_token(&w, "user/Condition.read").await;
    let r = bearer(&w, &token, &format!("/fhir/Condition/{condition}")).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = bearer(&w, &token, &format!("/fhir/MedicationRequest/{medication}")).await;
    assert_eq!(r.status, 404);
    let r = bearer(
        &w,
        &token,
        &format!("/fhir/MedicationRequest?patient={}", w.recipient),
    )
    .await;
    assert_eq!(r.json()["total"], 0);
    let r = bearer(
        &w,
        &token,
        &format!("/fhir/Condition?patient={}", w.recipient),
    )
    .await;
    assert_eq!(r.json()["total"], 1);

    // A clinic system alone (client credentials) never reads.
    let r = w
        .post(
            &w.ua,
            &format!("/api/v1/providers/{}/clients", w.hcp),
            json!({"name": "Clinic system", "redirect_uris": [REDIRECT], "scopes": "system/*.write"}),
        )
        .await;
    let (id, secret) = (
        r.json()["client_id"].as_str().unwrap().to_owned(),
        r.json()["client_secret"].as_str().unwrap().to_owned(),
    );
    let basic = data_encoding::BASE64.encode(format!("{id}:{secret}").as_bytes());
    let r =
        w.t.send(
            Request::post("/oauth/token")
                .header("authorization", format!("Basic {basic}"))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(axum::body::Body::from(
                    "grant_type=client_credentials&scope=system%2F*.write",
                ))
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let system = r.json()["access_token"].as_str().unwrap().to_owned();
    let r = bearer(&w, &system, &format!("/fhir/Condition/{condition}")).await;
    assert_eq!(r.status, 404);
    let r = bearer(
        &w,
        &system,
        &format!("/fhir/Condition?patient={}", w.recipient),
    )
    .await;
    assert_eq!(r.json()["total"], 0);
}

#[tokio::test]
async fn writes_keep_the_providers_id_check_their_preconditions_and_delete_as_entered_in_error() {
    let w = under_care().await;
    let system = format!(
        "https://ehrshare.example/fhir/NamingSystem/provider-id/{}",
        w.hcp
    );
    let own = |v: &Value| -> Vec<String> {
        v["identifier"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|i| i["system"] == system.as_str())
            .map(|i| i["value"].as_str().unwrap().to_owned())
            .collect()
    };

    // create: the server assigns the id; the body's id is ignored.
    let r = fhir_send(
        &w,
        &w.doctor,
        "POST",
        "/fhir/Condition",
        &condition("theirs"),
        &[],
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let created = r.json();
    let id = created["id"].as_str().unwrap().to_owned();
    assert!(
        r.header("location")
            .ends_with(&format!("/fhir/Condition/{id}/_history/1"))
    );
    assert_eq!(r.header("etag"), "W/\"1\"");
    assert_ne!(own(&created), ["theirs"]);

    // conditional create by the provider's own id: once.
    let condition_header = format!(
        "identifier={}",
        ehrshare_app::auth::uri_escape(&format!("{system}|cond-7"))
    );
    let first = fhir_send(
        &w,
        &w.doctor,
        "POST",
        "/fhir/Condition",
        &condition("x"),
        &[("if-none-exist", &condition_header)],
    )
    .await;
    assert_eq!(first.status, 201, "{}", first.text());
    let again = fhir_send(
        &w,
        &w.doctor,
        "POST",
        "/fhir/Condition",
        &condition("x"),
        &[("if-none-exist", &condition_header)],
    )
    .await;
    assert_eq!(again.status, 200, "{}", again.text());
    assert_eq!(own(&first.json()), ["cond-7"]);
    assert!(
        again.body.is_empty(),
        "what exists leaves only through a read"
    );
    assert_eq!(again.header("location"), first.header("location"));
    for bad in [
        "code=J45",
        "identifier=urn:other|cond-7",
        "identifier=a&identifier=b",
    ] {
        let r = fhir_send(
            &w,
            &w.doctor,
            "POST",
            "/fhir/Condition",
            &condition("x"),
            &[("if-none-exist", bad)],
        )
        .await;
        assert_eq!(r.status, 400, "{bad}");
    }

    // update-as-create by the provider's own id, then update by either id.
    let r = fhir_send(
        &w,
        &w.doctor,
        "PUT",
        "/fhir/Condition/mine-1",
        &condition("mine-1"),
        &[],
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let mine = r.json()["id"].as_str().unwrap().to_owned();
    assert_eq!(own(&r.json()), ["mine-1"]);
    let mut amended = condition("mine-1");
    amended["note"] = json!([{"text": "amended"}]);
    let r = fhir_send(
        &w,
        &w.doctor,
        "PUT",
        "/fhir/Condition/mine-1",
        &amended,
        &[],
    )
    .await;
    assert_eq!(
        (r.status.as_u16(), r.json()["id"].as_str().unwrap()),
        (200, mine.as_str())
    );
    assert_eq!(r.json()["meta"]["versionId"], "2");

    // If-Match: a stale version is 412 and changes nothing.
    let mut third = condition(&mine);
    third["note"] = json!([{"text": "third"}]);
    let r = fhir_send(
        &w,
        &w.doctor,
        "PUT",
        &format!("/fhir/Condition/{mine}"),
        &third,
        &[("if-match", "W/\"1\"")],
    )
    .await;
    assert_eq!(r.status, 412, "{}", r.text());
    assert_eq!(r.json()["resourceType"], "OperationOutcome");
    let now = fhir_get(
        &w,
        Some(&w.doctor),
        &format!("/fhir/Condition/{mine}"),
        None,
    )
    .await;
    assert_eq!(now.json()["meta"]["versionId"], "2");
    assert_eq!(now.json()["note"][0]["text"], "amended");
    let r = fhir_send(
        &w,
        &w.doctor,
        "PUT",
        &format!("/fhir/Condition/{mine}"),
        &third,
        &[("if-match", "W/\"2\"")],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["meta"]["versionId"], "3");
    assert_eq!(own(&r.json()), ["mine-1"], "the provider's own id stays");
    let r = fhir_send(
        &w,
        &w.doctor,
        "PUT",
        "/fhir/Condition/never",
        &condition("never"),
        &[("if-match", "W/\"1\"")],
    )
    .await;
    assert_eq!(r.status, 412, "no record to match");

    // Return preferences.
    let r = fhir_send(
        &w,
        &w.doctor,
        "POST",
        "/fhir/Condition",
        &condition("p"),
        &[("prefer", "return=minimal")],
    )
    .await;
    assert_eq!(r.status, 201);
    assert!(r.body.is_empty() && !r.header("location").is_empty());
    let r = fhir_send(
        &w,
        &w.doctor,
        "POST",
        "/fhir/Condition",
        &condition("p"),
        &[("prefer", "return=OperationOutcome")],
    )
    .await;
    assert_eq!(r.json()["resourceType"], "OperationOutcome");
    assert_eq!(r.json()["issue"][0]["severity"], "information");

    // What is refused, and how.
    let mut about_someone = condition("x");
    about_someone["subject"] = json!({"identifier": {"system": SUBJECT, "value": "B123456(6)"}});
    for (method, path, body, status, expression) in [
        (
            "POST",
            "/fhir/Observation".to_owned(),
            condition("x"),
            400,
            "resourceType",
        ),
        (
            "PUT",
            "/fhir/Condition/other".to_owned(),
            condition("x"),
            400,
            "id",
        ),
        (
            "POST",
            "/fhir/Condition".to_owned(),
            json!({"resourceType": "Condition", "subject": subject(), "code": 5}),
            422,
            "Condition.code",
        ),
        (
            "POST",
            "/fhir/Condition".to_owned(),
            about_someone,
            422,
            "Condition.subject",
        ),
        (
            "PUT",
            format!("/fhir/Condition/{mine}"),
            condition(&mine),
            412,
            "",
        ),
    ] {
        let headers: &[(&str, &str)] = if status == 412 {
            &[("if-match", "W/\"9\"")]
        } else {
            &[]
        };
        let r = fhir_send(&w, &w.doctor, method, &path, &body, headers).await;
        assert_eq!(r.status, status, "{method} {path}: {}", r.text());
        assert_eq!(r.json()["resourceType"], "OperationOutcome");
        if !expression.is_empty() {
            assert_eq!(
                r.json()["issue"][0]["expression"][0],
                expression,
                "{method} {path}"
            );
        }
    }
    // Another provider cannot change or withdraw this one's record.
    let r = fhir_send(
        &w,
        &w.other_doctor,
        "DELETE",
        &format!("/fhir/Condition/{mine}"),
        &Value::Null,
        &[],
    )
    .await;
    assert_eq!(r.status, 404);
    let r = fhir_send(
        &w,
        &w.other_doctor,
        "PUT",
        &format!("/fhir/Condition/{mine}"),
        &condition(&mine),
        &[],
    )
    .await;
    assert!(r.status == 403 || r.status == 404, "{}", r.status);
    assert_eq!(
        fhir_get(
            &w,
            Some(&w.doctor),
            &format!("/fhir/Condition/{mine}"),
            None
        )
        .await
        .json()["meta"]["versionId"],
        "3"
    );

    // delete: entered in error. The versions stay; reads answer 410 to whoever could see it.
    let r = fhir_send(
        &w,
        &w.doctor,
        "DELETE",
        &format!("/fhir/Condition/{mine}"),
        &Value::Null,
        &[],
    )
    .await;
    assert_eq!(r.status, 204, "{}", r.text());
    for path in [
        format!("/fhir/Condition/{mine}"),
        format!("/fhir/Condition/{mine}/_history/2"),
    ] {
        let r = fhir_get(&w, Some(&w.doctor), &path, None).await;
        assert_eq!(r.status, 410, "{path}");
        assert_eq!(r.json()["issue"][0]["code"], "not-found");
    }
    let r = fhir_get(
        &w,
        Some(&w.other_doctor),
        &format!("/fhir/Condition/{mine}"),
        None,
    )
    .await;
    assert_eq!(r.status, 404, "who could not see it learns nothing");
    let r = fhir_get(
        &w,
        Some(&w.doctor),
        &format!("/fhir/Condition/{mine}/_history"),
        None,
    )
    .await;
    assert_eq!(r.json()["total"], 4);
    assert_eq!(r.json()["entry"][0]["request"]["method"], "DELETE");
    let r = fhir_get(
        &w,
        Some(&w.doctor),
        &format!("/fhir/Condition?patient={}&_id={mine}", w.recipient),
        None,
    )
    .await;
    assert_eq!(r.json()["total"], 0, "a withdrawn record is not found");
}

#[tokio::test]
async fn a_patients_observations_are_found_by_code_and_date_as_r4_defines_them() {
    let w = under_care().await;
    let glucose = |id: &str, loinc: &str, when: &str| {
        json!({"resourceType": "Observation", "id": id, "status": "final",
               "code": {"coding": [{"system": "http://loinc.org", "code": loinc}]},
               "subject": subject(), "effectiveDateTime": when,
               "valueQuantity": {"value": 5.4, "unit": "mmol/L"}})
    };
    let march = deposited(&w, glucose("g-1", "2345-7", "2026-03-04T10:00:00+08:00")).await;
    let april = deposited(&w, glucose("g-2", "2345-7", "2026-04-01")).await;
    let hba1c = deposited(&w, glucose("h-1", "4548-4", "2026-03-20")).await;
    let found = |query: &'static str| {
        let path = format!("/fhir/Observation?patient={}&{query}", w.recipient);
        let w = &w;
        async move {
            let r = fhir_get(w, Some(&w.doctor), &path, None).await;
            assert_eq!(r.status, 200, "{query}: {}", r.text());
            let mut ids: Vec<String> = r.json()["entry"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .iter()
                .map(|e| e["resource"]["id"].as_str().unwrap().to_owned())
                .collect();
            ids.sort();
            ids
        }
    };
    let sorted = |mut v: Vec<String>| {
        v.sort();
        v
    };
    assert_eq!(
        found("code=http://loinc.org%7C2345-7").await,
        sorted(vec![march.clone(), april.clone()])
    );
    assert_eq!(found("code=4548-4").await, vec![hba1c.clone()]);
    assert_eq!(
        found("code=http://snomed.info/sct%7C2345-7").await,
        Vec::<String>::new()
    );
    assert_eq!(
        found("code=2345-7,4548-4").await.len(),
        3,
        "a comma is any of them"
    );
    assert_eq!(found("code=2345-7&date=2026-03").await, vec![march.clone()]);
    assert_eq!(
        found("date=ge2026-03-10&date=lt2026-05").await,
        sorted(vec![april.clone(), hba1c.clone()])
    );
    assert_eq!(
        found("date=2026-03-04").await,
        vec![march.clone()],
        "a date in Hong Kong"
    );
    assert_eq!(found("date=sa2026-03-31").await, vec![april]);
    let r = fhir_get(
        &w,
        Some(&w.doctor),
        &format!("/fhir/Observation?patient={}&date=ap2026", w.recipient),
        None,
    )
    .await;
    assert_eq!(r.status, 400);
    let r = fhir_get(
        &w,
        Some(&w.doctor),
        &format!("/fhir/Condition?patient={}&date=2026", w.recipient),
        None,
    )
    .await;
    assert_eq!(r.status, 400, "Condition has no date parameter in R4");
}

#[tokio::test]
async fn what_an_attacker_tries_on_fhir_writes_and_searches_is_refused() {
    let w = under_care().await;
    // A user administrator may not deposit, so may not probe identity documents through a
    // create either: refused before anything is looked up.
    let r = fhir_send(&w, &w.ua, "POST", "/fhir/Condition", &condition("x"), &[]).await;
    assert_eq!(r.status, 404, "{}", r.text());
    // A professional's look-ups by document through a write are audited as the counter's.
    let mut nobody = condition("y");
    nobody["subject"] = json!({"identifier": {"system": SUBJECT, "value": "B123456(6)"}});
    let r = fhir_send(&w, &w.doctor, "POST", "/fhir/Condition", &nobody, &[]).await;
    assert_eq!(r.status, 422);
    assert_eq!(
        r.json()["issue"][0]["details"]["coding"][0]["code"],
        "subject-unknown"
    );
    let r = fhir_send(
        &w,
        &w.doctor,
        "POST",
        "/fhir/Condition",
        &condition("z"),
        &[],
    )
    .await;
    assert_eq!(r.status, 201);
    let db = w.t.db.connect().await;
    let finds: Vec<_> = db
        .audit_entries(0, 100_000)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.entry)
        .filter(|e| e.action == "recipient.find")
        .map(|e| {
            (
                e.actor.account,
                e.recipient.map(|r| r.to_string()),
                e.denial_reason,
            )
        })
        .collect();
    assert!(
        finds.contains(&(w.doctor.account, None, Some("not-found".to_owned()))),
        "{finds:?}"
    );
    assert!(
        finds.contains(&(w.doctor.account, Some(w.recipient.clone()), None)),
        "{finds:?}"
    );
    assert!(!finds.iter().any(|f| f.0 == w.ua.account), "{finds:?}");

    // Another provider's id system cannot be claimed.
    let mut spoofed = condition("s-1");
    spoofed["identifier"] = json!([{"system": format!("https://ehrshare.example/fhir/NamingSystem/provider-id/{}", uuid::Uuid::now_v7()), "value": "x"}]);
    let r = fhir_send(&w, &w.doctor, "POST", "/fhir/Condition", &spoofed, &[]).await;
    assert_eq!(r.status, 422, "{}", r.text());
    assert_eq!(
        r.json()["issue"][0]["expression"][0],
        "Condition.identifier[0].system"
    );

    // A withdrawn record is not written to again; deleting it again succeeds.
    let id = deposited(&w, condition("w-1")).await;
    let r = fhir_send(
        &w,
        &w.doctor,
        "DELETE",
        &format!("/fhir/Condition/{id}"),
        &Value::Null,
        &[],
    )
    .await;
    assert_eq!(r.status, 204);
    let r = fhir_send(
        &w,
        &w.doctor,
        "DELETE",
        &format!("/fhir/Condition/{id}"),
        &Value::Null,
        &[],
    )
    .await;
    assert_eq!(r.status, 204, "a retried delete");
    let r = fhir_send(
        &w,
        &w.doctor,
        "PUT",
        &format!("/fhir/Condition/{id}"),
        &condition(&id),
        &[],
    )
    .await;
    assert_eq!(r.status, 409, "{}", r.text());
    assert_eq!(
        r.json()["issue"][0]["details"]["coding"][0]["code"],
        "record-withdrawn"
    );

    // Dates at the calendar's end, and offsets past any page, are the caller's mistakes or
    // empty pages, never a 500.
    for query in [
        "_lastUpdated=9999-12-31",
        "_lastUpdated=9999-12-31T23:59:59.9Z",
        "_lastUpdated=9999",
    ] {
        let r = fhir_get(
            &w,
            Some(&w.doctor),
            &format!("/fhir/Condition?patient={}&{query}", w.recipient),
            None,
        )
        .await;
        assert_eq!(r.status, 400, "{query}");
    }
    // `_format` with its `+` unescaped, as people type it.
    let r = fhir_get(
        &w,
        Some(&w.doctor),
        &format!(
            "/fhir/Condition/{}?_format=application/fhir+json",
            deposited(&w, condition("f-1")).await
        ),
        None,
    )
    .await;
    assert_eq!(r.status, 200);
}

#[tokio::test]
async fn an_amendment_that_moves_a_record_to_another_domain_is_decided_in_its_new_domain() {
    let w = under_care().await;
    let lab = json!({"resourceType": "Observation", "id": "o-1", "status": "final",
        "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "laboratory"}]}],
        "code": {"text": "Chest"}, "subject": subject()});
    let id = deposited(&w, lab.clone()).await;
    let patient = w.patient().await;
    let r = w
        .post(
            &patient,
            &format!("/api/v1/me/recipients/{}/restrictions", w.recipient),
            json!({"domain": "radiology"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let path = format!("/fhir/Observation/{id}");
    let read = || fhir_get(&w, Some(&w.doctor), &path, None);
    assert_eq!(
        read().await.status,
        200,
        "a laboratory result is not restricted"
    );
    let mut imaging = lab;
    imaging["category"] = json!([{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "imaging"}]}]);
    assert_eq!(deposited(&w, imaging).await, id);
    assert_eq!(
        read().await.status,
        404,
        "now radiology, which the patient restricted"
    );
    let r = fhir_get(
        &w,
        Some(&w.doctor),
        &format!("/fhir/Observation?patient={}", w.recipient),
        None,
    )
    .await;
    assert_eq!(r.json()["total"], 0);
}

#[tokio::test]
async fn a_token_that_does_not_read_patients_finds_no_patient() {
    let w = world().await;
    let token = doctors_token(&w, "user/Condition.read").await;
    let r = bearer(
        &w,
        &token,
        &format!("/fhir/Patient?identifier={SUBJECT}%7CA123456(3)"),
    )
    .await;
    assert_eq!(r.status, 403, "{}", r.text());
    let r = bearer(&w, &token, &format!("/fhir/Patient/{}", w.recipient)).await;
    assert_eq!(r.status, 403);
    let token = doctors_token(&w, "user/*.read").await;
    let r = bearer(&w, &token, &format!("/fhir/Patient/{}", w.recipient)).await;
    assert_eq!(r.status, 200, "{}", r.text());
}

#[tokio::test]
async fn records_are_found_by_status_category_and_either_identifier() {
    let w = under_care().await;
    let mut lab = resource_of("Observation", "lab-1");
    lab["identifier"] = json!([{"system": "urn:lab", "value": "L-77"}]);
    let lab = deposited(&w, lab).await;
    let mut amended = resource_of("Observation", "lab-2");
    amended["status"] = json!("amended");
    amended["category"] = json!([{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "vital-signs"}]}]);
    let amended = deposited(&w, amended).await;
    let found = |query: String| {
        let w = &w;
        async move {
            let path = format!("/fhir/Observation?patient={}&{query}", w.recipient);
            let r = fhir_get(w, Some(&w.doctor), &path, None).await;
            assert_eq!(r.status, 200, "{query}: {}", r.text());
            let mut ids: Vec<String> = r.json()["entry"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .iter()
                .map(|e| e["resource"]["id"].as_str().unwrap().to_owned())
                .collect();
            ids.sort();
            ids
        }
    };
    assert_eq!(found("status=amended".into()).await, vec![amended.clone()]);
    assert_eq!(found("status=final,amended".into()).await.len(), 2);
    assert_eq!(
        found("category=vital-signs".into()).await,
        vec![amended.clone()]
    );
    assert_eq!(
        found(
            "category=http://terminology.hl7.org/CodeSystem/observation-category%7Claboratory"
                .into()
        )
        .await,
        vec![lab.clone()]
    );
    assert_eq!(
        found("identifier=urn:lab%7CL-77".into()).await,
        vec![lab.clone()]
    );
    let own = format!(
        "identifier=https://ehrshare.example/fhir/NamingSystem/provider-id/{}%7Clab-2",
        w.hcp
    );
    assert_eq!(
        found(own).await,
        vec![amended],
        "the provider's own id, which the server adds"
    );
    assert_eq!(
        found("identifier=urn:lab%7CL-78".into()).await,
        Vec::<String>::new()
    );
    let r = fhir_get(
        &w,
        Some(&w.doctor),
        &format!("/fhir/Condition?patient={}&status=active", w.recipient),
        None,
    )
    .await;
    assert_eq!(r.status, 400, "Condition's status is clinical-status in R4");
}

#[tokio::test]
async fn a_search_is_sorted_by_date_or_last_change_either_way() {
    let w = under_care().await;
    let obs = |id: &str, when: Option<&str>| {
        let mut v = resource_of("Observation", id);
        match when {
            Some(when) => v["effectiveDateTime"] = json!(when),
            None => {
                v.as_object_mut().unwrap().remove("effectiveDateTime");
            }
        }
        v
    };
    let march = deposited(&w, obs("s-1", Some("2026-03-01"))).await;
    let none = deposited(&w, obs("s-2", None)).await;
    let january = deposited(&w, obs("s-3", Some("2026-01-15"))).await;
    let order = |sort: &'static str| {
        let w = &w;
        async move {
            let path = format!("/fhir/Observation?patient={}&_sort={sort}", w.recipient);
            let r = fhir_get(w, Some(&w.doctor), &path, None).await;
            assert_eq!(r.status, 200, "{sort}: {}", r.text());
            r.json()["entry"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["resource"]["id"].as_str().unwrap().to_owned())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        order("date").await,
        [january.clone(), march.clone(), none.clone()]
    );
    assert_eq!(
        order("-date").await,
        [march.clone(), january.clone(), none.clone()]
    );
    assert_eq!(
        order("_lastUpdated").await,
        [march.clone(), none.clone(), january.clone()]
    );
    assert_eq!(order("-_lastUpdated").await, [january, none, march]);
    let r = fhir_get(
        &w,
        Some(&w.doctor),
        &format!("/fhir/Observation?patient={}&_sort=code", w.recipient),
        None,
    )
    .await;
    assert_eq!(r.status, 400);
}

#[tokio::test]
async fn everything_is_the_summary_restricted_items_absent_and_uncounted() {
    let w = under_care().await;
    let kept = deposited(&w, condition("e-1")).await;
    let hidden = deposited(&w, condition("e-2")).await;
    let note = deposited(&w, note("e-3")).await;
    let patient = w.patient().await;
    let r = w
        .post(
            &patient,
            &format!("/api/v1/me/recipients/{}/restrictions", w.recipient),
            json!({"record": hidden}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let path = format!("/fhir/Patient/{}/$everything", w.recipient);
    let r = fhir_get(&w, Some(&w.doctor), &path, None).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let mut ids: Vec<String> = r.json()["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["resource"]["id"].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    let mut want = vec![kept, note];
    want.sort();
    assert_eq!(ids, want);
    assert_eq!(r.json()["total"], 2);
    // Registration staff: demographics only, so nothing here.
    let r = fhir_get(&w, Some(&w.clerk), &path, None).await;
    assert_eq!(
        (r.status.as_u16(), r.json()["total"].as_u64()),
        (200, Some(0))
    );
    // Another provider's doctor: the 404 of a patient who is not there.
    let refused = fhir_get(&w, Some(&w.other_doctor), &path, None).await;
    let nobody = fhir_get(
        &w,
        Some(&w.other_doctor),
        &format!("/fhir/Patient/{}/$everything", uuid::Uuid::now_v7()),
        None,
    )
    .await;
    assert_eq!(
        (refused.status, nobody.status),
        (
            axum::http::StatusCode::NOT_FOUND,
            axum::http::StatusCode::NOT_FOUND
        )
    );
    let strip = |mut v: Value| {
        v["issue"][0]["diagnostics"] = Value::Null;
        v
    };
    assert_eq!(strip(refused.json()), strip(nobody.json()));
    let r = fhir_get(&w, Some(&w.doctor), &format!("{path}?_count=1"), None).await;
    assert_eq!(r.status, 400);
}
