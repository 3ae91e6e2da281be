//! Each provider's last known rate-limit window (`rate_windows`), so that the pacer
//! of the next process starts from it (see `executor/windows.rs`). The store keeps
//! what it is given; whether a window still applies (its reset still to come) is the
//! caller's decision.

use chrono::{DateTime, Utc};

use super::{parse_time, query_err, time_text, Store, StoreError};

/// What a vendor's answers said of its window, in absolute time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateWindow {
    pub limit: Option<u64>,
    /// Requests left (less those sent and perhaps not yet counted by the vendor).
    pub remaining: u64,
    pub reset_at: DateTime<Utc>,
    pub observed_at: DateTime<Utc>,
}

impl Store {
    /// Remembers `provider`'s window at `base_url`, replacing what was remembered.
    pub async fn save_rate_window(
        &self,
        provider: &str,
        base_url: &str,
        window: &RateWindow,
    ) -> Result<(), StoreError> {
        with_pool!(self, |pool| sqlx::query(
            "INSERT INTO rate_windows \
                (provider, base_url, request_limit, remaining, reset_at, observed_at) \
             VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (provider) DO UPDATE SET \
                base_url = excluded.base_url, request_limit = excluded.request_limit, \
                remaining = excluded.remaining, reset_at = excluded.reset_at, \
                observed_at = excluded.observed_at",
        )
        .bind(provider)
        .bind(base_url)
        .bind(window.limit.map(clamp))
        .bind(clamp(window.remaining))
        .bind(time_text(window.reset_at))
        .bind(time_text(window.observed_at))
        .execute(pool)
        .await
        .map(|_| ()))
        .map_err(query_err("save a rate-limit window"))
    }

    /// `provider`'s remembered window, if it was for `base_url`. A state file older
    /// than the table (opened read-only, so not migrated) has none.
    pub async fn rate_window(
        &self,
        provider: &str,
        base_url: &str,
    ) -> Result<Option<RateWindow>, StoreError> {
        const ACTION: &str = "read a rate-limit window";
        if !self
            .has_table("rate_windows")
            .await
            .map_err(query_err(ACTION))?
        {
            return Ok(None);
        }
        let row: Option<(Option<i64>, i64, String, String)> = with_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT request_limit, remaining, reset_at, observed_at FROM rate_windows \
                 WHERE provider = $1 AND base_url = $2",
            )
            .bind(provider)
            .bind(base_url)
            .fetch_optional(pool)
            .await
        })
        .map_err(query_err(ACTION))?;
        let Some((limit, remaining, reset_at, observed_at)) = row else {
            return Ok(None);
        };
        let bad = |message: String| StoreError::CorruptRow {
            table: "rate_windows",
            key: provider.to_string(),
            message,
        };
        Ok(Some(RateWindow {
            limit: limit.map(|l| u64::try_from(l).unwrap_or(0)),
            remaining: u64::try_from(remaining).unwrap_or(0),
            reset_at: parse_time(&reset_at).map_err(bad)?,
            observed_at: parse_time(&observed_at).map_err(bad)?,
        }))
    }
}

/// SQLite integers are signed: a vendor's absurd count is held to the largest.
fn clamp(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_state::{on_both_backends, Fresh};

    async fn a_window_is_kept_per_provider_and_forgotten_for_another_url(state: &Fresh) {
        let store = state.open().await;
        let t = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let w = RateWindow {
            limit: Some(5),
            remaining: 0,
            reset_at: t + chrono::Duration::seconds(10),
            observed_at: t,
        };
        assert_eq!(store.rate_window("hesh", "https://a").await.unwrap(), None);
        store
            .save_rate_window("hesh", "https://a", &w)
            .await
            .unwrap();
        let later = RateWindow { remaining: 3, ..w };
        store
            .save_rate_window("hesh", "https://a", &later)
            .await
            .unwrap();
        assert_eq!(
            store.rate_window("hesh", "https://a").await.unwrap(),
            Some(later)
        );
        assert_eq!(store.rate_window("hesh", "https://b").await.unwrap(), None);
        assert_eq!(store.rate_window("vyte", "https://a").await.unwrap(), None);
        store.forget_provider("hesh").await.unwrap();
        assert_eq!(store.rate_window("hesh", "https://a").await.unwrap(), None);
    }

    on_both_backends!(a_window_is_kept_per_provider_and_forgotten_for_another_url);
}
