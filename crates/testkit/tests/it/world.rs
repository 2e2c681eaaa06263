//! The world the sharing and FHIR tests start from: two active providers with their user
//! administrators, a doctor, a pharmacist and registration staff at the first, a doctor at the
//! second, and one registered adult recipient with the access key the registration sent.

use axum::http::Request;
use ehrshare_app::Settings;
use ehrshare_app::duty::Scope;
use ehrshare_core::consent::Regime;
use ehrshare_testkit::{Agent, SignedBy, TestApp, TestResponse, session_cookie};
use ehrshare_web::WebSettings;
use serde_json::{Value, json};

pub(crate) const SEED: &[u8; 20] = b"test-totp-seed-12345";

pub(crate) struct World {
    pub(crate) t: TestApp,
    pub(crate) hcp: String,
    pub(crate) ua: Agent,
    pub(crate) other_ua: Agent,
    pub(crate) doctor: Agent,
    pub(crate) pharmacist: Agent,
    pub(crate) clerk: Agent,
    pub(crate) other_doctor: Agent,
    pub(crate) recipient: String,
    pub(crate) key: String,
}

pub(crate) async fn world_with(settings: Settings) -> World {
    world_with_web(settings, WebSettings::default()).await
}

tokio::task_local! {
    /// The consent regime of the sharing test matrix ([`both_regimes`]): each test of the
    /// matrix runs once under each, and the world it builds is under that regime.
    pub(crate) static REGIME: Regime;
}

/// The regime the running test is under: the matrix's, else the default (2016).
pub(crate) fn regime() -> Regime {
    REGIME.try_with(|r| *r).unwrap_or_default()
}

/// Runs a sharing test under both consent regimes (issue 26: the sharing suite is a matrix,
/// not one unit test): `both_regimes!(name)` after `async fn name()` makes the tests
/// `name::regime_2016` and `name::regime_2025`. A test whose rule exists under one regime
/// only is an ordinary `#[tokio::test]`, and says why.
macro_rules! both_regimes {
    ($name:ident) => {
        mod $name {
            #[tokio::test]
            async fn regime_2016() {
                crate::world::REGIME
                    .scope(ehrshare_core::consent::Regime::Y2016, super::$name())
                    .await
            }

            #[tokio::test]
            async fn regime_2025() {
                crate::world::REGIME
                    .scope(ehrshare_core::consent::Regime::Y2025, super::$name())
                    .await
            }
        }
    };
}
pub(crate) use both_regimes;

