//! Consent by scanning a service location's QR code (SPEC 3.4, issue 26 item 4; ADR 0018).
//!
//! The QR code holds a **location token**: `ehrshare:location:1.` then the claim and its
//! Ed25519 signature, each base64url without padding, joined by a dot. The claim's bytes are
//! canonical JSON (RFC 8785: keys sorted, no whitespace; every value a plain ASCII string):
//!
//! `{"hcp":"<uuid>","location":"<uuid>","nonce":"<hex>","typ":"ehrshare.location-token.1"}`
//!
//! `nonce` is the location's current QR nonce: replacing it revokes every token printed
//! before. The signature is checked over the claim's bytes as they travel, and a claim is
//! taken only in its canonical form, so one claim has one encoding.
//!
//! A consent given by scan is confirmed by a **receipt**: canonical JSON of the consent (see
//! [`receipt_bytes`]) signed with the receipt key, verifiable offline with its public half.

use data_encoding::BASE64URL_NOPAD;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use uuid::Uuid;

/// What every location token starts with (the version is the digit).
pub const TOKEN_PREFIX: &str = "ehrshare:location:1.";
/// The claim's type: signatures over other ehrshare documents never pass for a token.
pub const TOKEN_TYPE: &str = "ehrshare.location-token.1";
/// The receipt's type.
pub const RECEIPT_TYPE: &str = "ehrshare.consent-receipt.1";
/// The longest payload taken (a real token is about 260 characters).
pub const MAX_TOKEN: usize = 1024;

/// What a location token claims.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocationClaim {
    pub hcp: Uuid,
    pub location: Uuid,
    /// The location's QR nonce when the token was made (lowercase hex).
    pub nonce: String,
}

/// Why a scanned payload is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenRefused {
    /// Not a location token at all (or not this version, or too long).
    #[error("not an ehrshare location token")]
    Malformed,
    /// Altered, or not signed by this system's key.
    #[error("the location token's signature does not hold")]
    BadSignature,
    /// Signed by us, but the location's QR code was replaced since (or the location or its
    /// provider is no longer active).
    #[error("this QR code was withdrawn")]
    Revoked,
}

impl TokenRefused {
    /// The stable code.
    pub fn code(self) -> &'static str {
        match self {
            TokenRefused::Malformed => "location-token-malformed",
            TokenRefused::BadSignature => "location-token-invalid",
            TokenRefused::Revoked => "location-token-revoked",
        }
    }
}

fn is_nonce(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && s.bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
}

/// The canonical bytes of a claim.
pub fn claim_bytes(c: &LocationClaim) -> Vec<u8> {
    format!(
        r#"{{"hcp":"{}","location":"{}","nonce":"{}","typ":"{TOKEN_TYPE}"}}"#,
        c.hcp, c.location, c.nonce
    )
    .into_bytes()
}

/// The token for a claim and its signature over [`claim_bytes`].
pub fn encode_token(c: &LocationClaim, signature: &[u8; 64]) -> String {
    format!(
        "{TOKEN_PREFIX}{}.{}",
        BASE64URL_NOPAD.encode(&claim_bytes(c)),
        BASE64URL_NOPAD.encode(signature)
    )
}

/// A scanned payload taken apart: the claim's bytes as they travelled and the signature, to
/// be checked before the claim is read ([`read_claim`]).
pub fn split_token(payload: &str) -> Result<(Vec<u8>, [u8; 64]), TokenRefused> {
    if payload.len() > MAX_TOKEN {
        return Err(TokenRefused::Malformed);
    }
    let rest = payload
        .trim()
        .strip_prefix(TOKEN_PREFIX)
        .ok_or(TokenRefused::Malformed)?;
    let (claim, signature) = rest.split_once('.').ok_or(TokenRefused::Malformed)?;
    let claim = BASE64URL_NOPAD
        .decode(claim.as_bytes())
        .map_err(|_| TokenRefused::Malformed)?;
    let signature: [u8; 64] = BASE64URL_NOPAD
        .decode(signature.as_bytes())
        .map_err(|_| TokenRefused::Malformed)?
        .try_into()
        .map_err(|_| TokenRefused::Malformed)?;
    Ok((claim, signature))
}

/// The claim in signed bytes, taken only in its canonical form.
pub fn read_claim(bytes: &[u8]) -> Result<LocationClaim, TokenRefused> {
    let text = std::str::from_utf8(bytes).map_err(|_| TokenRefused::Malformed)?;
    let parts: Vec<&str> = text.split('"').collect();
    let (Some(hcp), Some(location), Some(nonce)) = (parts.get(3), parts.get(7), parts.get(11))
    else {
        return Err(TokenRefused::Malformed);
    };
    let claim = LocationClaim {
        hcp: Uuid::parse_str(hcp).map_err(|_| TokenRefused::Malformed)?,
        location: Uuid::parse_str(location).map_err(|_| TokenRefused::Malformed)?,
        nonce: (*nonce).to_owned(),
    };
    if !is_nonce(&claim.nonce) || claim_bytes(&claim) != bytes {
        return Err(TokenRefused::Malformed);
    }
    Ok(claim)
}

