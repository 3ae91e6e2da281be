//! No-change pass benchmark: a real `sync` pass (run lock, state file, interrupted
//! operations, source read, plan, guards, run history) over N users whose accounts are
//! all up to date, so nothing is sent. This is what most scheduled passes are.
//!
//! `cargo run --release --example noop_bench -- [N]` (default 100,000).
//!
//! Setup (not measured): a CSV export of N users, and a state file whose snapshot
//! holds exactly what rosterd would have pushed for each of them (built with the same
//! source reader and hesh mapping a pass uses). The vendor's URL is a closed port: a
//! pass that tried to send anything would fail, and the benchmark checks it did not.

// A benchmark program, not library code: failing loudly is what it should do.
#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::atomic::AtomicBool;
use std::time::Instant;

use rosterd::config::Config;
use rosterd::providers;
use rosterd::store::Store;

fn peak_rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(100_000);
    let dir = tempfile::tempdir().unwrap();
    let mut csv = String::from("id,email,first_name,last_name,phone,department\n");
    for i in 0..n {
        csv.push_str(&format!(
            "E{i:07},user{i}@corp.example,Fn{},Last{i},+1555{i:07},{}\n",
            i % 1000,
            ["Sales", "Engineering", "Finance", "Support"][i % 4]
        ));
    }
    std::fs::write(dir.path().join("users.csv"), csv).unwrap();
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let yaml = format!(
        "state: state.db\nsource: {{ type: csv, path: users.csv, fields: {{ external_id: id }} }}\n\
         providers:\n  - name: hesh\n    type: hesh\n    base_url: http://127.0.0.1:{closed}/\n    api_key: ${{KEY}}\n    tenant_id: 40dd0c53-2fa7-4193-82ae-14d4e62c20fb\n"
    );
    let path = dir.path().join("rosterd.yaml");
    std::fs::write(&path, &yaml).unwrap();
    let config =
        Config::from_yaml(&yaml, &path, &|n| (n == "KEY").then(|| "bench".to_string())).unwrap();
    let selected: Vec<_> = config.providers.iter().collect();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();

    // Setup: the snapshot a converged first pass would have left.
    let t = Instant::now();
    runtime.block_on(async {
        let loaded = rosterd::source::from_config(&config.source)
            .load()
            .await
            .unwrap();
        let provider = providers::build(&config.providers[0]);
        let store = Store::open(&config.state).await.unwrap();
        support::fill_snapshot(&store, provider.as_ref(), &loaded.users).await;
        store.close().await;
    });
    let setup = t.elapsed();

    let clock = rosterd::clock::now;
    let stop = AtomicBool::new(false);
    let today = rosterd::clock::now().date_naive();
    let t = Instant::now();
    let report = runtime
        .block_on(rosterd::sync::apply_pass(
            &rosterd::sync::ApplyRequest::new(&config, &selected, today),
            &clock,
            &stop,
        ))
        .unwrap();
    let pass = t.elapsed();
    let p = &report.providers[0];
    assert!(
        p.plan.operations.is_empty(),
        "a no-change pass planned {:?}",
        p.plan.summary
    );
    let requests = p.result.as_ref().map_or(0, |r| r.requests);
    assert_eq!(requests, 0, "a no-change pass sent requests");
    println!("users: {n}  (setup {:.1} s)", setup.as_secs_f64());
    println!(
        "no-change pass (lock, state, source, plan, run history): {:.3} s",
        pass.as_secs_f64()
    );
    println!("requests sent: {requests}");
    println!("peak memory of the process: {:.0} MB", peak_rss_mb());
}
