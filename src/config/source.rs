//! The `source:` section: where the HR user list comes from and how its columns map to
//! the canonical user.

use std::path::PathBuf;

use serde::Deserialize;

use super::http_source::{
    HttpSourceConfig, Pagination, RawHttp, DEFAULT_MAX_PAGES, DEFAULT_MAX_PAGE_BYTES,
    DEFAULT_MAX_USERS,
};
use super::Issue;

/// `source:` as written in the YAML.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSource {
    #[serde(rename = "type")]
    pub kind: SourceType,
    /// File sources (csv, json): the file.
    #[serde(default)]
    pub path: Option<PathBuf>,
    /// CSV only: one character, default `,`.
    #[serde(default)]
    pub delimiter: Option<String>,
    /// JSON only: dotted path to the records array when the document is an object.
    #[serde(default)]
    pub array_field: Option<String>,
    /// Default: the canonical names (csv, json) or SCIM's attributes (scim); keys
    /// left out keep their default. Kept as JSON until the type is known.
    #[serde(default)]
    pub fields: Option<serde_json::Value>,
    /// Default: no status column (csv, json) or SCIM's `active` (scim).
    #[serde(default)]
    pub status: Option<StatusRule>,
    #[serde(default)]
    pub provision_days_before_start: u32,
    /// http and scim: the first page's URL (http) or the service's base URL (scim:
    /// `/Users` is read below it).
    #[serde(default)]
    pub url: Option<String>,
    /// http and scim: per-request timeout.
    #[serde(default)]
    pub timeout_seconds: Option<u64>,
    // http only (see `http_source.rs`).
    /// Kept as a map: its secrets go through `take_secret` (`*_file` paths).
    #[serde(default)]
    pub auth: Option<serde_json::Map<String, serde_json::Value>>,
    #[serde(default)]
    pub records: Option<String>,
    #[serde(default)]
    pub pagination: Option<Pagination>,
    #[serde(default)]
    pub max_attempts: Option<u32>,
    // http and scim: the outbound keys (see [`RawSource::network`]).
    #[serde(default)]
    pub allow_insecure_http: Option<bool>,
    #[serde(default)]
    pub max_pages: Option<u32>,
    #[serde(default)]
    pub max_users: Option<u64>,
    #[serde(default)]
    pub max_page_bytes: Option<u64>,
    // scim only (see `scim_source.rs`).
    /// The bearer token, as `${ENV}` (or `bearer_token_file`).
    #[serde(default)]
    pub bearer_token: Option<super::scim_source::RawSecret>,
    #[serde(default)]
    pub bearer_token_file: Option<PathBuf>,
    /// A SCIM filter, e.g. `active eq true`.
    #[serde(default)]
    pub filter: Option<String>,
    /// Users per page (`count`).
    #[serde(default)]
    pub page_size: Option<usize>,
    // File sources only: see [`FileLimits`].
    #[serde(default)]
    pub max_field_bytes: Option<usize>,
    #[serde(default)]
    pub max_record_bytes: Option<usize>,
}

/// The validated keys both network sources share (see [`RawSource::network`]); `url`
/// is `None` when it was missing or refused (an issue says why).
#[derive(Debug, Clone, Default)]
pub(crate) struct NetworkKeys {
    pub url: Option<crate::net::EndpointUrl>,
    pub max_pages: u32,
    pub max_users: usize,
    pub max_page_bytes: usize,
}

/// Most `source.max_page_bytes` may be: 1 GiB.
pub const MAX_PAGE_BYTES_LIMIT: u64 = 1024 * 1024 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceType {
    Csv,
    Json,
    /// A JSON API over HTTP, paged.
    Http,
    /// `/Users` of a SCIM 2.0 service.
    Scim,
}

/// Which source column holds each canonical field. Defaults to the canonical names.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct FieldMap {
    pub external_id: String,
    pub email: String,
    pub first_name: String,
    pub last_name: String,
    pub phone: Option<String>,
}

impl Default for FieldMap {
    fn default() -> Self {
        FieldMap {
            external_id: "external_id".into(),
            email: "email".into(),
            first_name: "first_name".into(),
            last_name: "last_name".into(),
            phone: Some("phone".into()),
        }
    }
}

impl FieldMap {
    /// The column names that feed canonical fields (not kept as attributes).
    pub fn columns(&self) -> Vec<&str> {
        let mut v = vec![
            self.external_id.as_str(),
            self.email.as_str(),
            self.first_name.as_str(),
            self.last_name.as_str(),
        ];
        if let Some(p) = &self.phone {
            v.push(p);
        }
        v
    }
}

