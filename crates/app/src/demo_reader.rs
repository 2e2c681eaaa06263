//! The demo's smart ID card reader: a stand-in for the hardware at a demo provider's counter.
//!
//! A real reader holds its own Ed25519 key, reads the card and signs what it read
//! ([`ehrshare_core::consent::CardAssertion`]); the counter's browser relays the signed reading
//! to ehrshare, which checks it like any other ([`App::check_card`]). The demo has no hardware,
//! so the demo load registers one reader per demo provider and keeps the reader's key, sealed,
//! in `ehrshare_meta`; [`App::demo_card_read`] then signs a reading of the card number the
//! clerk types, exactly as the reader would.
//!
//! Decisions: the key exists only in a database the demo was loaded into (a real deployment
//! never has one, so the portal's demo reader page answers "no reader" there); it is a fresh
//! random key per provider, never a key written in the source, so knowing the code forges
//! nothing; and signing a reading touches no record, so it is not audited (the consent it leads
//! to is, with the reader's id).

use ehrshare_core::audit::Outcome;
use ehrshare_core::consent::CardAssertion;
use ehrshare_core::identity::{Document, DocumentType};
use ehrshare_store::{Conn, card_reader::ReaderRow, change};
use uuid::Uuid;

use crate::auth::Session;
use crate::error::AppError;
use crate::signer::{Ed25519Signer, Signer};
use crate::{App, caller::Caller};

/// The card serial the demo reader reports (a real card's chip serial).
pub const DEMO_CARD_SERIAL: &str = "DEMO-CARD";

/// A signed reading, as the reader hands it to the counter's browser.
#[derive(Debug, Clone)]
pub struct SignedReading {
    pub assertion: CardAssertion,
    /// The reader's signature over [`CardAssertion::message`], base64url without padding.
    pub signature: String,
}

fn meta_key(hcp: Uuid) -> String {
    format!("demo-card-reader/{hcp}")
}

impl App {
    /// Installs the demo reader at a provider's first location (demo load only): a fresh key,
    /// the reader registered with its public half (audited like any registration), the seed
    /// sealed in `ehrshare_meta`.
    pub async fn install_demo_reader(&self, caller: &Caller, hcp: Uuid) -> Result<(), AppError> {
        let provider = self.provider(hcp).await?;
        let location = provider
            .locations
            .first()
            .ok_or_else(|| AppError::Internal("a demo provider without a location".into()))?;
        let seed = crate::secret::random_bytes::<32>()?;
        let signer = Ed25519Signer::from_seed(seed);
        let row = ReaderRow {
            id: Uuid::now_v7(),
            hcp_id: hcp,
            location_id: location.id,
            public_key: ehrshare_core::audit::checkpoint::hex(&signer.public_key()),
            created_at: self.clock().now(),
            revoked_at: None,
        };
        let sealed = self.seal().seal(row.id, &seed)?;
        let value = format!(
            "{} {}",
            row.id,
            data_encoding::BASE64URL_NOPAD.encode(&sealed)
        );
        let mut entry = caller.entry(self, "card-reader.register", Outcome::Allowed);
        entry.record_ids = vec![row.id];
        let insert = change(move |conn: Conn<'_>| {
            Box::pin(async move { ehrshare_store::card_reader::insert_reader(conn, &row).await })
        });
        self.audit_with(entry, insert).await?;
        if !self.inner.db.set_meta_once(&meta_key(hcp), &value).await? {
            return Err(AppError::Internal(
                "this provider already has a demo card reader".into(),
            ));
        }
        Ok(())
    }

    /// Whether the user's provider has the demo reader (so the portal may offer it).
    pub async fn has_demo_reader(&self, session: &Session) -> Result<bool, AppError> {
        Ok(self.demo_reader_of(session).await?.is_some())
    }

    /// The demo reader reads the card numbered `hkid` (as typed) at the user's provider and
    /// signs the reading. `NotFound` where there is no demo reader; an invalid number is
    /// `Invalid` at `/hkid`, since no card carries one.
    pub async fn demo_card_read(
        &self,
        session: &Session,
        hkid: &str,
    ) -> Result<SignedReading, AppError> {
        let (reader, signer) = self
            .demo_reader_of(session)
            .await?
            .ok_or(AppError::NotFound)?;
        let doc = Document::parse(DocumentType::Hkid, "HK", hkid)
            .map_err(|e| crate::error::invalid("/hkid", "invalid-hkid", &e.to_string()))?;
        let assertion = CardAssertion {
            reader,
            hkid: doc.number,
            card_serial: DEMO_CARD_SERIAL.to_owned(),
            at: self.clock().now(),
            nonce: ehrshare_core::audit::checkpoint::hex(&crate::secret::random_bytes::<16>()?),
        };
        let signature = data_encoding::BASE64URL_NOPAD.encode(&signer.sign(&assertion.message()));
        Ok(SignedReading {
            assertion,
            signature,
        })
    }

    async fn demo_reader_of(
        &self,
        session: &Session,
    ) -> Result<Option<(Uuid, Ed25519Signer)>, AppError> {
        let asker = self.asker(session).await?;
        let Some(value) = self.inner.db.meta(&meta_key(asker.requester.hcp)).await? else {
            return Ok(None);
        };
        let corrupt = || AppError::Internal("the demo card reader's key is unreadable".into());
        let (id, sealed) = value.split_once(' ').ok_or_else(corrupt)?;
        let reader: Uuid = id.parse().map_err(|_| corrupt())?;
        let sealed = data_encoding::BASE64URL_NOPAD
            .decode(sealed.as_bytes())
            .map_err(|_| corrupt())?;
        let seed: [u8; 32] = self
            .seal()
            .open(reader, &sealed)?
            .try_into()
            .map_err(|_| corrupt())?;
        Ok(Some((reader, Ed25519Signer::from_seed(seed))))
    }
}
