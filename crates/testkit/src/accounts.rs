//! Logged-in agents for tests: an account made through the application, logged in through
//! the HTTP API, and the headers its requests carry (session cookie and CSRF token).

use axum::body::Body;
use axum::http::Request;
use axum::http::request::Builder;
use ehrshare_app::account::NewAccount;
use ehrshare_app::duty::Scope;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::{TestApp, TestResponse};

/// The password test accounts are made with.
pub const TEST_PASSWORD: &str = "Test-pass-2026";

/// A logged-in session: what a browser would hold.
#[derive(Debug, Clone)]
pub struct Agent {
    /// `name=value` of the session cookie.
    pub cookie: String,
    pub csrf: String,
    pub user_name: String,
    pub account: Option<Uuid>,
}

/// Adds an agent's credentials to a request.
pub trait SignedBy {
    /// The request with the agent's cookie and CSRF token.
    fn signed_by(self, agent: &Agent) -> Self;
}

impl SignedBy for Builder {
    fn signed_by(self, agent: &Agent) -> Self {
        self.header("cookie", &agent.cookie)
            .header("x-csrf-token", &agent.csrf)
    }
}

/// The session cookie (`name=value`) a response sets.
pub fn session_cookie(r: &TestResponse) -> String {
    let set = r.header("set-cookie");
    set.split(';').next().unwrap_or("").trim().to_owned()
}

impl TestApp {
    /// The six-digit code of `secret` at the app's clock, optionally `steps` steps later.
    pub fn totp_code(&self, secret: &[u8]) -> String {
        let now =
            u64::try_from(ehrshare_core::clock::Clock::now(&self.clock).unix_timestamp()).unwrap();
        let code = ehrshare_core::totp::hotp(
            secret,
            ehrshare_core::totp::step_of(now),
            ehrshare_core::totp::DIGITS,
        );
        format!("{code:06}")
    }

    /// `POST /api/v1/session`.
    pub async fn log_in(&self, user: &str, password: &str, totp: Option<&str>) -> TestResponse {
        let mut body = json!({"user_name": user, "password": password});
        if let Some(code) = totp {
            body["totp"] = json!(code);
        }
        self.send(
            Request::post("/api/v1/session")
                .header("content-type", "application/json")
                .body(Body::from(body.to_string()))
                .unwrap(),
        )
        .await
    }

    /// An enrolled, active account made through the application (no outbox, no first-login
    /// steps), logged in through the API. The clock moves on one TOTP step first, so that two
    /// logins of one account never share a code.
    pub async fn agent(&self, scope: Scope, user: &str, role: &str, user_admin: bool) -> Agent {
        let seed: [u8; 20] = *b"test-totp-seed-12345";
        let prof_reg_no = ehrshare_core::profession::Role::parse(role)
            .filter(|r| r.is_professional())
            .map(|r| {
                let pattern = self.app.settings().auth.registration_numbers.describe(r);
                pattern
                    .split(" | ")
                    .next()
                    .unwrap()
                    .replace('#', "1")
                    .replace('@', "A")
            });
        let input = NewAccount {
            user_name: user.to_owned(),
            name_en: format!("TEST {user}"),
            role: role.to_owned(),
            user_admin,
            prof_reg_no,
            mobile: "9876 0000".to_owned(),
            document: Some(test_document(user)),
            ..NewAccount::default()
        };
        let account = self
            .app
            .create_demo_account(scope, input, TEST_PASSWORD, &seed)
            .await
            .unwrap();
        self.login_agent(user, &seed, Some(account.id)).await
    }

    /// Logs an enrolled account in (moving the clock one step on first).
    pub async fn login_agent(&self, user: &str, seed: &[u8], account: Option<Uuid>) -> Agent {
        self.clock.advance(time::Duration::seconds(30));
        let r = self
            .log_in(user, TEST_PASSWORD, Some(&self.totp_code(seed)))
            .await;
        assert_eq!(r.status, 201, "{}", r.text());
        Agent {
            cookie: session_cookie(&r),
            csrf: r.json()["csrf_token"].as_str().unwrap().to_owned(),
            user_name: user.to_owned(),
            account,
        }
    }