/// How a user's status is read: a status column and the values that mean active, plus
/// optional start and termination date columns that make it time-aware.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StatusRule {
    /// Status column; without one, every listed user is active (dates still apply).
    pub field: Option<String>,
    /// Values of `field` that mean active, compared case-insensitively.
    pub active_values: Vec<String>,
    pub start_date_field: Option<String>,
    pub termination_date_field: Option<String>,
    /// chrono format of the date columns.
    pub date_format: String,
}

impl Default for StatusRule {
    fn default() -> Self {
        StatusRule {
            field: None,
            active_values: vec!["active".into()],
            start_date_field: None,
            termination_date_field: None,
            date_format: "%Y-%m-%d".into(),
        }
    }
}

/// How much of a file source one value or one record may take, so that no export (a
/// runaway quote, `/dev/zero`-like content, a 200 MB array in one record) can make the
/// process grow without end. Over a limit, the whole pass fails, naming the limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileLimits {
    /// `source.max_field_bytes`: one CSV field or JSON value (an array as its JSON
    /// text). 64 KiB is a hundred times any real name, address or note.
    pub max_field_bytes: usize,
    /// `source.max_record_bytes`: one CSV record or one element of a JSON users array,
    /// as written in the file. 1 MiB holds hundreds of attributes. Enforced while
    /// reading (`source/budget.rs`), so an endless record is never buffered.
    pub max_record_bytes: usize,
}

impl FileLimits {
    pub const DEFAULT_FIELD_BYTES: usize = 64 * 1024;
    pub const DEFAULT_RECORD_BYTES: usize = 1024 * 1024;
    /// Bounds of both keys: below 1 KiB no real export fits, above 256 MiB a limit
    /// no longer protects anything.
    const RANGE: std::ops::RangeInclusive<usize> = 1024..=256 * 1024 * 1024;
}

impl Default for FileLimits {
    fn default() -> Self {
        FileLimits {
            max_field_bytes: Self::DEFAULT_FIELD_BYTES,
            max_record_bytes: Self::DEFAULT_RECORD_BYTES,
        }
    }
}

/// The validated `source:` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceConfig {
    pub format: SourceFormat,
    /// The file of a file source, resolved against the config file's folder; empty
    /// for a network source (`type: http`), which has its URL in `format`.
    pub path: PathBuf,
    pub fields: FieldMap,
    pub status: StatusRule,
    pub provision_days_before_start: u32,
    /// File sources only; the defaults elsewhere.
    pub limits: FileLimits,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceFormat {
    Csv {
        delimiter: u8,
    },
    Json {
        array_field: Option<String>,
    },
    /// Boxed: much larger than the file variants.
    Http(Box<HttpSourceConfig>),
    Scim(super::scim_source::ScimSource),
}

impl SourceFormat {
    /// The URL a network source reads (`source.url`); none for files.
    pub fn endpoint(&self) -> Option<&crate::net::EndpointUrl> {
        match self {
            SourceFormat::Http(h) => Some(&h.url),
            SourceFormat::Scim(s) => Some(&s.url),
            SourceFormat::Csv { .. } | SourceFormat::Json { .. } => None,
        }
    }
}

impl RawSource {
    /// Each type's own keys, refused (with their key path) on the others.
    fn refuse_keys_of_other_types(&self, issues: &mut Vec<Issue>) {
        use SourceType::{Csv, Http, Json, Scim};
        let keys: [(&str, bool, &[SourceType], &str); 19] = [
            ("path", self.path.is_some(), &[Csv, Json], "only for file sources (type: csv or json)"),
            ("delimiter", self.delimiter.is_some(), &[Csv], "only for type: csv"),
            ("array_field", self.array_field.is_some(), &[Json], "only for type: json (for type: http, use `records:`, a JSON pointer such as /data/users)"),
            ("url", self.url.is_some(), &[Http, Scim], "only for type: http or scim"),
            ("timeout_seconds", self.timeout_seconds.is_some(), &[Http, Scim], "only for type: http or scim"),
            ("auth", self.auth.is_some(), &[Http], "only for type: http"),
            ("records", self.records.is_some(), &[Http], "only for type: http"),
            ("pagination", self.pagination.is_some(), &[Http], "only for type: http"),
            ("max_pages", self.max_pages.is_some(), &[Http, Scim], "only for type: http or scim"),
            ("max_users", self.max_users.is_some(), &[Http, Scim], "only for type: http or scim"),
            ("max_page_bytes", self.max_page_bytes.is_some(), &[Http, Scim], "only for type: http or scim"),
            ("allow_insecure_http", self.allow_insecure_http.is_some(), &[Http, Scim], "only for type: http or scim"),
            ("max_attempts", self.max_attempts.is_some(), &[Http], "only for type: http"),
            ("bearer_token", self.bearer_token.is_some(), &[Scim], "only for type: scim (type: http takes `auth: { bearer_token: … }`)"),
            ("bearer_token_file", self.bearer_token_file.is_some(), &[Scim], "only for type: scim (type: http takes `auth: { bearer_token_file: … }`)"),
            ("filter", self.filter.is_some(), &[Scim], "only for type: scim"),
            ("page_size", self.page_size.is_some(), &[Scim], "only for type: scim"),
            ("max_field_bytes", self.max_field_bytes.is_some(), &[Csv, Json], "only for file sources (type: csv or json); a network source's pages are bounded by max_page_bytes"),
            ("max_record_bytes", self.max_record_bytes.is_some(), &[Csv, Json], "only for file sources (type: csv or json); a network source's pages are bounded by max_page_bytes"),
        ];
        for (key, given, owners, message) in keys {
            if given && !owners.contains(&self.kind) {
                issues.push(Issue::new(format!("source.{key}"), message.into()));
            }
        }
    }

