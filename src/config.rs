//! Configuration: built-in defaults, then an optional TOML file (`--config PATH`), then `KOMEK_*`
//! environment variables — each layer overriding the one before — validated once at start into
//! [`Settings`]. Every setting is documented in `ops/komek.example.toml`; a test keeps that file and
//! [`RawSettings`] in step. Environment variables are the upper-case field names with the `KOMEK_` prefix
//! (`database_url` ↔ `KOMEK_DATABASE_URL`). `KOMEK_TEST_*` variables belong to the test suite and are ignored,
//! and so are the service-link variables Kubernetes puts in every pod when a Service is named `komek`
//! (`KOMEK_PORT`, `KOMEK_SERVICE_HOST`, `KOMEK_PORT_8080_TCP_ADDR`, …; see [`is_service_link`]). Any other
//! unknown `KOMEK_*` variable, and any unknown key in the file, stops the start: a typo must not pass.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::Figment;
use figment::providers::{Env, Format as _, Serialized, Toml};
use serde::{Deserialize, Serialize};

use crate::db::{ConnectOptions, DatabaseUrl, PoolOptions, SqliteSynchronous};
use crate::keys::{self, KeyOrigin, Keyset};
use crate::sensitive::Sensitive;

/// Development or production. Production refuses unsafe settings instead of quietly running with them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Environment {
    /// A workstation or demo: generated keys, plain http, optional second factor allowed.
    Development,
    /// A real hotline.
    Production,
}

/// Log line format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Pretty,
    /// One JSON object per line, for log collectors.
    Json,
}

/// The settings as read, before validation. Field names are the configuration keys.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawSettings {
    pub env: Environment,
    pub database_url: Option<String>,
    pub bind: String,
    pub public_url: Option<String>,
    pub data_dir: PathBuf,
    pub keys_file: Option<PathBuf>,
    pub smtp_url: Option<String>,
    pub email_from: String,
    pub log: String,
    pub log_format: LogFormat,
    pub require_mfa: bool,
    pub access_token_ttl_secs: u64,
    pub session_idle_timeout_secs: u64,
    pub session_absolute_timeout_secs: u64,
    pub sqlite_synchronous: SqliteSynchronous,
    pub sqlite_busy_timeout_ms: u32,
    pub db_pool_size: u32,
    pub db_checkout_timeout_ms: u64,
    pub http_workers: usize,
    pub shutdown_timeout_secs: u64,
    pub bootstrap_org_slug: String,
    pub bootstrap_org_name: String,
    pub bootstrap_admin_email: String,
    pub triage_rules_dir: Option<PathBuf>,
    pub critical_ack_minutes: u32,
    pub flood_threshold: u32,
    pub flood_window_minutes: u32,
    pub sms_parts_wait_secs: u32,
    pub outbox_worker: bool,
    pub outbox_poll_interval_ms: u64,
    pub outbox_lease_secs: u32,
    pub outbox_max_attempts: u32,
    pub outbox_retry_base_secs: u32,
    pub outbox_retry_max_secs: u32,
    pub sla_check_interval_secs: u32,
    pub mail_dir: Option<PathBuf>,
    pub sms_api_base_url: Option<String>,
    pub sms_allowed_prefixes: Vec<String>,
    pub sms_blocked_prefixes: Vec<String>,
    pub sms_per_case_per_day: u32,
    pub sms_per_case_total: u32,
    pub sms_global_per_day: u32,
    pub web_form_org: Option<String>,
    pub web_form_min_fill_secs: u32,
    pub web_form_submissions_per_hour: u32,
    pub web_form_status_checks_per_hour: u32,
    pub web_form_quick_exit_url: String,
    pub trusted_proxies: String,
    pub ivr_fallback_number: Option<String>,
    pub ivr_prompts_dir: Option<PathBuf>,
    pub ivr_ring_timeout_secs: u32,
    pub ivr_record_max_secs: u32,
    pub metrics_bind: Option<String>,
    pub backup_age_recipient: Option<String>,
}

