//! How a pass ends, as the run history, `rosterd status` and the exit code say it: a
//! pass drained by SIGTERM part way is `stopped` with its counts (not `ok`), and a
//! pass still running shows as `running` with its pid (not `interrupted`); a removed
//! provider, a wrong key, a dead vendor, `check --connect` and a restarted daemon.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::support;

use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use rosterd::store::{PassOutcome, Store};
use support::fake_hesh::{FakeHesh, FakeHeshOptions};
use support::fake_server::FakeVendor;
use support::process::wait_for;
use support::workspace::{Person, Workspace};

/// `rosterd status --format json`'s runs, newest first.
fn status_runs(ws: &Workspace) -> Vec<Value> {
    let (code, stdout, stderr) = ws.run(&["status", "--format", "json"]);
    assert_eq!(code, 0, "{stderr}");
    let doc: Value = serde_json::from_str(&stdout).unwrap();
    doc["runs"].as_array().unwrap().clone()
}

#[test]
fn a_pass_stopped_by_sigterm_is_recorded_as_stopped_and_shows_running_while_it_runs() {
    let fake = FakeHesh::start_blocking(FakeHeshOptions::default());
    let ws = Workspace::hesh(
        &fake.base_url(),
        fake.tenant_id(),
        fake.api_key(),
        "    batch_size: 1\n    rate_limit: { max_concurrency: 1 }\n",
    );
    let people: Vec<Person> = (0..200).map(Person::new).collect();
    ws.write_people(&people);
    fake.delay(Duration::from_millis(20));
    let mut child = ws.spawn_sync();
    wait_for("some creates to arrive", Duration::from_secs(30), || {
        (fake.requests().len() >= 5).then_some(())
    });

    // While it runs, status names it and its process.
    let runs = status_runs(&ws);
    assert_eq!(runs[0]["outcome"], "running", "{runs:?}");
    assert_eq!(runs[0]["pid"], child.id(), "{runs:?}");

    assert!(Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap()
        .success());
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(2), "a stopped pass is not a clean exit");

    let rt = tokio::runtime::Runtime::new().unwrap();
    let (runs, in_flight) = rt.block_on(async {
        let store = Store::open_read_only(&ws.state()).await.unwrap().unwrap();
        let r = (
            store.recent_runs(5).await.unwrap(),
            store.in_flight().await.unwrap().len(),
        );
        store.close().await;
        r
    });
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].outcome, Some(PassOutcome::Stopped));
    assert_eq!(in_flight, 0, "what was in flight finished before the exit");
    let summary: Value = serde_json::from_str(runs[0].summary.as_deref().unwrap()).unwrap();
    let result = &summary["providers"][0]["result"];
    let applied = result["applied"]["create"].as_u64().unwrap();
    let not_started = result["not_started"].as_u64().unwrap();
    assert!(applied >= 5 && not_started > 0, "{result}");
    assert_eq!(applied + not_started, 200, "{result}");
    assert_eq!(
        fake.users().len() as u64,
        applied,
        "the record matches the vendor"
    );

    // After it: no longer running, and the status says stopped.
    let runs = status_runs(&ws);
    assert_eq!(runs[0]["outcome"], "stopped", "{runs:?}");
    assert!(runs[0].get("pid").is_none(), "{runs:?}");

    // The next pass creates the rest and ends ok.
    fake.delay(Duration::ZERO);
    let (code, _) = ws.sync();
    assert_eq!(code, 0);
    assert_eq!(fake.users().len(), 200);
    assert_eq!(status_runs(&ws)[0]["outcome"], "ok");
}

