//! The YAML config: schema, secrets, and validation that names the key path of every
//! problem.
//!
//! Loading goes raw YAML → JSON tree → literal-secret check → `${ENV}` expansion →
//! typed structs (`deny_unknown_fields`, with the path of any type error) → semantic
//! checks. All problems found are reported together, each as `key.path: what is wrong`.

mod http_auth;
mod http_source;
mod leavers;
mod scim_source;
mod scope;
pub mod secret;
mod source;
mod state;

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::Value;

use crate::providers::{self, ProviderType, VendorSettings};

pub use http_source::{HttpAuth, HttpSourceConfig, Pagination, DEFAULT_MAX_PAGES};
pub use leavers::{LeaverAction, Leavers};
pub use scim_source::ScimSource;
pub use scope::Scope;
pub use source::{FieldMap, FileLimits, SourceConfig, SourceFormat, StatusRule};

/// One problem in the config, at a key path such as `providers[1].tenant_id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issue {
    pub path: String,
    pub message: String,
}

impl Issue {
    pub fn new(path: String, message: String) -> Self {
        Issue { path, message }
    }
}

impl fmt::Display for Issue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            write!(f, "{}", self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("config file {path} is not valid YAML: {message}")]
    Yaml { path: PathBuf, message: String },
    #[error("config file {path} has {} problem(s):\n{}", issues.len(), issues.iter().map(|i| format!("  - {i}")).collect::<Vec<_>>().join("\n"))]
    Invalid { path: PathBuf, issues: Vec<Issue> },
}

impl ConfigError {
    /// The individual problems (one for read and YAML errors).
    pub fn issues(&self) -> Vec<Issue> {
        match self {
            ConfigError::Invalid { issues, .. } => issues.clone(),
            other => vec![Issue::new(String::new(), other.to_string())],
        }
    }
}

/// What vendor modules need while parsing their settings.
pub struct ParseContext<'a> {
    /// The config file's folder: relative paths (`*_file`, source path) resolve here.
    pub base_dir: &'a Path,
}

/// The validated config.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file it was read from.
    pub path: PathBuf,
    /// Where the state is kept: an SQLite file, or a PostgreSQL database.
    pub state: crate::store::StateLocation,
    /// Cron expression for the daemon (validated).
    pub schedule: Option<String>,
    pub log: LogConfig,
    pub source: SourceConfig,
    pub safety: SafetyConfig,
    pub daemon: DaemonConfig,
    pub providers: Vec<ProviderConfig>,
    /// Journal entries and runs older than this many days are pruned at the end of a
    /// pass (0: kept forever); the snapshot is never pruned.
    pub state_retention_days: u32,
    /// Webhooks told after each real pass (`notify:`).
    pub notify: Vec<crate::notify::Webhook>,
    /// Where one-shot runs push their metrics (`metrics:`, a Pushgateway).
    pub metrics: Option<crate::metrics::push::PushConfig>,
}

/// `state_retention_days` when the config does not say: over a year, so that "what
/// happened to this person last year" can still be answered.
pub const DEFAULT_STATE_RETENTION_DAYS: u32 = 400;

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// `error`, `warn`, `info`, `debug`, `trace` or a full `RUST_LOG` filter.
    pub level: Option<String>,
    pub format: LogFormat,
    /// Folder for daily log files (JSON lines), resolved against the config's folder.
    pub dir: Option<PathBuf>,
    /// Daily log files kept in `dir`.
    pub keep: usize,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            level: None,
            format: LogFormat::Auto,
            dir: None,
            keep: 7,
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human on a terminal, JSON otherwise.
    #[default]
    Auto,
    Text,
    Json,
}

/// Guards that stop a provider's plan before it writes anything.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SafetyConfig {
    /// Block when the plan would disable more than this share (0–100) of the provider's
    /// active accounts.
    pub max_disable_percent: Option<f64>,
    /// Block when the plan would disable more than this many accounts.
    pub max_disable_count: Option<u64>,
    /// Block when the plan would update more than this share (0–100) of the
    /// provider's accounts (plans of more than ten updates): a mapping change that
    /// would rewrite most of a directory by accident. `null` turns it off.
    pub max_update_percent: Option<f64>,
    /// Block every provider when the source yields fewer valid users than this.
    pub min_source_users: u64,
    /// Stop resending an operation that failed this many runs in a row with the same
    /// record, until the record changes (0: never).
    pub quarantine_after: u32,
}

