//! The keys of `source: { type: scim }`: a SCIM 2.0 service's base URL, its bearer
//! token (a secret: `${ENV}` or `bearer_token_file`), an optional filter, the page
//! size and the timeout — and the field mapping and status rule a SCIM source uses
//! when none is given.

use std::path::Path;

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use super::source::RawSource;
use super::{secret, FieldMap, Issue, StatusRule};

/// Users asked for per page unless `page_size` says.
pub const DEFAULT_PAGE_SIZE: usize = 100;
/// Most users asked for per page.
pub const MAX_PAGE_SIZE: usize = 1000;
pub const DEFAULT_TIMEOUT_SECONDS: u64 = 30;

/// A secret as read from the YAML (already `${ENV}`-expanded): never printed.
#[derive(Clone, Deserialize)]
#[serde(transparent)]
pub struct RawSecret(String);

impl std::fmt::Debug for RawSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(super::super::providers::request::REDACTED)
    }
}

/// A secret of the source, comparable so that the config stays `PartialEq`.
#[derive(Clone, Debug)]
pub struct SourceSecret(pub SecretString);

impl PartialEq for SourceSecret {
    fn eq(&self, other: &Self) -> bool {
        self.0.expose_secret() == other.0.expose_secret()
    }
}
impl Eq for SourceSecret {}

/// The validated SCIM source settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScimSource {
    /// The service's base URL, e.g. `https://idp.example/scim/v2`.
    /// Checked by the outbound policy (no userinfo, https unless allowed).
    pub url: crate::net::EndpointUrl,
    pub bearer_token: Option<SourceSecret>,
    pub filter: Option<String>,
    pub page_size: usize,
    pub timeout_seconds: u64,
    /// Most pages one load may read (`source.max_pages`).
    pub max_pages: u32,
    /// Most users one load may read (`source.max_users`).
    pub max_users: usize,
    /// Largest page body read (`source.max_page_bytes`).
    pub max_page_bytes: usize,
}

/// The mapping of a SCIM source's records (see `source/scim.rs` for their keys).
pub fn default_fields() -> FieldMap {
    FieldMap {
        external_id: "externalId".into(),
        email: "email".into(),
        first_name: "givenName".into(),
        last_name: "familyName".into(),
        phone: Some("phone".into()),
    }
}

/// SCIM's `active` decides the status.
pub fn default_status() -> StatusRule {
    StatusRule {
        field: Some("active".into()),
        active_values: vec!["true".into()],
        ..StatusRule::default()
    }
}

pub(super) fn validate(
    raw: &RawSource,
    base_dir: &Path,
    issues: &mut Vec<Issue>,
) -> Option<ScimSource> {
    let before = issues.len();
    let network = raw.network(
        "missing: the SCIM service's base URL (its /Users is read)",
        issues,
    );
    let bearer_token = token(raw, base_dir, issues);
    let page_size = raw.page_size.unwrap_or(DEFAULT_PAGE_SIZE);
    if !(1..=MAX_PAGE_SIZE).contains(&page_size) {
        issues.push(Issue::new(
            "source.page_size".into(),
            format!("{page_size} is out of range (1 to {MAX_PAGE_SIZE})"),
        ));
    }
    let timeout_seconds = raw.timeout_seconds.unwrap_or(DEFAULT_TIMEOUT_SECONDS);
    if timeout_seconds == 0 {
        issues.push(Issue::new(
            "source.timeout_seconds".into(),
            "must be at least 1".into(),
        ));
    }
    let filter = raw.filter.as_ref().map(|f| f.trim().to_string());
    if filter.as_deref() == Some("") {
        issues.push(Issue::new(
            "source.filter".into(),
            "empty: leave it out to read every user".into(),
        ));
    }
    if issues.len() > before {
        return None;
    }
    Some(ScimSource {
        url: network.url?,
        bearer_token,
        filter,
        page_size,
        timeout_seconds,
        max_pages: network.max_pages,
        max_users: network.max_users,
        max_page_bytes: network.max_page_bytes,
    })
}

/// `bearer_token` (expanded `${ENV}`) or `bearer_token_file`; neither means no auth.
fn token(raw: &RawSource, base_dir: &Path, issues: &mut Vec<Issue>) -> Option<SourceSecret> {
    match (&raw.bearer_token, &raw.bearer_token_file) {
        (Some(_), Some(_)) => {
            issues.push(Issue::new(
                "source.bearer_token".into(),
                "give either bearer_token or bearer_token_file, not both".into(),
            ));
            None
        }
        (Some(RawSecret(s)), None) => {
            secret::secret_value(s.clone(), "source.bearer_token", issues).map(SourceSecret)
        }
        (None, Some(file)) => {
            secret::secret_file(&base_dir.join(file), "source.bearer_token_file", issues)
                .map(SourceSecret)
        }
        (None, None) => None,
    }
}
