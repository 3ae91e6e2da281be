//! A folder with a source CSV and a config pointing rosterd at fake vendors, and a
//! way to run the binary on it.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use serde_json::Value;

/// The secret the tests hand rosterd through the environment: it must never appear
/// in anything rosterd prints or writes.
pub const HESH_KEY_ENV: &str = "ROSTERD_TEST_HESH_KEY";

/// One source user.
#[derive(Debug, Clone)]
pub struct Person {
    pub id: String,
    pub email: String,
    pub first: String,
    pub last: String,
    pub phone: String,
    pub status: String,
}

impl Person {
    pub fn new(i: usize) -> Person {
        Person {
            id: format!("E{i:05}"),
            email: format!("user{i}@corp.example"),
            first: format!("Fn{}", i % 1000),
            last: format!("Last{i}"),
            phone: format!("+1555{i:07}"),
            status: "active".into(),
        }
    }
}

pub struct Workspace {
    pub dir: tempfile::TempDir,
    pub hesh_key: String,
}

impl Workspace {
    /// A config with one hesh provider at `base_url`; `extra` goes under the
    /// provider entry (e.g. `"    batch_size: 10\n"`).
    pub fn hesh(base_url: &str, tenant_id: &str, api_key: &str, extra: &str) -> Workspace {
        let dir = tempfile::tempdir().unwrap();
        let yaml = format!(
            "state: state.db\n\
             source:\n  type: csv\n  path: users.csv\n  fields: {{ external_id: id, email: email, first_name: first, last_name: last, phone: phone }}\n  status: {{ field: status, active_values: [active] }}\n\
             safety: {{ max_disable_percent: 100, min_source_users: 1 }}\n\
             providers:\n  - name: hesh\n    type: hesh\n    base_url: {base_url}\n    api_key: ${{{HESH_KEY_ENV}}}\n    tenant_id: {tenant_id}\n{extra}"
        );
        std::fs::write(dir.path().join("rosterd.yaml"), yaml).unwrap();
        Workspace {
            dir,
            hesh_key: api_key.to_string(),
        }
    }

    /// A config with one zaia provider (named `zaia`) at `base_url`; the key goes
    /// through the environment (`ROSTERD_TEST_ZAIA_KEY`, which the caller sets on
    /// the command: [`Workspace::run`] sets only the hesh one) and is kept in
    /// `hesh_key` for the leak checks. `extra` goes under the provider entry.
    pub fn zaia(base_url: &str, channel_id: &str, api_key: &str, extra: &str) -> Workspace {
        let dir = tempfile::tempdir().unwrap();
        let yaml = format!(
            "state: state.db\n\
             source:\n  type: csv\n  path: users.csv\n  fields: {{ external_id: id, email: email, first_name: first, last_name: last, phone: phone }}\n  status: {{ field: status, active_values: [active] }}\n\
             safety: {{ max_disable_percent: 100, min_source_users: 1 }}\n\
             providers:\n  - name: zaia\n    type: zaia\n    base_url: {base_url}\n    api_key: ${{ROSTERD_TEST_ZAIA_KEY}}\n    channel_id: {channel_id}\n{extra}"
        );
        std::fs::write(dir.path().join("rosterd.yaml"), yaml).unwrap();
        Workspace {
            dir,
            hesh_key: api_key.to_string(),
        }
    }

