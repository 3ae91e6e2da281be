//! Safety guards: stop a provider's plan before any write when it would disable too
//! much, or when the source looks truncated. A blocked plan still lists everything it
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
