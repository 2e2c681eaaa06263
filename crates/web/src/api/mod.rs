//! The JSON API under `/api/v1` and its OpenAPI document; also `/healthz`.

pub mod access_log;
pub mod accounts;
pub mod consents;
pub mod health;
pub mod json;
pub mod keys;
mod listed_json;
pub mod me;
pub mod office;
pub mod providers;
pub mod recipients;
pub mod records;
pub mod session;
pub mod terminology;
pub mod transparency;

use std::sync::OnceLock;

use axum::response::IntoResponse;
use axum::{Json, Router};
use ehrshare_app::App;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

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
        providers::ContactBody,
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
        recipients::find::FindBody,
        recipients::find::FoundView,
        recipients::consents::ConsentBody,
        recipients::consents::ConsentView,
        me::consents::AppConsentBody,
        recipients::unlock::CardUnlockBody,
        recipients::episodes::EpisodeBody,
        recipients::episodes::EpisodeView,
        recipients::episodes::OpenEpisodeView,
        records::RecordView,
        recipients::summary::DomainView,
        recipients::summary::SummaryView,
        me::restrictions::RestrictBody,
        me::restrictions::RestrictionView,
        recipients::unlock::UnlockBody,
        recipients::unlock::UnlockView,
        recipients::unlock::UnlockCodeBody,
        terminology::TermView,
        providers::card_readers::ReaderBody,
        providers::card_readers::ReaderView,
        providers::break_glass::BreakGlassSwitch,
        recipients::break_glass::BreakGlassBody,
        recipients::break_glass::BreakGlassView,
        consents::CardBody,
        records::ErrorBody,
        office::PhoneConsentBody,
        office::DisclosureBody,
        access_log::DisclosureView,
        recipients::records::RecordPage,
        access_log::LogLineView,
        access_log::LoggedRecord,
        access_log::AlertView,
        access_log::ReviewBody,
        access_log::ProofView,
        me::inbox::NoticeView,
        office::LetterView,
        office::QueuedLetterView,
        me::scan::ScanBody,
        me::scan::ScannedView,
        me::scan::ScanConsentBody,
        me::scan::ReceiptView,
        me::scan::ScanConsentView,
        keys::JwkView,
        keys::JwksView,
        providers::QrView,
        me::record::OwnRecordView,
        me::record::OwnDomainView,
        me::record::OwnSummaryView,
        me::record::ClinicianView,
        me::record::OwnVersionView,
        me::record::OwnRecordDetailView,
        me::record::SeenByView,
        me::record::ConsentInForceView,
        me::record::EpisodeNowView,
        me::record::UnlockNowView,
        me::record::EmergencyNowView,
        me::record::WhoCanSeeView,
        me::record::AccessKeyView,
        transparency::HeadView,
        me::record::PreferencesView,
        me::record::PreferencesBody,
        transparency::HeadsView,
        transparency::ConsistencyView,
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
    static DOCUMENT: OnceLock<utoipa::openapi::OpenApi> = OnceLock::new();
    Json(DOCUMENT.get_or_init(|| routes().1).clone())
}

