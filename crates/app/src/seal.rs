//! Secrets the system must read back (TOTP seeds), sealed at rest with ChaCha20-Poly1305.
//!
//! A database copy (a backup, an injected query) must not hand out every account's security
//! token. The 256-bit key lives in a file beside the audit key (`totp_key_file`, mode 0600,
//! created on first start); every server process of one deployment needs the same file. Each
//! sealed value is `1 || nonce (12) || ciphertext || tag`, with the account id as associated
//! data, so a sealed seed copied onto another account does not open.

use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use uuid::Uuid;

use crate::AppError;

const VERSION: u8 = 1;

/// The sealing key.
pub struct SealKey(LessSafeKey);

impl std::fmt::Debug for SealKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SealKey(..)")
    }
}

impl SealKey {
    /// A key from 32 bytes (ChaCha20-Poly1305's key length, which ring always accepts).
    pub fn new(key: [u8; 32]) -> Result<SealKey, AppError> {
        let unbound = UnboundKey::new(&CHACHA20_POLY1305, &key)
            .map_err(|_| AppError::Internal("ChaCha20-Poly1305 refused the key".into()))?;
        Ok(SealKey(LessSafeKey::new(unbound)))
    }

    /// Loads the key file at `path`, or creates it.
    pub fn load_or_create(path: &std::path::Path) -> Result<SealKey, crate::signer::KeyError> {
        let (key, created) = crate::signer::load_or_create_key_file(path)?;
        if created {
            tracing::info!(path = %path.display(), "created the key that seals security-token seeds");
        }
        SealKey::new(key).map_err(|e| crate::signer::KeyError::Random(e.to_string()))
    }

    /// Seals `secret` for `account`.
    pub fn seal(&self, account: Uuid, secret: &[u8]) -> Result<Vec<u8>, AppError> {
        let nonce_bytes = crate::secret::random_bytes::<NONCE_LEN>()?;
        let mut buf = secret.to_vec();
        self.0
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce_bytes),
                Aad::from(account.as_bytes()),
                &mut buf,
            )
            .map_err(|_| AppError::Internal("sealing failed".into()))?;
        let mut out = Vec::with_capacity(1 + NONCE_LEN + buf.len());
        out.push(VERSION);
        out.extend_from_slice(&nonce_bytes);
        out.extend_from_slice(&buf);
        Ok(out)
    }

    /// Opens what [`SealKey::seal`] sealed for `account`.
    pub fn open(&self, account: Uuid, sealed: &[u8]) -> Result<Vec<u8>, AppError> {
        let bad = || AppError::Internal("a sealed secret does not open (wrong key file?)".into());
        if sealed.len() < 1 + NONCE_LEN || sealed[0] != VERSION {
            return Err(bad());
        }
        let mut nonce = [0u8; NONCE_LEN];
        nonce.copy_from_slice(&sealed[1..1 + NONCE_LEN]);
        let mut buf = sealed[1 + NONCE_LEN..].to_vec();
        let plain = self
            .0
            .open_in_place(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(account.as_bytes()),
                &mut buf,
            )
            .map_err(|_| bad())?;
        Ok(plain.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seals_open_only_for_their_account_and_key() {
        let key = SealKey::new([7; 32]).unwrap();
        let a = Uuid::from_u128(1);
        let sealed = key.seal(a, b"12345678901234567890").unwrap();
        assert_ne!(&sealed[13..33], b"12345678901234567890");
        assert_eq!(key.open(a, &sealed).unwrap(), b"12345678901234567890");
        assert!(
            key.open(Uuid::from_u128(2), &sealed).is_err(),
            "another account"
        );
        assert!(
            SealKey::new([8; 32]).unwrap().open(a, &sealed).is_err(),
            "another key"
        );
        let mut tampered = sealed.clone();
        *tampered.last_mut().unwrap() ^= 1;
        assert!(key.open(a, &tampered).is_err());
        assert_ne!(
            key.seal(a, b"x").unwrap(),
            key.seal(a, b"x").unwrap(),
            "fresh nonces"
        );
    }
}
