//! Consent by scanning a service location's QR code (SPEC 3.4, issue 26 item 4; ADR 0018).
//!
//! The code holds a location token signed with the receipt key (`core::qr_consent` has the
//! format); the patient's logged-in session posts what it scanned, is shown the provider's
//! name and address, confirms, and the consent is in force at once, confirmed by a receipt
//! signed with the same key (never the audit key) and kept. The public half of the key is
//! served at `/api/v1/keys/consent-receipts` for anyone to verify offline.

use data_encoding::BASE64URL_NOPAD;
use ehrshare_core::audit::Outcome;
use ehrshare_core::consent::Method;
use ehrshare_core::qr_consent::{
    LocationClaim, ReceiptFacts, TokenRefused, check_current, claim_bytes, encode_token,
    read_claim, receipt_bytes, split_token,
};
use ehrshare_store::consent::ConsentRow;
pub use ehrshare_store::consent::ReceiptRow;
use ehrshare_store::provider::LocationRow;
use ehrshare_store::{Conn, change};
use uuid::Uuid;

use crate::auth::Session;
use crate::caller::Caller;
use crate::error::invalid;
use crate::provider::Provider;
use crate::signer::{key_id, verify_signature};
use crate::{App, AppError};

/// A scanned location, as the patient is shown it before confirming.
#[derive(Debug, Clone)]
pub struct Scanned {
    pub provider: Provider,
    pub location: LocationRow,
}

fn refused(r: TokenRefused) -> AppError {
    invalid("/payload", r.code(), &r.to_string())
}

impl App {
    /// The receipt key's public half (Ed25519) and its id.
    pub fn receipt_public_key(&self) -> ([u8; 32], String) {
        let key = self.receipt_key().public_key();
        (key, key_id(&key))
    }

    /// What a location's QR code holds now.
    pub fn location_token(&self, l: &LocationRow) -> String {
        let claim = LocationClaim {
            hcp: l.hcp_id,
            location: l.id,
            nonce: l.qr_token.clone(),
        };
        encode_token(&claim, &self.receipt_key().sign(&claim_bytes(&claim)))
    }

    /// A scanned payload checked: ours, unaltered, not revoked, of an active provider's
    /// location. Refusals are 422 naming `/payload` with the reason's code.
    async fn scanned(&self, payload: &str) -> Result<Scanned, AppError> {
        let (bytes, signature) = split_token(payload).map_err(refused)?;
        if !verify_signature(&self.receipt_key().public_key(), &bytes, &signature) {
            return Err(refused(TokenRefused::BadSignature));
        }
        let claim = read_claim(&bytes).map_err(refused)?;
        let provider = match self.provider(claim.hcp).await {
            Ok(p) => p,
            Err(AppError::NotFound) => return Err(refused(TokenRefused::Revoked)),
            Err(e) => return Err(e),
        };
        let location = provider
            .locations
            .iter()
            .find(|l| l.id == claim.location)
            .cloned()
            .ok_or_else(|| refused(TokenRefused::Revoked))?;
        check_current(&claim, &location.qr_token).map_err(refused)?;
        if !provider.status.is_active() {
            return Err(refused(TokenRefused::Revoked));
        }
        Ok(Scanned { provider, location })
    }

    /// The patient (or an SDM acting for them) scanned a code: which provider and location it
    /// is, to confirm. Nothing is stored.
    pub async fn scan_location(
        &self,
        session: &Session,
        recipient: Uuid,
        payload: &str,
    ) -> Result<Scanned, AppError> {
        self.acting_for(session, recipient).await?;
        self.scanned(payload).await
    }

    /// The patient (or their SDM) confirms the scanned provider: the consent is in force at
    /// once (replacing any earlier one with that provider) and its signed receipt is returned
    /// and kept. A refused token is audited as a refused consent; nothing else is stored.
    pub async fn give_consent_by_scan(
        &self,
        session: &Session,
        caller: &Caller,
        recipient: Uuid,
        payload: &str,
        kind: Option<&str>,
    ) -> Result<(ConsentRow, ReceiptRow), AppError> {
        let now = self.clock().now();
        let sdm = self.acting_for(session, recipient).await?;
        let kind = self.consent_kind(kind)?;
        let scanned = match self.scanned(payload).await {
            Ok(s) => s,
            Err(e) => {
                let mut entry = caller.entry(self, "consent.give", Outcome::Denied);
                entry.recipient = Some(recipient);
                entry.sdm = sdm;
                entry.denial_reason = Some(e.code().to_owned());
                self.audit(entry).await?;
                return Err(e);
            }
        };
        let reg = self.load_recipient(recipient).await?;
        let row = self
            .store_consent(
                caller,
                &reg,
                scanned.provider.hcp.id,
                kind,
                Method::QrScan,
                Some(scanned.location.id.to_string()),
                sdm,
                None,
                now,
            )
            .await?;
        let receipt = self
            .db()
            .consent_receipt(row.id)
            .await?
            .ok_or_else(|| AppError::Internal("the receipt was not kept".into()))?;
        Ok((row, receipt))
    }

