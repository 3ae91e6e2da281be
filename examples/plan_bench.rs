//! Plan benchmark: N source users against an N-row snapshot with 1% changed.
//!
//! `cargo run --release --example plan_bench -- [N]` (default 1,000,000) prints the
//! plan's wall time and the process's peak memory (VmHWM, which includes the generated
//! users and snapshot: the inputs a real pass holds in memory too).

// A benchmark program, not library code: failing loudly is what it should do.
#![allow(clippy::panic)]

use std::collections::BTreeSet;
use std::time::Instant;

use chrono::NaiveDate;
use secrecy::SecretString;

use rosterd::config::{
    OnEmailChange, OnRemove, ProviderConfig, RateLimitConfig, SafetyConfig, Scope,
};
use rosterd::plan::{apply_guards, plan_provider, PlanContext};
use rosterd::providers::{self, hesh, ProviderType, VendorSettings};
use rosterd::store::{AccountState, SnapshotRow};
use rosterd::user::{Attributes, Interner, User};

fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

fn user(i: usize, interner: &mut Interner) -> User {
    User {
        external_id: format!("E{i:07}"),
        email: format!("user{i}@corp.example.com"),
        first_name: format!("First{}", i % 1000),
        last_name: format!("Last{}", i % 7919),
        phone: (i % 3 != 0).then(|| format!("+1 555 {:07}", i)),
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
    let config = ProviderConfig {
        name: "hesh".into(),
        kind: ProviderType::Hesh,
        base_url: url::Url::parse("https://hesh.example.invalid").unwrap_or_else(|e| panic!("{e}")),
        scope: Scope::default(),
        on_remove: OnRemove::Disable,
        on_email_change: OnEmailChange::Skip,
        rate_limit: RateLimitConfig::default(),
        settings: VendorSettings::Hesh(hesh::Settings {
            api_key: SecretString::from("bench".to_string()),
            tenant_id: uuid::Uuid::nil(),
            batch_size: 100,
        }),
    };
    let provider = providers::build(&config);

    let t = Instant::now();
    let mut interner = Interner::default();
    let mut users: Vec<User> = (0..n).map(|i| user(i, &mut interner)).collect();
    eprintln!("after users: {:.0} MB", peak_rss_mb().unwrap_or(0.0));
    let snapshot: Vec<SnapshotRow> = users
        .iter()
        .map(|u| {
            let record = hesh::map_user(u).unwrap_or_else(|e| panic!("{e}"));
            SnapshotRow {
                external_id: u.external_id.clone().into_boxed_str(),
                email: u.email.clone().into_boxed_str(),
                vendor_id: None,
                fingerprint: record.fingerprint(),
                state: AccountState::Active,
                record: record.to_stored().to_json().into_boxed_str(),
                last_error: None,
                failures: 0,
            }
        })
        .collect();
    eprintln!("after snapshot: {:.0} MB", peak_rss_mb().unwrap_or(0.0));
    // 1% changed: 0.6% renamed, 0.2% left, 0.2% new hires.
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
    let gen = t.elapsed();
    let rss_inputs = peak_rss_mb();

    let ctx = PlanContext {
        today: NaiveDate::from_ymd_opt(2026, 11, 24).unwrap_or_default(),
        provision_days_before_start: 0,
        held: BTreeSet::new(),
    };
    let t = Instant::now();
    let mut plan = plan_provider(provider.as_ref(), &config, &users, &snapshot, &ctx);
    apply_guards(&mut plan, &SafetyConfig::default(), None);
    let planned = t.elapsed();

    let s = &plan.summary;
    println!("users: {}  snapshot rows: {}", users.len(), snapshot.len());
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
    println!("generate inputs: {:.2} s", gen.as_secs_f64());
    println!("plan wall time:  {:.3} s", planned.as_secs_f64());
    println!(
        "peak memory:     {:.0} MB (inputs alone: {:.0} MB)",
        peak_rss_mb().unwrap_or(f64::NAN),
        rss_inputs.unwrap_or(f64::NAN)
    );
}
