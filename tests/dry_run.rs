//! The binary's dry run, end to end: the JSON plan for a fixture, a second run after
//! the snapshot holds what was planned (nothing to do), a changed source, guards and
//! exit codes, and that a dry run writes nothing.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::support;

use std::path::Path;
use std::process::{Command, Output};

use chrono::{NaiveDate, TimeZone, Utc};
use serde_json::Value;

use rosterd::config::Config;
use rosterd::plan::OpKind;
use rosterd::store::{AccountState, PassOutcome, SnapshotUpsert, Store};
use support::process::fixture_copy;
use support::workspace::provider;

const TODAY: &str = "2026-11-24";
const HESH_KEY: &str = "hesh-key-must-never-print";
const VYTE_KEY: &str = "vyte-key-must-never-print";

fn rosterd(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rosterd"))
        .arg("-c")
        .arg(dir.join("rosterd.yaml"))
        .args(args)
        .env("ROSTERD_TEST_HESH_KEY", HESH_KEY)
        .env("ROSTERD_TEST_VYTE_KEY", VYTE_KEY)
        .env("RUST_LOG", "debug")
        .output()
        .unwrap()
}

fn dry_run_json(dir: &Path) -> (i32, Value, String) {
    let out = rosterd(
        dir,
        &["sync", "--dry-run", "--format", "json", "--today", TODAY],
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    for secret in [HESH_KEY, VYTE_KEY, "chat-token-for-tests"] {
        assert!(
            !stdout.contains(secret) && !stderr.contains(secret),
            "secret leaked"
        );
    }
    let doc: Value =
        serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}\n{stderr}"));
    (out.status.code().unwrap(), doc, stderr)
}

