//! The diff table, row by row, and the property that a snapshot of what was planned
//! plans nothing.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::cloned_ref_to_slice_refs
)]

use std::collections::BTreeSet;

use chrono::NaiveDate;
use proptest::prelude::*;
use secrecy::SecretString;

use super::*;
use crate::config::{
    OnEmailChange, OnRemove, ProviderConfig, RateLimitConfig, SafetyConfig, Scope,
};
use crate::providers::{self, Capabilities, Provider, StoredRecord, VendorSettings};
use crate::store::{AccountState, RowDetails, SnapshotRow};
use crate::user::{Attributes, User};

fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 11, 24).unwrap()
}

fn ctx() -> PlanContext {
    PlanContext {
        today: today(),
        provision_days_before_start: 0,
        held: BTreeSet::new(),
        quarantine_after: 3,
        failures: Default::default(),
        unsettled: Default::default(),
        uncertain: Default::default(),
        leavers: Default::default(),
        groups: Default::default(),
    }
}

fn hesh_config() -> ProviderConfig {
    ProviderConfig {
        name: "hesh-prod".into(),
        base_url: "https://hesh.example".parse().unwrap(),
        scope: Scope::default(),
        on_remove: OnRemove::Disable,
        on_email_change: OnEmailChange::Skip,
        leavers: Default::default(),
        rate_limit: RateLimitConfig::default(),
        mapping: Default::default(),
        settings: VendorSettings::Hesh(providers::hesh::Settings {
            api_key: SecretString::from("k".to_string()),
            tenant_id: uuid::Uuid::nil(),
            batch_size: 100,
        }),
    }
}

fn vyte_config() -> ProviderConfig {
    ProviderConfig {
        name: "vyte".into(),
        settings: VendorSettings::Vyte(providers::vyte::Settings {
            api_key: SecretString::from("k".to_string()),
            organization: None,
            batch: false,
        }),
        ..hesh_config()
    }
}

fn saleschat_config() -> ProviderConfig {
    ProviderConfig {
        name: "sc".into(),
        settings: VendorSettings::Saleschat(providers::saleschat::Settings {
            token: SecretString::from("k".to_string()),
            org_id: "org".into(),
        }),
        ..hesh_config()
    }
}

fn user(id: &str, first: &str) -> User {
    User {
        external_id: id.into(),
        email: format!("{}@example.com", id.to_lowercase()),
        first_name: first.into(),
        last_name: "Tester".into(),
        phone: Some(format!("+33 1 {id}")),
        status_active: true,
        start_date: None,
        termination_date: None,
        attributes: Attributes::from_pairs([("department".to_string(), "Sales".to_string())]),
    }
}

/// The snapshot row rosterd would hold after pushing `user` to `provider`.
fn row_for(provider: &dyn Provider, user: &User, state: AccountState) -> SnapshotRow {
    let record = provider.map_user(user).unwrap();
    SnapshotRow {
        external_id: user.external_id.clone().into(),
        fingerprint: record.fingerprint(),
        state,
        failures: 0,
        details: Some(Box::new(RowDetails {
            email: user.email.clone().into(),
            vendor_id: Some(format!("v-{}", user.external_id).into()),
            record: record.to_stored().to_json().into(),
            last_error: None,
        })),
    }
}

fn run(cfg: &ProviderConfig, users: &[User], snapshot: &[SnapshotRow]) -> ProviderPlan {
    let p = providers::build(cfg);
    plan_provider(p.as_ref(), cfg, users, snapshot, &ctx()).unwrap()
}

fn ops(plan: &ProviderPlan) -> Vec<(OpKind, &str)> {
    plan.operations
        .iter()
        .map(|o| (o.op, o.external_id.as_str()))
        .collect()
}

#[test]
fn active_user_not_in_snapshot_is_created_with_all_fields() {
    let plan = run(&hesh_config(), &[user("E1", "Ada")], &[]);
    assert_eq!(ops(&plan), [(OpKind::Create, "E1")]);
    let op = &plan.operations[0];
    assert!(op
        .changes()
        .any(|c| c.field == "first_name" && c.new == Some("Ada") && c.old.is_none()));
    // The fields are kept once, in the record; the changes are read from it.
    assert!(op.changes.is_empty());
    assert!(op.record.is_some() && op.fingerprint.is_some());
    assert_eq!(plan.summary.create, 1);
}

#[test]
fn unchanged_user_plans_nothing() {
    let cfg = hesh_config();
    let p = providers::build(&cfg);
    let u = user("E1", "Ada");
    let plan = run(
        &cfg,
        &[u.clone()],
        &[row_for(p.as_ref(), &u, AccountState::Active)],
    );
    assert!(plan.is_empty(), "{plan:?}");
}

