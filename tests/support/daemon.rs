//! `rosterd daemon --run-now` started on a workspace, its stderr kept in a file,
//! signalled by the test and killed when dropped.

use std::fs::File;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use super::fake_hesh::FakeHesh;
use super::fake_server::FakeVendor;
use super::workspace::Workspace;

pub struct Daemon {
    pub child: Child,
    log: PathBuf,
}

impl Daemon {
    pub fn start(ws: &Workspace) -> Daemon {
        let log = ws.path().join("daemon.stderr");
        let child = Command::new(env!("CARGO_BIN_EXE_rosterd"))
            .arg("-c")
            .arg(ws.path().join("rosterd.yaml"))
            .args(["daemon", "--run-now"])
            .env(ws.key_env, &ws.secret)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(File::create(&log).unwrap())
            .spawn()
            .unwrap();
        Daemon { child, log }
    }

    /// What it logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `kill SIG PID` (`-HUP`, `-TERM`).
    pub fn signal(&self, sig: &str) {
        assert!(Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status()
            .unwrap()
            .success());
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A hesh workspace whose config runs the daemon on `schedule`, serving on `port`,
/// with `daemon` (more `daemon:` keys, e.g. `unhealthy_after: 2, `) and JSON logs.
pub fn hesh_workspace(
    fake: &FakeHesh,
    port: u16,
    provider_extra: &str,
    schedule: &str,
    daemon: &str,
) -> Workspace {
    let ws = Workspace::hesh(
        &fake.base_url(),
        fake.tenant_id(),
        fake.api_key(),
        provider_extra,
    );
    let yaml = std::fs::read_to_string(ws.path().join("rosterd.yaml")).unwrap();
    let yaml = format!(
        "schedule: \"{schedule}\"\ndaemon: {{ listen: \"127.0.0.1:{port}\", {daemon}stop_timeout_seconds: 10 }}\nlog: {{ format: json }}\n{yaml}"
    );
    std::fs::write(ws.path().join("rosterd.yaml"), yaml).unwrap();
    ws
}