/// The JSON API's routes and the OpenAPI document they make. Each route is written once: its
/// method and path come from its handler's `#[utoipa::path]`, which also documents it.
pub fn routes() -> (Router<App>, utoipa::openapi::OpenApi) {
    let (router, mut document) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(health::healthz))
        .routes(routes!(health::readyz))
        .routes(routes!(openapi_json))
        .routes(routes!(recipients::register))
        .routes(routes!(recipients::show))
        .routes(routes!(providers::apply))
        .routes(routes!(providers::show))
        .routes(routes!(providers::event))
        .routes(routes!(providers::add_location))
        .routes(routes!(providers::documents, providers::upload_document))
        .routes(routes!(providers::document))
        .routes(routes!(providers::directory))
        .routes(routes!(recipients::event))
        .routes(routes!(recipients::regenerate_access_key))
        .routes(routes!(session::show, session::log_in, session::log_out))
        .routes(routes!(session::change_password))
        .routes(routes!(session::begin_enrolment))
        .routes(routes!(session::confirm_enrolment))
        .routes(routes!(accounts::list, accounts::create))
        .routes(routes!(accounts::show))
        .routes(routes!(accounts::change_role))
        .routes(routes!(accounts::act))
        .routes(routes!(accounts::register_client))
        .routes(routes!(accounts::revoke_client))
        .routes(routes!(accounts::office_list, accounts::office_create))
        .routes(routes!(accounts::office_act))
        .routes(routes!(me::show))
        .routes(routes!(me::consents::give_consent_in_app))
        .routes(routes!(me::consents::revoke_consent))
        .routes(routes!(recipients::find::find))
        .routes(routes!(recipients::consents::give_consent))
        .routes(routes!(recipients::episodes::open_episode))
        .routes(routes!(recipients::episodes::close_episode))
        .routes(routes!(recipients::episodes::record_attendance))
        .routes(routes!(recipients::episodes::open_episodes))
        .routes(routes!(
            recipients::records::domain_records,
            recipients::records::deposit
        ))
        .routes(routes!(recipients::summary::summary))
        .routes(routes!(records::record))
        .routes(routes!(records::entered_in_error))
        .routes(routes!(terminology::terminology))
        .routes(routes!(providers::card_readers::register_reader))
        .routes(routes!(providers::break_glass::set_break_glass))
        .routes(routes!(recipients::break_glass::break_glass))
        .routes(routes!(office::consent_by_phone))
        .routes(routes!(office::record_disclosure, office::disclosures))
        .routes(routes!(office::print_queue))
        .routes(routes!(office::letter))
        .routes(routes!(office::mark_printed))
        .routes(routes!(me::inbox::inbox))
        .routes(routes!(me::inbox::mark_read))
        .routes(routes!(me::scan::scan))
        .routes(routes!(me::scan::consent_by_scan))
        .routes(routes!(me::scan::receipt))
        .routes(routes!(me::record::record))
        .routes(routes!(me::record::record_detail))
        .routes(routes!(me::record::record_bundle))
        .routes(routes!(me::record::record_pdf))
        .routes(routes!(me::record::sharing))
        .routes(routes!(
            me::record::preferences,
            me::record::set_preferences
        ))
        .routes(routes!(transparency::heads))
        .routes(routes!(transparency::consistency))
        .routes(routes!(
            me::record::access_key,
            me::record::regenerate_access_key
        ))
        .routes(routes!(keys::consent_receipt_keys))
        .routes(routes!(providers::replace_qr))
        .routes(routes!(consents::consent_by_card))
        .routes(routes!(access_log::recipient_log))
        .routes(routes!(access_log::entry_proof))
        .routes(routes!(access_log::report))
        .routes(routes!(access_log::reports))
        .routes(routes!(access_log::provider_log))
        .routes(routes!(access_log::office_log))
        .routes(routes!(access_log::provider_alerts))
        .routes(routes!(access_log::office_alerts))
        .routes(routes!(access_log::review))
        .routes(routes!(me::restrictions::restrict))
        .routes(routes!(me::restrictions::lift_restriction))
        .routes(routes!(recipients::unlock::request_unlock))
        .routes(routes!(recipients::unlock::confirm_unlock))
        .routes(routes!(recipients::unlock::unlock_by_card))
        .routes(routes!(session::access_profiles))
        .routes(routes!(me::activate))
        .routes(routes!(me::begin_login))
        .routes(routes!(me::finish_login))
        .routes(routes!(me::self_service::register))
        .routes(routes!(me::self_service::begin_reset))
        .routes(routes!(me::self_service::begin_change))
        .routes(routes!(me::self_service::set_password))
        .routes(routes!(me::self_service::begin_contact))
        .routes(routes!(me::self_service::verify_contact))
        .split_for_parts();
    document.info.version = env!("CARGO_PKG_VERSION").to_owned();
    (router, document)
}