#[test]
fn changed_name_is_an_update_showing_old_and_new() {
    let cfg = hesh_config();
    let p = providers::build(&cfg);
    let row = row_for(p.as_ref(), &user("E1", "Ada"), AccountState::Active);
    let plan = run(&cfg, &[user("E1", "Augusta")], &[row]);
    assert_eq!(ops(&plan), [(OpKind::Update, "E1")]);
    assert_eq!(
        plan.operations[0].changes,
        [FieldChange {
            field: "first_name".into(),
            old: Some("Ada".into()),
            new: Some("Augusta".into())
        }]
    );
    assert_eq!(plan.operations[0].vendor_id.as_deref(), Some("v-E1"));
}

#[test]
fn user_gone_from_source_is_disabled() {
    let cfg = hesh_config();
    let p = providers::build(&cfg);
    let row = row_for(p.as_ref(), &user("E1", "Ada"), AccountState::Active);
    let plan = run(&cfg, &[], &[row]);
    assert_eq!(ops(&plan), [(OpKind::Disable, "E1")]);
    assert_eq!(plan.operations[0].email, "e1@example.com");
    assert_eq!(plan.operations[0].reason, "no longer in the source");
}

#[test]
fn inactive_user_is_disabled_and_already_disabled_is_left() {
    let cfg = hesh_config();
    let p = providers::build(&cfg);
    let mut u = user("E1", "Ada");
    let row = row_for(p.as_ref(), &u, AccountState::Active);
    u.status_active = false;
    let plan = run(&cfg, &[u.clone()], &[row]);
    assert_eq!(ops(&plan), [(OpKind::Disable, "E1")]);
    assert_eq!(plan.operations[0].reason, "inactive in the source");
    let disabled = row_for(p.as_ref(), &user("E1", "Ada"), AccountState::Disabled);
    assert!(run(&cfg, &[u], &[disabled]).is_empty());
}

#[test]
fn out_of_scope_user_is_disabled_and_never_created() {
    let mut cfg = hesh_config();
    cfg.scope
        .include
        .insert("department".into(), vec!["Engineering".into()]);
    let p = providers::build(&cfg);
    let u = user("E1", "Ada");
    let row = row_for(p.as_ref(), &u, AccountState::Active);
    let plan = run(&cfg, &[u.clone(), user("E2", "Bob")], &[row]);
    assert_eq!(ops(&plan), [(OpKind::Disable, "E1")]);
    assert_eq!(plan.operations[0].reason, "out of this provider's scope");
}

#[test]
fn disabled_user_active_again_is_enabled_with_changes() {
    let cfg = hesh_config();
    let p = providers::build(&cfg);
    let row = row_for(p.as_ref(), &user("E1", "Ada"), AccountState::Disabled);
    let plan = run(&cfg, &[user("E1", "Ada")], &[row.clone()]);
    assert_eq!(ops(&plan), [(OpKind::Enable, "E1")]);
    assert!(plan.operations[0].changes.is_empty());
    let plan = run(&cfg, &[user("E1", "Augusta")], &[row]);
    assert_eq!(ops(&plan), [(OpKind::Enable, "E1")]);
    assert_eq!(plan.operations[0].changes.len(), 1);
}

#[test]
fn delete_is_planned_only_when_configured_and_supported() {
    let mut cfg = saleschat_config();
    let p = providers::build(&cfg);
    let row = row_for(p.as_ref(), &user("E1", "Ada"), AccountState::Active);
    assert_eq!(
        ops(&run(&cfg, &[], &[row.clone()])),
        [(OpKind::Disable, "E1")]
    );
    cfg.on_remove = OnRemove::Delete;
    assert_eq!(
        ops(&run(&cfg, &[], &[row.clone()])),
        [(OpKind::Delete, "E1")]
    );
    // hesh has no delete: configured delete falls back to disable.
    let mut h = hesh_config();
    h.on_remove = OnRemove::Delete;
    let hp = providers::build(&h);
    let hrow = row_for(hp.as_ref(), &user("E1", "Ada"), AccountState::Active);
    assert_eq!(ops(&run(&h, &[], &[hrow])), [(OpKind::Disable, "E1")]);
}

#[test]
fn vendor_without_disable_reports_manual_action() {
    let cfg = vyte_config();
    let p = providers::build(&cfg);
    let row = row_for(p.as_ref(), &user("E1", "Ada"), AccountState::Active);
    let plan = run(&cfg, &[], &[row]);
    assert!(plan.operations.is_empty());
    assert_eq!(plan.manual.len(), 1);
    assert_eq!(plan.manual[0].needed, OpKind::Disable);
    assert!(
        plan.manual[0]
            .reason
            .contains("vyte has no call to disable"),
        "{}",
        plan.manual[0].reason
    );
    assert_eq!(plan.summary.manual, 1);
}

