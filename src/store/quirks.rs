//! SCIM quirks remembered per provider (`scim_quirks`, see
//! `providers/scim/quirks.rs`): what a service turned out not to do, so that later
//! passes take the fallback from the start. The store keeps what it is given; the
//! provider decides which rows still apply (by their config digest).

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{query_err, time_text, Store, StoreError};

/// One remembered quirk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct QuirkRow {
    pub provider: String,
    pub quirk: String,
    /// Digest of the provider's config when it was learned.
    pub config_digest: String,
    /// What showed it (the service's answer).
    pub detail: String,
    pub detected_at: String,
}

impl Store {
    /// Remembers a quirk learned now (replacing what was remembered for it).
    pub async fn record_quirk(
        &self,
        provider: &str,
        quirk: &str,
        config_digest: &str,
        detail: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        with_pool!(self, |pool| sqlx::query(
            "INSERT INTO scim_quirks (provider, quirk, config_digest, detail, detected_at) \
             VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (provider, quirk) DO UPDATE SET \
                config_digest = excluded.config_digest, detail = excluded.detail, \
                detected_at = excluded.detected_at",
        )
        .bind(provider)
        .bind(quirk)
        .bind(config_digest)
        // Free text from a vendor's answer: scrubbed before it is kept.
        .bind(crate::redact::scrub(detail).into_owned())
        .bind(time_text(now))
        .execute(pool)
        .await
        .map(|_| ()))
        .map_err(query_err("remember a SCIM quirk"))
    }

    /// The quirks remembered, for one provider or all, by provider and quirk.
    /// A state file older than the table (opened read-only, so not migrated, by
    /// `status` or `check`) has none.
    pub async fn quirks(&self, provider: Option<&str>) -> Result<Vec<QuirkRow>, StoreError> {
        const ACTION: &str = "read the SCIM quirks";
        if !self
            .has_table("scim_quirks")
            .await
            .map_err(query_err(ACTION))?
        {
            return Ok(Vec::new());
        }
        let rows: Vec<(String, String, String, String, String)> = with_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT provider, quirk, config_digest, detail, detected_at FROM scim_quirks \
                 WHERE $1 IS NULL OR provider = $1 ORDER BY provider, quirk",
            )
            .bind(provider)
            .fetch_all(pool)
            .await
        })
        .map_err(query_err(ACTION))?;
        Ok(rows
            .into_iter()
            .map(
                |(provider, quirk, config_digest, detail, detected_at)| QuirkRow {
                    provider,
                    quirk,
                    config_digest,
                    detail,
                    detected_at,
                },
            )
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use crate::store::test_state::{on_both_backends, Fresh};

    async fn a_quirk_is_remembered_once_per_provider_and_replaced_when_learned_again(
        state: &Fresh,
    ) {
        let store = state.open().await;
        let t = chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        store
            .record_quirk("wiki", "patch_unusable", "d1", "PATCH 501", t)
            .await
            .unwrap();
        store
            .record_quirk("wiki", "patch_unusable", "d2", "PATCH 405", t)
            .await
            .unwrap();
        store
            .record_quirk("crm", "bulk_unusable", "d3", "Bulk 501", t)
            .await
            .unwrap();
        let all = store.quirks(None).await.unwrap();
        assert_eq!(all.len(), 2);
        let wiki = store.quirks(Some("wiki")).await.unwrap();
        assert_eq!(wiki.len(), 1);
        assert_eq!(
            (wiki[0].config_digest.as_str(), wiki[0].detail.as_str()),
            ("d2", "PATCH 405")
        );
    }

    on_both_backends!(a_quirk_is_remembered_once_per_provider_and_replaced_when_learned_again);
}
