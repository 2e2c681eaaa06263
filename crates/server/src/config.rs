//! Configuration: defaults -> TOML file -> `EHRSHARE_*` environment -> command-line flags.
//!
//! Each later source overrides the earlier ones key by key. The file is named by `--config` or
//! `EHRSHARE_CONFIG`; without either, no file is read. Unknown keys in the file are an error
//! (a typo must not silently leave a default in force). Secrets (the password in a database URL)
//! are redacted whenever the configuration is printed or logged.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ehrshare_core::consent::Regime;
use ehrshare_store::Backend;
use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The shipped role -> domains matrix.
pub const SHIPPED_ACCESS_PROFILES: &str = include_str!("../../../config/access-profiles.toml");

/// Parses an access-profiles file (`version`, and `[roles]` naming each role's domains).
pub fn parse_access_profiles(text: &str) -> Result<ehrshare_core::profile::AccessProfiles, String> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct File {
        version: String,
        roles: std::collections::BTreeMap<String, Vec<String>>,
        /// The emergency domains (SPEC 3.11); default allergy, medication, diagnosis.
        #[serde(default)]
        emergency: Option<Vec<String>>,
    }
    let file: File = toml::from_str(text).map_err(|e| e.to_string())?;
    let entries: Vec<(String, Vec<String>)> = file.roles.into_iter().collect();
    let profiles = ehrshare_core::profile::AccessProfiles::from_entries(&file.version, &entries)
        .map_err(|e| e.to_string())?;
    match file.emergency {
        Some(codes) => profiles.with_emergency(&codes).map_err(|e| e.to_string()),
        None => Ok(profiles),
    }
}

/// The environment variable prefix.
pub const ENV_PREFIX: &str = "EHRSHARE_";

/// The keys read from `EHRSHARE_*` variables (`EHRSHARE_LISTEN` sets `listen`, ...).
pub const KEYS: &[&str] = &[
    "listen",
    "data_dir",
    "database_url",
    "consent_regime",
    "public_base_url",
    "cookie_secure",
    "log_format",
    "log_level",
    "request_timeout_secs",
    "header_read_timeout_secs",
    "max_client_connections",
    "body_limit_bytes",
    "db_max_connections",
    "audit_key_file",
    "audit_checkpoint_file",
    "totp_key_file",
    "receipt_key_file",
    "audit_checkpoint_every_entries",
    "audit_checkpoint_every_secs",
    "notify_email",
    "notify_sms",
    "smtp_host",
    "smtp_port",
    "smtp_from",
    "sms_webhook_url",
    "outbox_max_attempts",
    "outbox_retry_base_secs",
    "rate_limit_per_minute",
    "rate_limit_burst",
    "trusted_proxies",
    "session_idle_minutes",
    "session_absolute_hours",
    "password_max_age_days",
    "login_lock_after",
    "registration_number_patterns",
    "access_profiles_file",
    "care_window_before_days",
    "care_window_after_days",
    "care_episode_idle_days",
    "break_glass_enabled",
    "break_glass_repeat_per_week",
    "oidc_issuer",
    "oidc_client_id",
    "oidc_client_secret",
    "oidc_hkid_claim",
];

