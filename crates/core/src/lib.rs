//! ehrshare-core: the pure domain of ehrshare.
//!
//! Invariant: this crate does no IO, never reads the clock and never draws random numbers.
//! Time and randomness reach it as parameters; `clippy.toml` beside this crate forbids the
//! calls that would break that. Everything here is deterministic and unit-tested in place.

pub mod access;
pub mod account;
pub mod alert;
pub mod audit;
pub mod clock;
pub mod coded;
pub mod consent;
pub mod contact;
pub mod disclosure;
pub mod domain;
pub mod episode;
pub mod field;
pub mod identity;
pub mod locale;
pub mod login;
pub mod name;
pub mod notification;
pub mod oauth;
pub mod password;
pub mod profession;
pub mod profile;
pub mod provider;
pub mod qr_consent;
pub mod recipient;
pub mod record;
pub mod registration;
pub mod search;
pub mod terminology;
pub mod totp;
