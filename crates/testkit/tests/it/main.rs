//! The integration tests: the whole application through its public interface, on the backend
//! `EHRSHARE_TEST_DATABASE_URL` selects (SQLite when unset). One binary, one module per feature.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod accounts;
mod audit;
mod channels;
mod disclosed;
mod disclosures;
mod emergency;
mod episodes;
mod errors;
mod faults;
mod fhir;
mod fuzz;
mod health;
mod migrations;
mod oauth;
mod oidc;
mod outbox;
mod own_record;
mod pages;
mod patient_portal;
mod patients;
mod providers;
mod qr_consent;
mod recipients;
mod reports;
mod retry;
mod security;
mod self_service;
mod sharing;
mod transparency;
mod world;