/// A provider removed from the config while the state holds its accounts would leave
/// them unmanaged for ever (a leaver among them keeps access): every pass stops before
/// any write (exit 3, even with --force) naming it and its account count, until it is
/// put back or forgotten with `forget-provider`, which says what it leaves behind.
#[test]
fn a_provider_removed_from_the_config_blocks_every_pass_until_forgotten() {
    let fake = FakeHesh::start_blocking(FakeHeshOptions::default());
    let ws = Workspace::hesh(&fake.base_url(), fake.tenant_id(), fake.api_key(), "");
    let people: Vec<Person> = (0..5).map(Person::new).collect();
    ws.write_people(&people);
    let (code, _) = ws.sync();
    assert_eq!(code, 0);

    // The entry is renamed: to rosterd, `hesh` is gone and `hesh-eu` is new.
    let config = ws.path().join("rosterd.yaml");
    let yaml = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, yaml.replace("name: hesh", "name: hesh-eu")).unwrap();
    fake.clear_requests();
    for args in [
        &["sync", "--format", "json"][..],
        &["sync", "--format", "json", "--force"][..],
        &["sync", "--dry-run", "--format", "json"][..],
    ] {
        let (code, stdout, stderr) = ws.run(args);
        assert_eq!(code, 3, "{args:?}: {stderr}");
        let doc: Value = serde_json::from_str(&stdout).unwrap();
        assert_eq!(doc["removed_providers"][0]["name"], "hesh", "{doc}");
        assert_eq!(doc["removed_providers"][0]["accounts"], 5, "{doc}");
        let reason = doc["providers"][0]["blocked"].as_str().unwrap_or_default();
        assert!(reason.contains("forget-provider"), "{reason}");
    }
    assert!(fake.requests().is_empty(), "nothing may be sent");

    let (code, _, stderr) = ws.run(&["forget-provider", "hesh-eu"]);
    assert_eq!(code, 1, "a configured provider is not forgotten");
    assert!(stderr.contains("is in the config"), "{stderr}");
    let (code, stdout, stderr) = ws.run(&["forget-provider", "hesh"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains("5 account(s) (5 active") && stdout.contains("left behind"),
        "{stdout}"
    );
    let (code, _, stderr) = ws.run(&["sync", "--dry-run"]);
    assert_eq!(code, 0, "{stderr}");
}

/// Syncs `people` new users through `ws`, whose provider fails as a whole: exit 2,
/// one `provider_error` containing `error`, every operation deferred and none failed.
/// The provider's result.
fn stopped_provider(ws: &Workspace, people: usize, error: &str) -> Value {
    let people: Vec<Person> = (0..people).map(Person::new).collect();
    ws.write_people(&people);
    let (code, doc) = ws.sync();
    assert_eq!(code, 2, "{doc}");
    let result = doc["providers"][0]["result"].clone();
    let said = result["provider_error"].as_str().unwrap_or_default();
    assert!(said.contains(error), "{result}");
    assert_eq!(result["failed"], 0, "{result}");
    assert_eq!(result["deferred"], people.len(), "{result}");
    result
}

/// A wrong key: the first 401 stops the provider for the pass with one error, the
/// rest are left for the next pass — not 40 identical per-user failures, and nothing
/// counted towards quarantine.
#[test]
fn a_rejected_key_stops_the_provider_at_once_with_one_error() {
    let fake = FakeHesh::start_blocking(FakeHeshOptions::default());
    let ws = Workspace::hesh(
        &fake.base_url(),
        fake.tenant_id(),
        "this-is-the-wrong-key",
        "    batch_size: 1\n    rate_limit: { max_concurrency: 1 }\n",
    );
    stopped_provider(&ws, 40, "credentials rejected (HTTP 401)");
    assert_eq!(fake.requests().len(), 1, "one request told it all");
    assert!(fake.users().is_empty());

    let (_, stdout, _) = ws.run(&["status", "--format", "json"]);
    let status: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(status["attention"].as_array().unwrap().len(), 0, "{status}");
    assert!(status["runs"][0]["providers"][0]["error"]
        .as_str()
        .unwrap_or_default()
        .contains("credentials rejected"));
}

/// A dead vendor (nothing listening): after `fail_fast_after` operations in a row
/// could not connect, the rest are left for the next pass instead of each spending
/// its retries.
#[test]
fn an_unreachable_vendor_stops_the_provider_after_fail_fast_after() {
    let port = support::process::free_port();
    let ws = Workspace::hesh(
        &format!("http://127.0.0.1:{port}"),
        "0b6f1c4e-2a43-4d8e-9d55-0e1f4c7a9b21",
        "some-api-key-value",
        "    batch_size: 1\n    rate_limit: { max_concurrency: 1, max_attempts: 2, fail_fast_after: 3 }\n",
    );
    let result = stopped_provider(
        &ws,
        52,
        "unreachable: 3 operation(s) in a row could not connect",
    );
    assert_eq!(
        result["requests"], 3,
        "three operations tried, then none: {result}"
    );
}