impl Default for SafetyConfig {
    fn default() -> Self {
        SafetyConfig {
            max_disable_percent: Some(25.0),
            max_disable_count: None,
            max_update_percent: Some(50.0),
            min_source_users: 1,
            quarantine_after: 5,
        }
    }
}

/// What to do with an account whose user left the source, went inactive or out of scope.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnRemove {
    #[default]
    Disable,
    Delete,
}

/// What to do when a user's email changes and the vendor cannot change it in place.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnEmailChange {
    /// Report it as manual action and leave the account as it is.
    #[default]
    Skip,
    /// Create an account for the new email and disable the old one.
    Recreate,
}

/// How fast rosterd may talk to one provider (`providers[].rate_limit`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimitConfig {
    /// Requests in flight at once.
    pub max_concurrency: usize,
    /// A fixed client-side rate, for vendors that send no rate-limit headers.
    pub requests_per_second: Option<f64>,
    /// Most time one run may spend waiting for rate-limit windows, in seconds.
    pub max_wait_seconds: u64,
    /// Attempts per operation on 5xx, timeouts and dropped connections (1 = no retry).
    pub max_attempts: u32,
    /// Per-request timeout, in seconds.
    pub timeout_seconds: u64,
    /// Operations in a row that could not connect (refused, DNS, TLS) after which the
    /// provider stops for the pass; a 401 or 403 stops it at once.
    pub fail_fast_after: u32,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        RateLimitConfig {
            max_concurrency: 4,
            requests_per_second: None,
            max_wait_seconds: 600,
            max_attempts: 5,
            timeout_seconds: 30,
            fail_fast_after: 5,
        }
    }
}

impl RateLimitConfig {
    fn validate(&self, path: &str, issues: &mut Vec<Issue>) {
        if self.max_concurrency == 0 || self.max_concurrency > 256 {
            issues.push(Issue::new(
                format!("{path}.max_concurrency"),
                format!("{} is out of range (1 to 256)", self.max_concurrency),
            ));
        }
        if let Some(r) = self.requests_per_second {
            if !(r > 0.0 && r.is_finite()) {
                issues.push(Issue::new(
                    format!("{path}.requests_per_second"),
                    format!("{r} is not a positive rate"),
                ));
            }
        }
        if self.max_attempts == 0 || self.max_attempts > 20 {
            issues.push(Issue::new(
                format!("{path}.max_attempts"),
                format!("{} is out of range (1 to 20)", self.max_attempts),
            ));
        }
        if self.timeout_seconds == 0 {
            issues.push(Issue::new(
                format!("{path}.timeout_seconds"),
                "must be at least 1".into(),
            ));
        }
        if self.fail_fast_after == 0 || self.fail_fast_after > 10_000 {
            issues.push(Issue::new(
                format!("{path}.fail_fast_after"),
                format!("{} is out of range (1 to 10000)", self.fail_fast_after),
            ));
        }
    }
}

/// One entry of `providers:`.
#[derive(Debug, Clone)]
pub struct ProviderConfig {
    pub name: String,
    /// Checked by the outbound policy; says whether insecure http was allowed.
    pub base_url: crate::net::EndpointUrl,
    pub scope: Scope,
    pub on_remove: OnRemove,
    pub on_email_change: OnEmailChange,
    /// Leavers the snapshot has no row for (accounts made before rosterd).
    pub leavers: Leavers,
    pub rate_limit: RateLimitConfig,
    /// `attributes:` and `lookups:`: vendor fields set by templates (empty: the
    /// vendor's built-in rules only).
    pub mapping: crate::mapping::AttributeMapping,
    pub settings: VendorSettings,
}