#[test]
fn vendor_without_update_reports_name_change_as_manual() {
    let cfg = saleschat_config();
    let p = providers::build(&cfg);
    let row = row_for(p.as_ref(), &user("E1", "Ada"), AccountState::Active);
    let plan = run(&cfg, &[user("E1", "Augusta")], &[row]);
    assert!(plan.operations.is_empty());
    assert_eq!(plan.manual[0].needed, OpKind::Update);
    assert!(
        plan.manual[0].reason.contains("first_name"),
        "{}",
        plan.manual[0].reason
    );
}

#[test]
fn email_change_without_phone_follows_policy() {
    let mut cfg = hesh_config();
    let p = providers::build(&cfg);
    let mut old = user("E1", "Ada");
    old.phone = None;
    let row = row_for(p.as_ref(), &old, AccountState::Active);
    let mut new = old.clone();
    new.email = "ada.new@example.com".into();
    let plan = run(&cfg, &[new.clone()], &[row.clone()]);
    assert!(plan.operations.is_empty());
    assert!(
        plan.manual[0].reason.contains("unchanged phone"),
        "{}",
        plan.manual[0].reason
    );
    cfg.on_email_change = OnEmailChange::Recreate;
    let plan = run(&cfg, &[new], &[row]);
    assert_eq!(ops(&plan), [(OpKind::Recreate, "E1")]);
    assert_eq!(plan.summary.recreate, 1);
}

#[test]
fn email_change_with_kept_phone_is_an_update() {
    let cfg = hesh_config();
    let p = providers::build(&cfg);
    let old = user("E1", "Ada");
    let row = row_for(p.as_ref(), &old, AccountState::Active);
    let mut new = old;
    new.email = "ada.new@example.com".into();
    assert_eq!(ops(&run(&cfg, &[new], &[row])), [(OpKind::Update, "E1")]);
}

#[test]
fn record_breaking_vendor_limits_is_rejected_and_the_rest_go_on() {
    let cfg = hesh_config();
    let plan = run(
        &cfg,
        &[user("E1", "Bartholomew-James"), user("E2", "Bob")],
        &[],
    );
    assert_eq!(ops(&plan), [(OpKind::Create, "E2")]);
    assert_eq!(plan.rejected.len(), 1);
    assert_eq!(plan.rejected[0].external_id, "E1");
    assert!(plan.rejected[0].reason.contains("first_name"));
}

#[test]
fn account_not_in_snapshot_is_never_touched_with_leavers_ignore() {
    // An inactive user with no row, leavers: ignore: rosterd never created or adopted
    // it, so nothing.
    let mut u = user("E1", "Ada");
    u.status_active = false;
    let mut cfg = hesh_config();
    cfg.leavers.action = crate::config::LeaverAction::Ignore;
    assert!(run(&cfg, &[u], &[]).is_empty());
}

#[test]
fn pre_hire_is_not_created_until_the_window() {
    let cfg = hesh_config();
    let mut u = user("E1", "Ada");
    u.start_date = Some(NaiveDate::from_ymd_opt(2026, 12, 1).unwrap());
    assert!(run(&cfg, &[u.clone()], &[]).is_empty());
    let p = providers::build(&cfg);
    let c = PlanContext {
        provision_days_before_start: 7,
        ..ctx()
    };
    assert_eq!(
        ops(&plan_provider(p.as_ref(), &cfg, &[u], &[], &c).unwrap()),
        [(OpKind::Create, "E1")]
    );
}

#[test]
fn future_termination_keeps_the_account_until_the_day() {
    let cfg = hesh_config();
    let p = providers::build(&cfg);
    let mut u = user("E1", "Ada");
    let row = row_for(p.as_ref(), &u, AccountState::Active);
    u.status_active = false;
    u.termination_date = Some(NaiveDate::from_ymd_opt(2026, 12, 31).unwrap());
    assert!(run(&cfg, &[u.clone()], &[row.clone()]).is_empty());
    u.termination_date = Some(today());
    assert_eq!(ops(&run(&cfg, &[u], &[row])), [(OpKind::Disable, "E1")]);
}

#[test]
fn rejected_source_row_holds_its_account() {
    let cfg = hesh_config();
    let p = providers::build(&cfg);
    let row = row_for(p.as_ref(), &user("E1", "Ada"), AccountState::Active);
    let c = PlanContext {
        held: ["E1".to_string()].into(),
        ..ctx()
    };
    let plan = plan_provider(p.as_ref(), &cfg, &[], &[row], &c).unwrap();
    assert!(plan.operations.is_empty());
    assert_eq!(plan.held.len(), 1);
    assert_eq!(plan.summary.held, 1);
}

