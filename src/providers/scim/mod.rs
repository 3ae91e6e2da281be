//! scim: a generic SCIM 2.0 provider (RFC 7643 / 7644) — settings, mapping and
//! capabilities.
//!
//! Unlike the other vendors, what a SCIM service can do is read from the service
//! itself: once per pass, `/ServiceProviderConfig` says whether PATCH, `/Bulk` (and
//! its limits), filtering and ETags are supported, and the `patch`, `bulk` and `etag`
//! settings let an operator override it (`auto`, the default, follows the service).
//! The calls are in `client.rs` (one user at a time) and `bulk.rs` (`/Bulk`); PATCH
//! bodies and the comparison of answers in `patch.rs`; what a service turned out not
//! to do, remembered across passes, in `quirks.rs`.

mod bulk;
pub mod client;
pub mod discovery;
pub mod groups;
pub mod list;
pub mod patch;
mod preview;
pub mod quirks;
pub mod requests;

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use crate::mapping::AttributeMapping;
use crate::config::{parse_vendor, secret, Issue, ParseContext, ProviderConfig};
use crate::plan::Operation;
use crate::providers::Mapping;
use crate::providers::call::{BoxFuture, CallError, JsonAnswers, OpResult, Transport};
use crate::providers::request::{Request, REDACTED};
use crate::providers::{Capabilities, Provider, ProviderInfo, ProviderType, Record};
use crate::user::User;

/// Operations per unit of work when bulk may be used, unless `bulk_size` says.
pub const DEFAULT_BULK_SIZE: usize = 100;
/// Largest `bulk_size` accepted (RFC 7644's example limit).
pub const MAX_BULK_SIZE: usize = 1000;

/// Whether a SCIM feature is used: as the service announces it, always, or never.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Mode {
    #[default]
    Auto,
    On,
    Off,
}

/// `auto`, `on`, `off` — and YAML's `on` / `off` / `true` / `false`, which YAML 1.1
/// readers turn into booleans before rosterd sees them.
impl<'de> Deserialize<'de> for Mode {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Bool(bool),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Bool(true) => Ok(Mode::On),
            Raw::Bool(false) => Ok(Mode::Off),
            Raw::Text(t) => match t.trim().to_ascii_lowercase().as_str() {
                "auto" => Ok(Mode::Auto),
                "on" | "true" => Ok(Mode::On),
                "off" | "false" => Ok(Mode::Off),
                other => Err(serde::de::Error::custom(format!(
                    "{other:?} is not one of auto, on, off"
                ))),
            },
        }
    }
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub bearer_token: SecretString,
    pub patch: Mode,
    pub bulk: Mode,
    pub etag: Mode,
    /// Lookups with `filter=userName eq …` (adoption): `auto` as announced; `on` for a
    /// service that filters without announcing it; `off` for one that announces it
    /// but answers wrongly.
    pub filter: Mode,
    /// Operations per unit of work (and at most per `/Bulk` request).
    pub bulk_size: usize,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    #[serde(default)]
    patch: Mode,
    #[serde(default)]
    bulk: Mode,
    #[serde(default)]
    etag: Mode,
    #[serde(default)]
    filter: Mode,
    #[serde(default)]
    bulk_size: Option<usize>,
}

impl Settings {
    pub(crate) fn parse(
        mut raw: serde_json::Map<String, serde_json::Value>,
        ctx: &ParseContext<'_>,
        path: &str,
        issues: &mut Vec<Issue>,
    ) -> Option<Settings> {
        let token = secret::take_secret(&mut raw, "bearer_token", ctx.base_dir, path, true, issues);
        let r: Raw = parse_vendor(raw, path, issues)?;
        let bulk_size = r.bulk_size.unwrap_or(DEFAULT_BULK_SIZE);
        if !(1..=MAX_BULK_SIZE).contains(&bulk_size) {
            issues.push(Issue::new(
                secret::join(path, "bulk_size"),
                format!("{bulk_size} is out of range (1 to {MAX_BULK_SIZE})"),
            ));
            return None;
        }
        Some(Settings {
            bearer_token: token?,
            patch: r.patch,
            bulk: r.bulk,
            etag: r.etag,
            filter: r.filter,
            bulk_size,
        })
    }
}

/// The fields a mapping may set (`attributes:`); `userName`, `externalId` and the
/// email are how rosterd knows the account, so they keep their rules.
pub const SETTABLE: &[&str] = &[
    "givenName",
    "familyName",
    "phone",
    "title",
    "preferredLanguage",
    "locale",
    "timezone",
    "department",
    "employeeNumber",
    "costCenter",
    patch::MANAGER,
];

