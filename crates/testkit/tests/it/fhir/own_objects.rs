//! ehrshare's own objects under `/fhir` (issue 25, item 5): `AuditEvent` (the caller's
//! provider's users' entries, for its user administrators) and `Consent` (a patient's sharing
//! consents with the caller's provider, read-only). Every interaction and search parameter the
//! CapabilityStatement lists for them is walked here.

use serde_json::Value;

use super::*;

fn listed(cs: &Value, t: &str) -> (Vec<String>, Vec<String>) {
    let entry = cs["rest"][0]["resource"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["type"] == t)
        .unwrap()
        .clone();
    let names = |key: &str, field: &str| -> Vec<String> {
        entry[key]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|p| p[field].as_str().unwrap().to_owned())
                    .collect()
            })
            .unwrap_or_default()
    };
    (names("interaction", "code"), names("searchParam", "name"))
}

fn hcps_of(event: &Value) -> Vec<String> {
    event["agent"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|a| a["who"]["identifier"]["value"].as_str())
        .map(str::to_owned)
        .collect()
}

#[tokio::test]
async fn audit_events_are_the_providers_own_for_its_user_administrators() {
    let w = under_care().await;
    let cs = fhir_get(&w, None, "/fhir/metadata", None).await.json();
    let (interactions, params) = listed(&cs, "AuditEvent");
    assert_eq!(interactions, ["read", "search-type"]);
    assert_eq!(params, ["patient", "date", "agent"]);
    let id = deposited(&w, condition("dx-ae")).await;
    let r = fhir_get(&w, Some(&w.doctor), &format!("/fhir/Condition/{id}"), None).await;
    assert_eq!(r.status, 200);
    // Another provider's doctor tries: refused, and an entry of the other provider.
    let r = fhir_get(
        &w,
        Some(&w.other_doctor),
        &format!("/fhir/Condition/{id}"),
        None,
    )
    .await;
    assert_eq!(r.status, 404);
    let theirs = w.last_entry().await.seq;

    let all = fhir_get(&w, Some(&w.ua), "/fhir/AuditEvent", None).await;
    assert_eq!(all.status, 200, "{}", all.text());
    let all = all.json();
    assert_eq!(all["type"], "searchset");
    let total = all["total"].as_u64().unwrap();
    assert!(total >= 3, "{all}");
    for e in all["entry"].as_array().unwrap() {
        let hcps = hcps_of(&e["resource"]);
        assert!(hcps.contains(&w.hcp), "only our provider's: {hcps:?}");
    }
    // By patient, by agent (the doctor's account), by date.
    let patient = format!("Patient/{}", w.recipient);
    let r = fhir_get(
        &w,
        Some(&w.ua),
        &format!("/fhir/AuditEvent?patient={patient}"),
        None,
    )
    .await;
    let by_patient = r.json()["total"].as_u64().unwrap();
    assert!(
        by_patient >= 2 && by_patient < total,
        "{by_patient} of {total}"
    );
    let doctor = w.doctor.account.unwrap();
    let r = fhir_get(
        &w,
        Some(&w.ua),
        &format!("/fhir/AuditEvent?agent={doctor}"),
        None,
    )
    .await;
    let by_doctor = r.json();
    assert!(by_doctor["total"].as_u64().unwrap() >= 2);
    for e in by_doctor["entry"].as_array().unwrap() {
        let who: Vec<&str> = e["resource"]["agent"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|a| a["who"]["identifier"]["value"].as_str())
            .collect();
        assert!(who.contains(&doctor.to_string().as_str()), "{e}");
    }
    let r = fhir_get(&w, Some(&w.ua), "/fhir/AuditEvent?date=lt2000-01-01", None).await;
    assert_eq!(r.json()["total"], 0);
    let r = fhir_get(&w, Some(&w.ua), "/fhir/AuditEvent?date=ge2000-01-01", None).await;
    assert_eq!(r.json()["total"].as_u64().unwrap(), total);
    // Paged, and read one by one.
    let r = fhir_get(&w, Some(&w.ua), "/fhir/AuditEvent?_count=1", None).await;
    let page = r.json();
    assert_eq!(page["total"].as_u64().unwrap(), total);
    assert_eq!(page["entry"].as_array().unwrap().len(), 1);
    assert!(page["link"].to_string().contains("\"next\""));
    let seq = page["entry"][0]["resource"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = fhir_get(&w, Some(&w.ua), &format!("/fhir/AuditEvent/{seq}"), None).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["resourceType"], "AuditEvent");
    // Another provider's entry, a doctor (not an administrator), a parameter we do not know.
    let r = fhir_get(&w, Some(&w.ua), &format!("/fhir/AuditEvent/{theirs}"), None).await;
    assert_eq!(r.status, 404);
    let r = fhir_get(
        &w,
        Some(&w.other_ua),
        &format!("/fhir/AuditEvent/{theirs}"),
        None,
    )
    .await;
    assert_eq!(r.status, 200, "their administrator sees it: {}", r.text());
    let r = fhir_get(&w, Some(&w.doctor), "/fhir/AuditEvent", None).await;
    assert_eq!(r.status, 404);
    let r = fhir_get(&w, Some(&w.ua), "/fhir/AuditEvent?action=R", None).await;
    assert_eq!(r.status, 400);
    let r = fhir_get(&w, Some(&w.ua), &format!("/fhir/AuditEvent/0{seq}"), None).await;
    assert_eq!(r.status, 404, "one id, one spelling");
}

