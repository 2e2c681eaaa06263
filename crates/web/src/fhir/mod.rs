//! `/fhir`: the FHIR R4 API (SPEC 5, issue 25). Files mirror URLs: [`metadata`] (the
//! CapabilityStatement), [`search`] (`/{type}` and `/{type}/_search`; [`page`] is what every
//! search shares), [`instance`]
//! (`/{type}/{id}`, `/{type}/{id}/_history` and `/{type}/{id}/_history/{vid}`) and
//! [`patient`] (what of those a Patient answers); [`write`] (`POST /{type}`, `PUT` and
//! `DELETE /{type}/{id}`); [`bundle`] (`POST /`: batch and transaction); [`audit_event`],
//! [`consent`] and [`directory`] answer ehrshare's own objects; [`smart_configuration`] is
//! SMART's discovery document.
//!
//! What is served is the table [`SERVED`] ([`served`]): the handlers refuse any type or
//! interaction that is not in it, and the CapabilityStatement is built from it, so the
//! statement cannot claim what does not work (a test walks it against the server). Responses are `application/fhir+json`
//! ([`format`]); errors are OperationOutcomes (`crate::error`).

pub mod audit_event;
pub mod bundle;
pub mod consent;
pub mod directory;
pub mod format;
pub mod import;
pub mod instance;
pub mod metadata;
pub mod page;
pub mod patient;
pub mod search;
pub mod served;
pub mod smart_configuration;
pub mod write;

use axum::Router;
use axum::routing::get;
use ehrshare_app::App;

pub use served::{FhirBase, SERVED, serves};

/// The `/fhir` routes.
pub fn routes() -> Router<App> {
    Router::new()
        .route("/fhir", axum::routing::post(bundle::post))
        .route("/fhir/$import", axum::routing::post(import::post))
        .route("/fhir/metadata", get(metadata::show))
        .route(
            "/fhir/.well-known/smart-configuration",
            get(smart_configuration::show),
        )
        .route(
            "/.well-known/smart-configuration",
            get(smart_configuration::show),
        )
        .route(
            "/fhir/{resource_type}",
            get(search::get).post(write::create),
        )
        .route(
            "/fhir/{resource_type}/_search",
            axum::routing::post(search::post),
        )
        .route(
            "/fhir/{resource_type}/{id}",
            get(instance::read).put(write::update).delete(write::delete),
        )
        .route(
            "/fhir/{resource_type}/{id}/_history",
            get(instance::history),
        )
        .route("/fhir/Patient/{id}/$everything", get(patient::everything))
        .route(
            "/fhir/{resource_type}/{id}/_history/{version}",
            get(instance::vread),
        )
}