pub struct Scim {
    info: ProviderInfo,
    mapping: AttributeMapping,
    settings: Settings,
    /// The service's features, read at most once per pass (adapters are built per pass).
    features: tokio::sync::OnceCell<discovery::Features>,
    /// `/Users`, listed at most once per pass when the service cannot filter.
    listing: discovery::Listing,
    /// What the service turned out not to do: remembered, and learned this pass.
    quirks: quirks::Quirks,
    /// The digest remembered quirks must carry to apply (see `quirks.rs`).
    digest: String,
}

impl Scim {
    pub fn new(config: &ProviderConfig, settings: Settings) -> Self {
        Scim {
            info: ProviderInfo {
                name: config.name.clone(),
                provider_type: ProviderType::Scim,
                capabilities: Capabilities {
                    create: true,
                    batch_create: (settings.bulk != Mode::Off).then_some(settings.bulk_size),
                    updatable: &[
                        "userName",
                        "externalId",
                        "givenName",
                        "familyName",
                        "email",
                        "phone",
                        "title",
                        "preferredLanguage",
                        "locale",
                        "timezone",
                        "department",
                        "employeeNumber",
                        "costCenter",
                        patch::MANAGER,
                    ],
                    disable: true,
                    enable: true,
                    delete: true,
                    email_field: "email",
                    lookup: true,
                    list: true,
                },
            },
            mapping: config.mapping.clone(),
            digest: quirks::config_digest(config.base_url.as_str(), &settings),
            settings,
            features: tokio::sync::OnceCell::new(),
            listing: discovery::Listing::default(),
            quirks: quirks::Quirks::default(),
        }
    }

    /// What this pass uses, reading `/ServiceProviderConfig` the first time.
    async fn effective(
        &self,
        transport: &dyn Transport,
    ) -> Result<discovery::Effective, crate::providers::call::CallError> {
        let features = self
            .features
            .get_or_try_init(|| client::read_features(transport))
            .await?;
        let s = &self.settings;
        Ok(discovery::Effective::new(
            features,
            s.patch,
            s.bulk,
            s.etag,
            s.bulk_size,
        )
        .with_filter(s.filter, features)
        .with_quirks(&self.quirks, s)
        .with_listing(&self.listing))
    }
}

/// Maps a user to the SCIM User attributes rosterd manages: `userName` is the email,
/// `externalId` rosterd's key.
pub fn map_user(user: &User) -> Result<Record, String> {
    if user.email.trim().is_empty() {
        return Err("userName (the email) is empty; SCIM requires it".into());
    }
    Ok(Record::new()
        .with("userName", Some(user.email.clone()))
        .with("externalId", Some(user.external_id.clone()))
        .with("givenName", Some(user.first_name.clone()))
        .with("familyName", Some(user.last_name.clone()))
        .with("email", Some(user.email.clone()))
        .with("phone", user.phone.clone()))
}

/// [`map_user`] with the provider's attribute mapping over the built-in rules.
pub fn map_with(user: &User, mapping: &AttributeMapping) -> Result<Record, String> {
    mapping.apply(user, map_user(user)?)
}

impl Mapping for Scim {
    fn info(&self) -> &ProviderInfo {
        &self.info
    }

    fn map_user(&self, user: &User) -> Result<Record, String> {
        map_with(user, &self.mapping)
    }

    /// `manager` names the manager by key; it is sent as the manager's id here.
    fn references(&self) -> &'static [&'static str] {
        &[patch::MANAGER]
    }
}

/// Groups of `bulk_size` when bulk may be used (each becomes `/Bulk` requests if the
/// service supports it), else one operation per unit.
fn units(ops: &[Operation], settings: &Settings) -> Vec<Vec<usize>> {
    if settings.bulk == Mode::Off {
        return (0..ops.len()).map(|i| vec![i]).collect();
    }
    (0..ops.len())
        .collect::<Vec<_>>()
        .chunks(settings.bulk_size.max(1))
        .map(<[usize]>::to_vec)
        .collect()
}

impl Provider for Scim {
    fn requests(&self, ops: &[Operation]) -> Vec<Request> {
        preview::build(ops, &self.settings, &self.quirks)
    }

    fn headers(&self) -> Vec<(&'static str, String)> {
        vec![("authorization", format!("Bearer {REDACTED}"))]
    }

