//! Monitoring against the real tools: the daemon's `/metrics` in both formats (the
//! classic text checked by `promtool check metrics`), operations counted while a
//! slow pass runs and exactly once, SIGHUP reloads counted, the shipped alert rules
//! checked and unit-tested by `promtool`, and the Grafana dashboard and the rules
//! querying only metrics a real scrape has.
//!
//! promtool comes from `ROSTERD_PROMTOOL`, else `PATH` (Debian's `prometheus`
//! package; `.ci/run` installs it and sets `ROSTERD_PROMTOOL`, so CI cannot skip).
//! Without either, the tests that need it say so and pass.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::disallowed_methods)]

use crate::support;
use support::daemon::Daemon;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;
use support::fake_hesh::{FakeHesh, FakeHeshOptions};
use support::fake_server::FakeVendor;
use support::process::{free_port, wait_for};
use support::workspace::{Person, Workspace};

/// What a Prometheus 2.x server sends.
const PROMETHEUS_ACCEPT: &str = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";

/// promtool, or `None` (with the reason printed) when it is not installed here and
/// `ROSTERD_PROMTOOL` is unset. When `ROSTERD_PROMTOOL` is set it must run.
fn promtool() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("ROSTERD_PROMTOOL") {
        let path = PathBuf::from(path);
        let runs = Command::new(&path)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success());
        assert!(runs, "ROSTERD_PROMTOOL={} does not run", path.display());
        return Some(path);
    }
    let on_path = PathBuf::from("promtool");
    if Command::new(&on_path)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
    {
        return Some(on_path);
    }
    eprintln!(
        "skipped: promtool is not on PATH and ROSTERD_PROMTOOL is unset (install Debian's \
         `prometheus` package; CI sets ROSTERD_PROMTOOL and never skips)"
    );
    None
}

/// Runs promtool; (exit code, stdout + stderr).
fn run_promtool(promtool: &Path, args: &[&str], stdin: Option<&str>, dir: &Path) -> (i32, String) {
    let mut child = Command::new(promtool)
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.unwrap_or("").as_bytes()).unwrap();
    drop(input);
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

fn deploy(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("deploy")
        .join(path)
}

/// GET /metrics with an optional `Accept`: (content type, body).
fn scrape(port: u16, accept: Option<&str>) -> Option<(String, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let accept = accept.map_or(String::new(), |a| format!("Accept: {a}\r\n"));
    write!(
        s,
        "GET /metrics HTTP/1.0\r\nHost: localhost\r\n{accept}\r\n"
    )
    .ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let (head, body) = text.split_once("\r\n\r\n")?;
    let content_type = head
        .lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.eq_ignore_ascii_case("content-type"))
        .map(|(_, v)| v.trim().to_string())?;
    Some((content_type, body.to_string()))
}

/// Sample lines → {"name{labels}": value}.
fn samples(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| {
            let (key, value) = l.rsplit_once(' ')?;
            Some((key.to_string(), value.parse().ok()?))
        })
        .collect()
}

/// The sum of the samples of `name` (any labels).
fn total(text: &str, name: &str) -> f64 {
    samples(text)
        .iter()
        .filter(|(k, _)| k.as_str() == name || k.starts_with(&format!("{name}{{")))
        .map(|(_, v)| v)
        .sum()
}

/// The sample names a classic-format scrape declares (a histogram's `_bucket`,
/// `_sum` and `_count` included), whether or not they have samples yet.
fn declared_names(classic: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for line in classic.lines() {
        let Some(rest) = line.strip_prefix("# TYPE ") else {
            continue;
        };
        let (name, kind) = rest.split_once(' ').unwrap();
        names.insert(name.to_string());
        if kind == "histogram" {
            for suffix in ["_bucket", "_sum", "_count"] {
                names.insert(format!("{name}{suffix}"));
            }
        }
    }
    names
}