#[test]
fn a_rejected_row_without_a_key_holds_the_account_with_its_email() {
    // A row whose id was empty (or null) but whose email is the account's: the
    // account is held, not disabled as "no longer in the source".
    let cfg = hesh_config();
    let p = providers::build(&cfg);
    let held = user("E1", "Ada");
    let other = user("E2", "Bob");
    let rows = [
        row_for(p.as_ref(), &held, AccountState::Active),
        row_for(p.as_ref(), &other, AccountState::Active),
    ];
    let c = PlanContext {
        held: [held.email.clone()].into(),
        ..ctx()
    };
    let plan = plan_provider(p.as_ref(), &cfg, &[], &rows, &c).unwrap();
    assert_eq!(plan.held.len(), 1);
    assert_eq!(plan.held[0].external_id, "E1");
    // Only the account no record is tied to is disabled.
    assert_eq!(ops(&plan), [(OpKind::Disable, "E2")]);
}

#[test]
fn manual_row_is_reported_again_with_its_error() {
    let cfg = hesh_config();
    let p = providers::build(&cfg);
    let u = user("E1", "Ada");
    let mut row = row_for(p.as_ref(), &u, AccountState::Manual);
    row.details.as_mut().unwrap().last_error = Some("created but not in the org".into());
    let plan = run(&cfg, &[u], &[row]);
    assert_eq!(plan.manual[0].reason, "created but not in the org");
}

#[test]
fn operations_come_out_in_key_order() {
    let cfg = hesh_config();
    let p = providers::build(&cfg);
    let gone = row_for(p.as_ref(), &user("E2", "Bob"), AccountState::Active);
    let plan = run(&cfg, &[user("E1", "Ada"), user("E3", "Cy")], &[gone]);
    assert_eq!(
        ops(&plan),
        [
            (OpKind::Create, "E1"),
            (OpKind::Disable, "E2"),
            (OpKind::Create, "E3")
        ]
    );
}

/// Ten hesh users whose snapshot rows are all in `state`, and a 20% disable guard.
fn percent_guard_case(
    state: AccountState,
) -> (ProviderConfig, Vec<User>, Vec<SnapshotRow>, SafetyConfig) {
    let cfg = hesh_config();
    let p = providers::build(&cfg);
    let users: Vec<User> = (0..10).map(|i| user(&format!("E{i}"), "Ada")).collect();
    let snapshot: Vec<SnapshotRow> = users
        .iter()
        .map(|u| row_for(p.as_ref(), u, state))
        .collect();
    let safety = SafetyConfig {
        max_disable_percent: Some(20.0),
        max_disable_count: None,
        max_update_percent: None,
        min_source_users: 1,
        quarantine_after: 0,
    };
    (cfg, users, snapshot, safety)
}

#[test]
fn disable_is_blocked_when_over_percent_threshold() {
    let (cfg, users, snapshot, safety) = percent_guard_case(AccountState::Active);
    let mut plan = run(&cfg, &users[..8], &snapshot);
    apply_guards(&mut plan, &safety, None);
    assert_eq!(plan.blocked, None, "2 of 10 is 20%: allowed");
    let mut plan = run(&cfg, &users[..7], &snapshot);
    apply_guards(&mut plan, &safety, None);
    let reason = plan.blocked.unwrap_or_default();
    assert!(
        reason.contains("3 of the 10") && reason.contains("max_disable_percent"),
        "{reason}"
    );
}

#[test]
fn disable_is_blocked_when_over_count_threshold() {
    let cfg = hesh_config();
    let p = providers::build(&cfg);
    let users: Vec<User> = (0..10).map(|i| user(&format!("E{i}"), "Ada")).collect();
    let snapshot: Vec<SnapshotRow> = users
        .iter()
        .map(|u| row_for(p.as_ref(), u, AccountState::Active))
        .collect();
    let safety = SafetyConfig {
        max_disable_percent: None,
        max_disable_count: Some(2),
        max_update_percent: None,
        min_source_users: 1,
        quarantine_after: 0,
    };
    let mut plan = run(&cfg, &users[..7], &snapshot);
    apply_guards(&mut plan, &safety, None);
    assert!(plan
        .blocked
        .unwrap_or_default()
        .contains("max_disable_count (2)"));
}

#[test]
fn too_small_source_blocks_every_provider() {
    let safety = SafetyConfig {
        min_source_users: 5,
        ..SafetyConfig::default()
    };
    let reason = check_source_size(0, &safety);
    assert!(reason
        .as_deref()
        .unwrap_or_default()
        .contains("min_source_users (5)"));
    assert_eq!(check_source_size(5, &safety), None);
    let mut plan = run(&hesh_config(), &[], &[]);
    apply_guards(&mut plan, &safety, reason.as_deref());
    assert!(plan.blocked.is_some());
}

