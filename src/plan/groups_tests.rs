//! Group planning, case by case: what each source and snapshot state plans for a
//! group, and that a snapshot of what was planned plans nothing.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;

use chrono::NaiveDate;
use secrecy::SecretString;

use super::*;
use crate::config::{OnEmailChange, OnRemove, RateLimitConfig, SafetyConfig, Scope};
use crate::mapping::{AttributeMapping, RawMapping};
use crate::plan::{plan_provider, LeaverKnowledge};
use crate::providers::{self, scim, VendorSettings};
use crate::store::{GroupRow, MemberRow};
use crate::user::{Attributes, User};

fn config(template: &str, on_empty: OnGroupEmpty) -> ProviderConfig {
    let mut issues = Vec::new();
    let mapping = AttributeMapping::compile(
        RawMapping {
            groups: Some(template.into()),
            on_group_empty: on_empty,
            lookups: [(
                "teams".to_string(),
                [("Sales".to_string(), "Revenue".to_string())].into(),
            )]
            .into(),
            ..RawMapping::default()
        },
        scim::SETTABLE,
        "providers[0]",
        &mut issues,
    );
    assert!(issues.is_empty(), "{issues:?}");
    ProviderConfig {
        name: "scim".into(),
        base_url: "https://scim.example".parse().unwrap(),
        scope: Scope::default(),
        on_remove: OnRemove::Disable,
        on_email_change: OnEmailChange::Skip,
        leavers: Default::default(),
        rate_limit: RateLimitConfig::default(),
        mapping,
        settings: VendorSettings::Scim(scim::Settings {
            bearer_token: SecretString::from("t".to_string()),
            patch: scim::Mode::Auto,
            bulk: scim::Mode::Off,
            etag: scim::Mode::Auto,
            filter: scim::Mode::Auto,
            bulk_size: 100,
        }),
    }
}

fn user(id: &str, dept: &str) -> User {
    User {
        external_id: id.into(),
        email: format!("{}@example.com", id.to_lowercase()),
        first_name: "Ada".into(),
        last_name: "Tester".into(),
        phone: None,
        status_active: true,
        start_date: None,
        termination_date: None,
        attributes: Attributes::from_pairs([("department".to_string(), dept.to_string())]),
    }
}

fn ctx(groups: GroupSnapshot) -> PlanContext {
    PlanContext {
        today: NaiveDate::from_ymd_opt(2026, 11, 24).unwrap(),
        provision_days_before_start: 0,
        held: BTreeSet::new(),
        quarantine_after: 3,
        failures: Default::default(),
        unsettled: Default::default(),
        uncertain: Default::default(),
        leavers: [("scim".to_string(), LeaverKnowledge::default())].into(),
        groups: [("scim".to_string(), groups)].into(),
    }
}

/// Rows as rosterd holds them once every user in `users` was pushed.
fn rows(cfg: &ProviderConfig, users: &[User], state: AccountState) -> Vec<SnapshotRow> {
    let p = providers::build(cfg);
    users
        .iter()
        .map(|u| {
            let record = p.map_user(u).unwrap();
            SnapshotRow {
                external_id: u.external_id.clone().into(),
                fingerprint: record.fingerprint(),
                state,
                failures: 0,
                details: Some(Box::new(crate::store::RowDetails {
                    email: u.email.clone().into(),
                    vendor_id: Some(format!("v-{}", u.external_id).into()),
                    record: record.to_stored().to_json().into(),
                    last_error: None,
                })),
            }
        })
        .collect()
}

fn plan(
    cfg: &ProviderConfig,
    users: &[User],
    snap: &[SnapshotRow],
    c: &PlanContext,
) -> ProviderPlan {
    let p = providers::build(cfg);
    plan_provider(p.as_ref(), cfg, users, snap, c).unwrap()
}

