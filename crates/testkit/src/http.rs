//! The application in process: requests go straight to the router, no socket.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use ehrshare_app::checkpoint::CheckpointFile;
use ehrshare_app::delivery::{Adapters, LogAdapter};
use ehrshare_app::signer::Ed25519Signer;
use ehrshare_app::{App, Services, Settings};
use ehrshare_web::WebSettings;
use http_body_util::BodyExt;
use tower::ServiceExt;

use crate::{FixedClock, TestDb};

/// The seed of the test checkpoint-signing key.
pub const TEST_SIGNING_SEED: [u8; 32] = [42; 32];
/// The receipt key of test apps (not the audit key).
pub const TEST_RECEIPT_SEED: [u8; 32] = [43; 32];

/// A running application over a fresh database, with a fixed clock.
#[derive(Debug)]
pub struct TestApp {
    pub db: TestDb,
    /// The data folder (checkpoint file).
    pub data: tempfile::TempDir,
    pub app: App,
    pub clock: FixedClock,
    router: Router,
    /// The office session of [`TestApp::office`], made on first use.
    pub(crate) office: tokio::sync::OnceCell<uuid::Uuid>,
}

/// A response, its body read.
#[derive(Debug)]
pub struct TestResponse {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl TestResponse {
    /// The body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "body is not JSON ({e}): {}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8(self.body.clone()).unwrap()
    }

    /// A header's value as text ("" when absent).
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }
}

impl TestApp {
    /// The application with default settings.
    pub async fn spawn() -> TestApp {
        TestApp::with_settings(Settings::default(), WebSettings::default()).await
    }

    /// The application with the given settings.
    pub async fn with_settings(settings: Settings, web: WebSettings) -> TestApp {
        TestApp::start(settings, web, None).await
    }

    /// The application with the given settings and notification adapters (default: every
    /// channel to the log file in [`TestApp::data`]).
    pub async fn start(
        settings: Settings,
        web: WebSettings,
        adapters: Option<Adapters>,
    ) -> TestApp {
        let db = TestDb::empty().await;
        let pool = db.migrated().await;
        TestApp::build(db, pool, settings, web, adapters).await
    }

    /// The application over `pool`, an open handle on `db` (which may reach it another way,
    /// such as through a [`crate::TcpProxy`]).
    pub async fn over(
        db: TestDb,
        pool: ehrshare_store::Db,
        settings: Settings,
        web: WebSettings,
    ) -> TestApp {
        TestApp::build(db, pool, settings, web, None).await
    }

    async fn build(
        db: TestDb,
        pool: ehrshare_store::Db,
        settings: Settings,
        web: WebSettings,
        adapters: Option<Adapters>,
    ) -> TestApp {
        let clock = FixedClock::standard();
        let data = tempfile::tempdir().unwrap();
        let checkpoints = TestApp::checkpoint_file_in(data.path());
        let signer = Box::new(Ed25519Signer::from_seed(TEST_SIGNING_SEED));
        let adapters = adapters.unwrap_or_else(|| {
            Adapters::all(Arc::new(LogAdapter::new(TestApp::message_log_in(
                data.path(),
            ))))
        });
        let services = Services {
            clock: Arc::new(clock.clone()),
            checkpoints: Some((signer, checkpoints)),
            adapters,
            seal: ehrshare_app::seal::SealKey::new([9; 32]).unwrap(),
            receipt_key: Box::new(Ed25519Signer::from_seed(TEST_RECEIPT_SEED)),
        };
        let app = App::start(pool, settings, services).await.unwrap();
        let router = ehrshare_web::router(app.clone(), &web);
        TestApp {
            db,
            data,
            app,
            clock,
            router,
            office: tokio::sync::OnceCell::new(),
        }
    }

    /// The checkpoint file of a data folder.
    pub fn checkpoint_file_in(dir: &std::path::Path) -> CheckpointFile {
        CheckpointFile::new(dir.join("audit/checkpoints.jsonl"))
    }

    /// The message log of a data folder (the default notification adapter's file).
    pub fn message_log_in(dir: &std::path::Path) -> std::path::PathBuf {
        dir.join("outbox/messages.log")
    }

    /// This app's checkpoint file.
    pub fn checkpoint_file(&self) -> CheckpointFile {
        TestApp::checkpoint_file_in(self.data.path())
    }

    /// The public key checkpoints are signed with.
    pub fn public_key() -> [u8; 32] {
        use ehrshare_app::signer::Signer;
        Ed25519Signer::from_seed(TEST_SIGNING_SEED).public_key()
    }

    /// The whole HTTP application, to serve on a real socket (for clients that are programs
    /// of their own).
    pub fn router(&self) -> Router {
        self.router.clone()
    }

    /// Sends a request.
    pub async fn send(&self, request: Request<Body>) -> TestResponse {
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let body = response
            .into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec();
        TestResponse {
            status,
            headers,
            body,
        }
    }

    /// `GET path`.
    pub async fn get(&self, path: &str) -> TestResponse {
        self.send(Request::get(path).body(Body::empty()).unwrap())
            .await
    }
}
