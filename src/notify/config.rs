//! The `notify:` section: a list of webhooks, each told after a real pass when one of
//! the events it listens `on` happened.
//!
//! A webhook URL is a secret (a Slack incoming-webhook URL carries its token in the
//! path): like an API key it is given as `url: ${ENV_VAR}` or `url_file: path`, never
//! written into the config, registered with the scrubber as it is read, and never
//! printed — not even by `Debug` (see [`WebhookUrl`]).

use std::path::Path;
use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;

use crate::config::secret::{self, join};
use crate::config::Issue;
use crate::net::EndpointUrl;

/// Seconds a webhook may take when the config does not say.
pub const DEFAULT_TIMEOUT_SECONDS: u64 = 10;
/// Most seconds a webhook may be given: a notification must not hold up the daemon's
/// next pass (nor a CronJob's exit) for long.
pub const MAX_TIMEOUT_SECONDS: u64 = 60;

/// What happened in a pass that a webhook may be told of (`notify[].on`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Event {
    /// The pass ended `failed`, `error` or `timeout`.
    Failed,
    /// A safety guard (or a provider removed from the config) stopped a plan.
    Blocked,
    /// A manual action was planned, or the vendor left one for a person.
    Manual,
    /// An operation was quarantined (failed too many passes in a row).
    Quarantined,
    /// A leaver's pre-existing account was disabled (and adopted).
    LeaverDisabled,
}

impl Event {
    /// Every event, in the order messages name them (most urgent first).
    pub const ALL: [Event; 5] = [
        Event::Failed,
        Event::Blocked,
        Event::Manual,
        Event::Quarantined,
        Event::LeaverDisabled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Event::Failed => "failed",
            Event::Blocked => "blocked",
            Event::Manual => "manual",
            Event::Quarantined => "quarantined",
            Event::LeaverDisabled => "leaver_disabled",
        }
    }

    pub fn parse(s: &str) -> Option<Event> {
        Event::ALL.into_iter().find(|e| e.as_str() == s)
    }
}

/// The body a webhook is sent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// `{"format_version": 1, "event": …}`: for programs.
    #[default]
    Json,
    /// `{"text": "…"}` in Slack's mrkdwn: for Slack (and the chat tools that take
    /// Slack's incoming-webhook format).
    Slack,
}

impl Format {
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Json => "json",
            Format::Slack => "slack",
        }
    }
}

/// A checked webhook URL. Its `Debug` never shows it, so a `{:?}` of the config
/// cannot leak it; only [`WebhookUrl::endpoint`] hands it to the HTTP client.
#[derive(Clone)]
pub struct WebhookUrl(EndpointUrl);

impl WebhookUrl {
    pub fn endpoint(&self) -> &EndpointUrl {
        &self.0
    }

    /// `scheme://host[:port]`: what logs may name (the secret is in the path).
    pub fn origin(&self) -> String {
        crate::net::origin(self.0.url())
    }
}

impl std::fmt::Debug for WebhookUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "WebhookUrl({} + {})", self.origin(), crate::redact::MASK)
    }
}

/// One entry of `notify:`.
#[derive(Debug, Clone)]
pub struct Webhook {
    /// `notify[0]`: how logs name it (never by its URL).
    pub key: String,
    pub url: WebhookUrl,
    pub format: Format,
    /// The events that make it fire.
    pub on: Vec<Event>,
    /// The most time all its attempts together may take.
    pub timeout: Duration,
}

/// The keys of an entry besides `url` / `url_file`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWebhook {
    #[serde(default)]
    format: Format,
    #[serde(default)]
    on: Option<Vec<String>>,
    #[serde(default = "default_timeout")]
    timeout_seconds: u64,
    /// Plain http to a non-loopback host is refused unless this is set.
    #[serde(default)]
    allow_insecure_http: bool,
}

fn default_timeout() -> u64 {
    DEFAULT_TIMEOUT_SECONDS
}

/// Events a webhook listens for when it does not say.
pub const DEFAULT_EVENTS: [Event; 2] = [Event::Failed, Event::Blocked];

/// Refuses a webhook URL written into the config: run on the raw tree, before
/// `${ENV}` expansion (as [`secret::check_no_literal_secrets`] is for keys and
/// tokens). The message never repeats the value.
pub fn check_no_literal_url(tree: &Value, issues: &mut Vec<Issue>) {
    let Some(Value::Array(hooks)) = tree.get("notify") else {
        return;
    };
    for (i, hook) in hooks.iter().enumerate() {
        let Some(url) = hook.get("url") else { continue };
        if !matches!(url, Value::String(s) if is_single_env_ref(s)) {
            issues.push(Issue::new(
                format!("notify[{i}].url"),
                "a webhook URL is a secret (a Slack webhook URL carries its token), so a \
                 literal is refused; write `url: ${ENV_VAR}` or `url_file: path/to/file`"
                    .into(),
            ));
        }
    }
}

fn is_single_env_ref(s: &str) -> bool {
    s.trim()
        .strip_prefix("${")
        .and_then(|r| r.strip_suffix('}'))
        .is_some_and(|name| {
            !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        })
}

