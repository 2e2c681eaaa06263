//! Consent by QR scan (issue 26, item 4; ADR 0018), through HTTP under both consent regimes:
//! the code of a location (in the public directory, in the portal as SVG, PNG and an A4
//! poster) is a signed, revocable token; the patient's session scans it, sees the provider,
//! confirms; the provider's next read is permitted; the receipt verifies offline with a
//! verifier written here (ring's Ed25519, not the server's implementation) against the key
//! at the public URL. Altered, foreign-signed, revoked and malformed tokens are refused and
//! nothing is stored.

use data_encoding::BASE64URL_NOPAD;
use ehrshare_testkit::Agent;
use ring::signature::{ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey};
use serde_json::{Value, json};

use crate::world::{World, both_regimes, with_kind, world};

/// The first location of Clinic A as the public directory lists it.
async fn clinic_a_location(w: &World) -> Value {
    let r = w.t.get("/api/v1/directory?q=Clinic%20A").await;
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()["items"][0]["locations"][0].clone()
}

/// The receipt key from its public URL (no login), as a verifier would fetch it.
async fn receipt_key(w: &World) -> (Vec<u8>, String) {
    let r = w.t.get("/api/v1/keys/consent-receipts").await;
    assert_eq!(r.status, 200, "{}", r.text());
    let jwk = &r.json()["keys"][0];
    assert_eq!(jwk["kty"], "OKP");
    assert_eq!(jwk["crv"], "Ed25519");
    (
        BASE64URL_NOPAD
            .decode(jwk["x"].as_str().unwrap().as_bytes())
            .unwrap(),
        jwk["kid"].as_str().unwrap().to_owned(),
    )
}

/// The test's own verifier: the signature over the body's bytes, by the published key.
fn verifies(key: &[u8], receipt: &Value) -> bool {
    let Ok(signature) = BASE64URL_NOPAD.decode(receipt["signature"].as_str().unwrap().as_bytes())
    else {
        return false;
    };
    UnparsedPublicKey::new(&ED25519, key)
        .verify(receipt["body"].as_str().unwrap().as_bytes(), &signature)
        .is_ok()
}

/// `payload` with its claim replaced by `claim` (bytes), the signature kept or made by `sign`.
fn with_claim(payload: &str, claim: &[u8], sign: Option<&Ed25519KeyPair>) -> String {
    let rest = payload.strip_prefix("ehrshare:location:1.").unwrap();
    let (_, signature) = rest.split_once('.').unwrap();
    let signature = match sign {
        Some(k) => BASE64URL_NOPAD.encode(k.sign(claim).as_ref()),
        None => signature.to_owned(),
    };
    format!(
        "ehrshare:location:1.{}.{signature}",
        BASE64URL_NOPAD.encode(claim)
    )
}

fn claim_of(payload: &str) -> String {
    let rest = payload.strip_prefix("ehrshare:location:1.").unwrap();
    let (claim, _) = rest.split_once('.').unwrap();
    String::from_utf8(BASE64URL_NOPAD.decode(claim.as_bytes()).unwrap()).unwrap()
}

impl World {
    async fn scan(&self, patient: &Agent, payload: &str) -> ehrshare_testkit::TestResponse {
        self.post(
            patient,
            &format!("/api/v1/me/recipients/{}/location-scans", self.recipient),
            json!({ "payload": payload }),
        )
        .await
    }

    async fn confirm(&self, patient: &Agent, payload: &str) -> ehrshare_testkit::TestResponse {
        self.post(
            patient,
            &format!("/api/v1/me/recipients/{}/consents/by-scan", self.recipient),
            with_kind(json!({ "payload": payload }), "indefinite"),
        )
        .await
    }

    async fn consents_with_a(&self) -> usize {
        self.t
            .db
            .connect()
            .await
            .consents_with(self.recipient.parse().unwrap(), self.hcp.parse().unwrap())
            .await
            .unwrap()
            .len()
    }
}