/// Whether a verified claim is still good: the location's nonce is the one it names.
pub fn check_current(claim: &LocationClaim, current_nonce: &str) -> Result<(), TokenRefused> {
    if claim.nonce == current_nonce {
        Ok(())
    } else {
        Err(TokenRefused::Revoked)
    }
}

/// A consent given by scan, as its receipt states it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceiptFacts {
    pub consent: Uuid,
    pub recipient: Uuid,
    pub hcp: Uuid,
    pub location: Uuid,
    /// A `ConsentKind` code.
    pub kind: String,
    /// A `Method` code.
    pub method: String,
    pub given_at: OffsetDateTime,
    /// The SDM who gave it for the recipient, if one did.
    pub sdm: Option<Uuid>,
}

/// The receipt's canonical bytes (RFC 8785 JSON, keys sorted, every value a string; `sdm`
/// present only when an SDM gave the consent): what the receipt key signs.
pub fn receipt_bytes(r: &ReceiptFacts) -> Vec<u8> {
    let given_at = r
        .given_at
        .to_offset(time::UtcOffset::UTC)
        .format(&Rfc3339)
        .unwrap_or_default();
    let sdm = r
        .sdm
        .map(|s| format!(r#","sdm":"{s}""#))
        .unwrap_or_default();
    format!(
        r#"{{"consent":"{}","given_at":"{given_at}","hcp":"{}","kind":"{}","location":"{}","method":"{}","recipient":"{}"{sdm},"typ":"{RECEIPT_TYPE}"}}"#,
        r.consent, r.hcp, r.kind, r.location, r.method, r.recipient
    )
    .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claim() -> LocationClaim {
        LocationClaim {
            hcp: Uuid::from_u128(1),
            location: Uuid::from_u128(2),
            nonce: "0a1b2c".to_owned(),
        }
    }

    #[test]
    fn a_token_round_trips() {
        let token = encode_token(&claim(), &[7; 64]);
        assert!(token.starts_with(TOKEN_PREFIX));
        let (bytes, sig) = split_token(&token).unwrap();
        assert_eq!(sig, [7; 64]);
        assert_eq!(bytes, claim_bytes(&claim()));
        assert_eq!(read_claim(&bytes).unwrap(), claim());
    }

    #[test]
    fn only_the_canonical_claim_is_read() {
        let canonical = String::from_utf8(claim_bytes(&claim())).unwrap();
        for other in [
            canonical.replace(r#"{"hcp""#, r#"{ "hcp""#),
            canonical.replace("0a1b2c", "0A1B2C"),
            canonical.replace("0a1b2c", ""),
            canonical.replace(TOKEN_TYPE, RECEIPT_TYPE),
            canonical.replace(r#""hcp""#, r#""location""#),
            canonical.clone() + " ",
        ] {
            assert_eq!(
                read_claim(other.as_bytes()),
                Err(TokenRefused::Malformed),
                "{other}"
            );
        }
    }

    #[test]
    fn malformed_payloads_are_refused() {
        for p in [
            "",
            "ehrshare:location:0a1b2c",
            "ehrshare:location:2.e30.AAAA",
            "ehrshare:location:1.e30",
            "ehrshare:location:1.!!.AAAA",
            "ehrshare:location:1.e30.AAAA",
            &"x".repeat(MAX_TOKEN + 1),
        ] {
            assert_eq!(split_token(p).err(), Some(TokenRefused::Malformed), "{p}");
        }
    }

    #[test]
    fn a_replaced_nonce_revokes() {
        assert_eq!(check_current(&claim(), "0a1b2c"), Ok(()));
        assert_eq!(check_current(&claim(), "ffff"), Err(TokenRefused::Revoked));
    }

    #[test]
    fn receipt_bytes_are_sorted_compact_json() {
        let r = ReceiptFacts {
            consent: Uuid::from_u128(3),
            recipient: Uuid::from_u128(4),
            hcp: Uuid::from_u128(1),
            location: Uuid::from_u128(2),
            kind: "indefinite".to_owned(),
            method: "qr-scan".to_owned(),
            given_at: OffsetDateTime::from_unix_timestamp(1_780_000_000).unwrap(),
            sdm: None,
        };
        let text = String::from_utf8(receipt_bytes(&r)).unwrap();
        assert!(
            text.starts_with(
                r#"{"consent":"00000000-0000-0000-0000-000000000003","given_at":"2026-"#
            ),
            "{text}"
        );
        assert!(
            text.ends_with(r#","typ":"ehrshare.consent-receipt.1"}"#),
            "{text}"
        );
        assert!(!text.contains(' '));
        let with_sdm = ReceiptFacts {
            sdm: Some(Uuid::from_u128(5)),
            ..r
        };
        let text = String::from_utf8(receipt_bytes(&with_sdm)).unwrap();
        assert!(
            text.contains(r#""recipient":"00000000-0000-0000-0000-000000000004","sdm":"#),
            "{text}"
        );
    }
}