/// The group snapshot after `groups` was applied in full on top of `before`.
fn applied(before: &GroupSnapshot, groups: &[GroupChange]) -> GroupSnapshot {
    let mut s = before.clone();
    for g in groups {
        if g.ensure {
            s.groups.insert(
                g.name.clone(),
                GroupRow {
                    group_id: format!("g-{}", g.name),
                    display_name: g.name.clone(),
                    created: true,
                },
            );
        }
        let members = s.members.entry(g.name.clone()).or_default();
        for m in &g.add {
            members.insert(
                m.external_id.clone(),
                MemberRow {
                    member_id: format!("v-{}", m.external_id),
                    added: true,
                },
            );
        }
        for m in &g.remove {
            members.remove(&m.external_id);
        }
        if g.delete {
            s.groups.remove(&g.name);
            s.members.remove(&g.name);
        }
    }
    s.members.retain(|_, m| !m.is_empty());
    s
}

fn summary(p: &ProviderPlan) -> Vec<(String, usize, usize)> {
    p.groups
        .iter()
        .map(|g| (g.name.clone(), g.add.len(), g.remove.len()))
        .collect()
}

#[test]
fn new_users_are_added_to_the_groups_of_their_department_after_their_create() {
    let cfg = config("{{ department }}", OnGroupEmpty::Keep);
    let users = [user("E1", "Sales"), user("E2", "Ops"), user("E3", "Sales")];
    let p = plan(&cfg, &users, &[], &ctx(GroupSnapshot::default()));
    assert_eq!(p.summary.create, 3);
    assert_eq!(
        summary(&p),
        [("Ops".to_string(), 1, 0), ("Sales".to_string(), 2, 0)]
    );
    assert!(p.groups.iter().all(|g| g.ensure && g.group_id.is_none()));
    assert_eq!(
        p.summary.groups["Sales"],
        MemberCounts { add: 2, remove: 0 }
    );
    // Applied, the same source plans nothing.
    let snap = rows(&cfg, &users, AccountState::Active);
    let again = plan(
        &cfg,
        &users,
        &snap,
        &ctx(applied(&GroupSnapshot::default(), &p.groups)),
    );
    assert!(again.is_empty(), "{:?}", again.groups);
}

#[test]
fn a_department_change_moves_the_member_and_the_guard_does_not_count_a_move() {
    let cfg = config("{{ department }}", OnGroupEmpty::Keep);
    let before = [user("E1", "Sales"), user("E2", "Sales")];
    let first = plan(&cfg, &before, &[], &ctx(GroupSnapshot::default()));
    let known = applied(&GroupSnapshot::default(), &first.groups);
    let snap = rows(&cfg, &before, AccountState::Active);
    let after = [user("E1", "Ops"), user("E2", "Sales")];
    let mut p = plan(&cfg, &after, &snap, &ctx(known));
    assert_eq!(
        summary(&p),
        [("Ops".to_string(), 1, 0), ("Sales".to_string(), 0, 1)]
    );
    assert_eq!(p.groups[1].remove[0].member_id.as_deref(), Some("v-E1"));
    assert_eq!(lost_memberships(&p.groups), 0);
    crate::plan::apply_guards(&mut p, &SafetyConfig::default(), None);
    assert_eq!(p.blocked, None);
}

#[test]
fn an_emptied_group_column_is_blocked_like_a_mass_disable() {
    let cfg = config("{{ department }}", OnGroupEmpty::Keep);
    let users: Vec<User> = (0..4).map(|i| user(&format!("E{i}"), "Sales")).collect();
    let first = plan(&cfg, &users, &[], &ctx(GroupSnapshot::default()));
    let known = applied(&GroupSnapshot::default(), &first.groups);
    let snap = rows(&cfg, &users, AccountState::Active);
    let broken: Vec<User> = (0..4).map(|i| user(&format!("E{i}"), "")).collect();
    let mut p = plan(&cfg, &broken, &snap, &ctx(known.clone()));
    assert_eq!(summary(&p), [("Sales".to_string(), 0, 4)]);
    crate::plan::apply_guards(&mut p, &SafetyConfig::default(), None);
    let reason = p.blocked.expect("blocked");
    assert!(reason.contains("4 of the 4 group membership"), "{reason}");
    // One of four leaving their group (25%) is within the default 25%.
    let mut one = broken.clone();
    for u in one.iter_mut().skip(1) {
        *u = user(&u.external_id, "Sales");
    }
    let mut p = plan(&cfg, &one, &snap, &ctx(known));
    crate::plan::apply_guards(&mut p, &SafetyConfig::default(), None);
    assert_eq!(p.blocked, None);
}

