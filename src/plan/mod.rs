//! The plan: what each provider needs so that it matches the source, as a value.
//!
//! [`plan_provider`] is a pure function of (users, held keys, snapshot, provider,
//! today): no I/O, no clock, deterministic order (by `external_id`). A dry run prints
//! its result; a real run executes the same value.

mod diff;
mod groups;
mod leavers;
mod safety;

use std::collections::{BTreeMap, BTreeSet};

use chrono::NaiveDate;
use serde::Serialize;

use crate::providers::{Fingerprint, ProviderType, Record};
use crate::store::FailureRecord;

pub use diff::{plan_provider, NeedDetails};
pub use groups::{lost_memberships, GroupChange, Member, MemberCounts};
pub use leavers::{is_recent_leaver, LeaverCheck, LeaverKnowledge, LEAVER_REASON};
pub use safety::{apply_guards, check_source_size};

/// What to do to one account (kept in the store's journal and failures, so defined
/// there).
pub use crate::store::OpKind;

/// One field's old and new value. `old` is left out of the JSON when there was
/// none (always, for a create).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct FieldChange {
    pub field: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub old: Option<String>,
    pub new: Option<String>,
}

/// One field change, borrowed: what [`Operation::changes`] yields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ChangeRef<'a> {
    pub field: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub old: Option<&'a str>,
    pub new: Option<&'a str>,
}

/// One operation the executor will send.
///
/// A create keeps its fields once, in `record`: its `changes` stay empty in memory
/// and [`Operation::changes`] (and the JSON) list the record's fields. At a million
/// creates a second owned copy of every field was most of the plan's memory.
#[derive(Debug, Clone, PartialEq, Eq, schemars::JsonSchema)]
pub struct Operation {
    pub op: OpKind,
    pub external_id: String,
    pub email: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vendor_id: Option<String>,
    /// Why the operation is planned, in words.
    pub reason: String,
    /// Fields that change (all fields for a create; empty for disable and delete).
    /// A create's are read from `record` (see [`Operation::changes`]).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<FieldChange>,
    /// The record to push (create, update, enable, recreate).
    #[serde(skip)]
    pub record: Option<Record>,
    /// Fingerprint of `record`, stored once the vendor confirms.
    #[serde(skip)]
    pub fingerprint: Option<Fingerprint>,
    /// An account rosterd holds no row for (a leaver's, an orphan's): a confirmed
    /// disable adopts it (a snapshot row, disabled); a vendor's "no such account"
    /// records a leaver as looked for.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub adopt: bool,
}

impl Operation {
    /// The fields that change: for a create without stored changes, every field its
    /// record sets (from nothing); otherwise the stored changes.
    pub fn changes(&self) -> impl Iterator<Item = ChangeRef<'_>> {
        let created = match (&self.record, self.op, self.changes.is_empty()) {
            (Some(record), OpKind::Create, true) => Some(record),
            _ => None,
        };
        let stored = self.changes.iter().map(|c| ChangeRef {
            field: &c.field,
            old: c.old.as_deref(),
            new: c.new.as_deref(),
        });
        let created = created.into_iter().flat_map(|r| {
            r.fields().filter_map(|(field, new)| {
                new.map(|v| ChangeRef {
                    field,
                    old: None,
                    new: Some(v),
                })
            })
        });
        stored.chain(created)
    }

    /// The names of the fields that change (journal, audit).
    pub fn changed_fields(&self) -> Vec<&str> {
        self.changes().map(|c| c.field).collect()
    }
}

/// Written by hand only so that a create's changes come from its record; the shape
/// is the derived one (the schema in `schemas/` is generated from the same fields).
impl Serialize for Operation {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        struct Changes<'a>(&'a Operation);
        impl Serialize for Changes<'_> {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_seq(self.0.changes())
            }
        }
        let mut s = serializer.serialize_struct("Operation", 7)?;
        s.serialize_field("op", &self.op)?;
        s.serialize_field("external_id", &self.external_id)?;
        s.serialize_field("email", &self.email)?;
        match &self.vendor_id {
            Some(v) => s.serialize_field("vendor_id", v)?,
            None => s.skip_field("vendor_id")?,
        }
        s.serialize_field("reason", &self.reason)?;
        if self.changes().next().is_some() {
            s.serialize_field("changes", &Changes(self))?;
        } else {
            s.skip_field("changes")?;
        }
        if self.adopt {
            s.serialize_field("adopt", &self.adopt)?;
        } else {
            s.skip_field("adopt")?;
        }
        s.end()
    }
}

/// Something the plan needs that the vendor cannot do: a person must act.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct ManualAction {
    pub external_id: String,
    pub email: String,
    /// The operation that would be needed.
    pub needed: OpKind,
    pub reason: String,
}

/// A user the vendor would refuse (its field limits), with the reason; nothing is sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct Rejected {
    pub external_id: String,
    pub email: String,
    pub reason: String,
}

/// An operation not sent because it failed the same way too many runs in a row; it
/// is planned again once the user's record changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct Quarantined {
    pub external_id: String,
    pub email: String,
    pub op: OpKind,
    /// Runs in a row it failed.
    pub failures: u32,
    pub last_error: String,
}