/// The server's configuration, after merging every source.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Address and port to listen on.
    pub listen: String,
    /// Folder for the embedded database, keys and checkpoints; created if absent.
    pub data_dir: PathBuf,
    /// `sqlite:PATH` or `postgres://...`; default: `ehrshare.db` in the data directory.
    #[serde(default)]
    pub database_url: Option<DatabaseUrl>,
    /// Sharing-consent rules in force: `2016` (default) or `2025`.
    #[serde(
        serialize_with = "serialize_regime",
        deserialize_with = "deserialize_regime"
    )]
    pub consent_regime: Regime,
    /// The URL clients reach this server at; default: `http://` + `listen`.
    #[serde(default)]
    pub public_base_url: Option<String>,
    /// Whether cookies carry `Secure`. Turn off only for plain-http development on a host other
    /// than localhost (browsers accept Secure cookies from http://localhost).
    pub cookie_secure: bool,
    /// `text` or `json` log lines (on standard error).
    pub log_format: LogFormat,
    /// Log filter, e.g. `info` or `info,ehrshare_store=debug`.
    pub log_level: String,
    /// Longest a request may take, in seconds.
    pub request_timeout_secs: u64,
    /// Longest a client may take to send a request's line and headers, in seconds, from
    /// connecting or from its previous response (so also the keep-alive idle limit); the
    /// connection is then closed.
    pub header_read_timeout_secs: u64,
    /// Most client connections at once; one beyond is answered 503 and closed. Keep it well
    /// below the process's file limit (`ulimit -n`).
    pub max_client_connections: u32,
    /// Largest request body, in bytes.
    pub body_limit_bytes: usize,
    /// Most database connections.
    pub db_max_connections: u32,
    /// The Ed25519 key that signs audit checkpoints (64 hex digits; created if absent, mode
    /// 0600, with its public half beside it as `.pub`); default: `audit/signing-key` in the
    /// data directory.
    #[serde(default)]
    pub audit_key_file: Option<PathBuf>,
    /// Where signed audit checkpoints are appended (keep it off the database's machine);
    /// default: `audit/checkpoints.jsonl` in the data directory.
    #[serde(default)]
    pub audit_checkpoint_file: Option<PathBuf>,
    /// The key that seals security-token (TOTP) seeds in the database (64 hex digits; created
    /// if absent, mode 0600); every server of a deployment needs the same file; default:
    /// `secrets/totp-key` in the data directory.
    #[serde(default)]
    pub totp_key_file: Option<PathBuf>,
    /// The receipt key (Ed25519 seed, 64 hex digits; created if absent, mode 0600, its public
    /// half beside it as `.pub`): signs consent receipts and QR location tokens (ADR 0018);
    /// every server of a deployment needs the same file; default: `secrets/receipt-key` in the
    /// data directory. Never the audit key.
    #[serde(default)]
    pub receipt_key_file: Option<PathBuf>,
    /// Sign a checkpoint after this many new audit entries.
    pub audit_checkpoint_every_entries: u64,
    /// ... or after this many seconds, if any entry was added (and always at shutdown).
    pub audit_checkpoint_every_secs: u64,
    /// How e-mail notifications leave: `log` (to `outbox/messages.log` in the data directory,
    /// the default, for development: it holds access keys in clear) or `smtp`.
    pub notify_email: EmailAdapterKind,
    /// How SMS notifications leave: `log` or `webhook` (an SMS gateway).
    pub notify_sms: SmsAdapterKind,
    /// SMTP relay host (plain SMTP; for `notify_email = "smtp"`).
    pub smtp_host: String,
    /// SMTP relay port.
    pub smtp_port: u16,
    /// Sender address of e-mail notifications.
    pub smtp_from: String,
    /// The SMS gateway's webhook, `http(s)://host[:port]/path` (for `notify_sms = "webhook"`).
    #[serde(default)]
    pub sms_webhook_url: Option<String>,
    /// Delivery tries before a notification is marked failed.
    pub outbox_max_attempts: u32,
    /// Seconds before the first retry; doubled for each further one (at most an hour).
    pub outbox_retry_base_secs: u64,
    /// Requests per minute allowed from one client address (beyond the burst).
    pub rate_limit_per_minute: u32,
    /// Requests one client address may send at once before the per-minute rate applies.
    pub rate_limit_burst: u32,
    /// Proxies (addresses or networks, comma-separated) whose `X-Forwarded-For` names the
    /// client: the load balancer in front of several processes (ADR 0024). Empty: the
    /// connection's peer is the client.
    pub trusted_proxies: String,
    /// A session ends after this many minutes without a request.
    pub session_idle_minutes: u32,
    /// A session ends this many hours after login, however active.
    pub session_absolute_hours: u32,
    /// Passwords must be changed after this many days (0: never); a reminder starts 14 days
    /// before.
    pub password_max_age_days: u32,
    /// Consecutive failed logins that lock a user name for 30 minutes (2 to 99).
    pub login_lock_after: u32,
    /// Per-profession formats of registration numbers, replacing the defaults for the
    /// professions named: `{ doctor = "M#####", nurse = "RN######|EN######" }` (`#` a digit,
    /// `@` a letter, `|` between alternatives).
    #[serde(default)]
    pub registration_number_patterns: std::collections::BTreeMap<String, String>,
    /// A care episode allows access from this many days before its start ...
    pub care_window_before_days: u32,
    /// ... to this many days after its end.
    pub care_window_after_days: u32,
    /// A care episode with no recorded or planned end ends this many days after its last
    /// deposit or attendance (reads never count).
    pub care_episode_idle_days: u32,
    /// Whether providers may turn emergency access ("break-glass", SPEC 3.11) on.
    pub break_glass_enabled: bool,
    /// Emergency grants to one user within seven days that raise a further alert.
    pub break_glass_repeat_per_week: u32,
    /// The role -> domains matrix (TOML, as `config/access-profiles.toml`); default: the copy
    /// built into the binary.
    #[serde(default)]
    pub access_profiles_file: Option<PathBuf>,
    /// The OpenID Connect provider patients and staff may log in through (iAM Smart), by its
    /// issuer URL. Unset: the option is not offered.
    #[serde(default)]
    pub oidc_issuer: Option<String>,
    /// This system's client id at that provider.
    #[serde(default)]
    pub oidc_client_id: Option<String>,
    /// This system's client secret at that provider.
    #[serde(default)]
    pub oidc_client_secret: Option<SecretString>,
    /// The ID-token claim carrying a patient's HKID number.
    pub oidc_hkid_claim: String,
}