    /// The keys both network sources share: `url`, checked by the outbound policy
    /// under `allow_insecure_http` (`missing_url` says why it is needed), and the
    /// bounds of one read (`max_pages`, `max_users`, `max_page_bytes`).
    pub(crate) fn network(&self, missing_url: &str, issues: &mut Vec<Issue>) -> NetworkKeys {
        let allow_insecure_http = self.allow_insecure_http.unwrap_or(false);
        let url = match self.url.as_deref().map(str::trim) {
            None | Some("") => {
                issues.push(Issue::new("source.url".into(), missing_url.into()));
                None
            }
            Some(text) => match crate::net::EndpointUrl::parse(text, allow_insecure_http) {
                Ok(url) => Some(url),
                Err(message) => {
                    issues.push(Issue::new("source.url".into(), message));
                    None
                }
            },
        };
        let max_pages = self.max_pages.unwrap_or(DEFAULT_MAX_PAGES);
        if max_pages == 0 {
            issues.push(Issue::new(
                "source.max_pages".into(),
                "must be at least 1".into(),
            ));
        }
        let max_users = match self.max_users {
            None => DEFAULT_MAX_USERS,
            Some(n) if (1..=u64::from(u32::MAX)).contains(&n) => {
                usize::try_from(n).unwrap_or(usize::MAX)
            }
            Some(n) => {
                issues.push(Issue::new(
                    "source.max_users".into(),
                    format!("{n} must be a whole number, at least 1"),
                ));
                DEFAULT_MAX_USERS
            }
        };
        let max_page_bytes = match self.max_page_bytes {
            None => DEFAULT_MAX_PAGE_BYTES,
            Some(n) if (1..=MAX_PAGE_BYTES_LIMIT).contains(&n) => {
                usize::try_from(n).unwrap_or(usize::MAX)
            }
            Some(n) => {
                issues.push(Issue::new(
                    "source.max_page_bytes".into(),
                    format!("{n} is out of range (1 to {MAX_PAGE_BYTES_LIMIT} bytes)"),
                ));
                DEFAULT_MAX_PAGE_BYTES
            }
        };
        NetworkKeys {
            url,
            max_pages,
            max_users,
            max_page_bytes,
        }
    }

