//! What the application is configured with: the settings use cases need (a subset of the
//! server's configuration, which `ehrshare-server`'s `config` maps into these).

use std::time::Duration;

use ehrshare_core::consent::Regime;
use ehrshare_core::login::{SessionPolicy, ThrottlePolicy};
use ehrshare_core::password::PasswordPolicy;
use ehrshare_core::profession::RegistrationPatterns;

use crate::outbound::Outbound;

/// The settings use cases need (a subset of the server's configuration).
#[derive(Debug, Clone)]
pub struct Settings {
    /// Which sharing-consent rules are in force.
    pub regime: Regime,
    /// How long a health check waits for the database before reporting it unavailable.
    pub health_timeout: Duration,
    /// Notification delivery.
    pub outbox: OutboxSettings,
    /// Login, sessions, passwords, tokens.
    pub auth: AuthSettings,
    /// The role -> domains matrix (need-to-know).
    pub access_profiles: ehrshare_core::profile::AccessProfiles,
    /// How far around a care episode access is allowed.
    pub care_window: ehrshare_core::episode::CareWindow,
    /// The alert rules' thresholds.
    pub alert_policy: ehrshare_core::alert::AlertPolicy,
    /// The Chinese medicine terminology (preferred terms and synonyms).
    pub terminology: std::sync::Arc<ehrshare_core::terminology::Terminology>,
    /// The external OpenID Connect provider (none: logins through it are not offered).
    #[cfg(feature = "oidc")]
    pub oidc: Option<OidcSettings>,
    /// Emergency access ("break-glass", SPEC 3.11): off unless the deployment allows it.
    pub break_glass: BreakGlassSettings,
    /// Start although the database is behind (or off) its last signed audit checkpoint, a
    /// restored backup: the rollback is signed into the checkpoint file (`serve
    /// --accept-rollback`, issue 22). Off, such a start is refused.
    pub accept_rollback: bool,
    /// How often a new audit head is signed while entries are added (what a recipient is
    /// told when no signed head covers an entry yet); the checkpointer's own period.
    pub checkpoint_every: Duration,
}

impl Settings {
    /// Whether logging in through an external identity provider (iAM Smart) is offered.
    pub fn external_login(&self) -> bool {
        #[cfg(feature = "oidc")]
        {
            self.oidc.is_some()
        }
        #[cfg(not(feature = "oidc"))]
        {
            false
        }
    }
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            regime: Regime::default(),
            health_timeout: Duration::from_secs(2),
            outbox: OutboxSettings::default(),
            auth: AuthSettings::default(),
            access_profiles: ehrshare_core::profile::spec_default(),
            terminology: std::sync::Arc::new(ehrshare_core::terminology::Terminology::shipped()),
            alert_policy: ehrshare_core::alert::AlertPolicy::default(),
            care_window: ehrshare_core::episode::CareWindow::default(),
            break_glass: BreakGlassSettings::default(),
            #[cfg(feature = "oidc")]
            oidc: None,
            accept_rollback: false,
            checkpoint_every: Duration::from_secs(60),
        }
    }
}

/// Emergency access for the deployment (each provider also turns it on for itself).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakGlassSettings {
    /// Whether providers may turn it on at all.
    pub enabled: bool,
    /// Grants to one user within seven days that raise a further alert.
    pub repeat_per_week: u32,
}

impl Default for BreakGlassSettings {
    fn default() -> Self {
        BreakGlassSettings {
            enabled: false,
            repeat_per_week: 3,
        }
    }
}

/// Login and account settings.
#[derive(Debug, Clone)]
pub struct AuthSettings {
    pub session: SessionPolicy,
    pub password: PasswordPolicy,
    /// How long a password lasts (zero: for ever).
    pub password_max_age: time::Duration,
    /// How long before expiry the holder is reminded.
    pub password_remind: time::Duration,
    pub user_throttle: ThrottlePolicy,
    pub address_throttle: ThrottlePolicy,
    pub registration_numbers: RegistrationPatterns,
    /// Lifetime of an OAuth access token.
    pub access_token_ttl: time::Duration,
    /// Lifetime of an OAuth authorization code.
    pub authorization_code_ttl: time::Duration,
    /// Lifetime of a patient's one-time login code.
    pub login_code_ttl: time::Duration,
    /// The issuer label in authenticator apps.
    pub totp_issuer: String,
}

impl Default for AuthSettings {
    fn default() -> Self {
        AuthSettings {
            session: SessionPolicy::default(),
            password: PasswordPolicy::default(),
            password_max_age: time::Duration::days(90),
            password_remind: time::Duration::days(14),
            user_throttle: ThrottlePolicy::USER,
            address_throttle: ThrottlePolicy::ADDRESS,
            registration_numbers: RegistrationPatterns::default(),
            access_token_ttl: time::Duration::minutes(10),
            authorization_code_ttl: time::Duration::minutes(2),
            login_code_ttl: time::Duration::minutes(5),
            totp_issuer: "ehrshare".to_owned(),
        }
    }
}

/// The external identity provider.
#[derive(Clone)]
pub struct OidcSettings {
    /// The issuer URL; its discovery document is `{issuer}/.well-known/openid-configuration`.
    pub issuer: String,
    pub client_id: String,
    pub client_secret: String,
    /// Our callback, registered with the provider: `{public_base_url}/auth/oidc/callback`.
    pub redirect_uri: String,
    /// The ID-token claim that carries a patient's HKID.
    pub hkid_claim: String,
    /// The client for the provider's endpoints.
    pub client: Outbound,
}

impl std::fmt::Debug for OidcSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OidcSettings")
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

/// Delivery settings.
#[derive(Debug, Clone, Copy)]
pub struct OutboxSettings {
    /// Tries before a message is marked failed.
    pub max_attempts: u32,
    /// Wait before the first retry; doubled for each further one (capped at one hour).
    pub retry_base: Duration,
    /// How long a claimed message is reserved for its worker.
    pub lease: Duration,
    /// Messages claimed at once.
    pub batch: i64,
    /// Longest one delivery may take.
    pub delivery_timeout: Duration,
}

impl Default for OutboxSettings {
    fn default() -> Self {
        OutboxSettings {
            max_attempts: 8,
            retry_base: Duration::from_secs(10),
            lease: Duration::from_secs(300),
            batch: 32,
            delivery_timeout: Duration::from_secs(30),
        }
    }
}
