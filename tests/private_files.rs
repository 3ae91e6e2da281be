//! Files rosterd creates are private whatever the umask it is started with: the state
//! file (every employee's name and email), its `-wal` and `-shm`, the run lock and the
//! log files are 0600, the folders it creates 0700; a state file left readable by
//! others (by hand, or by an older rosterd) is tightened on the next real run.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::support;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use support::fake_hesh::{FakeHesh, FakeHeshOptions};
use support::fake_server::FakeVendor;
use support::workspace::{Person, Workspace};

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

/// `rosterd sync` started under `umask 000` (so anything not asked to be private is
/// 0666 / 0777), with `extra_env`.
fn sync_with_open_umask(ws: &Workspace, extra_env: &[(&str, &str)]) -> i32 {
    Command::new("sh")
        .arg("-c")
        .arg("umask 000; exec \"$0\" \"$@\"")
        .arg(env!("CARGO_BIN_EXE_rosterd"))
        .arg("-c")
        .arg(ws.path().join("rosterd.yaml"))
        .args(["sync", "--format", "json"])
        .env(ws.key_env, &ws.secret)
        .env("RUST_LOG", "info")
        .envs(extra_env.iter().copied())
        .output()
        .unwrap()
        .status
        .code()
        .unwrap_or(-1)
}

#[test]
fn state_lock_wal_and_logs_are_private_under_any_umask() {
    let hesh = FakeHesh::start_blocking(FakeHeshOptions::default());
    let ws = Workspace::hesh(&hesh.base_url(), hesh.tenant_id(), hesh.api_key(), "");
    let config = ws.path().join("rosterd.yaml");
    let yaml = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, format!("{yaml}log: {{ dir: logs/nested }}\n")).unwrap();
    ws.write_people(&(1..=3).map(Person::new).collect::<Vec<_>>());

    assert_eq!(sync_with_open_umask(&ws, &[]), 0);
    let state = ws.state();
    assert_eq!(mode(&state), 0o600, "state file");
    assert_eq!(mode(&ws.path().join("state.db.lock")), 0o600, "run lock");
    assert_eq!(mode(&ws.path().join("logs")), 0o700, "log folder");
    assert_eq!(mode(&ws.path().join("logs/nested")), 0o700, "log folder");
    let logs: Vec<_> = std::fs::read_dir(ws.path().join("logs/nested"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert!(!logs.is_empty(), "no log file written");
    for log in &logs {
        assert_eq!(mode(log), 0o600, "{}", log.display());
    }

    // A run killed midway leaves its -wal and -shm behind: they are private too.
    ws.write_people(&(1..=6).map(Person::new).collect::<Vec<_>>());
    let code = sync_with_open_umask(&ws, &[("ROSTERD_CRASH_AT", "answered:1")]);
    assert_ne!(code, 0, "the crash point did not fire");
    for suffix in ["-wal", "-shm"] {
        let file = ws.path().join(format!("state.db{suffix}"));
        assert!(file.exists(), "{} was not left behind", file.display());
        assert_eq!(mode(&file), 0o600, "{}", file.display());
    }
}

#[test]
fn a_state_file_readable_by_others_is_tightened() {
    let hesh = FakeHesh::start_blocking(FakeHeshOptions::default());
    let ws = Workspace::hesh(&hesh.base_url(), hesh.tenant_id(), hesh.api_key(), "");
    ws.write_people(&[Person::new(1)]);
    assert_eq!(ws.sync().0, 0);
    let state = ws.state();
    std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o644)).unwrap();
    let (code, _, stderr) = ws.run(&["sync"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(mode(&state), 0o600);
    assert!(stderr.contains("readable by others"), "{stderr}");
}
