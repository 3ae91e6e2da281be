//! The ids of named people at a provider, for reference fields (a manager): see
//! `executor::references`.

use std::collections::{BTreeSet, HashMap};

use super::{query_err, Store, StoreError};

/// Keys per query: well under every backend's limit on bound parameters.
const CHUNK: usize = 500;

impl Store {
    /// The vendor ids `provider` holds for `keys` (those with a row and an id).
    pub async fn reference_ids(
        &self,
        provider: &str,
        keys: &BTreeSet<String>,
    ) -> Result<HashMap<String, String>, StoreError> {
        let keys: Vec<&String> = keys.iter().collect();
        let mut ids = HashMap::with_capacity(keys.len());
        for chunk in keys.chunks(CHUNK) {
            let rows: Vec<(String, String)> = with_pool!(self, async |pool| {
                let mut q = sqlx::QueryBuilder::new(
                    "SELECT external_id, vendor_id FROM snapshot \
                     WHERE vendor_id IS NOT NULL AND provider = ",
                );
                q.push_bind(provider).push(" AND external_id IN (");
                let mut list = q.separated(", ");
                for key in chunk {
                    list.push_bind(key.as_str());
                }
                q.push(")");
                q.build_query_as().fetch_all(pool).await
            })
            .map_err(query_err("read the ids of named people"))?;
            ids.extend(rows);
        }
        Ok(ids)
    }
}
