//! Smart ID card readers (SPEC 3.4): registered by a provider, their signed assertions
//! checked and their nonces claimed once.

use ehrshare_core::audit::Outcome;
use ehrshare_store::{Conn, change};
use uuid::Uuid;

use crate::auth::Session;
use crate::caller::Caller;
use crate::error::invalid;
use crate::{App, AppError};

impl App {
    /// A provider's user administrator registers a smart ID card reader at one of the
    /// provider's locations, with the reader's Ed25519 public key (64 hex digits).
    pub async fn register_reader(
        &self,
        session: &Session,
        caller: &Caller,
        hcp: Uuid,
        location: Uuid,
        public_key: &str,
    ) -> Result<ehrshare_store::card_reader::ReaderRow, AppError> {
        let now = self.clock().now();
        let admin = session
            .account()
            .is_some_and(|a| a.hcp_id == Some(hcp) && a.user_admin);
        if !admin {
            return Err(AppError::NotFound);
        }
        let p = self.provider(hcp).await?;
        if !p.locations.iter().any(|l| l.id == location) {
            return Err(invalid(
                "/location",
                "unknown-location",
                "not a location of this provider",
            ));
        }
        let key = public_key.trim().to_ascii_lowercase();
        if ehrshare_core::audit::checkpoint::unhex::<32>(&key).is_none() {
            return Err(invalid(
                "/public_key",
                "invalid-public-key",
                "an Ed25519 public key: 64 hex digits",
            ));
        }
        let row = ehrshare_store::card_reader::ReaderRow {
            id: Uuid::now_v7(),
            hcp_id: hcp,
            location_id: location,
            public_key: key,
            created_at: now,
            revoked_at: None,
        };
        let mut entry = caller.entry(self, "card-reader.register", Outcome::Allowed);
        entry.record_ids = vec![row.id];
        let stored = row.clone();
        let insert = change(move |conn: Conn<'_>| {
            Box::pin(async move { ehrshare_store::card_reader::insert_reader(conn, &stored).await })
        });
        self.audit_with(entry, insert).await?;
        Ok(row)
    }

    /// Checks a smart ID card assertion relayed by a user of provider `hcp`: from a reader of
    /// that provider, signed by it, fresh. A refusal is audited under `action` with its reason
    /// and answered 403 `card-assertion-refused`, whatever the reason.
    pub(crate) async fn check_card(
        &self,
        hcp: Uuid,
        caller: &Caller,
        action: &'static str,
        assertion: &ehrshare_core::consent::CardAssertion,
        signature_b64: &str,
    ) -> Result<(), AppError> {
        let now = self.clock().now();
        let reader = self
            .db()
            .reader(assertion.reader)
            .await?
            .filter(|r| r.hcp_id == hcp && r.revoked_at.is_none());
        let signature: Option<[u8; 64]> = data_encoding::BASE64URL_NOPAD
            .decode(signature_b64.trim().trim_end_matches('=').as_bytes())
            .ok()
            .and_then(|b| b.try_into().ok());
        let key = reader
            .as_ref()
            .and_then(|r| ehrshare_core::audit::checkpoint::unhex::<32>(&r.public_key));
        let problem = if !assertion.well_formed() {
            Some("malformed-assertion")
        } else if key.is_none() {
            Some("unknown-reader")
        } else if !signature.zip(key).is_some_and(|(sig, key)| {
            crate::signer::verify_signature(&key, &assertion.message(), &sig)
        }) {
            Some("bad-signature")
        } else if !assertion.fresh(now) {
            Some("stale-assertion")
        } else {
            None
        };
        match problem {
            Some(reason) => {
                self.refuse_card(caller, action, None, assertion, reason)
                    .await
            }
            None => Ok(()),
        }
    }

    /// Claims a checked assertion's nonce, in its own audited step before anything it allows
    /// is written: a replay never gets further, however two uses race.
    pub(crate) async fn claim_card(
        &self,
        caller: &Caller,
        action: &'static str,
        recipient: Uuid,
        assertion: &ehrshare_core::consent::CardAssertion,
    ) -> Result<(), AppError> {
        let now = self.clock().now();
        let claimed = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
        let claimed_in = claimed.clone();
        let (nonce, reader_id, at) = (assertion.nonce.clone(), assertion.reader, assertion.at);
        let mut entry = caller.entry(self, action, Outcome::Allowed);
        entry.recipient = Some(recipient);
        entry.record_ids = vec![reader_id];
        let claim = change(move |conn: Conn<'_>| {
            Box::pin(async move {
                if ehrshare_store::card_reader::claim_card_nonce(conn, &nonce, reader_id, at, now)
                    .await?
                {
                    Ok(())
                } else {
                    claimed_in.store(false, std::sync::atomic::Ordering::SeqCst);
                    Err(ehrshare_store::StoreError::Corrupt(
                        "replayed card assertion".to_owned(),
                    ))
                }
            })
        });
        match self.audit_with(entry, claim).await {
            Ok(_) => Ok(()),
            Err(_) if !claimed.load(std::sync::atomic::Ordering::SeqCst) => {
                self.refuse_card(
                    caller,
                    action,
                    Some(recipient),
                    assertion,
                    "replayed-assertion",
                )
                .await
            }
            Err(e) => Err(e),
        }
    }

    /// Audits a refused card assertion and answers the one refusal.
    pub(crate) async fn refuse_card(
        &self,
        caller: &Caller,
        action: &'static str,
        recipient: Option<Uuid>,
        assertion: &ehrshare_core::consent::CardAssertion,
        reason: &str,
    ) -> Result<(), AppError> {
        let mut entry = caller.entry(self, action, Outcome::Denied);
        entry.denial_reason = Some(reason.to_owned());
        entry.recipient = recipient;
        entry.record_ids = vec![assertion.reader];
        self.audit(entry).await?;
        Err(AppError::Forbidden {
            code: "card-assertion-refused",
            message: "the card reader's assertion could not be accepted".to_owned(),
        })
    }
}