impl Default for RawSettings {
    fn default() -> Self {
        RawSettings {
            env: Environment::Development,
            database_url: None,
            bind: "127.0.0.1:8080".to_owned(),
            public_url: None,
            data_dir: PathBuf::from("./komek-data"),
            keys_file: None,
            smtp_url: None,
            email_from: "Komek <komek@localhost>".to_owned(),
            log: "info".to_owned(),
            log_format: LogFormat::Pretty,
            require_mfa: true,
            access_token_ttl_secs: 600,
            session_idle_timeout_secs: 900,
            session_absolute_timeout_secs: 36_000,
            sqlite_synchronous: SqliteSynchronous::Full,
            sqlite_busy_timeout_ms: 5_000,
            db_pool_size: 8,
            db_checkout_timeout_ms: 5_000,
            http_workers: 0,
            shutdown_timeout_secs: 30,
            bootstrap_org_slug: "hotline".to_owned(),
            bootstrap_org_name: "Hotline".to_owned(),
            bootstrap_admin_email: "admin@localhost".to_owned(),
            triage_rules_dir: None,
            critical_ack_minutes: 15,
            flood_threshold: 10,
            flood_window_minutes: 10,
            sms_parts_wait_secs: 120,
            outbox_worker: true,
            outbox_poll_interval_ms: 1_000,
            outbox_lease_secs: 120,
            outbox_max_attempts: 10,
            outbox_retry_base_secs: 30,
            outbox_retry_max_secs: 3_600,
            sla_check_interval_secs: 30,
            mail_dir: None,
            sms_api_base_url: None,
            sms_allowed_prefixes: ["+77", "+996", "+992", "+998", "+993"]
                .map(str::to_owned)
                .to_vec(),
            sms_blocked_prefixes: Vec::new(),
            sms_per_case_per_day: 3,
            sms_per_case_total: 20,
            sms_global_per_day: 200,
            web_form_org: None,
            web_form_min_fill_secs: 3,
            web_form_submissions_per_hour: 5,
            web_form_status_checks_per_hour: 30,
            web_form_quick_exit_url: DEFAULT_QUICK_EXIT_URL.to_owned(),
            trusted_proxies: String::new(),
            ivr_fallback_number: None,
            ivr_prompts_dir: None,
            ivr_ring_timeout_secs: 20,
            ivr_record_max_secs: 300,
            metrics_bind: None,
            backup_age_recipient: None,
        }
    }
}

/// A configuration problem, worded for the operator who has to fix it.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read the configuration: {0}")]
    Load(String),
    #[error("configuration setting `{setting}` (env KOMEK_{env}) is not valid: {reason}")]
    Invalid {
        setting: &'static str,
        env: String,
        reason: String,
    },
    #[error("refusing to start in production: {0}")]
    Production(String),
    #[error(transparent)]
    Keys(#[from] keys::KeyError),
}

fn invalid(setting: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        setting,
        env: setting.to_ascii_uppercase(),
        reason: reason.into(),
    }
}

