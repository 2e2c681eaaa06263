//! What a read released, named by reference to the record history (ADR 0023): the recipient's
//! access log lists exactly the records and versions each read released, however the record
//! changed after, and `audit verify` names a read whose history was altered.

use axum::http::Request;
use ehrshare_testkit::{Agent, SignedBy, TestApp, TestResponse};
use serde_json::{Value, json};

use crate::world::*;

async fn fhir(w: &World, agent: &Agent, path: &str) -> TestResponse {
    let b = Request::get(path).signed_by(agent);
    w.t.send(b.body(axum::body::Body::empty()).unwrap()).await
}

fn sorted(mut v: Vec<(String, u64)>) -> Vec<(String, u64)> {
    v.sort();
    v
}

/// The records (id, version) of a summary or a page of the JSON API.
fn listed(r: &TestResponse) -> Vec<(String, u64)> {
    let v = r.json();
    let records: Vec<&Value> = match v["domains"].as_array() {
        Some(domains) => domains
            .iter()
            .flat_map(|d| d["records"].as_array().unwrap())
            .collect(),
        None => v["records"].as_array().unwrap().iter().collect(),
    };
    sorted(
        records
            .iter()
            .map(|r| {
                (
                    r["id"].as_str().unwrap().to_owned(),
                    r["version"].as_u64().unwrap(),
                )
            })
            .collect(),
    )
}

/// The resources (id, versionId) of a FHIR Bundle, or of one resource.
fn resources(r: &TestResponse) -> Vec<(String, u64)> {
    let v = r.json();
    let one = |res: &Value| {
        (
            res["id"].as_str().unwrap().to_owned(),
            res["meta"]["versionId"].as_str().unwrap().parse().unwrap(),
        )
    };
    match v["entry"].as_array() {
        Some(entries) => sorted(entries.iter().map(|e| one(&e["resource"])).collect()),
        None => vec![one(&v)],
    }
}

/// The records the recipient's own log names for entry `seq`.
async fn logged(w: &World, patient: &Agent, seq: u64) -> (Vec<(String, Option<u64>)>, bool) {
    let log = w
        .get(
            patient,
            &format!("/api/v1/me/recipients/{}/access-log", w.recipient),
        )
        .await;
    assert_eq!(log.status, 200, "{}", log.text());
    let log = log.json();
    let line = log
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["seq"] == seq)
        .unwrap_or_else(|| panic!("entry {seq} in {log}"))
        .clone();
    let mut records: Vec<(String, Option<u64>)> = line["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["id"].as_str().unwrap().to_owned(), r["version"].as_u64()))
        .collect();
    records.sort();
    (records, line["records_checked"].as_bool().unwrap())
}

fn versioned(v: &[(String, u64)]) -> Vec<(String, Option<u64>)> {
    v.iter().map(|(id, n)| (id.clone(), Some(*n))).collect()
}

async fn deposited(w: &World, resource: Value) -> String {
    let r = w.deposit(resource).await;
    assert!(r.status == 201 || r.status == 200, "{}", r.text());
    r.json()["id"].as_str().unwrap().to_owned()
}

fn amended(mut resource: Value, display: &str) -> Value {
    resource["code"]["coding"][0]["display"] = json!(display);
    resource
}

async fn verify(t: &TestApp) -> ehrshare_app::verify::VerifyReport {
    let db = t.db.connect().await;
    t.app.write_checkpoint().await.unwrap();
    ehrshare_app::verify::verify(
        &db,
        &t.checkpoint_file(),
        &TestApp::public_key(),
        &mut |_, _| {},
    )
    .await
    .unwrap()
}

