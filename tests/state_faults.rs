//! The state file when the disk is not on our side: a read-only state folder, a full
//! disk, a state file another process holds locked. Each must end in a clear error that
//! names the state file, send the vendor nothing that could not be journaled, leave no
//! partial snapshot, and a later run (once the disk is fine) must converge with no
//! account created twice.
//!
//! Read-only and full disks are real: a tmpfs of a few hundred KiB, or a read-only bind
//! mount, made in a private mount namespace (`unshare -m`) that ends with the script, so
//! nothing is left mounted. That needs root (as on CI); elsewhere these tests say they
//! were skipped — on CI (`CI` set) a missing privilege is a failure instead.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::support;

use std::process::Command;

use rosterd::store::AccountState;
use support::fake_hesh::{FakeHesh, FakeHeshOptions, HeshStatus};
use support::fake_server::FakeVendor;
use support::state::snapshot_states;
use support::workspace::{provider, Person, Workspace};

/// Whether this process may make a private mount namespace with a tmpfs in it.
fn can_mount() -> bool {
    let dir = tempfile::tempdir().unwrap();
    Command::new("unshare")
        .args([
            "-m",
            "--propagation",
            "private",
            "mount",
            "-t",
            "tmpfs",
            "tmpfs",
        ])
        .arg(dir.path())
        .status()
        .is_ok_and(|s| s.success())
}

/// `true` when the test can run; `false` (after saying so) when it must be skipped.
fn mounts_available(test: &str) -> bool {
    if can_mount() {
        return true;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "{test}: CI must be able to mount a tmpfs in a private namespace (unshare -m)"
    );
    eprintln!("{test}: skipped: mounting needs root (unshare -m, mount -t tmpfs)");
    false
}

/// A hesh workspace whose state lives in `<ws>/state/` (a mount point).
fn workspace(fake: &FakeHesh) -> Workspace {
    let ws = Workspace::hesh(&fake.base_url(), fake.tenant_id(), fake.api_key(), "");
    let config = ws.path().join("rosterd.yaml");
    let yaml = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        yaml.replacen("state: state.db", "state: state/state.db", 1),
    )
    .unwrap();
    std::fs::create_dir(ws.path().join("state")).unwrap();
    ws
}

/// Runs `script` with bash in a private mount namespace, in the workspace folder, with
/// `$ROSTERD` the binary and the key in the environment. `run NAME ARGS…` runs rosterd
/// and keeps `NAME.out`, `NAME.err` and `NAME.rc` in the workspace.
fn in_namespace(ws: &Workspace, script: &str) {
    let prelude = r#"set -u
run() { local name=$1; shift; "$ROSTERD" -c rosterd.yaml "$@" >"$name.out" 2>"$name.err"; echo $? >"$name.rc"; }
"#;
    let status = Command::new("unshare")
        .args(["-m", "--propagation", "private", "bash", "-c"])
        .arg(format!("{prelude}{script}"))
        .current_dir(ws.path())
        .env("ROSTERD", env!("CARGO_BIN_EXE_rosterd"))
        .env(ws.key_env, &ws.secret)
        .env("RUST_LOG", "info")
        .status()
        .unwrap();
    assert!(status.success(), "the namespace script failed");
}

/// What `run NAME …` kept: exit code, stdout, stderr (checked for the key).
fn result(ws: &Workspace, name: &str) -> (i32, String, String) {
    let read =
        |ext: &str| std::fs::read_to_string(ws.path().join(format!("{name}.{ext}"))).unwrap();
    let (out, err) = (read("out"), read("err"));
    assert!(
        !out.contains(&ws.secret) && !err.contains(&ws.secret),
        "{name}: the key leaked"
    );
    (read("rc").trim().parse().unwrap(), out, err)
}

/// The fake holds these people, active, once each.
fn assert_holds(fake: &FakeHesh, people: &[Person]) {
    fake.assert_no_duplicates();
    assert!(
        fake.created_twice().is_empty(),
        "{:?}",
        fake.created_twice()
    );
    let active: Vec<String> = fake
        .users()
        .into_iter()
        .filter(|u| u.status == HeshStatus::Active)
        .map(|u| u.email)
        .collect();
    let mut expected: Vec<String> = people.iter().map(|p| p.email.clone()).collect();
    let mut active = active;
    active.sort();
    expected.sort();
    assert_eq!(active, expected);
}