/// The `rosterd_…` metric names in a PromQL expression.
fn metric_names(expr: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = expr;
    while let Some(at) = rest.find("rosterd_") {
        let name: String = rest[at..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        rest = &rest[at + name.len()..];
        names.push(name);
    }
    names
}

/// A daemon config on `port` whose only pass is the `--run-now` one (the next tick is
/// next New Year).
fn daemon_workspace(fake: &FakeHesh, port: u16, provider_extra: &str) -> Workspace {
    support::daemon::hesh_workspace(fake, port, provider_extra, "0 0 1 1 *", "")
}

/// Waits for the daemon's first pass to be counted; the classic scrape then.
fn after_first_pass(port: u16) -> String {
    wait_for("the first pass", Duration::from_secs(30), || {
        let (_, body) = scrape(port, None)?;
        (total(&body, "rosterd_passes_total") >= 1.0).then_some(body)
    })
}

#[test]
fn metrics_answer_classic_text_that_promtool_accepts_and_openmetrics_when_asked() {
    let fake = FakeHesh::start_blocking(FakeHeshOptions::default());
    let port = free_port();
    let ws = daemon_workspace(&fake, port, "");
    ws.write_people(&(0..3).map(Person::new).collect::<Vec<_>>());
    let _daemon = Daemon::start(&ws);
    after_first_pass(port);

    let (classic_type, classic) = scrape(port, None).unwrap();
    assert_eq!(classic_type, "text/plain; version=0.0.4; charset=utf-8");
    let (plain_type, plain) = scrape(port, Some("text/plain")).unwrap();
    assert_eq!(plain_type, classic_type);
    assert_eq!(samples(&plain), samples(&classic));
    let (open_type, open) = scrape(port, Some(PROMETHEUS_ACCEPT)).unwrap();
    assert_eq!(
        open_type,
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    );
    assert!(open.ends_with("# EOF\n"), "{open}");
    assert!(!classic.contains("# EOF"), "{classic}");
    // The same samples in both formats; only the metadata differs.
    assert_eq!(samples(&open), samples(&classic));
    assert!(
        classic.contains("# TYPE rosterd_passes_total counter"),
        "{classic}"
    );
    assert!(open.contains("# TYPE rosterd_passes counter"), "{open}");
    assert_eq!(
        samples(&classic)["rosterd_operations_total{provider=\"hesh\",operation=\"create\",outcome=\"applied\"}"],
        3.0
    );
    assert_eq!(
        samples(&classic)["rosterd_last_pass_outcome{outcome=\"ok\"}"],
        1.0
    );
    assert_eq!(
        samples(&classic)["rosterd_schedule_interval_seconds"],
        366.0 * 86400.0,
        "the longest gap of a yearly schedule (a leap year among the next ones)"
    );

    let Some(promtool) = promtool() else { return };
    let (code, out) = run_promtool(&promtool, &["check", "metrics"], Some(&classic), ws.path());
    assert_eq!(code, 0, "promtool check metrics:\n{out}\n{classic}");
    assert!(out.trim().is_empty(), "lint findings:\n{out}");
    // The control: the OpenMetrics text, which /metrics used to answer everyone, is
    // what promtool refuses ("no help text" for the counters' samples).
    let (code, out) = run_promtool(&promtool, &["check", "metrics"], Some(&open), ws.path());
    assert_ne!(code, 0, "{out}");
}

#[test]
fn operations_are_counted_as_they_end_during_a_slow_pass_and_only_once() {
    let fake = FakeHesh::start_blocking(FakeHeshOptions::default());
    let port = free_port();
    let ws = daemon_workspace(
        &fake,
        port,
        "    batch_size: 1\n    rate_limit: { max_concurrency: 1 }\n",
    );
    let people: Vec<Person> = (0..20).map(Person::new).collect();
    ws.write_people(&people);
    fake.delay(Duration::from_millis(150)); // 20 creates one by one: a 3 s pass
    let daemon = Daemon::start(&ws);
    let applied =
        "rosterd_operations_total{provider=\"hesh\",operation=\"create\",outcome=\"applied\"}";

    // One scrape that shows operations counted while no pass has ended.
    let mid = wait_for("a create counted mid-pass", Duration::from_secs(20), || {
        let (_, body) = scrape(port, None)?;
        (samples(&body).get(applied).copied().unwrap_or(0.0) > 0.0).then_some(body)
    });
    assert_eq!(
        total(&mid, "rosterd_passes_total"),
        0.0,
        "the pass had not ended: {}",
        daemon.log()
    );
    assert!(samples(&mid)[applied] < 20.0, "{mid}");

    let end = after_first_pass(port);
    assert_eq!(samples(&end)["rosterd_passes_total{outcome=\"ok\"}"], 1.0);
    assert_eq!(samples(&end)[applied], 20.0, "{end}");
    assert_eq!(
        total(&end, "rosterd_operations_total"),
        20.0,
        "every operation counted once, none again at the pass end: {end}"
    );
    assert_eq!(fake.users().len(), 20);
}

#[test]
fn sighup_reloads_are_counted_ok_or_refused() {
    let fake = FakeHesh::start_blocking(FakeHeshOptions::default());
    let port = free_port();
    let ws = daemon_workspace(&fake, port, "");
    ws.write_people(&[Person::new(0)]);
    let daemon = Daemon::start(&ws);
    after_first_pass(port);
    let reloads = |outcome: &str| {
        let (_, body) = scrape(port, None).unwrap();
        samples(&body)
            .get(&format!(
                "rosterd_config_reloads_total{{outcome=\"{outcome}\"}}"
            ))
            .copied()
            .unwrap_or(0.0)
    };

    daemon.signal("-HUP");
    wait_for("the reload to be counted", Duration::from_secs(10), || {
        (reloads("ok") == 1.0).then_some(())
    });
    let config = ws.path().join("rosterd.yaml");
    let good = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, "providers: [oops\n").unwrap();
    daemon.signal("-HUP");
    wait_for("the refusal to be counted", Duration::from_secs(10), || {
        (reloads("refused") == 1.0).then_some(())
    });
    assert_eq!(reloads("ok"), 1.0);
    assert!(
        daemon.log().contains("Config reload refused"),
        "{}",
        daemon.log()
    );

    std::fs::write(&config, good).unwrap();
    daemon.signal("-HUP");
    wait_for("the second reload", Duration::from_secs(10), || {
        (reloads("ok") == 2.0).then_some(())
    });
    assert_eq!(reloads("refused"), 1.0);
}