    /// A config with one vyte provider (named `vyte`) at `base_url`; `extra` goes under
    /// the provider entry (e.g. `"    batch: true\n"`). The key reaches rosterd through
    /// `ROSTERD_TEST_VYTE_KEY`, set in this process's environment (inherited by every
    /// run): tests use one key for all fakes, so concurrent tests set the same value.
    /// The key is also checked for leaks by [`Workspace::run`].
    pub fn vyte(base_url: &str, api_key: &str, extra: &str) -> Workspace {
        const VYTE_KEY_ENV: &str = "ROSTERD_TEST_VYTE_KEY";
        if std::env::var(VYTE_KEY_ENV).ok().as_deref() != Some(api_key) {
            std::env::set_var(VYTE_KEY_ENV, api_key);
        }
        let dir = tempfile::tempdir().unwrap();
        let yaml = format!(
            "state: state.db\n\
             source:\n  type: csv\n  path: users.csv\n  fields: {{ external_id: id, email: email, first_name: first, last_name: last, phone: phone }}\n  status: {{ field: status, active_values: [active] }}\n\
             safety: {{ max_disable_percent: 100, min_source_users: 1 }}\n\
             providers:\n  - name: vyte\n    type: vyte\n    base_url: {base_url}\n    api_key: ${{{VYTE_KEY_ENV}}}\n{extra}"
        );
        std::fs::write(dir.path().join("rosterd.yaml"), yaml).unwrap();
        Workspace {
            dir,
            hesh_key: api_key.to_string(),
        }
    }

    /// A config with one saleschat provider (named `saleschat`) at `base_url`; the
    /// token reaches rosterd through `ROSTERD_TEST_SALESCHAT_TOKEN` (set in this
    /// process, inherited by the runs) and is checked like the hesh key: it must never
    /// appear in rosterd's output. `extra` goes under the provider entry.
    pub fn saleschat(base_url: &str, org_id: &str, token: &str, extra: &str) -> Workspace {
        const TOKEN_ENV: &str = "ROSTERD_TEST_SALESCHAT_TOKEN";
        // Every test sets the same fake's token; the children inherit it.
        std::env::set_var(TOKEN_ENV, token);
        let dir = tempfile::tempdir().unwrap();
        let yaml = format!(
            "state: state.db\n\
             source:\n  type: csv\n  path: users.csv\n  fields: {{ external_id: id, email: email, first_name: first, last_name: last, phone: phone }}\n  status: {{ field: status, active_values: [active] }}\n\
             safety: {{ max_disable_percent: 100, min_source_users: 1 }}\n\
             providers:\n  - name: saleschat\n    type: saleschat\n    base_url: {base_url}\n    token: ${{{TOKEN_ENV}}}\n    org_id: {org_id}\n{extra}"
        );
        std::fs::write(dir.path().join("rosterd.yaml"), yaml).unwrap();
        Workspace {
            dir,
            hesh_key: token.to_string(),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn state(&self) -> PathBuf {
        self.path().join("state.db")
    }

    pub fn write_people(&self, people: &[Person]) {
        let mut csv = String::from("id,email,first,last,phone,status\n");
        for p in people {
            csv.push_str(&format!(
                "{},{},{},{},{},{}\n",
                p.id, p.email, p.first, p.last, p.phone, p.status
            ));
        }
        std::fs::write(self.path().join("users.csv"), csv).unwrap();
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_rosterd"));
        c.arg("-c")
            .arg(self.path().join("rosterd.yaml"))
            .args(args)
            .env(HESH_KEY_ENV, &self.hesh_key)
            .env("RUST_LOG", "info");
        c
    }

    /// Runs rosterd to the end: (exit code, stdout, stderr). Checks that the secret
    /// appears in neither.
    pub fn run(&self, args: &[&str]) -> (i32, String, String) {
        let out: Output = self.command(args).output().unwrap();
        let stdout = String::from_utf8(out.stdout).unwrap();
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert!(
            !stdout.contains(&self.hesh_key) && !stderr.contains(&self.hesh_key),
            "the API key leaked"
        );
        (out.status.code().unwrap_or(-1), stdout, stderr)
    }

    /// `sync --format json`: (exit code, the report).
    pub fn sync(&self) -> (i32, Value) {
        let (code, stdout, stderr) = self.run(&["sync", "--format", "json"]);
        let doc =
            serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}\n{stderr}"));
        (code, doc)
    }

    /// Starts `sync` without waiting (for crash tests).
    pub fn spawn_sync(&self) -> Child {
        self.command(&["sync", "--format", "json"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    }
}

/// The report of provider `name`.
pub fn provider<'a>(doc: &'a Value, name: &str) -> &'a Value {
    doc["providers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == name)
        .unwrap()
}