    fn auth_headers(&self) -> Vec<(&'static str, SecretString)> {
        let bearer = format!("Bearer {}", self.settings.bearer_token.expose_secret());
        vec![("authorization", SecretString::from(bearer))]
    }

    /// RFC 7644 error bodies: `detail`, with `scimType` and `status`.
    fn error_message(&self, body: &serde_json::Value) -> Option<String> {
        requests::error_message(body)
    }

    /// Groups of `bulk_size` when bulk may be used (each becomes `/Bulk` requests if
    /// the service supports it), else one operation per unit.
    fn units(&self, ops: &[Operation]) -> Vec<Vec<usize>> {
        units(ops, &self.settings)
    }

    fn healthcheck(&self) -> Result<Vec<Request>, &'static str> {
        Ok(requests::healthcheck())
    }

    /// `/Groups` (see `groups.rs`).
    fn groups(&self) -> Option<&dyn crate::providers::groups::GroupApi> {
        Some(self)
    }

    /// Remembered quirks apply only while the config is the one they were learned
    /// with (see `quirks.rs`).
    fn remember_quirks(&self, known: &[crate::store::QuirkRow]) {
        for row in known.iter().filter(|r| r.config_digest == self.digest) {
            if let Some(q) = quirks::Quirk::parse(&row.quirk) {
                self.quirks.remember(q, &row.detail);
            }
        }
    }

    fn learned_quirks(&self) -> Vec<(&'static str, String, String)> {
        self.quirks
            .learned()
            .into_iter()
            .map(|(q, detail)| (q.as_str(), self.digest.clone(), detail))
            .collect()
    }

    fn apply<'a>(
        &'a self,
        transport: &'a dyn Transport,
        ops: &'a [&'a Operation],
    ) -> BoxFuture<'a, Vec<OpResult>> {
        Box::pin(async move {
            let transport = &JsonAnswers(transport);
            let eff = match self.effective(transport).await {
                Ok(eff) => eff,
                Err(e) => {
                    let e = crate::providers::call::CallError::new(
                        e.status,
                        format!("cannot read the SCIM service's /ServiceProviderConfig: {e}"),
                    );
                    return ops.iter().map(|_| Err(e.clone())).collect();
                }
            };
            match eff.bulk {
                Some(limits) if ops.len() > 1 => bulk::apply(transport, ops, &eff, limits).await,
                _ => client::apply_each(transport, ops, &eff).await,
            }
        })
    }

    /// `/Users`, paged (the listing adoption uses where the service cannot filter).
    fn list_accounts<'a>(
        &'a self,
        transport: &'a dyn Transport,
    ) -> BoxFuture<'a, Result<Vec<crate::providers::VendorAccount>, CallError>> {
        Box::pin(async move {
            let users = client::list_all(&JsonAnswers(transport)).await?;
            Ok(users.iter().filter_map(account_of).collect())
        })
    }

    /// By filter (userName, then externalId), or in the pass's one listing where
    /// the service cannot filter; `active` as the service holds it.
    fn lookup<'a>(
        &'a self,
        transport: &'a dyn Transport,
        op: &'a Operation,
    ) -> BoxFuture<'a, Result<Option<crate::providers::Found>, CallError>> {
        Box::pin(async move {
            let transport = &JsonAnswers(transport);
            let eff = self.effective(transport).await?;
            let user = client::find(transport, op, &eff, None).await?;
            Ok(user.map(|u| crate::providers::Found {
                vendor_id: client::resource_id(&u),
                active: u.get("active").and_then(serde_json::Value::as_bool),
            }))
        })
    }
}

/// A listed SCIM User as an account: its primary email (else the first, else the
/// userName), externalId and `active`.
fn account_of(u: &serde_json::Value) -> Option<crate::providers::VendorAccount> {
    let text = |v: &serde_json::Value| v.as_str().map(str::to_string);
    let emails = u.get("emails").and_then(serde_json::Value::as_array);
    let email = emails
        .and_then(|e| {
            e.iter()
                .find(|m| m.get("primary") == Some(&serde_json::Value::Bool(true)))
                .or_else(|| e.first())
        })
        .and_then(|m| m.get("value"))
        .and_then(text)
        .or_else(|| u.get("userName").and_then(text));
    Some(crate::providers::VendorAccount {
        vendor_id: client::resource_id(u)?,
        email,
        external_id: u.get("externalId").and_then(text),
        active: u.get("active").and_then(serde_json::Value::as_bool),
    })
}

#[cfg(test)]
mod client_tests;
#[cfg(test)]
mod tests;