/// The snapshot rosterd would hold after carrying out `plan` (what a test helper or
/// the executor writes): every create/update/enable stored, disables marked.
fn snapshot_after(
    provider: &dyn Provider,
    users: &[User],
    before: &[SnapshotRow],
    plan: &ProviderPlan,
) -> Vec<SnapshotRow> {
    let mut rows: std::collections::BTreeMap<String, SnapshotRow> = before
        .iter()
        .map(|r| (r.external_id.to_string(), r.clone()))
        .collect();
    for op in &plan.operations {
        match op.op {
            // A leaver's account, adopted as it is disabled (as the executor does).
            OpKind::Disable if op.adopt => {
                let u = users
                    .iter()
                    .find(|u| u.external_id == op.external_id)
                    .unwrap();
                let row = match provider.map_user(u) {
                    Ok(_) => row_for(provider, u, AccountState::Disabled),
                    // A record the vendor would refuse: adopted without one.
                    Err(_) => SnapshotRow {
                        external_id: u.external_id.clone().into(),
                        fingerprint: crate::providers::Fingerprint(0),
                        state: AccountState::Disabled,
                        failures: 0,
                        details: Some(Box::new(RowDetails {
                            email: u.email.clone().into(),
                            vendor_id: None,
                            record: "{}".into(),
                            last_error: None,
                        })),
                    },
                };
                rows.insert(op.external_id.clone(), row);
            }
            OpKind::Disable => {
                if let Some(r) = rows.get_mut(&op.external_id) {
                    r.state = AccountState::Disabled;
                }
            }
            OpKind::Delete => {
                rows.remove(&op.external_id);
            }
            OpKind::Enable if op.record.is_none() => {
                if let Some(r) = rows.get_mut(&op.external_id) {
                    r.state = AccountState::Active;
                }
            }
            _ => {
                let u = users
                    .iter()
                    .find(|u| u.external_id == op.external_id)
                    .unwrap();
                rows.insert(
                    op.external_id.clone(),
                    row_for(provider, u, AccountState::Active),
                );
            }
        }
    }
    rows.into_values().collect()
}

fn arb_user() -> impl Strategy<Value = User> {
    (
        0u32..40,
        "[A-Z][a-z]{0,12}",
        "[A-Z][a-z]{1,8}",
        any::<bool>(),
        prop::option::of("[0-9]{6}"),
        prop::sample::select(vec!["Sales", "Engineering"]),
    )
        .prop_map(|(id, first, last, active, phone, dept)| User {
            external_id: format!("E{id:03}"),
            email: format!("u{id}@example.com"),
            first_name: first,
            last_name: last,
            phone,
            status_active: active,
            start_date: None,
            termination_date: None,
            attributes: Attributes::from_pairs([("department".to_string(), dept.to_string())]),
        })
}

fn arb_users() -> impl Strategy<Value = Vec<User>> {
    prop::collection::vec(arb_user(), 0..30).prop_map(|mut v| {
        v.sort_by(|a, b| a.external_id.cmp(&b.external_id));
        v.dedup_by(|a, b| a.external_id == b.external_id);
        v
    })
}

proptest! {
    /// plan(x, snapshot_of(plan(x))) is empty, for every vendor, from any earlier state.
    #[test]
    fn applying_a_plan_then_planning_again_plans_nothing(before in arb_users(), after in arb_users(), vendor in 0usize..3) {
        let cfg = [hesh_config(), saleschat_config(), vyte_config()][vendor].clone();
        let p = providers::build(&cfg);
        let first = plan_provider(p.as_ref(), &cfg, &before, &[], &ctx()).unwrap();
        let snap1 = snapshot_after(p.as_ref(), &before, &[], &first);
        let second = plan_provider(p.as_ref(), &cfg, &after, &snap1, &ctx()).unwrap();
        let snap2 = snapshot_after(p.as_ref(), &after, &snap1, &second);
        let third = plan_provider(p.as_ref(), &cfg, &after, &snap2, &ctx()).unwrap();
        // Whatever is left is only what the vendor cannot do or would refuse.
        prop_assert!(third.operations.is_empty(), "{:?}", third.operations);
        prop_assert_eq!(third.manual.len(), second.manual.len());
        prop_assert_eq!(third.rejected.len(), second.rejected.len());
        // Nothing the source keeps active is ever disabled.
        for op in second.operations.iter().filter(|o| o.op == OpKind::Disable) {
            prop_assert!(!after.iter().any(|u| u.external_id == op.external_id && u.status_active));
        }
    }

    /// The plan is deterministic: same inputs, same plan.
    #[test]
    fn planning_is_deterministic(users in arb_users()) {
        let cfg = hesh_config();
        let p = providers::build(&cfg);
        let a = plan_provider(p.as_ref(), &cfg, &users, &[], &ctx()).unwrap();
        let b = plan_provider(p.as_ref(), &cfg, &users, &[], &ctx()).unwrap();
        prop_assert_eq!(a, b);
    }
}

