//! Orphans: accounts a vendor holds that no source person matches (by key, else by
//! email) and that rosterd does not hold — what Entra and midPoint call unmatched.
//! `rosterd orphans` lists them (read-only); `rosterd orphans --disable` is a real,
//! guarded, journaled pass whose plan is their disables, each adopting the account
//! (a snapshot row, disabled) so that it is never looked at again.

use std::collections::BTreeSet;

use serde::Serialize;

use crate::config::{Config, ProviderConfig};
use crate::executor::apply::Clock;
use crate::executor::lookup::Lookups;
use crate::plan::{ManualAction, OpKind, Operation, ProviderPlan};
use crate::providers::{Provider, ProviderType, VendorAccount};
use crate::report::PlanReport;
use crate::store::{SnapshotRow, Store, StoreError};
use crate::sync::SyncError;
use crate::user::{normalise_email, User};

/// Why an orphan's account is disabled, in the plan.
pub const ORPHAN_REASON: &str =
    "orphan: no source person matches it (by key or email) and rosterd does not hold it";

/// The key an orphan's adopted row is kept under when the vendor gives it none: it
/// can never be a source key, so the row is never matched to a person by mistake.
pub const ORPHAN_KEY_PREFIX: &str = "orphan:";

/// One provider's orphans.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct ProviderOrphans {
    pub name: String,
    #[serde(rename = "type")]
    pub provider_type: ProviderType,
    /// Accounts the vendor listed (`None` when it cannot list).
    pub listed: Option<usize>,
    pub orphans: Vec<VendorAccount>,
    /// Why this provider's accounts could not be listed (a failed listing).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Said of a vendor that has no call to list its accounts (not an error).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// The `rosterd orphans` document (printed with its `format_version` by
/// [`crate::output`], like every other).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct OrphansReport {
    pub providers: Vec<ProviderOrphans>,
}

impl OrphansReport {
    pub fn any_error(&self) -> bool {
        self.providers.iter().any(|p| p.error.is_some())
    }

    pub fn to_text(&self) -> String {
        use std::fmt::Write as _;
        let mut out = String::new();
        for p in &self.providers {
            let _ = writeln!(out, "{} ({})", p.name, p.provider_type);
            match (&p.error, p.listed) {
                (Some(e), _) => {
                    let _ = writeln!(out, "  cannot list: {e}");
                }
                (None, None) => {
                    let _ = writeln!(out, "  {}", p.note.as_deref().unwrap_or("not listed"));
                }
                (None, Some(n)) => {
                    let _ = writeln!(
                        out,
                        "  {} orphan(s) among {n} listed account(s)",
                        p.orphans.len()
                    );
                }
            }
            for o in &p.orphans {
                let _ = writeln!(
                    out,
                    "  ? orphan   {} <{}>{}{}",
                    o.vendor_id,
                    o.email.as_deref().unwrap_or("no email"),
                    o.external_id
                        .as_deref()
                        .map(|k| format!(" key {k}"))
                        .unwrap_or_default(),
                    if o.active.is_none() {
                        " (the vendor does not say whether it is active)"
                    } else {
                        ""
                    }
                );
            }
        }
        out
    }
}

/// The active accounts of `accounts` that no source person matches (by key, else by
/// email; `held` holds the keys and emails of the source rows rejected this run, who
/// are people all the same) and that no snapshot row holds (by vendor id, key or
/// email).
pub fn unmatched(
    accounts: Vec<VendorAccount>,
    users: &[User],
    held: &BTreeSet<String>,
    snapshot: &[SnapshotRow],
) -> Vec<VendorAccount> {
    let mut keys: BTreeSet<&str> = users.iter().map(|u| u.external_id.as_str()).collect();
    let mut emails: BTreeSet<String> = users.iter().map(|u| normalise_email(&u.email)).collect();
    keys.extend(snapshot.iter().map(|r| &*r.external_id));
    let mut ids = BTreeSet::new();
    for d in snapshot.iter().filter_map(|r| r.details.as_deref()) {
        emails.insert(normalise_email(&d.email));
        ids.extend(d.vendor_id.as_deref());
    }
    accounts
        .into_iter()
        .filter(|a| a.active != Some(false))
        .filter(|a| !ids.contains(a.vendor_id.as_str()))
        .filter(|a| {
            a.external_id
                .as_deref()
                .map(str::trim)
                .is_none_or(|k| !keys.contains(k) && !held.contains(k))
        })
        .filter(|a| {
            a.email
                .as_deref()
                .map(normalise_email)
                .is_none_or(|e| !emails.contains(&e) && !held.contains(&e))
        })
        .collect()
}

