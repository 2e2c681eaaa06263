//! SMART Backend Services (issue 25, item 2): a clinic system whose provider's user
//! administrator registered its public keys gets a token with a JWT it signs, and only so:
//! a wrong key, a replayed `jti`, an expired assertion, a scope beyond its grant, a private
//! key offered for registration, and a secret tried instead are each refused.

use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

use super::*;

// Keys made for these tests only (`openssl ecparam -name secp384r1 -genkey`, `openssl genpkey
// -algorithm RSA`); they protect nothing.
const KEY_A: &str = "-----BEGIN PRIVATE KEY-----\nMIG2AgEAMBAGByqGSM49AgEGBSuBBAAiBIGeMIGbAgEBBDCbfQTJf/lvS8neMlEj\nSruN7OjSlu1zGPUxpBlunpUhqzpx0jMI5DTnj17aHweXx/ehZANiAATtPqGYvsdw\nB+udYpo3nS+G60gw/MB6XD6ITmNdwtQUuhH8cYNZLzcKHJTEQWXrU/i0FFw1YyWN\nwysl98fFay8GtwhKeFdxKB+LjXLqb2PKjVOqJSkTsVpIncnX4N/RIDw=\n-----END PRIVATE KEY-----";
const KEY_B: &str = "-----BEGIN PRIVATE KEY-----\nMIG2AgEAMBAGByqGSM49AgEGBSuBBAAiBIGeMIGbAgEBBDAC5Zqj6SGMHkZUQm7i\nV6BM/HVEvVbNQoGbXsAtj1lmZrwSjDJCIWcWOm+6jTUwFKKhZANiAASwSypUj0a5\naTsUoD9GIpTuUSValBFjvGUOPX6HgqxrRjFzAVtblvXP/HSToVqggLQkmS/aH3X6\n6C5dYowKJLZxy33IcWMeEBD0CKnNR7cnnWyFqySFK9s+nMgDVPKEhEA=\n-----END PRIVATE KEY-----";
const KEY_RSA: &str = "-----BEGIN PRIVATE KEY-----\nMIIEvAIBADANBgkqhkiG9w0BAQEFAASCBKYwggSiAgEAAoIBAQCP19zIXZjRU8bU\n+M4FimNBl5EHN/Ig3fPo/7bZgMk+ujOrQtllYb2lQmbIheFMyVy0bOo88omkeaZF\nofu20HnAZWLulzEb15iBbBsnvIhyvACRUM+7DwwH6h5YdOi3IXRFA9Sn4Q6p9tZt\nHg3jkVgrgWxJtgMgpBTTWAe62UAT8mwC9rOJ+Byd1ZdP1rNfCnMreZbDwPkag5Rh\nLbRriSsKXVdQkE3wgNLtt9qMmiarZ8x2tph/Kx0EOKafkSWsnrCvtjOKtvBKh+fH\nZp0i9paaIIyWt80vMzXEkxF0IUqbegZY8PcjpCH4fta4VSpB7ewEIE8Ord2WZfrI\nJLMzdsWFAgMBAAECggEAMNrdNwRrKfWtW5phxwn4qkeDT5NV3onkFOf9P6R5NZ/i\nerGKyt9GnUGPTV4DZqQho3o2mJq72ywiKBZbOv1VzN3imyyo1k8EkjiYhIeJRIbM\nHo727w6uRGXlBqA2hjSLnAEwEhDjfSDENW12xCsSajxb/jEeoNB57kpA3dp55Av4\n+X/+YqQSW2CqV9Ius2R6T5beqd1ccjFAYbBKkXbSSrPlfqhCqNlnv3iM4QStj2lI\nm9xe3TFX6A9zLtCYxdTL9p253nS5GZy8Ia3O7XawA1NEyecQFOq5VDQrjtKTwUBL\neZ8o91Xbg/je+pHCz3IuKOLXwr6/eFIVNSyf5Hs5xQKBgQDDfC+5JdfoaQWq5efJ\nZR3iyt4gQCmFxKzIWEvayD86v6x7aMNOL0zzFJnBg4jp5ZA0C0rJ3pEcDYAzEsif\np8BfgUBmjgT9CK3d146yYJk/zmy/I1TYeRMwHqtZ2DDNg6dy5TCvLA2DghTKFIqO\nfu+7BSMGspYWhI1Wl5ss0mBOdwKBgQC8XygjutOJ3D41n5RHxYMagNHEgVBqv80J\nn4Cs77hCOujMJI076jzB/jdchDx8YjYKhN98rS5mS0tlezB5Vww7OK008TXZMTNB\nN58kKz8QIjWZ49JavJo0m3rCgxt2C4EkCxLRGVWPS3Ql1VcxH1Ki0gJS+tirWgIq\nT5d8f6re4wKBgEh6xAsGz/246sQJiB4w4prTEvasM3kIifOiYUWWF3OF28LJ/hgA\nC6zZB4UratkmJ4hUY39jiTP4gX7uSPqBLR98Ac/Eem8DB8wH/z19+XQh6koYJH46\nrfWaeXfPY5Dfbnd4KMvaLoyC74hZg2IACIy0A9+Y2XMx5GGlxoAg5FpTAoGAUOBi\nMYUDUgt3wjozxeTtdzGb3szOpCaZd+o9qwJ5kCYO0adX5EObtobZaiV0essH/Ngz\nxCnu5Air5HRRyacwHzUkWLi/r/LJ2NRyxWqz9s9ZSCtio4aahr/Co0T7Q2GJHtqK\nR7Ci5ZU11xCUEQkrx7B3Qv1kjZ1llJj7p36A9JUCgYBglsGyDy8IWKNoKdBHR3Gm\n5UUvbCTFzYsy1YOlzSavQTB4BjjHYip0u7KWy6wjV6W1bXOXkDPN/Bjd5GTvjtz3\naKlYOb43FZLQoNFFkBcUku/nt+2G3n37v+ghfDjm4vd5/LGBDCfepttyU+Gxo8C7\nKFbM/zl8Qc7uD+TwiIk2FA==\n-----END PRIVATE KEY-----";