/// A known account left untouched because its source record was rejected this run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct Held {
    pub external_id: String,
    pub email: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct Summary {
    pub create: usize,
    pub update: usize,
    pub disable: usize,
    pub enable: usize,
    pub delete: usize,
    pub recreate: usize,
    pub manual: usize,
    pub rejected: usize,
    pub held: usize,
    pub quarantined: usize,
    /// Membership changes per group (SCIM `groups:`); absent when none.
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub groups: BTreeMap<String, MemberCounts>,
}

impl Summary {
    pub fn count(&self, kind: OpKind) -> usize {
        match kind {
            OpKind::Create => self.create,
            OpKind::Update => self.update,
            OpKind::Disable => self.disable,
            OpKind::Enable => self.enable,
            OpKind::Delete => self.delete,
            OpKind::Recreate => self.recreate,
        }
    }
}

/// The plan for one provider.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct ProviderPlan {
    pub name: String,
    #[serde(rename = "type")]
    pub provider_type: ProviderType,
    pub summary: Summary,
    pub operations: Vec<Operation>,
    pub rejected: Vec<Rejected>,
    pub manual: Vec<ManualAction>,
    pub held: Vec<Held>,
    pub quarantined: Vec<Quarantined>,
    /// Why a safety guard stopped this provider's plan; `None` when it may run.
    pub blocked: Option<String>,
    /// Leavers without a snapshot row whose account is looked up at the vendor before
    /// the pass plans (a dry run does not contact vendors, so it lists them here);
    /// after the lookups, those whose lookup failed (tried again next pass).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub leaver_checks: Vec<LeaverCheck>,
    /// The requests that would be sent (`--show-requests` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requests: Option<crate::providers::request::RequestsPreview>,
    /// Accounts rosterd holds before this plan that a disable could reach: active
    /// ones and those in manual state (created but needing a person, such as a
    /// saleschat user not yet in the org). The percentage guard divides by it.
    #[serde(skip)]
    pub disableable_before: usize,
    /// Group changes (SCIM `groups:`), by group name; absent when none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<GroupChange>,
    /// Memberships rosterd added that the snapshot holds before this plan: the
    /// membership guard divides by it.
    #[serde(skip)]
    pub memberships_before: usize,
}

impl ProviderPlan {
    /// Whether there is nothing to send and nothing to report.
    pub fn is_empty(&self) -> bool {
        self.operations.is_empty()
            && self.manual.is_empty()
            && self.rejected.is_empty()
            && self.leaver_checks.is_empty()
            && self.groups.is_empty()
    }

    /// Recounts the summary from the lists.
    pub fn summarise(&mut self) {
        let mut s = Summary {
            manual: self.manual.len(),
            rejected: self.rejected.len(),
            held: self.held.len(),
            quarantined: self.quarantined.len(),
            ..Summary::default()
        };
        for g in &self.groups {
            s.groups.insert(
                g.name.clone(),
                MemberCounts {
                    add: g.add.len(),
                    remove: g.remove.len(),
                },
            );
        }
        for op in &self.operations {
            match op.op {
                OpKind::Create => s.create += 1,
                OpKind::Update => s.update += 1,
                OpKind::Disable => s.disable += 1,
                OpKind::Enable => s.enable += 1,
                OpKind::Delete => s.delete += 1,
                OpKind::Recreate => s.recreate += 1,
            }
        }
        self.summary = s;
    }
}

/// What the planner needs besides users, snapshot and provider.
#[derive(Debug, Clone)]
pub struct PlanContext {
    /// "Today", passed in: the planner never reads the clock.
    pub today: NaiveDate,
    pub provision_days_before_start: u32,
    /// Keys and (lower-cased) emails of the source records rejected this run
    /// ([`crate::source::SourceLoad::held_identities`]): an account whose key or email
    /// is here is left as it is (never disabled because of a bad row).
    pub held: BTreeSet<String>,
    /// Runs in a row an operation may fail with the same record before it is
    /// quarantined (0: never).
    pub quarantine_after: u32,
    /// Consecutive failures, by provider name, then external_id.
    pub failures: BTreeMap<String, BTreeMap<String, FailureRecord>>,
    /// By provider name: keys whose create is still in flight, its outcome unknown
    /// (the resend at the start of this pass did not settle it). No second create is
    /// planned for them: the resend, with the record the vendor may hold, goes first
    /// every pass until it settles, and a new create would take its place and lose
    /// what the vendor was sent (e.g. the email hesh would find the account by).
    pub unsettled: BTreeMap<String, BTreeSet<String>>,
    /// By provider name: keys with another operation (disable, enable, update, delete)
    /// still in flight, its outcome unknown: the vendor may or may not have carried it
    /// out, so the snapshot row's state is not trusted. The plan sets the account as the
    /// source says (enable with the record when wanted, disable when not) even where
    /// the row already seems to match; that operation takes the unsettled one's place.
    pub uncertain: BTreeMap<String, BTreeSet<String>>,
    /// By provider name: leavers already looked for, and accounts found this pass.
    pub leavers: BTreeMap<String, LeaverKnowledge>,
    /// By provider name: the groups and memberships the snapshot holds (providers
    /// with `groups:` only).
    pub groups: BTreeMap<String, crate::store::GroupSnapshot>,
}

#[cfg(test)]
mod tests;