/// Lists one provider's accounts and keeps the orphans. `store` gives the snapshot
/// (none yet: every unmatched account is an orphan).
pub async fn find(
    vendors: &Lookups<'_>,
    provider: &dyn Provider,
    users: &[User],
    held: &BTreeSet<String>,
    store: Option<&Store>,
) -> Result<ProviderOrphans, StoreError> {
    let name = provider.name().to_string();
    let mut report = ProviderOrphans {
        name: name.clone(),
        provider_type: provider.provider_type(),
        listed: None,
        orphans: Vec::new(),
        error: None,
        note: None,
    };
    if !provider.capabilities().list {
        report.note = Some(format!(
            "{} has no call to list its accounts: its orphans cannot be known",
            provider.provider_type()
        ));
        return Ok(report);
    }
    let Some(target) = vendors.target(&name) else {
        return Ok(report);
    };
    let accounts = match target.provider.list_accounts(target.transport).await {
        Ok(a) => a,
        Err(e) => {
            report.error = Some(e.message);
            return Ok(report);
        }
    };
    let mut snapshot = match store {
        Some(s) => s.snapshot(&name).await?,
        None => Vec::new(),
    };
    if let Some(s) = store {
        let all: Vec<usize> = (0..snapshot.len()).collect();
        s.fill_details(&name, &mut snapshot, &all).await?;
    }
    report.listed = Some(accounts.len());
    report.orphans = unmatched(accounts, users, held, &snapshot);
    Ok(report)
}

fn adapters(selected: &[&ProviderConfig]) -> Vec<Box<dyn Provider>> {
    selected
        .iter()
        .map(|pc| crate::providers::build(pc))
        .collect()
}

/// `rosterd orphans`: each selected provider's orphans. Reads the source, the state
/// (when there is one) and each vendor's listing; writes nothing.
pub async fn report(
    config: &Config,
    selected: &[&ProviderConfig],
    store: Option<&Store>,
    clock: &Clock,
) -> Result<OrphansReport, SyncError> {
    let loaded = crate::source::from_config(&config.source).load().await?;
    let held = loaded.held_identities();
    let adapters = adapters(selected);
    let transports =
        crate::executor::windows::transports(store, selected, &adapters, clock).await?;
    let lookups = Lookups::new(None, clock, selected, &adapters, &transports);
    let mut providers = Vec::with_capacity(selected.len());
    for adapter in &adapters {
        providers.push(find(&lookups, adapter.as_ref(), &loaded.users, &held, store).await?);
    }
    Ok(OrphansReport { providers })
}

/// `rosterd orphans --disable --dry-run`: the plan `--disable` would apply (the
/// vendors are listed; nothing is changed, nothing written).
pub async fn dry_run(
    config: &Config,
    selected: &[&ProviderConfig],
    store: Option<&Store>,
    today: chrono::NaiveDate,
    clock: &Clock,
) -> Result<PlanReport, SyncError> {
    let adapters = adapters(selected);
    let transports =
        crate::executor::windows::transports(store, selected, &adapters, clock).await?;
    let lookups = Lookups::new(None, clock, selected, &adapters, &transports);
    let options = crate::sync::PassOptions {
        dry_run: true,
        orphans: true,
        ..Default::default()
    };
    crate::sync::plan_source(config, selected, store, today, options, Some(&lookups)).await
}