#[test]
fn an_operation_failing_too_often_with_the_same_record_is_quarantined_until_it_changes() {
    let cfg = hesh_config();
    let p = providers::build(&cfg);
    let u = user("E1", "Ada");
    let fp = p.map_user(&u).unwrap().fingerprint().to_string();
    let failure = |count: u32, fingerprint: &str| crate::store::FailureRecord {
        op: OpKind::Create,
        fingerprint: fingerprint.into(),
        count,
        last_error: "hesh answered 400: bad phone".into(),
    };
    let with = |f: crate::store::FailureRecord| PlanContext {
        failures: [("hesh-prod".to_string(), [("E1".to_string(), f)].into())].into(),
        ..ctx()
    };
    // Two failures: still tried (the limit is 3).
    let plan = plan_provider(p.as_ref(), &cfg, &[u.clone()], &[], &with(failure(2, &fp))).unwrap();
    assert_eq!(ops(&plan), [(OpKind::Create, "E1")]);
    // Three with the same record: quarantined, with the last error.
    let plan = plan_provider(p.as_ref(), &cfg, &[u.clone()], &[], &with(failure(3, &fp))).unwrap();
    assert!(plan.operations.is_empty());
    assert_eq!(plan.quarantined[0].failures, 3);
    assert_eq!(
        plan.quarantined[0].last_error,
        "hesh answered 400: bad phone"
    );
    assert_eq!(plan.summary.quarantined, 1);
    // The record changed since: tried again.
    let plan = plan_provider(p.as_ref(), &cfg, &[u], &[], &with(failure(9, "0000"))).unwrap();
    assert_eq!(ops(&plan), [(OpKind::Create, "E1")]);
}

#[test]
fn lean_rows_ask_only_for_the_details_the_plan_needs() {
    let cfg = hesh_config();
    let p = providers::build(&cfg);
    let users: Vec<User> = (0..6).map(|i| user(&format!("E{i}"), "Ada")).collect();
    let mut snapshot: Vec<SnapshotRow> = users
        .iter()
        .map(|u| row_for(p.as_ref(), u, AccountState::Active))
        .collect();
    let full = snapshot.clone();
    for row in &mut snapshot {
        row.details = None;
    }
    // E1 renamed, E3 gone, E5 disabled-and-still-gone (never touched): only 1 and 3.
    snapshot[5].state = AccountState::Disabled;
    let mut now = users.clone();
    now[1].first_name = "Bea".into();
    now.retain(|u| u.external_id != "E3" && u.external_id != "E5");
    let need = plan_provider(p.as_ref(), &cfg, &now, &snapshot, &ctx()).unwrap_err();
    assert_eq!(need, NeedDetails(vec![1, 3]));
    for i in need.0 {
        snapshot[i].details = full[i].details.clone();
    }
    let plan = plan_provider(p.as_ref(), &cfg, &now, &snapshot, &ctx()).unwrap();
    assert_eq!(
        ops(&plan),
        [(OpKind::Update, "E1"), (OpKind::Disable, "E3")]
    );
    assert_eq!(plan.operations[1].email, "e3@example.com");
}

#[test]
fn stored_record_of_a_change_matches_the_new_fingerprint() {
    let cfg = hesh_config();
    let p = providers::build(&cfg);
    let u = user("E1", "Ada");
    let rec = p.map_user(&u).unwrap();
    let stored: StoredRecord = rec.to_stored();
    assert_eq!(stored.get("first_name"), Some("Ada"));
    let _unused: &Capabilities = p.capabilities();
}

#[test]
fn no_second_create_while_one_is_in_flight() {
    let cfg = hesh_config();
    let p = providers::build(&cfg);
    let c = PlanContext {
        unsettled: [("hesh-prod".to_string(), ["E1".to_string()].into())].into(),
        ..ctx()
    };
    let users = [user("E1", "Ada"), user("E2", "Bob")];
    let plan = plan_provider(p.as_ref(), &cfg, &users, &[], &c).unwrap();
    assert_eq!(ops(&plan), [(OpKind::Create, "E2")]);
}

#[test]
fn an_operation_of_unknown_outcome_makes_the_row_untrusted() {
    let cfg = hesh_config();
    let p = providers::build(&cfg);
    let c = PlanContext {
        uncertain: [(
            "hesh-prod".to_string(),
            ["E1".to_string(), "E2".to_string()].into(),
        )]
        .into(),
        ..ctx()
    };
    // E1 matches its row, but a disable of it may have gone through: enable it.
    let active = row_for(p.as_ref(), &user("E1", "Ada"), AccountState::Active);
    // E2 has left and its row says disabled, but an enable may have gone through.
    let disabled = row_for(p.as_ref(), &user("E2", "Bob"), AccountState::Disabled);
    let plan = plan_provider(
        p.as_ref(),
        &cfg,
        &[user("E1", "Ada")],
        &[active, disabled],
        &c,
    )
    .unwrap();
    assert_eq!(
        ops(&plan),
        [(OpKind::Enable, "E1"), (OpKind::Disable, "E2")]
    );
}

