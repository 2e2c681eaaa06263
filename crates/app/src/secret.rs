//! Secrets given to people (access keys; later one-time passwords and initial passwords):
//! drawn from the operating system's CSPRNG, stored only as Argon2id hashes.

use argon2::Argon2;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};

use crate::AppError;

/// Eight decimal digits, uniformly drawn (rejection sampling: no modulo bias).
pub fn new_access_key() -> Result<String, AppError> {
    const RANGE: u32 = 100_000_000;
    // The largest multiple of RANGE that fits in u32: values at or above it are redrawn.
    const LIMIT: u32 = u32::MAX - (u32::MAX % RANGE);
    loop {
        let mut bytes = [0u8; 4];
        getrandom::fill(&mut bytes).map_err(|e| AppError::Internal(e.to_string().into()))?;
        let n = u32::from_le_bytes(bytes);
        if n < LIMIT {
            return Ok(format!("{:08}", n % RANGE));
        }
    }
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
