//! ehrshare-testkit: what the tests need and production must never have.
//!
//! - [`TestDb`]: a fresh database per test. SQLite in a temporary folder by default; PostgreSQL
//!   when `EHRSHARE_TEST_DATABASE_URL` names a server (a new database is created there for the
//!   test and dropped afterwards). The same test therefore runs on either backend.
//! - [`FixedClock`]: a clock that only moves when the test moves it.
//! - [`TestApp`]: the whole HTTP application in process, called without a socket.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod accounts;
pub mod audit;
mod clock;
mod db;
mod http;
mod idp;
mod proxy;
pub mod tmpfs;

pub use accounts::{Agent, SignedBy, TEST_PASSWORD, page_get, page_post, session_cookie};
pub use clock::FixedClock;
pub use db::with_database;
pub use db::{TEST_DATABASE_URL_VAR, TestDb};
pub use http::{TEST_SIGNING_SEED, TestApp, TestResponse};
pub use idp::{IDP_CLIENT_ID, IDP_CLIENT_SECRET, TestIdp};
pub use proxy::TcpProxy;
