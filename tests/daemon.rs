//! `rosterd daemon` as a process: passes on a fast schedule, /healthz flipping to 503
//! after failed passes, /metrics counters moving (parsed, not grepped), and a clean
//! exit on SIGTERM.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::support;

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use support::process::{fixture_copy, free_port, http_get as get, wait_for};

/// Prometheus text format → {"name{labels}": value}.
fn parse_metrics(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| {
            let (key, value) = l.rsplit_once(' ')?;
            Some((key.to_string(), value.parse().ok()?))
        })
        .collect()
}

struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start(dir: &Path) -> Daemon {
    let child = Command::new(env!("CARGO_BIN_EXE_rosterd"))
        .arg("-c")
        .arg(dir.join("rosterd.yaml"))
        .args(["daemon", "--run-now"])
        .env("ROSTERD_TEST_HESH_KEY", "daemon-test-secret")
        .env("ROSTERD_TEST_VYTE_KEY", "daemon-test-secret")
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    Daemon(child)
}

#[test]
fn daemon_runs_passes_reports_health_and_metrics_and_stops_on_sigterm() {
    let dir = fixture_copy("dry_run");
    let port = free_port();
    let vendor = free_port(); // nothing listens: every pass fails
    let yaml = std::fs::read_to_string(dir.path().join("rosterd.yaml")).unwrap();
    let yaml = format!(
        "schedule: \"* * * * * *\"\ndaemon: {{ listen: \"127.0.0.1:{port}\", unhealthy_after: 2, stop_timeout_seconds: 5 }}\nlog: {{ dir: logs, format: json }}\n{}",
        yaml.replace(
            "base_url: https://hesh.test.invalid",
            &format!("base_url: http://127.0.0.1:{vendor}\n    rate_limit: {{ max_attempts: 1, timeout_seconds: 1 }}"),
        )
    );
    std::fs::write(dir.path().join("rosterd.yaml"), yaml).unwrap();
    let mut daemon = start(dir.path());

    // Passes fail (hesh unreachable, the others not applied in this build): health
    // turns 503 after two in a row.
    let body = wait_for(
        "/healthz to answer 503",
        Duration::from_secs(20),
        || match get(port, "/healthz") {
            Some((503, body)) => Some(body),
            _ => None,
        },
    );
    assert!(body.contains("failed passes in a row"), "{body}");
    assert_eq!(get(port, "/readyz").map(|r| r.0), Some(200));

    let metrics = parse_metrics(&get(port, "/metrics").unwrap().1);
    let failed_passes = metrics
        .get("rosterd_passes_total{outcome=\"failed\"}")
        .copied()
        .unwrap_or(0.0);
    assert!(failed_passes >= 2.0, "{metrics:?}");
    // hesh is unreachable: its creates are deferred (the provider stopped as a
    // whole), not counted as per-user failures.
    let deferred = metrics
        .get(
            "rosterd_operations_total{provider=\"hesh\",operation=\"create\",outcome=\"deferred\"}",
        )
        .copied()
        .unwrap_or(0.0);
    assert!(
        deferred >= 8.0,
        "4 creates per pass, at least two passes: {metrics:?}"
    );
    assert!(
        metrics
            .keys()
            .any(|k| k.starts_with("rosterd_pass_duration_seconds_count")),
        "{metrics:?}"
    );
    // The counters move between scrapes while passes go on.
    wait_for(
        "a later pass to be counted",
        Duration::from_secs(10),
        || {
            let later = parse_metrics(&get(port, "/metrics")?.1);
            (later
                .get("rosterd_passes_total{outcome=\"failed\"}")
                .copied()
                .unwrap_or(0.0)
                > failed_passes)
                .then_some(())
        },
    );

    // SIGTERM: a clean exit, within the bound.
    let pid = daemon.0.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let status = wait_for("the daemon to exit", Duration::from_secs(10), || {
        daemon.0.try_wait().unwrap()
    });
    assert_eq!(status.code(), Some(0));
    let mut stderr = String::new();
    daemon
        .0
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(stderr.contains("Daemon stopped."), "{stderr}");
    assert!(!stderr.contains("daemon-test-secret"));
    // The log directory got JSON lines, without the secret.
    let logs = std::fs::read_dir(dir.path().join("logs"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let text = std::fs::read_to_string(logs).unwrap();
    assert!(text
        .lines()
        .all(|l| serde_json::from_str::<serde_json::Value>(l).is_ok()));
    assert!(text.contains("Pass finished.") && !text.contains("daemon-test-secret"));
}