    pub(crate) fn validate(
        self,
        base_dir: &std::path::Path,
        issues: &mut Vec<Issue>,
    ) -> Option<SourceConfig> {
        let before = issues.len();
        self.refuse_keys_of_other_types(issues);
        let format = match self.kind {
            SourceType::Csv => {
                let delimiter = match self.delimiter.as_deref() {
                    None => b',',
                    Some("\\t") | Some("\t") => b'\t',
                    Some(d) if d.len() == 1 && d.is_ascii() => d.as_bytes()[0],
                    Some(d) => {
                        issues.push(Issue::new(
                            "source.delimiter".into(),
                            format!("expected one ASCII character, got {d:?}"),
                        ));
                        b','
                    }
                };
                Some(SourceFormat::Csv { delimiter })
            }
            SourceType::Json => Some(SourceFormat::Json {
                array_field: self.array_field.clone(),
            }),
            SourceType::Http => {
                let http = RawHttp {
                    network: self.network(
                        "missing: the URL of the first page is needed for type: http",
                        issues,
                    ),
                    auth: self.auth.clone(),
                    records: self.records.clone(),
                    pagination: self.pagination.clone(),
                    timeout_seconds: self.timeout_seconds,
                    max_attempts: self.max_attempts,
                };
                http.validate(base_dir, issues)
                    .map(|h| SourceFormat::Http(Box::new(h)))
            }
            SourceType::Scim => {
                super::scim_source::validate(&self, base_dir, issues).map(SourceFormat::Scim)
            }
        };
        let path = match (&self.path, self.kind) {
            (Some(p), SourceType::Csv | SourceType::Json) => base_dir.join(p),
            (None, SourceType::Csv | SourceType::Json) => {
                issues.push(Issue::new(
                    "source.path".into(),
                    "missing: the export file to read".into(),
                ));
                PathBuf::new()
            }
            // Refused above for network sources.
            (_, SourceType::Http | SourceType::Scim) => PathBuf::new(),
        };
        let (default_fields, default_status) = match self.kind {
            SourceType::Scim => (
                super::scim_source::default_fields(),
                super::scim_source::default_status(),
            ),
            _ => (FieldMap::default(), StatusRule::default()),
        };
        let fields = match self.fields.clone() {
            None => default_fields,
            Some(given) => merge_fields(default_fields, given, issues)?,
        };
        let limits = self.limits(issues);
        let status = self.status.unwrap_or(default_status);
        let named = [
            ("source.fields.external_id", &fields.external_id),
            ("source.fields.email", &fields.email),
            ("source.fields.first_name", &fields.first_name),
            ("source.fields.last_name", &fields.last_name),
        ];
        for (path, col) in named {
            if col.trim().is_empty() {
                issues.push(Issue::new(path.into(), "column name is empty".into()));
            }
        }
        if status.field.is_some() && status.active_values.is_empty() {
            issues.push(Issue::new(
                "source.status.active_values".into(),
                "empty: no user could ever be active".into(),
            ));
        }
        if chrono::NaiveDate::parse_from_str("2026-01-02", &status.date_format).is_err()
            && chrono::NaiveDate::parse_from_str("02/01/2026", &status.date_format).is_err()
            && (status.date_format.is_empty() || !status.date_format.contains('%'))
        {
            issues.push(Issue::new(
                "source.status.date_format".into(),
                format!(
                    "{:?} is not a chrono date format such as %Y-%m-%d",
                    status.date_format
                ),
            ));
        }
        if issues.len() > before {
            return None;
        }
        Some(SourceConfig {
            format: format?,
            path,
            fields,
            status,
            provision_days_before_start: self.provision_days_before_start,
            limits,
        })
    }

    /// `max_field_bytes` and `max_record_bytes`, each in [`FileLimits::RANGE`], a field
    /// no larger than a record.
    fn limits(&self, issues: &mut Vec<Issue>) -> FileLimits {
        let mut limits = FileLimits::default();
        let given = [
            (
                "source.max_field_bytes",
                self.max_field_bytes,
                &mut limits.max_field_bytes,
            ),
            (
                "source.max_record_bytes",
                self.max_record_bytes,
                &mut limits.max_record_bytes,
            ),
        ];
        for (key, value, slot) in given {
            let Some(value) = value else { continue };
            if FileLimits::RANGE.contains(&value) {
                *slot = value;
            } else {
                issues.push(Issue::new(
                    key.into(),
                    format!(
                        "{value} is out of range: {} to {} bytes",
                        FileLimits::RANGE.start(),
                        FileLimits::RANGE.end()
                    ),
                ));
            }
        }
        if limits.max_field_bytes > limits.max_record_bytes {
            issues.push(Issue::new(
                "source.max_field_bytes".into(),
                format!(
                    "{} is larger than source.max_record_bytes ({}): a field is part of a record",
                    limits.max_field_bytes, limits.max_record_bytes
                ),
            ));
        }
        limits
    }
}

/// The given `fields:` over the source type's defaults; errors name `source.fields.<key>`.
fn merge_fields(
    defaults: FieldMap,
    given: serde_json::Value,
    issues: &mut Vec<Issue>,
) -> Option<FieldMap> {
    let serde_json::Value::Object(given) = given else {
        issues.push(Issue::new(
            "source.fields".into(),
            "expected a mapping of canonical field to column".into(),
        ));
        return None;
    };
    let mut merged = match serde_json::to_value(defaults) {
        Ok(serde_json::Value::Object(m)) => m,
        _ => serde_json::Map::new(),
    };
    merged.extend(given);
    match serde_path_to_error::deserialize(serde_json::Value::Object(merged)) {
        Ok(f) => Some(f),
        Err(e) => {
            let inner = e.path().to_string();
            let at = if inner == "." {
                "source.fields".to_string()
            } else {
                format!("source.fields.{inner}")
            };
            issues.push(Issue::new(at, e.into_inner().to_string()));
            None
        }
    }
}
