//! The `source:` section: where the HR user list comes from and how its columns map to
//! the canonical user.

use std::path::PathBuf;

use serde::Deserialize;

use super::Issue;

/// `source:` as written in the YAML.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSource {
    #[serde(rename = "type")]
    pub kind: SourceType,
    /// csv / json: the file.
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
    /// scim: the service's base URL (`/Users` is read below it).
    #[serde(default)]
    pub url: Option<String>,
    /// scim: the bearer token, as `${ENV}` (or `bearer_token_file`).
    #[serde(default)]
    pub bearer_token: Option<super::scim_source::RawSecret>,
    #[serde(default)]
    pub bearer_token_file: Option<PathBuf>,
    /// scim: a SCIM filter, e.g. `active eq true`.
    #[serde(default)]
    pub filter: Option<String>,
    /// scim: users per page (`count`).
    #[serde(default)]
    pub page_size: Option<usize>,
    /// scim: per-request timeout.
    #[serde(default)]
    pub timeout_seconds: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceType {
    Csv,
    Json,
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

/// The validated `source:` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceConfig {
    pub format: SourceFormat,
    /// Resolved against the config file's folder.
    pub path: PathBuf,
    pub fields: FieldMap,
    pub status: StatusRule,
    pub provision_days_before_start: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceFormat {
    Csv { delimiter: u8 },
    Json { array_field: Option<String> },
    Scim(super::scim_source::ScimSource),
}

impl RawSource {
    pub(crate) fn validate(
        self,
        base_dir: &std::path::Path,
        issues: &mut Vec<Issue>,
    ) -> Option<SourceConfig> {
        let before = issues.len();
        if self.kind != SourceType::Scim {
            super::scim_source::refuse_outside_scim(&self, issues);
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
                SourceFormat::Csv { delimiter }
            }
            SourceType::Json => {
                if self.delimiter.is_some() {
                    issues.push(Issue::new(
                        "source.delimiter".into(),
                        "only for type: csv".into(),
                    ));
                }
                SourceFormat::Json {
                    array_field: self.array_field.clone(),
                }
            }
            SourceType::Scim => {
                for (key, given) in [
                    ("path", self.path.is_some()),
                    ("delimiter", self.delimiter.is_some()),
                    ("array_field", self.array_field.is_some()),
                ] {
                    if given {
                        issues.push(Issue::new(
                            format!("source.{key}"),
                            "not for type: scim (it reads `url`)".into(),
                        ));
                    }
                }
                match super::scim_source::validate(&self, base_dir, issues) {
                    Some(s) => SourceFormat::Scim(s),
                    None => return None,
                }
            }
        };
        let path = match (&self.path, self.kind) {
            (Some(p), _) => base_dir.join(p),
            (None, SourceType::Scim) => PathBuf::new(),
            (None, _) => {
                issues.push(Issue::new(
                    "source.path".into(),
                    "missing: the file to read".into(),
                ));
                PathBuf::new()
            }
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
            format,
            path,
            fields,
            status,
            provision_days_before_start: self.provision_days_before_start,
        })
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