#[test]
fn alert_rules_pass_promtool_check_and_their_unit_tests() {
    let Some(promtool) = promtool() else { return };
    let dir = deploy("prometheus");
    let (code, out) = run_promtool(&promtool, &["check", "rules", "rules.yaml"], None, &dir);
    assert_eq!(code, 0, "promtool check rules:\n{out}");
    assert!(out.contains("SUCCESS"), "{out}");
    let (code, out) = run_promtool(&promtool, &["test", "rules", "rules_test.yaml"], None, &dir);
    assert_eq!(code, 0, "promtool test rules:\n{out}");
    assert!(out.contains("SUCCESS"), "{out}");
}

/// Every `expr` string anywhere in a JSON document.
fn exprs(doc: &Value, out: &mut Vec<String>) {
    match doc {
        Value::Object(map) => {
            for (k, v) in map {
                match v {
                    Value::String(s) if k == "expr" => out.push(s.clone()),
                    _ => exprs(v, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| exprs(v, out)),
        _ => {}
    }
}

#[test]
fn the_dashboard_and_the_alert_rules_query_only_metrics_rosterd_exports() {
    let fake = FakeHesh::start_blocking(FakeHeshOptions::default());
    let port = free_port();
    let ws = daemon_workspace(&fake, port, "");
    ws.write_people(&[Person::new(0)]);
    let _daemon = Daemon::start(&ws);
    let declared = declared_names(&after_first_pass(port));

    let dashboard: Value =
        serde_json::from_str(&std::fs::read_to_string(deploy("grafana/rosterd.json")).unwrap())
            .unwrap();
    assert!(dashboard["title"].as_str().is_some_and(|t| !t.is_empty()));
    assert!(dashboard["panels"].as_array().is_some_and(|p| p.len() >= 6));
    let mut queries = Vec::new();
    exprs(&dashboard, &mut queries);
    assert!(queries.len() >= 6, "{queries:?}");

    let rules: Value =
        serde_saphyr::from_str(&std::fs::read_to_string(deploy("prometheus/rules.yaml")).unwrap())
            .unwrap();
    let mut alerts = Vec::new();
    exprs(&rules, &mut alerts);
    assert!(alerts.len() >= 5, "{alerts:?}");

    for (what, expr) in queries
        .iter()
        .map(|q| ("dashboard", q))
        .chain(alerts.iter().map(|a| ("rules.yaml", a)))
    {
        let names = metric_names(expr);
        assert!(
            !names.is_empty(),
            "{what}: {expr} queries no rosterd metric"
        );
        for name in names {
            assert!(
                declared.contains(&name),
                "{what}: {name} (in {expr}) is not in a /metrics scrape: {declared:?}"
            );
        }
    }
}

#[test]
fn operations_a_provider_stopped_for_the_pass_leaves_are_counted_deferred() {
    let fake = FakeHesh::start_blocking(FakeHeshOptions::default());
    let port = free_port();
    let dead = free_port(); // nothing listens: hesh is unreachable
    let ws = Workspace::hesh(
        &format!("http://127.0.0.1:{dead}"),
        fake.tenant_id(),
        fake.api_key(),
        "    batch_size: 1\n    rate_limit: { max_concurrency: 1, max_attempts: 1, fail_fast_after: 2 }\n",
    );
    let yaml = std::fs::read_to_string(ws.path().join("rosterd.yaml")).unwrap();
    std::fs::write(
        ws.path().join("rosterd.yaml"),
        format!("schedule: \"0 0 1 1 *\"\ndaemon: {{ listen: \"127.0.0.1:{port}\" }}\n{yaml}"),
    )
    .unwrap();
    ws.write_people(&(0..5).map(Person::new).collect::<Vec<_>>());
    let _daemon = Daemon::start(&ws);
    let end = after_first_pass(port);
    // Two creates could not connect, then the breaker left the other three unsent:
    // all five are deferred, each counted once.
    assert_eq!(
        samples(&end)
            ["rosterd_operations_total{provider=\"hesh\",operation=\"create\",outcome=\"deferred\"}"],
        5.0,
        "{end}"
    );
    assert_eq!(total(&end, "rosterd_operations_total"), 5.0, "{end}");
    assert_eq!(
        samples(&end)["rosterd_last_pass_outcome{outcome=\"failed\"}"],
        1.0
    );
}

/// A Pushgateway stand-in on 127.0.0.1: records (method, path, body) and answers
/// `status`.
struct Pushgateway {
    server: support::fake_server::FakeServer,
    seen: std::sync::Arc<std::sync::Mutex<Vec<(String, String, String)>>>,
}

impl Pushgateway {
    fn start(status: u16) -> Pushgateway {
        use axum::body::Bytes;
        use axum::http::{Method, StatusCode, Uri};
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let log = std::sync::Arc::clone(&seen);
        let app = axum::Router::new().fallback(move |method: Method, uri: Uri, body: Bytes| {
            let log = std::sync::Arc::clone(&log);
            async move {
                log.lock().unwrap().push((
                    method.to_string(),
                    uri.path().to_string(),
                    String::from_utf8_lossy(&body).into_owned(),
                ));
                StatusCode::from_u16(status).unwrap()
            }
        });
        Pushgateway {
            server: support::fake_server::FakeServer::start("pushgateway", app),
            seen,
        }
    }

    fn seen(&self) -> Vec<(String, String, String)> {
        self.seen.lock().unwrap().clone()
    }
}

/// A one-shot `sync` (a CronJob) pushes the daemon's series to a Pushgateway when
/// it ends; promtool accepts what it pushed; a Pushgateway that fails or is gone
/// does not change the exit code and costs at most `metrics.timeout_seconds`.
#[test]
fn a_one_shot_sync_pushes_its_metrics_to_the_pushgateway() {
    let fake = FakeHesh::start_blocking(FakeHeshOptions::default());
    let gateway = Pushgateway::start(200);
    let ws = Workspace::hesh(&fake.base_url(), fake.tenant_id(), fake.api_key(), "");
    let yaml = std::fs::read_to_string(ws.path().join("rosterd.yaml")).unwrap();
    let with_push = |url: &str| {
        format!("metrics: {{ push_url: \"{url}\", job: rosterd-cron, timeout_seconds: 2 }}\n{yaml}")
    };
    std::fs::write(
        ws.path().join("rosterd.yaml"),
        with_push(&gateway.server.base_url()),
    )
    .unwrap();
    ws.write_people(&(0..3).map(Person::new).collect::<Vec<_>>());
    let (code, _, stderr) = ws.run(&["sync"]);
    assert_eq!(code, 0, "{stderr}");
    let seen = gateway.seen();
    assert_eq!(seen.len(), 1, "{seen:?}");
    let (method, path, body) = &seen[0];
    assert_eq!(
        (method.as_str(), path.as_str()),
        ("PUT", "/metrics/job/rosterd-cron")
    );
    assert_eq!(total(body, "rosterd_passes_total"), 1.0, "{body}");
    assert!(
        body.contains("rosterd_passes_total{outcome=\"ok\"} 1"),
        "{body}"
    );
    assert_eq!(
        total(body, "rosterd_operations_total"),
        3.0,
        "each create counted once: {body}"
    );
    assert!(
        total(body, "rosterd_last_success_timestamp_seconds") > 1.7e9,
        "{body}"
    );
    if let Some(promtool) = promtool() {
        let (status, said) = run_promtool(&promtool, &["check", "metrics"], Some(body), ws.path());
        assert_eq!(status, 0, "{said}");
    }

    // A failing Pushgateway, then none at all: the run's exit code is its own.
    let failing = Pushgateway::start(500);
    for url in [
        failing.server.base_url(),
        format!("http://127.0.0.1:{}", free_port()),
    ] {
        std::fs::write(ws.path().join("rosterd.yaml"), with_push(&url)).unwrap();
        let started = std::time::Instant::now();
        let (code, _, stderr) = ws.run(&["sync"]);
        assert_eq!(code, 0, "{stderr}");
        assert!(stderr.contains("Metrics not pushed"), "{stderr}");
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{:?}",
            started.elapsed()
        );
    }
    assert!(
        !failing.seen().is_empty(),
        "the failing Pushgateway was tried"
    );
}