/// Accounts in manual state (saleschat: created but not yet in the org) can be
/// disabled, so the percentage guard counts them: "3 of 0 active (300%)" was the bug.
#[test]
fn the_percent_guard_counts_manual_state_accounts_and_never_shows_over_100() {
    let (cfg, users, snapshot, safety) = percent_guard_case(AccountState::Manual);
    let mut plan = run(&cfg, &users[..8], &snapshot);
    assert_eq!(
        plan.summary.count(OpKind::Disable),
        2,
        "{:?}",
        plan.operations
    );
    apply_guards(&mut plan, &safety, None);
    assert_eq!(plan.blocked, None, "2 of 10 is 20%: allowed");
    let mut plan = run(&cfg, &users[..7], &snapshot);
    apply_guards(&mut plan, &safety, None);
    let reason = plan.blocked.unwrap_or_default();
    assert!(
        reason.contains("3 of the 10") && reason.contains("(30.0%)"),
        "{reason}"
    );

    // Whatever the snapshot says, the share is of at least what is disabled.
    let mut plan = run(&cfg, &users[..7], &snapshot);
    plan.disableable_before = 0;
    apply_guards(&mut plan, &safety, None);
    let reason = plan.blocked.unwrap_or_default();
    assert!(
        reason.contains("3 of the 3") && reason.contains("(100.0%)"),
        "{reason}"
    );
}

// ----- leavers with existing accounts (no snapshot row) -------------------------

fn leaver(id: &str, terminated_days_ago: Option<u64>) -> User {
    let mut u = user(id, "Dana");
    u.status_active = false;
    u.termination_date = terminated_days_ago.map(|d| today() - chrono::Days::new(d));
    u
}

fn found(vendor_id: &str, active: Option<bool>) -> crate::providers::Found {
    crate::providers::Found {
        vendor_id: Some(vendor_id.into()),
        active,
    }
}

fn knowing(provider: &str, k: crate::plan::LeaverKnowledge) -> PlanContext {
    let mut c = ctx();
    c.leavers.insert(provider.into(), k);
    c
}

#[test]
fn a_recent_leaver_without_a_row_is_disabled_by_key_once_where_the_vendor_cannot_look_up() {
    let cfg = hesh_config();
    let plan = run(&cfg, &[leaver("E4", Some(10))], &[]);
    assert_eq!(ops(&plan), [(OpKind::Disable, "E4")]);
    let op = &plan.operations[0];
    assert!(op.adopt);
    assert_eq!(op.vendor_id, None);
    assert!(
        op.reason.contains("cannot look accounts up"),
        "{}",
        op.reason
    );
    // The record the adopted row keeps travels with it.
    assert!(op.record.is_some() && op.fingerprint.is_some());
    // Marked inactive without a date: included too.
    assert_eq!(
        ops(&run(&cfg, &[leaver("E5", None)], &[])),
        [(OpKind::Disable, "E5")]
    );
    // Once sent (recorded as checked), never again.
    let p = providers::build(&cfg);
    let checked = knowing(
        &cfg.name,
        crate::plan::LeaverKnowledge {
            checked: ["E4".to_string()].into(),
            ..Default::default()
        },
    );
    let again = plan_provider(p.as_ref(), &cfg, &[leaver("E4", Some(10))], &[], &checked).unwrap();
    assert!(again.is_empty(), "{again:?}");
}

#[test]
fn leavers_are_looked_for_only_within_the_window_in_scope_and_when_asked() {
    let cfg = hesh_config();
    // Left 400 days ago: outside the default 365.
    assert!(run(&cfg, &[leaver("E1", Some(400))], &[]).is_empty());
    let mut wide = cfg.clone();
    wide.leavers.within_days = 500;
    assert_eq!(
        ops(&run(&wide, &[leaver("E1", Some(400))], &[])),
        [(OpKind::Disable, "E1")]
    );
    // Out of the provider's scope: not its account to manage.
    let mut scoped = cfg.clone();
    scoped.scope =
        serde_json::from_value(serde_json::json!({"exclude": {"department": ["Sales"]}})).unwrap();
    let mut sales = leaver("E2", Some(3));
    sales.attributes = Attributes::from_pairs([("department".to_string(), "Sales".to_string())]);
    assert!(run(&scoped, &[sales], &[]).is_empty());
    // Active people and pre-hires are not leavers.
    assert!(run(&cfg, &[user("E3", "Ann")], &[])
        .operations
        .iter()
        .all(|o| !o.adopt));
}

