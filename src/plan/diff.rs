//! The diff: source users against one provider's snapshot, as DESIGN.md's table says.
//!
//! | source vs snapshot                                   | result                      |
//! |------------------------------------------------------|-----------------------------|
//! | wanted (in scope, active), no row                    | create                      |
//! | wanted, row active, fingerprint differs              | update (or manual/recreate) |
//! | wanted, row disabled                                 | enable (+ changes)          |
//! | not wanted or gone, row active                       | disable (or delete)         |
//! | vendor cannot do it                                  | manual action               |
//! | vendor would refuse the record                       | rejected                    |
//! | gone from the source because its row was rejected    | held (left as it is)        |
//!
//! Accounts without a snapshot row are never touched: rosterd only manages what it
//! created or adopted.
//!
//! Snapshot rows arrive lean (key, fingerprint, state). A row the plan touches needs
//! its [`RowDetails`] (email, vendor id, last record, last error); when some are not
//! loaded, [`plan_provider`] says which ([`NeedDetails`]) and the caller loads them and
//! plans again. Rows whose fingerprint matches — nearly all of them — never need them.

use std::cmp::Ordering;

use super::{
    is_recent_leaver, FieldChange, Held, LeaverCheck, ManualAction, OpKind, Operation, PlanContext,
    ProviderPlan, Quarantined, Rejected, Summary, LEAVER_REASON,
};
use crate::config::{LeaverAction, OnEmailChange, OnRemove, ProviderConfig};
use crate::providers::{changed_fields, Mapping, Record, StoredRecord};
use crate::store::{AccountState, RowDetails, SnapshotRow};
use crate::user::{normalise_email, Lifecycle, User};

/// The snapshot rows (indices) whose details the plan needs but which were not loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NeedDetails(pub Vec<usize>);

/// Plans one provider. `users` and `snapshot` must be sorted by `external_id`
/// (sources and the store return them so); the result is in the same order.
pub fn plan_provider(
    provider: &dyn Mapping,
    config: &ProviderConfig,
    users: &[User],
    snapshot: &[SnapshotRow],
    ctx: &PlanContext,
) -> Result<ProviderPlan, NeedDetails> {
    let mut p = Planner {
        provider,
        config,
        ctx,
        users,
        missing: Vec::new(),
        plan: ProviderPlan {
            name: config.name.clone(),
            provider_type: provider.provider_type(),
            summary: Summary::default(),
            operations: Vec::new(),
            rejected: Vec::new(),
            manual: Vec::new(),
            held: Vec::new(),
            quarantined: Vec::new(),
            leaver_checks: Vec::new(),
            blocked: None,
            requests: None,
            groups: Vec::new(),
            memberships_before: 0,
            disableable_before: snapshot
                .iter()
                .filter(|r| r.state != AccountState::Disabled)
                .count(),
        },
    };
    let (mut ui, mut si) = (0, 0);
    while ui < users.len() || si < snapshot.len() {
        let order = match (users.get(ui), snapshot.get(si)) {
            (Some(u), Some(r)) => u.external_id.as_str().cmp(&r.external_id),
            (Some(_), None) => Ordering::Less,
            _ => Ordering::Greater,
        };
        match order {
            Ordering::Less => {
                p.user_without_row(&users[ui]);
                ui += 1;
            }
            Ordering::Equal => {
                p.user_with_row(&users[ui], si, &snapshot[si]);
                ui += 1;
                si += 1;
            }
            Ordering::Greater => {
                p.row_without_user(si, &snapshot[si]);
                si += 1;
            }
        }
    }
    if !p.missing.is_empty() {
        return Err(NeedDetails(p.missing));
    }
    super::groups::plan_groups(&mut p.plan, config, users, snapshot, ctx);
    p.plan.summarise();
    Ok(p.plan)
}

struct Planner<'a> {
    provider: &'a dyn Mapping,
    config: &'a ProviderConfig,
    ctx: &'a PlanContext,
    /// Every source user, sorted by key: whom a reference field may name.
    users: &'a [User],
    /// Touched rows whose details were not loaded.
    missing: Vec<usize>,
    plan: ProviderPlan,
}

