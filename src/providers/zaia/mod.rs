//! zaia: settings, mapping and limits.
//!
//! zaia "external users" are created with six required fields (nullable ones sent as
//! `null`), listed and searched page by page, and updated, blocked (disabled) and
//! unblocked (enabled) with PATCH by zaia's own id.

pub mod client;
pub mod requests;

use secrecy::SecretString;
use serde::Deserialize;

use crate::config::{parse_vendor, secret, Issue, ParseContext, ProviderConfig};
use crate::mapping::AttributeMapping;
use crate::plan::Operation;
use crate::providers::Mapping;
use crate::providers::call::{BoxFuture, CallError, JsonAnswers, OpResult, Transport};
use crate::providers::request::{Request, REDACTED};
use crate::providers::{check_len, Capabilities, Provider, ProviderInfo, ProviderType, Record};
use crate::user::User;

#[derive(Debug, Clone)]
pub struct Settings {
    pub api_key: SecretString,
    pub channel_id: uuid::Uuid,
    pub external_user_group_id: Option<uuid::Uuid>,
    pub tier_id: Option<uuid::Uuid>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    channel_id: String,
    #[serde(default)]
    external_user_group_id: Option<String>,
    #[serde(default)]
    tier_id: Option<String>,
}

fn parse_uuid(value: &str, key: &str, path: &str, issues: &mut Vec<Issue>) -> Option<uuid::Uuid> {
    match uuid::Uuid::parse_str(value.trim()) {
        Ok(u) => Some(u),
        Err(_) => {
            issues.push(Issue::new(
                secret::join(path, key),
                format!("{value:?} is not a UUID"),
            ));
            None
        }
    }
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
        let before = issues.len();
        let channel_id = parse_uuid(&r.channel_id, "channel_id", path, issues);
        let group = r
            .external_user_group_id
            .as_deref()
            .map(|g| parse_uuid(g, "external_user_group_id", path, issues));
        let tier = r
            .tier_id
            .as_deref()
            .map(|t| parse_uuid(t, "tier_id", path, issues));
        if issues.len() > before {
            return None;
        }
        Some(Settings {
            api_key: api_key?,
            channel_id: channel_id?,
            external_user_group_id: group.flatten(),
            tier_id: tier.flatten(),
        })
    }
}

pub struct Zaia {
    info: ProviderInfo,
    settings: Settings,
    mapping: AttributeMapping,
}

/// The fields a mapping may set (`attributes:`); the key (`externalId`) and the email
/// (`identifier`) are how rosterd knows the account, so they keep their rules.
pub const SETTABLE: &[&str] = &["name", "externalUserGroupId", "tierId"];

impl Zaia {
    pub fn new(config: &ProviderConfig, settings: Settings) -> Self {
        Zaia {
            info: ProviderInfo {
                name: config.name.clone(),
                provider_type: ProviderType::Zaia,
                capabilities: Capabilities {
                    create: true,
                    batch_create: None,
                    updatable: &[
                        "externalId",
                        "identifier",
                        "name",
                        "externalUserGroupId",
                        "tierId",
                    ],
                    disable: true,
                    enable: true,
                    delete: false,
                    email_field: "identifier",
                    lookup: true,
                    list: true,
                },
            },
            settings,
            mapping: config.mapping.clone(),
        }
    }
}

/// Maps a user to zaia's create fields (channelId is added at send time from config).
pub fn map_user(user: &User, settings: &Settings) -> Result<Record, String> {
    map_with(user, settings, &AttributeMapping::default())
}

/// [`map_user`] with the provider's attribute mapping over the built-in rules: the
/// group and tier default to the configured `external_user_group_id` and `tier_id`.
pub fn map_with(
    user: &User,
    settings: &Settings,
    mapping: &AttributeMapping,
) -> Result<Record, String> {
    let v = ProviderType::Zaia;
    check_len(v, "externalId", &user.external_id, 3, 250)?;
    let name = format!("{} {}", user.first_name, user.last_name);
    let record = Record::new()
        .with("externalId", Some(user.external_id.clone()))
        .with("identifier", Some(user.email.clone()))
        .with("name", Some(name))
        .with(
            "externalUserGroupId",
            settings.external_user_group_id.map(|u| u.to_string()),
        )
        .with("tierId", settings.tier_id.map(|u| u.to_string()));
    let record = mapping.apply(user, record)?;
    let label = if mapping.sets("name") {
        "name"
    } else {
        "name (first and last name)"
    };
    check_len(v, label, record.get("name").unwrap_or_default(), 3, 50)?;
    for field in ["externalUserGroupId", "tierId"] {
        if let Some(value) = record.get(field) {
            if uuid::Uuid::parse_str(value).is_err() {
                return Err(format!("{field} {value:?} is not a UUID; zaia accepts only UUIDs"));
            }
        }
    }
    Ok(record)
}