/// The plan that disables `found`'s orphans, in place of `plan`'s operations (kept:
/// its name, its base for the percentage guard, and a block the source guard set).
/// Where the vendor has no disable call, each is manual action.
pub fn disable_plan(
    mut plan: ProviderPlan,
    found: &ProviderOrphans,
    can_disable: bool,
) -> ProviderPlan {
    plan.operations.clear();
    plan.manual.clear();
    plan.rejected.clear();
    plan.held.clear();
    plan.quarantined.clear();
    plan.leaver_checks.clear();
    // Only the orphans' disables: no group change rides along.
    plan.groups.clear();
    for o in &found.orphans {
        let external_id = o
            .external_id
            .clone()
            .filter(|k| !k.trim().is_empty())
            .unwrap_or_else(|| format!("{ORPHAN_KEY_PREFIX}{}", o.vendor_id));
        let email = o.email.clone().unwrap_or_default();
        if !can_disable {
            plan.manual.push(ManualAction {
                external_id,
                email,
                needed: OpKind::Disable,
                reason: format!(
                    "{ORPHAN_REASON}; {} has no call to disable a user: remove access by hand",
                    plan.provider_type
                ),
            });
            continue;
        }
        plan.operations.push(Operation {
            op: OpKind::Disable,
            external_id,
            email,
            vendor_id: Some(o.vendor_id.clone()),
            reason: ORPHAN_REASON.to_string(),
            changes: Vec::new(),
            record: None,
            fingerprint: None,
            adopt: true,
        });
    }
    plan.summarise();
    plan
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::store::{AccountState, RowDetails};

    fn account(
        id: &str,
        email: Option<&str>,
        key: Option<&str>,
        active: Option<bool>,
    ) -> VendorAccount {
        VendorAccount {
            vendor_id: id.into(),
            email: email.map(str::to_string),
            external_id: key.map(str::to_string),
            active,
        }
    }

    fn person(key: &str, email: &str) -> User {
        User {
            external_id: key.into(),
            email: email.into(),
            first_name: "A".into(),
            last_name: "B".into(),
            phone: None,
            status_active: true,
            start_date: None,
            termination_date: None,
            attributes: Default::default(),
        }
    }

    #[test]
    fn only_active_accounts_nobody_matches_and_rosterd_does_not_hold_are_orphans() {
        let users = [person("E1", "ann@corp.example")];
        let held: BTreeSet<String> = ["bad@corp.example".to_string()].into();
        let row = SnapshotRow {
            external_id: "E9".into(),
            fingerprint: crate::providers::Fingerprint(1),
            state: AccountState::Active,
            failures: 0,
            details: Some(Box::new(RowDetails {
                email: "held@corp.example".into(),
                vendor_id: Some("v-held".into()),
                record: "{}".into(),
                last_error: None,
            })),
        };
        let accounts = vec![
            account("v1", Some("ANN@corp.example"), None, Some(true)), // matches by email
            account("v2", Some("x@corp.example"), Some("E1"), None),   // by key
            account("v3", Some("bad@corp.example"), None, None),       // a rejected row's person
            account("v4", Some("other@corp.example"), None, Some(true)), // by vendor id? no: orphan
            account("v-held", Some("renamed@corp.example"), None, None), // held by rosterd
            account("v5", Some("held@corp.example"), None, None),      // held, by email
            account("v6", Some("gone@corp.example"), None, Some(false)), // inactive
            account("v7", None, Some("E9"), None),                     // held, by key
            account("v8", None, None, None),                           // nothing to match: orphan
        ];
        let ids: Vec<String> = unmatched(accounts, &users, &held, &[row])
            .into_iter()
            .map(|a| a.vendor_id)
            .collect();
        assert_eq!(ids, ["v4", "v8"]);
    }
}
