//! The fake hesh for the benchmarks, with the siblings it uses (`super::` inside it is
//! this module): the same files the integration tests use, not copies.

#![allow(dead_code)]

#[path = "../../tests/support/fake_hesh.rs"]
pub mod fake_hesh;
#[path = "../../tests/support/fake_server.rs"]
pub mod fake_server;
#[path = "../../tests/support/openapi.rs"]
pub mod openapi;
#[path = "../../tests/support/rate_window.rs"]
pub mod rate_window;

use chrono::{TimeZone, Utc};
use rosterd::providers::Provider;
use rosterd::store::{AccountState, SnapshotUpsert, Store};
use rosterd::user::User;

/// Fills the snapshot of `provider` with exactly what rosterd would have pushed for
/// `users` (all active, confirmed on 2026-11-01): the state a converged first pass
/// leaves, built without a vendor.
pub async fn fill_snapshot(store: &Store, provider: &dyn Provider, users: &[User]) {
    let confirmed = Utc.with_ymd_and_hms(2026, 11, 1, 0, 0, 0).unwrap();
    for chunk in users.chunks(50_000) {
        let records: Vec<_> = chunk
            .iter()
            .map(|u| {
                let r = provider.map_user(u).unwrap();
                (r.to_stored().to_json(), r.fingerprint())
            })
            .collect();
        let rows: Vec<SnapshotUpsert> = chunk
            .iter()
            .zip(&records)
            .map(|(u, (json, fp))| SnapshotUpsert {
                provider: provider.name(),
                external_id: &u.external_id,
                vendor_id: None,
                email: &u.email,
                fingerprint: *fp,
                state: AccountState::Active,
                record_json: json,
                confirmed_at: confirmed,
            })
            .collect();
        store.upsert_snapshot_many(&rows).await.unwrap();
    }
}