    /// The kept receipt of a consent given by scan, for the recipient or their SDM (anything
    /// else: 404).
    pub async fn consent_receipt(
        &self,
        session: &Session,
        recipient: Uuid,
        consent: Uuid,
    ) -> Result<ReceiptRow, AppError> {
        self.acting_for(session, recipient).await?;
        self.db()
            .consent_receipt(consent)
            .await?
            .filter(|r| r.recipient_id == recipient)
            .ok_or(AppError::NotFound)
    }

    /// The receipt a consent given by scan gets: its canonical bytes signed.
    pub(crate) fn receipt_for(&self, c: &ConsentRow) -> Result<ReceiptRow, AppError> {
        let location = c
            .method_ref
            .as_deref()
            .and_then(|r| Uuid::parse_str(r).ok())
            .ok_or_else(|| AppError::Internal("a scanned consent names its location".into()))?;
        let body = receipt_bytes(&ReceiptFacts {
            consent: c.id,
            recipient: c.recipient_id,
            hcp: c.hcp_id,
            location,
            kind: c.kind.clone(),
            method: c.method.clone(),
            given_at: c.given_at,
            sdm: c.sdm_id,
        });
        let signature = self.receipt_key().sign(&body);
        let (_, kid) = self.receipt_public_key();
        Ok(ReceiptRow {
            consent_id: c.id,
            recipient_id: c.recipient_id,
            body: String::from_utf8(body).map_err(|e| AppError::Internal(Box::new(e)))?,
            signature: BASE64URL_NOPAD.encode(&signature),
            key_id: kid,
            created_at: c.created_at,
        })
    }

    /// The provider of a logged-in user, with its locations (for their QR codes and posters);
    /// anyone else: 404.
    pub async fn own_provider(&self, session: &Session) -> Result<Provider, AppError> {
        let hcp = session
            .account()
            .and_then(|a| a.hcp_id)
            .ok_or(AppError::NotFound)?;
        self.provider(hcp).await
    }

    /// One location of the logged-in user's provider (another provider's: 404).
    pub async fn own_location(
        &self,
        session: &Session,
        location: Uuid,
    ) -> Result<(Provider, LocationRow), AppError> {
        let provider = self.own_provider(session).await?;
        let l = provider
            .locations
            .iter()
            .find(|l| l.id == location)
            .cloned()
            .ok_or(AppError::NotFound)?;
        Ok((provider, l))
    }

    /// The provider's user administrator replaces a location's QR code: every code printed
    /// before is refused from now on. Audited; returns the new code's payload.
    pub async fn replace_location_qr(
        &self,
        session: &Session,
        caller: &Caller,
        hcp: Uuid,
        location: Uuid,
    ) -> Result<String, AppError> {
        session
            .account()
            .filter(|a| a.hcp_id == Some(hcp) && a.user_admin)
            .ok_or(AppError::NotFound)?;
        let provider = self.provider(hcp).await?;
        let mut row = provider
            .locations
            .into_iter()
            .find(|l| l.id == location)
            .ok_or(AppError::NotFound)?;
        let mut nonce = [0u8; 16];
        getrandom::fill(&mut nonce).map_err(|e| AppError::Internal(e.to_string().into()))?;
        row.qr_token = ehrshare_core::audit::checkpoint::hex(&nonce);
        let mut entry = caller.entry(self, "location.replace-qr", Outcome::Allowed);
        entry.record_ids = vec![hcp, location];
        let token = row.qr_token.clone();
        let replace = change(move |conn: Conn<'_>| {
            Box::pin(async move {
                ehrshare_store::provider::replace_qr_token(conn, location, &token).await
            })
        });
        self.audit_with(entry, replace).await?;
        Ok(self.location_token(&row))
    }
}