#[test]
fn a_leaver_is_looked_up_where_the_vendor_can_and_the_account_found_is_disabled() {
    let cfg = saleschat_config();
    let p = providers::build(&cfg);
    // Not looked up yet: a check, no operation.
    let plan = run(&cfg, &[leaver("E4", Some(10))], &[]);
    assert!(plan.operations.is_empty());
    assert_eq!(plan.leaver_checks.len(), 1);
    assert_eq!(plan.leaver_checks[0].external_id, "E4");
    assert_eq!(plan.leaver_checks[0].operation.op, OpKind::Disable);
    // Found: disabled, with the vendor's id, counted like any disable.
    let k = crate::plan::LeaverKnowledge {
        found: [("E4".to_string(), found("sc-9", None))].into(),
        ..Default::default()
    };
    let plan = plan_provider(
        p.as_ref(),
        &cfg,
        &[leaver("E4", Some(10))],
        &[],
        &knowing(&cfg.name, k.clone()),
    )
    .unwrap();
    assert_eq!(ops(&plan), [(OpKind::Disable, "E4")]);
    assert_eq!(plan.operations[0].vendor_id.as_deref(), Some("sc-9"));
    assert_eq!(plan.operations[0].reason, crate::plan::LEAVER_REASON);
    assert!(plan.leaver_checks.is_empty());
    assert_eq!(plan.summary.disable, 1);
    // leavers: report lists it as manual action only.
    let mut report = cfg.clone();
    report.leavers.action = crate::config::LeaverAction::Report;
    let plan = plan_provider(
        p.as_ref(),
        &report,
        &[leaver("E4", Some(10))],
        &[],
        &knowing(&cfg.name, k),
    )
    .unwrap();
    assert!(plan.operations.is_empty());
    assert_eq!(plan.manual.len(), 1);
    assert!(plan.manual[0].reason.contains("leavers: report"));
}

#[test]
fn a_leaver_found_at_a_vendor_without_a_disable_call_is_manual_action() {
    let cfg = vyte_config();
    let p = providers::build(&cfg);
    let k = crate::plan::LeaverKnowledge {
        found: [("E4".to_string(), found("vy-1", None))].into(),
        ..Default::default()
    };
    let plan = plan_provider(
        p.as_ref(),
        &cfg,
        &[leaver("E4", Some(1))],
        &[],
        &knowing(&cfg.name, k),
    )
    .unwrap();
    assert!(plan.operations.is_empty());
    assert_eq!(plan.manual.len(), 1);
    assert!(
        plan.manual[0].reason.contains("remove access by hand"),
        "{}",
        plan.manual[0].reason
    );
}

#[test]
fn a_first_run_that_adopts_many_and_disables_a_few_leavers_is_not_blocked() {
    let cfg = hesh_config();
    let mut users: Vec<User> = (0..100).map(|i| user(&format!("A{i:03}"), "Ann")).collect();
    users.extend((0..3).map(|i| leaver(&format!("L{i}"), Some(5))));
    users.sort_by(|a, b| a.external_id.cmp(&b.external_id));
    let mut plan = run(&cfg, &users, &[]);
    assert_eq!((plan.summary.create, plan.summary.disable), (100, 3));
    let safety = crate::config::SafetyConfig {
        max_disable_percent: Some(10.0),
        ..Default::default()
    };
    crate::plan::apply_guards(&mut plan, &safety, None);
    assert_eq!(plan.blocked, None);
    // 3 of 103 is under 10%; 3 leavers of a 20-account first run is not.
    let mut small = run(
        &cfg,
        &users[..20]
            .iter()
            .chain(&users[100..])
            .cloned()
            .collect::<Vec<_>>(),
        &[],
    );
    crate::plan::apply_guards(&mut small, &safety, None);
    let reason = small.blocked.unwrap();
    assert!(reason.contains("3 of the 23 account(s)"), "{reason}");
}

/// A create that needed manual action without making an account (a SCIM 409 with
/// no user to adopt) stays manual, sending nothing, while the record is unchanged,
/// and is tried again as a create once it changes.
#[test]
fn a_manual_row_without_an_account_is_created_again_only_when_its_record_changes() {
    let cfg = hesh_config();
    let p = providers::build(&cfg);
    let u = user("E1", "Ada");
    let mut row = row_for(p.as_ref(), &u, AccountState::Manual);
    let d = row.details.as_mut().unwrap();
    d.vendor_id = None;
    d.last_error = Some("409: userName is taken".into());
    let plan = run(&cfg, std::slice::from_ref(&u), std::slice::from_ref(&row));
    assert!(plan.operations.is_empty(), "{:?}", plan.operations);
    assert_eq!(plan.manual[0].reason, "409: userName is taken");
    let changed = user("E1", "Augusta");
    let plan = run(&cfg, &[changed], &[row]);
    assert_eq!(ops(&plan), [(OpKind::Create, "E1")]);
    assert!(plan.manual.is_empty());
}
