//! Soak: the real `rosterd daemon` on a one-second schedule against the four fake
//! vendors (hesh, saleschat, vyte, zaia) on 127.0.0.1 at once, with faults on (5xx
//! bursts, dropped connections, slow answers; all drawn from a seeded RNG) while the
//! test changes the source CSV between passes (hires, leavers terminated or removed,
//! renames).
//!
//! Checked:
//! - memory: the daemon's RSS (`/proc/<pid>/status` VmRSS) is sampled all along; the
//!   median of the last third of the samples after warm-up may not exceed the median
//!   of the first third by more than 50 % or 30 MB (whichever is larger). The samples
//!   are printed (`ROSTERD_LONG_TESTS=1 cargo test --test it soak:: -- --nocapture`);
//! - no pass hangs: every pass in the run history finished, none ran into
//!   `daemon.pass_timeout_seconds`, each took less than it; `/metrics` counts as many
//!   passes (`rosterd_passes_total`, `rosterd_pass_duration_seconds`) as the history;
//! - convergence: once the faults stop and the source stops changing, an ok pass
//!   leaves every fake holding what the source says (accounts in scope active with
//!   their current fields, accounts no longer in scope disabled where the vendor can;
//!   or the account listed for manual action by `rosterd status`), nobody created
//!   twice, and one more pass sends no write at all;
//! - no secret (API keys, tokens, saleschat passwords) in the daemon's log.
//!
//! It runs only with `ROSTERD_LONG_TESTS=1`; its faulty phase lasts 25 s by default
//! (about 35 s in all), `ROSTERD_SOAK_SECONDS=N` makes it N seconds. Plain `cargo test`
//! runs a smoke version instead: 5 s of faults (longer if no pass finished by then),
//! checked alike but for memory and the number of passes. `ROSTERD_SOAK_SEED=N`
//! changes the faults and changes drawn. `ROSTERD_SOAK_KEEP=1` keeps the folder
//! (config, state file, daemon log).
//!
//! hesh also applies some requests and then loses their answer (500 or a dropped
//! connection). This soak found that a create lost that way on every attempt was
//! journaled as failed although hesh held the account, so a person who then left was
//! never disabled; such a create now stays in flight and is resent (through adoption)
//! before the next plan. `ROSTERD_SOAK_LOST_ANSWERS=0` turns those faults off.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
// Test code may block and read the real clock: clippy.toml's disallowed-methods
// are for the library.
#![allow(clippy::disallowed_methods)]

use crate::support;

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rosterd::store::{PassOutcome, Store};
use support::fake_hesh::{FakeHesh, FakeHeshOptions, HeshStatus};
use support::fake_saleschat::{FakeSaleschat, FakeSaleschatOptions};
use support::fake_server::FakeVendor;
use support::fake_vyte::{FakeVyte, FakeVyteOptions};
use support::fake_zaia::{FakeZaia, FakeZaiaOptions};
use support::four_vendors::{ids, Emp};
use support::process::{free_port, http_get, wait_for};

const DEFAULT_SOAK_SECONDS: u64 = 25;
/// The faulty phase of the smoke run that plain `cargo test` does.
const SMOKE_SECONDS: u64 = 5;
const DEFAULT_SEED: u64 = 7;
const FIRST_PEOPLE: usize = 80;
const VENDORS: [&str; 4] = ["hesh", "saleschat", "vyte", "zaia"];
/// The configured bound of a pass, and the grace after it.
const PASS_TIMEOUT_SECONDS: u64 = 15;
const STOP_TIMEOUT_SECONDS: u64 = 5;

