//! Leavers already looked for at a vendor (`leaver_checks`): each leaver the
//! snapshot has no row for is looked up once per provider, so that the passes after
//! the first neither look again nor send a blind disable again.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};

use super::{query_err, time_text, Store, StoreError};

/// What looking for a leaver's account found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaverOutcome {
    /// The vendor has no account for this person.
    Absent,
    /// It has one, already disabled.
    Inactive,
}

impl LeaverOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            LeaverOutcome::Absent => "absent",
            LeaverOutcome::Inactive => "inactive",
        }
    }
}

impl Store {
    /// Records that `external_id`'s account was looked for at `provider`.
    pub async fn record_leaver_check(
        &self,
        provider: &str,
        external_id: &str,
        outcome: LeaverOutcome,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        with_pool!(self, |pool| sqlx::query(
            "INSERT INTO leaver_checks (provider, external_id, outcome, checked_at) \
             VALUES ($1, $2, $3, $4) \
             ON CONFLICT (provider, external_id) DO UPDATE SET \
                outcome = excluded.outcome, checked_at = excluded.checked_at",
        )
        .bind(provider)
        .bind(external_id)
        .bind(outcome.as_str())
        .bind(time_text(now))
        .execute(pool)
        .await
        .map(|_| ()))
        .map_err(query_err("record a leaver check"))
    }

    /// The keys of the leavers already looked for at `provider`.
    pub async fn leaver_checks(&self, provider: &str) -> Result<BTreeSet<String>, StoreError> {
        with_pool!(self, |pool| sqlx::query_scalar(
            "SELECT external_id FROM leaver_checks WHERE provider = $1"
        )
        .bind(provider)
        .fetch_all(pool)
        .await)
        .map(|keys: Vec<String>| keys.into_iter().collect())
        .map_err(query_err("read leaver checks"))
    }
}