impl ProviderConfig {
    /// The vendor, from its settings (one source of truth).
    pub fn kind(&self) -> ProviderType {
        self.settings.provider_type()
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    /// A path or a postgres:// URL, or a mapping (see `state.rs`).
    #[serde(default)]
    state: Option<Value>,
    #[serde(default)]
    schedule: Option<String>,
    #[serde(default)]
    log: LogConfig,
    source: source::RawSource,
    #[serde(default)]
    safety: SafetyConfig,
    #[serde(default)]
    daemon: DaemonConfig,
    providers: Vec<RawProvider>,
    #[serde(default = "default_state_retention_days")]
    state_retention_days: u32,
    #[serde(default)]
    notify: Vec<Value>,
    #[serde(default)]
    metrics: Option<crate::metrics::push::RawPush>,
}

fn default_state_retention_days() -> u32 {
    DEFAULT_STATE_RETENTION_DAYS
}

/// The keys every provider has; the rest go to the vendor's own settings parser.
#[derive(Debug, Deserialize)]
struct RawProvider {
    name: String,
    #[serde(rename = "type")]
    kind: ProviderType,
    base_url: String,
    /// Plain http to a non-loopback host is refused unless this is set.
    #[serde(default)]
    allow_insecure_http: bool,
    #[serde(default)]
    scope: Scope,
    #[serde(default)]
    on_remove: OnRemove,
    #[serde(default)]
    on_email_change: OnEmailChange,
    #[serde(default)]
    leavers: Leavers,
    #[serde(default)]
    rate_limit: RateLimitConfig,
    #[serde(default)]
    attributes: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    lookups: std::collections::BTreeMap<String, std::collections::BTreeMap<String, String>>,
    /// SCIM group names per user (a template); see `mapping::groups`.
    #[serde(default)]
    groups: Option<String>,
    #[serde(default)]
    on_group_empty: Option<crate::mapping::OnGroupEmpty>,
    #[serde(flatten)]
    rest: serde_json::Map<String, Value>,
}

impl Config {
    /// Reads and validates the config file, with the process environment for `${VAR}`.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = read_bounded(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_yaml(&text, path, &|name| std::env::var(name).ok())
    }

