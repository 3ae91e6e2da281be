//! Review, then apply exactly this: `sync --dry-run --out PLAN` saves the plan with
//! what it was made from; `sync --plan PLAN` applies those operations and nothing
//! else (a person added to the source since is not created), refuses a plan whose
//! snapshot rows or config moved, or whose file was edited, and applies a plan a
//! guard blocked only with `--approve`, recorded in the run history. On a terminal a
//! plain `sync` shows the plan and asks first.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use rosterd::store::Store;
use serde_json::Value;
use support::fake_hesh::{FakeHesh, FakeHeshOptions, HeshStatus};
use support::fake_server::FakeVendor;

struct World {
    dir: tempfile::TempDir,
    hesh: FakeHesh,
}

impl World {
    async fn start(max_disable_percent: u32) -> World {
        let w = World {
            dir: tempfile::tempdir().unwrap(),
            hesh: FakeHesh::start(FakeHeshOptions::default()).await,
        };
        w.write_config(max_disable_percent);
        w
    }

    fn write_config(&self, max_disable_percent: u32) {
        let yaml = format!(
            "state: state.db\n\
             source:\n  type: csv\n  path: users.csv\n  fields: {{ external_id: id, email: email, first_name: first, last_name: last }}\n  status: {{ field: status, active_values: [active] }}\n\
             safety: {{ max_disable_percent: {max_disable_percent}, min_source_users: 1 }}\n\
             providers:\n  - name: hesh\n    type: hesh\n    base_url: {}\n    api_key: ${{T_HESH}}\n    tenant_id: {}\n    leavers: ignore\n",
            self.hesh.base_url(),
            self.hesh.tenant_id(),
        );
        std::fs::write(self.dir.path().join("rosterd.yaml"), yaml).unwrap();
    }

