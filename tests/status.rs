//! `rosterd status` on a state file with several passes, accounts in every state, a
//! manual action and a quarantined failure; `status --exit-code` on each way the last
//! pass can end.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::support;

use std::path::Path;
use std::process::Command;

use chrono::{TimeZone, Utc};
use serde_json::{json, Value};

use rosterd::providers::Fingerprint;
use rosterd::store::{AccountState, OpKind, PassOutcome, RunMode, SnapshotUpsert, Store};
use support::process::fixture_copy;

fn status(dir: &Path, format: &str) -> (i32, String) {
    status_with(dir, &["--format", format])
}

fn status_with(dir: &Path, args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_rosterd"))
        .arg("-c")
        .arg(dir.join("rosterd.yaml"))
        .arg("status")
        .args(args)
        .env("ROSTERD_TEST_HESH_KEY", "hesh-test-key")
        .env("ROSTERD_TEST_VYTE_KEY", "vyte-test-key")
        .output()
        .unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8(out.stdout).unwrap(),
    )
}

#[test]
fn status_without_a_state_file_says_no_runs_yet() {
    let dir = fixture_copy("dry_run");
    let (code, text) = status(dir.path(), "text");
    assert_eq!(code, 0);
    assert!(text.contains("no runs yet"), "{text}");
    assert!(!dir.path().join("state.db").exists());
}

