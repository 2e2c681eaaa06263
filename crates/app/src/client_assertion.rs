//! SMART Backend Services (ADR 0015): a clinic system authenticates to the token endpoint with
//! a JWT it signs with its own private key (`private_key_jwt`, RFC 7523), checked against the
//! public keys (a JWK Set) its provider's user administrator registered.
//!
//! What an assertion must be (SMART App Launch 2, "Backend Services"): signed with RS384 or
//! ES384 by a registered key named by `kid`; `iss` and `sub` the client's id; `aud` this
//! server's token endpoint; `exp` in the future and at most five minutes away; a `jti` the
//! client has not used before (kept until `exp`). Signatures are checked by `jsonwebtoken`,
//! not here; times against the application's clock.

use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use serde_json::Value;
use time::OffsetDateTime;

use crate::AppError;
use crate::error::FieldError;

/// The `client_assertion_type` of a JWT assertion (RFC 7523 section 2.2).
pub const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// The signing algorithms accepted: the two SMART requires servers to support.
pub const ALGORITHMS: [&str; 2] = ["RS384", "ES384"];

/// The longest an assertion may live (SMART: "no more than five minutes in the future").
const MAX_LIFETIME_SECS: i64 = 300;

/// Most keys in one client's set (rotation needs two or three).
const MAX_KEYS: usize = 10;

/// The members of a JWK that belong to a private key: never registered.
const PRIVATE_MEMBERS: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

fn jwks_error(field: &str, message: &str) -> AppError {
    AppError::Invalid {
        code: "invalid-jwks",
        message: format!("jwks: {message}"),
        fields: vec![FieldError::new(field, "invalid-jwks", message)],
    }
}

/// Checks a JWK Set a user administrator registers and returns its JSON text to keep: public
/// keys only, each with a unique `kid` and an accepted `alg`, RSA of 2048 bits or more.
pub fn registered_jwks(jwks: &Value) -> Result<String, AppError> {
    let keys = jwks
        .get("keys")
        .and_then(Value::as_array)
        .ok_or_else(|| jwks_error("/jwks/keys", "a JWK Set: {\"keys\": [...]}"))?;
    if keys.is_empty() || keys.len() > MAX_KEYS {
        return Err(jwks_error(
            "/jwks/keys",
            &format!("1 to {MAX_KEYS} public keys"),
        ));
    }
    let mut kids = Vec::new();
    for (i, key) in keys.iter().enumerate() {
        let at = |member: &str| format!("/jwks/keys/{i}/{member}");
        if let Some(member) = PRIVATE_MEMBERS.iter().find(|m| key.get(**m).is_some()) {
            return Err(jwks_error(
                &at(member),
                "this is a private key: register the public key only, and keep the private key secret",
            ));
        }
        let kid = key
            .get("kid")
            .and_then(Value::as_str)
            .filter(|k| (1..=128).contains(&k.len()))
            .ok_or_else(|| jwks_error(&at("kid"), "each key has a kid of 1 to 128 characters"))?;
        if kids.contains(&kid) {
            return Err(jwks_error(&at("kid"), "each kid once"));
        }
        kids.push(kid);
        let alg = key.get("alg").and_then(Value::as_str);
        if !alg.is_some_and(|a| ALGORITHMS.contains(&a)) {
            return Err(jwks_error(&at("alg"), "RS384 or ES384"));
        }
        let jwk: Jwk = serde_json::from_value(key.clone())
            .map_err(|_| jwks_error(&at("kty"), "not a JWK this server reads"))?;
        DecodingKey::from_jwk(&jwk)
            .map_err(|_| jwks_error(&at("kty"), "not a usable public key"))?;
        match key.get("kty").and_then(Value::as_str) {
            Some("RSA") => {
                // The modulus's significant bits, leading zero bytes not counted.
                let n = key
                    .get("n")
                    .and_then(Value::as_str)
                    .and_then(|n| {
                        data_encoding::BASE64URL_NOPAD
                            .decode(n.trim_end_matches('=').as_bytes())
                            .ok()
                    })
                    .unwrap_or_default();
                let n: Vec<u8> = n.into_iter().skip_while(|b| *b == 0).collect();
                let bits = n
                    .first()
                    .map_or(0, |b| (n.len() - 1) * 8 + (8 - b.leading_zeros() as usize));
                if bits < 2048 {
                    return Err(jwks_error(&at("n"), "an RSA key of 2048 bits or more"));
                }
            }
            Some("EC") => {}
            _ => return Err(jwks_error(&at("kty"), "RSA or EC")),
        }
        if key.get("kty").and_then(Value::as_str) == Some("EC")
            && key.get("crv").and_then(Value::as_str) != Some("P-384")
        {
            return Err(jwks_error(&at("crv"), "ES384 signs with P-384"));
        }
    }
    Ok(jwks.to_string())
}

