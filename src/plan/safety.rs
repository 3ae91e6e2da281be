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
        // Every account a disable reaches is one rosterd holds (or adopts in this
        // plan): the base is never smaller than what is disabled, so the share is
        // never over 100%.
        let base = plan.disableable_before.max(removals);
        let pct = removals as f64 * 100.0 / base as f64;
        if pct > max_pct {
            plan.blocked = Some(format!(
                "the plan would disable or delete {removals} of the {base} account(s) rosterd \
                 holds there as active or in manual state ({pct:.1}%), more than \
                 safety.max_disable_percent ({max_pct}%)"
            ));
        }
    }
}