#[tokio::test]
async fn a_read_only_state_folder_stops_the_sync_before_anything_is_sent() {
    if !mounts_available("read_only_state") {
        return;
    }
    let fake = FakeHesh::start(FakeHeshOptions::default()).await;
    let ws = workspace(&fake);
    let mut people: Vec<Person> = (0..6).map(Person::new).collect();
    ws.write_people(&people);
    let (code, doc) = ws.sync();
    assert_eq!(code, 0, "{doc}");
    let before = snapshot_states(&ws.path().join("state/state.db"), "hesh").await;

    // Two leave, one is renamed: there is work to do, but the state cannot be written.
    people.truncate(4);
    people[0].last = "Renamed".into();
    ws.write_people(&people);
    fake.clear_requests();
    in_namespace(
        &ws,
        "mount --bind state state && mount -o remount,bind,ro state\n\
         run sync sync --format json\n\
         run status status --format json\n",
    );

    let (code, _, err) = result(&ws, "sync");
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("state/state.db"),
        "names the state file: {err}"
    );
    assert!(err.to_lowercase().contains("read-only"), "says why: {err}");
    assert!(fake.requests().is_empty(), "{:?}", fake.requests());
    assert_eq!(
        snapshot_states(&ws.path().join("state/state.db"), "hesh").await,
        before
    );

    // Once writable again, the pass converges.
    let (code, doc) = ws.sync();
    assert_eq!(code, 0, "{doc}");
    assert_eq!(provider(&doc, "hesh")["result"]["applied"]["disable"], 2);
    assert_holds(&fake, &people);
}

#[tokio::test]
async fn a_full_disk_fails_the_pass_clearly_and_a_later_pass_converges_once() {
    if !mounts_available("full_disk") {
        return;
    }
    let fake = FakeHesh::start(FakeHeshOptions::default()).await;
    let ws = workspace(&fake);
    let first: Vec<Person> = (0..20).map(Person::new).collect();
    let second: Vec<Person> = (0..20)
        .filter(|i| i % 5 != 0)
        .chain(20..60)
        .map(Person::new)
        .collect();
    ws.write_people(&second);
    std::fs::rename(ws.path().join("users.csv"), ws.path().join("second.csv")).unwrap();
    ws.write_people(&first);

    // All in one namespace: the tmpfs, and what is on it, ends with the script.
    in_namespace(
        &ws,
        "mount -t tmpfs -o size=8m tmpfs state\n\
         run first sync --format json\n\
         cp second.csv users.csv\n\
         cat /dev/zero > state/filler 2>/dev/null\n\
         run full sync --format json\n\
         rm state/filler\n\
         run after sync --format json\n\
         run again sync --format json\n\
         cp state/state.db saved.db\n",
    );

    let (code, out, err) = result(&ws, "first");
    assert_eq!(code, 0, "{out}{err}");

    let (code, out, err) = result(&ws, "full");
    assert_ne!(code, 0, "a full disk cannot pass as done: {out}{err}");
    let said = format!("{out}{err}").to_lowercase();
    assert!(
        said.contains("full") || said.contains("no space"),
        "says the disk is full: {out}{err}"
    );

    let (code, out, err) = result(&ws, "after");
    assert_eq!(code, 0, "{out}{err}");
    let (code, out, _) = result(&ws, "again");
    assert_eq!(code, 0);
    let again: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        provider(&again, "hesh")["result"]["applied"],
        serde_json::json!({}),
        "the pass after convergence sends nothing: {again}"
    );

    assert_holds(&fake, &second);
    let rows = snapshot_states(&ws.path().join("saved.db"), "hesh").await;
    let active: Vec<&str> = rows
        .iter()
        .filter(|(_, s)| *s == AccountState::Active)
        .map(|(id, _)| id.as_str())
        .collect();
    let expected: Vec<String> = second.iter().map(|p| p.id.clone()).collect();
    assert_eq!(active, expected);
}

#[tokio::test]
async fn a_state_file_locked_by_another_process_is_a_clear_error_and_nothing_is_sent() {
    let fake = FakeHesh::start(FakeHeshOptions::default()).await;
    let ws = workspace(&fake);
    let mut people: Vec<Person> = (0..3).map(Person::new).collect();
    ws.write_people(&people);
    assert_eq!(ws.sync().0, 0);
    people.push(Person::new(3));
    ws.write_people(&people);
    fake.clear_requests();

    // Someone holds a write lock on the file (an `sqlite3` shell in a transaction).
    let state = ws.path().join("state/state.db");
    let holder = Command::new("python3")
        .args([
            "-c",
            "import sqlite3,sys,time\n\
             c=sqlite3.connect(sys.argv[1],isolation_level=None)\n\
             c.execute('BEGIN EXCLUSIVE')\n\
             print('locked',flush=True)\n\
             time.sleep(60)\n",
        ])
        .arg(&state)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut holder = KillOnDrop(holder);
    {
        use std::io::BufRead;
        let mut line = String::new();
        std::io::BufReader::new(holder.0.stdout.as_mut().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "locked");
    }
    let (code, out, err) = ws.run(&["sync", "--format", "json"]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(err.contains("state/state.db"), "{err}");
    assert!(err.to_lowercase().contains("locked"), "{err}");
    assert!(fake.requests().is_empty(), "{:?}", fake.requests());
    drop(holder);

    let (code, doc) = ws.sync();
    assert_eq!(code, 0, "{doc}");
    assert_holds(&fake, &people);
}

/// Kills the child when dropped, so a failing test leaves no process behind.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