    /// Parses config text; `path` names the file in errors and anchors relative paths.
    pub fn from_yaml(
        text: &str,
        path: &Path,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        // Environment values put into the tree so far: scrubbed from every message.
        let expanded = std::cell::RefCell::new(Vec::new());
        let invalid = |issues: Vec<Issue>| ConfigError::Invalid {
            path: path.to_path_buf(),
            issues: issues
                .into_iter()
                .map(|i| Issue::new(i.path, secret::scrub(&i.message, &expanded.borrow())))
                .collect(),
        };
        let mut tree: Value = serde_saphyr::from_str(text).map_err(|e| ConfigError::Yaml {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        if !tree.is_object() {
            return Err(invalid(vec![Issue::new(
                String::new(),
                "the config must be a mapping with `source` and `providers`".into(),
            )]));
        }
        let mut issues = Vec::new();
        state::separate_url_password(&mut tree, &mut issues);
        secret::check_no_literal_secrets(&tree, "", &mut issues);
        http_auth::check_no_literal_header_value(&tree, &mut issues);
        crate::notify::config::check_no_literal_url(&tree, &mut issues);
        secret::expand_env(&mut tree, "", env, &mut issues, &mut expanded.borrow_mut());
        if !issues.is_empty() {
            return Err(invalid(issues));
        }
        let raw: RawConfig = serde_path_to_error::deserialize(tree).map_err(|e| {
            let p = e.path().to_string();
            invalid(vec![Issue::new(
                if p == "." { String::new() } else { p },
                e.into_inner().to_string(),
            )])
        })?;
        let base_dir = path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        let config = validate(raw, path, &base_dir, &mut issues);
        match config {
            Some(c) if issues.is_empty() => Ok(c),
            _ => Err(invalid(issues)),
        }
    }

    /// The providers selected by name (all when `names` is empty); unknown names are errors.
    pub fn select_providers(&self, names: &[String]) -> Result<Vec<&ProviderConfig>, String> {
        if names.is_empty() {
            return Ok(self.providers.iter().collect());
        }
        let mut out = Vec::new();
        for n in names {
            match self.providers.iter().find(|p| &p.name == n) {
                Some(p) => out.push(p),
                None => {
                    let known: Vec<&str> = self.providers.iter().map(|p| p.name.as_str()).collect();
                    return Err(format!(
                        "no provider named {n:?} in the config (known: {})",
                        known.join(", ")
                    ));
                }
            }
        }
        Ok(out)
    }
}

fn validate(
    raw: RawConfig,
    path: &Path,
    base_dir: &Path,
    issues: &mut Vec<Issue>,
) -> Option<Config> {
    if let Some(expr) = &raw.schedule {
        if let Err(e) = parse_schedule(expr) {
            issues.push(Issue::new(
                "schedule".into(),
                format!("not a valid cron expression: {e}"),
            ));
        }
    }
    if let Some(level) = &raw.log.level {
        if tracing_subscriber::EnvFilter::try_new(level).is_err() {
            issues.push(Issue::new(
                "log.level".into(),
                format!("{level:?} is not a log level or filter (error, warn, info, debug, trace)"),
            ));
        }
    }
    let pass_timeout = raw.daemon.pass_timeout_seconds;
    if pass_timeout == 0 || pass_timeout > MAX_PASS_TIMEOUT_SECONDS {
        issues.push(Issue::new(
            "daemon.pass_timeout_seconds".into(),
            format!("{pass_timeout} is out of range (1 to {MAX_PASS_TIMEOUT_SECONDS})"),
        ));
    }
    for (key, value) in [
        ("max_disable_percent", raw.safety.max_disable_percent),
        ("max_update_percent", raw.safety.max_update_percent),
    ] {
        if let Some(p) = value {
            if !(0.0..=100.0).contains(&p) {
                issues.push(Issue::new(
                    format!("safety.{key}"),
                    format!("{p} is not a percentage from 0 to 100"),
                ));
            }
        }
    }
    let source = raw.source.validate(base_dir, issues);
    let state = state::parse(raw.state, base_dir, issues);
    let notify = crate::notify::config::parse(raw.notify, base_dir, issues);
    let metrics = raw.metrics.and_then(|m| m.validate(issues));
    if raw.providers.is_empty() {
        issues.push(Issue::new(
            "providers".into(),
            "at least one provider is needed".into(),
        ));
    }
    let ctx = ParseContext { base_dir };
    let mut providers = Vec::new();
    let mut seen = std::collections::BTreeMap::<String, usize>::new();
    for (i, p) in raw.providers.into_iter().enumerate() {
        let at = format!("providers[{i}]");
        let name = p.name.trim().to_string();
        if name.is_empty() {
            issues.push(Issue::new(format!("{at}.name"), "empty".into()));
        } else if !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            issues.push(Issue::new(
                format!("{at}.name"),
                format!("{name:?}: use letters, digits, '-' and '_' only"),
            ));
        } else if let Some(first) = seen.insert(name.clone(), i) {
            issues.push(Issue::new(
                format!("{at}.name"),
                format!("duplicate provider name {name:?} (also providers[{first}])"),
            ));
        }
        // The one URL policy (net.rs): no userinfo, https unless allowed.
        let base_url = match crate::net::EndpointUrl::parse(&p.base_url, p.allow_insecure_http) {
            Ok(u) => Some(u),
            Err(message) => {
                issues.push(Issue::new(format!("{at}.base_url"), message));
                None
            }
        };
        p.scope.validate(&format!("{at}.scope"), issues);
        p.rate_limit.validate(&format!("{at}.rate_limit"), issues);
        for (key, set) in [
            ("groups", p.groups.is_some()),
            ("on_group_empty", p.on_group_empty.is_some()),
        ] {
            if set && !providers::supports_groups(p.kind) {
                issues.push(Issue::new(
                    format!("{at}.{key}"),
                    format!(
                        "{} has no groups: `{key}` is for SCIM providers only",
                        p.kind
                    ),
                ));
            }
        }
        if p.on_group_empty.is_some() && p.groups.is_none() && providers::supports_groups(p.kind) {
            issues.push(Issue::new(
                format!("{at}.on_group_empty"),
                "has no effect without `groups:` (the template giving each user's groups)".into(),
            ));
        }
        let mapping = crate::mapping::AttributeMapping::compile(
            crate::mapping::RawMapping {
                attributes: p.attributes,
                lookups: p.lookups,
                groups: p.groups.filter(|_| providers::supports_groups(p.kind)),
                on_group_empty: p.on_group_empty.unwrap_or_default(),
            },
            providers::settable_fields(p.kind),
            &at,
            issues,
        );
        let settings = providers::parse_settings(p.kind, p.rest, &ctx, &at, issues);
        if let (Some(base_url), Some(settings)) = (base_url, settings) {
            let config = ProviderConfig {
                name,
                base_url,
                scope: p.scope,
                on_remove: p.on_remove,
                on_email_change: p.on_email_change,
                leavers: p.leavers,
                rate_limit: p.rate_limit,
                mapping,
                settings,
            };
            // A vendor that cannot look accounts up has nothing to report: its leavers
            // are disabled by key, blind, or not at all.
            if config.leavers.action == LeaverAction::Report
                && !providers::build(&config).capabilities().lookup
            {
                issues.push(Issue::new(
                    format!("{at}.leavers"),
                    format!(
                        "{} cannot look accounts up, so there is nothing to report: use \
                         `disable` (sent by key once per leaver) or `ignore`",
                        config.kind()
                    ),
                ));
            }
            // Asked to delete where the vendor cannot: say so now, rather than
            // disable (or do nothing) quietly when someone leaves.
            if config.on_remove == OnRemove::Delete
                && !providers::build(&config).capabilities().delete
            {
                issues.push(Issue::new(
                    format!("{at}.on_remove"),
                    format!(
                        "{} has no call to delete an account: use `disable`",
                        config.kind()
                    ),
                ));
            }
            providers.push(config);
        }
    }
    Some(Config {
        path: path.to_path_buf(),
        state,
        schedule: raw.schedule,
        log: LogConfig {
            dir: raw.log.dir.as_ref().map(|d| base_dir.join(d)),
            ..raw.log
        },
        source: source?,
        safety: raw.safety,
        daemon: raw.daemon,
        providers,
        state_retention_days: raw.state_retention_days,
        notify,
        metrics,
    })
}

/// Largest config file read: a config is a few kilobytes.
pub const MAX_CONFIG_BYTES: u64 = 1024 * 1024;

/// Reads the config file: only a regular file (a FIFO or device would block or never
/// end), at most [`MAX_CONFIG_BYTES`], UTF-8.
fn read_bounded(path: &Path) -> std::io::Result<String> {
    let bytes = crate::files::read_regular(path, MAX_CONFIG_BYTES).map_err(|e| match e {
        crate::files::ReadError::Io(e) => e,
        other => std::io::Error::new(std::io::ErrorKind::InvalidInput, other.to_string()),
    })?;
    String::from_utf8(bytes)
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidData, "not UTF-8 text"))
}