fn ops(p: &Value) -> Vec<(String, String)> {
    p["operations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            (
                o["op"].as_str().unwrap().to_string(),
                o["external_id"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
    v.iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

/// What the executor will do once it exists: store every planned operation as confirmed.
async fn fill_snapshot(dir: &Path) {
    let path = dir.join("rosterd.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    let env = |name: &str| match name {
        "ROSTERD_TEST_HESH_KEY" => Some(HESH_KEY.to_string()),
        "ROSTERD_TEST_VYTE_KEY" => Some(VYTE_KEY.to_string()),
        _ => None,
    };
    let config = Config::from_yaml(&text, &path, &env).unwrap();
    let selected: Vec<_> = config.providers.iter().collect();
    let today: NaiveDate = TODAY.parse().unwrap();
    let store = Store::open(&config.state).await.unwrap();
    let report =
        rosterd::sync::plan_pass(&config, &selected, Some(&store), today, Default::default())
            .await
            .unwrap();
    let at = Utc.with_ymd_and_hms(2026, 11, 24, 12, 0, 0).unwrap();
    for p in report.providers.iter().map(|r| &r.plan) {
        let mut rows = Vec::new();
        let records: Vec<String> = p
            .operations
            .iter()
            .map(|o| {
                o.record
                    .as_ref()
                    .map(|r| r.to_stored().to_json())
                    .unwrap_or_default()
            })
            .collect();
        for (op, record) in p.operations.iter().zip(&records) {
            assert_ne!(op.op, OpKind::Delete);
            rows.push(SnapshotUpsert {
                provider: &p.name,
                external_id: &op.external_id,
                vendor_id: Some("vendor-id"),
                email: &op.email,
                fingerprint: op.fingerprint.unwrap_or(rosterd::providers::Fingerprint(0)),
                state: if op.op == OpKind::Disable {
                    AccountState::Disabled
                } else {
                    AccountState::Active
                },
                record_json: record,
                confirmed_at: at,
            });
        }
        store.upsert_snapshot_many(&rows).await.unwrap();
    }
}

#[test]
fn first_dry_run_plans_creates_rejects_and_writes_nothing() {
    let dir = fixture_copy("dry_run");
    let (code, doc, _) = dry_run_json(dir.path());
    assert_eq!(code, 0);
    assert_eq!(doc["today"], TODAY);
    assert_eq!(doc["source"]["records"], 7);
    assert_eq!(doc["source"]["users"], 6);
    let rejected = doc["source"]["rejected"].as_array().unwrap();
    assert_eq!(rejected.len(), 1);
    assert_eq!(rejected[0]["external_id"], "A006");
    assert_eq!(rejected[0]["location"], "line 7");

    let hesh = provider(&doc, "hesh");
    assert_eq!(hesh["type"], "hesh");
    // A003 left in 2020; A007's termination is dated ahead, so still active;
    // A005's first name is too long for hesh.
    assert_eq!(
        ops(hesh),
        pairs(&[
            ("create", "A001"),
            ("create", "A002"),
            ("create", "A004"),
            ("create", "A007")
        ])
    );
    assert_eq!(hesh["summary"]["create"], 4);
    assert_eq!(hesh["summary"]["rejected"], 1);
    assert_eq!(hesh["rejected"][0]["external_id"], "A005");
    assert!(hesh["rejected"][0]["reason"]
        .as_str()
        .unwrap()
        .contains("first_name is 15 characters"));
    assert_eq!(hesh["blocked"], Value::Null);
    let ada = &hesh["operations"][0];
    assert_eq!(ada["email"], "ada@corp.example");
    let changes = ada["changes"].as_array().unwrap();
    assert!(changes
        .iter()
        .any(|c| c["field"] == "phone" && c["new"] == "+44 1" && c["old"].is_null()));

    let chat = provider(&doc, "chat");
    assert_eq!(ops(chat), pairs(&[("create", "A002"), ("create", "A005")]));
    let vyte = provider(&doc, "vyte");
    assert_eq!(vyte["summary"]["create"], 5);

    assert!(
        !dir.path().join("state.db").exists(),
        "a dry run must not create the state file"
    );
}

#[tokio::test]
async fn second_dry_run_after_the_snapshot_is_filled_plans_nothing() {
    let dir = fixture_copy("dry_run");
    fill_snapshot(dir.path()).await;
    let (code, doc, _) = dry_run_json(dir.path());
    assert_eq!(code, 0);
    for p in doc["providers"].as_array().unwrap() {
        assert_eq!(p["operations"].as_array().unwrap().len(), 0, "{p}");
        assert_eq!(p["manual"].as_array().unwrap().len(), 0, "{p}");
    }
    // The record hesh refuses is still reported, every run, until it is fixed.
    assert_eq!(provider(&doc, "hesh")["summary"]["rejected"], 1);
}

#[tokio::test]
async fn changed_source_plans_updates_disables_and_manual_actions() {
    let dir = fixture_copy("dry_run");
    fill_snapshot(dir.path()).await;
    let csv = std::fs::read_to_string(dir.path().join("users.csv")).unwrap();
    let csv = csv
        .replace("Bob,Builder", "Bob,Builder-Smith")
        .replace(
            "A001,ada@corp.example,Ada,Lovelace,+44 1,Engineering,active,",
            "A001,ada@corp.example,Ada,Lovelace,+44 1,Engineering,active,2026-11-24",
        )
        .lines()
        .filter(|l| !l.starts_with("A004"))
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(dir.path().join("users.csv"), csv).unwrap();
    let (code, doc, _) = dry_run_json(dir.path());
    assert_eq!(code, 0);

    let hesh = provider(&doc, "hesh");
    assert_eq!(
        ops(hesh),
        pairs(&[("disable", "A001"), ("update", "A002"), ("disable", "A004")])
    );
    let update = &hesh["operations"][1];
    assert_eq!(update["changes"][0]["field"], "last_name");
    assert_eq!(update["changes"][0]["old"], "Builder");
    assert_eq!(update["changes"][0]["new"], "Builder-Smith");
    assert_eq!(update["vendor_id"], "vendor-id");
    assert_eq!(hesh["operations"][0]["reason"], "inactive in the source");
    assert_eq!(hesh["operations"][2]["reason"], "no longer in the source");

    // saleschat cannot rename: manual action, nothing sent.
    let chat = provider(&doc, "chat");
    assert!(ops(chat).is_empty());
    assert_eq!(chat["manual"][0]["external_id"], "A002");
    assert_eq!(chat["manual"][0]["needed"], "update");

    // vyte cannot disable: both leavers are manual actions; the rename is an update.
    let vyte = provider(&doc, "vyte");
    assert_eq!(ops(vyte), pairs(&[("update", "A002")]));
    let manual: Vec<&str> = vyte["manual"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["external_id"].as_str().unwrap())
        .collect();
    assert_eq!(manual, ["A001", "A004"]);
}

#[tokio::test]
async fn too_many_disables_block_the_plan_with_exit_code_3() {
    let dir = fixture_copy("dry_run");
    fill_snapshot(dir.path()).await;
    // Keep only two users: hesh would disable 2 of 4 (50%: allowed), vyte none (manual),
    // so tighten the guard to 25%.
    let yaml = std::fs::read_to_string(dir.path().join("rosterd.yaml")).unwrap();
    std::fs::write(
        dir.path().join("rosterd.yaml"),
        yaml.replace("max_disable_percent: 50", "max_disable_percent: 25"),
    )
    .unwrap();
    let csv = std::fs::read_to_string(dir.path().join("users.csv")).unwrap();
    let csv: Vec<&str> = csv
        .lines()
        .filter(|l| !l.starts_with("A001") && !l.starts_with("A004"))
        .collect();
    std::fs::write(dir.path().join("users.csv"), csv.join("\n")).unwrap();
    let (code, doc, stderr) = dry_run_json(dir.path());
    assert_eq!(code, 3, "{stderr}");
    let hesh = provider(&doc, "hesh");
    assert!(
        hesh["blocked"]
            .as_str()
            .unwrap()
            .contains("max_disable_percent"),
        "{hesh}"
    );
    // The blocked plan still lists what it would have done.
    assert_eq!(hesh["summary"]["disable"], 2);
    assert_eq!(provider(&doc, "chat")["blocked"], Value::Null);
    // --force: same plan, exit 0.
    let out = rosterd(
        dir.path(),
        &[
            "sync",
            "--dry-run",
            "--force",
            "--format",
            "json",
            "--today",
            TODAY,
        ],
    );
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn empty_export_blocks_every_provider() {
    let dir = fixture_copy("dry_run");
    std::fs::write(
        dir.path().join("users.csv"),
        "id,email,given,family,phone,dept,status,end_date\n",
    )
    .unwrap();
    let (code, doc, _) = dry_run_json(dir.path());
    assert_eq!(code, 3);
    for p in doc["providers"].as_array().unwrap() {
        assert!(
            p["blocked"].as_str().unwrap().contains("min_source_users"),
            "{p}"
        );
    }
}

#[test]
fn provider_filter_limits_the_plan() {
    let dir = fixture_copy("dry_run");
    let out = rosterd(
        dir.path(),
        &[
            "sync",
            "--dry-run",
            "--format",
            "json",
            "--provider",
            "chat",
            "--today",
            TODAY,
        ],
    );
    assert_eq!(out.status.code(), Some(0));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    let names: Vec<&str> = doc["providers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["chat"]);
    let out = rosterd(dir.path(), &["sync", "--dry-run", "--provider", "nope"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no provider named \"nope\""));
}

#[test]
fn text_plan_shows_a_table_and_each_operation() {
    let dir = fixture_copy("dry_run");
    let out = rosterd(dir.path(), &["sync", "--dry-run", "--today", TODAY]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("Dry run for 2026-11-24"), "{text}");
    assert!(
        text.contains("create") && text.contains("A001 <ada@corp.example>"),
        "{text}"
    );
    assert!(text.contains("x rejected A005"), "{text}");
    assert!(text.contains("line 7: A006"), "{text}");
}

#[test]
fn bad_config_exits_1_naming_the_key() {
    let dir = fixture_copy("dry_run");
    let yaml = std::fs::read_to_string(dir.path().join("rosterd.yaml")).unwrap();
    std::fs::write(
        dir.path().join("rosterd.yaml"),
        yaml.replace("org_id: org-1", "org_id: org-1\n    orgid: typo"),
    )
    .unwrap();
    let out = rosterd(dir.path(), &["sync", "--dry-run"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("providers[1].orgid"), "{err}");
}

#[test]
fn missing_source_exits_1_and_says_which_file() {
    let dir = fixture_copy("dry_run");
    std::fs::remove_file(dir.path().join("users.csv")).unwrap();
    let out = rosterd(dir.path(), &["sync", "--dry-run"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("users.csv"));
}

#[tokio::test]
async fn real_run_against_an_unreachable_vendor_fails_those_operations_and_records_nothing_as_done()
{
    let dir = fixture_copy("dry_run");
    // A port that was just free: connections are refused.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let yaml = std::fs::read_to_string(dir.path().join("rosterd.yaml")).unwrap();
    let yaml = yaml.replace(
        "base_url: https://hesh.test.invalid",
        &format!("base_url: http://127.0.0.1:{port}\n    rate_limit: {{ max_attempts: 1, timeout_seconds: 2 }}"),
    );
    std::fs::write(dir.path().join("rosterd.yaml"), yaml).unwrap();
    let out = rosterd(
        dir.path(),
        &[
            "sync",
            "--provider",
            "hesh",
            "--format",
            "json",
            "--today",
            TODAY,
        ],
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        out.status.code(),
        Some(2),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: Value = serde_json::from_str(&stdout).unwrap();
    let result = &provider(&doc, "hesh")["result"];
    // Nothing listens: the provider stops as a whole (one error, not four), its
    // creates are left for the next pass.
    assert_eq!(result["failed"], 0, "{result}");
    assert_eq!(result["deferred"], 4, "{result}");
    assert!(
        result["provider_error"]
            .as_str()
            .unwrap_or_default()
            .contains("hesh: unreachable"),
        "{result}"
    );
    assert!(!stdout.contains(HESH_KEY));
    // The state file exists now, but no account is recorded as created.
    let store = Store::open(&dir.path().join("state.db")).await.unwrap();
    assert!(store.snapshot("hesh").await.unwrap().is_empty());
    assert!(
        store.in_flight().await.unwrap().is_empty(),
        "failed operations are closed, not left in flight"
    );
    let runs = store.recent_runs(5).await.unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].outcome, Some(PassOutcome::Failed));
}

#[test]
fn check_prints_counts() {
    let dir = fixture_copy("dry_run");
    let out = rosterd(dir.path(), &["check", "--format", "json"]);
    assert_eq!(out.status.code(), Some(0));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["source"]["users"], 6);
    assert_eq!(doc["providers"][1]["users_in_scope"], 3);
}

#[test]
fn show_requests_prints_each_request_with_secrets_redacted() {
    let dir = fixture_copy("dry_run");
    let out = rosterd(
        dir.path(),
        &[
            "sync",
            "--dry-run",
            "--show-requests",
            "--format",
            "json",
            "--today",
            TODAY,
        ],
    );
    assert_eq!(out.status.code(), Some(0));
    let stdout = String::from_utf8(out.stdout).unwrap();
    for secret in [HESH_KEY, VYTE_KEY, "chat-token-for-tests"] {
        assert!(
            !stdout.contains(secret),
            "secret leaked into --show-requests"
        );
    }
    let doc: Value = serde_json::from_str(&stdout).unwrap();
    let hesh = &provider(&doc, "hesh")["requests"];
    assert_eq!(hesh["base_url"], "https://hesh.test.invalid");
    assert_eq!(hesh["headers"]["x-api-key"], "<redacted>");
    assert_eq!(
        hesh["headers"]["x-tenant-id"],
        "3f2b8c1e-6d4a-4e2b-9c1a-2b3c4d5e6f70"
    );
    // Four creates: one batch request carrying all four.
    let requests = hesh["requests"].as_array().unwrap();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0]["method"], "POST");
    assert_eq!(requests[0]["path"], "/api/v1/public/users/batch");
    assert_eq!(requests[0]["body"]["users"].as_array().unwrap().len(), 4);
    assert_eq!(requests[0]["body"]["users"][0]["first_name"], "Ada");
    let chat = &provider(&doc, "chat")["requests"];
    assert_eq!(chat["headers"]["Authorization"], "Bearer <redacted>");
    assert_eq!(
        chat["requests"][0]["body"]["password"],
        "<generated at send time, never shown>"
    );
    // Without the flag, no requests in the plan.
    let (_, plain, _) = dry_run_json(dir.path());
    assert!(provider(&plain, "hesh").get("requests").is_none());
    // The flag needs --dry-run.
    let out = rosterd(dir.path(), &["sync", "--show-requests"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "a usage error is 'could not run'"
    );
}

#[test]
fn log_dir_receives_json_lines_without_secrets() {
    let dir = fixture_copy("dry_run");
    let yaml = std::fs::read_to_string(dir.path().join("rosterd.yaml")).unwrap();
    std::fs::write(
        dir.path().join("rosterd.yaml"),
        format!("log: {{ dir: logs, format: text }}\n{yaml}"),
    )
    .unwrap();
    let out = rosterd(dir.path(), &["sync", "--dry-run", "--today", TODAY]);
    assert_eq!(out.status.code(), Some(0));
    let files: Vec<_> = std::fs::read_dir(dir.path().join("logs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    let text = std::fs::read_to_string(&files[0]).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(
        lines
            .iter()
            .any(|l| l["message"] == "Plan made." && l["provider"] == "hesh"),
        "{text}"
    );
    for secret in [HESH_KEY, VYTE_KEY, "chat-token-for-tests"] {
        assert!(!text.contains(secret));
    }
    // stderr kept the human format asked for.
    assert!(!String::from_utf8_lossy(&out.stderr)
        .trim_start()
        .starts_with('{'));
}

#[test]
fn output_into_a_closed_pipe_ends_quietly_with_the_outcomes_exit_code() {
    let dir = fixture_copy("dry_run");
    for args in [
        &["sync", "--dry-run", "--format", "json", "--today", TODAY][..],
        &["sync", "--dry-run", "--today", TODAY],
        &["check", "--format", "json"],
    ] {
        // The reading end is closed before rosterd writes: `rosterd … | head -0`.
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let out = Command::new(env!("CARGO_BIN_EXE_rosterd"))
            .arg("-c")
            .arg(dir.path().join("rosterd.yaml"))
            .args(args)
            .env("ROSTERD_TEST_HESH_KEY", HESH_KEY)
            .env("ROSTERD_TEST_VYTE_KEY", VYTE_KEY)
            .stdout(writer)
            .stderr(std::process::Stdio::piped())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert!(!stderr.contains("Broken pipe"), "{args:?}: {stderr}");
    }
}