#[tokio::test]
async fn status_shows_passes_accounts_and_who_needs_attention() {
    let dir = fixture_copy("dry_run");
    let store = Store::open(&dir.path().join("state.db")).await.unwrap();
    let at = |m: u32| Utc.with_ymd_and_hms(2026, 11, 24, 10, m, 0).unwrap();
    let summary = |applied: u64, failed: u64, blocked: Value| {
        json!({"providers": [{"name": "hesh", "blocked": blocked, "result": {"applied": {"create": applied}, "failed": failed, "manual": 0}}]})
            .to_string()
    };
    store.run_start("r1", RunMode::Apply, at(0)).await.unwrap();
    store
        .run_finish(
            "r1",
            at(1),
            PassOutcome::Failed,
            &summary(3, 1, Value::Null),
        )
        .await
        .unwrap();
    store.run_start("r2", RunMode::Apply, at(10)).await.unwrap();
    store
        .run_finish("r2", at(12), PassOutcome::Ok, &summary(1, 0, Value::Null))
        .await
        .unwrap();
    store.run_start("r3", RunMode::Apply, at(20)).await.unwrap(); // interrupted
    store.run_start("r0", RunMode::Apply, at(0)).await.unwrap();
    store
        .run_finish(
            "r0",
            at(0),
            PassOutcome::Error,
            &json!({"error": "cannot read the source: users.csv is empty"}).to_string(),
        )
        .await
        .unwrap();
    for (id, state) in [
        ("A1", AccountState::Active),
        ("A2", AccountState::Active),
        ("A3", AccountState::Disabled),
        ("A4", AccountState::Manual),
    ] {
        store
            .upsert_snapshot(&SnapshotUpsert {
                provider: "hesh",
                external_id: id,
                vendor_id: None,
                email: "x@corp.example",
                fingerprint: Fingerprint(1),
                state,
                record_json: "{}",
                confirmed_at: at(1),
            })
            .await
            .unwrap();
    }
    store
        .record_failure("hesh", "A4", "created but not in the org")
        .await
        .unwrap();
    for i in 0..5 {
        store
            .record_op_failure(
                "hesh",
                "A9",
                OpKind::Create,
                "ff",
                "hesh answered 400: phone too long",
                at(i),
            )
            .await
            .unwrap();
    }
    store
        .record_op_failure(
            "hesh",
            "A8",
            OpKind::Update,
            "ee",
            "hesh answered 503",
            at(5),
        )
        .await
        .unwrap();
    store.close().await;

    let (code, out) = status(dir.path(), "json");
    assert_eq!(code, 0);
    let doc: Value = serde_json::from_str(&out).unwrap();
    let runs = doc["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 4);
    let errored = runs.iter().find(|r| r["run_id"] == "r0").unwrap();
    assert_eq!(errored["outcome"], "error");
    assert_eq!(
        errored["error"],
        "cannot read the source: users.csv is empty"
    );
    assert_eq!(runs[0]["run_id"], "r3", "newest first");
    assert_eq!(
        runs[0]["outcome"], "interrupted",
        "no process holds the run lock"
    );
    assert_eq!(runs[1]["outcome"], "ok");
    assert_eq!(runs[1]["duration_seconds"], 120.0);
    let r1 = runs.iter().find(|r| r["run_id"] == "r1").unwrap();
    assert_eq!(r1["providers"][0]["applied"], 3);
    assert_eq!(r1["providers"][0]["failed"], 1);
    assert_eq!(
        doc["accounts"][0],
        json!({"provider": "hesh", "active": 2, "disabled": 1, "manual": 1})
    );
    let attention: Vec<(String, String, u64)> = doc["attention"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["external_id"].as_str().unwrap().into(),
                a["what"].as_str().unwrap().into(),
                a["failures"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        attention,
        [
            ("A4".into(), "manual".into(), 0),
            ("A8".into(), "update".into(), 1),
            ("A9".into(), "create".into(), 5)
        ]
    );

    let (_, text) = status(dir.path(), "text");
    assert!(text.contains("interrupted"), "{text}");
    assert!(
        text.contains("cannot read the source: users.csv is empty"),
        "{text}"
    );
    assert!(text.contains("hesh: 3 / 1 / 0"), "{text}");
    assert!(
        text.contains(
            "A9: create quarantined after 5 failed runs: hesh answered 400: phone too long"
        ),
        "{text}"
    );
    assert!(
        text.contains("A4: manual action: created but not in the org"),
        "{text}"
    );
    assert!(
        text.contains("A8: update failed 1 run(s) in a row"),
        "{text}"
    );
    assert!(
        text.contains(
            "verdict: needs attention: the last pass (started 2026-11-24T10:20:00Z) was \
             interrupted: it never finished; 1 account(s) need manual action; 1 operation(s) \
             quarantined"
        ),
        "{text}"
    );

    // The same verdict as an exit code, only when asked for.
    let (code, out) = status_with(dir.path(), &["--exit-code", "--format", "json"]);
    assert_eq!(code, 1);
    let doc: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(doc["problems"].as_array().unwrap().len(), 3, "{doc}");
}

/// A state file whose last pass ended `last` (`None`: interrupted), after an ok one.
async fn history(dir: &Path, last: Option<PassOutcome>) {
    let store = Store::open(&dir.join("state.db")).await.unwrap();
    let at = |m: u32| Utc.with_ymd_and_hms(2026, 11, 24, 10, m, 0).unwrap();
    store.run_start("r1", RunMode::Apply, at(0)).await.unwrap();
    store
        .run_finish("r1", at(1), PassOutcome::Ok, "{\"providers\": []}")
        .await
        .unwrap();
    store.run_start("r2", RunMode::Apply, at(10)).await.unwrap();
    if let Some(outcome) = last {
        store
            .run_finish("r2", at(11), outcome, "{\"providers\": []}")
            .await
            .unwrap();
    }
    store.close().await;
}

#[tokio::test]
async fn status_exit_code_is_1_when_the_last_pass_did_not_end_ok_or_stopped() {
    for (last, want) in [
        (Some(PassOutcome::Ok), 0),
        (Some(PassOutcome::Stopped), 0),
        (Some(PassOutcome::Failed), 1),
        (Some(PassOutcome::Error), 1),
        (Some(PassOutcome::Timeout), 1),
        (Some(PassOutcome::Blocked), 1),
        (None, 1),
    ] {
        let dir = fixture_copy("dry_run");
        history(dir.path(), last).await;
        let (code, text) = status_with(dir.path(), &["--exit-code"]);
        assert_eq!(code, want, "{last:?}:\n{text}");
        let verdict = text.lines().find(|l| l.starts_with("verdict: ")).unwrap();
        assert_eq!(verdict == "verdict: ok", want == 0, "{last:?}: {verdict}");
        // Without --exit-code, status exits 0 whatever it shows.
        assert_eq!(status_with(dir.path(), &[]).0, 0);
    }
    // No state file: nothing has failed.
    let dir = fixture_copy("dry_run");
    assert_eq!(status_with(dir.path(), &["--exit-code"]).0, 0);
}

#[tokio::test]
async fn status_exit_code_is_1_while_an_account_needs_manual_action() {
    let dir = fixture_copy("dry_run");
    history(dir.path(), Some(PassOutcome::Ok)).await;
    assert_eq!(status_with(dir.path(), &["--exit-code"]).0, 0);
    let store = Store::open(&dir.path().join("state.db")).await.unwrap();
    store
        .upsert_snapshot(&SnapshotUpsert {
            provider: "hesh",
            external_id: "A4",
            vendor_id: None,
            email: "x@corp.example",
            fingerprint: Fingerprint(1),
            state: AccountState::Manual,
            record_json: "{}",
            confirmed_at: Utc.with_ymd_and_hms(2026, 11, 24, 10, 0, 0).unwrap(),
        })
        .await
        .unwrap();
    store.close().await;
    let (code, out) = status_with(dir.path(), &["--exit-code", "--format", "json"]);
    assert_eq!(code, 1, "{out}");
    let doc: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(doc["problems"], json!(["1 account(s) need manual action"]));
}
