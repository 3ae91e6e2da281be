//! hesh: settings, the mapping from a source user to a hesh user, and its limits.
//!
//! hesh has create (single and batch), update (PUT, matched by email *or* phone),
//! disable (PATCH by external_user_id) and no read call at all: the snapshot is the only
//! memory of what hesh holds. Re-enabling is an update with `status: Active`.

pub mod client;
pub mod requests;

use secrecy::SecretString;
use serde::Deserialize;

use crate::mapping::AttributeMapping;
use crate::config::{parse_vendor, secret, Issue, ParseContext, ProviderConfig};
use crate::plan::Operation;
use crate::providers::Mapping;
use crate::providers::call::{BoxFuture, JsonAnswers, OpResult, Transport};
use crate::providers::request::{Request, REDACTED};
use crate::providers::{
    changed_fields, check_len, Capabilities, Provider, ProviderInfo, ProviderType, Record,
    StoredRecord,
};
use crate::user::User;

/// Default and largest accepted `batch_size`.
pub const DEFAULT_BATCH_SIZE: usize = 100;
const MAX_BATCH_SIZE: usize = 1000;

#[derive(Debug, Clone)]
pub struct Settings {
    pub api_key: SecretString,
    pub tenant_id: uuid::Uuid,
    pub batch_size: usize,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    tenant_id: String,
    #[serde(default)]
    batch_size: Option<usize>,
}

impl Settings {
    pub(crate) fn parse(
        mut raw: serde_json::Map<String, serde_json::Value>,
        ctx: &ParseContext<'_>,
        path: &str,
        issues: &mut Vec<Issue>,
    ) -> Option<Settings> {
        let api_key = secret::take_secret(&mut raw, "api_key", ctx.base_dir, path, true, issues);
        let r: Raw = parse_vendor(raw, path, issues)?;
        let tenant_id = match uuid::Uuid::parse_str(r.tenant_id.trim()) {
            Ok(u) => Some(u),
            Err(_) => {
                issues.push(Issue::new(
                    secret::join(path, "tenant_id"),
                    format!("{:?} is not a UUID", r.tenant_id),
                ));
                None
            }
        };
        let batch_size = r.batch_size.unwrap_or(DEFAULT_BATCH_SIZE);
        if batch_size == 0 || batch_size > MAX_BATCH_SIZE {
            issues.push(Issue::new(
                secret::join(path, "batch_size"),
                format!("{batch_size} is out of range (1 to {MAX_BATCH_SIZE})"),
            ));
            return None;
        }
        Some(Settings {
            api_key: api_key?,
            tenant_id: tenant_id?,
            batch_size,
        })
    }
}

/// The fields a mapping may set (`attributes:`); the key and the email keep their rules.
pub const SETTABLE: &[&str] = &["first_name", "last_name", "phone"];

pub struct Hesh {
    info: ProviderInfo,
    mapping: AttributeMapping,
    batch_size: usize,
    tenant_id: uuid::Uuid,
    api_key: SecretString,
}

impl Hesh {
    pub fn new(config: &ProviderConfig, settings: Settings) -> Self {
        Hesh {
            info: ProviderInfo {
                name: config.name.clone(),
                provider_type: ProviderType::Hesh,
                capabilities: capabilities(settings.batch_size),
            },
            mapping: config.mapping.clone(),
            batch_size: settings.batch_size,
            tenant_id: settings.tenant_id,
            api_key: settings.api_key,
        }
    }
}

/// What hesh can do; `batch_size` is the configured batch-create size.
pub(crate) fn capabilities(batch_size: usize) -> Capabilities {
    Capabilities {
        create: true,
        batch_create: Some(batch_size),
        // The PUT updates these; email only through a phone match (check_update).
        updatable: &[
            "external_user_id",
            "email",
            "first_name",
            "last_name",
            "phone",
        ],
        disable: true,
        enable: true,
        delete: false,
        email_field: "email",
        lookup: false,
        list: false,
    }
}

/// Maps a user to hesh's `PublicUserRequestDto` fields, enforcing its schema limits.
pub fn map_user(user: &User) -> Result<Record, String> {
    map_with(user, &AttributeMapping::default())
}

/// [`map_user`] with the provider's attribute mapping over the built-in rules; the
/// limits apply to the mapped values.
pub fn map_with(user: &User, mapping: &AttributeMapping) -> Result<Record, String> {
    let v = ProviderType::Hesh;
    let record = Record::new()
        .with("external_user_id", Some(user.external_id.clone()))
        .with("email", Some(user.email.clone()))
        .with("first_name", Some(user.first_name.clone()))
        .with("last_name", Some(user.last_name.clone()))
        .with("phone", user.phone.clone());
    let record = mapping.apply(user, record)?;
    check_len(v, "first_name", record.get("first_name").unwrap_or_default(), 1, 10)?;
    check_len(v, "last_name", record.get("last_name").unwrap_or_default(), 1, 100)?;
    if let Some(p) = record.get("phone") {
        check_len(v, "phone", p, 0, 50)?;
    }
    Ok(record)
}

impl Mapping for Hesh {
    fn info(&self) -> &ProviderInfo {
        &self.info
    }

    fn map_user(&self, user: &User) -> Result<Record, String> {
        map_with(user, &self.mapping)
    }

    /// hesh matches an update by email or phone: a new email can only be matched
    /// through an unchanged phone number.
    fn check_update(&self, old: &StoredRecord, new: &Record) -> Result<(), String> {
        let changed = changed_fields(old, new);
        if changed.contains(&"email") {
            let phone_kept = old.get("phone").is_some() && old.get("phone") == new.get("phone");
            if !phone_kept {
                return Err(
                    "hesh matches updates by email or phone: an email change needs an unchanged phone number"
                        .into(),
                );
            }
        }
        Ok(())
    }
}

impl Provider for Hesh {
    fn requests(&self, ops: &[Operation]) -> Vec<Request> {
        requests::build(ops, self.batch_size)
    }

    fn headers(&self) -> Vec<(&'static str, String)> {
        vec![
            ("x-api-key", REDACTED.into()),
            ("x-tenant-id", self.tenant_id.to_string()),
        ]
    }

    fn auth_headers(&self) -> Vec<(&'static str, SecretString)> {
        vec![
            ("x-api-key", self.api_key.clone()),
            (
                "x-tenant-id",
                SecretString::from(self.tenant_id.to_string()),
            ),
        ]
    }

    fn error_message(&self, body: &serde_json::Value) -> Option<String> {
        client::error_message(body)
    }

    fn units(&self, ops: &[Operation]) -> Vec<Vec<usize>> {
        client::units(ops, self.batch_size)
    }

    fn healthcheck(&self) -> Result<Vec<Request>, &'static str> {
        Err("hesh's public API has no read: it cannot be checked without a write")
    }

    fn apply<'a>(
        &'a self,
        transport: &'a dyn Transport,
        ops: &'a [&'a Operation],
    ) -> BoxFuture<'a, Vec<OpResult>> {
        Box::pin(async move { client::apply(&JsonAnswers(transport), ops).await })
    }
}

#[cfg(test)]
mod tests;
