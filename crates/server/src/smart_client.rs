//! The clinic system's side of SMART Backend Services (ADR 0015), shared by `ehrshare connect`
//! and `ehrshare import`: it discovers the token endpoint on the server named on the command
//! line (and sends its signed assertions nowhere else), asks for a token with a JWT signed by
//! the clinic's own key, keeps the token until shortly before it expires, and drops it when
//! the server refuses it. Neither the key nor a token is ever written anywhere.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use ehrshare_app::outbound::{Outbound, Response};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use tokio::sync::Mutex;

/// The server and the clinic system's credentials, as its user administrator registered them.
#[derive(Debug, Clone, clap::Args)]
pub struct SmartArgs {
    /// The ehrshare server's address, such as `https://ehr.example.hk`.
    #[arg(long, env = "EHRSHARE_CONNECT_SERVER")]
    pub server: String,
    /// The client id the provider's user administrator registered for this clinic system.
    #[arg(long, env = "EHRSHARE_CONNECT_CLIENT_ID")]
    pub client_id: String,
    /// The clinic system's private key (PEM: EC P-384 for ES384, or RSA for RS384); its public
    /// key is the one registered.
    #[arg(long, env = "EHRSHARE_CONNECT_KEY")]
    pub key: PathBuf,
    /// The `kid` the public key was registered under.
    #[arg(long, env = "EHRSHARE_CONNECT_KID")]
    pub kid: String,
    /// The scopes to ask for.
    #[arg(long, default_value = "system/*.cu")]
    pub scope: String,
}

/// A client of one ehrshare server, shared by the requests a command keeps in flight.
pub struct SmartClient {
    http: Outbound,
    /// Discovery and the token endpoint: small answers, a shorter wait.
    auth: Outbound,
    server: String,
    client_id: String,
    kid: String,
    key: EncodingKey,
    alg: Algorithm,
    scope: String,
    token_endpoint: Mutex<Option<String>>,
    token: Mutex<Option<(String, Instant)>>,
}

impl std::fmt::Debug for SmartClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmartClient")
            .field("server", &self.server)
            .field("client_id", &self.client_id)
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl SmartClient {
    /// A client for `args`, each request given at most `timeout`.
    pub fn new(args: &SmartArgs, timeout: Duration) -> anyhow::Result<SmartClient> {
        let server = args.server.trim_end_matches('/').to_owned();
        Outbound::check_url(&server).map_err(|e| anyhow::anyhow!("--server: {e}"))?;
        let pem = std::fs::read(&args.key).with_context(|| format!("{}", args.key.display()))?;
        let (key, alg) = signing_key(&pem)?;
        Ok(SmartClient {
            // Answers to a thousand-line import may carry an OperationOutcome a line.
            http: Outbound::new(timeout, &[])
                .map_err(|e| anyhow::anyhow!(e))?
                .with_max_response(16 * 1024 * 1024),
            auth: Outbound::new(timeout.min(AUTH_TIMEOUT), &[]).map_err(|e| anyhow::anyhow!(e))?,
            server,
            client_id: args.client_id.clone(),
            kid: args.kid.clone(),
            key,
            alg,
            scope: args.scope.clone(),
            token_endpoint: Mutex::new(None),
            token: Mutex::new(None),
        })
    }

    /// The token to send, asked for when there is none or it is about to expire. Requests in
    /// flight together wait for one answer rather than each asking.
    pub async fn token(&self) -> Result<String, Unsent> {
        let mut held = self.token.lock().await;
        if let Some((t, until)) = &*held
            && Instant::now() < *until
        {
            return Ok(t.clone());
        }
        let endpoint = self.token_endpoint().await?;
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let claims = json!({"iss": self.client_id, "sub": self.client_id, "aud": endpoint,
            "exp": now + 240, "jti": uuid::Uuid::now_v7().to_string()});
        let mut header = Header::new(self.alg);
        header.kid = Some(self.kid.clone());
        let assertion = jsonwebtoken::encode(&header, &claims, &self.key)
            .map_err(|e| Unsent::Refused(format!("cannot sign: {e}")))?;
        let form = serde_urlencoded::to_string([
            ("grant_type", "client_credentials"),
            ("scope", self.scope.as_str()),
            (
                "client_assertion_type",
                ehrshare_app::client_assertion::JWT_BEARER,
            ),
            ("client_assertion", assertion.as_str()),
        ])
        .map_err(|e| Unsent::Refused(e.to_string()))?;
        let r = self
            .auth
            .send_with(
                hyper::Method::POST,
                &endpoint,
                &[("accept", "application/json")],
                Some(("application/x-www-form-urlencoded", form.into_bytes())),
            )
            .await
            .map_err(Unsent::NoToken)?;
        let v: Value = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
        if r.status != 200 {
            // Force a fresh discovery next time, in case the server moved.
            *self.token_endpoint.lock().await = None;
            let said = format!(
                "the token endpoint refused: {} {} ({})",
                r.status,
                printable(v["error"].as_str().unwrap_or("?")),
                printable(v["error_description"].as_str().unwrap_or(""))
            );
            return Err(if passing(r.status) {
                Unsent::NoToken(said)
            } else {
                Unsent::Refused(said)
            });
        }
        let token = v["access_token"]
            .as_str()
            .ok_or_else(|| Unsent::NoToken("no access_token in the answer".to_owned()))?
            .to_owned();
        // A day at most: a server's word is not allowed to overflow the clock.
        let ttl = v["expires_in"]
            .as_u64()
            .unwrap_or(60)
            .min(86_400)
            .saturating_sub(30)
            .max(5);
        *held = Some((token.clone(), Instant::now() + Duration::from_secs(ttl)));
        Ok(token)
    }

    async fn token_endpoint(&self) -> Result<String, Unsent> {
        let mut known = self.token_endpoint.lock().await;
        if let Some(e) = &*known {
            return Ok(e.clone());
        }
        let r = self
            .auth
            .send_with(
                hyper::Method::GET,
                &format!("{}/fhir/.well-known/smart-configuration", self.server),
                &[("accept", "application/json")],
                None,
            )
            .await
            .map_err(Unsent::NoToken)?;
        if r.status != 200 {
            let said = format!("SMART discovery answered {}", r.status);
            return Err(if passing(r.status) {
                Unsent::NoToken(said)
            } else {
                Unsent::Refused(format!("{said}: is --server the ehrshare server?"))
            });
        }
        // A proxy's page in place of the server's answer may pass.
        let v: Value = serde_json::from_slice(&r.body)
            .map_err(|_| Unsent::NoToken("SMART discovery is not JSON".to_owned()))?;
        let e = v["token_endpoint"]
            .as_str()
            .ok_or_else(|| Unsent::Refused("SMART discovery names no token endpoint".to_owned()))?
            .to_owned();
        // Signed assertions go to the server named on the command line only.
        if !e.starts_with(&format!("{}/", self.server)) {
            return Err(Unsent::Refused(format!(
                "SMART discovery names a token endpoint elsewhere ({}): not sent there",
                printable(&e)
            )));
        }
        *known = Some(e.clone());
        Ok(e)
    }

    /// POSTs `body` to `path` on the server with a token. `Err` when no token could be had or
    /// the server could not be reached; a 401 drops the token, so that the next request asks
    /// for a new one.
    pub async fn post(
        &self,
        path: &str,
        content_type: &str,
        body: Vec<u8>,
    ) -> Result<Response, Unsent> {
        let token = self.token().await?;
        let bearer = format!("Bearer {token}");
        let r = self
            .http
            .send_with(
                hyper::Method::POST,
                &format!("{}{path}", self.server),
                &[
                    ("authorization", bearer.as_str()),
                    ("accept", "application/fhir+json"),
                    ("prefer", "return=minimal"),
                ],
                Some((content_type, body)),
            )
            .await
            .map_err(Unsent::Unreachable)?;
        if r.status == 401 {
            // Only this token: one another request has just been given stays.
            let mut held = self.token.lock().await;
            if held.as_ref().is_some_and(|(t, _)| *t == token) {
                *held = None;
            }
        }
        Ok(r)
    }
}

