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
    /// The first provider's secret (API key or token): rosterd gets it through
    /// `key_env`, and [`Workspace::run`] fails the test when it appears in the output.
    pub secret: String,
    /// The variable the config names for the secret.
    pub key_env: &'static str,
    /// The secrets of providers added with [`Workspace::add`], as (variable, value).
    more_secrets: Vec<(&'static str, String)>,
}

/// The source and safety part every workspace config shares.
const CONFIG_HEAD: &str = "state: state.db\n\
     source:\n  type: csv\n  path: users.csv\n  fields: { external_id: id, email: email, first_name: first, last_name: last, phone: phone }\n  status: { field: status, active_values: [active] }\n\
     safety: { max_disable_percent: 100, min_source_users: 1 }\n";

/// One provider entry of a workspace config (named and typed `vendor`), and the
/// secret rosterd needs for it.
pub struct Provider {
    vendor: &'static str,
    /// The entry's lines after `type` (base_url and ids, each `    key: value\n`).
    fields: String,
    /// The config key of the secret, written as `${key_env}`.
    secret_key: &'static str,
    key_env: &'static str,
    secret: String,
}

impl Provider {
    /// hesh at `base_url`, the key in `ROSTERD_TEST_HESH_KEY`.
    pub fn hesh(base_url: &str, tenant_id: &str, api_key: &str) -> Provider {
        Provider {
            vendor: "hesh",
            fields: format!("    base_url: {base_url}\n    tenant_id: {tenant_id}\n"),
            secret_key: "api_key",
            key_env: HESH_KEY_ENV,
            secret: api_key.into(),
        }
    }

    /// zaia at `base_url`, the key in `ROSTERD_TEST_ZAIA_KEY`.
    pub fn zaia(base_url: &str, channel_id: &str, api_key: &str) -> Provider {
        Provider {
            vendor: "zaia",
            fields: format!("    base_url: {base_url}\n    channel_id: {channel_id}\n"),
            secret_key: "api_key",
            key_env: "ROSTERD_TEST_ZAIA_KEY",
            secret: api_key.into(),
        }
    }

    /// vyte at `base_url`, the key in `ROSTERD_TEST_VYTE_KEY`.
    pub fn vyte(base_url: &str, api_key: &str) -> Provider {
        Provider {
            vendor: "vyte",
            fields: format!("    base_url: {base_url}\n"),
            secret_key: "api_key",
            key_env: "ROSTERD_TEST_VYTE_KEY",
            secret: api_key.into(),
        }
    }

    /// saleschat at `base_url`, the token in `ROSTERD_TEST_SALESCHAT_TOKEN`.
    pub fn saleschat(base_url: &str, org_id: &str, token: &str) -> Provider {
        Provider {
            vendor: "saleschat",
            fields: format!("    base_url: {base_url}\n    org_id: {org_id}\n"),
            secret_key: "token",
            key_env: "ROSTERD_TEST_SALESCHAT_TOKEN",
            secret: token.into(),
        }
    }

    /// The entry in the config's `providers` list; `extra` ends it (each line
    /// `    key: value\n`).
    fn entry(&self, extra: &str) -> String {
        let Provider {
            vendor,
            fields,
            secret_key,
            key_env,
            ..
        } = self;
        format!("  - name: {vendor}\n    type: {vendor}\n{fields}    {secret_key}: ${{{key_env}}}\n{extra}")
    }
}

impl Workspace {
    /// A config with one provider; `extra` ends its entry (e.g.
    /// `"    batch_size: 10\n"`). Every run gets the provider's secret.
    pub fn new(provider: Provider, extra: &str) -> Workspace {
        let dir = tempfile::tempdir().unwrap();
        let yaml = format!("{CONFIG_HEAD}providers:\n{}", provider.entry(extra));
        std::fs::write(dir.path().join("rosterd.yaml"), yaml).unwrap();
        Workspace {
            dir,
            secret: provider.secret,
            key_env: provider.key_env,
            more_secrets: Vec::new(),
        }
    }

    /// Adds a provider to the config (after the others); its secret goes to every run
    /// and is checked for leaks like the first one's.
    pub fn add(&mut self, provider: Provider, extra: &str) {
        let path = self.path().join("rosterd.yaml");
        let mut yaml = std::fs::read_to_string(&path).unwrap();
        yaml.push_str(&provider.entry(extra));
        std::fs::write(&path, yaml).unwrap();
        self.more_secrets.push((provider.key_env, provider.secret));
    }

    /// One hesh provider at `base_url`; `extra` goes under the provider entry.
    pub fn hesh(base_url: &str, tenant_id: &str, api_key: &str, extra: &str) -> Workspace {
        Workspace::new(Provider::hesh(base_url, tenant_id, api_key), extra)
    }

    /// One zaia provider (named `zaia`) at `base_url`.
    pub fn zaia(base_url: &str, channel_id: &str, api_key: &str, extra: &str) -> Workspace {
        Workspace::new(Provider::zaia(base_url, channel_id, api_key), extra)
    }

    /// One vyte provider (named `vyte`) at `base_url`.
    pub fn vyte(base_url: &str, api_key: &str, extra: &str) -> Workspace {
        Workspace::new(Provider::vyte(base_url, api_key), extra)
    }

    /// One saleschat provider (named `saleschat`) at `base_url`.
    pub fn saleschat(base_url: &str, org_id: &str, token: &str, extra: &str) -> Workspace {
        Workspace::new(Provider::saleschat(base_url, org_id, token), extra)
    }

    /// Every secret the config names, as (variable, value).
    fn secrets(&self) -> impl Iterator<Item = (&'static str, &str)> {
        std::iter::once((self.key_env, self.secret.as_str()))
            .chain(self.more_secrets.iter().map(|(k, v)| (*k, v.as_str())))
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

    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_rosterd"));
        c.arg("-c")
            .arg(self.path().join("rosterd.yaml"))
            .args(args)
            .envs(self.secrets())
            .env("RUST_LOG", "info");
        c
    }

    /// Runs rosterd to the end: (exit code, stdout, stderr). Checks that the secret
    /// appears in neither.
    pub fn run(&self, args: &[&str]) -> (i32, String, String) {
        let out: Output = self.command(args).output().unwrap();
        let stdout = String::from_utf8(out.stdout).unwrap();
        let stderr = String::from_utf8(out.stderr).unwrap();
        for (name, secret) in self.secrets() {
            assert!(
                !stdout.contains(secret) && !stderr.contains(secret),
                "the secret in {name} leaked"
            );
        }
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

/// The `op` of every operation planned for provider `name`, in report order.
pub fn op_kinds(doc: &Value, name: &str) -> Vec<String> {
    provider(doc, name)["operations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["op"].as_str().unwrap().to_string())
        .collect()
}
