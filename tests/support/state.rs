//! Reading rosterd's state file after a run, as a test compares it: the snapshot rows
//! of one provider.

use std::path::Path;

use rosterd::store::{AccountState, Store};

/// (external_id, state) of every snapshot row of `provider` in the state file at
/// `state`.
pub async fn snapshot_states(state: &Path, provider: &str) -> Vec<(String, AccountState)> {
    let store = Store::open_read_only(state).await.unwrap().unwrap();
    let rows = store.snapshot(provider).await.unwrap();
    store.close().await;
    rows.into_iter()
        .map(|r| (r.external_id.to_string(), r.state))
        .collect()
}

/// (external_id, state, vendor id) of every snapshot row of `provider`.
pub async fn snapshot_with_ids(
    state: &Path,
    provider: &str,
) -> Vec<(String, AccountState, Option<String>)> {
    let store = Store::open_read_only(state).await.unwrap().unwrap();
    let mut rows = store.snapshot(provider).await.unwrap();
    let all: Vec<usize> = (0..rows.len()).collect();
    store.fill_details(provider, &mut rows, &all).await.unwrap();
    store.close().await;
    rows.iter()
        .map(|r| {
            let vendor_id = r
                .details
                .as_ref()
                .and_then(|d| d.vendor_id.as_deref().map(str::to_string));
            (r.external_id.to_string(), r.state, vendor_id)
        })
        .collect()
}
