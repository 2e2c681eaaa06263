//! `POST /fhir/$import` (ADR 0025): NDJSON, a line a resource; each line read, decided and
//! audited on its own, the accepted ones committed together, in line order whatever name a
//! line gives its record; a refused line costs no other; the same file again (lines without
//! an id too) changes nothing.

use serde_json::{Value, json};

use super::*;

/// `POST /fhir/$import` with `body` as `content_type`.
async fn import(
    w: &World,
    agent: Option<&Agent>,
    body: Vec<u8>,
    content_type: &str,
) -> TestResponse {
    let mut b = Request::post("/fhir/$import").header("content-type", content_type);
    if let Some(a) = agent {
        b = b.signed_by(a);
    }
    w.t.send(b.body(axum::body::Body::from(body)).unwrap())
        .await
}

fn ndjson(lines: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    for l in lines {
        out.extend_from_slice(l);
        out.push(b'\n');
    }
    out
}

fn line(v: &Value) -> Vec<u8> {
    v.to_string().into_bytes()
}

/// Each entry's status code, in order.
fn statuses(r: &TestResponse) -> Vec<u16> {
    assert_eq!(r.status, 200, "{}", r.text());
    let b = r.json();
    assert_eq!(b["type"], "batch-response");
    b["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            e["response"]["status"].as_str().unwrap()[..3]
                .parse()
                .unwrap()
        })
        .collect()
}

