//! The patient's access log, second pass (issue 27, items 5, 6 and 9): filtered by provider
//! and period; an entry reported as suspicious becomes a case beside the alerts, seen by the
//! provider's user administrators and the office's privacy officers, and the reporter is told
//! the outcome; a record or a domain restricted from the record page.

use axum::body::Body;
use axum::http::Request;
use ehrshare_app::duty::Scope;
use ehrshare_testkit::{page_get, page_post};
use serde_json::{Value, json};

use crate::world::world;

fn entries(v: &Value) -> Vec<Value> {
    v.as_array().cloned().unwrap_or_default()
}

#[tokio::test]
async fn a_reported_access_is_a_case_for_the_provider_and_the_office_and_the_reporter_is_told() {
    let w = world().await;
    assert_eq!(w.consent("indefinite").await.status, 201);
    assert_eq!(w.episode().await.status, 201);
    assert_eq!(w.summary(&w.doctor).await.status, 200);
    let patient = w.patient().await;
    let log = w
        .get(
            &patient,
            &format!("/api/v1/me/recipients/{}/access-log", w.recipient),
        )
        .await;
    let read = entries(&log.json())
        .into_iter()
        .find(|l| l["action"] == "record.summary" && l["actor_user_name"] == "dr.a")
        .unwrap_or_else(|| panic!("{}", log.text()));
    let seq = read["seq"].as_u64().unwrap();
    let path = format!(
        "/api/v1/me/recipients/{}/access-log/{seq}/report",
        w.recipient
    );

    // Refusals: no words, too many, an entry about someone else, a staff session.
    let r = w.post(&patient, &path, json!({"words": "  "})).await;
    assert_eq!(r.status, 422, "{}", r.text());
    assert_eq!(r.json()["code"], "report-words-required");
    let r = w
        .post(&patient, &path, json!({"words": "x".repeat(1001)}))
        .await;
    assert_eq!(r.status, 422);
    let r = w
        .post(
            &patient,
            &format!("/api/v1/me/recipients/{}/access-log/0/report", w.recipient),
            json!({"words": "who?"}),
        )
        .await;
    assert_eq!(r.status, 404, "{}", r.text());
    let r = w
        .post(&w.doctor, &path, json!({"words": "hiding my tracks"}))
        .await;
    assert_eq!(r.status, 404, "{}", r.text());

    let r = w
        .post(
            &patient,
            &path,
            json!({"words": "I have never been to this clinic <b>at all</b>"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.json()["status"], "open");
    let e = w.last_entry().await.entry;
    assert_eq!(e.action, "access.report");
    assert!(e.reason.is_none(), "the words are not in the audit log");
    let r = w.post(&patient, &path, json!({"words": "again"})).await;
    assert_eq!(r.status, 409, "{}", r.text());
    assert_eq!(r.json()["code"], "already-reported");

    // The provider's user administrators see it beside the alerts, naming the entry; the
    // other provider's do not.
    let alerts = w
        .get(&w.ua, &format!("/api/v1/providers/{}/alerts", w.hcp))
        .await;
    let case = entries(&alerts.json())
        .into_iter()
        .find(|a| a["rule"] == "patient-report")
        .unwrap_or_else(|| panic!("{}", alerts.text()));
    assert_eq!(case["entry"], seq);
    assert_eq!(
        case["detail"],
        "I have never been to this clinic <b>at all</b>"
    );
    let other = w
        .get(&w.other_ua, &format!("/api/v1/providers/{}/alerts", w.hcp))
        .await;
    assert_eq!(other.status, 404, "{}", other.text());
    // The office's privacy officers see it among the open alerts.
    let po =
        w.t.agent(Scope::Office, "office.privacy", "privacy-officer", false)
            .await;
    let open = w.get(&po, "/api/v1/office/alerts").await;
    assert!(
        entries(&open.json()).iter().any(|a| a["id"] == case["id"]),
        "{}",
        open.text()
    );
    // The provider's page shows it, escaped.
    let page = w.t.send(page_get(&w.ua, "/hcp/alerts?lang=en")).await;
    assert!(
        page.text().contains("&#60;b&#62;at all&#60;/b&#62;") && !page.text().contains("<b>at"),
        "{}",
        page.text()
    );

    // The provider's administrators see it but do not close it: the office does.
    let review = format!("/api/v1/alerts/{}/review", case["id"].as_str().unwrap());
    let r = w
        .post(&w.ua, &review, json!({"note": "Nothing to see."}))
        .await;
    assert_eq!(r.status, 403, "{}", r.text());
    assert_eq!(r.json()["code"], "report-for-the-office");
    assert!(page.text().contains("privacy officers review this report"));
    // Reviewed with an outcome: the reporter is told, and sees it.
    let r = w
        .post(
            &po,
            &review,
            json!({"note": "The doctor read it by mistake; retrained."}),
        )
        .await;
    assert!(r.status.is_success(), "{}", r.text());
    assert!(
        w.last_entry().await.entry.reason.is_none(),
        "the outcome is not in the audit log"
    );
    let told = w.t.last_message("+85291234567", "report-concluded").await;
    assert_eq!(told["outcome"], "The doctor read it by mistake; retrained.");
    let mine = w
        .get(
            &patient,
            &format!("/api/v1/me/recipients/{}/reports", w.recipient),
        )
        .await;
    assert_eq!(mine.json()[0]["status"], "reviewed", "{}", mine.text());
    assert_eq!(
        mine.json()[0]["outcome"],
        "The doctor read it by mistake; retrained."
    );
    assert_eq!(mine.json()[0]["entry"], seq);

    // The page: a report form on each entry by someone else, the reports listed.
    let page =
        w.t.send(page_get(
            &patient,
            &format!("/me/{}/access-log?lang=en", w.recipient),
        ))
        .await;
    assert_eq!(page.status, 200);
    assert!(
        page.text()
            .contains(&format!("/me/{}/access-log/{seq}/report", w.recipient))
    );
    assert!(page.text().contains("retrained"), "{}", page.text());
}

#[tokio::test]
async fn the_access_log_is_filtered_by_provider_and_period() {
    let w = world().await;
    assert_eq!(w.consent("indefinite").await.status, 201);
    assert_eq!(w.episode().await.status, 201);
    assert_eq!(w.summary(&w.doctor).await.status, 200);
    let patient = w.patient().await;
    let base = format!("/api/v1/me/recipients/{}/access-log", w.recipient);
    let all = entries(&w.get(&patient, &base).await.json());
    assert!(all.iter().any(|l| l["hcp"] == w.hcp.as_str()));
    assert!(all.iter().any(|l| l["hcp"] != w.hcp.as_str()), "others too");

    let by_provider = entries(
        &w.get(&patient, &format!("{base}?provider={}", w.hcp))
            .await
            .json(),
    );
    assert!(!by_provider.is_empty());
    assert!(by_provider.iter().all(|l| l["hcp"] == w.hcp.as_str()));
    let other = w.other_doctor_hcp().await;
    let none = entries(
        &w.get(&patient, &format!("{base}?provider={other}"))
            .await
            .json(),
    );
    assert!(none.is_empty(), "{none:?}");

    // The period is in Hong Kong days: today holds everything, tomorrow nothing.
    let today = ehrshare_core::clock::hong_kong_date(ehrshare_core::clock::Clock::now(&w.t.clock))
        .to_string();
    let tomorrow =
        (ehrshare_core::clock::hong_kong_date(ehrshare_core::clock::Clock::now(&w.t.clock))
            + time::Duration::days(1))
        .to_string();
    let r = w
        .get(&patient, &format!("{base}?from={today}&to={today}"))
        .await;
    assert_eq!(entries(&r.json()).len(), all.len(), "{}", r.text());
    let r = w.get(&patient, &format!("{base}?from={tomorrow}")).await;
    assert!(entries(&r.json()).is_empty(), "{}", r.text());
    let r = w.get(&patient, &format!("{base}?to=yesterday")).await;
    assert_eq!(r.status, 422, "{}", r.text());
    assert_eq!(r.json()["code"], "invalid-date");
    let r = w.get(&patient, &format!("{base}?colour=red")).await;
    assert!(matches!(r.status.as_u16(), 400 | 422), "{}", r.text());

    // The page filters the same way, and a bad date is a form message.
    let page =
        w.t.send(page_get(
            &patient,
            &format!(
                "/me/{}/access-log?lang=en&provider={other}&from=&to=",
                w.recipient
            ),
        ))
        .await;
    assert_eq!(page.status, 200);
    assert!(
        page.text().contains("Nobody has accessed"),
        "{}",
        page.text()
    );
    let page =
        w.t.send(page_get(
            &patient,
            &format!("/me/{}/access-log?lang=en&from=soon", w.recipient),
        ))
        .await;
    assert_eq!(page.status, 422);
}

#[tokio::test]
async fn a_record_or_a_domain_is_restricted_from_the_record_page() {
    let w = world().await;
    assert_eq!(w.consent("indefinite").await.status, 201);
    assert_eq!(w.episode().await.status, 201);
    assert_eq!(w.deposit(crate::world::condition("dx-r")).await.status, 201);
    assert_eq!(
        w.deposit(crate::world::medication("rx-r")).await.status,
        201
    );
    let patient = w.patient().await;
    let page =
        w.t.send(page_get(
            &patient,
            &format!("/me/{}/record?lang=en", w.recipient),
        ))
        .await;
    assert_eq!(page.status, 200);
    let html = page.text();
    assert!(html.contains("Restrict this record"), "{html}");
    // The record's id is in its form.
    let marker = "name=\"record\" value=\"";
    let at = html.find(marker).unwrap() + marker.len();
    let record = html[at..at + 36].to_owned();
    let r =
        w.t.send(page_post(
            &patient,
            &format!("/me/{}/restrictions", w.recipient),
            &format!("record={record}&back=record"),
        ))
        .await;
    assert_eq!(r.status, 303, "{}", r.text());
    assert_eq!(r.header("location"), format!("/me/{}/record", w.recipient));
    let r =
        w.t.send(page_post(
            &patient,
            &format!("/me/{}/restrictions", w.recipient),
            "domain=medication&back=record",
        ))
        .await;
    assert_eq!(r.status, 303, "{}", r.text());
    let page =
        w.t.send(page_get(
            &patient,
            &format!("/me/{}/record?lang=en", w.recipient),
        ))
        .await;
    assert_eq!(
        page.text().matches(">Restricted<").count(),
        3,
        "{}",
        page.text()
    );
    // The provider no longer sees either without an unlock.
    let summary = w.summary(&w.doctor).await;
    assert!(!summary.text().contains(&record), "{}", summary.text());
    assert!(!summary.text().contains("Salbutamol"), "{}", summary.text());
    // A cross-site post (no CSRF token) changes nothing.
    let r =
        w.t.send(
            Request::post(format!("/me/{}/restrictions", w.recipient))
                .header("cookie", &patient.cookie)
                .header("content-type", "application/x-www-form-urlencoded")
                .body(Body::from("domain=allergy&back=record"))
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.text());
}

#[tokio::test]
async fn a_report_of_a_read_refused_for_a_restriction_goes_to_the_office_alone() {
    let w = world().await;
    assert_eq!(w.consent("indefinite").await.status, 201);
    assert_eq!(w.episode().await.status, 201);
    let r = w.deposit(crate::world::note("note-r")).await;
    assert_eq!(r.status, 201, "{}", r.text());
    let note = r.json()["id"].as_str().unwrap().to_owned();
    let patient = w.patient().await;
    let r = w
        .post(
            &patient,
            &format!("/api/v1/me/recipients/{}/restrictions", w.recipient),
            json!({"domain": "clinical-note"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(
        w.get(&w.doctor, &format!("/api/v1/records/{note}"))
            .await
            .status,
        404
    );
    let seq = w.last_entry().await.seq;
    assert_eq!(
        w.last_entry().await.entry.denial_reason.as_deref(),
        Some("restricted")
    );
    let r = w
        .post(
            &patient,
            &format!(
                "/api/v1/me/recipients/{}/access-log/{seq}/report",
                w.recipient
            ),
            json!({"words": "Why did they try to read my notes?"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    // The provider is shown that read as one of nothing: its report must not name the patient.
    let alerts = w
        .get(&w.ua, &format!("/api/v1/providers/{}/alerts", w.hcp))
        .await;
    assert!(
        !entries(&alerts.json())
            .iter()
            .any(|a| a["rule"] == "patient-report"),
        "{}",
        alerts.text()
    );
    let po =
        w.t.agent(Scope::Office, "office.privacy", "privacy-officer", false)
            .await;
    let open = w.get(&po, "/api/v1/office/alerts").await;
    assert!(
        entries(&open.json())
            .iter()
            .any(|a| a["rule"] == "patient-report" && a["entry"] == seq),
        "{}",
        open.text()
    );
    // Words with control characters are refused, nothing stored.
    let r = w
        .post(
            &patient,
            &format!(
                "/api/v1/me/recipients/{}/access-log/{seq}/report",
                w.recipient
            ),
            json!({"words": "bad\u{0}byte"}),
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.text());
}

#[tokio::test]
async fn ten_reports_may_be_open_at_once() {
    let w = world().await;
    assert_eq!(w.consent("indefinite").await.status, 201);
    assert_eq!(w.episode().await.status, 201);
    for _ in 0..11 {
        assert_eq!(w.summary(&w.doctor).await.status, 200);
    }
    let patient = w.patient().await;
    let log = w
        .get(
            &patient,
            &format!("/api/v1/me/recipients/{}/access-log", w.recipient),
        )
        .await;
    let reads: Vec<u64> = entries(&log.json())
        .into_iter()
        .filter(|l| l["action"] == "record.summary" && l["actor_user_name"] == "dr.a")
        .map(|l| l["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(reads.len(), 11);
    for (i, seq) in reads.iter().enumerate() {
        let r = w
            .post(
                &patient,
                &format!(
                    "/api/v1/me/recipients/{}/access-log/{seq}/report",
                    w.recipient
                ),
                json!({"words": "Who is this?"}),
            )
            .await;
        if i < 10 {
            assert_eq!(r.status, 201, "{}", r.text());
        } else {
            assert_eq!(r.status, 409, "{}", r.text());
            assert_eq!(r.json()["code"], "too-many-open-reports");
        }
    }
}