/// Validated settings. Secrets are held in types whose `Debug` prints nothing.
#[derive(Debug, Clone)]
pub struct Settings {
    pub env: Environment,
    pub database_url: DatabaseUrl,
    pub bind: SocketAddr,
    pub public_url: url::Url,
    pub data_dir: PathBuf,
    pub keys_file: PathBuf,
    /// True when the keys file is the one generated in the data folder on first start.
    pub keys_generated_if_missing: bool,
    pub smtp_url: Option<Sensitive<String>>,
    pub email_from: String,
    pub log: String,
    pub log_format: LogFormat,
    pub require_mfa: bool,
    /// Lifetime of an access token (at most 15 minutes).
    pub access_token_ttl: Duration,
    /// A session ends after this long without a token refresh.
    pub session_idle_timeout: Duration,
    /// A session ends after this long however active it is.
    pub session_absolute_timeout: Duration,
    /// The header a trusted reverse proxy writes the client address into (rate limiting only).
    pub sqlite_synchronous: SqliteSynchronous,
    pub sqlite_busy_timeout_ms: u32,
    pub db_pool_size: u32,
    pub db_checkout_timeout: Duration,
    pub http_workers: usize,
    pub shutdown_timeout: Duration,
    pub bootstrap_org_slug: String,
    pub bootstrap_org_name: String,
    pub bootstrap_admin_email: String,
    pub triage_rules_dir: Option<PathBuf>,
    pub critical_ack_deadline: chrono::Duration,
    pub flood_threshold: u32,
    pub flood_window: chrono::Duration,
    pub sms_parts_wait: chrono::Duration,
    /// Run the outbox worker inside `komek serve`.
    pub outbox_worker: bool,
    pub outbox_poll_interval_ms: u64,
    pub outbox_lease_secs: u32,
    pub outbox_max_attempts: i32,
    pub outbox_retry_base_secs: u32,
    pub outbox_retry_max_secs: u32,
    pub sla_check_interval_secs: u32,
    /// Where emails are written when no `smtp_url` is set.
    pub mail_dir: PathBuf,
    pub sms_api_base_url: Option<String>,
    pub sms_allowed_prefixes: Vec<String>,
    pub sms_blocked_prefixes: Vec<String>,
    pub sms_per_case_per_day: u32,
    pub sms_per_case_total: u32,
    pub sms_global_per_day: u32,
    /// The organization whose form `/report` shows when no `?org=` is given.
    pub web_form_org: String,
    /// A form sent sooner than this after it was shown is refused as automated.
    pub web_form_min_fill: Duration,
    /// Reports one client address may send through the form per hour.
    pub web_form_submissions_per_hour: u32,
    /// Follow-up code checks one client address may make per hour.
    pub web_form_status_checks_per_hour: u32,
    /// Where the form's quick-exit button leads: a neutral page.
    pub web_form_quick_exit_url: url::Url,
    /// Reverse proxies whose `X-Forwarded-For` is believed for the client address.
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// Another number callers are told to ring when the IVR cannot reach the database (digits only).
    pub ivr_fallback_number: Option<String>,
    /// A folder of human recordings replacing the built-in prompts (`LANG/ID.wav` or `LANG/ID.mp3`).
    pub ivr_prompts_dir: Option<PathBuf>,
    pub ivr_ring_timeout_secs: u32,
    pub ivr_record_max_secs: u32,
    /// Where `/metrics` is served (a private address); `None`: no metrics listener.
    pub metrics_bind: Option<SocketAddr>,
    /// The organization's `age` public key (`age1…`) backups are encrypted to by default.
    pub backup_age_recipient: Option<String>,
}

/// The quick-exit target when none is configured: a weather search, nothing to do with Komek.
pub const DEFAULT_QUICK_EXIT_URL: &str =
    "https://www.google.com/search?q=%D0%BF%D0%BE%D0%B3%D0%BE%D0%B4%D0%B0";