impl Mapping for Zaia {
    fn info(&self) -> &ProviderInfo {
        &self.info
    }

    fn map_user(&self, user: &User) -> Result<Record, String> {
        map_with(user, &self.settings, &self.mapping)
    }
}

impl Provider for Zaia {
    fn requests(&self, ops: &[Operation]) -> Vec<Request> {
        requests::build(ops, &self.settings.channel_id.to_string())
    }

    fn headers(&self) -> Vec<(&'static str, String)> {
        vec![("authorization", REDACTED.into())]
    }

    fn auth_headers(&self) -> Vec<(&'static str, SecretString)> {
        vec![("authorization", self.settings.api_key.clone())]
    }

    /// `{code, message, name, feedback, cta}`: the message, with the code when given.
    fn error_message(&self, body: &serde_json::Value) -> Option<String> {
        client::error_message(body)
    }

    fn healthcheck(&self) -> Result<Vec<Request>, &'static str> {
        Ok(vec![requests::healthcheck(
            &self.settings.channel_id.to_string(),
        )])
    }

    fn apply<'a>(
        &'a self,
        transport: &'a dyn Transport,
        ops: &'a [&'a Operation],
    ) -> BoxFuture<'a, Vec<OpResult>> {
        Box::pin(async move {
            let channel_id = self.settings.channel_id.to_string();
            client::apply(&JsonAnswers(transport), ops, &channel_id).await
        })
    }

    fn list_accounts<'a>(
        &'a self,
        transport: &'a dyn Transport,
    ) -> BoxFuture<'a, Result<Vec<crate::providers::VendorAccount>, CallError>> {
        Box::pin(async move {
            let channel_id = self.settings.channel_id.to_string();
            client::list_all(&JsonAnswers(transport), &channel_id).await
        })
    }

    /// By externalId, then identifier, in the channel; `blocked` says whether it is
    /// disabled.
    fn lookup<'a>(
        &'a self,
        transport: &'a dyn Transport,
        op: &'a Operation,
    ) -> BoxFuture<'a, Result<Option<crate::providers::Found>, CallError>> {
        Box::pin(async move {
            let channel_id = self.settings.channel_id.to_string();
            let user = client::find_user(&JsonAnswers(transport), op, &channel_id, None).await?;
            Ok(user.map(|u| crate::providers::Found {
                vendor_id: client::user_id(&u),
                active: u
                    .get("blocked")
                    .and_then(serde_json::Value::as_bool)
                    .map(|b| !b),
            }))
        })
    }
}

#[cfg(test)]
mod client_tests;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::user::Attributes;

    #[test]
    fn name_and_external_id_limits() {
        let s = Settings {
            api_key: SecretString::from("k".to_string()),
            channel_id: uuid::Uuid::nil(),
            external_user_group_id: None,
            tier_id: None,
        };
        let mut u = User {
            external_id: "E1".into(),
            email: "a@b.co".into(),
            first_name: "Al".into(),
            last_name: "B".into(),
            phone: None,
            status_active: true,
            start_date: None,
            termination_date: None,
            attributes: Attributes::default(),
        };
        assert!(map_user(&u, &s)
            .err()
            .unwrap_or_default()
            .contains("externalId is 2 characters"));
        u.external_id = "E100".into();
        let r = map_user(&u, &s).unwrap();
        assert_eq!(r.get("name"), Some("Al B"));
        assert_eq!(r.get("tierId"), None);
        u.last_name = "X".repeat(60);
        assert!(map_user(&u, &s)
            .err()
            .unwrap_or_default()
            .contains("3 to 50"));
    }
}
