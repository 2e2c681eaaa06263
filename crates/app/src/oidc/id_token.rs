//! Verifying an OpenID Connect ID token (signature against the provider's published keys,
//! issuer, audience, expiry, nonce), with the tests that forge each way it can be wrong.

use serde_json::Value;
use time::OffsetDateTime;

/// Why an ID token was refused (audited as the denial reason).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("malformed-token")]
    Malformed,
    #[error("unsupported-algorithm")]
    Algorithm,
    #[error("unknown-key")]
    UnknownKey,
    #[error("bad-signature")]
    Signature,
    #[error("wrong-issuer")]
    Issuer,
    #[error("wrong-audience")]
    Audience,
    #[error("expired")]
    Expired,
    #[error("issued-in-future")]
    NotYetValid,
    #[error("wrong-nonce")]
    Nonce,
}

fn b64(s: &str) -> Result<Vec<u8>, TokenError> {
    data_encoding::BASE64URL_NOPAD
        .decode(s.trim_end_matches('=').as_bytes())
        .map_err(|_| TokenError::Malformed)
}

/// Verifies a compact JWS ID token against the provider's keys and the expected values;
/// returns its claims.
pub fn verify_id_token(
    token: &str,
    jwks: &Value,
    issuer: &str,
    client_id: &str,
    nonce: &str,
    now: OffsetDateTime,
) -> Result<Value, TokenError> {
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(TokenError::Malformed);
    };
    let header: Value = serde_json::from_slice(&b64(h)?).map_err(|_| TokenError::Malformed)?;
    let claims: Value = serde_json::from_slice(&b64(p)?).map_err(|_| TokenError::Malformed)?;
    let signature = b64(s)?;
    let alg = header["alg"].as_str().unwrap_or("");
    if !matches!(alg, "RS256" | "ES256") {
        return Err(TokenError::Algorithm);
    }
    let kid = header["kid"].as_str();
    let keys = jwks["keys"].as_array().ok_or(TokenError::UnknownKey)?;
    let key = keys
        .iter()
        .find(|k| {
            kid.is_none_or(|kid| k["kid"].as_str() == Some(kid))
                && k["use"].as_str().is_none_or(|u| u == "sig")
                && match alg {
                    "RS256" => k["kty"] == "RSA",
                    _ => k["kty"] == "EC" && k["crv"] == "P-256",
                }
        })
        .ok_or(TokenError::UnknownKey)?;
    let message = format!("{h}.{p}");
    let ok = match alg {
        "RS256" => {
            let n = b64(key["n"].as_str().ok_or(TokenError::UnknownKey)?)?;
            let e = b64(key["e"].as_str().ok_or(TokenError::UnknownKey)?)?;
            ring::signature::RsaPublicKeyComponents { n: &n, e: &e }
                .verify(
                    &ring::signature::RSA_PKCS1_2048_8192_SHA256,
                    message.as_bytes(),
                    &signature,
                )
                .is_ok()
        }
        _ => {
            let x = b64(key["x"].as_str().ok_or(TokenError::UnknownKey)?)?;
            let y = b64(key["y"].as_str().ok_or(TokenError::UnknownKey)?)?;
            let mut point = vec![4u8];
            point.extend_from_slice(&x);
            point.extend_from_slice(&y);
            ring::signature::UnparsedPublicKey::new(
                &ring::signature::ECDSA_P256_SHA256_FIXED,
                &point,
            )
            .verify(message.as_bytes(), &signature)
            .is_ok()
        }
    };
    if !ok {
        return Err(TokenError::Signature);
    }
    if claims["iss"].as_str() != Some(issuer) {
        return Err(TokenError::Issuer);
    }
    let audience_ok = match &claims["aud"] {
        Value::String(a) => a == client_id,
        Value::Array(list) => {
            list.iter().any(|a| a.as_str() == Some(client_id))
                && (list.len() == 1 || claims["azp"].as_str() == Some(client_id))
        }
        _ => false,
    };
    if !audience_ok {
        return Err(TokenError::Audience);
    }
    let leeway = 60;
    let unix = now.unix_timestamp();
    let exp = claims["exp"].as_i64().ok_or(TokenError::Malformed)?;
    if unix >= exp + leeway {
        return Err(TokenError::Expired);
    }
    if claims["iat"]
        .as_i64()
        .is_some_and(|iat| iat > unix + leeway)
    {
        return Err(TokenError::NotYetValid);
    }
    if claims["nonce"].as_str() != Some(nonce) {
        return Err(TokenError::Nonce);
    }
    Ok(claims)
}

#[cfg(test)]
mod tests {
    use ring::rand::SystemRandom;
    use ring::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
    use serde_json::json;
    use time::macros::datetime;