impl RawSettings {
    /// Reads defaults < `file` < environment.
    pub fn load(file: Option<&Path>) -> Result<RawSettings, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(RawSettings::default()));
        if let Some(path) = file {
            if !path.is_file() {
                return Err(ConfigError::Load(format!(
                    "the config file {} does not exist",
                    path.display()
                )));
            }
            figment = figment.merge(Toml::file_exact(path));
        }
        figment = figment.merge(
            Env::prefixed("KOMEK_")
                // KOMEK_CONFIG and KOMEK_CHANNEL_SECRET are command-line arguments and KOMEK_TEST_* belong to
                // the test suite (set for every `cargo` command in this repository): none are settings.
                .filter(|key| {
                    let key = key.as_str().to_ascii_lowercase();
                    !key.starts_with("test_")
                        && !matches!(key.as_str(), "config" | "channel_secret")
                        && !is_service_link(&key)
                }),
        );
        figment.extract().map_err(|e| ConfigError::Load(e.to_string()))
    }

    /// Checks every setting and derives the typed [`Settings`].
    pub fn validate(self) -> Result<Settings, ConfigError> {
        let production = self.env == Environment::Production;
        let data_dir = self.data_dir;
        let database_url = match &self.database_url {
            Some(raw) => DatabaseUrl::parse(raw).map_err(|e| invalid("database_url", e.to_string()))?,
            None => DatabaseUrl::Sqlite(data_dir.join("komek.db")),
        };
        let bind: SocketAddr = self.bind.parse().map_err(|_| {
            invalid(
                "bind",
                format!("`{}` is not an address like 127.0.0.1:8080", self.bind),
            )
        })?;
        let public_url_text = self
            .public_url
            .clone()
            .unwrap_or_else(|| format!("http://{bind}"));
        let public_url = url::Url::parse(public_url_text.trim_end_matches('/'))
            .map_err(|e| invalid("public_url", format!("not a URL: {e}")))?;
        if !matches!(public_url.scheme(), "http" | "https") || public_url.host().is_none() {
            return Err(invalid(
                "public_url",
                "use an http:// or https:// URL with a host",
            ));
        }
        if public_url.query().is_some() || public_url.fragment().is_some() {
            return Err(invalid("public_url", "remove the query or fragment"));
        }
        let (keys_file, keys_generated_if_missing) = match &self.keys_file {
            Some(path) => (path.clone(), false),
            None => (data_dir.join("keys.toml"), true),
        };
        let smtp_url = match self.smtp_url.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
            Some(raw) => {
                let target =
                    crate::notify::email::SmtpTarget::parse(raw).map_err(|e| invalid("smtp_url", e))?;
                if production
                    && target.security == crate::notify::email::SmtpSecurity::Plain
                    && target.password.is_some()
                {
                    return Err(ConfigError::Production(
                        "KOMEK_SMTP_URL sends a password without TLS (tls=none); use STARTTLS or smtps://"
                            .into(),
                    ));
                }
                Some(Sensitive::new(raw.to_owned()))
            }
            None => None,
        };
        if self.outbox_max_attempts == 0 || self.outbox_max_attempts > 1000 {
            return Err(invalid("outbox_max_attempts", "use 1 to 1000 attempts"));
        }
        if self.outbox_lease_secs < 1 || self.outbox_retry_base_secs < 1 || self.sla_check_interval_secs < 1 {
            return Err(invalid(
                "outbox_lease_secs",
                "outbox_lease_secs, outbox_retry_base_secs and sla_check_interval_secs must be at least 1",
            ));
        }
        if self.outbox_retry_max_secs < self.outbox_retry_base_secs {
            return Err(invalid(
                "outbox_retry_max_secs",
                "use at least outbox_retry_base_secs",
            ));
        }
        if !(10..=60_000).contains(&self.outbox_poll_interval_ms) {
            return Err(invalid("outbox_poll_interval_ms", "use 10 to 60000 milliseconds"));
        }
        for prefix in self.sms_allowed_prefixes.iter().chain(&self.sms_blocked_prefixes) {
            let digits = prefix.strip_prefix('+').unwrap_or("");
            if digits.is_empty() || digits.len() > 14 || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return Err(invalid(
                    "sms_allowed_prefixes",
                    format!("`{prefix}` is not a number range like +77 or +996"),
                ));
            }
        }
        if let Some(base) = &self.sms_api_base_url {
            let parsed = url::Url::parse(base).map_err(|_| invalid("sms_api_base_url", "not a URL"))?;
            if !matches!(parsed.scheme(), "http" | "https") {
                return Err(invalid("sms_api_base_url", "use an http:// or https:// URL"));
            }
        }
        if !(1..=128).contains(&self.db_pool_size) {
            return Err(invalid("db_pool_size", "use a number from 1 to 128"));
        }
        if self.db_checkout_timeout_ms < 100 {
            return Err(invalid("db_checkout_timeout_ms", "use at least 100 milliseconds"));
        }
        if !(1..=1440).contains(&self.critical_ack_minutes) {
            return Err(invalid("critical_ack_minutes", "use 1 to 1440 minutes"));
        }
        if self.flood_threshold < 2 || !(1..=1440).contains(&self.flood_window_minutes) {
            return Err(invalid(
                "flood_threshold",
                "use at least 2 reports within 1 to 1440 minutes",
            ));
        }
        if self.sms_parts_wait_secs > 3600 {
            return Err(invalid("sms_parts_wait_secs", "use at most 3600 seconds"));
        }
        if !(60..=900).contains(&self.access_token_ttl_secs) {
            return Err(invalid(
                "access_token_ttl_secs",
                "use 60 to 900 seconds (access tokens live at most 15 minutes)",
            ));
        }
        if !(60..=86_400).contains(&self.session_idle_timeout_secs) {
            return Err(invalid("session_idle_timeout_secs", "use 60 to 86400 seconds"));
        }
        if self.session_absolute_timeout_secs < self.session_idle_timeout_secs
            || self.session_absolute_timeout_secs > 7 * 86_400
        {
            return Err(invalid(
                "session_absolute_timeout_secs",
                "use at least session_idle_timeout_secs and at most 604800 seconds (7 days)",
            ));
        }
        if self.web_form_min_fill_secs > 600 {
            return Err(invalid("web_form_min_fill_secs", "use 0 to 600 seconds"));
        }
        if !(1..=10_000).contains(&self.web_form_submissions_per_hour) {
            return Err(invalid("web_form_submissions_per_hour", "use 1 to 10000"));
        }
        if !(1..=10_000).contains(&self.web_form_status_checks_per_hour) {
            return Err(invalid("web_form_status_checks_per_hour", "use 1 to 10000"));
        }
        let web_form_org = match self
            .web_form_org
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            Some(slug) => slug.to_owned(),
            None => self.bootstrap_org_slug.clone(),
        };
        let web_form_quick_exit_url = url::Url::parse(self.web_form_quick_exit_url.trim())
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
            .ok_or_else(|| {
                invalid(
                    "web_form_quick_exit_url",
                    "use an https:// address of a neutral site (weather, news)",
                )
            })?;
        let mut trusted_proxies = Vec::new();
        for item in self.trusted_proxies.split([',', ' ']).filter(|s| !s.is_empty()) {
            let ip = item.parse().map_err(|_| {
                invalid(
                    "trusted_proxies",
                    format!("`{item}` is not an IP address; list addresses separated by commas"),
                )
            })?;
            trusted_proxies.push(ip);
        }
        let ivr_fallback_number = match self.ivr_fallback_number.as_deref().map(str::trim) {
            Some(raw) if !raw.is_empty() => Some(parse_fallback_number(raw)?),
            _ => None,
        };
        if let Some(dir) = &self.ivr_prompts_dir
            && !dir.is_dir()
        {
            return Err(invalid(
                "ivr_prompts_dir",
                format!("{} is not a folder", dir.display()),
            ));
        }
        if !(5..=120).contains(&self.ivr_ring_timeout_secs) {
            return Err(invalid("ivr_ring_timeout_secs", "use 5 to 120 seconds"));
        }
        if !(10..=3600).contains(&self.ivr_record_max_secs) {
            return Err(invalid("ivr_record_max_secs", "use 10 to 3600 seconds"));
        }
        tracing_subscriber::EnvFilter::try_new(&self.log)
            .map_err(|e| invalid("log", format!("not a log filter like `info,komek=debug`: {e}")))?;
        if production {
            if public_url.scheme() != "https" {
                return Err(ConfigError::Production(
                    "KOMEK_PUBLIC_URL must be an https:// URL (providers and staff reach Komek through it)"
                        .into(),
                ));
            }
            if self.keys_file.is_none() {
                return Err(ConfigError::Production(
                    "KOMEK_KEYS_FILE is not set; make a keys file with `komek keys generate --out PATH` and keep \
                     it outside the data folder"
                        .into(),
                ));
            }
            if !self.require_mfa {
                return Err(ConfigError::Production(
                    "KOMEK_REQUIRE_MFA=false is for local demos only".into(),
                ));
            }
        }
        let metrics_bind = match self.metrics_bind.as_deref().map(str::trim) {
            Some(raw) if !raw.is_empty() => Some(raw.parse::<SocketAddr>().map_err(|_| {
                invalid(
                    "metrics_bind",
                    format!("`{raw}` is not an address like 127.0.0.1:9464"),
                )
            })?),
            _ => None,
        };
        let backup_age_recipient = match self.backup_age_recipient.as_deref().map(str::trim) {
            Some(raw) if !raw.is_empty() => {
                crate::backup::parse_recipient(raw).map_err(|e| invalid("backup_age_recipient", e))?;
                Some(raw.to_owned())
            }
            _ => None,
        };
        let mail_dir = self.mail_dir.unwrap_or_else(|| data_dir.join("mail"));
        Ok(Settings {
            env: self.env,
            database_url,
            bind,
            public_url,
            data_dir,
            keys_file,
            keys_generated_if_missing,
            smtp_url,
            email_from: self.email_from,
            log: self.log,
            log_format: self.log_format,
            require_mfa: self.require_mfa,
            access_token_ttl: Duration::from_secs(self.access_token_ttl_secs),
            session_idle_timeout: Duration::from_secs(self.session_idle_timeout_secs),
            session_absolute_timeout: Duration::from_secs(self.session_absolute_timeout_secs),
            sqlite_synchronous: self.sqlite_synchronous,
            sqlite_busy_timeout_ms: self.sqlite_busy_timeout_ms,
            db_pool_size: self.db_pool_size,
            db_checkout_timeout: Duration::from_millis(self.db_checkout_timeout_ms),
            http_workers: self.http_workers,
            shutdown_timeout: Duration::from_secs(self.shutdown_timeout_secs),
            bootstrap_org_slug: self.bootstrap_org_slug,
            bootstrap_org_name: self.bootstrap_org_name,
            bootstrap_admin_email: self.bootstrap_admin_email,
            triage_rules_dir: self.triage_rules_dir,
            critical_ack_deadline: chrono::Duration::minutes(i64::from(self.critical_ack_minutes)),
            flood_threshold: self.flood_threshold,
            flood_window: chrono::Duration::minutes(i64::from(self.flood_window_minutes)),
            sms_parts_wait: chrono::Duration::seconds(i64::from(self.sms_parts_wait_secs)),
            outbox_worker: self.outbox_worker,
            outbox_poll_interval_ms: self.outbox_poll_interval_ms,
            outbox_lease_secs: self.outbox_lease_secs,
            outbox_max_attempts: i32::try_from(self.outbox_max_attempts).unwrap_or(10),
            outbox_retry_base_secs: self.outbox_retry_base_secs,
            outbox_retry_max_secs: self.outbox_retry_max_secs,
            sla_check_interval_secs: self.sla_check_interval_secs,
            mail_dir,
            sms_api_base_url: self.sms_api_base_url,
            sms_allowed_prefixes: self.sms_allowed_prefixes,
            sms_blocked_prefixes: self.sms_blocked_prefixes,
            sms_per_case_per_day: self.sms_per_case_per_day,
            sms_per_case_total: self.sms_per_case_total,
            sms_global_per_day: self.sms_global_per_day,
            web_form_org,
            web_form_min_fill: Duration::from_secs(u64::from(self.web_form_min_fill_secs)),
            web_form_submissions_per_hour: self.web_form_submissions_per_hour,
            web_form_status_checks_per_hour: self.web_form_status_checks_per_hour,
            web_form_quick_exit_url,
            trusted_proxies,
            ivr_fallback_number,
            ivr_prompts_dir: self.ivr_prompts_dir,
            ivr_ring_timeout_secs: self.ivr_ring_timeout_secs,
            ivr_record_max_secs: self.ivr_record_max_secs,
            metrics_bind,
            backup_age_recipient,
        })
    }
}

