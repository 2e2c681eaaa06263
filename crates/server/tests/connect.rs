//! `ehrshare connect`, the clinic's connection component, against a real listening server
//! (issue 25, item 7): 200 resources exported while the server is down wait in the durable
//! queue, arrive once the server is back, each exactly once; sent again, they change nothing.
//! The export is the CM clinic's example (`examples/cm-clinic/`), as 50 visits.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::time::{Duration, Instant};

use axum::http::Request;
use ehrshare_app::Settings;
use ehrshare_app::duty::Scope;
use ehrshare_testkit::TestApp;
use ehrshare_web::WebSettings;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, EncodingKey};
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_ehrshare");

// A key made for this test only (`openssl ecparam -name secp384r1 -genkey`).
const KEY: &str = "-----BEGIN PRIVATE KEY-----\nMIG2AgEAMBAGByqGSM49AgEGBSuBBAAiBIGeMIGbAgEBBDCbfQTJf/lvS8neMlEj\nSruN7OjSlu1zGPUxpBlunpUhqzpx0jMI5DTnj17aHweXx/ehZANiAATtPqGYvsdw\nB+udYpo3nS+G60gw/MB6XD6ITmNdwtQUuhH8cYNZLzcKHJTEQWXrU/i0FFw1YyWN\nwysl98fFay8GtwhKeFdxKB+LjXLqb2PKjVOqJSkTsVpIncnX4N/RIDw=\n-----END PRIVATE KEY-----";

const EXAMPLE: &str = include_str!("../../../examples/cm-clinic/visit-20261201-0077.json");

/// Visit `n`: the example with its visit's ids made the visit's own (the Patient stays).
fn visit(n: usize) -> String {
    EXAMPLE.replace("20261201-0077", &format!("v{n:03}-0077"))
}

async fn records(t: &TestApp) -> (i64, i64) {
    let db = t.db.connect().await;
    ehrshare_store::on_pool!(&db, p => {
        sqlx::query_as::<_, (i64, i64)>("SELECT COUNT(*), COALESCE(MAX(CAST(version AS BIGINT)), 0) FROM record")
            .fetch_one(p)
            .await
            .unwrap()
    })
}

fn connect(port: u16, client: &str, key: &Path, queue: &Path, watch: &Path) -> std::process::Child {
    std::process::Command::new(BIN)
        .args(["connect", "--server", &format!("http://127.0.0.1:{port}")])
        .args([
            "--client-id",
            client,
            "--kid",
            "k1",
            "--once",
            "--max-backoff-secs",
            "1",
        ])
        .arg("--key")
        .arg(key)
        .arg("--queue")
        .arg(queue)
        .arg("--watch")
        .arg(watch)
        .env("EHRSHARE_LOG_LEVEL", "warn")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap()
}

/// The child's exit status, or `None` if it did not finish `within` (it is then killed).
fn wait_for(child: &mut std::process::Child, within: Duration) -> Option<std::process::ExitStatus> {
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

fn files(dir: &Path) -> usize {
    std::fs::read_dir(dir).map(|d| d.count()).unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_resources_queued_while_the_server_is_down_arrive_exactly_once() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let web = WebSettings {
        public_base_url: format!("http://127.0.0.1:{port}"),
        ..WebSettings::default()
    };
    let t = TestApp::with_settings(Settings::default(), web).await;
    // The clinic signs its assertions with the real time; the server checks them by its clock.
    t.clock.set(time::OffsetDateTime::now_utc());
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

    let dir = tempfile::tempdir().unwrap();
    let (key, queue, watch) = (
        dir.path().join("key.pem"),
        dir.path().join("queue"),
        dir.path().join("export"),
    );
    std::fs::write(&key, KEY).unwrap();
    std::fs::create_dir_all(&watch).unwrap();
    for n in 0..50 {
        std::fs::write(watch.join(format!("visit-{n:03}.json")), visit(n)).unwrap();
    }

    // The server is down: everything waits in the queue.
    let mut first = connect(port, &client, &key, &queue, &watch);
    let until = Instant::now() + Duration::from_secs(30);
    let log = queue.join("connect.log");
    while !(files(&watch) == 0
        && files(&queue.join("pending")) == 50
        && std::fs::read_to_string(&log)
            .unwrap_or_default()
            .contains("WAITING"))
    {
        assert!(
            Instant::now() < until,
            "{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(records(&t).await.0, 0);

    // The server is back: everything arrives.
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    let server = tokio::spawn(axum::serve(listener, t.router()).into_future());
    let status = tokio::task::spawn_blocking(move || wait_for(&mut first, Duration::from_secs(40)))
        .await
        .unwrap();
    let said = std::fs::read_to_string(&log).unwrap();
    assert!(status.is_some_and(|s| s.success()), "{said}");
    assert_eq!(said.matches("STORED").count(), 50, "{said}");
    assert_eq!(files(&queue.join("pending")), 0);
    assert_eq!(files(&queue.join("refused")), 0, "{said}");
    // 200 visit resources, and the patient's demographics once; each stored once.
    assert_eq!(records(&t).await, (201, 1), "{said}");

    // The clinic's system exports the same visits again: nothing changes.
    for n in 0..50 {
        std::fs::write(watch.join(format!("visit-{n:03}.json")), visit(n)).unwrap();
    }
    let mut again = connect(port, &client, &key, &queue, &watch);
    let status = tokio::task::spawn_blocking(move || wait_for(&mut again, Duration::from_secs(20)))
        .await
        .unwrap();
    assert!(
        status.is_some_and(|s| s.success()),
        "{}",
        std::fs::read_to_string(&log).unwrap()
    );
    assert_eq!(records(&t).await, (201, 1));
    let said = std::fs::read_to_string(&log).unwrap();
    assert_eq!(said.matches("STORED").count(), 100);
    assert!(said.contains("Condition/cmdx-v000-0077 200 OK"), "{said}");

    // An export the server refuses is kept aside, with the reason in the clinic's words.
    let mut wrong: Value = serde_json::from_str(&visit(99)).unwrap();
    wrong["entry"][2]["resource"]["subject"] = json!({"identifier": {"system": "https://ehrshare.example/fhir/NamingSystem/hkid", "value": "Z9999990"}});
    std::fs::write(watch.join("visit-099.json"), wrong.to_string()).unwrap();
    let mut refused = connect(port, &client, &key, &queue, &watch);
    let status =
        tokio::task::spawn_blocking(move || wait_for(&mut refused, Duration::from_secs(20)))
            .await
            .unwrap();
    let said = std::fs::read_to_string(&log).unwrap();
    assert!(status.is_some_and(|s| s.success()), "{said}");
    assert!(said.contains("REFUSED"), "{said}");
    assert!(said.contains("subject"), "{said}");
    assert_eq!(files(&queue.join("refused")), 1);
    assert_eq!(records(&t).await, (201, 1), "nothing of it was stored");
    server.abort();
}