    /// A session of the office's registration officer: the account is made once per app
    /// (one audit entry), and each call writes a fresh session row at the current clock, as a
    /// fixture (logging in is tested on its own), so that tests may move the clock freely.
    pub async fn office(&self) -> Agent {
        let account = *self
            .office
            .get_or_init(|| async {
                let input = NewAccount {
                    user_name: "office.registration".to_owned(),
                    name_en: "TEST registration officer".to_owned(),
                    role: "registration-officer".to_owned(),
                    mobile: "9876 0001".to_owned(),
                    ..NewAccount::default()
                };
                self.app
                    .create_demo_account(
                        Scope::Office,
                        input,
                        TEST_PASSWORD,
                        b"office-totp-seed-123",
                    )
                    .await
                    .unwrap()
                    .id
            })
            .await;
        let token = ehrshare_app::secret::new_token().unwrap();
        let csrf = ehrshare_app::secret::new_token().unwrap();
        let now = ehrshare_core::clock::Clock::now(&self.clock);
        let sql = "INSERT INTO session (token_hash, account_id, person_id, stage, csrf_token, \
                   created_at, last_seen_at) VALUES ($1, $2, NULL, 'ready', $3, $4, $4)";
        let hash = ehrshare_app::secret::token_hash(&token);
        match self.db.connect().await.pool() {
            ehrshare_store::Pool::Sqlite(pool) => {
                sqlx::query(sql)
                    .bind(&hash)
                    .bind(account)
                    .bind(&csrf)
                    .bind(ehrshare_store::Ts(now))
                    .execute(pool)
                    .await
                    .unwrap();
            }
            ehrshare_store::Pool::Postgres(pool) => {
                sqlx::query(sql)
                    .bind(&hash)
                    .bind(account)
                    .bind(&csrf)
                    .bind(ehrshare_store::Ts(now))
                    .execute(pool)
                    .await
                    .unwrap();
            }
        }
        Agent {
            cookie: format!("__Host-ehrshare-session={token}"),
            csrf,
            user_name: "office.registration".to_owned(),
            account: Some(account),
        }
    }

    /// Sends `request` (a builder) as `agent` with a JSON body (or none for `Value::Null`).
    pub async fn send_json(
        &self,
        agent: Option<&Agent>,
        request: Builder,
        body: &Value,
    ) -> TestResponse {
        let mut b = request;
        if let Some(a) = agent {
            b = b.signed_by(a);
        }
        let body = if body.is_null() {
            Body::empty()
        } else {
            b = b.header("content-type", "application/json");
            Body::from(body.to_string())
        };
        self.send(b.body(body).unwrap()).await
    }

    /// The parameters of the newest outbox message to `address` with `template`.
    pub async fn last_message(&self, address: &str, template: &str) -> Value {
        let db = self.db.connect().await;
        let all = db.outbox_to(address).await.unwrap();
        all.into_iter()
            .find(|m| m.message.template == template)
            .map(|m| m.message.params)
            .unwrap_or_else(|| panic!("no {template} message to {address}"))
    }

    /// Takes an accepted provider through its set-up the way a real one goes: the office opens
    /// the first user administrator's account, whose holder logs in with the first password
    /// from the outbox, changes it and enrols a token. Returns the administrator's session and
    /// token seed.
    pub async fn set_up_provider(&self, hcp: &str, user: &str) -> (Agent, Vec<u8>) {
        let office = self.office().await;
        let mobile = "9111 2222";
        let r = self
            .send_json(
                Some(&office),
                Request::post(format!("/api/v1/providers/{hcp}/accounts")),
                &json!({"user_name": user, "name_en": "FIRST Admin", "role": "user-administrator",
                        "mobile": mobile, "language": "en", "document": test_document_json(user)}),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text());
        let first = self.last_message("+85291112222", "initial-password").await["password"]
            .as_str()
            .unwrap()
            .to_owned();
        self.first_login(user, &first).await
    }