/// A world whose web settings are `web` (a real listener's public URL, say). Under the test
/// matrix's regime, if the test runs in it.
pub(crate) async fn world_with_web(mut settings: Settings, web: WebSettings) -> World {
    if let Ok(r) = REGIME.try_with(|r| *r) {
        settings.regime = r;
    }
    let t = TestApp::with_settings(settings, web).await;
    let (hcp, ua) = t.active_provider("Clinic A", "a").await;
    let (other, other_ua) = t.active_provider("Clinic B", "b").await;
    let scope = Scope::Hcp(hcp.parse().unwrap());
    let doctor = t.agent(scope, "dr.a", "doctor", false).await;
    let pharmacist = t.agent(scope, "ph.a", "pharmacist", false).await;
    let clerk = t.agent(scope, "clerk.a", "registration-staff", false).await;
    let other_doctor = t
        .agent(Scope::Hcp(other.parse().unwrap()), "dr.b", "doctor", false)
        .await;
    let office = t.office().await;
    let r = t
        .send_json(
            Some(&office),
            Request::post("/api/v1/recipients"),
            &json!({"channel": "in-person", "name_en": "CHAN Tai Man", "name_zh": "陳大文",
                    "date_of_birth": "1980-03-02", "sex": "male",
                    "document": {"type": "hkid", "number": "A123456(3)"},
                    "phone": "9123 4567", "language": "zh-HK", "notify_channel": "sms"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let recipient = r.json()["id"].as_str().unwrap().to_owned();
    let key = t.last_message("+85291234567", "access-key").await["key"]
        .as_str()
        .unwrap()
        .to_owned();
    World {
        t,
        hcp,
        ua,
        other_ua,
        doctor,
        pharmacist,
        clerk,
        other_doctor,
        recipient,
        key,
    }
}

/// `body` with the consent kind `kind` under the 2016 rules; under 2025 (consents have no
/// kind, and one given is refused) as it is.
pub(crate) fn with_kind(mut body: Value, kind: &str) -> Value {
    if regime().consents_are_typed() {
        body["kind"] = Value::from(kind);
    }
    body
}

/// The kind a consent asked for as `kind` is stored with under the running regime.
pub(crate) fn stored_kind(kind: &str) -> &str {
    if regime().consents_are_typed() {
        kind
    } else {
        "untyped"
    }
}

pub(crate) async fn world() -> World {
    world_with(Settings::default()).await
}

impl World {
    pub(crate) async fn post(&self, agent: &Agent, path: &str, body: Value) -> TestResponse {
        self.t
            .send_json(Some(agent), Request::post(path), &body)
            .await
    }

    pub(crate) async fn get(&self, agent: &Agent, path: &str) -> TestResponse {
        self.t
            .send_json(Some(agent), Request::get(path), &Value::Null)
            .await
    }

    pub(crate) async fn summary(&self, agent: &Agent) -> TestResponse {
        self.get(
            agent,
            &format!("/api/v1/recipients/{}/summary", self.recipient),
        )
        .await
    }

    /// A domain's records, a page at a time (`query`: `domain=...` and paging).
    pub(crate) async fn records(&self, agent: &Agent, query: &str) -> TestResponse {
        self.get(
            agent,
            &format!("/api/v1/recipients/{}/records?{query}", self.recipient),
        )
        .await
    }

    /// Sharing consent with Clinic A by the access key: of `kind` under 2016; under 2025,
    /// where consents have no kind, without one.
    pub(crate) async fn consent(&self, kind: &str) -> TestResponse {
        let body = if self.t.app.settings().regime.consents_are_typed() {
            json!({"method": "access-key", "access_key": self.key, "kind": kind})
        } else {
            json!({"method": "access-key", "access_key": self.key})
        };
        self.post(
            &self.clerk,
            &format!("/api/v1/recipients/{}/consents", self.recipient),
            body,
        )
        .await
    }

    pub(crate) async fn episode(&self) -> TestResponse {
        self.post(
            &self.clerk,
            &format!("/api/v1/recipients/{}/episodes", self.recipient),
            json!({"kind": "attendance"}),
        )
        .await
    }

    pub(crate) async fn deposit(&self, resource: Value) -> TestResponse {
        self.post(
            &self.doctor,
            &format!("/api/v1/recipients/{}/records", self.recipient),
            resource,
        )
        .await
    }

    /// Deposits JSON text as written, with an idempotency key if given.
    pub(crate) async fn deposit_text(&self, text: &str, key: Option<&str>) -> TestResponse {
        let mut b = Request::post(format!("/api/v1/recipients/{}/records", self.recipient))
            .signed_by(&self.doctor)
            .header("content-type", "application/fhir+json");
        if let Some(k) = key {
            b = b.header("idempotency-key", k);
        }
        self.t
            .send(b.body(axum::body::Body::from(text.to_owned())).unwrap())
            .await
    }

    /// How many records the doctor sees in the recipient's summary.
    pub(crate) async fn record_count(&self) -> usize {
        domains(&self.summary(&self.doctor).await)
            .iter()
            .map(|(_, n)| n)
            .sum()
    }

    /// The recipient logs in to the patient portal (setting up the login with the key).
    pub(crate) async fn patient(&self) -> Agent {
        let r = self
            .t
            .send_json(
                None,
                Request::post("/api/v1/me/activate"),
                &json!({"document": {"number": "A123456(3)"}, "access_key": self.key, "password": "Patient-2026"}),
            )
            .await;
        // Set up once; a second call logs in again.
        assert!(
            r.status == 204 || r.json()["code"] == "already-activated",
            "{}",
            r.text()
        );
        let r = self
            .t
            .send_json(
                None,
                Request::post("/api/v1/me/login"),
                &json!({"document": {"number": "A123456(3)"}, "password": "Patient-2026"}),
            )
            .await;
        let challenge = r.json()["challenge"].as_str().unwrap().to_owned();
        let code = self.t.last_message("+85291234567", "login-code").await["code"]
            .as_str()
            .unwrap()
            .to_owned();
        let r = self
            .t
            .send_json(
                None,
                Request::post("/api/v1/me/login/verify"),
                &json!({"challenge": challenge, "code": code}),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text());
        Agent {
            cookie: session_cookie(&r),
            csrf: r.json()["csrf_token"].as_str().unwrap().to_owned(),
            user_name: "patient".into(),
            account: None,
        }
    }

    pub(crate) async fn other_doctor_hcp(&self) -> uuid::Uuid {
        let db = self.t.db.connect().await;
        db.account(self.other_doctor.account.unwrap())
            .await
            .unwrap()
            .unwrap()
            .hcp_id
            .unwrap()
    }

    pub(crate) async fn audit_count(&self) -> u64 {
        self.t.app.audit_head().size
    }

    /// How many records the last entry says left.
    pub(crate) async fn disclosed_count(&self) -> usize {
        let e = self.last_entry().await.entry;
        e.disclosed.map_or(0, |d| d.count())
    }

    /// The records and versions `e` says left, rebuilt from the record history (ADR 0023).
    pub(crate) async fn disclosed(
        &self,
        e: &ehrshare_core::audit::AuditEntry,
    ) -> Vec<(uuid::Uuid, u64)> {
        use ehrshare_core::audit::Disclosed;
        let db = self.t.db.connect().await;
        match e.entry.disclosed.as_ref().expect("a read names what left") {
            Disclosed::Version { version, .. } => e
                .entry
                .record_ids
                .iter()
                .map(|id| (*id, *version))
                .collect(),
            Disclosed::Set(set) => {
                let history = db.record_history(e.entry.recipient.unwrap()).await.unwrap();
                ehrshare_core::audit::disclosed::reconstruct(&history, set).unwrap()
            }
        }
    }

    pub(crate) async fn last_entry(&self) -> ehrshare_core::audit::AuditEntry {
        let db = self.t.db.connect().await;
        let n = db.audit_size().await.unwrap();
        db.audit_entries(n - 1, 1).await.unwrap().pop().unwrap()
    }
}

pub(crate) fn condition(id: &str) -> Value {
    json!({"resourceType": "Condition", "id": id,
           "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10", "code": "J45", "display": "Asthma"}]},
           "subject": {"identifier": {"system": "https://ehrshare.example/fhir/NamingSystem/hkid", "value": "A1234563"}}})
}