/// A secret: never shown in Debug, Display or serialised output.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct SecretString(String);

impl SecretString {
    /// Wraps a secret.
    pub fn new(secret: impl Into<String>) -> SecretString {
        SecretString(secret.into())
    }

    /// The secret, for use only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"***\"")
    }
}

impl Serialize for SecretString {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str("***")
    }
}

/// Where e-mail notifications go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EmailAdapterKind {
    Log,
    Smtp,
}

/// Where SMS notifications go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmsAdapterKind {
    Log,
    Webhook,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: "127.0.0.1:8080".to_owned(),
            data_dir: PathBuf::from("./data"),
            database_url: None,
            consent_regime: Regime::Y2016,
            public_base_url: None,
            cookie_secure: true,
            log_format: LogFormat::Text,
            log_level: "info".to_owned(),
            request_timeout_secs: 30,
            header_read_timeout_secs: 10,
            max_client_connections: 1024,
            body_limit_bytes: 2 * 1024 * 1024,
            db_max_connections: 8,
            audit_key_file: None,
            audit_checkpoint_file: None,
            totp_key_file: None,
            receipt_key_file: None,
            audit_checkpoint_every_entries: 10_000,
            audit_checkpoint_every_secs: 60,
            notify_email: EmailAdapterKind::Log,
            notify_sms: SmsAdapterKind::Log,
            smtp_host: "127.0.0.1".to_owned(),
            smtp_port: 25,
            smtp_from: "ehrshare <noreply@localhost>".to_owned(),
            sms_webhook_url: None,
            outbox_max_attempts: 8,
            outbox_retry_base_secs: 10,
            rate_limit_per_minute: 600,
            rate_limit_burst: 100,
            trusted_proxies: String::new(),
            session_idle_minutes: 15,
            session_absolute_hours: 12,
            password_max_age_days: 90,
            login_lock_after: 10,
            registration_number_patterns: std::collections::BTreeMap::new(),
            access_profiles_file: None,
            care_window_before_days: 7,
            care_window_after_days: 30,
            care_episode_idle_days: 90,
            break_glass_enabled: false,
            break_glass_repeat_per_week: 3,
            oidc_issuer: None,
            oidc_client_id: None,
            oidc_client_secret: None,
            oidc_hkid_claim: "hkid".to_owned(),
        }
    }
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

/// A database URL. Its password never appears in Debug, Display or serialised output.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct DatabaseUrl(String);

impl DatabaseUrl {
    /// Wraps a URL.
    pub fn new(url: impl Into<String>) -> DatabaseUrl {
        DatabaseUrl(url.into())
    }

    /// The URL with its password, for connecting only.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The URL with any password replaced by `***`.
    pub fn redacted(&self) -> String {
        redact_url_password(&self.0)
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.redacted())
    }
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl Serialize for DatabaseUrl {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.redacted())
    }
}