/// True for the variables Kubernetes derives from a Service's name (here `komek` or `komek-…`), after the
/// `KOMEK_` prefix and in lower case: `port`, `port_8080_tcp[_proto|_port|_addr]`, `service_host`,
/// `service_port[_name]`, and the same behind another service's name part (`db_service_host`). No setting
/// ends in `_port` or holds `service_host`/`service_port`/`port_N_tcp`, and a test keeps it so.
pub fn is_service_link(key: &str) -> bool {
    let parts: Vec<&str> = key.split('_').collect();
    let ends_port = parts.last() == Some(&"port");
    let service = parts
        .windows(2)
        .any(|w| w[0] == "service" && matches!(w[1], "host" | "port"));
    let port_protocol = parts.windows(3).any(|w| {
        w[0] == "port"
            && !w[1].is_empty()
            && w[1].bytes().all(|b| b.is_ascii_digit())
            && matches!(w[2], "tcp" | "udp" | "sctp")
    });
    ends_port || service || port_protocol
}

/// The fallback number is spoken digit by digit: keep its digits (and a leading `+`, which is not spoken).
fn parse_fallback_number(raw: &str) -> Result<String, ConfigError> {
    let ok = raw
        .chars()
        .enumerate()
        .all(|(i, c)| c.is_ascii_digit() || matches!(c, ' ' | '-' | '(' | ')') || (i == 0 && c == '+'));
    let digits: String = raw.chars().filter(char::is_ascii_digit).collect();
    if !ok || digits.is_empty() || digits.len() > 20 {
        return Err(invalid(
            "ivr_fallback_number",
            "use a phone number of digits (e.g. +7 727 000 00 00 or 150)",
        ));
    }
    Ok(digits)
}