fn signing_key(alg: Algorithm, pem: &str) -> EncodingKey {
    match alg {
        Algorithm::ES384 => EncodingKey::from_ec_pem(pem.as_bytes()).unwrap(),
        _ => EncodingKey::from_rsa_pem(pem.as_bytes()).unwrap(),
    }
}

/// The public JWK of `pem`, as a clinic would register it.
fn public_jwk(alg: Algorithm, pem: &str, kid: &str) -> Value {
    let mut jwk =
        serde_json::to_value(Jwk::from_encoding_key(&signing_key(alg, pem), alg).unwrap()).unwrap();
    jwk["kid"] = json!(kid);
    jwk["alg"] = json!(format!("{alg:?}"));
    jwk
}

fn now(w: &World) -> i64 {
    ehrshare_core::clock::Clock::now(&w.t.clock).unix_timestamp()
}

/// An assertion as SMART describes it, with `claims` changed by the caller.
fn assertion(alg: Algorithm, pem: &str, kid: &str, claims: &Value) -> String {
    let mut header = Header::new(alg);
    header.kid = Some(kid.to_owned());
    jsonwebtoken::encode(&header, claims, &signing_key(alg, pem)).unwrap()
}

async fn token_with(w: &World, assertion: &str, scope: &str) -> TestResponse {
    let body = serde_urlencoded::to_string([
        ("grant_type", "client_credentials"),
        ("scope", scope),
        (
            "client_assertion_type",
            "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        ),
        ("client_assertion", assertion),
    ])
    .unwrap();
    w.t.send(
        Request::post("/oauth/token")
            .header("content-type", "application/x-www-form-urlencoded")
            .body(axum::body::Body::from(body))
            .unwrap(),
    )
    .await
}

#[tokio::test]
async fn a_backend_service_signs_for_its_token_and_every_forgery_is_refused() {
    let w = under_care().await;
    let smart = fhir_get(&w, None, "/fhir/.well-known/smart-configuration", None)
        .await
        .json();
    assert!(
        smart["token_endpoint_auth_methods_supported"]
            .as_array()
            .unwrap()
            .contains(&json!("private_key_jwt"))
    );
    assert_eq!(
        smart["token_endpoint_auth_signing_alg_values_supported"],
        json!(["RS384", "ES384"])
    );
    let audience = smart["token_endpoint"].as_str().unwrap().to_owned();
    let clients = format!("/api/v1/providers/{}/clients", w.hcp);

    // A private key is never registered, nor stored.
    let mut private = public_jwk(Algorithm::ES384, KEY_A, "a");
    private["d"] = json!("AAAA");
    let r = w
        .post(
            &w.ua,
            &clients,
            json!({"name": "CM clinic", "scopes": "system/*.c", "jwks": {"keys": [private]}}),
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.text());
    assert_eq!(
        r.json()["errors"][0]["field"],
        "/jwks/keys/0/d",
        "{}",
        r.text()
    );
    // A doctor is not a user administrator.
    let jwks = json!({"keys": [public_jwk(Algorithm::ES384, KEY_A, "a"), public_jwk(Algorithm::RS384, KEY_RSA, "r")]});
    let r = w
        .post(
            &w.doctor,
            &clients,
            json!({"name": "CM clinic", "scopes": "system/*.c", "jwks": jwks}),
        )
        .await;
    assert_eq!(r.status, 404, "{}", r.text());
    let r = w
        .post(
            &w.ua,
            &clients,
            json!({"name": "CM clinic", "scopes": "system/*.c", "jwks": jwks}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    assert!(
        r.json().get("client_secret").is_none(),
        "a client with keys has no secret"
    );
    let id = r.json()["client_id"].as_str().unwrap().to_owned();

    let claims = |jti: &str| json!({"iss": id, "sub": id, "aud": audience, "exp": now(&w) + 240, "jti": jti});

    // Signed with a registered key: a token, for what was asked and granted.
    let r = token_with(
        &w,
        &assertion(Algorithm::ES384, KEY_A, "a", &claims("j-1")),
        "system/*.c",
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["scope"], "system/*.c");
    let token = r.json()["access_token"].as_str().unwrap().to_owned();
    let r =
        w.t.send(
            Request::post("/fhir/Condition")
                .header("authorization", format!("Bearer {token}"))
                .header("content-type", "application/fhir+json")
                .body(axum::body::Body::from(
                    resource_of("Condition", "dx-bs").to_string(),
                ))
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, 201, "the token deposits: {}", r.text());
    let created = r.json()["id"].as_str().unwrap().to_owned();
    // ... and only creates: `c` is not `u`.
    let r =
        w.t.send(
            Request::put(format!("/fhir/Condition/{created}"))
                .header("authorization", format!("Bearer {token}"))
                .header("content-type", "application/fhir+json")
                .body(axum::body::Body::from({
                    let mut c = resource_of("Condition", &created);
                    c["code"]["text"] = json!("Changed");
                    c.to_string()
                }))
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.text());
    // The RSA key works as well.
    let r = token_with(
        &w,
        &assertion(Algorithm::RS384, KEY_RSA, "r", &claims("j-2")),
        "system/*.c",
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());

    let before = w.audit_count().await;
    let refused: Vec<(&str, String, &str)> = vec![
        (
            "replayed jti",
            assertion(Algorithm::ES384, KEY_A, "a", &claims("j-1")),
            "system/*.c",
        ),
        (
            "wrong key under a registered kid",
            assertion(Algorithm::ES384, KEY_B, "a", &claims("j-3")),
            "system/*.c",
        ),
        (
            "an unregistered kid",
            assertion(Algorithm::ES384, KEY_B, "b", &claims("j-4")),
            "system/*.c",
        ),
        (
            "expired",
            assertion(Algorithm::ES384, KEY_A, "a", &{
                let mut c = claims("j-5");
                c["exp"] = json!(now(&w) - 1);
                c
            }),
            "system/*.c",
        ),
        (
            "living longer than five minutes",
            assertion(Algorithm::ES384, KEY_A, "a", &{
                let mut c = claims("j-6");
                c["exp"] = json!(now(&w) + 3600);
                c
            }),
            "system/*.c",
        ),
        (
            "for another audience",
            assertion(Algorithm::ES384, KEY_A, "a", &{
                let mut c = claims("j-7");
                c["aud"] = json!("https://elsewhere.example/token");
                c
            }),
            "system/*.c",
        ),
        (
            "in another client's name",
            assertion(Algorithm::ES384, KEY_A, "a", &{
                let mut c = claims("j-8");
                c["sub"] = json!("cs-someone-else");
                c
            }),
            "system/*.c",
        ),
        (
            "without a jti",
            assertion(Algorithm::ES384, KEY_A, "a", &{
                let mut c = claims("j-9");
                c.as_object_mut().unwrap().remove("jti");
                c
            }),
            "system/*.c",
        ),
        (
            "unsigned",
            {
                let a = assertion(Algorithm::ES384, KEY_A, "a", &claims("j-10"));
                let mut parts: Vec<&str> = a.split('.').collect();
                parts[0] = "eyJhbGciOiJub25lIiwia2lkIjoiYSJ9";
                parts[2] = "";
                parts.join(".")
            },
            "system/*.c",
        ),
    ];
    for (what, a, scope) in &refused {
        let r = token_with(&w, a, scope).await;
        assert_eq!(r.status, 401, "{what}: {}", r.text());
        assert_eq!(r.json()["error"], "invalid_client", "{what}");
    }
    // A scope beyond its grant, with a good assertion.
    let r = token_with(
        &w,
        &assertion(Algorithm::ES384, KEY_A, "a", &claims("j-11")),
        "system/*.cud",
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(r.json()["error"], "invalid_scope");
    let r = token_with(
        &w,
        &assertion(Algorithm::ES384, KEY_A, "a", &claims("j-12")),
        "user/*.rs",
    )
    .await;
    assert_eq!(r.json()["error"], "invalid_scope");
    // Every refusal is on the record.
    assert_eq!(w.audit_count().await - before, refused.len() as u64 + 2);
    // It revokes its own token with a fresh assertion (used once, as for a token).
    let revoke = |assertion: String, token: String| {
        serde_urlencoded::to_string([
            ("token", token.as_str()),
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ),
            ("client_assertion", assertion.as_str()),
        ])
        .unwrap()
    };
    let signed = assertion(Algorithm::ES384, KEY_A, "a", &claims("j-20"));
    let body = revoke(signed.clone(), token.clone());
    let r =
        w.t.send(
            Request::post("/oauth/revoke")
                .header("content-type", "application/x-www-form-urlencoded")
                .body(axum::body::Body::from(body.clone()))
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r =
        w.t.send(
            Request::post("/fhir/Condition")
                .header("authorization", format!("Bearer {token}"))
                .header("content-type", "application/fhir+json")
                .body(axum::body::Body::from(
                    resource_of("Condition", "dx-after").to_string(),
                ))
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, 401, "a revoked token: {}", r.text());
    let r =
        w.t.send(
            Request::post("/oauth/revoke")
                .header("content-type", "application/x-www-form-urlencoded")
                .body(axum::body::Body::from(body))
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, 401, "the same assertion again: {}", r.text());
    // Its id and no secret is no way in.
    let basic = data_encoding::BASE64.encode(format!("{id}:").as_bytes());
    let r =
        w.t.send(
            Request::post("/oauth/token")
                .header("authorization", format!("Basic {basic}"))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(axum::body::Body::from("grant_type=client_credentials"))
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, 401, "{}", r.text());
}
