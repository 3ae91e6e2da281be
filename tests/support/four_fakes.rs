//! The four fake vendors at once, with a config naming each (`hesh`, `saleschat`,
//! `vyte`, `zaia`, their secrets from the environment) and the binary run on it:
//! what the leaver and orphan tests share.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use super::fake_hesh::{FakeHesh, FakeHeshOptions};
use super::fake_saleschat::{FakeSaleschat, FakeSaleschatOptions};
use super::fake_server::FakeVendor;
use super::fake_vyte::FakeVyte;
use super::fake_zaia::{FakeZaia, FakeZaiaOptions};

pub struct FourFakes {
    pub dir: tempfile::TempDir,
    pub hesh: FakeHesh,
    pub sc: FakeSaleschat,
    pub vyte: FakeVyte,
    pub zaia: FakeZaia,
}

impl FourFakes {
    /// The fakes and a folder whose `rosterd.yaml` has `head` (state, source,
    /// safety) then the four providers, each followed by `extra` (indented keys).
    pub async fn start(head: &str, extra: &str) -> FourFakes {
        let w = FourFakes {
            dir: tempfile::tempdir().unwrap(),
            hesh: FakeHesh::start(FakeHeshOptions::default()).await,
            sc: FakeSaleschat::start(FakeSaleschatOptions::default()).await,
            vyte: FakeVyte::start().await,
            zaia: FakeZaia::start(FakeZaiaOptions::default()),
        };
        let yaml = format!(
            "{head}providers:\n\
             \x20 - name: hesh\n    type: hesh\n    base_url: {}\n    api_key: ${{T_HESH}}\n    tenant_id: {}\n{extra}\
             \x20 - name: saleschat\n    type: saleschat\n    base_url: {}\n    token: ${{T_SC}}\n    org_id: {}\n{extra}\
             \x20 - name: vyte\n    type: vyte\n    base_url: {}\n    api_key: ${{T_VYTE}}\n{extra}\
             \x20 - name: zaia\n    type: zaia\n    base_url: {}\n    api_key: ${{T_ZAIA}}\n    channel_id: {}\n{extra}",
            w.hesh.base_url(),
            w.hesh.tenant_id(),
            w.sc.base_url(),
            w.sc.org_id(),
            w.vyte.base_url(),
            w.zaia.base_url(),
            w.zaia.channel_id(),
        );
        std::fs::write(w.dir.path().join("rosterd.yaml"), yaml).unwrap();
        w
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// `rosterd -c rosterd.yaml ARGS`, with the four secrets in the environment.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_rosterd"));
        c.arg("-c")
            .arg(self.dir.path().join("rosterd.yaml"))
            .args(args)
            .env("T_HESH", self.hesh.api_key())
            .env("T_SC", self.sc.token())
            .env("T_VYTE", self.vyte.api_key())
            .env("T_ZAIA", self.zaia.api_key());
        c
    }

    /// Runs it with `--format json`: (exit code, the document printed).
    pub fn run_json(&self, args: &[&str]) -> (i32, Value) {
        let out = self
            .command(args)
            .args(["--format", "json"])
            .output()
            .unwrap();
        let stdout = String::from_utf8(out.stdout).unwrap();
        let doc = serde_json::from_str(&stdout)
            .unwrap_or_else(|e| panic!("{e}: {stdout}\n{}", String::from_utf8_lossy(&out.stderr)));
        (out.status.code().unwrap_or(-1), doc)
    }

    /// Requests the four fakes received.
    pub fn requests(&self) -> usize {
        self.hesh.requests().len()
            + self.sc.requests().len()
            + self.vyte.requests().len()
            + self.zaia.requests().len()
    }

    /// Writes the four fakes received.
    pub fn writes(&self) -> usize {
        self.hesh.writes().len()
            + self.sc.writes().len()
            + self.vyte.writes().len()
            + self.zaia.writes().len()
    }

    pub fn clear_requests(&self) {
        self.hesh.clear_requests();
        self.sc.clear_requests();
        self.vyte.clear_requests();
        self.zaia.clear_requests();
    }
}
