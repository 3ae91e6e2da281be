//! Group memberships (SCIM `groups:`): the groups each user should be in, against the
//! groups and memberships the snapshot holds, as one [`GroupChange`] per group.
//!
//! | source vs group snapshot                              | result                    |
//! |-------------------------------------------------------|---------------------------|
//! | user has (or gets, this plan) an account, names group | `+ member` (group made or adopted first) |
//! | membership rosterd added, user no longer names it     | `- member`                |
//! | … or the user is disabled, out of scope, gone         | `- member`                |
//! | membership that was there before rosterd              | left as it is             |
//! | user held, rejected, or its groups cannot be known    | its memberships left      |
//! | group rosterd created left empty, `on_group_empty: delete` | group deleted        |
//!
//! Like the rest of the plan this is a pure function of its inputs.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::{OpKind, PlanContext, ProviderPlan, Rejected};
use crate::config::ProviderConfig;
use crate::mapping::OnGroupEmpty;
use crate::store::{AccountState, GroupSnapshot, SnapshotRow};
use crate::user::{Lifecycle, User};

/// One member of a group change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Member {
    pub external_id: String,
    /// Empty when the source no longer has the user.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub email: String,
    /// The member's id at the server, for a removal (from the snapshot). An addition
    /// takes the user's id from the snapshot when it is sent, after the user's own
    /// create in the same pass.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub member_id: Option<String>,
}

/// What one group needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct GroupChange {
    /// The group's name (its displayName at the server).
    pub name: String,
    /// The server's id for it, when the snapshot knows the group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_id: Option<String>,
    /// Not known yet: found by displayName (adopted) or created, before its members
    /// are added.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub ensure: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub add: Vec<Member>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub remove: Vec<Member>,
    /// rosterd created it and this plan leaves it empty (`on_group_empty: delete`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub delete: bool,
}

/// Membership changes of one group, for the summary.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct MemberCounts {
    pub add: usize,
    pub remove: usize,
}

/// Memberships removed from users left in no group by this plan (a move to another
/// group is not counted): what the membership guard weighs.
pub fn lost_memberships(groups: &[GroupChange]) -> usize {
    let gaining: BTreeSet<&str> = groups
        .iter()
        .flat_map(|g| g.add.iter().map(|m| m.external_id.as_str()))
        .collect();
    groups
        .iter()
        .flat_map(|g| g.remove.iter())
        .filter(|m| !gaining.contains(m.external_id.as_str()))
        .count()
}

/// Adds the group changes to `plan` (nothing when the provider has no `groups:`).
/// `snapshot` is the provider's user snapshot, sorted by key, as the diff had it.
pub(super) fn plan_groups(
    plan: &mut ProviderPlan,
    config: &ProviderConfig,
    users: &[User],
    snapshot: &[SnapshotRow],
    ctx: &PlanContext,
) {
    if !config.mapping.has_groups() {
        return;
    }
    let empty = GroupSnapshot::default();
    let known = ctx.groups.get(&config.name).unwrap_or(&empty);
    plan.memberships_before = known.added_memberships();
    let planned: BTreeMap<&str, OpKind> = plan
        .operations
        .iter()
        .map(|o| (o.external_id.as_str(), o.op))
        .collect();
    let rejected: BTreeSet<String> = plan
        .rejected
        .iter()
        .map(|r| r.external_id.clone())
        .collect();
    // Users whose memberships stay as they are this plan.
    let mut keep: BTreeSet<&str> = plan.held.iter().map(|h| h.external_id.as_str()).collect();
    let uncertain = ctx.uncertain.get(&config.name);
    let unsettled = ctx.unsettled.get(&config.name);
    let mut desired: BTreeMap<String, BTreeMap<&str, &str>> = BTreeMap::new();
    let mut group_errors = Vec::new();
    for user in users {
        let key = user.external_id.as_str();
        let row = snapshot
            .binary_search_by(|r| (*r.external_id).cmp(key))
            .ok()
            .and_then(|i| snapshot.get(i));
        let in_doubt = uncertain.is_some_and(|k| k.contains(key))
            || unsettled.is_some_and(|k| k.contains(key));
        if ctx.held.contains(key) || rejected.contains(key) || in_doubt {
            keep.insert(key);
            continue;
        }
        let lifecycle = user.lifecycle(ctx.today, ctx.provision_days_before_start);
        if matches!(lifecycle, Lifecycle::PreHire { .. }) {
            // Not yet starting is not leaving: what it has, it keeps.
            keep.insert(key);
            continue;
        }
        if lifecycle != Lifecycle::Active || !config.scope.matches(user) {
            continue;
        }
        let has_account = match planned.get(key) {
            Some(OpKind::Create | OpKind::Enable | OpKind::Update | OpKind::Recreate) => true,
            Some(OpKind::Disable | OpKind::Delete) => false,
            None => row.is_some_and(|r| r.state == AccountState::Active),
        };
        if !has_account {
            // A row needing a person, or a vendor that could not enable: left.
            if row.is_some_and(|r| r.state == AccountState::Manual) {
                keep.insert(key);
            }
            continue;
        }
        match config.mapping.groups(user) {
            None => return,
            Some(Err(reason)) => {
                keep.insert(key);
                group_errors.push(Rejected {
                    external_id: user.external_id.clone(),
                    email: user.email.clone(),
                    reason,
                });
            }
            Some(Ok(names)) => {
                for name in names {
                    desired.entry(name).or_default().insert(key, &user.email);
                }
            }
        }
    }
    let emails: BTreeMap<&str, &str> = users
        .iter()
        .map(|u| (u.external_id.as_str(), u.email.as_str()))
        .collect();
    let names: BTreeSet<&String> = desired
        .keys()
        .chain(known.members.keys())
        .chain(known.groups.keys())
        .collect();
    let no_members = BTreeMap::new();
    for name in names {
        let want = desired.get(name.as_str());
        let have = known.members.get(name.as_str()).unwrap_or(&no_members);
        let group = known.groups.get(name.as_str());
        let add: Vec<Member> = want
            .into_iter()
            .flatten()
            .filter(|(key, _)| !have.contains_key(**key))
            .map(|(key, email)| Member {
                external_id: key.to_string(),
                email: email.to_string(),
                member_id: None,
            })
            .collect();
        let remove: Vec<Member> = have
            .iter()
            .filter(|(key, m)| {
                m.added
                    && !keep.contains(key.as_str())
                    && !want.is_some_and(|w| w.contains_key(key.as_str()))
            })
            .map(|(key, m)| Member {
                external_id: key.clone(),
                email: emails.get(key.as_str()).copied().unwrap_or_default().into(),
                member_id: Some(m.member_id.clone()),
            })
            .collect();
        let after = have.len() - remove.len() + add.len();
        let delete = config.mapping.on_group_empty() == OnGroupEmpty::Delete
            && group.is_some_and(|g| g.created)
            && after == 0;
        let ensure = group.is_none() && !add.is_empty();
        if add.is_empty() && remove.is_empty() && !delete && !ensure {
            continue;
        }
        plan.groups.push(GroupChange {
            name: name.clone(),
            group_id: group.map(|g| g.group_id.clone()),
            ensure,
            add,
            remove,
            delete,
        });
    }
    plan.rejected.extend(group_errors);
}

#[cfg(test)]
#[path = "groups_tests.rs"]
mod tests;