#[tokio::test]
async fn consents_are_the_callers_providers_own_and_read_only() {
    let w = under_care().await;
    let cs = fhir_get(&w, None, "/fhir/metadata", None).await.json();
    let (interactions, params) = listed(&cs, "Consent");
    assert_eq!(interactions, ["read", "search-type"]);
    assert_eq!(params, ["patient"]);
    let path = format!("/fhir/Consent?patient={}", w.recipient);
    let r = fhir_get(&w, Some(&w.doctor), &path, None).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let found = r.json();
    assert_eq!(found["total"], 1);
    let c = &found["entry"][0]["resource"];
    assert_eq!(c["resourceType"], "Consent");
    assert_eq!(c["status"], "active");
    assert_eq!(
        c["patient"]["reference"],
        format!("Patient/{}", w.recipient)
    );
    assert_eq!(
        c["organization"][0]["reference"],
        format!("Organization/{}", w.hcp)
    );
    assert_eq!(c["category"][1]["coding"][0]["code"], "indefinite");
    assert_eq!(w.last_entry().await.entry.action, "consent.read");
    let id = c["id"].as_str().unwrap().to_owned();
    let r = fhir_get(&w, Some(&w.clerk), &format!("/fhir/Consent/{id}"), None).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["id"], id.as_str());
    // Not a user administrator's (as at the counter).
    let r = fhir_get(&w, Some(&w.ua), &path, None).await;
    assert_eq!(r.status, 404, "{}", r.text());
    // Another provider sees none of it.
    let r = fhir_get(&w, Some(&w.other_doctor), &path, None).await;
    assert_eq!(r.json()["total"], 0);
    let r = fhir_get(
        &w,
        Some(&w.other_doctor),
        &format!("/fhir/Consent/{id}"),
        None,
    )
    .await;
    assert_eq!(r.status, 404);
    // Read-only; a search names its patient.
    let r = fhir_send(&w, &w.doctor, "POST", "/fhir/Consent", c, &[]).await;
    assert_eq!(r.status, 404, "{}", r.text());
    let r = fhir_send(
        &w,
        &w.doctor,
        "DELETE",
        &format!("/fhir/Consent/{id}"),
        &Value::Null,
        &[],
    )
    .await;
    assert_eq!(r.status, 404, "{}", r.text());
    let r = fhir_get(&w, Some(&w.doctor), "/fhir/Consent", None).await;
    assert_eq!(r.status, 400);
    // Revoked by the patient in the app: still there, inactive.
    let patient = w.patient().await;
    let r =
        w.t.send(
            Request::delete(format!(
                "/api/v1/me/recipients/{}/consents/{}",
                w.recipient, w.hcp
            ))
            .signed_by(&patient)
            .body(axum::body::Body::empty())
            .unwrap(),
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.text());
    let r = fhir_get(&w, Some(&w.doctor), &path, None).await;
    assert_eq!(r.json()["total"], 1);
    assert_eq!(r.json()["entry"][0]["resource"]["status"], "inactive");
}

