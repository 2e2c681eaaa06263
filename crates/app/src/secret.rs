//! Secrets given to people and systems (access keys, one-time codes, first passwords, session
//! and OAuth tokens): drawn from the operating system's CSPRNG. Low-entropy secrets are stored
//! as Argon2id hashes, 256-bit tokens as SHA-256.

use argon2::Argon2;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};

use crate::AppError;

/// Eight decimal digits, uniformly drawn.
pub fn new_access_key() -> Result<String, AppError> {
    Ok(format!("{:08}", uniform(100_000_000)?))
}

/// Six decimal digits (a one-time login code), uniformly drawn.
pub fn new_code() -> Result<String, AppError> {
    Ok(format!("{:06}", uniform(1_000_000)?))
}

/// A number in `0..range`, uniformly drawn (rejection sampling: no modulo bias).
fn uniform(range: u32) -> Result<u32, AppError> {
    // The largest multiple of range that fits in u32: values at or above it are redrawn.
    let limit = u32::MAX - (u32::MAX % range);
    loop {
        let n = u32::from_le_bytes(random_bytes::<4>()?);
        if n < limit {
            return Ok(n % range);
        }
    }
}

/// `N` bytes from the operating system's CSPRNG.
pub fn random_bytes<const N: usize>() -> Result<[u8; N], AppError> {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).map_err(|e| AppError::Internal(e.to_string().into()))?;
    Ok(bytes)
}

/// A bearer secret (session cookie, OAuth token or code, client secret): 256 random bits,
/// base64url. Stored only as [`token_hash`]: with this much entropy a fast hash is enough.
pub fn new_token() -> Result<String, AppError> {
    Ok(data_encoding::BASE64URL_NOPAD.encode(&random_bytes::<32>()?))
}

/// The SHA-256 of a bearer secret, hex: what the database keeps.
pub fn token_hash(token: &str) -> String {
    use sha2::Digest;
    data_encoding::HEXLOWER.encode(&sha2::Sha256::digest(token.as_bytes()))
}

/// A first password the system generates (an administrator never chooses one): 16 characters
/// from upper case, lower case and digits without look-alikes, each kind present.
pub fn new_initial_password() -> Result<String, AppError> {
    const UPPER: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ";
    const LOWER: &[u8] = b"abcdefghijkmnopqrstuvwxyz";
    const DIGIT: &[u8] = b"23456789";
    let all = [UPPER, LOWER, DIGIT].concat();
    let pick = |pool: &[u8]| -> Result<u8, AppError> {
        let n = u32::try_from(pool.len()).unwrap_or(u32::MAX);
        Ok(pool[uniform(n)? as usize])
    };
    let mut out = vec![pick(UPPER)?, pick(LOWER)?, pick(DIGIT)?];
    while out.len() < 16 {
        out.push(pick(&all)?);
    }
    // Fisher-Yates, so that the kinds are not always in the first three places.
    for i in (1..out.len()).rev() {
        let j = uniform(u32::try_from(i + 1).unwrap_or(1))? as usize;
        out.swap(i, j);
    }
    Ok(out.into_iter().map(char::from).collect())
}

/// Hashes a secret with Argon2id (default parameters: 19 MiB, 2 passes) on the blocking pool.
pub async fn hash_secret(secret: String) -> Result<String, AppError> {
    tokio::task::spawn_blocking(move || {
        Argon2::default()
            .hash_password(secret.as_bytes())
            .map(|h| h.to_string())
            .map_err(|e| AppError::Internal(e.to_string().into()))
    })
    .await
    .map_err(|e| AppError::Internal(Box::new(e)))?
}

/// Whether `secret` matches `hash` (constant-time comparison inside Argon2).
pub async fn verify_secret(secret: String, hash: String) -> bool {
    tokio::task::spawn_blocking(move || {
        Argon2::default()
            .verify_password(secret.as_bytes(), hash.as_str())
            .is_ok()
    })
    .await
    .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn access_keys_are_eight_digits_and_vary() {
        let keys: Vec<String> = (0..50).map(|_| new_access_key().unwrap()).collect();
        assert!(
            keys.iter()
                .all(|k| k.len() == 8 && k.bytes().all(|b| b.is_ascii_digit()))
        );
        let distinct: std::collections::BTreeSet<&String> = keys.iter().collect();
        assert!(distinct.len() > 45, "{keys:?}");
    }

    #[test]
    fn tokens_codes_and_initial_passwords() {
        let t = new_token().unwrap();
        assert_eq!(t.len(), 43);
        assert_ne!(t, new_token().unwrap());
        assert_eq!(token_hash("abc").len(), 64);
        assert_eq!(token_hash("abc"), token_hash("abc"));
        let c = new_code().unwrap();
        assert!(c.len() == 6 && c.bytes().all(|b| b.is_ascii_digit()));
        for _ in 0..20 {
            let p = new_initial_password().unwrap();
            assert_eq!(p.chars().count(), 16);
            assert!(p.chars().any(|c| c.is_ascii_uppercase()));
            assert!(p.chars().any(|c| c.is_ascii_lowercase()));
            assert!(p.chars().any(|c| c.is_ascii_digit()));
        }
    }

    #[tokio::test]
    async fn hashes_verify_and_do_not_contain_the_secret() {
        let hash = hash_secret("40183927".into()).await.unwrap();
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        assert!(!hash.contains("40183927"));
        assert!(verify_secret("40183927".into(), hash.clone()).await);
        assert!(!verify_secret("40183928".into(), hash.clone()).await);
        assert!(!verify_secret("40183927".into(), "garbage".into()).await);
    }
}
