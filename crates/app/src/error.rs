//! The one application error, with stable codes.
//!
//! A code (`invalid-hkid`, `consent-required`, ...) is part of the public interface: clients
//! branch on it, so a code once shipped keeps its meaning. `web` turns an [`AppError`] into a
//! response (problem+json, OperationOutcome or an HTML page) in exactly one place.

use ehrshare_store::{Stale, StoreError};

pub use ehrshare_core::field::FieldError;

/// Why a use case did not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The request could not be understood (syntax, missing body, wrong shape, a member the
    /// operation does not accept): 400, naming the members at fault where it can.
    #[error("{message}")]
    Malformed {
        code: &'static str,
        message: String,
        fields: Vec<FieldError>,
    },
    /// A body in a media type (or with content) this operation does not accept: 415.
    #[error("{message}")]
    UnsupportedMedia { message: String },
    /// Understood, but breaks a business rule or field constraint: 422.
    #[error("{message}")]
    Invalid {
        code: &'static str,
        message: String,
        fields: Vec<FieldError>,
    },
    /// No credentials, or wrong ones: 401.
    #[error("authentication required")]
    Unauthenticated,
    /// A login or token request refused: 401 with a code that says no more than it must
    /// (`login-failed` is the same for an unknown user, a wrong password and a locked account).
    #[error("{message}")]
    AuthFailed { code: &'static str, message: String },
    /// Too many attempts: 429 with Retry-After.
    #[error("{message}")]
    Throttled {
        code: &'static str,
        message: String,
        retry_after_secs: u32,
    },
    /// Refused by a rule about a patient the caller may identify: 403 with the rule's code
    /// (`sdm-authority-ended`, `consent-required`, ...). The refusal is audited.
    #[error("{message}")]
    Forbidden { code: &'static str, message: String },
    /// Not there, or not the caller's to know about: 404.
    #[error("not found")]
    NotFound,
    /// Conflicts with what exists (a duplicate, a state that forbids the change): 409.
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    /// A precondition the client set (`If-Match`) does not hold: nothing changed (412).
    #[error("{message}")]
    PreconditionFailed { code: &'static str, message: String },
    /// What was asked for was there and was withdrawn (a record entered in error), told only
    /// to a caller who could see it (410).
    #[error("gone")]
    Gone,
    /// The database cannot be reached: 503 with Retry-After.
    #[error("the store is unavailable")]
    Unavailable(#[source] StoreError),
    /// Anything else: 500. The cause is logged with the request id, never shown.
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl AppError {
    /// The stable code clients can rely on.
    pub fn code(&self) -> &'static str {
        match self {
            AppError::Malformed { code, .. }
            | AppError::Invalid { code, .. }
            | AppError::Forbidden { code, .. }
            | AppError::Conflict { code, .. }
            | AppError::PreconditionFailed { code, .. }
            | AppError::AuthFailed { code, .. }
            | AppError::Throttled { code, .. } => code,
            AppError::NotFound => "not-found",
            AppError::Gone => "gone",
            AppError::UnsupportedMedia { .. } => "unsupported-media-type",
            AppError::Unauthenticated => "unauthenticated",
            AppError::Unavailable(_) => "store-unavailable",
            AppError::Internal(_) => "internal",
        }
    }
}

impl From<StoreError> for AppError {
    fn from(err: StoreError) -> Self {
        if err.is_unavailable() {
            return AppError::Unavailable(err);
        }
        match err {
            StoreError::Conflict { ref constraint, .. } => AppError::Conflict {
                code: "conflict",
                message: format!("conflicts with an existing record ({constraint})"),
            },
            StoreError::Stale(Stale::Account) => AppError::Conflict {
                code: "changed-meanwhile",
                message: "the account changed meanwhile; reload and try again".to_owned(),
            },
            StoreError::Stale(Stale::Record) => AppError::Conflict {
                code: "changed-meanwhile",
                message: "the record changed meanwhile; read it and send the change again"
                    .to_owned(),
            },
            StoreError::Stale(Stale::CodeUsed) => AppError::Conflict {
                code: "code-used",
                message: "the code was used meanwhile".to_owned(),
            },
            StoreError::ConsentRevoked => AppError::Conflict {
                code: "consent-revoked",
                message: "the recipient's sharing consent was revoked meanwhile".to_owned(),
            },
            StoreError::Stale(Stale::KeyJustIssued) => AppError::Throttled {
                code: "access-key-just-issued",
                message: "a new access key was issued less than a minute ago".to_owned(),
                retry_after_secs: 60,
            },
            StoreError::Stale(Stale::Position) => AppError::Conflict {
                code: "position-moved",
                message: "another server process moved on meanwhile".to_owned(),
            },
            StoreError::Stale(Stale::AssertionUsed) => AppError::Conflict {
                code: "assertion-used",
                message: "the client assertion was used before".to_owned(),
            },
            other => AppError::Internal(Box::new(other)),
        }
    }
}

/// A 422 naming one field.
pub fn invalid(field: &str, code: &'static str, message: &str) -> AppError {
    AppError::Invalid {
        code,
        message: message.to_owned(),
        fields: vec![FieldError::new(field, code, message)],
    }
}

/// A 422 naming several fields: its code is the field's own when one field is wrong,
/// `invalid-input` when several are.
pub(crate) fn invalid_fields(message: &str, fields: Vec<FieldError>) -> AppError {
    AppError::Invalid {
        code: if fields.len() == 1 {
            fields[0].code
        } else {
            "invalid-input"
        },
        message: message.to_owned(),
        fields,
    }
}