pub(crate) fn note(id: &str) -> Value {
    json!({"resourceType": "DocumentReference", "id": id, "status": "current",
           "subject": {"identifier": {"system": "https://ehrshare.example/fhir/NamingSystem/hkid", "value": "A1234563"}},
           "content": [{"attachment": {"contentType": "text/plain", "data": "V2hlZXpl"}}]})
}

pub(crate) fn medication(id: &str) -> Value {
    json!({"resourceType": "MedicationRequest", "id": id, "status": "active", "intent": "order",
           "medicationCodeableConcept": {"text": "Salbutamol inhaler"},
           "subject": {"identifier": {"system": "https://ehrshare.example/fhir/NamingSystem/hkid", "value": "A1234563"}}})
}

pub(crate) fn domains(r: &TestResponse) -> Vec<(String, usize)> {
    r.json()["domains"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["domain"].as_str().unwrap().to_owned(),
                d["records"].as_array().unwrap().len(),
            )
        })
        .collect()
}

/// The office registers an adult in person; returns the id and the access key, which goes by
/// SMS (or by post) whatever the channel: never to the inbox it unlocks.
pub(crate) async fn register(w: &World, hkid: &str, phone: &str, extra: Value) -> String {
    let office = w.t.office().await;
    let mut body = json!({"channel": "in-person", "name_en": "HO Wing Sze", "name_zh": "何詠詩",
        "date_of_birth": "1990-01-01", "sex": "female",
        "document": {"type": "hkid", "number": hkid},
        "phone": phone, "language": "zh-HK"});
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    let r = w.post(&office, "/api/v1/recipients", body).await;
    assert_eq!(r.status, 201, "{}", r.text());
    r.json()["id"].as_str().unwrap().to_owned()
}

/// The recipient with `hkid` sets up their portal login with `key` and logs in (the code by
/// SMS to `sms`, an E.164 number).
pub(crate) async fn log_in(w: &World, hkid: &str, key: &str, sms: &str) -> Agent {
    log_in_with(w, json!({"number": hkid}), key, sms).await
}

/// As [`log_in`], with any identity document (a passport for an SDM, say).
pub(crate) async fn log_in_with(w: &World, doc: Value, key: &str, sms: &str) -> Agent {
    let r =
        w.t.send_json(
            None,
            Request::post("/api/v1/me/activate"),
            &json!({"document": doc, "access_key": key, "password": "Patient-2026"}),
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.text());
    sign_in(w, doc, sms).await
}

/// A person with a portal login logs in again (the code by SMS to `sms`).
pub(crate) async fn sign_in(w: &World, doc: Value, sms: &str) -> Agent {
    let r =
        w.t.send_json(
            None,
            Request::post("/api/v1/me/login"),
            &json!({"document": doc, "password": "Patient-2026"}),
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.text());
    let challenge = r.json()["challenge"].as_str().unwrap().to_owned();
    let code = w.t.last_message(sms, "login-code").await["code"]
        .as_str()
        .unwrap()
        .to_owned();
    let r =
        w.t.send_json(
            None,
            Request::post("/api/v1/me/login/verify"),
            &json!({"challenge": challenge, "code": code}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    Agent {
        cookie: session_cookie(&r),
        csrf: r.json()["csrf_token"].as_str().unwrap().to_owned(),
        user_name: doc.to_string(),
        account: None,
    }
}
