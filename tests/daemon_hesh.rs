//! The daemon against the fake hesh: overlapping ticks are skipped, SIGTERM during a
//! slow pass ends within the bound with the journal consistent and a rerun
//! converging, /healthz goes 503 and back, SIGHUP refuses a bad config.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::support;
use support::daemon::Daemon;

use std::time::{Duration, Instant};

use rosterd::store::{PassOutcome, Store};
use support::fake_hesh::{FakeHesh, FakeHeshOptions};
use support::fake_server::FakeVendor;
use support::process::{free_port, http_get as get, wait_for};
use support::workspace::{Person, Workspace};

/// A workspace whose config runs the daemon every second on `port`.
fn daemon_workspace(fake: &FakeHesh, port: u16, provider_extra: &str) -> Workspace {
    support::daemon::hesh_workspace(
        fake,
        port,
        provider_extra,
        "* * * * * *",
        "unhealthy_after: 2, ",
    )
}

#[test]
fn sigterm_during_a_slow_pass_finishes_in_flight_work_and_a_rerun_converges() {
    let fake = FakeHesh::start_blocking(FakeHeshOptions::default());
    let port = free_port();
    let ws = daemon_workspace(
        &fake,
        port,
        "    batch_size: 1\n    rate_limit: { max_concurrency: 1 }\n",
    );
    let people: Vec<Person> = (0..40).map(Person::new).collect();
    ws.write_people(&people);
    fake.delay(Duration::from_millis(150)); // 40 creates one by one: a 6 s pass
    let mut daemon = Daemon::start(&ws);

    // Ticks come every second while the first pass runs: they are skipped.
    wait_for("a skipped tick", Duration::from_secs(10), || {
        daemon.log().contains("this tick is skipped").then_some(())
    });
    let sent_before = fake.requests().len();
    assert!(sent_before < 40, "the pass should still be running");

    let asked = Instant::now();
    daemon.signal("-TERM");
    let status = wait_for("the daemon to stop", Duration::from_secs(15), || {
        daemon.child.try_wait().unwrap()
    });
    assert_eq!(status.code(), Some(0), "{}", daemon.log());
    assert!(
        asked.elapsed() < Duration::from_secs(10),
        "stopped within stop_timeout_seconds"
    );
    let log = daemon.log();
    assert!(log.contains("Daemon stopped."), "{log}");
    // Every log line is JSON and the pass's events carry the run id.
    assert!(
        log.lines()
            .all(|l| serde_json::from_str::<serde_json::Value>(l).is_ok()),
        "{log}"
    );
    assert!(log.contains("\"run_id\""), "{log}");
    let created = fake.users().len();
    assert!(
        created < 40,
        "stopping means no new operations: {created} created"
    );

    // The journal has nothing left in flight: what was sent was recorded.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (in_flight, rows) = rt.block_on(async {
        let store = Store::open(&ws.state()).await.unwrap();
        let r = (
            store.in_flight().await.unwrap().len(),
            store.snapshot("hesh").await.unwrap().len(),
        );
        store.close().await;
        r
    });
    assert_eq!(in_flight, 0);
    assert_eq!(
        rows, created,
        "the snapshot holds exactly what hesh confirmed"
    );

    fake.delay(Duration::ZERO);
    let (code, _) = ws.sync();
    assert_eq!(code, 0);
    fake.assert_no_duplicates();
    assert!(fake.created_twice().is_empty());
    assert_eq!(fake.users().len(), 40);
}

#[test]
fn health_turns_503_after_failing_passes_and_back_when_they_succeed() {
    let fake = FakeHesh::start_blocking(FakeHeshOptions::default());
    let port = free_port();
    let ws = daemon_workspace(&fake, port, "    rate_limit: { max_attempts: 1 }\n");
    ws.write_people(&(0..3).map(Person::new).collect::<Vec<_>>());
    fake.fail_next(1000, 500);
    let daemon = Daemon::start(&ws);
    wait_for("503", Duration::from_secs(15), || {
        (get(port, "/healthz")?.0 == 503).then_some(())
    });

    fake.clear_faults();
    wait_for("200 again", Duration::from_secs(15), || {
        (get(port, "/healthz")?.0 == 200).then_some(())
    });
    assert_eq!(fake.users().len(), 3);
    let metrics = get(port, "/metrics").unwrap().1;
    let applied: f64 = metrics
        .lines()
        .find(|l| l.starts_with("rosterd_operations_total{provider=\"hesh\",operation=\"create\",outcome=\"applied\"}"))
        .and_then(|l| l.rsplit_once(' '))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0.0);
    assert_eq!(applied, 3.0, "{metrics}");
    let snapshot_active: f64 = metrics
        .lines()
        .find(|l| l.starts_with("rosterd_snapshot_users{provider=\"hesh\",state=\"active\"}"))
        .and_then(|l| l.rsplit_once(' '))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0.0);
    assert_eq!(snapshot_active, 3.0, "{metrics}");

    // SIGHUP with a broken config: refused, the daemon keeps going on the old one.
    std::fs::write(ws.path().join("rosterd.yaml"), "providers: [oops\n").unwrap();
    daemon.signal("-HUP");
    wait_for("the reload to be refused", Duration::from_secs(5), || {
        daemon.log().contains("Config reload refused").then_some(())
    });
    assert_eq!(get(port, "/healthz").map(|r| r.0), Some(200));
}