/// An assertion's claims that are checked here (the signature, `iss`, `sub` and `aud` are
/// checked by `jsonwebtoken`).
#[derive(Debug, Deserialize)]
struct Claims {
    exp: i64,
    #[serde(default)]
    nbf: Option<i64>,
    jti: String,
}

/// An assertion that passed: what the token request must still record (its `jti`, used once).
#[derive(Debug, Clone)]
pub struct Verified {
    pub jti: String,
    pub expires_at: OffsetDateTime,
}

/// The refusal of an assertion that names no client with keys: the same words as one whose
/// signature fails, so that nobody learns which client ids have keys.
pub(crate) fn unverified() -> AppError {
    refused("the signature does not verify with a registered key")
}

fn refused(message: &str) -> AppError {
    AppError::AuthFailed {
        code: "invalid_client",
        message: format!("client assertion refused: {message}"),
    }
}

/// The `iss` an assertion claims, read without checking anything, to find whose keys to check
/// it with (nothing else is taken from it before it is verified).
pub fn claimed_issuer(assertion: &str) -> Option<String> {
    let payload = assertion.split('.').nth(1)?;
    let bytes = data_encoding::BASE64URL_NOPAD
        .decode(payload.trim_end_matches('=').as_bytes())
        .ok()?;
    let value: Value = serde_json::from_slice(&bytes).ok()?;
    value.get("iss")?.as_str().map(str::to_owned)
}

/// Verifies `assertion` as client `client_id`'s, against its registered `jwks`, for the token
/// endpoint `audience`, at `now`.
pub fn verify(
    assertion: &str,
    client_id: &str,
    jwks: &str,
    audience: &str,
    now: OffsetDateTime,
) -> Result<Verified, AppError> {
    if assertion.len() > 16 * 1024 {
        return Err(refused("too long"));
    }
    let header = jsonwebtoken::decode_header(assertion).map_err(|_| refused("not a JWT"))?;
    let alg = match header.alg {
        Algorithm::RS384 => Algorithm::RS384,
        Algorithm::ES384 => Algorithm::ES384,
        _ => return Err(refused("signed with RS384 or ES384")),
    };
    let kid = header
        .kid
        .ok_or_else(|| refused("the header names its key (kid)"))?;
    let set: JwkSet =
        serde_json::from_str(jwks).map_err(|_| refused("the client's keys are unreadable"))?;
    let jwk = set
        .find(&kid)
        .ok_or_else(|| refused("the signature does not verify with a registered key"))?;
    if jwk
        .common
        .key_algorithm
        .is_none_or(|a| a.to_string() != format!("{alg:?}"))
    {
        return Err(refused(
            "the signature does not verify with a registered key",
        ));
    }
    let key = DecodingKey::from_jwk(jwk).map_err(|_| refused("the registered key is unusable"))?;
    let mut validation = Validation::new(alg);
    validation.set_audience(&[audience]);
    validation.set_issuer(&[client_id]);
    validation.sub = Some(client_id.to_owned());
    validation.set_required_spec_claims(&["exp", "iss", "sub", "aud"]);
    // Times are the application's clock's, checked below.
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.leeway = 0;
    let data = jsonwebtoken::decode::<Claims>(assertion, &key, &validation).map_err(|e| {
        use jsonwebtoken::errors::ErrorKind;
        refused(match e.kind() {
            ErrorKind::InvalidSignature => "the signature does not verify with a registered key",
            ErrorKind::InvalidAudience => "aud is not this server's token endpoint",
            ErrorKind::InvalidIssuer | ErrorKind::InvalidSubject => {
                "iss and sub are the client's id"
            }
            ErrorKind::MissingRequiredClaim(_) => "exp, iss, sub, aud and jti are required",
            _ => "malformed",
        })
    })?;
    let claims = data.claims;
    let now_secs = now.unix_timestamp();
    if claims.exp <= now_secs {
        return Err(refused("expired"));
    }
    if claims.exp > now_secs + MAX_LIFETIME_SECS {
        return Err(refused("exp is more than five minutes away"));
    }
    if claims.nbf.is_some_and(|nbf| nbf > now_secs) {
        return Err(refused("not valid yet (nbf)"));
    }
    if !(1..=256).contains(&claims.jti.len()) {
        return Err(refused("jti of 1 to 256 characters"));
    }
    Ok(Verified {
        jti: claims.jti,
        expires_at: OffsetDateTime::from_unix_timestamp(claims.exp)
            .map_err(|_| refused("exp out of range"))?,
    })
}
