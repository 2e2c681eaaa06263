//! Notifications: enqueued with their action, delivered by real adapters to servers the tests
//! start on 127.0.0.1, retried with backoff, failed for good without touching anything else.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use axum::routing::post;
use ehrshare_app::Settings;
use ehrshare_app::delivery::{Adapters, LogAdapter, SmtpAdapter, WebhookAdapter};
use ehrshare_app::outbox::Notice;
use ehrshare_app::settings::OutboxSettings;
use ehrshare_core::clock::Clock;
use ehrshare_core::locale::Locale;
use ehrshare_core::notification::Channel;
use ehrshare_store::outbox::StoredMessage;
use ehrshare_testkit::TestApp;
use ehrshare_testkit::audit::sample_entry;
use ehrshare_web::WebSettings;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use uuid::Uuid;

const RECIPIENT: Uuid = Uuid::from_u128(0xabc);

fn access_key_notice(channel: Channel, address: &str, locale: Locale) -> Notice {
    Notice {
        recipient: Some(RECIPIENT),
        address: address.to_owned(),
        channel,
        template: "access-key".to_owned(),
        params: BTreeMap::from([("key".to_owned(), "40183927".to_owned())]),
        locale,
    }
}

async fn messages(t: &TestApp) -> Vec<StoredMessage> {
    t.db.connect()
        .await
        .outbox_for_recipient(RECIPIENT)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_message_is_stored_with_its_action_and_delivered_through_the_log() {
    let t = TestApp::spawn().await;
    let entry = sample_entry(t.clock.now(), 3);
    t.app
        .audit_and_notify(
            entry,
            None,
            vec![access_key_notice(
                Channel::Sms,
                "+85291234567",
                Locale::ZhHk,
            )],
        )
        .await
        .unwrap();
    let stored = messages(&t).await;
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].status, "pending");
    assert_eq!(stored[0].message.params["key"], "40183927");

    let report = t.app.deliver_due().await.unwrap();
    assert_eq!(report.delivered, 1);
    let stored = messages(&t).await;
    assert_eq!(stored[0].status, "delivered");
    assert_eq!(stored[0].attempts, 1);
    assert_eq!(
        stored[0].message.params,
        serde_json::json!({}),
        "the key is erased once sent"
    );

    let log = std::fs::read_to_string(TestApp::message_log_in(t.data.path())).unwrap();
    assert!(log.contains("你的 ehrshare 授權號碼為 40183927"), "{log}");
    assert!(log.contains("+85291234567"));
    // Nothing more to do.
    assert_eq!(t.app.deliver_due().await.unwrap().delivered, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn no_message_without_its_action() {
    let t = TestApp::spawn().await;
    // A notice with a template that lacks its parameter: nothing at all is written.
    let mut bad = access_key_notice(Channel::Email, "a@example.org", Locale::En);
    bad.params.clear();
    let err = t
        .app
        .audit_and_notify(sample_entry(t.clock.now(), 0), None, vec![bad])
        .await
        .unwrap_err();
    assert_eq!(err.code(), "internal");
    assert_eq!(t.app.audit_head().size, 0);
    // The action fails: neither the entry nor the message is kept.
    let failing = ehrshare_store::change(|_conn| {
        Box::pin(async {
            Err(ehrshare_store::StoreError::Corrupt(
                "the action failed".into(),
            ))
        })
    });
    let notice = access_key_notice(Channel::Email, "a@example.org", Locale::En);
    assert!(
        t.app
            .audit_and_notify(sample_entry(t.clock.now(), 1), Some(failing), vec![notice])
            .await
            .is_err()
    );
    assert!(messages(&t).await.is_empty());
    assert_eq!(t.app.audit_head().size, 0);
}

/// A minimal SMTP server: accepts one message and hands over what was sent after DATA.
async fn smtp_listener() -> (
    u16,
    tokio::sync::oneshot::Receiver<(String, String, String)>,
) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        let (read, mut write) = stream.into_split();
        let mut lines = BufReader::new(read).lines();
        write.write_all(b"220 test.local ESMTP\r\n").await.unwrap();
        let (mut from, mut to, mut data) = (String::new(), String::new(), String::new());
        let mut in_data = false;
        while let Ok(Some(line)) = lines.next_line().await {
            if in_data {
                if line == "." {
                    in_data = false;
                    write.write_all(b"250 2.0.0 queued\r\n").await.unwrap();
                } else {
                    data.push_str(&line);
                    data.push('\n');
                }
                continue;
            }
            let upper = line.to_ascii_uppercase();
            let reply: &[u8] = if upper.starts_with("EHLO") || upper.starts_with("HELO") {
                b"250 test.local\r\n"
            } else if upper.starts_with("MAIL FROM") {
                from = line.clone();
                b"250 2.1.0 ok\r\n"
            } else if upper.starts_with("RCPT TO") {
                to = line.clone();
                b"250 2.1.5 ok\r\n"
            } else if upper.starts_with("DATA") {
                in_data = true;
                b"354 go ahead\r\n"
            } else if upper.starts_with("QUIT") {
                write.write_all(b"221 bye\r\n").await.unwrap();
                break;
            } else {
                b"250 ok\r\n"
            };
            write.write_all(reply).await.unwrap();
        }
        let _ = tx.send((from, to, data));
    });
    (port, rx)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_smtp_adapter_delivers_to_an_smtp_server() {
    let (port, received) = smtp_listener().await;
    let smtp = SmtpAdapter::new(
        "127.0.0.1",
        port,
        "eHR Office <noreply@ehr.example>",
        Duration::from_secs(10),
    )
    .unwrap();
    let log = Arc::new(LogAdapter::new(
        std::env::temp_dir().join(format!("ehrshare-{}.log", Uuid::new_v4())),
    ));
    let adapters = Adapters {
        email: Arc::new(smtp),
        sms: log,
    };
    let t = TestApp::start(Settings::default(), WebSettings::default(), Some(adapters)).await;
    t.app
        .audit_and_notify(
            sample_entry(t.clock.now(), 0),
            None,
            vec![access_key_notice(
                Channel::Email,
                "Chan Tai Man <tm.chan@example.org>",
                Locale::En,
            )],
        )
        .await
        .unwrap();
    let report = t.app.deliver_due().await.unwrap();
    assert_eq!(report.delivered, 1, "{report:?}");
    let (from, to, data) = tokio::time::timeout(Duration::from_secs(10), received)
        .await
        .unwrap()
        .unwrap();
    assert!(from.contains("<noreply@ehr.example>"), "{from}");
    assert!(to.contains("<tm.chan@example.org>"), "{to}");
    assert!(data.contains("Subject: Your eHealth access key"), "{data}");
    assert!(
        data.contains("Your ehrshare access key is 40183927."),
        "{data}"
    );
    assert_eq!(messages(&t).await[0].status, "delivered");
}