/// The value of one sample line of a Prometheus text exposition, 0 when absent.
fn metric(metrics: &str, name_and_labels: &str) -> f64 {
    metrics
        .lines()
        .find(|l| l.starts_with(name_and_labels) && l[name_and_labels.len()..].starts_with(' '))
        .and_then(|l| l.rsplit_once(' '))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0.0)
}

#[test]
fn a_pass_past_its_timeout_stops_like_sigterm_is_recorded_as_timeout_and_later_passes_converge() {
    let fake = FakeHesh::start_blocking(FakeHeshOptions::default());
    let port = free_port();
    let ws = daemon_workspace(
        &fake,
        port,
        "    batch_size: 1\n    rate_limit: { max_concurrency: 1 }\n",
    );
    let yaml = std::fs::read_to_string(ws.path().join("rosterd.yaml")).unwrap();
    let yaml = yaml.replace(
        "stop_timeout_seconds: 10 }",
        "stop_timeout_seconds: 10, pass_timeout_seconds: 2 }",
    );
    std::fs::write(ws.path().join("rosterd.yaml"), yaml).unwrap();
    let people: Vec<Person> = (0..30).map(Person::new).collect();
    ws.write_people(&people);
    fake.delay(Duration::from_millis(250)); // 30 creates one by one: 7.5 s, past 2 s
    let mut daemon = Daemon::start(&ws);

    // Each pass creates what it can in 2 s, is stopped, and the next goes on.
    let metrics = wait_for("every account created", Duration::from_secs(60), || {
        let m = get(port, "/metrics")?.1;
        (fake.users().len() == 30 && metric(&m, "rosterd_passes_total{outcome=\"ok\"}") >= 1.0)
            .then_some(m)
    });
    let timeouts = metric(&metrics, "rosterd_passes_total{outcome=\"timeout\"}");
    assert!(timeouts >= 2.0, "{metrics}");
    daemon.signal("-TERM");
    let status = wait_for("the daemon to stop", Duration::from_secs(15), || {
        daemon.child.try_wait().unwrap()
    });
    assert_eq!(status.code(), Some(0), "{}", daemon.log());
    assert!(daemon
        .log()
        .contains("ran past daemon.pass_timeout_seconds"));
    fake.assert_no_duplicates();
    assert!(fake.created_twice().is_empty());

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (in_flight, runs) = rt.block_on(async {
        let store = Store::open(&ws.state()).await.unwrap();
        let r = (
            store.in_flight().await.unwrap().len(),
            store.recent_runs(100).await.unwrap(),
        );
        store.close().await;
        r
    });
    assert_eq!(in_flight, 0, "the operations in flight were journaled");
    let timed_out: Vec<_> = runs
        .iter()
        .filter(|r| r.outcome == Some(PassOutcome::Timeout))
        .collect();
    assert_eq!(timed_out.len() as f64, timeouts, "{runs:?}");
    for r in &timed_out {
        let summary: serde_json::Value =
            serde_json::from_str(r.summary.as_deref().unwrap()).unwrap();
        assert_eq!(summary["timed_out"], true, "{summary}");
        // The design's bound: pass_timeout_seconds, then stop_timeout_seconds at most.
        let took = r.finished_at.unwrap() - r.started_at;
        assert!(took <= chrono::Duration::seconds(12), "{took}");
    }
    // The first pass had 30 creates of 250 ms for 2 s: most were left for later.
    let first: serde_json::Value =
        serde_json::from_str(timed_out.last().unwrap().summary.as_deref().unwrap()).unwrap();
    let result = &first["providers"][0]["result"];
    assert!(result["not_started"].as_u64().unwrap() > 10, "{result}");
}
