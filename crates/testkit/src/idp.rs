//! A small OpenID Connect provider for tests, on 127.0.0.1: discovery, JWKS, and a token
//! endpoint that checks the code, the client and the PKCE verifier, and returns an ES256 ID
//! token with the claims the test chose (so that a test can make it expired, for another
//! audience, or signed with the wrong key).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use serde_json::{Value, json};

/// The client the provider knows.
pub const IDP_CLIENT_ID: &str = "ehrshare-test";
/// Its secret.
pub const IDP_CLIENT_SECRET: &str = "idp-client-secret-for-tests";

struct Keys {
    signing: EcdsaKeyPair,
    /// Another key, to sign tokens the relying party must refuse.
    wrong: EcdsaKeyPair,
}

#[derive(Default)]
struct Codes {
    /// code -> (claims to put in the ID token, nonce, PKCE challenge)
    issued: HashMap<String, (Value, String, String)>,
    sign_with_wrong_key: bool,
}

/// A running test provider.
#[derive(Clone)]
pub struct TestIdp {
    pub issuer: String,
    keys: Arc<Keys>,
    codes: Arc<Mutex<Codes>>,
}

impl std::fmt::Debug for TestIdp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestIdp")
            .field("issuer", &self.issuer)
            .finish()
    }
}

fn b64(bytes: &[u8]) -> String {
    data_encoding::BASE64URL_NOPAD.encode(bytes)
}

fn new_key(rng: &SystemRandom) -> EcdsaKeyPair {
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, rng).unwrap();
    EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), rng).unwrap()
}

impl TestIdp {
    /// Starts the provider on a free port.
    pub async fn start() -> TestIdp {
        let rng = SystemRandom::new();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let issuer = format!("http://{}", listener.local_addr().unwrap());
        let idp = TestIdp {
            issuer,
            keys: Arc::new(Keys {
                signing: new_key(&rng),
                wrong: new_key(&rng),
            }),
            codes: Arc::new(Mutex::new(Codes::default())),
        };
        let router = Router::new()
            .route("/.well-known/openid-configuration", get(discovery))
            .route("/jwks", get(jwks))
            .route("/token", post(token))
            .with_state(idp.clone());
        tokio::spawn(async move {
            axum::serve(listener, router).await.unwrap();
        });
        idp
    }

    /// Signs the next ID tokens with a key that is not in the JWKS.
    pub fn sign_with_wrong_key(&self, wrong: bool) {
        self.codes.lock().unwrap().sign_with_wrong_key = wrong;
    }

    /// The user authenticates at the provider for the authorization URL the relying party
    /// sent the browser to: returns the code the provider redirects back with. `claims` go
    /// into the ID token (the nonce is added from the URL).
    pub fn authorize(&self, url: &str, claims: Value) -> String {
        let query: HashMap<String, String> =
            serde_urlencoded::from_str(url.split_once('?').unwrap().1).unwrap();
        assert_eq!(query["client_id"], IDP_CLIENT_ID);
        assert_eq!(query["code_challenge_method"], "S256");
        let code = format!("code-{}", uuid::Uuid::new_v4());
        self.codes.lock().unwrap().issued.insert(
            code.clone(),
            (
                claims,
                query["nonce"].clone(),
                query["code_challenge"].clone(),
            ),
        );
        code
    }

    /// Default claims for `sub`, valid now (`now` as Unix seconds).
    pub fn claims(&self, sub: &str, now: i64) -> Value {
        json!({"iss": self.issuer, "aud": IDP_CLIENT_ID, "sub": sub, "iat": now, "exp": now + 300})
    }

    fn jwk(&self) -> Value {
        let public = self.keys.signing.public_key().as_ref();
        json!({"kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256", "kid": "k1",
               "x": b64(&public[1..33]), "y": b64(&public[33..65])})
    }
}

async fn discovery(State(idp): State<TestIdp>) -> Json<Value> {
    Json(json!({
        "issuer": idp.issuer,
        "authorization_endpoint": format!("{}/authorize", idp.issuer),
        "token_endpoint": format!("{}/token", idp.issuer),
        "jwks_uri": format!("{}/jwks", idp.issuer),
    }))
}

async fn jwks(State(idp): State<TestIdp>) -> Json<Value> {
    Json(json!({"keys": [idp.jwk()]}))
}

async fn token(
    State(idp): State<TestIdp>,
    Form(form): Form<HashMap<String, String>>,
) -> (axum::http::StatusCode, Json<Value>) {
    let bad = |e: &str| {
        (
            axum::http::StatusCode::BAD_REQUEST,
            Json(json!({"error": e})),
        )
    };
    if form.get("client_id").map(String::as_str) != Some(IDP_CLIENT_ID)
        || form.get("client_secret").map(String::as_str) != Some(IDP_CLIENT_SECRET)
    {
        return bad("invalid_client");
    }
    let code = form.get("code").cloned().unwrap_or_default();
    let (mut claims, nonce, challenge, wrong) = {
        let mut codes = idp.codes.lock().unwrap();
        let wrong = codes.sign_with_wrong_key;
        let Some((claims, nonce, challenge)) = codes.issued.remove(&code) else {
            return bad("invalid_grant");
        };
        (claims, nonce, challenge, wrong)
    };
    let verifier = form.get("code_verifier").cloned().unwrap_or_default();
    if ehrshare_core::oauth::pkce_challenge(&verifier) != challenge {
        return bad("invalid_grant");
    }
    claims["nonce"] = json!(nonce);
    let header = b64(json!({"alg": "ES256", "typ": "JWT", "kid": "k1"})
        .to_string()
        .as_bytes());
    let payload = b64(claims.to_string().as_bytes());
    let message = format!("{header}.{payload}");
    let key = if wrong {
        &idp.keys.wrong
    } else {
        &idp.keys.signing
    };
    let signature = key.sign(&SystemRandom::new(), message.as_bytes()).unwrap();
    let id_token = format!("{message}.{}", b64(signature.as_ref()));
    (
        axum::http::StatusCode::OK,
        Json(json!({"access_token": "at", "token_type": "Bearer", "id_token": id_token})),
    )
}
