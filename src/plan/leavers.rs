//! Leavers who already have an account: a person the source says has left, whom
//! the snapshot has no row for, may hold an account made before rosterd. The first
//! job of a provisioning tool is to cut leavers off, so the plan looks for it
//! (`providers[].leavers`, default `disable`):
//!
//! | vendor can look up | found this pass      | plan                                   |
//! |--------------------|----------------------|----------------------------------------|
//! | yes                | not yet looked up    | a leaver check (looked up by the pass) |
//! | yes                | active (or unknown)  | `disable`, adopting it (or manual)     |
//! | yes                | absent / inactive    | nothing, recorded: never looked again  |
//! | no (hesh)          | —                    | `disable` by key, once                 |
//!
//! Only people in the provider's scope, who left within `leavers.within_days`.

use std::collections::{BTreeMap, BTreeSet};

use chrono::NaiveDate;
use serde::Serialize;

use super::Operation;
use crate::providers::Found;
use crate::user::{Lifecycle, User};

/// The reason a leaver's existing account is disabled, in the plan.
pub const LEAVER_REASON: &str = "leaver with an existing account";

/// A leaver whose account is to be looked up at the vendor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct LeaverCheck {
    pub external_id: String,
    pub email: String,
    /// The disable that the lookup would carry out: who to look for (key, email,
    /// mapped record), as the vendor's lookups read it.
    #[serde(skip)]
    pub operation: Operation,
    /// Why the last lookup failed, when it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// What the state and this pass's lookups know of one provider's leavers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LeaverKnowledge {
    /// Keys looked for in an earlier pass (absent or already inactive).
    pub checked: BTreeSet<String>,
    /// Accounts found active (or of unknown state) this pass, by key.
    pub found: BTreeMap<String, Found>,
}

/// Whether `user` is a leaver the plan looks for: inactive on `today`, and (when the
/// source gives a termination date) terminated at most `within_days` days ago. A
/// person marked inactive without a date is included: the source does not say when
/// they left, and an account left active is the worse mistake.
pub fn is_recent_leaver(
    user: &User,
    today: NaiveDate,
    provision_days_before_start: u32,
    within_days: u32,
) -> bool {
    if user.lifecycle(today, provision_days_before_start) != Lifecycle::Inactive {
        return false;
    }
    match user.termination_date {
        Some(end) => (today - end).num_days() <= i64::from(within_days),
        None => true,
    }
}
