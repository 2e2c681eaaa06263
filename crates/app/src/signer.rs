//! Ed25519 signing: audit checkpoints with the audit key; consent receipts and QR location
//! tokens with the receipt key (ADR 0018), a different key in a different file.
//!
//! The key is a 32-byte seed kept in a file in the data folder (created with mode 0600 on first
//! start) or named by configuration. Only its public half ever leaves the process: it is written
//! beside the key (`.pub`) so that `ehrshare audit verify` can run with the public key alone.

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use ehrshare_core::audit::checkpoint::{hex, unhex};
use sha2::{Digest, Sha256};

/// Something that signs checkpoints.
pub trait Signer: Send + Sync + fmt::Debug {
    /// The public key.
    fn public_key(&self) -> [u8; 32];
    /// Signs `message`.
    fn sign(&self, message: &[u8]) -> [u8; 64];
}

/// Which key signed: the first 8 bytes of SHA-256 of the public key, hex.
pub fn key_id(public_key: &[u8; 32]) -> String {
    hex(&Sha256::digest(public_key)[..8])
}

/// Checks an Ed25519 signature (strict: rejects malleable and small-order forms).
pub fn verify_signature(public_key: &[u8; 32], message: &[u8], signature: &[u8; 64]) -> bool {
    let Ok(key) = VerifyingKey::from_bytes(public_key) else {
        return false;
    };
    key.verify_strict(message, &Signature::from_bytes(signature))
        .is_ok()
}

/// An Ed25519 key held in memory. Debug output never shows the secret.
pub struct Ed25519Signer {
    key: SigningKey,
}

impl fmt::Debug for Ed25519Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ed25519Signer")
            .field("key_id", &key_id(&self.public_key()))
            .finish_non_exhaustive()
    }
}

/// Why a key could not be loaded or made.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cannot read or write the key file {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the key file {0} is not 64 hex digits")]
    Malformed(PathBuf),
    #[error("no randomness available: {0}")]
    Random(String),
}

impl Ed25519Signer {
    /// A signer from a 32-byte seed.
    pub fn from_seed(seed: [u8; 32]) -> Ed25519Signer {
        Ed25519Signer {
            key: SigningKey::from_bytes(&seed),
        }
    }

    /// Loads the key at `path`, or creates one there (and its `.pub`) if there is none.
    pub fn load_or_create(path: &Path) -> Result<Ed25519Signer, KeyError> {
        let (seed, created) = load_or_create_key_file(path)?;
        let signer = Ed25519Signer::from_seed(seed);
        signer.write_public(path).map_err(|source| KeyError::Io {
            path: path.to_owned(),
            source,
        })?;
        if created {
            tracing::info!(path = %path.display(), key_id = key_id(&signer.public_key()), "created a signing key");
        }
        Ok(signer)
    }

    fn write_public(&self, key_path: &Path) -> std::io::Result<()> {
        std::fs::write(public_key_path(key_path), hex(&self.public_key()) + "\n")
    }
}

/// Reads the 32-byte secret (64 hex digits) at `path`, or makes a random one there (mode 0600,
/// never overwriting); returns it and whether it was made now. Shared by every key file.
pub fn load_or_create_key_file(path: &Path) -> Result<([u8; 32], bool), KeyError> {
    let io = |source| KeyError::Io {
        path: path.to_owned(),
        source,
    };
    if path.exists() {
        let text = std::fs::read_to_string(path).map_err(io)?;
        let key = unhex::<32>(&text).ok_or_else(|| KeyError::Malformed(path.to_owned()))?;
        return Ok((key, false));
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let mut key = [0u8; 32];
    getrandom::fill(&mut key).map_err(|e| KeyError::Random(e.to_string()))?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(io)?;
    file.write_all(hex(&key).as_bytes()).map_err(io)?;
    file.sync_all().map_err(io)?;
    Ok((key, true))
}

/// Where the public half of the key at `key_path` is written.
pub fn public_key_path(key_path: &Path) -> PathBuf {
    let mut name = key_path.as_os_str().to_owned();
    name.push(".pub");
    PathBuf::from(name)
}

/// Reads a public key file (64 hex digits).
pub fn read_public_key(path: &Path) -> Result<[u8; 32], KeyError> {
    let text = std::fs::read_to_string(path).map_err(|source| KeyError::Io {
        path: path.to_owned(),
        source,
    })?;
    unhex::<32>(&text).ok_or_else(|| KeyError::Malformed(path.to_owned()))
}

impl Signer for Ed25519Signer {
    fn public_key(&self) -> [u8; 32] {
        self.key.verifying_key().to_bytes()
    }

    fn sign(&self, message: &[u8]) -> [u8; 64] {
        self.key.sign(message).to_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_and_verifies() {
        let s = Ed25519Signer::from_seed([7; 32]);
        let sig = s.sign(b"hello");
        assert!(verify_signature(&s.public_key(), b"hello", &sig));
        assert!(!verify_signature(&s.public_key(), b"hellO", &sig));
        let other = Ed25519Signer::from_seed([8; 32]);
        assert!(!verify_signature(&other.public_key(), b"hello", &sig));
        assert!(!format!("{s:?}").contains(&hex(&[7; 32])));
    }

    #[test]
    fn creates_then_reloads_the_same_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit/signing-key");
        let a = Ed25519Signer::load_or_create(&path).unwrap();
        let b = Ed25519Signer::load_or_create(&path).unwrap();
        assert_eq!(a.public_key(), b.public_key());
        assert_eq!(
            read_public_key(&public_key_path(&path)).unwrap(),
            a.public_key()
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        std::fs::write(&path, "not hex").unwrap();
        assert!(matches!(
            Ed25519Signer::load_or_create(&path),
            Err(KeyError::Malformed(_))
        ));
    }
}