async fn scan_confirm_and_the_providers_next_read_is_permitted() {
    let w = world().await;
    let location = clinic_a_location(&w).await;
    let payload = location["qr_payload"].as_str().unwrap().to_owned();
    assert!(payload.starts_with("ehrshare:location:1."), "{payload}");
    assert_eq!(w.episode().await.status, 201);
    assert_eq!(w.summary(&w.doctor).await.status, 403, "no consent yet");

    // Scan: the provider's name and address to confirm; nothing stored.
    let patient = w.patient().await;
    let r = w.scan(&patient, &payload).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let shown = r.json();
    assert_eq!(shown["name_en"], "Clinic A");
    assert_eq!(shown["hcp"], w.hcp.as_str());
    assert_eq!(shown["location"]["id"], location["id"]);
    assert!(shown["location"]["street"].is_string());
    assert_eq!(w.consents_with_a().await, 0);

    // Confirm: in force at once, with a receipt.
    let r = w.confirm(&patient, &payload).await;
    assert_eq!(r.status, 201, "{}", r.text());
    let body = r.json();
    let consent = body["consent"]["id"].as_str().unwrap().to_owned();
    assert_eq!(body["consent"]["method"], "qr-scan");
    assert_eq!(w.summary(&w.doctor).await.status, 200, "the next read");

    // The receipt verifies offline against the published key, states this consent, and
    // nothing altered passes.
    let (key, kid) = receipt_key(&w).await;
    let receipt = body["receipt"].clone();
    assert_eq!(receipt["key_id"], kid.as_str());
    assert_eq!(receipt["alg"], "EdDSA");
    assert!(verifies(&key, &receipt), "{receipt}");
    let stated: Value = serde_json::from_str(receipt["body"].as_str().unwrap()).unwrap();
    assert_eq!(stated["typ"], "ehrshare.consent-receipt.1");
    assert_eq!(stated["consent"], consent.as_str());
    assert_eq!(stated["recipient"], w.recipient.as_str());
    assert_eq!(stated["hcp"], w.hcp.as_str());
    assert_eq!(stated["location"], location["id"]);
    assert_eq!(stated["method"], "qr-scan");
    assert_eq!(
        stated["kind"],
        crate::world::stored_kind("indefinite"),
        "{stated}"
    );
    let mut forged = receipt.clone();
    forged["body"] = json!(
        receipt["body"]
            .as_str()
            .unwrap()
            .replace(&w.hcp, &w.recipient)
    );
    assert!(!verifies(&key, &forged));
    // ... and not with the audit key: a different key.
    assert_ne!(key, ehrshare_testkit::TestApp::public_key().to_vec());

    // Kept: the same receipt later; not to another recipient's login.
    let kept = format!("/api/v1/me/recipients/{}/receipts/{consent}", w.recipient);
    let r = w.get(&patient, &kept).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["signature"], receipt["signature"]);
    assert_eq!(w.get(&w.doctor, &kept).await.status, 404);
    // The patient's log shows the consent given by scan.
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
            .any(|l| l["action"] == "consent.give"
                && l["reason"]
                    .as_str()
                    .is_some_and(|r| r.ends_with("by qr-scan"))),
        "{log}"
    );
}

both_regimes!(scan_confirm_and_the_providers_next_read_is_permitted);

async fn altered_foreign_revoked_and_malformed_codes_are_refused_and_nothing_stored() {
    let w = world().await;
    let location = clinic_a_location(&w).await;
    let payload = location["qr_payload"].as_str().unwrap().to_owned();
    let patient = w.patient().await;
    let claim = claim_of(&payload);

    // Altered: another location's id in the claim, the signature kept.
    let altered = with_claim(
        &payload,
        claim
            .replace(location["id"].as_str().unwrap(), &w.recipient)
            .as_bytes(),
        None,
    );
    // Signed by another key: the very claim, a foreign signature.
    let foreign_key =
        Ed25519KeyPair::from_seed_unchecked(&[1; 32]).unwrap_or_else(|_| panic!("a key"));
    assert_ne!(
        foreign_key.public_key().as_ref(),
        &receipt_key(&w).await.0[..]
    );
    let foreign = with_claim(&payload, claim.as_bytes(), Some(&foreign_key));
    let before = w.audit_count().await;
    for (bad, code) in [
        (altered.as_str(), "location-token-invalid"),
        (foreign.as_str(), "location-token-invalid"),
        ("ehrshare:location:0a1b2c", "location-token-malformed"),
        ("https://example.org/", "location-token-malformed"),
    ] {
        let r = w.scan(&patient, bad).await;
        assert_eq!(r.status, 422, "{bad}: {}", r.text());
        assert_eq!(r.json()["code"], code, "{bad}");
        assert_eq!(r.json()["errors"][0]["field"], "/payload", "{}", r.text());
        let r = w.confirm(&patient, bad).await;
        assert_eq!(r.status, 422, "{bad}: {}", r.text());
        assert_eq!(r.json()["code"], code, "{bad}");
    }
    assert_eq!(w.consents_with_a().await, 0, "nothing stored");
    // Each refused confirmation is audited as a refused consent.
    assert_eq!(w.audit_count().await, before + 4);
    let e = w.last_entry().await.entry;
    assert_eq!(e.action, "consent.give");
    assert_eq!(e.denial_reason.as_deref(), Some("location-token-malformed"));

    // Oversize and unknown fields: named, nothing stored.
    let r = w.scan(&patient, &"x".repeat(5000)).await;
    assert_eq!(r.status, 422, "{}", r.text());
    let r = w
        .post(
            &patient,
            &format!("/api/v1/me/recipients/{}/location-scans", w.recipient),
            json!({"payload": payload, "hcp": w.hcp}),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text());

    // Revoked: the user administrator replaces the code; the old one is refused, the new one
    // works. Only that provider's administrator may.
    let replace = format!(
        "/api/v1/providers/{}/locations/{}/qr",
        w.hcp,
        location["id"].as_str().unwrap()
    );
    for not_allowed in [&w.doctor, &w.other_ua] {
        assert_eq!(w.post(not_allowed, &replace, Value::Null).await.status, 404);
    }
    let r = w.post(&w.ua, &replace, Value::Null).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let fresh = r.json()["qr_payload"].as_str().unwrap().to_owned();
    assert_ne!(fresh, payload);
    assert_eq!(w.last_entry().await.entry.action, "location.replace-qr");
    let r = w.confirm(&patient, &payload).await;
    assert_eq!(r.status, 422, "{}", r.text());
    assert_eq!(r.json()["code"], "location-token-revoked");
    assert_eq!(w.consents_with_a().await, 0, "nothing stored");
    assert_eq!(
        clinic_a_location(&w).await["qr_payload"],
        fresh.as_str(),
        "the directory shows the new code"
    );
    assert_eq!(w.scan(&patient, &fresh).await.status, 200);

    // Aimed at someone else: another recipient's id is 404 for this login.
    let r = w
        .post(
            &patient,
            &format!(
                "/api/v1/me/recipients/{}/consents/by-scan",
                uuid::Uuid::now_v7()
            ),
            with_kind(json!({ "payload": fresh }), "indefinite"),
        )
        .await;
    assert_eq!(r.status, 404);
    let r = w.confirm(&patient, &fresh).await;
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(w.consents_with_a().await, 1);
}