/// Replaces the password of `scheme://user:password@host/...` with `***`; also a `password=`
/// query parameter.
pub fn redact_url_password(url: &str) -> String {
    let mut out = url.to_owned();
    if let Some(scheme_end) = out.find("://") {
        let rest_start = scheme_end + 3;
        let authority_end = out[rest_start..]
            .find(['/', '?', '#'])
            .map_or(out.len(), |i| rest_start + i);
        if let Some(at) = out[rest_start..authority_end].rfind('@') {
            let userinfo = &out[rest_start..rest_start + at];
            if let Some(colon) = userinfo.find(':') {
                let start = rest_start + colon + 1;
                out.replace_range(start..rest_start + at, "***");
            }
        }
    }
    if let Some(q) = out.find('?') {
        let (base, query) = out.split_at(q + 1);
        let query: Vec<String> = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
                _ => pair.to_owned(),
            })
            .collect();
        out = format!("{base}{}", query.join("&"));
    }
    out
}

fn serialize_regime<S: Serializer>(regime: &Regime, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(regime.as_str())
}

/// Accepts `2016` as a string (TOML, flags) or as a number (what an environment value parses to).
fn deserialize_regime<'de, D: Deserializer<'de>>(d: D) -> Result<Regime, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Text(String),
        Number(i64),
    }
    let text = match Raw::deserialize(d)? {
        Raw::Text(t) => t,
        Raw::Number(n) => n.to_string(),
    };
    text.parse().map_err(serde::de::Error::custom)
}

/// Values given as command-line flags (only those given override).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Overrides {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub consent_regime: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_base_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cookie_secure: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_format: Option<LogFormat>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_level: Option<String>,
}

/// Why the configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration file {0} does not exist")]
    MissingFile(PathBuf),
    #[error("{0}")]
    Invalid(String),
}