    use super::*;

    /// A 2048-bit RSA key made for this test only (`openssl genpkey`), PKCS#8 DER.
    const TEST_KEY: &[u8] = include_bytes!("../../testdata/oidc-rsa-test-key.p8.der");
    const NOW: OffsetDateTime = datetime!(2026-03-01 09:00 UTC);

    fn b64e(b: &[u8]) -> String {
        data_encoding::BASE64URL_NOPAD.encode(b)
    }

    fn key() -> (RsaKeyPair, Value) {
        let pair = RsaKeyPair::from_pkcs8(TEST_KEY).unwrap();
        let public: ring::rsa::PublicKeyComponents<Vec<u8>> = pair.public().into();
        let jwks = json!({"keys": [{
            "kty": "RSA", "kid": "r1", "use": "sig",
            "n": b64e(&public.n),
            "e": b64e(&public.e),
        }]});
        (pair, jwks)
    }

    fn sign(pair: &RsaKeyPair, header: &Value, claims: &Value) -> String {
        let message = format!(
            "{}.{}",
            b64e(header.to_string().as_bytes()),
            b64e(claims.to_string().as_bytes())
        );
        let mut sig = vec![0u8; pair.public().modulus_len()];
        pair.sign(
            &RSA_PKCS1_SHA256,
            &SystemRandom::new(),
            message.as_bytes(),
            &mut sig,
        )
        .unwrap();
        format!("{message}.{}", b64e(&sig))
    }

    fn claims() -> Value {
        json!({"iss": "https://idp.example", "aud": "rp", "sub": "u1", "nonce": "n1",
               "iat": NOW.unix_timestamp(), "exp": NOW.unix_timestamp() + 300})
    }

    fn check(token: &str, jwks: &Value) -> Result<Value, TokenError> {
        verify_id_token(token, jwks, "https://idp.example", "rp", "n1", NOW)
    }

    #[test]
    fn rs256_tokens_verify_and_every_check_bites() {
        let (pair, jwks) = key();
        let header = json!({"alg": "RS256", "kid": "r1"});
        let good = sign(&pair, &header, &claims());
        assert_eq!(check(&good, &jwks).unwrap()["sub"], "u1");

        // A changed payload under the old signature.
        let parts: Vec<&str> = good.split('.').collect();
        let mut forged = claims();
        forged["sub"] = json!("admin");
        let tampered = format!(
            "{}.{}.{}",
            parts[0],
            b64e(forged.to_string().as_bytes()),
            parts[2]
        );
        assert_eq!(check(&tampered, &jwks), Err(TokenError::Signature));

        let cases: Vec<(&str, Value, TokenError)> = vec![
            ("iss", json!("https://other.example"), TokenError::Issuer),
            ("aud", json!("someone-else"), TokenError::Audience),
            ("aud", json!(["rp", "x"]), TokenError::Audience),
            ("exp", json!(NOW.unix_timestamp() - 61), TokenError::Expired),
            (
                "iat",
                json!(NOW.unix_timestamp() + 3600),
                TokenError::NotYetValid,
            ),
            ("nonce", json!("replayed"), TokenError::Nonce),
        ];
        for (claim, value, expected) in cases {
            let mut c = claims();
            c[claim] = value;
            assert_eq!(
                check(&sign(&pair, &header, &c), &jwks),
                Err(expected),
                "{claim}"
            );
        }
        // Several audiences are fine when azp names us; a small clock skew is tolerated.
        let mut c = claims();
        c["aud"] = json!(["rp", "x"]);
        c["azp"] = json!("rp");
        c["exp"] = json!(NOW.unix_timestamp() - 30);
        assert!(check(&sign(&pair, &header, &c), &jwks).is_ok());
    }

    #[test]
    fn none_hmac_unknown_keys_and_garbage_are_refused() {
        let (pair, jwks) = key();
        let unsigned = format!(
            "{}.{}.",
            b64e(json!({"alg": "none"}).to_string().as_bytes()),
            b64e(claims().to_string().as_bytes())
        );
        assert_eq!(check(&unsigned, &jwks), Err(TokenError::Algorithm));
        let hs = sign(&pair, &json!({"alg": "HS256", "kid": "r1"}), &claims());
        assert_eq!(check(&hs, &jwks), Err(TokenError::Algorithm));
        let other_kid = sign(&pair, &json!({"alg": "RS256", "kid": "r2"}), &claims());
        assert_eq!(check(&other_kid, &jwks), Err(TokenError::UnknownKey));
        for garbage in ["", "a.b", "a.b.c.d", "!!.!!.!!"] {
            assert_eq!(
                check(garbage, &jwks),
                Err(TokenError::Malformed),
                "{garbage}"
            );
        }
    }
}