/// Parses `notify:` (already `${ENV}`-expanded); every problem is an issue at its key
/// path (`notify[1].on[0]`). `base_dir` anchors a relative `url_file`.
pub fn parse(raw: Vec<Value>, base_dir: &Path, issues: &mut Vec<Issue>) -> Vec<Webhook> {
    raw.into_iter()
        .enumerate()
        .filter_map(|(i, v)| parse_one(v, &format!("notify[{i}]"), base_dir, issues))
        .collect()
}

fn parse_one(raw: Value, at: &str, base_dir: &Path, issues: &mut Vec<Issue>) -> Option<Webhook> {
    let Value::Object(mut map) = raw else {
        issues.push(Issue::new(
            at.to_string(),
            "expected a mapping with `url` (or `url_file`), `format` and `on`".into(),
        ));
        return None;
    };
    // Taken first, so that the rest is parsed strictly (unknown keys are errors).
    let secret = secret::take_secret(&mut map, "url", base_dir, at, true, issues);
    let rest: Option<RawWebhook> = crate::config::parse_vendor(map, at, issues);
    let (secret, rest) = (secret?, rest?);
    let url = check_url(&secret, rest.allow_insecure_http, at, issues);
    let on = match &rest.on {
        None => DEFAULT_EVENTS.to_vec(),
        Some(names) => events(names, &join(at, "on"), issues),
    };
    let t = rest.timeout_seconds;
    if t == 0 || t > MAX_TIMEOUT_SECONDS {
        issues.push(Issue::new(
            join(at, "timeout_seconds"),
            format!("{t} is out of range (1 to {MAX_TIMEOUT_SECONDS})"),
        ));
        return None;
    }
    Some(Webhook {
        key: at.to_string(),
        url: url?,
        format: rest.format,
        on,
        timeout: Duration::from_secs(t),
    })
}

/// The URL under the one outbound policy. The messages name what is wrong, never the
/// URL (it is the secret).
fn check_url(
    secret: &secrecy::SecretString,
    allow_insecure_http: bool,
    at: &str,
    issues: &mut Vec<Issue>,
) -> Option<WebhookUrl> {
    use secrecy::ExposeSecret;
    let key = join(at, "url");
    let parsed = url::Url::parse(secret.expose_secret().trim()).map_err(|e| {
        format!("the webhook URL is not a valid URL ({e}); its value is not shown, it is a secret")
    });
    let checked = parsed.and_then(|u| {
        register_parts(&u);
        EndpointUrl::new(u, allow_insecure_http).map_err(|p| p.to_string())
    });
    match checked {
        Ok(u) => Some(WebhookUrl(u)),
        Err(message) => {
            issues.push(Issue::new(key, message));
            None
        }
    }
}

/// Shortest path registered as a secret on its own: shorter ones (`/hook`) are
/// ordinary words more than credentials.
const MIN_SECRET_PATH_CHARS: usize = 8;
/// Shortest last path segment or query value registered on its own: a token is
/// long, while a word such as `services` or `incoming` must not be masked everywhere.
const MIN_SECRET_PART_CHARS: usize = 16;

/// Registers the URL with the scrubber as it is sent (normalised), and the parts a
/// receiver or a proxy may echo without the rest: the path with its query (`no hook
/// at /services/T0/B0/XXXX`), the last path segment and each query value when long
/// enough to be a token.
fn register_parts(url: &url::Url) {
    crate::redact::register(url.as_str());
    let mut path = url.path().to_string();
    if let Some(q) = url.query() {
        path = format!("{path}?{q}");
    }
    if path.chars().count() >= MIN_SECRET_PATH_CHARS {
        crate::redact::register(&path);
    }
    let last = url
        .path_segments()
        .and_then(|mut s| s.next_back())
        .map(str::to_string);
    let values = url.query_pairs().map(|(_, v)| v.into_owned());
    for part in last.into_iter().chain(values) {
        if part.chars().count() >= MIN_SECRET_PART_CHARS {
            crate::redact::register(&part);
        }
    }
}

/// `on:` as events; an unknown name is an issue at its index, with the nearest name.
fn events(names: &[String], at: &str, issues: &mut Vec<Issue>) -> Vec<Event> {
    let mut out = Vec::new();
    for (i, name) in names.iter().enumerate() {
        match Event::parse(name.trim()) {
            Some(e) if !out.contains(&e) => out.push(e),
            Some(_) => {}
            None => {
                let known: Vec<&str> = Event::ALL.iter().map(|e| e.as_str()).collect();
                let near = known
                    .iter()
                    .map(|k| (strsim::jaro_winkler(name, k), *k))
                    .filter(|(score, _)| *score > 0.8)
                    .max_by(|a, b| a.0.total_cmp(&b.0))
                    .map_or_else(String::new, |(_, k)| format!(" (did you mean {k}?)"));
                issues.push(Issue::new(
                    format!("{at}[{i}]"),
                    format!(
                        "{name:?} is not an event{near}; the events are {}",
                        known.join(", ")
                    ),
                ));
            }
        }
    }
    if names.is_empty() {
        issues.push(Issue::new(
            at.to_string(),
            "empty: name at least one event, or leave `on` out for failed and blocked".into(),
        ));
    }
    out
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
