//! The provider trait every vendor adapter implements, its capabilities, and the
//! registry that builds an adapter from its config.
//!
//! Only this file and the vendors' own folders know vendor names. The planner and the
//! executor work from [`Capabilities`] and the trait.

pub mod call;
pub mod hesh;
mod record;
pub mod request;
#[cfg(test)]
mod response_fuzz;
pub mod saleschat;
pub mod scim;
#[cfg(test)]
pub(crate) mod scripted;
pub mod vyte;
pub mod zaia;

use serde::{Deserialize, Serialize};

use crate::config::ProviderConfig;
use crate::plan::Operation;
use crate::user::User;

pub use record::{Fingerprint, Record, StoredRecord};
pub use request::Request;

/// The vendors rosterd knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProviderType {
    Hesh,
    Saleschat,
    Vyte,
    Zaia,
    /// Any SCIM 2.0 service (RFC 7643 / 7644).
    Scim,
}

impl ProviderType {
    pub fn as_str(self) -> &'static str {
        match self {
            ProviderType::Hesh => "hesh",
            ProviderType::Saleschat => "saleschat",
            ProviderType::Vyte => "vyte",
            ProviderType::Zaia => "zaia",
            ProviderType::Scim => "scim",
        }
    }
}

impl std::fmt::Display for ProviderType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a vendor's API can do. The planner turns what it cannot do into "manual action".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Capabilities {
    pub create: bool,
    /// Largest batch the vendor's batch-create endpoint takes, when it has one in use.
    pub batch_create: Option<usize>,
    /// Record fields the vendor can change on an existing account.
    pub updatable: &'static [&'static str],
    pub disable: bool,
    pub enable: bool,
    pub delete: bool,
    pub find_by_email: bool,
    pub list: bool,
}

/// The vendor settings of one provider, parsed and validated by the vendor's module.
#[derive(Debug, Clone)]
pub enum VendorSettings {
    Hesh(hesh::Settings),
    Saleschat(saleschat::Settings),
    Vyte(vyte::Settings),
    Zaia(zaia::Settings),
    Scim(scim::Settings),
}

impl VendorSettings {
    pub fn provider_type(&self) -> ProviderType {
        match self {
            VendorSettings::Hesh(_) => ProviderType::Hesh,
            VendorSettings::Saleschat(_) => ProviderType::Saleschat,
            VendorSettings::Vyte(_) => ProviderType::Vyte,
            VendorSettings::Zaia(_) => ProviderType::Zaia,
            VendorSettings::Scim(_) => ProviderType::Scim,
        }
    }
}

/// Parses the vendor-specific keys of a provider entry. `path` is the entry's key path
/// (`providers[2]`) and errors are pushed as `(key path, message)`.
pub(crate) fn parse_settings(
    kind: ProviderType,
    raw: serde_json::Map<String, serde_json::Value>,
    ctx: &crate::config::ParseContext<'_>,
    path: &str,
    issues: &mut Vec<crate::config::Issue>,
) -> Option<VendorSettings> {
    match kind {
        ProviderType::Hesh => {
            hesh::Settings::parse(raw, ctx, path, issues).map(VendorSettings::Hesh)
        }
        ProviderType::Saleschat => {
            saleschat::Settings::parse(raw, ctx, path, issues).map(VendorSettings::Saleschat)
        }
        ProviderType::Vyte => {
            vyte::Settings::parse(raw, ctx, path, issues).map(VendorSettings::Vyte)
        }
        ProviderType::Zaia => {
            zaia::Settings::parse(raw, ctx, path, issues).map(VendorSettings::Zaia)
        }
        ProviderType::Scim => {
            scim::Settings::parse(raw, ctx, path, issues).map(VendorSettings::Scim)
        }
    }
}

/// What every adapter knows of itself: its configured name, its vendor, its abilities.
#[derive(Debug, Clone)]
pub struct ProviderInfo {
    pub name: String,
    pub provider_type: ProviderType,
    pub capabilities: Capabilities,
}