impl Settings {
    /// Loads and validates in one step.
    pub fn load(file: Option<&Path>) -> Result<Settings, ConfigError> {
        RawSettings::load(file)?.validate()
    }

    /// True in production mode.
    pub fn is_production(&self) -> bool {
        self.env == Environment::Production
    }

    /// How database connections are opened under these settings.
    pub fn connect_options(&self, create_if_missing: bool) -> ConnectOptions {
        ConnectOptions {
            create_if_missing,
            sqlite_synchronous: self.sqlite_synchronous,
            sqlite_busy_timeout_ms: self.sqlite_busy_timeout_ms,
        }
    }

    /// Pool sizing under these settings.
    pub fn pool_options(&self) -> PoolOptions {
        PoolOptions {
            max_size: self.db_pool_size,
            checkout_timeout: self.db_checkout_timeout,
        }
    }

    /// Loads the keys (generating them on a first development start) and enforces the production rules.
    pub fn load_keys(&self) -> Result<Keyset, ConfigError> {
        let generate = self.keys_generated_if_missing && !self.is_production();
        let keyset = keys::load_or_generate(&self.keys_file, generate)?;
        if self.is_production() && keyset.origin == KeyOrigin::Generated {
            return Err(ConfigError::Production(format!(
                "the keys in {} were generated automatically for development; make production keys with \
                 `komek keys generate --out PATH`",
                self.keys_file.display()
            )));
        }
        Ok(keyset)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn production() -> RawSettings {
        RawSettings {
            env: Environment::Production,
            public_url: Some("https://komek.example.org".into()),
            keys_file: Some("/etc/komek/keys.toml".into()),
            ..RawSettings::default()
        }
    }

    #[test]
    fn zero_configuration_uses_sqlite_in_the_data_folder() -> Result<(), ConfigError> {
        let settings = RawSettings::default().validate()?;
        assert_eq!(
            settings.database_url,
            DatabaseUrl::Sqlite("./komek-data/komek.db".into())
        );
        assert_eq!(settings.bind.to_string(), "127.0.0.1:8080");
        assert_eq!(settings.public_url.as_str(), "http://127.0.0.1:8080/");
        assert!(settings.keys_generated_if_missing);
        Ok(())
    }

    #[test]
    fn production_refuses_plain_http_missing_keys_and_optional_mfa() {
        assert!(production().validate().is_ok());
        let http = RawSettings {
            public_url: Some("http://komek.example.org".into()),
            ..production()
        };
        assert!(matches!(http.validate(), Err(ConfigError::Production(m)) if m.contains("https")));
        let no_keys = RawSettings {
            keys_file: None,
            ..production()
        };
        assert!(
            matches!(no_keys.validate(), Err(ConfigError::Production(m)) if m.contains("KOMEK_KEYS_FILE"))
        );
        let no_mfa = RawSettings {
            require_mfa: false,
            ..production()
        };
        assert!(matches!(no_mfa.validate(), Err(ConfigError::Production(_))));
    }

    #[test]
    fn bad_values_name_the_setting() {
        let bad = RawSettings {
            database_url: Some("mysql://x/y".into()),
            ..RawSettings::default()
        };
        let message = bad.validate().err().map(|e| e.to_string()).unwrap_or_default();
        assert!(
            message.contains("KOMEK_DATABASE_URL") && message.contains("postgres://"),
            "{message}"
        );
        let bad = RawSettings {
            bind: "localhost".into(),
            ..RawSettings::default()
        };
        assert!(
            bad.validate()
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default()
                .contains("KOMEK_BIND")
        );
    }

    #[test]
    fn web_form_settings_are_checked() -> Result<(), ConfigError> {
        let settings = RawSettings::default().validate()?;
        assert_eq!(
            settings.web_form_org, "hotline",
            "defaults to the bootstrap organization"
        );
        assert_eq!(settings.web_form_min_fill, Duration::from_secs(3));
        assert!(settings.trusted_proxies.is_empty());
        let raw = RawSettings {
            trusted_proxies: "127.0.0.1, ::1".into(),
            web_form_org: Some("ngo".into()),
            ..RawSettings::default()
        };
        let settings = raw.validate()?;
        assert_eq!(settings.trusted_proxies.len(), 2);
        assert_eq!(settings.web_form_org, "ngo");
        for bad in [
            RawSettings {
                trusted_proxies: "10.0.0.0/8".into(),
                ..RawSettings::default()
            },
            RawSettings {
                web_form_quick_exit_url: "javascript:alert(1)".into(),
                ..RawSettings::default()
            },
            RawSettings {
                web_form_submissions_per_hour: 0,
                ..RawSettings::default()
            },
        ] {
            assert!(bad.validate().is_err());
        }
        Ok(())
    }

    #[test]
    fn the_ivr_fallback_number_keeps_its_digits() -> Result<(), ConfigError> {
        let raw = RawSettings {
            ivr_fallback_number: Some("+7 (727) 150-00-00".into()),
            ..RawSettings::default()
        };
        assert_eq!(
            raw.validate()?.ivr_fallback_number.as_deref(),
            Some("77271500000")
        );
        for bad in ["call 150", "7+7", "1234567890123456789012"] {
            let raw = RawSettings {
                ivr_fallback_number: Some(bad.into()),
                ..RawSettings::default()
            };
            assert!(
                matches!(
                    raw.validate(),
                    Err(ConfigError::Invalid {
                        setting: "ivr_fallback_number",
                        ..
                    })
                ),
                "{bad}"
            );
        }
        Ok(())
    }

    #[test]
    fn kubernetes_service_links_are_not_settings_and_no_setting_looks_like_one()
    -> Result<(), Box<dyn std::error::Error>> {
        for link in [
            "port",
            "port_8080_tcp",
            "port_8080_tcp_proto",
            "port_8080_tcp_port",
            "port_8080_tcp_addr",
            "service_host",
            "service_port",
            "service_port_http",
            "metrics_service_host",
            "metrics_port",
            "metrics_port_9464_tcp_addr",
        ] {
            assert!(is_service_link(link), "{link}");
        }
        let defaults = toml::to_string(&RawSettings::default())?;
        let mut names: Vec<String> = toml::from_str::<toml::Table>(&defaults)?
            .keys()
            .cloned()
            .collect();
        names.extend(["metrics_bind".to_owned(), "database_url".to_owned()]);
        for name in &names {
            assert!(
                !is_service_link(name),
                "setting `{name}` would be ignored as a service link"
            );
        }
        Ok(())
    }

    #[test]
    fn unknown_keys_in_the_file_are_refused() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("komek.toml");
        std::fs::write(&path, "bnid = \"127.0.0.1:9000\"\n")?;
        let message = RawSettings::load(Some(&path))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(message.contains("bnid"), "{message}");
        Ok(())
    }