impl Config {
    /// Merges defaults, the file, the process environment and `flags`, then validates.
    pub fn load(file: Option<&Path>, flags: &Overrides) -> Result<Config, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(path) = file {
            if !path.is_file() {
                return Err(ConfigError::MissingFile(path.to_owned()));
            }
            figment = figment.merge(Toml::file(path));
        }
        let figment = figment
            .merge(Env::prefixed(ENV_PREFIX).only(KEYS))
            .merge(Serialized::defaults(flags));
        let config: Config = figment
            .extract()
            .map_err(|e| ConfigError::Invalid(e.to_string()))?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |m: String| Err(ConfigError::Invalid(m));
        if self.listen.parse::<SocketAddr>().is_err() {
            return invalid(format!(
                "listen: {:?} is not an address and port such as 127.0.0.1:8080",
                self.listen
            ));
        }
        if let Some(url) = &self.database_url
            && Backend::from_url(url.expose()).is_none()
        {
            return invalid(format!(
                "database_url: {} must start with sqlite: or postgres://",
                url.redacted()
            ));
        }
        if let Some(base) = &self.public_base_url
            && !(base.starts_with("http://") || base.starts_with("https://"))
        {
            return invalid(format!(
                "public_base_url: {base:?} must start with http:// or https://"
            ));
        }
        if self.request_timeout_secs == 0 {
            return invalid("request_timeout_secs must be at least 1".to_owned());
        }
        if self.header_read_timeout_secs == 0 {
            return invalid("header_read_timeout_secs must be at least 1".to_owned());
        }
        if self.max_client_connections == 0 {
            return invalid("max_client_connections must be at least 1".to_owned());
        }
        if self.body_limit_bytes == 0 {
            return invalid("body_limit_bytes must be at least 1".to_owned());
        }
        if self.break_glass_repeat_per_week == 0 {
            return invalid("break_glass_repeat_per_week must be at least 1".to_owned());
        }
        if !(1..=3_650).contains(&self.care_episode_idle_days) {
            return invalid("care_episode_idle_days must be 1 to 3650".to_owned());
        }
        if self.audit_checkpoint_every_entries == 0 || self.audit_checkpoint_every_secs == 0 {
            return invalid(
                "audit_checkpoint_every_entries and _secs must be at least 1".to_owned(),
            );
        }
        if self.notify_sms == SmsAdapterKind::Webhook && self.sms_webhook_url.is_none() {
            return invalid("notify_sms = \"webhook\" needs sms_webhook_url".to_owned());
        }
        if self.outbox_max_attempts == 0 || self.outbox_retry_base_secs == 0 {
            return invalid(
                "outbox_max_attempts and outbox_retry_base_secs must be at least 1".to_owned(),
            );
        }
        if self.session_idle_minutes == 0
            || self.session_absolute_hours == 0
            || u64::from(self.session_idle_minutes) > u64::from(self.session_absolute_hours) * 60
        {
            return invalid(
                "session_idle_minutes and session_absolute_hours must be at least 1, and idle \
                 no longer than absolute"
                    .to_owned(),
            );
        }
        if !(2..100).contains(&self.login_lock_after) {
            return invalid("login_lock_after must be from 2 to 99".to_owned());
        }
        let oidc_set = [
            self.oidc_issuer.is_some(),
            self.oidc_client_id.is_some(),
            self.oidc_client_secret.is_some(),
        ];
        if oidc_set.iter().any(|b| *b) && !oidc_set.iter().all(|b| *b) {
            return invalid(
                "oidc_issuer, oidc_client_id and oidc_client_secret go together".to_owned(),
            );
        }
        if let Some(issuer) = &self.oidc_issuer
            && !(issuer.starts_with("https://") || issuer.starts_with("http://127.0.0.1"))
        {
            return invalid(format!(
                "oidc_issuer: {issuer:?} must be https:// (http only on 127.0.0.1, for tests)"
            ));
        }
        if let Err(e) = self.access_profiles() {
            return invalid(e);
        }
        if let Err(e) = self.registration_patterns() {
            return invalid(format!("registration_number_patterns: {e}"));
        }
        if self.rate_limit_per_minute == 0 || self.rate_limit_burst == 0 {
            return invalid(
                "rate_limit_per_minute and rate_limit_burst must be at least 1".to_owned(),
            );
        }
        if let Err(e) = ehrshare_web::client::TrustedProxies::parse(&self.trusted_proxies) {
            return invalid(format!("trusted_proxies: {e}"));
        }
        if self.db_max_connections == 0 {
            return invalid("db_max_connections must be at least 1".to_owned());
        }
        Ok(())
    }

    /// The address to listen on (validated by [`Config::load`]).
    /// The role -> domains matrix in force: the configured file, or the shipped one.
    pub fn access_profiles(&self) -> Result<ehrshare_core::profile::AccessProfiles, String> {
        let (name, text) = match &self.access_profiles_file {
            Some(path) => (
                path.display().to_string(),
                std::fs::read_to_string(path)
                    .map_err(|e| format!("access_profiles_file {}: {e}", path.display()))?,
            ),
            None => (
                "the built-in access profiles".to_owned(),
                SHIPPED_ACCESS_PROFILES.to_owned(),
            ),
        };
        parse_access_profiles(&text).map_err(|e| format!("{name}: {e}"))
    }

    /// The registration-number patterns in force (defaults with the configured ones over them).
    pub fn registration_patterns(
        &self,
    ) -> Result<
        ehrshare_core::profession::RegistrationPatterns,
        ehrshare_core::profession::PatternError,
    > {
        let mut p = ehrshare_core::profession::RegistrationPatterns::default();
        for (profession, patterns) in &self.registration_number_patterns {
            p.set(profession, patterns)?;
        }
        Ok(p)
    }

    pub fn listen_addr(&self) -> Result<SocketAddr, ConfigError> {
        self.listen
            .parse()
            .map_err(|_| ConfigError::Invalid(format!("listen: {:?}", self.listen)))
    }

    /// The database URL in force: the configured one, or the SQLite file in the data directory.
    pub fn effective_database_url(&self) -> DatabaseUrl {
        match &self.database_url {
            Some(url) => url.clone(),
            None => DatabaseUrl(format!(
                "sqlite://{}",
                self.data_dir.join("ehrshare.db").display()
            )),
        }
    }

    /// The public base URL in force: the configured one, or `http://` + `listen`.
    pub fn effective_public_base_url(&self) -> String {
        self.public_base_url
            .clone()
            .unwrap_or_else(|| format!("http://{}", self.listen))
    }

    /// The audit signing key file in force.
    pub fn effective_audit_key_file(&self) -> PathBuf {
        self.audit_key_file
            .clone()
            .unwrap_or_else(|| self.data_dir.join("audit").join("signing-key"))
    }

    /// The audit checkpoint file in force.
    pub fn effective_audit_checkpoint_file(&self) -> PathBuf {
        self.audit_checkpoint_file
            .clone()
            .unwrap_or_else(|| self.data_dir.join("audit").join("checkpoints.jsonl"))
    }

    /// The file the `log` notification adapter writes.
    pub fn effective_totp_key_file(&self) -> PathBuf {
        self.totp_key_file
            .clone()
            .unwrap_or_else(|| self.data_dir.join("secrets").join("totp-key"))
    }

    /// The receipt key's file.
    pub fn effective_receipt_key_file(&self) -> PathBuf {
        self.receipt_key_file
            .clone()
            .unwrap_or_else(|| self.data_dir.join("secrets").join("receipt-key"))
    }

    pub fn message_log_file(&self) -> PathBuf {
        self.data_dir.join("outbox").join("messages.log")
    }

    /// The request timeout.
    pub fn request_timeout(&self) -> Duration {
        Duration::from_secs(self.request_timeout_secs)
    }

    /// The configuration as `print-config` shows it: every key, defaults filled in, secrets
    /// redacted, as TOML that can be saved as a configuration file.
    pub fn to_printable_toml(&self) -> Result<String, ConfigError> {
        let mut shown = self.clone();
        shown.database_url = Some(self.effective_database_url());
        shown.public_base_url = Some(self.effective_public_base_url());
        shown.audit_key_file = Some(self.effective_audit_key_file());
        shown.audit_checkpoint_file = Some(self.effective_audit_checkpoint_file());
        shown.receipt_key_file = Some(self.effective_receipt_key_file());
        toml::to_string(&shown).map_err(|e| ConfigError::Invalid(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_passwords_in_urls() {
        let check = |input: &str, expected: &str| assert_eq!(redact_url_password(input), expected);
        check(
            "postgres://u:secret@h:5432/db",
            "postgres://u:***@h:5432/db",
        );
        check("postgres://u:p@ss@h/db", "postgres://u:***@h/db");
        check("postgres://u@h/db", "postgres://u@h/db");
        check(
            "postgres://h/db?user=u&password=x&sslmode=require",
            "postgres://h/db?user=u&password=***&sslmode=require",
        );
        check("sqlite://./data/ehrshare.db", "sqlite://./data/ehrshare.db");
        let url = DatabaseUrl::new("postgres://u:secret@h/db");
        assert!(!format!("{url:?}").contains("secret"));
        assert!(!format!("{url}").contains("secret"));
        assert_eq!(url.expose(), "postgres://u:secret@h/db");
    }

    #[test]
    fn default_database_is_sqlite_in_the_data_dir() {
        let config = Config::default();
        assert_eq!(
            config.effective_database_url().expose(),
            "sqlite://./data/ehrshare.db"
        );
        assert_eq!(config.effective_public_base_url(), "http://127.0.0.1:8080");
    }
}

#[cfg(test)]
mod access_profile_tests {
    use super::*;

    #[test]
    fn the_shipped_matrix_is_the_spec_table() {
        let shipped = parse_access_profiles(SHIPPED_ACCESS_PROFILES).unwrap();
        let spec = ehrshare_core::profile::spec_default();
        let a: Vec<_> = shipped.entries().map(|(r, d)| (r, d.clone())).collect();
        let b: Vec<_> = spec.entries().map(|(r, d)| (r, d.clone())).collect();
        assert_eq!(a, b);
        assert_eq!(shipped.emergency_domains(), spec.emergency_domains());
        assert_eq!(shipped.version(), "2026-12-07.1");
    }

    #[test]
    fn mistakes_in_the_matrix_name_themselves() {
        let emergency =
            SHIPPED_ACCESS_PROFILES.replace("\"medication\", \"diagnosis\"]\n", "\"meds\"]\n");
        let e = parse_access_profiles(&emergency).unwrap_err();
        assert!(e.contains("meds") && e.contains("emergency"), "{e}");
        let typo = SHIPPED_ACCESS_PROFILES.replace("\"laboratory\"]", "\"labratory\"]");
        let e = parse_access_profiles(&typo).unwrap_err();
        assert!(e.contains("labratory"), "{e}");
        let missing = SHIPPED_ACCESS_PROFILES.replace("user-administrator = []\n", "");
        assert!(
            parse_access_profiles(&missing)
                .unwrap_err()
                .contains("user-administrator")
        );
        let unknown = format!("{SHIPPED_ACCESS_PROFILES}wizard = [\"*\"]\n");
        assert!(
            parse_access_profiles(&unknown)
                .unwrap_err()
                .contains("wizard")
        );
    }
}
