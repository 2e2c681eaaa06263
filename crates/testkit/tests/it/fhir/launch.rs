//! A professional's app launched for one patient (SMART `launch/patient` with `patient/`
//! scopes, issue 25 item 2): the professional names the patient at authorization (the counter's
//! look-up, audited); the token says which patient, and reaches no other, though the
//! professional may see others.

use ehrshare_core::identity::Hkid;

use super::*;

#[tokio::test]
async fn a_token_launched_for_one_patient_reaches_that_patient_only() {
    let w = under_care().await;
    let smart = fhir_get(&w, None, "/fhir/.well-known/smart-configuration", None)
        .await
        .json();
    for wanted in ["launch/patient", "patient/*.rs"] {
        assert!(
            smart["scopes_supported"].to_string().contains(wanted),
            "{wanted}"
        );
    }
    assert!(
        smart["capabilities"]
            .to_string()
            .contains("context-standalone-patient")
    );
    let mine = deposited(&w, condition("dx-mine")).await;

    // A second patient under the doctor's care, with a record of their own.
    let other_hkid = Hkid::from_parts("B", 123_456).unwrap().display();
    let office = w.t.office().await;
    let r = w
        .post(
            &office,
            "/api/v1/recipients",
            json!({"channel": "in-person", "name_en": "LEE Siu Ming", "date_of_birth": "1975-06-01",
                   "sex": "female", "document": {"type": "hkid", "number": other_hkid},
                   "phone": "9222 3333", "language": "en", "notify_channel": "sms"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let other = r.json()["id"].as_str().unwrap().to_owned();
    let key = w.t.last_message("+85292223333", "access-key").await["key"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = w
        .post(
            &w.clerk,
            &format!("/api/v1/recipients/{other}/consents"),
            json!({"method": "access-key", "access_key": key, "kind": "indefinite"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let r = w
        .post(
            &w.clerk,
            &format!("/api/v1/recipients/{other}/episodes"),
            json!({"kind": "attendance"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let mut theirs = condition("dx-theirs");
    theirs["subject"] = json!({"reference": format!("Patient/{other}")});
    let r = w
        .post(
            &w.doctor,
            &format!("/api/v1/recipients/{other}/records"),
            theirs,
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let theirs = r.json()["id"].as_str().unwrap().to_owned();

    // Without naming the patient, no code.
    let r = authorized(&w, "user/*.rs", "launch/patient patient/*.rs", &[]).await;
    assert_eq!(r.status, 422, "{}", r.text());
    // patient/ scopes without launch/patient are refused back to the app.
    let r = authorized(&w, "user/*.rs", "patient/*.rs", &[]).await;
    assert_eq!(r.status, 303);
    assert!(r.header("location").contains("error=invalid_scope"));

    let r = authorized(
        &w,
        "user/*.rs",
        "launch/patient patient/*.rs",
        &[("patient_hkid", "A123456(3)")],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let answer = r.json();
    assert_eq!(answer["patient"], w.recipient.as_str());
    assert_eq!(answer["scope"], "launch/patient patient/*.rs");
    let token = answer["access_token"].as_str().unwrap().to_owned();

    // The launched patient: as the professional may see them.
    let r = bearer(&w, &token, &format!("/fhir/Condition/{mine}")).await;
    assert_eq!(r.status, 200, "{}: {:?}", r.text(), w.last_entry().await);
    let r = bearer(&w, &token, &format!("/fhir/Patient/{}", w.recipient)).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = bearer(
        &w,
        &token,
        &format!("/fhir/Condition?patient={}", w.recipient),
    )
    .await;
    assert_eq!(r.json()["total"], 1);
    // Anyone else: nothing, as if not there (the doctor, logged in, sees them).
    let r = bearer(&w, &token, &format!("/fhir/Condition/{theirs}")).await;
    assert_eq!(r.status, 404);
    assert_eq!(
        w.last_entry().await.entry.denial_reason.as_deref(),
        Some("outside-launch")
    );
    let r = bearer(&w, &token, &format!("/fhir/Condition?patient={other}")).await;
    assert_eq!(r.json()["total"], 0);
    let r = bearer(&w, &token, &format!("/fhir/Patient/{other}")).await;
    assert_eq!(r.status, 404);
    let r = bearer(
        &w,
        &token,
        &format!("/fhir/Patient?identifier={SUBJECT}|{other_hkid}"),
    )
    .await;
    assert_eq!(r.json()["total"], 0, "{}", r.text());
    let r = bearer(&w, &token, &format!("/fhir/Patient/{other}/$everything")).await;
    assert_eq!(r.status, 404);
    let r = fhir_get(
        &w,
        Some(&w.doctor),
        &format!("/fhir/Condition/{theirs}"),
        None,
    )
    .await;
    assert_eq!(r.status, 200, "the doctor may: {}", r.text());
    // Nor does it change anything of theirs, nor learn where their records are, nor read
    // their consents or the provider's log.
    let r =
        w.t.send(
            Request::post(format!("/api/v1/recipients/{other}/episodes"))
                .header("authorization", format!("Bearer {token}"))
                .header("content-type", "application/json")
                .body(axum::body::Body::from(r#"{"kind": "attendance"}"#))
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.text());
    assert_eq!(r.json()["code"], "outside-launch");
    let condition_header = format!(
        "identifier={}",
        ehrshare_app::auth::uri_escape(&format!(
            "https://ehrshare.example/fhir/NamingSystem/provider-id/{}|dx-theirs",
            w.hcp
        ))
    );
    let r =
        w.t.send(
            Request::post("/fhir/Condition")
                .header("authorization", format!("Bearer {token}"))
                .header("content-type", "application/fhir+json")
                .header("if-none-exist", condition_header)
                .body(axum::body::Body::from(condition("x").to_string()))
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.text());
    assert!(r.header("location").is_empty());
    let r = bearer(&w, &token, "/fhir/AuditEvent").await;
    assert_eq!(r.status, 404);
    let r = bearer(&w, &token, &format!("/fhir/Consent?patient={other}")).await;
    assert_eq!(r.json()["total"], 0, "{}", r.text());
    let r = bearer(
        &w,
        &token,
        &format!("/fhir/Consent?patient={}", w.recipient),
    )
    .await;
    assert_eq!(r.json()["total"], 1, "{}", r.text());
}
