//! The provider trait every vendor adapter implements, its capabilities, and the
//! registry that builds an adapter from its config.
//!
//! Only this file (its registry line per vendor) and the vendors' own folders know
//! vendor names. The planner and the
//! executor work from [`Capabilities`] and the trait.

pub mod call;
pub mod groups;
mod record;
pub mod request;
#[cfg(test)]
mod response_fuzz;
#[cfg(test)]
pub(crate) mod scripted;

use serde::{Deserialize, Serialize};

use crate::config::ProviderConfig;
use crate::plan::Operation;
use crate::user::User;

pub use record::{Fingerprint, Record, StoredRecord};
pub use request::Request;

/// The vendor registry: each line is `Variant => folder::Adapter`, and from this one
/// list come the vendor modules, [`ProviderType`] (its config name is the folder's),
/// [`VendorSettings`], [`parse_settings`] and [`build`]. Adding a vendor is its folder
/// (a `Settings` with `parse`, an adapter with `new(&ProviderConfig, Settings)`
/// implementing [`Provider`]) plus one line here.
macro_rules! vendors {
    ($( $(#[$doc:meta])* $variant:ident => $module:ident :: $adapter:ident ),+ $(,)?) => {
        $( pub mod $module; )+

        /// The vendors rosterd knows.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
        #[serde(rename_all = "lowercase")]
        pub enum ProviderType {
            $( $(#[$doc])* $variant, )+
        }

        impl ProviderType {
            /// Every vendor, in registry order.
            pub const ALL: &'static [ProviderType] = &[$( ProviderType::$variant ),+];

            /// The name used in the config (`type: hesh`), the plan and metrics.
            pub fn as_str(self) -> &'static str {
                match self {
                    $( ProviderType::$variant => stringify!($module), )+
                }
            }
        }

        /// The vendor settings of one provider, parsed and validated by the vendor's
        /// module.
        #[derive(Debug, Clone)]
        pub enum VendorSettings {
            $( $variant($module::Settings), )+
        }

        impl VendorSettings {
            pub fn provider_type(&self) -> ProviderType {
                match self {
                    $( VendorSettings::$variant(_) => ProviderType::$variant, )+
                }
            }
        }

        /// Parses the vendor-specific keys of a provider entry. `path` is the entry's
        /// key path (`providers[2]`) and errors are pushed as `(key path, message)`.
        pub(crate) fn parse_settings(
            kind: ProviderType,
            raw: serde_json::Map<String, serde_json::Value>,
            ctx: &crate::config::ParseContext<'_>,
            path: &str,
            issues: &mut Vec<crate::config::Issue>,
        ) -> Option<VendorSettings> {
            match kind {
                $( ProviderType::$variant => {
                    $module::Settings::parse(raw, ctx, path, issues).map(VendorSettings::$variant)
                } )+
            }
        }

        /// Builds the adapter for a provider entry of the config.
        pub fn build(config: &ProviderConfig) -> Box<dyn Provider> {
            match &config.settings {
                $( VendorSettings::$variant(s) => {
                    Box::new($module::$adapter::new(config, s.clone()))
                } )+
            }
        }
    };
}

vendors! {
    Hesh => hesh::Hesh,
    Saleschat => saleschat::Saleschat,
    Vyte => vyte::Vyte,
    Zaia => zaia::Zaia,
    /// Any SCIM 2.0 service (RFC 7643 / 7644).
    Scim => scim::Scim,
}

/// The vendor fields a provider's `attributes:` may set (each vendor declares its own).
pub fn settable_fields(kind: ProviderType) -> &'static [&'static str] {
    match kind {
        ProviderType::Hesh => hesh::SETTABLE,
        ProviderType::Saleschat => saleschat::SETTABLE,
        ProviderType::Vyte => vyte::SETTABLE,
        ProviderType::Zaia => zaia::SETTABLE,
        ProviderType::Scim => scim::SETTABLE,
    }
}

/// Whether a vendor's provider may have `groups:` (group memberships).
pub fn supports_groups(kind: ProviderType) -> bool {
    kind == ProviderType::Scim
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
    /// The record field that holds the account's email (`email`; zaia's is
    /// `identifier`): a change to it is an email change (`on_email_change`).
    pub email_field: &'static str,
    /// Whether an account rosterd holds no row for can be looked up (by key or email):
    /// how a leaver's existing account is found ([`Provider::lookup`]).
    pub lookup: bool,
    /// Whether every account can be listed ([`Provider::list_accounts`]): how
    /// `rosterd orphans` finds the accounts no source person matches.
    pub list: bool,
}

/// What every adapter knows of itself: its configured name, its vendor, its abilities.
#[derive(Debug, Clone)]
pub struct ProviderInfo {
    pub name: String,
    pub provider_type: ProviderType,
    pub capabilities: Capabilities,
}

/// The pure side of a vendor: what the planner sees. Mapping a source user to the
/// vendor's record, what the vendor can do, and whether a change can be pushed — no
/// I/O, no transport, so that `plan` stays a function of its inputs.
pub trait Mapping: Send + Sync {
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
    /// Record fields whose value names another source person (by key): SCIM's
    /// `manager`. The plan keeps such a value only while that person is wanted at this
    /// provider; the executor sends it as that person's id at the vendor, creating
    /// people before the ones who name them (see `executor::references`).
    fn references(&self) -> &'static [&'static str] {
        &[]
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

/// The effects side of a vendor: the requests that carry out a plan, how its answers
/// read, and the sending itself (through a [`call::Transport`]).
pub trait Provider: Mapping {
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
    /// The authenticated, harmless reads `check --connect` sends to see that the
    /// vendor is reachable and takes the credentials; `Err` says why the vendor
    /// cannot be checked without a write.
    fn healthcheck(&self) -> Result<Vec<Request>, &'static str>;
    /// Looks up the account of the person `op` is about (its key, email and record)
    /// that rosterd holds no row for: how a leaver's existing account is found.
    /// `Ok(None)` when the vendor has none. Only called where
    /// [`Capabilities::lookup`] says it can.
    fn lookup<'a>(
        &'a self,
        transport: &'a dyn call::Transport,
        op: &'a Operation,
    ) -> call::BoxFuture<'a, Result<Option<Found>, call::CallError>> {
        let _ = (transport, op);
        let vendor = self.provider_type();
        Box::pin(async move {
            Err(call::CallError::new(
                None,
                format!("{vendor} cannot look accounts up"),
            ))
        })
    }
    /// Every account the vendor holds (in rosterd's organisation, channel, tenant),
    /// for `rosterd orphans`. Only called where [`Capabilities::list`] says it can.
    fn list_accounts<'a>(
        &'a self,
        transport: &'a dyn call::Transport,
    ) -> call::BoxFuture<'a, Result<Vec<VendorAccount>, call::CallError>> {
        let _ = transport;
        let vendor = self.provider_type();
        Box::pin(async move {
            Err(call::CallError::new(
                None,
                format!("{vendor} cannot list its accounts"),
            ))
        })
    }
    /// Carries out one unit; one result per operation, in order.
    fn apply<'a>(
        &'a self,
        transport: &'a dyn call::Transport,
        ops: &'a [&'a Operation],
    ) -> call::BoxFuture<'a, Vec<call::OpResult>>;
    /// The vendor's group calls, where it has groups (`groups:` in the config).
    fn groups(&self) -> Option<&dyn groups::GroupApi> {
        None
    }
    /// Takes what earlier passes learned about the vendor (the state file's
    /// remembered quirks for this provider), before the pass applies anything.
    /// Default: nothing is learned (only SCIM learns).
    fn remember_quirks(&self, _known: &[crate::store::QuirkRow]) {}
    /// What this pass learned, to be remembered: (quirk, config digest, detail).
    fn learned_quirks(&self) -> Vec<(&'static str, String, String)> {
        Vec::new()
    }
}