fn soak_seconds() -> u64 {
    std::env::var("ROSTERD_SOAK_SECONDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_SOAK_SECONDS)
}

/// hesh also applies some requests and then loses the answer (500 or a dropped
/// connection), unless `ROSTERD_SOAK_LOST_ANSWERS=0`.
fn lost_answers() -> bool {
    std::env::var("ROSTERD_SOAK_LOST_ANSWERS").map_or(true, |v| v != "0")
}

fn seed() -> u64 {
    std::env::var("ROSTERD_SOAK_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_SEED)
}

struct Fakes {
    hesh: FakeHesh,
    sc: FakeSaleschat,
    vyte: FakeVyte,
    zaia: FakeZaia,
}

impl Fakes {
    fn start() -> Fakes {
        Fakes {
            hesh: FakeHesh::start_blocking(FakeHeshOptions {
                limit: 100_000,
                ..FakeHeshOptions::default()
            }),
            sc: FakeSaleschat::start_blocking(FakeSaleschatOptions::default()),
            vyte: FakeVyte::start_with(FakeVyteOptions::default()),
            zaia: FakeZaia::start(FakeZaiaOptions::default()),
        }
    }

    fn secrets(&self) -> Vec<String> {
        let mut s: Vec<String> = [
            self.hesh.api_key(),
            self.sc.token(),
            self.vyte.api_key(),
            self.zaia.api_key(),
        ]
        .map(String::from)
        .to_vec();
        s.extend(self.sc.passwords());
        s
    }

    /// One round of faults, each fake on its own draw.
    fn inject(&self, rng: &mut fastrand::Rng) {
        let status = |rng: &mut fastrand::Rng| [500, 502, 503][rng.usize(..3)];
        let slow = |rng: &mut fastrand::Rng| {
            Duration::from_millis([0, 0, 20, 100, 300, 600][rng.usize(..6)])
        };
        if rng.f32() < 0.3 {
            self.hesh.fail_next(rng.usize(1..=3), status(rng));
        }
        if rng.f32() < 0.15 {
            self.hesh.drop_next(1);
        }
        if lost_answers() && rng.f32() < 0.1 {
            self.hesh.drop_after_apply_next(1);
        }
        if lost_answers() && rng.f32() < 0.1 {
            self.hesh.fail_after_apply_next(1);
        }
        if rng.f32() < 0.3 {
            self.sc.fail_next(rng.usize(1..=3), status(rng));
        }
        if rng.f32() < 0.3 {
            self.vyte.fail_next(rng.usize(1..=3), status(rng));
        }
        if rng.f32() < 0.3 {
            self.zaia.fail_next(rng.usize(1..=3), status(rng));
        }
        if rng.f32() < 0.25 {
            self.hesh.delay(slow(rng));
        }
        if rng.f32() < 0.25 {
            self.sc.delay(slow(rng));
        }
        if rng.f32() < 0.25 {
            self.vyte.delay(slow(rng));
        }
        if rng.f32() < 0.25 {
            self.zaia.delay(slow(rng));
        }
    }

    /// No new faults, no delay. Failures already queued (saleschat, vyte, zaia have no
    /// way to clear them) are used up by the next requests: the caller waits for an ok
    /// pass anyway.
    fn calm(&self) {
        self.hesh.clear_faults();
        self.hesh.delay(Duration::ZERO);
        self.sc.delay(Duration::ZERO);
        self.vyte.delay(Duration::ZERO);
        self.zaia.delay(Duration::ZERO);
    }

    fn clear_requests(&self) {
        self.hesh.clear_requests();
        self.sc.clear_requests();
        self.vyte.clear_requests();
        self.zaia.clear_requests();
    }

    /// Requests that change something, at every fake.
    fn writes(&self) -> usize {
        self.hesh
            .requests()
            .iter()
            .filter(|r| r.method != "GET")
            .count()
            + self
                .sc
                .requests()
                .iter()
                .filter(|r| r.method != "GET")
                .count()
            + self.vyte.writes().len()
            + self.zaia.writes().len()
    }
}

fn config(dir: &Path, f: &Fakes, port: u16) -> PathBuf {
    let limits = "    rate_limit: { max_attempts: 3, timeout_seconds: 5 }\n";
    let yaml = format!(
        "state: state.db\n\
         schedule: \"* * * * * *\"\n\
         daemon: {{ listen: \"127.0.0.1:{port}\", stop_timeout_seconds: {STOP_TIMEOUT_SECONDS}, pass_timeout_seconds: {PASS_TIMEOUT_SECONDS}, unhealthy_after: 0 }}\n\
         log: {{ format: json }}\n\
         source:\n  type: csv\n  path: users.csv\n  fields: {{ external_id: id, email: email, first_name: first, last_name: last }}\n  status: {{ field: status, active_values: [active] }}\n\
         safety: {{ max_disable_percent: 100, min_source_users: 1 }}\n\
         providers:\n\
         \x20 - name: hesh\n    type: hesh\n    base_url: {}\n    api_key: ${{SOAK_HESH_KEY}}\n    tenant_id: {}\n    batch_size: 10\n    scope: {{ exclude: {{ email_domain: [partners.example] }} }}\n{limits}\
         \x20 - name: saleschat\n    type: saleschat\n    base_url: {}\n    token: ${{SOAK_SALESCHAT_TOKEN}}\n    org_id: {}\n    scope: {{ include: {{ department: [Sales, Support] }} }}\n{limits}\
         \x20 - name: vyte\n    type: vyte\n    base_url: {}\n    api_key: ${{SOAK_VYTE_KEY}}\n    scope: {{ include: {{ email_domain: [corp.example] }}, exclude: {{ department: [Ops] }} }}\n{limits}\
         \x20 - name: zaia\n    type: zaia\n    base_url: {}\n    api_key: ${{SOAK_ZAIA_KEY}}\n    channel_id: {}\n    scope: {{ include: {{ department: [Engineering, Research] }} }}\n{limits}",
        f.hesh.base_url(),
        f.hesh.tenant_id(),
        f.sc.base_url(),
        f.sc.org_id(),
        f.vyte.base_url(),
        f.zaia.base_url(),
        f.zaia.channel_id(),
    );
    let path = dir.join("rosterd.yaml");
    std::fs::write(&path, yaml).unwrap();
    path
}

/// Writes the CSV beside the config atomically (a pass never reads half a file).
fn write_csv(dir: &Path, people: &[Emp]) {
    let mut csv = String::from("id,email,first,last,status,department\n");
    for e in people {
        let status = if e.active { "active" } else { "terminated" };
        csv.push_str(&format!(
            "{},{},{},{},{status},{}\n",
            e.id, e.email, e.first, e.last, e.dept
        ));
    }
    let tmp = dir.join("users.csv.tmp");
    std::fs::write(&tmp, csv).unwrap();
    std::fs::rename(tmp, dir.join("users.csv")).unwrap();
}

/// The daemon process, killed when dropped (a failing assertion stops it too).
struct Daemon {
    child: Child,
    log: PathBuf,
}

impl Daemon {
    fn start(config: &Path, f: &Fakes) -> Daemon {
        let log = config.with_file_name("daemon.stderr");
        let child = Command::new(env!("CARGO_BIN_EXE_rosterd"))
            .arg("-c")
            .arg(config)
            .args(["daemon", "--run-now"])
            .env("SOAK_HESH_KEY", f.hesh.api_key())
            .env("SOAK_SALESCHAT_TOKEN", f.sc.token())
            .env("SOAK_VYTE_KEY", f.vyte.api_key())
            .env("SOAK_ZAIA_KEY", f.zaia.api_key())
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(File::create(&log).unwrap())
            .spawn()
            .unwrap();
        Daemon { child, log }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// VmRSS in KiB, while the process runs.
    fn rss_kib(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).ok()?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The samples of the Prometheus text whose name and labels start with `prefix`,
/// by the rest of their labels.
fn samples(metrics: &str, prefix: &str) -> BTreeMap<String, f64> {
    metrics
        .lines()
        .filter_map(|l| l.strip_prefix(prefix))
        .filter_map(|rest| {
            let (labels, value) = rest.rsplit_once(' ')?;
            Some((labels.to_string(), value.parse().ok()?))
        })
        .collect()
}

/// (passes finished, of which ok), from /metrics.
fn passes(port: u16) -> Option<(f64, f64)> {
    let m = http_get(port, "/metrics")?.1;
    let by_outcome = samples(&m, "rosterd_passes_total");
    Some((
        by_outcome.values().sum(),
        by_outcome.get("{outcome=\"ok\"}").copied().unwrap_or(0.0),
    ))
}

fn median(v: &[u64]) -> u64 {
    let mut v = v.to_vec();
    v.sort_unstable();
    v[v.len() / 2]
}

/// One change to the source: hires, leavers (terminated, or gone from the export) and
/// renames.
fn change(people: &mut Vec<Emp>, next_id: &mut usize, rng: &mut fastrand::Rng, round: usize) {
    for _ in 0..rng.usize(1..=3) {
        people.push(Emp::new(*next_id));
        *next_id += 1;
    }
    for _ in 0..rng.usize(1..=2) {
        let active: Vec<usize> = (0..people.len()).filter(|&i| people[i].active).collect();
        let i = active[rng.usize(..active.len())];
        if rng.bool() {
            people[i].active = false;
        } else {
            people.remove(i);
        }
    }
    for _ in 0..rng.usize(1..=2) {
        let active: Vec<usize> = (0..people.len()).filter(|&i| people[i].active).collect();
        let i = active[rng.usize(..active.len())];
        people[i].last = format!("Renamed{round}x{i}");
    }
}

#[test]
fn daemon_under_faults_and_a_changing_source_keeps_memory_flat_never_hangs_and_converges() {
    if std::env::var_os("ROSTERD_LONG_TESTS").is_none() {
        println!("soak: skipped (ROSTERD_LONG_TESTS=1 runs it); the {SMOKE_SECONDS} s smoke runs");
        return;
    }
    soak(soak_seconds(), true);
}

/// The soak cut to a few seconds of faults for plain `cargo test`: the daemon, the four
/// fakes, faults, a changing source, convergence and the SIGTERM stop, all checked as
/// in the long run but memory (too few samples to mean anything).
#[test]
fn smoke_daemon_under_faults_and_a_changing_source_never_hangs_and_converges() {
    soak(SMOKE_SECONDS, false);
}

/// `seconds` of faults and changes, then convergence and the stop; `long` checks that
/// the RSS stayed flat and that passes kept happening.
fn soak(seconds: u64, long: bool) {
    let seed = seed();
    println!("soak: {seconds} s of faults and changes, seed {seed}");
    let mut rng = fastrand::Rng::with_seed(seed);
    let fakes = Fakes::start();
    let dir = Folder(Some(tempfile::tempdir().unwrap()));
    if std::env::var_os("ROSTERD_SOAK_KEEP").is_some() {
        println!("soak: keeping {}", dir.path().display());
    }
    let port = free_port();
    let config = config(dir.path(), &fakes, port);
    let mut people: Vec<Emp> = (0..FIRST_PEOPLE).map(Emp::new).collect();
    let mut next_id = FIRST_PEOPLE;
    write_csv(dir.path(), &people);
    // Everyone ever in each vendor's scope, in any version of the source.
    let mut ever: Vec<BTreeSet<String>> = VENDORS.iter().map(|v| ids(v, &people)).collect();
    let mut daemon = Daemon::start(&config, &fakes);

    // ---- faults on, the source changing after each finished pass ------------------
    let started = Instant::now();
    let mut rss: Vec<(f64, u64)> = Vec::new();
    let mut seen_passes = 0.0;
    let mut changes = 0;
    // Until the source changed once at least, however slow the machine (the smoke run).
    while started.elapsed() < Duration::from_secs(seconds) || changes == 0 {
        assert!(
            started.elapsed() < Duration::from_secs(seconds + 2 * PASS_TIMEOUT_SECONDS),
            "no pass finished"
        );
        assert!(
            daemon.child.try_wait().unwrap().is_none(),
            "the daemon exited: {}",
            daemon.log()
        );
        fakes.inject(&mut rng);
        if let Some(kib) = daemon.rss_kib() {
            rss.push((started.elapsed().as_secs_f64(), kib));
        }
        if let Some((finished, _)) = passes(port) {
            if finished > seen_passes {
                seen_passes = finished;
                changes += 1;
                change(&mut people, &mut next_id, &mut rng, changes);
                write_csv(dir.path(), &people);
                for (scope, v) in ever.iter_mut().zip(VENDORS) {
                    scope.extend(ids(v, &people));
                }
            }
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    println!(
        "soak: {seen_passes} passes finished and {changes} source changes under faults; {} people, {} active",
        people.len(),
        people.iter().filter(|e| e.active).count()
    );
    assert!(
        changes >= if long { 3 } else { 1 },
        "passes stopped happening: {seen_passes} finished"
    );

    // ---- memory -------------------------------------------------------------------
    // (Not in the smoke run: a few seconds give too few samples to mean anything.)
    if long {
        // Warm-up: the first fifth of the run (pools, caches, the first full pass).
        let warm: Vec<u64> = rss
            .iter()
            .filter(|(t, _)| *t >= seconds as f64 / 5.0)
            .map(|(_, k)| *k)
            .collect();
        assert!(warm.len() >= 9, "too few RSS samples: {rss:?}");
        let third = warm.len() / 3;
        let first = median(&warm[..third]);
        let last = median(&warm[warm.len() - third..]);
        println!(
            "soak: RSS KiB samples (t s, KiB): {}",
            rss.iter()
                .map(|(t, k)| format!("{t:.1}:{k}"))
                .collect::<Vec<_>>()
                .join(" ")
        );
        println!(
            "soak: RSS median first third {first} KiB, last third {last} KiB, peak {} KiB",
            rss.iter().map(|(_, k)| *k).max().unwrap()
        );
        let allowed = (first + first / 2).max(first + 30 * 1024);
        assert!(
            last <= allowed,
            "RSS grew from {first} KiB to {last} KiB (allowed {allowed} KiB)"
        );
    }

    // ---- faults off, source still: converges ---------------------------------------
    fakes.calm();
    let (_, ok_at_calm) = passes(port).unwrap();
    // Two more ok passes: at least one started after the calm and read the last CSV.
    wait_for(
        "an ok pass after the faults",
        Duration::from_secs(120),
        || {
            let (_, ok) = passes(port)?;
            (ok >= ok_at_calm + 2.0).then_some(())
        },
    );
    // Accounts rosterd hands to a person (`rosterd status` lists them) are the
    // person's to settle: e.g. a saleschat create whose membership could not be
    // confirmed under faults is held in manual action, and kept so if its person leaves.
    let manual = attention(&config, &fakes);
    println!("soak: listed for manual action: {manual:?}");
    let listed = |v: &str| -> BTreeSet<String> {
        manual
            .iter()
            .filter(|(p, _)| p == v)
            .map(|(_, id)| id.clone())
            .collect()
    };
    check_hesh(&fakes.hesh, &people, &ever[0], &listed("hesh"));
    check_saleschat(&fakes.sc, &people, &ever[1], &listed("saleschat"));
    check_vyte(&fakes.vyte, &people, &ever[2], &listed("vyte"));
    check_zaia(&fakes.zaia, &people, &ever[3], &listed("zaia"));
    // Converged means the next pass has nothing to send.
    fakes.clear_requests();
    let (_, ok_now) = passes(port).unwrap();
    wait_for("one more ok pass", Duration::from_secs(60), || {
        let (_, ok) = passes(port)?;
        (ok >= ok_now + 2.0).then_some(())
    });
    assert_eq!(fakes.writes(), 0, "a converged pass sent writes");

    // ---- stop; every pass ended within its deadline --------------------------------
    let metrics = http_get(port, "/metrics").unwrap().1;
    assert!(Command::new("kill")
        .args(["-TERM", &daemon.child.id().to_string()])
        .status()
        .unwrap()
        .success());
    let status = wait_for("the daemon to stop", Duration::from_secs(30), || {
        daemon.child.try_wait().unwrap()
    });
    assert_eq!(status.code(), Some(0), "{}", daemon.log());
    let log = daemon.log();
    assert!(log.contains("Daemon stopped."));
    for secret in fakes.secrets() {
        assert!(!log.contains(&secret), "a secret is in the daemon's log");
    }

    let by_outcome = samples(&metrics, "rosterd_passes_total");
    println!("soak: passes by outcome {by_outcome:?}");
    let counted: f64 = by_outcome.values().sum();
    assert_eq!(
        by_outcome
            .get("{outcome=\"timeout\"}")
            .copied()
            .unwrap_or(0.0),
        0.0,
        "{by_outcome:?}"
    );
    let durations = samples(&metrics, "rosterd_pass_duration_seconds");
    assert_eq!(durations.get("_count"), Some(&counted), "{durations:?}");
    // Every pass is in the bucket of the smallest bound above the configured deadline.
    assert_eq!(
        durations.get("_bucket{le=\"15.0\"}"),
        Some(&counted),
        "a pass took longer than {PASS_TIMEOUT_SECONDS} s: {durations:?}"
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (runs, in_flight) = rt.block_on(async {
        let store = Store::open(&dir.path().join("state.db")).await.unwrap();
        let r = (
            store.recent_runs(100_000).await.unwrap(),
            store.in_flight().await.unwrap().len(),
        );
        store.close().await;
        r
    });
    assert_eq!(in_flight, 0, "operations left in flight");
    // The pass the SIGTERM may have stopped is in the history, not yet in /metrics.
    assert!(
        runs.len() as f64 == counted || runs.len() as f64 == counted + 1.0,
        "{} runs in the history, {counted} counted",
        runs.len()
    );
    let mut longest = 0.0_f64;
    for r in &runs {
        let finished = r
            .finished_at
            .unwrap_or_else(|| panic!("run {} never finished", r.run_id));
        let took = (finished - r.started_at).num_milliseconds() as f64 / 1000.0;
        longest = longest.max(took);
        assert!(
            took < PASS_TIMEOUT_SECONDS as f64,
            "run {} took {took} s",
            r.run_id
        );
        assert_ne!(r.outcome, Some(PassOutcome::Timeout));
    }
    println!("soak: {} runs, longest {longest:.2} s", runs.len());
}

/// The test's folder (config, CSV, state file, daemon log), removed at the end unless
/// `ROSTERD_SOAK_KEEP` is set, even when the test fails.
struct Folder(Option<tempfile::TempDir>);

impl Folder {
    fn path(&self) -> &Path {
        self.0.as_ref().unwrap().path()
    }
}

impl Drop for Folder {
    fn drop(&mut self) {
        if std::env::var_os("ROSTERD_SOAK_KEEP").is_some() {
            if let Some(d) = self.0.take() {
                let _ = d.keep();
            }
        }
    }
}

/// (provider, external_id) of what `rosterd status` says needs a person; no secret in
/// what it prints.
fn attention(config: &Path, f: &Fakes) -> BTreeSet<(String, String)> {
    let out = Command::new(env!("CARGO_BIN_EXE_rosterd"))
        .arg("-c")
        .arg(config)
        .args(["status", "--format", "json"])
        .env("SOAK_HESH_KEY", f.hesh.api_key())
        .env("SOAK_SALESCHAT_TOKEN", f.sc.token())
        .env("SOAK_VYTE_KEY", f.vyte.api_key())
        .env("SOAK_ZAIA_KEY", f.zaia.api_key())
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(out.status.success(), "{stdout}{stderr}");
    for secret in f.secrets() {
        assert!(!stdout.contains(&secret) && !stderr.contains(&secret));
    }
    let doc: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    doc["attention"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["provider"].as_str().unwrap().to_string(),
                a["external_id"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// hesh holds each person once; active with the current fields iff in scope now,
/// inactive if only in scope before (unless listed for a person).
fn check_hesh(fake: &FakeHesh, people: &[Emp], ever: &BTreeSet<String>, manual: &BTreeSet<String>) {
    fake.assert_no_duplicates();
    assert!(
        fake.created_twice().is_empty(),
        "{:?}",
        fake.created_twice()
    );
    let users = fake.users();
    let now = ids("hesh", people);
    let held: BTreeSet<String> = users
        .iter()
        .map(|u| u.external_user_id.clone().unwrap_or_default())
        .collect();
    assert_eq!(held.len(), users.len());
    assert!(held.is_subset(ever), "hesh holds someone never in scope");
    assert!(
        now.is_subset(&held),
        "hesh misses: {:?}",
        now.difference(&held)
    );
    for u in users
        .iter()
        .filter(|u| !manual.contains(u.external_user_id.as_ref().unwrap()))
    {
        let id = u.external_user_id.clone().unwrap();
        if let Some(e) = people.iter().find(|e| e.id == id && now.contains(&id)) {
            assert_eq!(u.status, HeshStatus::Active, "{id}");
            assert!(u.email.eq_ignore_ascii_case(&e.email), "{id}");
            assert_eq!((&u.first_name, &u.last_name), (&e.first, &e.last), "{id}");
        } else {
            assert_eq!(u.status, HeshStatus::Inactive, "{id} should be disabled");
        }
    }
}

/// The person an address belongs to (addresses never change here).
fn id_of_email(email: &str) -> String {
    let n: usize = email
        .trim_start_matches("user")
        .split('@')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    Emp::new(n).id
}

/// saleschat holds each person once, in the org, enabled iff in scope now (names
/// are as first created: saleschat cannot rename), unless listed for a person.
fn check_saleschat(
    fake: &FakeSaleschat,
    people: &[Emp],
    ever: &BTreeSet<String>,
    manual: &BTreeSet<String>,
) {
    assert!(fake.duplicates().is_empty(), "{:?}", fake.duplicates());
    let now = ids("saleschat", people);
    let live: Vec<_> = fake.users().into_iter().filter(|u| !u.deleted).collect();
    let held: BTreeSet<String> = live
        .iter()
        .map(|u| id_of_email(&u.email.to_lowercase()))
        .collect();
    assert_eq!(held.len(), live.len());
    assert!(
        held.is_subset(ever),
        "saleschat holds someone never in scope"
    );
    assert!(
        now.is_subset(&held),
        "saleschat misses: {:?}",
        now.difference(&held)
    );
    for u in &live {
        let id = id_of_email(&u.email.to_lowercase());
        if manual.contains(&id) {
            continue;
        }
        assert!(u.in_org, "{id}: {u:?}");
        assert_eq!(u.disabled, !now.contains(&id), "{id}: {u:?}");
    }
}

/// vyte holds each person once (it cannot disable), with the current fields for
/// those in scope now (unless listed for a person).
fn check_vyte(fake: &FakeVyte, people: &[Emp], ever: &BTreeSet<String>, manual: &BTreeSet<String>) {
    assert!(fake.duplicates().is_empty(), "{:?}", fake.duplicates());
    let users = fake.users();
    let held: BTreeSet<String> = users.iter().filter_map(|u| u.extid.clone()).collect();
    assert_eq!(held.len(), users.len());
    assert!(held.is_subset(ever), "vyte holds someone never in scope");
    for id in ids("vyte", people).difference(manual) {
        let e = people.iter().find(|e| e.id == *id).unwrap();
        let u = fake
            .user_by_email(&e.email)
            .unwrap_or_else(|| panic!("{id} missing at vyte"));
        assert_eq!(u.extid.as_ref(), Some(id));
        assert_eq!((&u.first_name, &u.last_name), (&e.first, &e.last), "{id}");
    }
}

/// zaia's channel holds each person once, unblocked with the current name iff in
/// scope now (unless listed for a person).
fn check_zaia(fake: &FakeZaia, people: &[Emp], ever: &BTreeSet<String>, manual: &BTreeSet<String>) {
    fake.assert_no_duplicates();
    let users = fake.users();
    let now = ids("zaia", people);
    let held: BTreeSet<String> = users.iter().filter_map(|u| u.external_id.clone()).collect();
    assert_eq!(held.len(), users.len());
    assert!(held.is_subset(ever), "zaia holds someone never in scope");
    assert!(
        now.is_subset(&held),
        "zaia misses: {:?}",
        now.difference(&held)
    );
    for u in users
        .iter()
        .filter(|u| !manual.contains(u.external_id.as_ref().unwrap()))
    {
        let id = u.external_id.clone().unwrap();
        if let Some(e) = people.iter().find(|e| e.id == id && now.contains(&id)) {
            assert!(!u.blocked, "{id} is blocked");
            assert_eq!(u.identifier.as_deref(), Some(e.email.as_str()));
            let name = format!("{} {}", e.first, e.last);
            assert_eq!(u.name.as_deref(), Some(name.as_str()), "{id}");
        } else {
            assert!(u.blocked, "{id} should be blocked");
        }
    }
}