    fn people(&self, rows: &[(&str, &str, &str)]) {
        let mut csv = String::from("id,email,first,last,status\n");
        for (id, first, status) in rows {
            csv.push_str(&format!(
                "{id},{}@corp.example,{first},Tester,{status}\n",
                first.to_lowercase()
            ));
        }
        std::fs::write(self.dir.path().join("users.csv"), csv).unwrap();
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn rosterd(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_rosterd"))
            .arg("-c")
            .arg(self.path("rosterd.yaml"))
            .args(args)
            .env("T_HESH", self.hesh.api_key())
            .env("USER", "alice")
            .output()
            .unwrap()
    }

    fn emails(&self) -> Vec<String> {
        let mut e: Vec<String> = self.hesh.users().into_iter().map(|u| u.email).collect();
        e.sort();
        e
    }
}

fn code(out: &Output) -> i32 {
    out.status.code().unwrap_or(-1)
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn plan_arg(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_saved_plan_is_applied_exactly_and_refused_once_what_it_was_made_from_moved() {
    let w = World::start(100).await;
    w.people(&[("E1", "Ann", "active"), ("E2", "Bob", "active")]);
    let plan = w.path("plan.json");
    let out = w.rosterd(&[
        "sync",
        "--dry-run",
        "--out",
        plan_arg(&plan),
        "--format",
        "json",
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("rosterd sync --plan"),
        "{}",
        stderr(&out)
    );
    assert!(w.hesh.requests().is_empty(), "a dry run sent something");
    assert!(!w.path("state.db").exists(), "a dry run wrote the state");
    let saved: Value = serde_json::from_str(&std::fs::read_to_string(&plan).unwrap()).unwrap();
    assert_eq!(saved["format_version"], 1);
    assert_eq!(
        saved["providers"][0]["operations"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&plan).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "the plan names people: private");
    }

    // The source grows before the plan is applied: only what was reviewed is sent.
    w.people(&[
        ("E1", "Ann", "active"),
        ("E2", "Bob", "active"),
        ("E3", "Cat", "active"),
    ]);
    let out = w.rosterd(&["sync", "--plan", plan_arg(&plan), "--format", "json"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(w.emails(), ["ann@corp.example", "bob@corp.example"]);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        report["providers"][0]["result"]["applied"]["create"], 2,
        "{report}"
    );

    // Applied once, the plan is stale: its rows are no longer what it saw.
    let sent = w.hesh.writes().len();
    let out = w.rosterd(&["sync", "--plan", plan_arg(&plan)]);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("cannot be applied as it was made"), "{err}");
    assert!(err.contains("E1's snapshot row is active"), "{err}");
    assert_eq!(w.hesh.writes().len(), sent, "nothing more was sent");

    // A new plan (Cat), then the config changes: refused, naming the config.
    let plan2 = w.path("plan2.json");
    let out = w.rosterd(&["sync", "--dry-run", "--out", plan_arg(&plan2)]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    w.write_config(90);
    let out = w.rosterd(&["sync", "--plan", plan_arg(&plan2)]);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    assert!(stderr(&out).contains("the config file"), "{}", stderr(&out));

    // An edited plan is refused before anything is checked or sent.
    w.write_config(100);
    let text = std::fs::read_to_string(&plan2)
        .unwrap()
        .replace("cat@corp.example", "mallory@evil.example");
    std::fs::write(&plan2, text).unwrap();
    let out = w.rosterd(&["sync", "--plan", plan_arg(&plan2)]);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("the file was edited"),
        "{}",
        stderr(&out)
    );
    assert_eq!(w.emails(), ["ann@corp.example", "bob@corp.example"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_blocked_plan_is_applied_only_when_approved_and_the_approval_is_recorded() {
    let w = World::start(30).await;
    w.people(&[
        ("E1", "Ann", "active"),
        ("E2", "Bob", "active"),
        ("E3", "Cat", "active"),
    ]);
    let out = w.rosterd(&["sync"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    // Two of three leave: 67% is over the 30% guard.
    w.people(&[("E1", "Ann", "active")]);
    let plan = w.path("plan.json");
    let out = w.rosterd(&["sync", "--dry-run", "--out", plan_arg(&plan)]);
    assert_eq!(code(&out), 3, "{}", stderr(&out));
    assert!(stderr(&out).contains("--approve"), "{}", stderr(&out));

    let out = w.rosterd(&["sync", "--plan", plan_arg(&plan)]);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("apply it with --approve"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        w.hesh.user_by_email("bob@corp.example").unwrap().status,
        HeshStatus::Active
    );

    let out = w.rosterd(&[
        "sync",
        "--plan",
        plan_arg(&plan),
        "--approve",
        "--format",
        "json",
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(
        w.hesh.user_by_email("bob@corp.example").unwrap().status,
        HeshStatus::Inactive
    );
    assert_eq!(
        w.hesh.user_by_email("cat@corp.example").unwrap().status,
        HeshStatus::Inactive
    );
    assert_eq!(
        w.hesh.user_by_email("ann@corp.example").unwrap().status,
        HeshStatus::Active
    );

    let store = Store::open_read_only(&w.path("state.db"))
        .await
        .unwrap()
        .unwrap();
    let runs = store.recent_runs(1).await.unwrap();
    store.close().await;
    let summary: Value = serde_json::from_str(runs[0].summary.as_deref().unwrap()).unwrap();
    assert_eq!(summary["approved"]["by"], "alice", "{summary}");
    assert!(summary["approved"]["plan"]
        .as_str()
        .unwrap()
        .ends_with("plan.json"));
    assert_eq!(runs[0].outcome.unwrap().as_str(), "ok");
}

#[tokio::test(flavor = "multi_thread")]
async fn on_a_terminal_sync_shows_the_plan_and_sends_nothing_unless_told_yes() {
    let w = World::start(100).await;
    w.people(&[("E1", "Ann", "active")]);
    // `script` gives rosterd a terminal; its stdin is what the person types.
    let run = |answer: &str| {
        let cmd = format!(
            "{} -c {} sync",
            env!("CARGO_BIN_EXE_rosterd"),
            w.path("rosterd.yaml").display()
        );
        let mut child = Command::new("script")
            .args(["-qec", &cmd, "/dev/null"])
            .env("T_HESH", w.hesh.api_key())
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(answer.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        (
            code(&out),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    let (status, shown) = run("no\n");
    assert_eq!(status, 0, "{shown}");
    assert!(shown.contains("+ create   E1"), "{shown}");
    assert!(shown.contains("Apply these 1 operation(s)?"), "{shown}");
    assert!(shown.contains("Not applied"), "{shown}");
    assert!(w.hesh.writes().is_empty(), "sent without a yes");
    let (status, shown) = run("yes\n");
    assert_eq!(status, 0, "{shown}");
    assert_eq!(w.emails(), ["ann@corp.example"], "{shown}");
}