impl Planner<'_> {
    fn lifecycle(&self, user: &User) -> Lifecycle {
        user.lifecycle(self.ctx.today, self.ctx.provision_days_before_start)
    }

    /// The details of a row the plan touches, noting the row when they are not loaded.
    fn details<'r>(&mut self, index: usize, row: &'r SnapshotRow) -> Option<&'r RowDetails> {
        let d = row.details.as_deref();
        if d.is_none() {
            self.missing.push(index);
        }
        d
    }

    fn wanted(&self, user: &User) -> bool {
        self.lifecycle(user) == Lifecycle::Active && self.config.scope.matches(user)
    }

    /// The user's record at this provider. A reference field (a manager) keeps the
    /// person it names only while that person is wanted here — held already or
    /// created this pass — and is emptied otherwise (a manager who left, or who is out
    /// of scope): the vendor cannot point at an account it does not hold, and the
    /// record (so its fingerprint) changes when the named person arrives or leaves.
    fn map(&self, user: &User) -> Result<Record, String> {
        let mut record = self.provider.map_user(user)?;
        for &field in self.provider.references() {
            let Some(key) = record.get(field) else {
                continue;
            };
            let named = self
                .users
                .binary_search_by(|u| u.external_id.as_str().cmp(key))
                .ok()
                .and_then(|i| self.users.get(i));
            let keep = named.is_some_and(|n| n.external_id != user.external_id && self.wanted(n));
            if !keep {
                record = record.set(field, None);
            }
        }
        Ok(record)
    }

    fn user_without_row(&mut self, user: &User) {
        if !self.wanted(user) {
            return self.leaver(user);
        }
        let unsettled = self.ctx.unsettled.get(&self.config.name);
        if unsettled.is_some_and(|keys| keys.contains(&*user.external_id)) {
            return;
        }
        let record = match self.map(user) {
            Ok(r) => r,
            Err(reason) => return self.reject(user, reason),
        };
        if !self.provider.capabilities().create {
            return self.manual(
                user,
                OpKind::Create,
                format!("{} cannot create users", self.provider.provider_type()),
            );
        }
        // A create's changes are its record's fields: kept once, in the record.
        self.push(
            OpKind::Create,
            user,
            None,
            "new in the source".into(),
            Vec::new(),
            Some(record),
        );
    }

    fn user_with_row(&mut self, user: &User, index: usize, row: &SnapshotRow) {
        if !self.wanted(user) {
            let why = match self.lifecycle(user) {
                // A pre-hire whose start moved into the future keeps the account it has:
                // not yet starting is not leaving.
                Lifecycle::PreHire { .. } => return,
                Lifecycle::Inactive => "inactive in the source",
                Lifecycle::Active => "out of this provider's scope",
            };
            return self.remove(index, row, why);
        }
        let record = match self.map(user) {
            Ok(r) => r,
            Err(reason) => return self.reject(user, reason),
        };
        let fingerprint = record.fingerprint();
        let uncertain = self.uncertain(&row.external_id);
        if row.state == AccountState::Active && fingerprint == row.fingerprint && !uncertain {
            return;
        }
        let Some(details) = self.details(index, row) else {
            return;
        };
        match row.state {
            // An earlier disable may have gone through: enable, with the record.
            AccountState::Active if uncertain && self.provider.capabilities().enable => {
                self.change(user, row, details, record, OpKind::Enable);
            }
            AccountState::Active => self.change(user, row, details, record, OpKind::Update),
            AccountState::Disabled => {
                if !self.provider.capabilities().enable {
                    let why = format!(
                        "{} cannot re-enable a disabled user",
                        self.provider.provider_type()
                    );
                    return self.manual(user, OpKind::Enable, why);
                }
                self.change(user, row, details, record, OpKind::Enable);
            }
            // No account was made (a create the vendor refused, e.g. a SCIM 409 with
            // no user to adopt): unchanged, it stays manual and nothing is resent;
            // once the record changes, the create is tried again.
            AccountState::Manual
                if details.vendor_id.is_none() && fingerprint != row.fingerprint =>
            {
                let why = "record changed since its create needed manual action".to_string();
                self.push(OpKind::Create, user, None, why, Vec::new(), Some(record));
            }
            AccountState::Manual => {
                let why = details
                    .last_error
                    .as_deref()
                    .unwrap_or("an earlier operation needs a person's attention")
                    .to_string();
                self.manual(user, OpKind::Update, why);
            }
        }
    }

    fn row_without_user(&mut self, index: usize, row: &SnapshotRow) {
        if row.state == AccountState::Disabled && !self.uncertain(&row.external_id) {
            return;
        }
        let by_key = self.ctx.held.contains(&*row.external_id);
        if by_key || !self.ctx.held.is_empty() {
            // The email is in the details; a row about to be removed needs them anyway.
            let Some(details) = self.details(index, row) else {
                return;
            };
            if by_key || self.ctx.held.contains(&normalise_email(&details.email)) {
                self.plan.held.push(Held {
                    external_id: row.external_id.to_string(),
                    email: details.email.to_string(),
                });
                return;
            }
        }
        self.remove(index, row, "no longer in the source");
    }

    /// A leaver without a row: their account, made before rosterd, is looked for and
    /// disabled (see [`super::leavers`]).
    fn leaver(&mut self, user: &User) {
        let leavers = self.config.leavers;
        let ctx = self.ctx;
        if leavers.action == LeaverAction::Ignore
            || !self.config.scope.matches(user)
            || !is_recent_leaver(
                user,
                ctx.today,
                ctx.provision_days_before_start,
                leavers.within_days,
            )
        {
            return;
        }
        let known = ctx.leavers.get(&self.config.name);
        if known.is_some_and(|k| k.checked.contains(&*user.external_id)) {
            return;
        }
        let caps = self.provider.capabilities();
        let vendor = self.provider.provider_type();
        // The record is what the adopted row keeps; a vendor that would refuse it
        // still gets the disable (which carries no fields).
        let record = self.map(user).ok();
        let disable = |vendor_id: Option<String>, reason: String| Operation {
            op: OpKind::Disable,
            external_id: user.external_id.to_string(),
            email: user.email.clone(),
            vendor_id,
            reason,
            changes: Vec::new(),
            fingerprint: record.as_ref().map(Record::fingerprint),
            record: record.clone(),
            adopt: true,
        };
        if !caps.lookup {
            if caps.disable {
                let why = format!(
                    "leaver who may have an existing account: {vendor} cannot look accounts \
                     up, so the disable is sent by key once"
                );
                self.add(disable(None, why));
            }
            return;
        }
        let Some(found) = known.and_then(|k| k.found.get(&*user.external_id)) else {
            let operation = disable(None, LEAVER_REASON.to_string());
            self.plan.leaver_checks.push(LeaverCheck {
                external_id: operation.external_id.clone(),
                email: operation.email.clone(),
                operation,
                error: None,
            });
            return;
        };
        match leavers.action {
            LeaverAction::Disable if caps.disable => {
                self.add(disable(found.vendor_id.clone(), LEAVER_REASON.to_string()));
            }
            LeaverAction::Disable => self.manual(
                user,
                OpKind::Disable,
                format!(
                    "{LEAVER_REASON}; {vendor} has no call to disable a user: remove access by hand"
                ),
            ),
            LeaverAction::Report | LeaverAction::Ignore => self.manual(
                user,
                OpKind::Disable,
                format!("{LEAVER_REASON} (leavers: report): disable it by hand"),
            ),
        }
    }

    /// Whether an operation on this key is still in flight with its outcome unknown
    /// (see [`PlanContext::uncertain`]).
    fn uncertain(&self, external_id: &str) -> bool {
        self.ctx
            .uncertain
            .get(&self.config.name)
            .is_some_and(|keys| keys.contains(external_id))
    }

    /// Disable (or delete) an account whose user is no longer wanted — also one the
    /// snapshot has as disabled when an earlier enable may have gone through.
    fn remove(&mut self, index: usize, row: &SnapshotRow, why: &str) {
        if row.state == AccountState::Disabled && !self.uncertain(&row.external_id) {
            return;
        }
        let Some(details) = self.details(index, row) else {
            return;
        };
        let caps = self.provider.capabilities();
        let kind = if self.config.on_remove == OnRemove::Delete && caps.delete {
            OpKind::Delete
        } else if caps.disable {
            OpKind::Disable
        } else {
            self.plan.manual.push(ManualAction {
                external_id: row.external_id.to_string(),
                email: details.email.to_string(),
                needed: OpKind::Disable,
                reason: format!(
                    "{why}; {} has no call to disable a user: remove access by hand",
                    self.provider.provider_type()
                ),
            });
            return;
        };
        self.add(Operation {
            op: kind,
            external_id: row.external_id.to_string(),
            email: details.email.to_string(),
            vendor_id: details.vendor_id.as_deref().map(str::to_string),
            reason: why.to_string(),
            changes: Vec::new(),
            record: None,
            fingerprint: None,
            adopt: false,
        });
    }

    /// An update, or an enable carrying the changes since the account was disabled.
    fn change(
        &mut self,
        user: &User,
        row: &SnapshotRow,
        details: &RowDetails,
        record: Record,
        kind: OpKind,
    ) {
        // A row whose record cannot be read back is compared as empty: every field is
        // sent again, which is what a fresh push would do anyway.
        let old = StoredRecord::from_json(&details.record).unwrap_or_default();
        let changes: Vec<FieldChange> = changed_fields(&old, &record)
            .into_iter()
            .map(|f| FieldChange {
                field: f.to_string(),
                old: old.get(f).map(str::to_string),
                new: record.get(f).map(str::to_string),
            })
            .collect();
        let vendor_id = details.vendor_id.as_deref().map(str::to_string);
        if changes.is_empty() {
            // Only the fingerprint differs (e.g. a field now sent as null): resend.
            let why = if kind == OpKind::Enable {
                "active again in the source"
            } else {
                "record changed"
            };
            return self.push(kind, user, vendor_id, why.into(), changes, Some(record));
        }
        if let Err(cannot) = self.provider.check_update(&old, &record) {
            let caps = self.provider.capabilities();
            let email_changed = changes.iter().any(|c| c.field == caps.email_field);
            if email_changed
                && self.config.on_email_change == OnEmailChange::Recreate
                && caps.create
                && caps.disable
            {
                let why = format!("email changed and {cannot}: new account, old one disabled");
                return self.push(
                    OpKind::Recreate,
                    user,
                    vendor_id,
                    why,
                    changes,
                    Some(record),
                );
            }
            if kind == OpKind::Enable {
                // Re-enable what can be re-enabled; the changes still need a person.
                // Its fingerprint stays the last confirmed one, so the change is
                // planned (and reported) again next pass.
                self.add(Operation {
                    op: kind,
                    external_id: user.external_id.clone(),
                    email: user.email.clone(),
                    vendor_id: vendor_id.clone(),
                    reason: "active again in the source".into(),
                    changes: Vec::new(),
                    record: None,
                    fingerprint: Some(row.fingerprint),
                    adopt: false,
                });
            }
            let fields: Vec<&str> = changes.iter().map(|c| c.field.as_str()).collect();
            return self.manual(
                user,
                OpKind::Update,
                format!("{cannot} (changed: {})", fields.join(", ")),
            );
        }
        let why = if kind == OpKind::Enable {
            "active again in the source".to_string()
        } else {
            let fields: Vec<&str> = changes.iter().map(|c| c.field.as_str()).collect();
            format!("changed: {}", fields.join(", "))
        };
        self.push(kind, user, vendor_id, why, changes, Some(record));
    }

    fn push(
        &mut self,
        op: OpKind,
        user: &User,
        vendor_id: Option<String>,
        reason: String,
        changes: Vec<FieldChange>,
        mut record: Option<Record>,
    ) {
        if let Some(r) = &mut record {
            r.shrink_to_fit();
        }
        let fingerprint = record.as_ref().map(Record::fingerprint);
        self.add(Operation {
            op,
            external_id: user.external_id.clone(),
            email: user.email.clone(),
            vendor_id,
            reason,
            changes,
            record,
            fingerprint,
            adopt: false,
        });
    }

    /// Adds an operation to the plan, unless it failed the same way (same operation,
    /// same record) `quarantine_after` runs in a row: then it waits in quarantine
    /// until the user's record changes.
    fn add(&mut self, op: Operation) {
        let after = self.ctx.quarantine_after;
        let failed = self
            .ctx
            .failures
            .get(&self.config.name)
            .and_then(|f| f.get(&op.external_id));
        if let Some(f) = failed {
            let fingerprint = op.fingerprint.map(|f| f.to_string()).unwrap_or_default();
            if after > 0 && f.count >= after && f.op == op.op && f.fingerprint == fingerprint {
                self.plan.quarantined.push(Quarantined {
                    external_id: op.external_id,
                    email: op.email,
                    op: op.op,
                    failures: f.count,
                    last_error: f.last_error.clone(),
                });
                return;
            }
        }
        self.plan.operations.push(op);
    }

    fn manual(&mut self, user: &User, needed: OpKind, reason: String) {
        self.plan.manual.push(ManualAction {
            external_id: user.external_id.clone(),
            email: user.email.clone(),
            needed,
            reason,
        });
    }

    fn reject(&mut self, user: &User, reason: String) {
        self.plan.rejected.push(Rejected {
            external_id: user.external_id.clone(),
            email: user.email.clone(),
            reason,
        });
    }
}
