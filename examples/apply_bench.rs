//! Apply benchmark: 2,000 updates pushed through the fake hesh with a rate limit of 50
//! requests per 1-second window (the real `X-RateLimit-*` headers), reporting the
//! achieved request rate as a share of the allowed rate and the number of 429s.
//!
//! `cargo run --release --example apply_bench -- [USERS] [LIMIT_PER_SECOND]`

// A benchmark program, not library code: failing loudly is what it should do.
#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::atomic::AtomicBool;
use std::time::Duration;

use rosterd::config::Config;
use support::fake_hesh::{FakeHesh, FakeHeshOptions, USERS_PATH};
use support::fake_server::FakeVendor;

fn write_users(dir: &std::path::Path, n: usize, suffix: &str) {
    let mut csv = String::from("id,email,first_name,last_name,phone\n");
    for i in 0..n {
        csv.push_str(&format!(
            "E{i:05},user{i}@corp.example,Fn{},Last{i}{suffix},+1555{i:07}\n",
            i % 1000
        ));
    }
    std::fs::write(dir.join("users.csv"), csv).unwrap();
}

fn main() {
    let users: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(2000);
    let limit: u32 = std::env::args()
        .nth(2)
        .and_then(|s| s.parse().ok())
        .unwrap_or(50);
    let fake = FakeHesh::start_blocking(FakeHeshOptions {
        limit,
        window: Duration::from_secs(1),
        max_batch: 100,
        ..FakeHeshOptions::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let yaml = format!(
        "state: state.db\nsource: {{ type: csv, path: users.csv, fields: {{ external_id: id }} }}\n\
         safety: {{ max_disable_percent: 100 }}\n\
         providers:\n  - name: hesh\n    type: hesh\n    base_url: {}\n    api_key: ${{KEY}}\n    tenant_id: {}\n    batch_size: 100\n",
        fake.base_url(),
        fake.tenant_id()
    );
    let path = dir.path().join("rosterd.yaml");
    std::fs::write(&path, &yaml).unwrap();
    let key = fake.api_key().to_string();
    let config = Config::from_yaml(&yaml, &path, &|n| (n == "KEY").then(|| key.clone())).unwrap();
    let selected: Vec<_> = config.providers.iter().collect();
    let clock = rosterd::clock::now;
    let stop = AtomicBool::new(false);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let today = rosterd::clock::now().date_naive();

    // Setup: create everyone (in batches), then rename everyone: N updates to push.
    write_users(dir.path(), users, "");
    runtime
        .block_on(rosterd::sync::apply_pass(
            &rosterd::sync::ApplyRequest::new(&config, &selected, today),
            &clock,
            &stop,
        ))
        .unwrap();
    write_users(dir.path(), users, "-Renamed");
    fake.clear_requests();
    let report = runtime
        .block_on(rosterd::sync::apply_pass(
            &rosterd::sync::ApplyRequest::new(&config, &selected, today),
            &clock,
            &stop,
        ))
        .unwrap();

    let requests = fake.requests();
    let puts: Vec<_> = requests
        .iter()
        .filter(|r| r.method == "PUT" && r.path == USERS_PATH)
        .collect();
    let throttled = requests.iter().filter(|r| r.status == Some(429)).count();
    let first = puts.first().map(|r| r.at).unwrap();
    let last = puts.last().map(|r| r.at).unwrap();
    let seconds = (last - first).as_secs_f64();
    // N requests spread over (N - 1) gaps; the allowed rate is `limit` per second.
    let achieved = (puts.len().saturating_sub(1)) as f64 / seconds;
    let result = report.providers[0].result.clone().unwrap_or_default();
    let applied: usize = result.applied.values().sum();
    assert_eq!(applied, users, "every update applied");
    println!(
        "updates applied:        {applied} ({} requests incl. resends)",
        requests.len()
    );
    println!("allowed rate:           {limit} requests / 1 s window");
    println!("achieved rate:          {achieved:.1} requests/s over {seconds:.1} s");
    println!(
        "share of allowed rate:  {:.1}%",
        achieved / f64::from(limit) * 100.0
    );
    println!("429 answers:            {throttled}");
    println!(
        "time waiting for windows: {:.1} s",
        result.rate_limit_wait_ms as f64 / 1000.0
    );
}
