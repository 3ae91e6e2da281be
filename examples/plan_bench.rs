//! Plan benchmark: N source users against an N-row snapshot with 1% changed.
//!
//! `cargo run --release --example plan_bench -- [N]` (default 1,000,000).
//!
//! It fills a real SQLite state file with N snapshot rows (setup, not measured), then
//! measures what a pass does after reading the source: read the provider's snapshot
//! from the state file, plan, load the details of the rows the plan touches, plan
//! again. It prints each step's wall time and the process's peak memory during the
//! pass (VmHWM, reset after setup; the N users stay resident, as in a real pass).

// A benchmark program, not library code: failing loudly is what it should do.
#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::BTreeSet;
use std::time::Instant;

use chrono::NaiveDate;
use secrecy::SecretString;

use rosterd::config::{
    OnEmailChange, OnRemove, ProviderConfig, RateLimitConfig, SafetyConfig, Scope,
};
use rosterd::plan::{apply_guards, plan_provider, PlanContext};
use rosterd::providers::{self, hesh, VendorSettings};
use rosterd::store::Store;
use rosterd::user::{Attributes, Interner, User};

fn peak_rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

/// Resets VmHWM to the current RSS (Linux: write 5 to clear_refs).
fn reset_peak() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

fn user(i: usize, interner: &mut Interner) -> User {
    User {
        external_id: format!("E{i:07}"),
        email: format!("user{i}@corp.example.com"),
        first_name: format!("First{}", i % 1000),
        last_name: format!("Last{}", i % 7919),
        phone: (!i.is_multiple_of(3)).then(|| format!("+1 555 {i:07}")),
        status_active: true,
        start_date: None,
        termination_date: None,
        // Interned as the sources do: names and repeated values are stored once.
        attributes: Attributes::from_shared([
            (
                interner.intern("department"),
                interner.intern(["Sales", "Engineering", "Finance", "Support"][i % 4]),
            ),
            (
                interner.intern("title"),
                interner.intern(["Engineer", "Manager", "Analyst"][i % 3]),
            ),
            (
                interner.intern("location"),
                interner.intern(&format!("Site {}", i % 50)),
            ),
        ]),
    }
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(run(n));
}

async fn run(n: usize) {
    let config = ProviderConfig {
        name: "hesh".into(),
        base_url: "https://hesh.example.invalid".parse().unwrap(),
        scope: Scope::default(),
        on_remove: OnRemove::Disable,
        on_email_change: OnEmailChange::Skip,
        leavers: Default::default(),
        rate_limit: RateLimitConfig::default(),
        mapping: Default::default(),
        settings: VendorSettings::Hesh(hesh::Settings {
            api_key: SecretString::from("bench".to_string()),
            tenant_id: uuid::Uuid::nil(),
            batch_size: 100,
        }),
    };
    let provider = providers::build(&config);

    // Setup: users, and a state file holding what rosterd pushed for each of them.
    let t = Instant::now();
    let mut interner = Interner::default();
    let mut users: Vec<User> = (0..n).map(|i| user(i, &mut interner)).collect();
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("bench.db")).await.unwrap();
    support::fill_snapshot(&store, provider.as_ref(), &users).await;
    // 1% changed: 0.6% renamed, 0.2% left, 0.2% replaced by new hires.
    let mut left = BTreeSet::new();
    for i in (0..n).step_by(100) {
        match (i / 100) % 5 {
            0..=2 => users[i].last_name.push_str("-Smith"),
            3 => {
                left.insert(i);
            }
            _ => users[i].external_id = format!("N{i:07}"),
        }
    }
    let mut index = 0;
    users.retain(|_| {
        index += 1;
        !left.contains(&(index - 1))
    });
    users.sort_unstable_by(|a, b| a.external_id.cmp(&b.external_id));
    let setup = t.elapsed();

    // The measured pass.
    reset_peak();
    let rss_before = peak_rss_mb();
    let ctx = PlanContext {
        today: NaiveDate::from_ymd_opt(2026, 11, 24).unwrap(),
        provision_days_before_start: 0,
        held: BTreeSet::new(),
        quarantine_after: 5,
        failures: Default::default(),
        unsettled: Default::default(),
        uncertain: Default::default(),
        leavers: Default::default(),
        groups: Default::default(),
    };
    let t = Instant::now();
    let mut snapshot = store.snapshot("hesh").await.unwrap();
    let read = t.elapsed();
    let t = Instant::now();
    let need = plan_provider(provider.as_ref(), &config, &users, &snapshot, &ctx).unwrap_err();
    let first = t.elapsed();
    let t = Instant::now();
    store
        .fill_details("hesh", &mut snapshot, &need.0)
        .await
        .unwrap();
    let fill = t.elapsed();
    let t = Instant::now();
    let mut plan = plan_provider(provider.as_ref(), &config, &users, &snapshot, &ctx).unwrap();
    apply_guards(&mut plan, &SafetyConfig::default(), None);
    let second = t.elapsed();

    let s = &plan.summary;
    println!(
        "users: {}  snapshot rows: {}  (setup {:.1} s)",
        users.len(),
        snapshot.len(),
        setup.as_secs_f64()
    );
    println!(
        "plan: create {} update {} disable {} enable {} manual {} rejected {} blocked {}",
        s.create,
        s.update,
        s.disable,
        s.enable,
        s.manual,
        s.rejected,
        plan.blocked.is_some()
    );
    println!("read snapshot (lean):        {:.3} s", read.as_secs_f64());
    println!("plan, first pass:            {:.3} s", first.as_secs_f64());
    println!(
        "load details of {:>6} rows: {:.3} s",
        need.0.len(),
        fill.as_secs_f64()
    );
    println!("plan, second pass + guards:  {:.3} s", second.as_secs_f64());
    println!(
        "total (snapshot read → plan): {:.3} s",
        (read + first + fill + second).as_secs_f64()
    );
    println!(
        "peak memory during the pass:  {:.0} MB (users resident before it: {:.0} MB)",
        peak_rss_mb(),
        rss_before
    );
}
