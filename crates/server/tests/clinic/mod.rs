//! What the tests of the clinic's own commands (`connect`, `import`) share: a server in the
//! test's process on a port of its own, a CM clinic with a patient under its care, and the
//! clinic system registered with a key.
#![allow(dead_code)]

use std::time::{Duration, Instant};

use axum::http::Request;
use ehrshare_app::Settings;
use ehrshare_app::duty::Scope;
use ehrshare_testkit::TestApp;
use ehrshare_web::WebSettings;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, EncodingKey};
use serde_json::json;

// A key made for this test only (`openssl ecparam -name secp384r1 -genkey`).
pub const KEY: &str = "-----BEGIN PRIVATE KEY-----\nMIG2AgEAMBAGByqGSM49AgEGBSuBBAAiBIGeMIGbAgEBBDCbfQTJf/lvS8neMlEj\nSruN7OjSlu1zGPUxpBlunpUhqzpx0jMI5DTnj17aHweXx/ehZANiAATtPqGYvsdw\nB+udYpo3nS+G60gw/MB6XD6ITmNdwtQUuhH8cYNZLzcKHJTEQWXrU/i0FFw1YyWN\nwysl98fFay8GtwhKeFdxKB+LjXLqb2PKjVOqJSkTsVpIncnX4N/RIDw=\n-----END PRIVATE KEY-----";

/// How many records there are, and the highest version of any.
pub async fn records(t: &TestApp) -> (i64, i64) {
    let db = t.db.connect().await;
    ehrshare_store::on_pool!(&db, p => {
        sqlx::query_as::<_, (i64, i64)>("SELECT COUNT(*), COALESCE(MAX(CAST(version AS BIGINT)), 0) FROM record")
            .fetch_one(p)
            .await
            .unwrap()
    })
}

/// A free port of 127.0.0.1.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A free port, and a test app whose public address is on it (not yet listening).
pub async fn server() -> (u16, TestApp) {
    let port = free_port();
    (port, server_at(port).await)
}

/// A test app whose public address is on `port`.
pub async fn server_at(port: u16) -> TestApp {
    let web = WebSettings {
        public_base_url: format!("http://127.0.0.1:{port}"),
        ..WebSettings::default()
    };
    let t = TestApp::with_settings(Settings::default(), web).await;
    // The clinic signs its assertions with the real time; the server checks them by its clock.
    t.clock.set(time::OffsetDateTime::now_utc());
    t
}

/// A CM clinic with a patient under its care (a sharing consent and an open episode), and the
/// clinic's system registered with [`KEY`] under kid `k1`: the patient's id and the client id.
pub async fn clinic_with_system(t: &TestApp) -> (String, String) {
    let (hcp, ua) = t.active_provider("Tung Shing CM Clinic", "t").await;
    let clerk = t
        .agent(
            Scope::Hcp(hcp.parse().unwrap()),
            "clerk.t",
            "registration-staff",
            false,
        )
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
    let access_key = t.last_message("+85291234567", "access-key").await["key"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = t
        .send_json(
            Some(&clerk),
            Request::post(format!("/api/v1/recipients/{recipient}/consents")),
            &json!({"method": "access-key", "access_key": access_key, "kind": "indefinite"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let r = t
        .send_json(
            Some(&clerk),
            Request::post(format!("/api/v1/recipients/{recipient}/episodes")),
            &json!({"kind": "attendance"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    // The clinic's user administrator registers its system's public key.
    let signing = EncodingKey::from_ec_pem(KEY.as_bytes()).unwrap();
    let mut jwk =
        serde_json::to_value(Jwk::from_encoding_key(&signing, Algorithm::ES384).unwrap()).unwrap();
    jwk["kid"] = json!("k1");
    jwk["alg"] = json!("ES384");
    let r = t
        .send_json(
            Some(&ua),
            Request::post(format!("/api/v1/providers/{hcp}/clients")),
            &json!({"name": "Clinic system", "scopes": "system/*.cu", "jwks": {"keys": [jwk]}}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let client = r.json()["client_id"].as_str().unwrap().to_owned();
    (recipient, client)
}

/// The child's exit status, or `None` if it did not finish `within` (it is then killed).
pub fn wait_for(
    child: &mut std::process::Child,
    within: Duration,
) -> Option<std::process::ExitStatus> {
    let until = Instant::now() + within;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        if Instant::now() > until {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
