//! vyte: settings, mapping and limits.
//!
//! vyte can list, create and update users (by its `_id`), and has no documented way to
//! disable one: every disable the plan needs is reported as manual action.
//!
//! Applying lists vyte's users once per pass (the adapter is built per pass) to adopt
//! the accounts vyte already has for an email and to learn their `_id`; see
//! [`client`].

pub mod client;
pub mod requests;

use secrecy::SecretString;
use serde::Deserialize;

use crate::mapping::AttributeMapping;
use crate::config::{parse_vendor, secret, Issue, ParseContext, ProviderConfig};
use crate::plan::Operation;
use crate::providers::Mapping;
use crate::providers::call::{BoxFuture, CallError, JsonAnswers, OpResult, Transport};
use crate::providers::request::{Request, REDACTED};
use crate::providers::{Capabilities, Provider, ProviderInfo, ProviderType, Record};
use crate::user::User;

#[derive(Debug, Clone)]
pub struct Settings {
    pub api_key: SecretString,
    /// vyte organisation id sent with creates, when given.
    pub organization: Option<String>,
    /// Use the (undocumented-shape) batch endpoint for creates.
    pub batch: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    #[serde(default)]
    organization: Option<String>,
    #[serde(default)]
    batch: bool,
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
        if r.organization
            .as_deref()
            .is_some_and(|o| o.trim().is_empty())
        {
            issues.push(Issue::new(
                secret::join(path, "organization"),
                "empty".into(),
            ));
            return None;
        }
        Some(Settings {
            api_key: api_key?,
            organization: r.organization.map(|o| o.trim().to_string()),
            batch: r.batch,
        })
    }
}

/// The fields a mapping may set (`attributes:`); the key and the email keep their rules.
pub const SETTABLE: &[&str] = &[
    "first_name",
    "last_name",
    "language",
    "timezone",
    "picture_url",
];

pub struct Vyte {
    info: ProviderInfo,
    mapping: AttributeMapping,
    organization: Option<String>,
    api_key: SecretString,
    /// vyte's users as listed this pass.
    directory: client::Directory,
}

impl Vyte {
    pub fn new(config: &ProviderConfig, settings: Settings) -> Self {
        Vyte {
            info: ProviderInfo {
                name: config.name.clone(),
                provider_type: ProviderType::Vyte,
                capabilities: Capabilities {
                    create: true,
                    batch_create: settings.batch.then_some(client::BATCH_SIZE),
                    updatable: FIELDS,
                    disable: false,
                    enable: false,
                    delete: false,
                    email_field: "email",
                    lookup: true,
                    list: true,
                },
            },
            mapping: config.mapping.clone(),
            organization: settings.organization,
            api_key: settings.api_key,
            directory: client::Directory::new(),
        }
    }
}

const FIELDS: &[&str] = &[
    "extid",
    "email",
    "first_name",
    "last_name",
    "language",
    "timezone",
    "picture_url",
];

/// Maps a user to vyte's `user` object; language, timezone and picture come from the
/// source attributes of the same names when present.
pub fn map_user(user: &User) -> Result<Record, String> {
    let attr = |k: &str| {
        user.attributes
            .get(k)
            .filter(|v| !v.is_empty())
            .map(str::to_string)
    };
    Ok(Record::new()
        .with("extid", Some(user.external_id.clone()))
        .with("email", Some(user.email.clone()))
        .with("first_name", Some(user.first_name.clone()))
        .with("last_name", Some(user.last_name.clone()))
        .with("language", attr("language"))
        .with("timezone", attr("timezone"))
        .with("picture_url", attr("picture_url")))
}

/// [`map_user`] with the provider's attribute mapping over the built-in rules.
pub fn map_with(user: &User, mapping: &AttributeMapping) -> Result<Record, String> {
    mapping.apply(user, map_user(user)?)
}

impl Mapping for Vyte {
    fn info(&self) -> &ProviderInfo {
        &self.info
    }

    fn map_user(&self, user: &User) -> Result<Record, String> {
        map_with(user, &self.mapping)
    }
}

impl Provider for Vyte {
    fn requests(&self, ops: &[Operation]) -> Vec<Request> {
        requests::build(
            ops,
            self.organization.as_deref(),
            self.info.capabilities.batch_create,
        )
    }

    fn headers(&self) -> Vec<(&'static str, String)> {
        vec![("Authorization", REDACTED.into())]
    }

    fn auth_headers(&self) -> Vec<(&'static str, SecretString)> {
        vec![("Authorization", self.api_key.clone())]
    }

    fn error_message(&self, body: &serde_json::Value) -> Option<String> {
        client::error_message(body)
    }

    fn units(&self, ops: &[Operation]) -> Vec<Vec<usize>> {
        client::units(ops, self.info.capabilities.batch_create)
    }

    fn healthcheck(&self) -> Result<Vec<Request>, &'static str> {
        Ok(vec![requests::list()])
    }

    fn apply<'a>(
        &'a self,
        transport: &'a dyn Transport,
        ops: &'a [&'a Operation],
    ) -> BoxFuture<'a, Vec<OpResult>> {
        Box::pin(async move {
            client::apply(
                &JsonAnswers(transport),
                &self.directory,
                self.organization.as_deref(),
                ops,
            )
            .await
        })
    }

    fn list_accounts<'a>(
        &'a self,
        transport: &'a dyn Transport,
    ) -> BoxFuture<'a, Result<Vec<crate::providers::VendorAccount>, CallError>> {
        Box::pin(async move { client::list_all(&JsonAnswers(transport)).await })
    }

    /// In the pass's one listing of `GET /v2/users` (shared with the creates'
    /// adoption); vyte's users carry no active flag.
    fn lookup<'a>(
        &'a self,
        transport: &'a dyn Transport,
        op: &'a Operation,
    ) -> BoxFuture<'a, Result<Option<crate::providers::Found>, CallError>> {
        Box::pin(async move {
            let id = client::lookup(&JsonAnswers(transport), &self.directory, op).await?;
            Ok(id.map(|id| crate::providers::Found {
                vendor_id: Some(id),
                active: None,
            }))
        })
    }
}

#[cfg(test)]
mod tests;
