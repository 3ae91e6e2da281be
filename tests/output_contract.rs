//! The machine-readable contract: every JSON document rosterd prints carries
//! `format_version: 1` and matches its schema in `schemas/` — checked here on real
//! output (plan, result, jsonl lines, status, check, explain, history, orphans), so a schema
//! that drifted from what is printed fails.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::support;

use std::process::Command;

use serde_json::Value;
use support::fake_hesh::{FakeHesh, FakeHeshOptions};
use support::fake_saleschat::{FakeSaleschat, FakeSaleschatOptions, ScUser};
use support::fake_server::FakeVendor;

#[tokio::test(flavor = "multi_thread")]
async fn every_json_document_carries_its_version_and_matches_its_schema() {
    let hesh = FakeHesh::start(FakeHeshOptions::default()).await;
    let sc = FakeSaleschat::start(FakeSaleschatOptions::default()).await;
    sc.seed([ScUser::new("stray@corp.example", "Stray", "Account")]);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("rosterd.yaml"),
        format!(
            "state: state.db\n\
             source:\n  type: csv\n  path: users.csv\n  fields: {{ external_id: id, email: email, first_name: first, last_name: last }}\n  status: {{ field: status, active_values: [active] }}\n\
             safety: {{ max_disable_percent: 100, min_source_users: 1 }}\n\
             providers:\n\
             \x20 - name: hesh\n    type: hesh\n    base_url: {}\n    api_key: ${{T_HESH}}\n    tenant_id: {}\n    scope: {{ exclude: {{ department: [Contractor] }} }}\n\
             \x20 - name: saleschat\n    type: saleschat\n    base_url: {}\n    token: ${{T_SC}}\n    org_id: {}\n",
            hesh.base_url(),
            hesh.tenant_id(),
            sc.base_url(),
            sc.org_id()
        ),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("users.csv"),
        "id,email,first,last,status,department\n\
         emp-0001,ann@corp.example,Ann,Able,active,Sales\n\
         emp-0002,bob@corp.example,Bob,Baker,active,Contractor\n\
         emp-0003,cat@corp.example,Cat,Gone,terminated,Sales\n\
         emp-0004,not-an-email,Dan,Bad,active,Sales\n",
    )
    .unwrap();
    let run = |args: &[&str]| -> String {
        let out = Command::new(env!("CARGO_BIN_EXE_rosterd"))
            .arg("-c")
            .arg(dir.path().join("rosterd.yaml"))
            .args(args)
            .env("T_HESH", hesh.api_key())
            .env("T_SC", sc.token())
            .output()
            .unwrap();
        assert!(
            matches!(out.status.code(), Some(0..=4)),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let doc = |text: String| -> Value {
        let v: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
        assert_eq!(v["format_version"], 1, "{text}");
        assert_eq!(
            text.trim().lines().count(),
            1,
            "compact when not on a terminal"
        );
        v
    };
    let mut docs: Vec<(&str, Value)> = Vec::new();
    docs.push((
        "plan.schema.json",
        doc(run(&[
            "sync",
            "--dry-run",
            "--show-requests",
            "--format",
            "json",
        ])),
    ));
    // The plan as lines: each line one object of the jsonl schema, the pass first.
    let lines = run(&["sync", "--dry-run", "--format", "jsonl"]);
    let parsed: Vec<Value> = lines
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert_eq!(parsed[0]["kind"], "pass");
    assert_eq!(parsed[0]["format_version"], 1);
    assert!(parsed
        .iter()
        .any(|l| l["kind"] == "operation" && l["op"] == "create"));
    assert!(parsed.iter().any(|l| l["kind"] == "leaver_check"));
    docs.extend(parsed.into_iter().map(|l| ("jsonl.schema.json", l)));
    let applied = doc(run(&["sync", "--format", "json"]));
    assert!(applied["providers"][0]["result"].is_object(), "{applied}");
    docs.push(("plan.schema.json", applied));
    let lines = run(&["sync", "--format", "jsonl"]);
    docs.extend(
        lines
            .lines()
            .map(|l| ("jsonl.schema.json", serde_json::from_str(l).unwrap())),
    );
    docs.push((
        "status.schema.json",
        doc(run(&["status", "--format", "json"])),
    ));
    docs.push((
        "check.schema.json",
        doc(run(&["check", "--format", "json"])),
    ));
    docs.push((
        "orphans.schema.json",
        doc(run(&["orphans", "--format", "json"])),
    ));
    // Bob is out of hesh's scope: both kinds of provider part.
    let explained = doc(run(&[
        "sync",
        "--dry-run",
        "--explain",
        "emp-0002",
        "--format",
        "json",
    ]));
    assert_eq!(explained["providers"][0]["in_scope"], false, "{explained}");
    assert_eq!(explained["providers"][1]["in_scope"], true, "{explained}");
    docs.push(("explain.schema.json", explained));
    let history: Value = serde_json::from_str(&run(&["history", "--format", "json"])).unwrap();
    assert_eq!(history["format_version"], 1);
    assert!(!history["entries"].as_array().unwrap().is_empty());
    docs.push(("history.schema.json", history));
    support::openapi::assert_matches_schemas(&docs);
    // And the check can fail: a plan without its providers does not match.
    let mut broken = docs[0].1.clone();
    broken.as_object_mut().unwrap().remove("providers");
    let failed = std::panic::catch_unwind(|| {
        support::openapi::assert_matches_schemas(&[("plan.schema.json", broken)])
    });
    assert!(failed.is_err(), "a broken plan matched its schema");
}