#[test]
fn only_memberships_rosterd_added_are_removed_and_disabled_users_lose_theirs() {
    let cfg = config("{{ department }}", OnGroupEmpty::Keep);
    let mut known = GroupSnapshot::default();
    known.groups.insert(
        "Sales".into(),
        GroupRow {
            group_id: "g1".into(),
            display_name: "Sales".into(),
            created: false,
        },
    );
    let m = |id: &str, added| MemberRow {
        member_id: format!("v-{id}"),
        added,
    };
    known.members.insert(
        "Sales".into(),
        [
            ("E1".to_string(), m("E1", true)),
            ("E2".to_string(), m("E2", false)),
        ]
        .into(),
    );
    let mut e1 = user("E1", "Sales");
    e1.status_active = false;
    let mut e2 = user("E2", "Sales");
    e2.status_active = false;
    let snap = rows(&cfg, &[e1.clone(), e2.clone()], AccountState::Active);
    let p = plan(&cfg, &[e1, e2], &snap, &ctx(known));
    assert_eq!(p.summary.disable, 2);
    // E2 was in the group before rosterd adopted it: never removed.
    assert_eq!(summary(&p), [("Sales".to_string(), 0, 1)]);
    assert_eq!(p.groups[0].remove[0].external_id, "E1");
}

#[test]
fn a_sequence_gives_many_groups_and_a_lookup_miss_leaves_memberships_alone() {
    let cfg = config(
        "{{ department | split(';') | map('trim') | list }}",
        OnGroupEmpty::Keep,
    );
    let users = [user("E1", "Sales; Ops ;Sales;"), user("E2", "")];
    let p = plan(&cfg, &users, &[], &ctx(GroupSnapshot::default()));
    assert_eq!(
        summary(&p),
        [("Ops".to_string(), 1, 0), ("Sales".to_string(), 1, 0)]
    );
    let cfg = config("{{ department | lookup('teams') }}", OnGroupEmpty::Keep);
    let mut known = GroupSnapshot::default();
    known.members.insert(
        "Revenue".into(),
        [(
            "E2".to_string(),
            MemberRow {
                member_id: "v-E2".into(),
                added: true,
            },
        )]
        .into(),
    );
    let users = [user("E1", "Sales"), user("E2", "Nowhere")];
    let snap = rows(&cfg, &users, AccountState::Active);
    let p = plan(&cfg, &users, &snap, &ctx(known));
    assert_eq!(summary(&p), [("Revenue".to_string(), 1, 0)]);
    let why = &p.rejected[0];
    assert_eq!(why.external_id, "E2");
    assert!(
        why.reason
            .contains("lookup teams has no entry for \"Nowhere\""),
        "{}",
        why.reason
    );
}

#[test]
fn a_group_rosterd_created_is_deleted_when_emptied_only_with_on_group_empty_delete() {
    let mut known = GroupSnapshot::default();
    for (name, created) in [("Made", true), ("Adopted", false)] {
        known.groups.insert(
            name.into(),
            GroupRow {
                group_id: format!("g-{name}"),
                display_name: name.into(),
                created,
            },
        );
        known.members.insert(
            name.into(),
            [(
                "E1".to_string(),
                MemberRow {
                    member_id: "v-E1".into(),
                    added: true,
                },
            )]
            .into(),
        );
    }
    let users = [user("E1", "Other")];
    for (on_empty, deleted) in [
        (OnGroupEmpty::Keep, vec![]),
        (OnGroupEmpty::Delete, vec!["Made"]),
    ] {
        let cfg = config("{{ department }}", on_empty);
        let snap = rows(&cfg, &users, AccountState::Active);
        let p = plan(&cfg, &users, &snap, &ctx(known.clone()));
        let got: Vec<&str> = p
            .groups
            .iter()
            .filter(|g| g.delete)
            .map(|g| g.name.as_str())
            .collect();
        assert_eq!(got, deleted);
    }
}
