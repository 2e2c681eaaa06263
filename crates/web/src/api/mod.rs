//! The JSON API under `/api/v1` and its OpenAPI document; also `/healthz`.

pub mod access_log;
pub mod accounts;
pub mod health;
pub mod json;
pub mod me;
pub mod providers;
pub mod recipients;
pub mod session;
pub mod sharing;

use axum::Json;
use axum::response::IntoResponse;
use utoipa::OpenApi;

use crate::error::{FieldErrorBody, ProblemBody};

/// The OpenAPI document of the JSON API.
#[derive(Debug, OpenApi)]
#[openapi(
    info(
        title = "ehrshare API",
        description = "Electronic health record sharing: JSON API. Errors are \
            application/problem+json (RFC 9457) with a stable `code`; the `type` is \
            `urn:ehrshare:problem:<code>`.",
        license(name = "Apache-2.0")
    ),
    paths(
        health::healthz,
        health::readyz,
        openapi_json,
        recipients::register,
        recipients::show,
        recipients::regenerate_access_key,
        recipients::event,
        providers::apply,
        providers::show,
        providers::event,
        providers::add_location,
        providers::directory,
        providers::upload_document,
        providers::documents,
        providers::document,
        session::log_in,
        session::show,
        session::log_out,
        session::change_password,
        session::begin_enrolment,
        session::confirm_enrolment,
        session::access_profiles,
        accounts::list,
        accounts::create,
        accounts::show,
        accounts::change_role,
        accounts::act,
        accounts::office_list,
        accounts::office_create,
        accounts::office_act,
        accounts::register_client,
        accounts::revoke_client,
        me::activate,
        me::begin_login,
        me::finish_login,
        me::show,
        sharing::find,
        sharing::give_consent,
        sharing::give_consent_in_app,
        sharing::revoke_consent,
        sharing::open_episode,
        sharing::close_episode,
        sharing::deposit,
        sharing::summary,
        sharing::record,
        sharing::restrict,
        sharing::lift_restriction,
        sharing::request_unlock,
        sharing::confirm_unlock,
        sharing::unlock_by_card,
        sharing::terminology,
        sharing::register_reader,
        sharing::consent_by_card,
        sharing::entered_in_error,
        sharing::consent_by_phone,
        sharing::domain_records,
        access_log::recipient_log,
        access_log::provider_log,
        access_log::office_log,
        access_log::provider_alerts,
        access_log::office_alerts,
        access_log::review,
        access_log::entry_proof
    ),
    components(schemas(
        health::HealthBody,
        ProblemBody,
        FieldErrorBody,
        recipients::RegistrationBody,
        recipients::RecipientView,
        recipients::DocumentBody,
        recipients::SdmBody,
        recipients::SdmView,
        recipients::RegenerateBody,
        recipients::RecipientEventBody,
        providers::PersonBody,
        providers::StaffBody,
        providers::StaffView,
        providers::ProfessionalView,
        providers::LocationBody,
        providers::ApplicationBody,
        providers::EventBody,
        providers::LocationView,
        providers::ProviderView,
        providers::DirectoryEntry,
        providers::DirectoryPage,
        providers::DocumentView,
        session::LoginBody,
        session::AccountView,
        session::SessionView,
        session::PasswordBody,
        session::StageView,
        session::EnrolmentView,
        session::CodeBody,
        session::AccessProfilesView,
        accounts::NewAccountBody,
        accounts::RoleBody,
        accounts::ActionBody,
        accounts::ClientBody,
        accounts::ClientView,
        me::DocumentLoginBody,
        me::ActivateBody,
        me::PersonLoginBody,
        me::ChallengeView,
        me::VerifyBody,
        me::MeView,
        me::RepresentedView,
        sharing::FindBody,
        sharing::FoundView,
        sharing::ConsentBody,
        sharing::ConsentView,
        sharing::AppConsentBody,
        sharing::CardUnlockBody,
        sharing::EpisodeBody,
        sharing::EpisodeView,
        sharing::RecordView,
        sharing::DomainView,
        sharing::SummaryView,
        sharing::RestrictBody,
        sharing::RestrictionView,
        sharing::UnlockBody,
        sharing::UnlockView,
        sharing::UnlockCodeBody,
        sharing::TermView,
        sharing::ReaderBody,
        sharing::ReaderView,
        sharing::CardBody,
        sharing::ErrorBody,
        sharing::PhoneConsentBody,
        sharing::RecordPage,
        access_log::LogLineView,
        access_log::AlertView,
        access_log::ReviewBody,
        access_log::ProofView,
    )),
    modifiers(&SessionScheme)
)]
pub struct ApiDoc;

/// Declares the session cookie (with its CSRF header) and OAuth bearer tokens.
#[derive(Debug)]
struct SessionScheme;

impl utoipa::Modify for SessionScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{
            ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme,
        };
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                "__Host-ehrshare-session",
                "Set by POST /api/v1/session. State-changing requests also send the session's \
                 CSRF token as X-CSRF-Token.",
            ))),
        );
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// `GET /api/v1/openapi.json`: this API's OpenAPI document.
#[utoipa::path(
    get,
    path = "/api/v1/openapi.json",
    tag = "meta",
    responses((status = 200, description = "The OpenAPI 3.1 document", content_type = "application/json"))
)]
pub async fn openapi_json() -> impl IntoResponse {
    let mut doc = ApiDoc::openapi();
    doc.info.version = env!("CARGO_PKG_VERSION").to_owned();
    Json(doc)
}
