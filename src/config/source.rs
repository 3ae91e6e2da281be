//! The `source:` section: where the HR user list comes from and how its columns map to
//! the canonical user.

use std::path::PathBuf;

use serde::Deserialize;

use super::http_source::{HttpSourceConfig, Pagination, RawHttp};
use super::Issue;

/// `source:` as written in the YAML.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSource {
    #[serde(rename = "type")]
    pub kind: SourceType,
    /// File sources only (required there).
    #[serde(default)]
    pub path: Option<PathBuf>,
    /// CSV only: one character, default `,`.
    #[serde(default)]
    pub delimiter: Option<String>,
    /// JSON only: dotted path to the records array when the document is an object.
    #[serde(default)]
    pub array_field: Option<String>,
    #[serde(default)]
    pub fields: FieldMap,
    #[serde(default)]
    pub status: StatusRule,
    #[serde(default)]
    pub provision_days_before_start: u32,
    // HTTP only (see `http_source.rs`).
    #[serde(default)]
    pub url: Option<String>,
    /// Kept as a map: its secrets go through `take_secret` (`*_file` paths).
    #[serde(default)]
    pub auth: Option<serde_json::Map<String, serde_json::Value>>,
    #[serde(default)]
    pub records: Option<String>,
    #[serde(default)]
    pub pagination: Option<Pagination>,
    #[serde(default)]
    pub max_pages: Option<u32>,
    #[serde(default)]
    pub timeout_seconds: Option<u64>,
    #[serde(default)]
    pub max_attempts: Option<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceType {
    Csv,
    Json,
    Http,
}

/// Which source column holds each canonical field. Defaults to the canonical names.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
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
}

impl RawSource {
    pub(crate) fn validate(
        self,
        base_dir: &std::path::Path,
        issues: &mut Vec<Issue>,
    ) -> Option<SourceConfig> {
        let before = issues.len();
        let http = RawHttp {
            url: self.url,
            auth: self.auth,
            records: self.records,
            pagination: self.pagination,
            max_pages: self.max_pages,
            timeout_seconds: self.timeout_seconds,
            max_attempts: self.max_attempts,
        };
        if self.kind != SourceType::Http {
            for key in http.present() {
                issues.push(Issue::new(
                    format!("source.{key}"),
                    "only for type: http".into(),
                ));
            }
            if self.path.is_none() {
                issues.push(Issue::new(
                    "source.path".into(),
                    "missing: the export file to read".into(),
                ));
            }
        }
        let format = match self.kind {
            SourceType::Csv => {
                if self.array_field.is_some() {
                    issues.push(Issue::new(
                        "source.array_field".into(),
                        "only for type: json".into(),
                    ));
                }
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
            SourceType::Json => {
                if self.delimiter.is_some() {
                    issues.push(Issue::new(
                        "source.delimiter".into(),
                        "only for type: csv".into(),
                    ));
                }
                Some(SourceFormat::Json {
                    array_field: self.array_field,
                })
            }
            SourceType::Http => {
                let file_keys = [
                    ("path", self.path.is_some()),
                    ("delimiter", self.delimiter.is_some()),
                    ("array_field", self.array_field.is_some()),
                ];
                for (key, _) in file_keys.into_iter().filter(|(_, set)| *set) {
                    let hint = if key == "array_field" {
                        "only for type: json; use `records:` (a JSON pointer such as /data/users)"
                    } else {
                        "only for file sources (type: csv or json)"
                    };
                    issues.push(Issue::new(format!("source.{key}"), hint.into()));
                }
                http.validate(base_dir, issues)
                    .map(|h| SourceFormat::Http(Box::new(h)))
            }
        };
        let named = [
            ("source.fields.external_id", &self.fields.external_id),
            ("source.fields.email", &self.fields.email),
            ("source.fields.first_name", &self.fields.first_name),
            ("source.fields.last_name", &self.fields.last_name),
        ];
        for (path, col) in named {
            if col.trim().is_empty() {
                issues.push(Issue::new(path.into(), "column name is empty".into()));
            }
        }
        if self.status.field.is_some() && self.status.active_values.is_empty() {
            issues.push(Issue::new(
                "source.status.active_values".into(),
                "empty: no user could ever be active".into(),
            ));
        }
        if chrono::NaiveDate::parse_from_str("2026-01-02", &self.status.date_format).is_err()
            && chrono::NaiveDate::parse_from_str("02/01/2026", &self.status.date_format).is_err()
            && (self.status.date_format.is_empty() || !self.status.date_format.contains('%'))
        {
            issues.push(Issue::new(
                "source.status.date_format".into(),
                format!(
                    "{:?} is not a chrono date format such as %Y-%m-%d",
                    self.status.date_format
                ),
            ));
        }
        if issues.len() > before {
            return None;
        }
        Some(SourceConfig {
            format: format?,
            path: self.path.map(|p| base_dir.join(p)).unwrap_or_default(),
            fields: self.fields,
            status: self.status,
            provision_days_before_start: self.provision_days_before_start,
        })
    }
}