#[tokio::test]
async fn the_access_log_lists_exactly_the_records_and_versions_read() {
    let w = world().await;
    assert_eq!(w.consent("indefinite").await.status, 201);
    assert_eq!(w.episode().await.status, 201);
    let dx1 = deposited(&w, condition("dx-1")).await;
    let dx2 = deposited(&w, condition("dx-2")).await;
    let dx3 = deposited(&w, condition("dx-3")).await;
    let dx4 = deposited(&w, condition("dx-4")).await;
    deposited(&w, medication("rx-1")).await;
    deposited(&w, note("note-1")).await;
    // An amendment, a record the patient restricts, one entered in error.
    assert_eq!(
        deposited(&w, amended(condition("dx-1"), "Asthma, mild")).await,
        dx1
    );
    let patient = w.patient().await;
    let r = w
        .post(
            &patient,
            &format!("/api/v1/me/recipients/{}/restrictions", w.recipient),
            json!({"record": dx3}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let r = w
        .post(
            &w.doctor,
            &format!("/api/v1/records/{dx4}/entered-in-error"),
            json!({"reason": "wrong patient"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());

    // Each read: what it was, its entry, what it answered.
    type Read = (&'static str, u64, Vec<(String, u64)>);
    let mut reads: Vec<Read> = Vec::new();
    // A summary.
    let r = w.summary(&w.doctor).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let summary = listed(&r);
    assert_eq!(summary.len(), 4, "dx-1 v2, dx-2, rx-1, note-1: {summary:?}");
    assert!(summary.contains(&(dx1.clone(), 2)));
    reads.push(("summary", w.last_entry().await.seq, summary));
    // A deposit between reads, then a domain's page.
    let dx5 = deposited(&w, condition("dx-5")).await;
    let r = w
        .records(&w.doctor, "domain=diagnosis&page=1&per_page=2")
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let page = listed(&r);
    assert_eq!(
        page.len(),
        1,
        "three diagnoses shown, the second page: {page:?}"
    );
    reads.push(("page", w.last_entry().await.seq, page));
    // A FHIR search, a vread of the first version, an instance history.
    let r = fhir(
        &w,
        &w.doctor,
        &format!("/fhir/Condition?patient={}", w.recipient),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let search = resources(&r);
    assert_eq!(search.len(), 3, "{search:?}");
    assert!(search.contains(&(dx5.clone(), 1)));
    reads.push(("search", w.last_entry().await.seq, search));
    let r = fhir(&w, &w.doctor, &format!("/fhir/Condition/{dx1}/_history/1")).await;
    assert_eq!(r.status, 200, "{}", r.text());
    reads.push(("vread", w.last_entry().await.seq, resources(&r)));
    let r = fhir(&w, &w.doctor, &format!("/fhir/Condition/{dx1}/_history")).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(resources(&r).len(), 2);
    let history_seq = w.last_entry().await.seq;
    reads.push(("history", history_seq, vec![(dx1.clone(), 2)]));
    // A read refused (the restricted record) and a deposit release nothing.
    let r = fhir(&w, &w.doctor, &format!("/fhir/Condition/{dx3}")).await;
    assert_eq!(r.status, 404, "{}", r.text());
    let refused = w.last_entry().await.seq;
    deposited(&w, condition("dx-6")).await;
    let deposit = w.last_entry().await.seq;

    // The record changes after the reads: what they released does not.
    assert_eq!(
        deposited(&w, amended(condition("dx-2"), "Asthma, severe")).await,
        dx2
    );
    let r = w
        .post(
            &w.doctor,
            &format!("/api/v1/records/{dx5}/entered-in-error"),
            json!({"reason": "wrong patient"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    for (what, seq, released) in &reads {
        let (records, checked) = logged(&w, &patient, *seq).await;
        assert!(checked, "{what}");
        assert_eq!(records, versioned(released), "{what}");
    }
    for (what, seq) in [("refused", refused), ("deposit", deposit)] {
        assert_eq!(logged(&w, &patient, seq).await, (vec![], true), "{what}");
    }
    let log = w
        .get(
            &patient,
            &format!("/api/v1/me/recipients/{}/access-log", w.recipient),
        )
        .await
        .json();
    let history = log
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["seq"] == history_seq)
        .unwrap();
    assert_eq!(history["records"][0]["history"], true, "{history}");
    // The entries name no list: a summary's entry is small whatever it released.
    let db = w.t.db.connect().await;
    let summary_entry = db.audit_entries(reads[0].1, 1).await.unwrap().remove(0);
    assert!(summary_entry.entry.record_ids.is_empty());
    assert_eq!(
        w.disclosed(&summary_entry).await.len(),
        4,
        "rebuilt from the history"
    );
    let report = verify(&w.t).await;
    assert_eq!(report.finding, None, "{report:?}");

    // A provider's user administrator sees what their user read, without the restricted
    // record (the patient's own).
    let r = w
        .get(&w.ua, &format!("/api/v1/providers/{}/access-log", w.hcp))
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let line = r
        .json()
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["seq"] == reads[0].1)
        .cloned()
        .unwrap();
    assert_eq!(line["records"].as_array().unwrap().len(), 4, "{line}");
    assert!(!line.to_string().contains(&dx3), "{line}");
    // And as FHIR AuditEvents: an entity a record released, nothing of the bitmap.
    let r = fhir(
        &w,
        &w.ua,
        &format!("/fhir/AuditEvent?patient={}", w.recipient),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let events = r.json();
    let summary_event = events["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["resource"])
        .find(|e| e["id"].as_str() == Some(reads[0].1.to_string().as_str()))
        .unwrap_or_else(|| panic!("{events}"));
    let mut named: Vec<String> = summary_event["entity"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["what"]["identifier"]["system"] == "urn:ehrshare:record")
        .filter_map(|e| e["what"]["identifier"]["value"].as_str())
        .map(str::to_owned)
        .collect();
    named.sort();
    let mut expected: Vec<String> = reads[0].2.iter().map(|(id, _)| id.clone()).collect();
    expected.sort();
    assert_eq!(named, expected, "{summary_event}");
    assert!(!summary_event.to_string().contains(&dx3));

    // The patient's portal page says how many left, each a link to it on the record page.
    for (lang, count, version) in [
        ("en", "Records released: 4", "versions 1 to 2"),
        ("zh-HK", "發放的紀錄：4 項", "第 1 至 2 版"),
    ] {
        let r =
            w.t.send(ehrshare_testkit::accounts::page_get(
                &patient,
                &format!("/me/{}/access-log?lang={lang}", w.recipient),
            ))
            .await;
        assert_eq!(r.status, 200, "{}", r.text());
        let html = r.text();
        assert!(html.contains(count), "{lang}: {html}");
        assert!(html.contains(version), "{lang}: {html}");
        assert!(
            html.contains(&format!("/me/{}/record#record-{dx1}", w.recipient)),
            "{html}"
        );
    }
    let r =
        w.t.send(ehrshare_testkit::accounts::page_get(
            &patient,
            &format!("/me/{}/record?lang=en", w.recipient),
        ))
        .await;
    assert!(
        r.text().contains(&format!("id=\"record-{dx1}\"")),
        "{}",
        r.text()
    );
}

#[tokio::test]
async fn audit_verify_names_a_read_whose_record_history_was_altered() {
    let w = world().await;
    assert_eq!(w.consent("indefinite").await.status, 201);
    assert_eq!(w.episode().await.status, 201);
    deposited(&w, condition("dx-1")).await;
    deposited(&w, condition("dx-2")).await;
    assert_eq!(w.summary(&w.doctor).await.status, 200);
    let seq = w.last_entry().await.seq;
    let patient = w.patient().await;
    assert_eq!(verify(&w.t).await.finding, None);

    // The history is append-only.
    let db = w.t.db.connect().await;
    for sql in [
        "UPDATE record_version SET status = 'entered-in-error'",
        "DELETE FROM record_version",
    ] {
        let result: Result<_, sqlx::Error> = ehrshare_store::on_pool!(&db, p => {
            sqlx::query(sql).execute(p).await.map(|_| ())
        });
        let err = result.expect_err(sql);
        assert!(err.to_string().contains("append-only"), "{sql}: {err}");
    }
    // Past the triggers (an administrator of the database), a version's status rewritten.
    let (off, on) = match db.backend() {
        ehrshare_store::Backend::Sqlite => (
            "DROP TRIGGER record_version_no_update",
            "CREATE TRIGGER record_version_no_update BEFORE UPDATE ON record_version \
             BEGIN SELECT RAISE(ABORT, 'record versions are append-only'); END",
        ),
        ehrshare_store::Backend::Postgres => (
            "ALTER TABLE record_version DISABLE TRIGGER record_version_append_only",
            "ALTER TABLE record_version ENABLE TRIGGER record_version_append_only",
        ),
    };
    ehrshare_testkit::audit::tamper(&db, off).await;
    ehrshare_testkit::audit::tamper(
        &db,
        "UPDATE record_version SET status = 'entered-in-error' WHERE record_id IN \
         (SELECT record_id FROM record WHERE source_id = 'Condition/dx-1')",
    )
    .await;
    ehrshare_testkit::audit::tamper(&db, on).await;
    let report = verify(&w.t).await;
    assert!(
        matches!(report.finding, Some(ehrshare_core::audit::checkpoint::Finding::Disclosure { seq: s, .. }) if s == seq),
        "{report:?}"
    );
    // The patient's log says the entry no longer checks, rather than a wrong list.
    let (records, checked) = logged(&w, &patient, seq).await;
    assert!(!checked);
    assert!(records.is_empty());
    let r =
        w.t.send(ehrshare_testkit::accounts::page_get(
            &patient,
            &format!("/me/{}/access-log?lang=en", w.recipient),
        ))
        .await;
    assert!(
        r.text()
            .contains("no longer matches what this access released"),
        "{}",
        r.text()
    );
}