/// `check --connect` contacts each provider with a harmless authenticated read:
/// reachable with a good key passes; a wrong key or nothing listening fails (exit 1)
/// naming the provider and why; hesh, which has no read, says it cannot be checked.
#[test]
fn check_connect_reads_from_each_provider_and_fails_on_a_bad_key_or_a_dead_port() {
    let vyte = support::fake_vyte::FakeVyte::start_blocking("the-vyte-key-value");
    let hesh = FakeHesh::start_blocking(FakeHeshOptions::default());
    let ok = |key: &str, base: &str| {
        let mut ws = Workspace::vyte(base, key, "");
        ws.add(
            support::workspace::Provider::hesh(&hesh.base_url(), hesh.tenant_id(), hesh.api_key()),
            "",
        );
        ws.write_people(&[Person::new(1)]);
        ws
    };
    let ws = ok("the-vyte-key-value", &vyte.base_url());
    let (code, stdout, stderr) = ws.run(&["check", "--connect"]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(
        stdout.contains("connect vyte: reachable, credentials accepted (GET /v2/users: HTTP 200"),
        "{stdout}"
    );
    assert!(
        stdout.contains("connect hesh: not checked: hesh's public API has no read"),
        "{stdout}"
    );
    assert!(
        hesh.requests().is_empty(),
        "nothing is written to check hesh"
    );

    let ws = ok("a-wrong-vyte-key", &vyte.base_url());
    let (code, stdout, stderr) = ws.run(&["check", "--connect"]);
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert!(
        stdout.contains("connect vyte: FAILED: credentials rejected (HTTP 401)"),
        "{stdout}"
    );
    assert!(
        stderr.contains("cannot reach or sign in to: vyte"),
        "{stderr}"
    );

    let dead = format!("http://127.0.0.1:{}", support::process::free_port());
    let ws = ok("the-vyte-key-value", &dead);
    let (code, stdout, _) = ws.run(&["check", "--connect", "--format", "json"]);
    assert_eq!(code, 1);
    let doc: Value = serde_json::from_str(&stdout).unwrap();
    let vyte_result = &doc["connect"][0];
    assert!(
        vyte_result["error"]
            .as_str()
            .unwrap_or_default()
            .contains("unreachable"),
        "{doc}"
    );
}

/// A daemon that restarts reads its last successful pass from the run history:
/// `rosterd_last_success_timestamp_seconds` is that pass's end, not 0 (which would
/// fire every staleness alert after each restart).
#[test]
fn a_restarted_daemon_reports_the_last_success_from_the_history() {
    let fake = FakeHesh::start_blocking(FakeHeshOptions::default());
    let ws = Workspace::hesh(&fake.base_url(), fake.tenant_id(), fake.api_key(), "");
    ws.write_people(&[Person::new(1)]);
    let (code, _) = ws.sync();
    assert_eq!(code, 0);
    let finished = {
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async {
            let store = Store::open_read_only(&ws.state()).await.unwrap().unwrap();
            let runs = store.recent_runs(1).await.unwrap();
            store.close().await;
            runs[0].finished_at.unwrap()
        })
    };
    let port = support::process::free_port();
    let config = ws.path().join("rosterd.yaml");
    let yaml = std::fs::read_to_string(&config).unwrap();
    // A schedule that does not come round during the test: no pass runs.
    std::fs::write(
        &config,
        format!("schedule: \"0 0 1 1 *\"\ndaemon: {{ listen: \"127.0.0.1:{port}\" }}\n{yaml}"),
    )
    .unwrap();
    let mut daemon = ws
        .command(&["daemon"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let metrics = wait_for("/metrics", Duration::from_secs(20), || {
        support::process::http_get(port, "/metrics").map(|(_, body)| body)
    });
    let _ = daemon.kill();
    let _ = daemon.wait();
    let line = metrics
        .lines()
        .find(|l| l.starts_with("rosterd_last_success_timestamp_seconds "))
        .unwrap_or_else(|| panic!("{metrics}"));
    let value: f64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    let expected = finished.timestamp_millis() as f64 / 1000.0;
    assert!((value - expected).abs() < 0.01, "{line} vs {expected}");
}

/// A guard overridden with `--force` is said to be overridden, above what was applied,
/// never "BLOCKED … nothing will be sent" next to "applied 3".
#[test]
fn a_forced_plan_says_the_guard_was_overridden() {
    let fake = FakeHesh::start_blocking(FakeHeshOptions::default());
    let ws = Workspace::hesh(&fake.base_url(), fake.tenant_id(), fake.api_key(), "");
    let config = ws.path().join("rosterd.yaml");
    let yaml = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        yaml.replace("max_disable_percent: 100", "max_disable_percent: 20"),
    )
    .unwrap();
    let people: Vec<Person> = (0..10).map(Person::new).collect();
    ws.write_people(&people);
    assert_eq!(ws.sync().0, 0);
    ws.write_people(&people[..7]);
    let (code, stdout, _) = ws.run(&["sync"]);
    assert_eq!(code, 3, "{stdout}");
    assert!(
        stdout.contains("BLOCKED by a safety guard, nothing will be sent"),
        "{stdout}"
    );
    let (code, stdout, _) = ws.run(&["sync", "--force"]);
    assert_eq!(code, 0, "{stdout}");
    assert!(
        stdout.contains("FORCED") && stdout.contains("--force overrode it"),
        "{stdout}"
    );
    assert!(!stdout.contains("nothing will be sent"), "{stdout}");
    assert_eq!(fake.count("PATCH", support::fake_hesh::DISABLE_PATH), 3);
}