/// One vendor adapter. Planning needs only the mapping side; the executor adds the calls.
pub trait Provider: Send + Sync {
    fn info(&self) -> &ProviderInfo;
    /// The configured name of this provider instance.
    fn name(&self) -> &str {
        &self.info().name
    }
    fn provider_type(&self) -> ProviderType {
        self.info().provider_type
    }
    fn capabilities(&self) -> &Capabilities {
        &self.info().capabilities
    }
    /// Maps a source user to the vendor record, or says why the vendor would refuse it.
    fn map_user(&self, user: &User) -> Result<Record, String>;
    /// The requests that carry out `ops` (one provider's planned operations), in order.
    fn requests(&self, ops: &[Operation]) -> Vec<Request>;
    /// The headers sent with every request, secrets shown as [`request::REDACTED`].
    fn headers(&self) -> Vec<(&'static str, String)>;
    /// The headers sent with every request, with the real secrets: only for the
    /// transport, never for display.
    fn auth_headers(&self) -> Vec<(&'static str, secrecy::SecretString)>;
    /// The operator-facing message in one of the vendor's error bodies.
    fn error_message(&self, body: &serde_json::Value) -> Option<String>;
    /// How operations are grouped into units of work (indices into `ops`): a batch
    /// create is one unit. Default: each operation alone.
    fn units(&self, ops: &[Operation]) -> Vec<Vec<usize>> {
        (0..ops.len()).map(|i| vec![i]).collect()
    }
    /// Carries out one unit; one result per operation, in order. Adapters that cannot
    /// apply yet say so for every operation, and nothing is sent.
    fn apply<'a>(
        &'a self,
        transport: &'a dyn call::Transport,
        ops: &'a [&'a Operation],
    ) -> call::BoxFuture<'a, Vec<call::OpResult>> {
        let _ = transport;
        let message = format!(
            "applying operations to {} is not available in this build yet (plan only)",
            self.provider_type()
        );
        Box::pin(async move {
            ops.iter()
                .map(|_| Err(call::CallError::new(None, message.clone())))
                .collect()
        })
    }
    /// Whether the change from `old` to `new` can be pushed to an existing account.
    /// `Err` carries the reason it cannot (the plan reports it as manual action, or
    /// recreates the account when the change is an email change and policy says so).
    fn check_update(&self, old: &StoredRecord, new: &Record) -> Result<(), String> {
        let caps = self.capabilities();
        let blocked: Vec<&str> = changed_fields(old, new)
            .into_iter()
            .filter(|f| !caps.updatable.contains(f))
            .collect();
        if blocked.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "{} cannot change {} on an existing account",
                self.provider_type(),
                blocked.join(", ")
            ))
        }
    }
}

/// The field names whose values differ between the stored and the new record.
pub fn changed_fields<'r>(old: &StoredRecord, new: &'r Record) -> Vec<&'r str> {
    new.fields()
        .filter(|(name, value)| old.get(name) != *value)
        .map(|(name, _)| name)
        .collect()
}

/// Builds the adapter for a provider entry of the config.
pub fn build(config: &ProviderConfig) -> Box<dyn Provider> {
    match &config.settings {
        VendorSettings::Hesh(s) => Box::new(hesh::Hesh::new(config, s.clone())),
        VendorSettings::Saleschat(s) => Box::new(saleschat::Saleschat::new(config, s.clone())),
        VendorSettings::Vyte(s) => Box::new(vyte::Vyte::new(config, s.clone())),
        VendorSettings::Zaia(s) => Box::new(zaia::Zaia::new(config, s.clone())),
        VendorSettings::Scim(s) => Box::new(scim::Scim::new(config, s.clone())),
    }
}

/// Whether two addresses are the same email, case-insensitively in full Unicode (a
/// vendor may hold `ZOË@…` for the source's `zoë@…`: an ASCII-only comparison would
/// miss it and create a duplicate or report a member as missing).
pub(crate) fn same_email(a: &str, b: &str) -> bool {
    let (a, b) = (a.trim(), b.trim());
    a.eq_ignore_ascii_case(b) || a.to_lowercase() == b.to_lowercase()
}

/// Shared length check for mappings: `Err` names the field and the vendor's limit.
pub(crate) fn check_len(
    vendor: ProviderType,
    field: &str,
    value: &str,
    min: usize,
    max: usize,
) -> Result<(), String> {
    let n = value.chars().count();
    if n < min || n > max {
        let limit = if min == 0 {
            format!("at most {max}")
        } else {
            format!("{min} to {max}")
        };
        Err(format!(
            "{field} is {n} characters; {vendor} accepts {limit}"
        ))
    } else {
        Ok(())
    }
}