    #[test]
    fn smtp_url_never_prints() -> Result<(), ConfigError> {
        let raw = RawSettings {
            smtp_url: Some("smtp://user:secret@mail:587".into()),
            ..RawSettings::default()
        };
        let settings = raw.validate()?;
        assert!(!format!("{settings:?}").contains("secret"));
        Ok(())
    }

    #[test]
    fn example_file_documents_every_setting() -> Result<(), Box<dyn std::error::Error>> {
        let example =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/ops/komek.example.toml"))?;
        let defaults = toml::to_string(&RawSettings::default())?;
        let known: toml::Table = toml::from_str(&defaults)?;
        let mut names: Vec<&str> = known.keys().map(String::as_str).collect();
        names.extend([
            "database_url",
            "public_url",
            "keys_file",
            "smtp_url",
            "triage_rules_dir",
            "ivr_fallback_number",
            "ivr_prompts_dir",
            "mail_dir",
            "sms_api_base_url",
            "web_form_org",
            "metrics_bind",
            "backup_age_recipient",
        ]);
        for name in names {
            assert!(
                example
                    .lines()
                    .any(|l| l.trim_start_matches(['#', ' ']).starts_with(&format!("{name} ="))),
                "ops/komek.example.toml does not document `{name}`"
            );
        }
        let parsed: RawSettings = toml::from_str(&example)?;
        parsed.validate()?;
        Ok(())
    }
}
