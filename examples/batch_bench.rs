//! Requests per created user with batching: N creates through the fake hesh at
//! several `batch_size`s (hesh's batch endpoint; one request per batch when hesh
//! answers, more when it skips users that must be adopted).
//!
//! `cargo run --release --example batch_bench -- [N]` (default 1,000).

// A benchmark program, not library code: failing loudly is what it should do.
#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::atomic::AtomicBool;
use std::time::Instant;

use rosterd::config::Config;
use support::fake_hesh::{FakeHesh, FakeHeshOptions};
use support::fake_server::FakeVendor;

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(1000);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    println!("| batch_size | users created | requests | requests per user | wall time |");
    println!("| --- | --- | --- | --- | --- |");
    for batch in [1usize, 10, 100] {
        let fake = FakeHesh::start_blocking(FakeHeshOptions {
            limit: 1_000_000,
            ..FakeHeshOptions::default()
        });
        let dir = tempfile::tempdir().unwrap();
        let mut csv = String::from("id,email,first_name,last_name,phone\n");
        for i in 0..n {
            csv.push_str(&format!(
                "E{i:05},user{i}@corp.example,Fn{},Last{i},+1555{i:07}\n",
                i % 1000
            ));
        }
        std::fs::write(dir.path().join("users.csv"), csv).unwrap();
        let yaml = format!(
            "state: state.db\nsource: {{ type: csv, path: users.csv, fields: {{ external_id: id }} }}\n\
             providers:\n  - name: hesh\n    type: hesh\n    base_url: {}\n    api_key: ${{KEY}}\n    tenant_id: {}\n    batch_size: {batch}\n",
            fake.base_url(),
            fake.tenant_id()
        );
        let path = dir.path().join("rosterd.yaml");
        std::fs::write(&path, &yaml).unwrap();
        let key = fake.api_key().to_string();
        let config =
            Config::from_yaml(&yaml, &path, &|v| (v == "KEY").then(|| key.clone())).unwrap();
        let selected: Vec<_> = config.providers.iter().collect();
        let clock = rosterd::clock::now;
        let stop = AtomicBool::new(false);
        let today = rosterd::clock::now().date_naive();
        let t = Instant::now();
        runtime
            .block_on(rosterd::sync::apply_pass(
                &rosterd::sync::ApplyRequest::new(&config, &selected, today),
                &clock,
                &stop,
            ))
            .unwrap();
        let wall = t.elapsed();
        let created = fake.users().len();
        assert_eq!(created, n, "everyone created");
        let requests = fake.requests().len();
        println!(
            "| {batch} | {created} | {requests} | {:.3} | {:.2} s |",
            requests as f64 / created as f64,
            wall.as_secs_f64()
        );
    }
}