/// An account [`Provider::lookup`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// The vendor's id for it, when its answer carries one.
    pub vendor_id: Option<String>,
    /// Whether the vendor holds it active; `None` when its answer does not say (taken
    /// as active: disabling a disabled account does no harm).
    pub active: Option<bool>,
}

/// One account as a vendor lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct VendorAccount {
    pub vendor_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// The key rosterd (or another tool) gave the account, when the vendor keeps one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    /// `None` when the vendor's listing does not say.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub active: Option<bool>,
}

/// Most accounts a listing reads before it stops with an error (never a partial list
/// taken for the whole).
pub const MAX_LISTED: usize = 1_000_000;

/// The error of a listing that did not end within [`MAX_LISTED`] accounts or pages.
pub(crate) fn listing_too_long(vendor: ProviderType, read: usize) -> call::CallError {
    call::CallError::new(
        None,
        format!(
            "listing {vendor}'s accounts stopped after {read}: more than {MAX_LISTED}, or pages that do not advance"
        ),
    )
}

/// The field names whose values differ between the stored and the new record.
pub fn changed_fields<'r>(old: &StoredRecord, new: &'r Record) -> Vec<&'r str> {
    new.fields()
        .filter(|(name, value)| old.get(name) != *value)
        .map(|(name, _)| name)
        .collect()
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