/// Parses a cron expression: 5 fields, or 6 with seconds first.
pub fn parse_schedule(expr: &str) -> Result<croner::Cron, croner::errors::CronError> {
    croner::parser::CronParser::builder()
        .seconds(croner::parser::Seconds::Optional)
        .build()
        .parse(expr)
}

/// The `daemon:` section.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DaemonConfig {
    /// Address of /healthz, /readyz and /metrics.
    pub listen: std::net::SocketAddr,
    /// Each tick is delayed by a random 0..jitter seconds, so that many instances do
    /// not reach a vendor at the same second.
    pub jitter_seconds: u64,
    /// /healthz answers 503 after this many failed passes in a row.
    pub unhealthy_after: u32,
    /// On SIGTERM, how long the pass in flight may take to finish its operations.
    pub stop_timeout_seconds: u64,
    /// A pass running longer than this is stopped like on SIGTERM (in-flight
    /// operations finish, nothing new starts) and recorded as `timeout`; one still not
    /// done `stop_timeout_seconds` later is abandoned (its journal resolves it).
    pub pass_timeout_seconds: u64,
}

/// Most a daemon pass may be allowed to run: one week.
pub const MAX_PASS_TIMEOUT_SECONDS: u64 = 7 * 24 * 3600;

impl Default for DaemonConfig {
    fn default() -> Self {
        DaemonConfig {
            listen: std::net::SocketAddr::from(([127, 0, 0, 1], 9898)),
            jitter_seconds: 0,
            unhealthy_after: 3,
            stop_timeout_seconds: 30,
            pass_timeout_seconds: 3600,
        }
    }
}

/// Deserialises a vendor's settings map into its typed struct (`deny_unknown_fields`),
/// pushing any error with its full key path.
pub(crate) fn parse_vendor<T: serde::de::DeserializeOwned>(
    raw: serde_json::Map<String, Value>,
    path: &str,
    issues: &mut Vec<Issue>,
) -> Option<T> {
    match serde_path_to_error::deserialize(Value::Object(raw)) {
        Ok(v) => Some(v),
        Err(e) => {
            let inner = e.path().to_string();
            let at = if inner == "." {
                path.to_string()
            } else {
                secret::join(path, &inner)
            };
            issues.push(Issue::new(at, e.into_inner().to_string()));
            None
        }
    }
}

#[cfg(test)]
mod tests;
