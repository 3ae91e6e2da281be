//! Safety guards: stop a provider's plan before any write when it would disable too
//! much, rewrite most of a directory (a mapping change gone wrong), or when the source
//! looks truncated. A blocked plan still lists everything it
//! would have done, so the operator can see why it was stopped.

use super::{OpKind, ProviderPlan};
use crate::config::SafetyConfig;

/// The source-wide guard: `Some(reason)` when the source yielded too few users.
pub fn check_source_size(valid_users: usize, safety: &SafetyConfig) -> Option<String> {
    let min = safety.min_source_users;
    (u64::try_from(valid_users).unwrap_or(u64::MAX) < min).then(|| {
        format!(
            "the source returned {valid_users} valid user(s), fewer than safety.min_source_users ({min}): \
             an empty or truncated export must not disable anyone"
        )
    })
}

/// Marks `plan` blocked when it trips a guard (`source_block` is the source-wide
/// verdict from [`check_source_size`]). The first reason found is kept.
pub fn apply_guards(plan: &mut ProviderPlan, safety: &SafetyConfig, source_block: Option<&str>) {
    if plan.blocked.is_some() {
        return;
    }
    if let Some(reason) = source_block {
        plan.blocked = Some(reason.to_string());
        return;
    }
    if let Some(reason) = check_updates(plan, safety) {
        plan.blocked = Some(reason);
        return;
    }
    if let Some(reason) = check_memberships(plan, safety) {
        plan.blocked = Some(reason);
        return;
    }
    let removals = plan.summary.count(OpKind::Disable) + plan.summary.count(OpKind::Delete);
    if removals == 0 {
        return;
    }
    if let Some(max) = safety.max_disable_count {
        if u64::try_from(removals).unwrap_or(u64::MAX) > max {
            plan.blocked = Some(format!(
                "the plan would disable or delete {removals} account(s), more than safety.max_disable_count ({max})"
            ));
            return;
        }
    }
    if let Some(max_pct) = safety.max_disable_percent {
        // The base is every account rosterd holds there as able to be disabled, plus
        // the leavers' accounts this plan adopts to disable them — and, on a first
        // run (nothing held yet), its creates, each a new or adopted account: a first
        // run that adopts 100 accounts and disables 3 leavers is 3 of 103, not 3 of
        // 3. Creates do not count once rosterd holds accounts: an export whose keys
        // all changed would otherwise plan 1,000 creates beside its 1,000 disables
        // and meet half the ratio. Every account a disable reaches is in the base,
        // so the share is never over 100%.
        let leavers = plan.operations.iter().filter(|o| o.adopt).count();
        let first_run_creates = if plan.disableable_before == 0 {
            plan.summary.count(OpKind::Create)
        } else {
            0
        };
        let base = (plan.disableable_before + leavers + first_run_creates).max(removals);
        let pct = removals as f64 * 100.0 / base as f64;
        if pct > max_pct {
            plan.blocked = Some(format!(
                "the plan would disable or delete {removals} of the {base} account(s) rosterd \
                 holds there as active or in manual state or takes on in this plan \
                 ({pct:.1}%), more than safety.max_disable_percent ({max_pct}%)"
            ));
        }
    }
}

/// `Some(reason)` when the plan takes away more than `safety.max_disable_percent` of
/// the group memberships rosterd added there, from users it leaves in no group (a
/// move to another group is not a loss): what an export whose group column came out
/// empty does, and as harmful as a mass disable.
fn check_memberships(plan: &ProviderPlan, safety: &SafetyConfig) -> Option<String> {
    let max_pct = safety.max_disable_percent?;
    let lost = super::lost_memberships(&plan.groups);
    if lost == 0 {
        return None;
    }
    let base = plan.memberships_before.max(lost);
    let pct = lost as f64 * 100.0 / base as f64;
    (pct > max_pct).then(|| {
        format!(
            "the plan would remove {lost} of the {base} group membership(s) rosterd added there \
             from users it leaves in no group ({pct:.1}%), more than safety.max_disable_percent \
             ({max_pct}%): check the source's group column"
        )
    })
}