/// Why a request was not answered.
#[derive(Debug)]
pub enum Unsent {
    /// The token endpoint did not give one now.
    NoToken(String),
    /// The server refuses these credentials (a wrong client id, key, kid or scope, or no
    /// SMART server at that address): asking again will not change it.
    Refused(String),
    /// The server could not be reached, or did not answer in time.
    Unreachable(String),
}

impl std::fmt::Display for Unsent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Unsent::NoToken(e) => write!(f, "no token yet ({e})"),
            Unsent::Refused(e) => write!(f, "no token: {e}"),
            Unsent::Unreachable(e) => write!(f, "the server is unreachable ({e})"),
        }
    }
}

/// The longest wait for discovery and the token endpoint.
const AUTH_TIMEOUT: Duration = Duration::from_secs(30);

/// Whether a refusal by status may pass: a timeout, a rate limit, the server's own trouble.
pub fn passing(status: u16) -> bool {
    matches!(status, 408 | 429) || status >= 500
}

/// A server's text with its control characters replaced, fit for a terminal.
pub fn printable(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

/// An OperationOutcome in a line: each issue's code, text and where.
pub fn said(outcome: &Value) -> String {
    let Some(issues) = outcome["issue"].as_array() else {
        return String::new();
    };
    issues
        .iter()
        .map(|i| {
            let code = code_of(i);
            let text = i["details"]["text"]
                .as_str()
                .or(i["diagnostics"].as_str())
                .unwrap_or("");
            let at: Vec<&str> = i["expression"]
                .as_array()
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            printable(&if at.is_empty() {
                format!("{code}: {text}")
            } else {
                format!("{code}: {text} (at {})", at.join(", "))
            })
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// An issue's stable code: ehrshare's own (`details.coding`), else FHIR's issue type.
pub fn code_of(issue: &Value) -> &str {
    issue["details"]["coding"][0]["code"]
        .as_str()
        .or(issue["code"].as_str())
        .unwrap_or("?")
}

fn signing_key(pem: &[u8]) -> anyhow::Result<(EncodingKey, Algorithm)> {
    if let Ok(k) = EncodingKey::from_ec_pem(pem) {
        return Ok((k, Algorithm::ES384));
    }
    if let Ok(k) = EncodingKey::from_rsa_pem(pem) {
        return Ok((k, Algorithm::RS384));
    }
    anyhow::bail!("the key is neither an EC P-384 nor an RSA private key in PEM")
}