async fn count(w: &World, resource_type: &str) -> u64 {
    let r = fhir_get(
        w,
        Some(&w.doctor),
        &format!("/fhir/{resource_type}?patient={}&_count=1", w.recipient),
        None,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()["total"].as_u64().unwrap()
}

#[tokio::test]
async fn an_import_stores_each_good_line_and_refuses_each_bad_one_alone() {
    let w = under_care().await;
    let mut unknown = resource_of("Condition", "imp-4");
    unknown["colour"] = json!("red");
    let mut stranger = resource_of("Condition", "imp-6");
    stranger["subject"] = json!({"reference": "Patient/00000000-0000-4000-8000-000000000000"});
    let lines = vec![
        line(&resource_of("Condition", "imp-1")),
        line(&resource_of("Observation", "imp-2")),
        b"not json".to_vec(),
        br#"{"resourceType":"Condition","id":"imp-3","id":"again"}"#.to_vec(),
        line(&unknown),
        Vec::new(),
        line(&stranger),
        b"{\"resourceType\":\"Condition\",\"id\":\"\xff\"}".to_vec(),
        line(&resource_of("Encounter", "imp-8")),
    ];
    let before = w.audit_count().await;
    let r = import(
        &w,
        Some(&w.doctor),
        ndjson(&lines),
        "application/fhir+ndjson",
    )
    .await;
    let got = statuses(&r);
    assert_eq!(got.len(), lines.len(), "{}", r.text());
    assert_eq!(got[0], 201);
    assert_eq!(got[1], 201);
    assert_eq!(got[8], 201);
    for (i, code) in [(2, 400), (5, 400), (7, 400)] {
        assert_eq!(got[i], code, "line {}: {}", i + 1, r.json()["entry"][i]);
    }
    assert!(r.json()["entry"][2].to_string().contains("not-json"));
    // A key twice and an unknown element: refused with the path in the resource.
    assert_eq!(got[3], 422, "{}", r.json()["entry"][3]);
    assert!(
        r.json()["entry"][3]
            .to_string()
            .contains("\"Condition.id\"")
    );
    assert!(
        (400..500).contains(&got[4]),
        "an unknown element: {}",
        got[4]
    );
    assert_eq!(
        got[6],
        422,
        "about no registered person: {}",
        r.json()["entry"][6]
    );
    // A refusal names where, under the entry that answers its line.
    let outcome = &r.json()["entry"][4]["response"]["outcome"];
    assert!(
        outcome.to_string().contains("colour"),
        "the unknown element is named: {outcome}"
    );
    assert_eq!(count(&w, "Condition").await, 1);
    assert_eq!(count(&w, "Observation").await, 1);
    assert_eq!(count(&w, "Encounter").await, 1);
    // Every stored record has its audit entry (and the refused decision its own).
    assert!(w.audit_count().await >= before + 4);

    // The same file again stores nothing new: each good line answers as unchanged.
    let again =
        statuses(&import(&w, Some(&w.doctor), ndjson(&lines), "application/x-ndjson").await);
    assert_eq!((again[0], again[1], again[8]), (200, 200, 200));
    assert_eq!(count(&w, "Condition").await, 1);
    assert_eq!(count(&w, "Observation").await, 1);
}

#[tokio::test]
async fn an_import_commits_in_groups_and_a_record_twice_is_two_versions() {
    let w = under_care().await;
    let mut lines: Vec<Vec<u8>> = (0..620)
        .map(|i| line(&resource_of("Observation", &format!("bulk-{i}"))))
        .collect();
    // The same record again, changed: its second version, in the same request.
    let mut changed = resource_of("Observation", "bulk-7");
    changed["valueQuantity"] = json!({"value": 6.1, "unit": "mmol/L"});
    lines.push(line(&changed));
    let r = import(
        &w,
        Some(&w.doctor),
        ndjson(&lines),
        "application/fhir+ndjson",
    )
    .await;
    let got = statuses(&r);
    assert!(got[..620].iter().all(|s| *s == 201), "{:?}", &got[..10]);
    assert_eq!(got[620], 200, "{}", r.json()["entry"][620]);
    assert_eq!(count(&w, "Observation").await, 620);
    let etag = r.json()["entry"][620]["response"]["etag"].clone();
    assert_eq!(etag, "W/\"2\"");
}

#[tokio::test]
async fn an_import_is_ndjson_of_at_most_a_thousand_lines_from_someone_logged_in() {
    let w = under_care().await;
    let one = ndjson(&[line(&resource_of("Condition", "x-1"))]);
    let r = import(&w, Some(&w.doctor), one.clone(), "application/fhir+json").await;
    assert_eq!(r.status, 415, "{}", r.text());
    let r = import(&w, None, one, "application/fhir+ndjson").await;
    assert_eq!(r.status, 401, "{}", r.text());
    let many: Vec<Vec<u8>> = (0..1001)
        .map(|i| line(&resource_of("Condition", &format!("m-{i}"))))
        .collect();
    let r = import(
        &w,
        Some(&w.doctor),
        ndjson(&many),
        "application/fhir+ndjson",
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("too-many-lines"), "{}", r.text());
    assert_eq!(count(&w, "Condition").await, 0);
}

#[tokio::test]
async fn lines_without_an_id_are_stored_once_however_often_sent() {
    let w = under_care().await;
    let mut no_id = resource_of("Condition", "unused");
    no_id.as_object_mut().unwrap().remove("id");
    let body = ndjson(&[line(&no_id)]);
    assert_eq!(
        statuses(&import(&w, Some(&w.doctor), body.clone(), "application/fhir+ndjson").await),
        [201]
    );
    assert_eq!(
        statuses(&import(&w, Some(&w.doctor), body, "application/fhir+ndjson").await),
        [200]
    );
    assert_eq!(count(&w, "Condition").await, 1);
}

#[tokio::test]
async fn two_names_for_one_record_in_one_request_apply_in_line_order() {
    let w = under_care().await;
    let first = resource_of("Condition", "al-1");
    let r = import(
        &w,
        Some(&w.doctor),
        ndjson(&[line(&first)]),
        "application/fhir+ndjson",
    )
    .await;
    assert_eq!(statuses(&r), [201]);
    let location = r.json()["entry"][0]["response"]["location"]
        .as_str()
        .unwrap()
        .to_owned();
    let server_id = location.split('/').nth_back(2).unwrap().to_owned();
    // Line 1 changes it by its server id; line 2 sends the first content again by the
    // provider's own id: the record ends as line 2 left it, at version 3.
    let mut changed = resource_of("Condition", &server_id);
    changed["code"]["text"] = json!("Asthma, severe");
    let r = import(
        &w,
        Some(&w.doctor),
        ndjson(&[line(&changed), line(&first)]),
        "application/fhir+ndjson",
    )
    .await;
    assert_eq!(statuses(&r), [200, 200], "{}", r.text());
    assert_eq!(r.json()["entry"][0]["response"]["etag"], "W/\"2\"");
    assert_eq!(r.json()["entry"][1]["response"]["etag"], "W/\"3\"");
    let read = fhir_get(
        &w,
        Some(&w.doctor),
        &format!("/fhir/Condition/{server_id}"),
        None,
    )
    .await;
    assert_eq!(read.status, 200, "{}", read.text());
    assert_eq!(read.json()["code"]["text"], "Asthma");
}

/// Provider B under the care of the world's recipient too, with its consent and an episode.
async fn second_provider_under_care(w: &World) {
    let other = w.other_doctor_hcp().await;
    let clerk =
        w.t.agent(
            ehrshare_app::duty::Scope::Hcp(other),
            "clerk.b",
            "registration-staff",
            false,
        )
        .await;
    let consent = with_kind(
        json!({"method": "access-key", "access_key": w.key}),
        "indefinite",
    );
    for (path, body) in [
        (
            format!("/api/v1/recipients/{}/consents", w.recipient),
            consent,
        ),
        (
            format!("/api/v1/recipients/{}/episodes", w.recipient),
            json!({"kind": "attendance"}),
        ),
    ] {
        let r = w.post(&clerk, &path, body).await;
        assert_eq!(r.status, 201, "{}", r.text());
    }
}

#[tokio::test]
async fn an_import_never_writes_into_another_providers_record() {
    let w = under_care().await;
    second_provider_under_care(&w).await;
    // Provider A's record under its own id `theirs-1`.
    let theirs = deposited(&w, resource_of("Condition", "theirs-1")).await;
    // Provider B names it by its server id, then by A's own id, with other content: what B
    // writes is B's own records, and A's stays as it was.
    let mut changed = resource_of("Condition", "theirs-1");
    changed["code"]["text"] = json!("Changed by another provider");
    let mut by_server_id = resource_of("Condition", &theirs);
    by_server_id["code"]["text"] = json!("Also changed");
    let r = import(
        &w,
        Some(&w.other_doctor),
        ndjson(&[line(&by_server_id), line(&changed)]),
        "application/fhir+ndjson",
    )
    .await;
    assert_eq!(statuses(&r), vec![201, 201], "{}", r.text());
    let r = fhir_get(
        &w,
        Some(&w.doctor),
        &format!("/fhir/Condition/{theirs}"),
        None,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["meta"]["versionId"], "1", "{}", r.text());
    assert!(!r.text().contains("Changed by another provider"));
    assert!(!r.text().contains("Also changed"));
}