both_regimes!(altered_foreign_revoked_and_malformed_codes_are_refused_and_nothing_stored);

#[tokio::test]
async fn the_portal_prints_each_locations_code_as_svg_png_and_a_bilingual_a4_poster() {
    use ehrshare_testkit::{page_get, page_post};
    let w = world().await;
    let location = clinic_a_location(&w).await;
    let id = location["id"].as_str().unwrap().to_owned();
    let payload = location["qr_payload"].as_str().unwrap().to_owned();

    // Any user of the provider sees its locations; only a user administrator may replace.
    let r = w.t.send(page_get(&w.doctor, "/hcp/locations")).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.text().contains(&format!("/hcp/locations/{id}/poster")));
    assert!(
        !r.text()
            .contains(&format!("action=\"/hcp/locations/{id}/qr\""))
    );
    let r = w.t.send(page_get(&w.ua, "/hcp/locations")).await;
    assert!(
        r.text()
            .contains(&format!("action=\"/hcp/locations/{id}/qr\""))
    );

    // The images are the code of the token the directory lists.
    let r =
        w.t.send(page_get(&w.doctor, &format!("/hcp/locations/{id}/qr.svg")))
            .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), "image/svg+xml");
    assert_eq!(r.text(), ehrshare_web::qr::svg(&payload).unwrap());
    let r =
        w.t.send(page_get(&w.doctor, &format!("/hcp/locations/{id}/qr.png")))
            .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), "image/png");
    assert_eq!(r.body, ehrshare_web::qr::png(&payload, 10).unwrap());
    assert_eq!(&r.body[..8], b"\x89PNG\r\n\x1a\n");

    // The poster: both languages on one A4 page, whatever the reader's language.
    let r =
        w.t.send(page_get(&w.doctor, &format!("/hcp/locations/{id}/poster")))
            .await;
    assert_eq!(r.status, 200);
    let html = r.text();
    for expected in [
        "與我們互通你的健康紀錄",
        "Share your health records with us",
        "Clinic A",
        "<svg",
        "lang=\"zh-HK\"",
        "lang=\"en\"",
    ] {
        assert!(html.contains(expected), "{expected}: {html}");
    }

    // Another provider's location: 404; no login: to the login page.
    let r =
        w.t.send(page_get(
            &w.other_ua,
            &format!("/hcp/locations/{id}/qr.svg"),
        ))
        .await;
    assert_eq!(r.status, 404);
    let r = w.t.get(&format!("/hcp/locations/{id}/poster")).await;
    assert_eq!(r.status, 303);

    // Replaced from the portal: the printed code is refused from then on.
    let r =
        w.t.send(page_post(&w.doctor, &format!("/hcp/locations/{id}/qr"), ""))
            .await;
    assert_eq!(r.status, 404, "not a user administrator");
    let r =
        w.t.send(page_post(&w.ua, &format!("/hcp/locations/{id}/qr"), ""))
            .await;
    assert_eq!(r.status, 303, "{}", r.text());
    let patient = w.patient().await;
    let r = w.scan(&patient, &payload).await;
    assert_eq!(r.json()["code"], "location-token-revoked");
}