/// Plans of at most this many updates are never stopped by `max_update_percent`: a
/// small directory's ordinary changes (two of three people renamed) are not a mass
/// rewrite, and a mapping mistake there costs a handful of requests.
pub const UPDATE_GUARD_FLOOR: usize = 10;

/// `Some(reason)` when the plan updates more than `safety.max_update_percent` of the
/// accounts rosterd holds there (active or in manual state): what a changed mapping
/// (a typo in a template, a wrong lookup table) does to every account at once.
fn check_updates(plan: &ProviderPlan, safety: &SafetyConfig) -> Option<String> {
    let max_pct = safety.max_update_percent?;
    // Only updates that change what rosterd knows it sent: the resends after a crash
    // (an outcome never confirmed, so no old record to compare) are not a rewrite.
    let updates = plan
        .operations
        .iter()
        .filter(|o| o.op == OpKind::Update && !o.changes.is_empty())
        .count();
    if updates <= UPDATE_GUARD_FLOOR {
        return None;
    }
    let base = plan.disableable_before.max(updates);
    let pct = updates as f64 * 100.0 / base as f64;
    (pct > max_pct).then(|| {
        format!(
            "the plan would update {updates} of the {base} account(s) rosterd holds there as \
             active or in manual state ({pct:.1}%), more than safety.max_update_percent \
             ({max_pct}%): check the attribute mappings, or raise the limit if the change is meant"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{FieldChange, Operation};
    use crate::providers::ProviderType;

    fn plan(held: usize, updates: usize) -> ProviderPlan {
        ProviderPlan {
            name: "zaia".into(),
            provider_type: ProviderType::Zaia,
            summary: super::super::Summary {
                update: updates,
                ..Default::default()
            },
            operations: (0..updates)
                .map(|i| Operation {
                    op: OpKind::Update,
                    external_id: format!("E{i}"),
                    email: format!("u{i}@corp.example"),
                    vendor_id: None,
                    reason: "record changed".into(),
                    changes: vec![FieldChange {
                        field: "tierId".into(),
                        old: Some("a".into()),
                        new: Some("b".into()),
                    }],
                    record: None,
                    fingerprint: None,
                    adopt: false,
                })
                .collect(),
            rejected: Vec::new(),
            manual: Vec::new(),
            held: Vec::new(),
            quarantined: Vec::new(),
            blocked: None,
            leaver_checks: Vec::new(),
            requests: None,
            disableable_before: held,
            groups: Vec::new(),
            memberships_before: 0,
        }
    }

    #[test]
    fn update_is_blocked_when_over_percent_threshold() {
        let safety = SafetyConfig::default();
        let mut p = plan(40, 20);
        apply_guards(&mut p, &safety, None);
        assert_eq!(p.blocked, None, "20 of 40 is 50%: allowed");
        let mut p = plan(40, 21);
        apply_guards(&mut p, &safety, None);
        assert_eq!(
            p.blocked.as_deref(),
            Some(
                "the plan would update 21 of the 40 account(s) rosterd holds there as active or \
                 in manual state (52.5%), more than safety.max_update_percent (50%): check the \
                 attribute mappings, or raise the limit if the change is meant"
            )
        );
    }

    #[test]
    fn resends_without_known_changes_do_not_count() {
        let mut p = plan(20, 20);
        for o in &mut p.operations {
            o.changes.clear();
        }
        apply_guards(&mut p, &SafetyConfig::default(), None);
        assert_eq!(p.blocked, None, "a crash's resends are not a rewrite");
    }

    #[test]
    fn few_updates_and_a_disabled_guard_are_never_blocked() {
        let mut p = plan(10, UPDATE_GUARD_FLOOR);
        apply_guards(&mut p, &SafetyConfig::default(), None);
        assert_eq!(p.blocked, None, "a small directory's changes pass");
        let off = SafetyConfig {
            max_update_percent: None,
            ..SafetyConfig::default()
        };
        let mut p = plan(100, 100);
        apply_guards(&mut p, &off, None);
        assert_eq!(p.blocked, None);
        let mut p = plan(100, 100);
        apply_guards(&mut p, &SafetyConfig::default(), None);
        assert!(p.blocked.is_some());
    }
}