#[tokio::test]
async fn the_directory_is_organizations_locations_and_listed_practitioner_roles() {
    let w = under_care().await;
    let cs = fhir_get(&w, None, "/fhir/metadata", None).await.json();
    assert_eq!(
        listed(&cs, "Organization"),
        (
            vec!["read".into(), "search-type".into()],
            vec!["name".into(), "type".into()]
        )
    );
    assert_eq!(listed(&cs, "Location").1, ["organization"]);
    assert_eq!(listed(&cs, "PractitionerRole").1, ["organization", "role"]);

    // A third provider, with a doctor who agreed to be listed and one who did not.
    let office = w.t.office().await;
    let r = w
        .post(
            &office,
            "/api/v1/providers",
            json!({"name_en": "Harbour Medical Centre", "name_zh": "海港醫療中心", "br_number": "23456789",
                "hcp_type": "clinic", "sector": "private",
                "authorised_person": {"name": "HO Ka Ming", "position": "Director", "phone": "9876 5432"},
                "contact_person": {"name": "HO Ka Ming", "phone": "2345 6789"},
                "locations": [{"name_en": "Harbour Medical Centre", "name_zh": "海港醫療中心",
                               "street": "8 Harbour Road", "district": "wan-chai", "phone": "2511 2345"}],
                "staff": [{"name_en": "HO Ka Ming", "role": "user-administrator", "mobile": "9876 5432"},
                          {"name_en": "CHEUNG Wing Yan", "role": "doctor", "prof_reg_no": "M12345",
                           "mobile": "9123 0001", "listed": true},
                          {"name_en": "LAU Chi Keung", "role": "doctor", "prof_reg_no": "M54321",
                           "mobile": "9123 0002", "listed": false}]}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let harbour = r.json()["id"].as_str().unwrap().to_owned();
    let r = w
        .post(
            &office,
            &format!("/api/v1/providers/{harbour}/events"),
            json!({"event": "accept"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    w.t.set_up_provider(&harbour, "ua.h").await;
    let r = fhir_get(
        &w,
        Some(&w.doctor),
        &format!("/fhir/PractitionerRole?organization={harbour}"),
        None,
    )
    .await;
    let roles = r.json();
    assert_eq!(roles["total"], 1, "the listed doctor only: {roles}");
    let listed_doctor = &roles["entry"][0]["resource"];
    assert_eq!(listed_doctor["practitioner"]["display"], "CHEUNG Wing Yan");
    assert_eq!(listed_doctor["identifier"][0]["value"], "M12345");
    let r = fhir_get(
        &w,
        Some(&w.doctor),
        &format!("/fhir/PractitionerRole?organization={harbour}&role=nurse"),
        None,
    )
    .await;
    assert_eq!(r.json()["total"], 0);

    let r = fhir_get(&w, Some(&w.doctor), "/fhir/Organization?name=clinic", None).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.json()["total"],
        2,
        "both clinics, by any part of the name"
    );
    let r = fhir_get(
        &w,
        Some(&w.doctor),
        "/fhir/Organization?name=Clinic%20A&_count=1",
        None,
    )
    .await;
    let found = r.json();
    assert_eq!(found["total"], 1);
    let org = &found["entry"][0]["resource"];
    assert_eq!(org["id"], w.hcp.as_str());
    assert_eq!(org["name"], "Clinic A");
    let kind = org["type"][0]["coding"][0]["code"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = fhir_get(
        &w,
        Some(&w.doctor),
        &format!("/fhir/Organization?type={kind}"),
        None,
    )
    .await;
    assert!(r.json()["total"].as_u64().unwrap() >= 1);
    let r = fhir_get(
        &w,
        Some(&w.doctor),
        &format!("/fhir/Organization/{}", w.hcp),
        None,
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["resourceType"], "Organization");
    assert!(
        r.json().get("identifier").is_none(),
        "no business registration"
    );

    let r = fhir_get(
        &w,
        Some(&w.doctor),
        &format!("/fhir/Location?organization=Organization/{}", w.hcp),
        None,
    )
    .await;
    let places = r.json();
    assert!(places["total"].as_u64().unwrap() >= 1, "{places}");
    let place = places["entry"][0]["resource"].clone();
    assert_eq!(
        place["managingOrganization"]["reference"],
        format!("Organization/{}", w.hcp)
    );
    let r = fhir_get(
        &w,
        Some(&w.doctor),
        &format!("/fhir/Location/{}", place["id"].as_str().unwrap()),
        None,
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["id"], place["id"]);

    for e in roles["entry"].as_array().cloned().unwrap_or_default() {
        assert_eq!(
            e["resource"]["organization"]["reference"],
            format!("Organization/{harbour}")
        );
        assert!(e["resource"].get("telecom").is_none(), "no mobile numbers");
        let id = e["resource"]["id"].as_str().unwrap();
        let code = e["resource"]["code"][0]["coding"][0]["code"]
            .as_str()
            .unwrap();
        let r = fhir_get(
            &w,
            Some(&w.doctor),
            &format!("/fhir/PractitionerRole/{id}"),
            None,
        )
        .await;
        assert_eq!(r.status, 200);
        let r = fhir_get(
            &w,
            Some(&w.doctor),
            &format!("/fhir/PractitionerRole?organization={harbour}&role={code}"),
            None,
        )
        .await;
        assert!(r.json()["total"].as_u64().unwrap() >= 1);
    }

    // What is not in the directory, and what is asked wrongly.
    let nobody = uuid::Uuid::now_v7();
    for path in [
        format!("/fhir/Organization/{nobody}"),
        format!("/fhir/Location/{nobody}"),
        format!("/fhir/PractitionerRole/{}", w.hcp),
    ] {
        assert_eq!(
            fhir_get(&w, Some(&w.doctor), &path, None).await.status,
            404,
            "{path}"
        );
    }
    for path in [
        "/fhir/Organization?address=Kowloon",
        "/fhir/Organization?_count=2&_offset=1",
        "/fhir/Location",
    ] {
        assert_eq!(
            fhir_get(&w, Some(&w.doctor), path, None).await.status,
            400,
            "{path}"
        );
    }
    // A token for Conditions does not reach the directory: a scope only narrows.
    let token = doctors_token(&w, "user/Condition.read").await;
    let r = bearer(&w, &token, "/fhir/Organization?name=clinic").await;
    assert_eq!(r.status, 404);
    let token = doctors_token(&w, "user/Organization.rs").await;
    let r = bearer(&w, &token, "/fhir/Organization?name=clinic").await;
    assert_eq!(r.json()["total"], 2);
}