/// An HTTP endpoint answering with the given statuses in turn (the last one repeats), keeping
/// the bodies it received.
async fn gateway(statuses: Vec<u16>) -> (String, Arc<Mutex<Vec<serde_json::Value>>>) {
    let received = Arc::new(Mutex::new(Vec::new()));
    let calls = Arc::new(AtomicUsize::new(0));
    let bodies = Arc::clone(&received);
    let app = Router::new().route(
        "/sms",
        post(move |body: String| {
            let bodies = Arc::clone(&bodies);
            let calls = Arc::clone(&calls);
            let statuses = statuses.clone();
            async move {
                bodies
                    .lock()
                    .unwrap()
                    .push(serde_json::from_str(&body).unwrap());
                let n = calls.fetch_add(1, Ordering::SeqCst);
                StatusCode::from_u16(statuses[n.min(statuses.len() - 1)]).unwrap()
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/sms", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, received)
}

fn sms_adapters(url: &str, dir: &std::path::Path) -> Adapters {
    let log = Arc::new(LogAdapter::new(TestApp::message_log_in(dir)));
    Adapters {
        email: log,
        sms: Arc::new(WebhookAdapter::new(url, Duration::from_secs(10)).unwrap()),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_webhook_adapter_retries_a_500_and_succeeds_on_the_next_200() {
    let (url, received) = gateway(vec![500, 200]).await;
    let logs = tempfile::tempdir().unwrap();
    let t = TestApp::start(
        Settings::default(),
        WebSettings::default(),
        Some(sms_adapters(&url, logs.path())),
    )
    .await;
    t.app
        .audit_and_notify(
            sample_entry(t.clock.now(), 0),
            None,
            vec![access_key_notice(Channel::Sms, "+85291234567", Locale::En)],
        )
        .await
        .unwrap();

    let first = t.app.deliver_due().await.unwrap();
    assert_eq!((first.delivered, first.retried), (0, 1));
    let m = &messages(&t).await[0];
    assert_eq!(m.status, "pending");
    assert!(
        m.last_error.as_deref().unwrap_or("").contains("500"),
        "{:?}",
        m.last_error
    );
    assert_eq!(
        m.next_attempt_at,
        t.clock.now() + time::Duration::seconds(10),
        "first backoff"
    );

    // Not due yet: nothing happens.
    t.clock.advance(time::Duration::seconds(9));
    assert_eq!(t.app.deliver_due().await.unwrap(), Default::default());
    t.clock.advance(time::Duration::seconds(1));
    let second = t.app.deliver_due().await.unwrap();
    assert_eq!(second.delivered, 1);
    let m = &messages(&t).await[0];
    assert_eq!((m.status.as_str(), m.attempts), ("delivered", 2));

    let bodies = received.lock().unwrap();
    assert_eq!(bodies.len(), 2);
    assert_eq!(bodies[1]["to"], "+85291234567");
    assert_eq!(bodies[1]["channel"], "sms");
    assert!(bodies[1]["text"].as_str().unwrap().contains("40183927"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_message_that_always_fails_ends_failed_and_nothing_else_is_affected() {
    let (url, received) = gateway(vec![500]).await;
    let logs = tempfile::tempdir().unwrap();
    let settings = Settings {
        outbox: OutboxSettings {
            max_attempts: 3,
            ..OutboxSettings::default()
        },
        ..Settings::default()
    };
    let t = TestApp::start(
        settings,
        WebSettings::default(),
        Some(sms_adapters(&url, logs.path())),
    )
    .await;
    t.app
        .audit_and_notify(
            sample_entry(t.clock.now(), 0),
            None,
            vec![
                access_key_notice(Channel::Sms, "+85291234567", Locale::En),
                access_key_notice(Channel::Email, "tm.chan@example.org", Locale::En),
            ],
        )
        .await
        .unwrap();
    let mut failed = 0;
    let mut delivered = 0;
    for wait in [0, 10, 20] {
        t.clock.advance(time::Duration::seconds(wait));
        let r = t.app.deliver_due().await.unwrap();
        failed += r.failed;
        delivered += r.delivered;
    }
    assert_eq!((failed, delivered), (1, 1));
    assert_eq!(
        received.lock().unwrap().len(),
        3,
        "three tries, then no more"
    );
    t.clock.advance(time::Duration::hours(2));
    assert_eq!(t.app.deliver_due().await.unwrap(), Default::default());

    let stored = messages(&t).await;
    let sms = stored.iter().find(|m| m.message.channel == "sms").unwrap();
    let email = stored
        .iter()
        .find(|m| m.message.channel == "email")
        .unwrap();
    assert_eq!((sms.status.as_str(), sms.attempts), ("failed", 3));
    assert_eq!(
        sms.message.params,
        serde_json::json!({}),
        "the key is erased"
    );
    assert!(sms.finished_at.is_some());
    assert_eq!(email.status, "delivered");
    // The action that caused them stands.
    assert_eq!(t.app.audit_head().size, 1);
}

/// An HTTPS endpoint with a self-signed certificate for `localhost`: answers 200 and keeps the
/// bodies. Returns its port, its certificate (DER) and the bodies.
async fn tls_gateway() -> (u16, Vec<u8>, Arc<Mutex<Vec<String>>>) {
    use http_body_util::BodyExt;
    use tokio_rustls::rustls;
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let der = cert.cert.der().to_vec();
    let key = rustls::pki_types::PrivateKeyDer::try_from(cert.signing_key.serialize_der()).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(
        vec![rustls::pki_types::CertificateDer::from(der.clone())],
        key,
    )
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let bodies = Arc::new(Mutex::new(Vec::new()));
    let kept = Arc::clone(&bodies);
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            let kept = Arc::clone(&kept);
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let service = hyper::service::service_fn(
                    move |req: hyper::Request<hyper::body::Incoming>| {
                        let kept = Arc::clone(&kept);
                        async move {
                            let body = req.into_body().collect().await.unwrap().to_bytes();
                            kept.lock()
                                .unwrap()
                                .push(String::from_utf8_lossy(&body).into_owned());
                            Ok::<_, std::convert::Infallible>(hyper::Response::new(
                                http_body_util::Full::new(hyper::body::Bytes::from_static(b"ok")),
                            ))
                        }
                    },
                );
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                    .await;
            });
        }
    });
    (port, der, bodies)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_webhook_adapter_speaks_https_and_verifies_the_certificate() {
    let (port, der, bodies) = tls_gateway().await;
    let url = format!("https://localhost:{port}/sms");
    let logs = tempfile::tempdir().unwrap();
    let log = Arc::new(LogAdapter::new(TestApp::message_log_in(logs.path())));

    // Trusting the gateway's certificate: delivered over TLS.
    let trusting = WebhookAdapter::with_roots(&url, Duration::from_secs(10), &[der]).unwrap();
    let adapters = Adapters {
        email: log.clone(),
        sms: Arc::new(trusting),
    };
    let t = TestApp::start(Settings::default(), WebSettings::default(), Some(adapters)).await;
    t.app
        .audit_and_notify(
            sample_entry(t.clock.now(), 0),
            None,
            vec![access_key_notice(Channel::Sms, "+85291234567", Locale::En)],
        )
        .await
        .unwrap();
    assert_eq!(t.app.deliver_due().await.unwrap().delivered, 1);
    assert!(bodies.lock().unwrap()[0].contains("40183927"));

    // Not trusting it (public roots only): refused, to be retried; nothing was sent.
    let strict = WebhookAdapter::new(&url, Duration::from_secs(10)).unwrap();
    let adapters = Adapters {
        email: log,
        sms: Arc::new(strict),
    };
    let t = TestApp::start(Settings::default(), WebSettings::default(), Some(adapters)).await;
    t.app
        .audit_and_notify(
            sample_entry(t.clock.now(), 0),
            None,
            vec![access_key_notice(Channel::Sms, "+85291234567", Locale::En)],
        )
        .await
        .unwrap();
    let report = t.app.deliver_due().await.unwrap();
    assert_eq!((report.delivered, report.retried), (0, 1));
    let m = &messages(&t).await[0];
    assert!(
        m.last_error.as_deref().unwrap_or("").starts_with("tls:"),
        "{:?}",
        m.last_error
    );
    assert_eq!(bodies.lock().unwrap().len(), 1);
}

/// Issue 26, item 3: a notice to an SDM goes by the SDM's own channel: here the access key of
/// a child registered by a parent whose channel is e-mail reaches the parent's address through
/// a real SMTP exchange, not the child's SMS.
#[tokio::test(flavor = "multi_thread")]
async fn a_notice_to_an_sdm_goes_to_their_email_when_that_is_their_channel() {
    let (port, received) = smtp_listener().await;
    let smtp = SmtpAdapter::new(
        "127.0.0.1",
        port,
        "eHR Office <noreply@ehr.example>",
        Duration::from_secs(10),
    )
    .unwrap();
    let log = Arc::new(LogAdapter::new(
        std::env::temp_dir().join(format!("ehrshare-{}.log", Uuid::new_v4())),
    ));
    let adapters = Adapters {
        email: Arc::new(smtp),
        sms: log,
    };
    let t = TestApp::start(Settings::default(), WebSettings::default(), Some(adapters)).await;
    let office = t.office().await;
    let r = t
        .send_json(
            Some(&office),
            axum::http::Request::post("/api/v1/recipients"),
            &serde_json::json!({"channel": "in-person", "name_en": "CHAN Siu Ming",
                "date_of_birth": "2020-05-01", "sex": "male",
                "document": {"type": "hkid", "number": "A123456(3)"},
                "phone": "6123 0000", "language": "en", "notify_channel": "sms",
                "sdm": {"name_en": "CHAN Tai Man", "document": {"type": "passport", "issuer": "GB", "number": "123456789"},
                        "category": "parent", "relationship_proof": "birth certificate",
                        "phone": "6123 4567", "email": "parent@example.org", "notify_channel": "email"}}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let report = t.app.deliver_due().await.unwrap();
    assert!(report.delivered >= 1, "{report:?}");
    let (_, to, data) = tokio::time::timeout(Duration::from_secs(10), received)
        .await
        .unwrap()
        .unwrap();
    assert!(to.contains("<parent@example.org>"), "{to}");
    assert!(data.contains("Subject: Your eHealth access key"), "{data}");
    // Nothing of it went to the child's or the parent's phone.
    let to_phones = messages(&t)
        .await
        .into_iter()
        .filter(|m| m.message.template == "access-key" && m.message.channel == "sms")
        .count();
    assert_eq!(to_phones, 0);
}
