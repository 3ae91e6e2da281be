//! `rosterd daemon --run-now` started on a workspace, its stderr kept in a file,
//! signalled by the test and killed when dropped.

use std::fs::File;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

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