    /// A first login: password change and token enrolment. Returns the session and the seed.
    pub async fn first_login(&self, user: &str, first_password: &str) -> (Agent, Vec<u8>) {
        let r = self.log_in(user, first_password, None).await;
        assert_eq!(r.status, 201, "{}", r.text());
        assert_eq!(r.json()["stage"], "must-change-password");
        let mut agent = Agent {
            cookie: session_cookie(&r),
            csrf: r.json()["csrf_token"].as_str().unwrap().to_owned(),
            user_name: user.to_owned(),
            account: r.json()["account"]["id"]
                .as_str()
                .map(|s| s.parse().unwrap()),
        };
        let r = self
            .send_json(
                Some(&agent),
                Request::post("/api/v1/session/password"),
                &json!({"current_password": first_password, "new_password": TEST_PASSWORD}),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.json()["stage"], "must-enrol-token");
        let r = self
            .send_json(
                Some(&agent),
                Request::post("/api/v1/session/token"),
                &Value::Null,
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text());
        let secret = data_encoding::BASE32_NOPAD
            .decode(r.json()["secret"].as_str().unwrap().as_bytes())
            .unwrap();
        let r = self
            .send_json(
                Some(&agent),
                Request::post("/api/v1/session/token/confirm"),
                &json!({"code": self.totp_code(&secret)}),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.json()["stage"], "ready");
        agent.user_name = user.to_owned();
        (agent, secret)
    }

    /// A provider registered, accepted and set up through the API, and its first user
    /// administrator's session (user name `ua.<suffix>`).
    pub async fn active_provider(&self, name_en: &str, suffix: &str) -> (String, Agent) {
        self.active_provider_in(name_en, suffix, "private").await
    }

    /// As [`TestApp::active_provider`], in a sector (`public` providers have deemed consent).
    pub async fn active_provider_in(
        &self,
        name_en: &str,
        suffix: &str,
        sector: &str,
    ) -> (String, Agent) {
        let office = self.office().await;
        let application = json!({
            "name_en": name_en,
            "name_zh": format!("{name_en}診所"),
            "br_number": "12345678",
            "hcp_type": "clinic",
            "sector": sector,
            "authorised_person": {"name": "WONG Siu Wai", "position": "Director", "phone": "9876 5432"},
            "contact_person": {"name": "LEE Ka Yan", "phone": "2345 6789"},
            "locations": [{"name_en": name_en, "name_zh": format!("{name_en}診所"),
                           "street": "1 Test Street", "district": "sha-tin", "phone": "2693 1234"}],
            "staff": [{"name_en": "WONG Siu Wai", "role": "user-administrator", "mobile": "9876 5432"}]
        });
        let r = self
            .send_json(
                Some(&office),
                Request::post("/api/v1/providers"),
                &application,
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text());
        let id = r.json()["id"].as_str().unwrap().to_owned();
        let r = self
            .send_json(
                Some(&office),
                Request::post(format!("/api/v1/providers/{id}/events")),
                &json!({"event": "accept"}),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text());
        let (agent, _) = self.set_up_provider(&id, &format!("ua.{suffix}")).await;
        (id, agent)
    }
}

/// A portal page request with an agent's session cookie.
pub fn page_get(agent: &Agent, path: &str) -> Request<Body> {
    Request::get(path)
        .header("cookie", &agent.cookie)
        .body(Body::empty())
        .unwrap()
}

/// A portal form post (`application/x-www-form-urlencoded`) with an agent's session cookie and
/// CSRF token; `fields` is already encoded.
pub fn page_post(agent: &Agent, path: &str, fields: &str) -> Request<Body> {
    Request::post(path)
        .header("content-type", "application/x-www-form-urlencoded")
        .header("cookie", &agent.cookie)
        .body(Body::from(format!("csrf_token={}&{fields}", agent.csrf)))
        .unwrap()
}

/// A passport of its own for the holder of test account `user` (the separation of duties
/// needs every administered account's identity document).
pub fn test_document(user: &str) -> ehrshare_core::registration::DocumentInput {
    // FNV-1a: stable across runs, distinct for distinct user names in practice.
    let hash = user.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    ehrshare_core::registration::DocumentInput {
        kind: "passport".to_owned(),
        issuer: Some("GB".to_owned()),
        number: format!("T{hash:016X}"),
    }
}

/// [`test_document`] as the JSON body's `document`.
pub fn test_document_json(user: &str) -> Value {
    let d = test_document(user);
    json!({"type": d.kind, "issuer": d.issuer, "number": d.number})
}
