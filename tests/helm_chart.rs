//! The Helm chart (`deploy/helm/rosterd`) through the real `helm`: `helm lint --strict`
//! and `helm template` for both modes, every rendering checked against the Kubernetes
//! API schemas by `kubernetes-validate --strict` (as `.ci/run` checks
//! `deploy/kubernetes/`), and the rendered YAML parsed: replicas, secrets mounted as
//! files, limits, the Service and ServiceMonitor toggles, and the refusals (`fail`) of
//! unsafe combinations. The rendered pod is then "mounted" into a temporary folder —
//! its ConfigMaps and Secrets written where its volumeMounts put them — and rosterd
//! runs the container's own args on the rendered config against fakes on 127.0.0.1:
//! the config the chart makes finds its secrets and its HR export where the chart
//! mounts them.
//!
//! helm comes from `ROSTERD_HELM`, else `PATH`. `.ci/run` installs it (from an npm
//! package, see deploy/README.md) and sets `ROSTERD_HELM`. Without either the tests
//! say so and pass, except under `CI`, where a missing helm fails them.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine as _;
use serde_json::{json, Value};
use support::fake_hesh::{FakeHesh, FakeHeshOptions};
use support::fake_hr::{hr_user, Auth, FakeHr, FakeHrOptions, Paging};
use support::fake_server::FakeVendor;
use support::venv::Venv;
use support::workspace::Person;

fn chart() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/helm/rosterd")
}

/// helm, or `None` (with the reason printed) when it is not installed here, outside CI.
fn helm() -> Option<PathBuf> {
    let runs = |p: &Path| {
        Command::new(p)
            .arg("version")
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if let Some(path) = std::env::var_os("ROSTERD_HELM") {
        let path = PathBuf::from(path);
        assert!(runs(&path), "ROSTERD_HELM={} does not run", path.display());
        return Some(path);
    }
    let on_path = PathBuf::from("helm");
    if runs(&on_path) {
        return Some(on_path);
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "CI must test the Helm chart: set ROSTERD_HELM (.ci/run installs helm)"
    );
    eprintln!(
        "skipped: helm is not on PATH and ROSTERD_HELM is unset (.ci/run installs it; CI \
         never skips)"
    );
    None
}

/// The validator `.ci/run` runs on `deploy/kubernetes/`, from the same venv.
const KUBERNETES_VALIDATE: Venv = Venv {
    name: "rosterd-ci-venv",
    requirements: &["kubernetes-validate"],
    ready: "bin/kubernetes-validate",
    env: "ROSTERD_KUBERNETES_VALIDATE",
};

/// `helm <args> <chart> -f <values>`: (success, stdout, stderr).
fn run_helm(helm: &Path, args: &[&str], values: &Value) -> (bool, String, String) {
    let dir = tempfile::tempdir().unwrap();
    // JSON is YAML: helm reads it as a values file.
    let file = dir.path().join("values.json");
    std::fs::write(&file, serde_json::to_string(values).unwrap()).unwrap();
    let out = Command::new(helm)
        .args(args)
        .arg(chart())
        .arg("-f")
        .arg(&file)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

/// A release rendered from `values`: linted, templated, validated, parsed.
struct Release {
    docs: Vec<Value>,
}

impl Release {
    fn render(helm: &Path, values: &Value) -> Release {
        let (ok, out, err) = run_helm(helm, &["lint", "--strict"], values);
        assert!(
            ok && out.contains("0 chart(s) failed"),
            "helm lint: {out}{err}"
        );
        let (ok, text, err) = run_helm(
            helm,
            &["template", "sync", "--namespace", "hr-sync"],
            values,
        );
        assert!(ok, "helm template: {err}");
        validate(&text);
        let docs: Vec<Value> = serde_saphyr::from_multiple(&text)
            .unwrap_or_else(|e| panic!("rendered YAML: {e}\n{text}"));
        Release {
            docs: docs.into_iter().filter(|d| !d.is_null()).collect(),
        }
    }

    fn kinds(&self) -> Vec<String> {
        let mut k: Vec<String> = self
            .docs
            .iter()
            .map(|d| d["kind"].as_str().unwrap().to_string())
            .collect();
        k.sort();
        k
    }

    fn all(&self, kind: &str) -> Vec<&Value> {
        self.docs.iter().filter(|d| d["kind"] == kind).collect()
    }

    fn one(&self, kind: &str) -> &Value {
        let all = self.all(kind);
        assert_eq!(all.len(), 1, "one {kind}: {:?}", self.kinds());
        all[0]
    }

    fn named(&self, kind: &str, name: &str) -> Option<&Value> {
        self.all(kind)
            .into_iter()
            .find(|d| d["metadata"]["name"] == name)
    }

    /// The pod spec of the CronJob or the Deployment.
    fn pod(&self) -> &Value {
        match (self.all("CronJob").first(), self.all("Deployment").first()) {
            (Some(cj), None) => &cj["spec"]["jobTemplate"]["spec"]["template"]["spec"],
            (None, Some(d)) => &d["spec"]["template"]["spec"],
            _ => panic!("one CronJob or one Deployment: {:?}", self.kinds()),
        }
    }

    fn container(&self) -> &Value {
        let containers = self.pod()["containers"].as_array().unwrap();
        assert_eq!(containers.len(), 1);
        &containers[0]
    }

    /// The rosterd config the ConfigMap carries, as text.
    fn config_text(&self) -> &str {
        self.named("ConfigMap", "sync-rosterd-config").unwrap()["data"]["rosterd.yaml"]
            .as_str()
            .unwrap()
    }

    fn config(&self) -> Value {
        serde_saphyr::from_str(self.config_text()).unwrap()
    }

    /// The volume mounted at `path`, and whether it is mounted read-only.
    fn mounted_at(&self, path: &str) -> Option<(&Value, bool)> {
        let mount = self.container()["volumeMounts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["mountPath"] == path)?;
        let volume = self.pod()["volumes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["name"] == mount["name"])
            .unwrap_or_else(|| panic!("no volume {}", mount["name"]));
        Some((volume, mount["readOnly"] == true))
    }

    fn args(&self) -> Vec<String> {
        strings(&self.container()["args"])
    }

    /// Lays the pod's volumes out under `root` as the kubelet would mount them (the
    /// ConfigMaps and Secrets this release renders, as files; volumes of other kinds as
    /// empty folders), writes the config there with every mounted path moved under
    /// `root`, and returns the config's path.
    fn mount(&self, root: &Path) -> PathBuf {
        let mut mount_paths = Vec::new();
        for m in self.container()["volumeMounts"].as_array().unwrap() {
            let at = m["mountPath"].as_str().unwrap();
            let dir = under(root, at);
            std::fs::create_dir_all(&dir).unwrap();
            mount_paths.push(at.to_string());
            let (volume, _) = self.mounted_at(at).unwrap();
            let (files, items) = if let Some(name) = volume["configMap"]["name"].as_str() {
                // One of the cluster's own (existingConfigMap): an empty folder here.
                let Some(cm) = self.named("ConfigMap", name) else {
                    continue;
                };
                let files = cm["data"]
                    .as_object()
                    .unwrap()
                    .iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap().as_bytes().to_vec()))
                    .collect::<Vec<_>>();
                (files, &volume["configMap"]["items"])
            } else if let Some(name) = volume["secret"]["secretName"].as_str() {
                let Some(secret) = self.named("Secret", name) else {
                    continue;
                };
                let b64 = base64::engine::general_purpose::STANDARD;
                let files = secret["data"]
                    .as_object()
                    .unwrap()
                    .iter()
                    .map(|(k, v)| (k.clone(), b64.decode(v.as_str().unwrap()).unwrap()))
                    .collect::<Vec<_>>();
                (files, &volume["secret"]["items"])
            } else {
                continue; // a PVC or an emptyDir: an empty folder
            };
            for (key, bytes) in files {
                let path = match items.as_array() {
                    None => Some(key.clone()),
                    Some(items) => items
                        .iter()
                        .find(|i| i["key"] == key.as_str())
                        .map(|i| i["path"].as_str().unwrap().to_string()),
                };
                if let Some(path) = path {
                    std::fs::write(dir.join(path), bytes).unwrap();
                }
            }
        }
        // The longest mount first: /run/secrets/rosterd-postgres before /run/secrets/rosterd.
        mount_paths.sort_by_key(|p| std::cmp::Reverse(p.len()));
        let mut config = self.config();
        reroot(&mut config, root, &mount_paths);
        let path = under(root, "/etc/rosterd/rosterd.yaml");
        std::fs::write(&path, serde_json::to_string_pretty(&config).unwrap()).unwrap();
        path
    }
}

/// `kubernetes-validate --strict` on a rendering; an ERROR or a failed exit fails.
fn validate(text: &str) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("rendered.yaml");
    std::fs::write(&file, text).unwrap();
    let out = Command::new(KUBERNETES_VALIDATE.file("bin/kubernetes-validate"))
        .arg("--strict")
        .arg(&file)
        .output()
        .unwrap();
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && !report.contains("ERROR"),
        "kubernetes-validate: {report}\n{text}"
    );
    assert!(report.contains("passed"), "nothing validated: {report}");
}

fn under(root: &Path, absolute: &str) -> PathBuf {
    root.join(absolute.trim_start_matches('/'))
}

/// Every string of `v` that is a path under one of `mounts` moved under `root`.
fn reroot(v: &mut Value, root: &Path, mounts: &[String]) {
    match v {
        Value::String(s)
            if mounts
                .iter()
                .any(|m| s.as_str() == m.as_str() || s.starts_with(&format!("{m}/"))) =>
        {
            *s = under(root, s).to_str().unwrap().to_string();
        }
        Value::Array(items) => items.iter_mut().for_each(|i| reroot(i, root, mounts)),
        Value::Object(map) => map.values_mut().for_each(|i| reroot(i, root, mounts)),
        _ => {}
    }
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_string())
        .collect()
}

/// Runs the container's args with the mounted config as its `ROSTERD_CONFIG`:
/// (exit code, stdout, stderr).
fn run_container(release: &Release, config: &Path) -> (i32, String, String) {
    let env = &release.container()["env"];
    assert_eq!(env[0]["name"], "ROSTERD_CONFIG");
    assert_eq!(env[0]["value"], "/etc/rosterd/rosterd.yaml");
    let out = Command::new(env!("CARGO_BIN_EXE_rosterd"))
        .args(release.args())
        .env("ROSTERD_CONFIG", config)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

/// A hesh provider entry whose key is the credentials file `hesh-api-key`.
fn hesh_provider(fake: &FakeHesh) -> Value {
    json!({
        "name": "hesh",
        "type": "hesh",
        "base_url": fake.base_url(),
        "api_key_file": "/run/secrets/rosterd/hesh-api-key",
        "tenant_id": fake.tenant_id(),
    })
}

fn people_csv(n: usize) -> String {
    let mut csv = String::from("id,email,first,last,phone,status\n");
    for p in (1..=n).map(Person::new) {
        csv.push_str(&format!(
            "{},{},{},{},{},{}\n",
            p.id, p.email, p.first, p.last, p.phone, p.status
        ));
    }
    csv
}

fn emails(fake: &FakeHesh) -> BTreeSet<String> {
    fake.users().into_iter().map(|u| u.email).collect()
}

fn expected_emails(n: usize) -> BTreeSet<String> {
    (1..=n).map(|i| Person::new(i).email).collect()
}

/// The values of a CronJob on a SQLite state reading a CSV the chart puts in a
/// ConfigMap, syncing to `fake`, the key in a Secret the chart makes.
fn cronjob_csv_values(fake: &FakeHesh, people: usize) -> Value {
    json!({
        "credentials": { "existingSecret": "", "create": { "hesh-api-key": fake.api_key() } },
        "source": { "files": { "users.csv": people_csv(people) } },
        "config": {
            "source": {
                "type": "csv",
                "path": "/srv/hr-export/users.csv",
                "fields": { "external_id": "id", "email": "email", "first_name": "first", "last_name": "last", "phone": "phone" },
                "status": { "field": "status", "active_values": ["active"] },
            },
            "safety": { "max_disable_percent": 100, "min_source_users": 1 },
            "providers": [hesh_provider(fake)],
        },
    })
}

/// Values the chart renders: an HTTP source and one vendor, their tokens in the
/// cluster's Secret `rosterd-credentials`.
fn http_values() -> Value {
    json!({
        "credentials": { "existingSecret": "rosterd-credentials" },
        "config": {
            "source": {
                "type": "http",
                "url": "https://hr.example.com/api/users",
                "auth": { "bearer_token_file": "/run/secrets/rosterd/hr-token" },
            },
            "providers": [{
                "name": "hesh", "type": "hesh", "base_url": "https://api.hesh.example.com",
                "api_key_file": "/run/secrets/rosterd/hesh-api-key",
                "tenant_id": "00000000-0000-4000-8000-000000000000",
            }],
        },
    })
}

/// [`http_values`] on a PostgreSQL state whose password the chart puts in a Secret.
fn postgres_values(mode: &str) -> Value {
    let mut values = http_values();
    merge(
        &mut values,
        json!({
            "mode": mode,
            "state": {
                "backend": "postgres",
                "postgres": {
                    "url": "postgres://rosterd@postgres.db.svc:5432/rosterd?sslmode=require",
                    "password": { "value": "pg-pass-never-in-a-configmap" },
                },
            },
        }),
    );
    values
}

// ---------------------------------------------------------------------------------
// CronJob mode
// ---------------------------------------------------------------------------------

#[test]
fn cronjob_on_sqlite_syncs_the_csv_it_mounts_with_the_key_it_mounts_as_a_file() {
    let Some(helm) = helm() else { return };
    let fake = FakeHesh::start_blocking(FakeHeshOptions::default());
    let release = Release::render(&helm, &cronjob_csv_values(&fake, 12));
    assert_eq!(
        release.kinds(),
        [
            "ConfigMap",
            "ConfigMap",
            "CronJob",
            "PersistentVolumeClaim",
            "Secret"
        ]
    );

    let cj = release.one("CronJob");
    assert_eq!(cj["spec"]["concurrencyPolicy"], "Forbid");
    assert!(cj["spec"]["schedule"]
        .as_str()
        .unwrap()
        .parse::<croner::Cron>()
        .is_ok());
    let job = &cj["spec"]["jobTemplate"]["spec"];
    assert_eq!(
        job["podFailurePolicy"]["rules"][0]["onExitCodes"]["values"],
        json!([3])
    );
    assert_eq!(job["template"]["spec"]["restartPolicy"], "Never");
    assert!(job["template"]["spec"]
        .get("topologySpreadConstraints")
        .is_none());
    assert_eq!(release.args(), ["sync", "--format", "json"]);

    // The key is a file from the chart's Secret, read-only, and not in the config.
    let (creds, read_only) = release.mounted_at("/run/secrets/rosterd").unwrap();
    assert!(read_only);
    let secret = release.one("Secret");
    assert_eq!(creds["secret"]["secretName"], secret["metadata"]["name"]);
    assert_eq!(creds["secret"]["defaultMode"], 0o400);
    assert!(secret["data"]["hesh-api-key"].is_string());
    assert!(!release.config_text().contains(fake.api_key()));
    assert_eq!(
        release.config()["providers"][0]["api_key_file"],
        "/run/secrets/rosterd/hesh-api-key"
    );

    // The state is a file on the PVC; the export is a read-only ConfigMap volume.
    let (state, read_only) = release.mounted_at("/var/lib/rosterd").unwrap();
    assert!(!read_only);
    let pvc = release.one("PersistentVolumeClaim");
    assert_eq!(
        state["persistentVolumeClaim"]["claimName"],
        pvc["metadata"]["name"]
    );
    assert_eq!(pvc["spec"]["accessModes"], json!(["ReadWriteOnce"]));
    assert_eq!(release.config()["state"], "/var/lib/rosterd/rosterd.db");
    let (export, read_only) = release.mounted_at("/srv/hr-export").unwrap();
    assert!(read_only);
    assert_eq!(export["configMap"]["name"], "sync-rosterd-hr-export");

    // The pod as mounted: the container's own command syncs everyone, then nothing.
    let root = tempfile::tempdir().unwrap();
    let config = release.mount(root.path());
    let (code, stdout, stderr) = run_container(&release, &config);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(!stdout.contains(fake.api_key()) && !stderr.contains(fake.api_key()));
    assert_eq!(emails(&fake), expected_emails(12));
    assert!(under(root.path(), "/var/lib/rosterd/rosterd.db").is_file());
    let before = fake.requests().len();
    let (code, stdout, stderr) = run_container(&release, &config);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    let report: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(
        support::workspace::op_kinds(&report, "hesh"),
        Vec::<String>::new()
    );
    assert!(
        fake.requests()[before..].iter().all(|r| r.method == "GET"),
        "the second pass wrote"
    );
}

#[test]
fn cronjob_reads_an_http_source_with_its_token_from_the_credentials_secret() {
    let Some(helm) = helm() else { return };
    let hr = FakeHr::start(FakeHrOptions {
        paging: Paging::Cursor,
        page_size: 4,
        auth: Auth::Bearer("hr-token-from-a-secret-file".into()),
        ignore_paging: false,
    });
    hr.set_users((1..=9).map(hr_user).collect());
    let fake = FakeHesh::start_blocking(FakeHeshOptions::default());
    let values = json!({
        "credentials": { "existingSecret": "", "create": {
            "hesh-api-key": fake.api_key(),
            "hr-token": "hr-token-from-a-secret-file",
        } },
        "config": {
            "source": {
                "type": "http",
                "url": hr.url(),
                "auth": { "bearer_token_file": "/run/secrets/rosterd/hr-token" },
                "records": "/data/users",
                "pagination": { "type": "cursor", "next": "/meta/next_cursor", "param": "cursor" },
                "fields": { "external_id": "id", "email": "work.email", "first_name": "first", "last_name": "last", "phone": "phone" },
                "status": { "field": "status", "active_values": ["active"] },
            },
            "safety": { "max_disable_percent": 100, "min_source_users": 1 },
            "providers": [hesh_provider(&fake)],
        },
    });
    let release = Release::render(&helm, &values);
    // Nothing mounted for the export: rosterd fetches it.
    assert!(release.mounted_at("/srv/hr-export").is_none());
    assert!(release
        .named("ConfigMap", "sync-rosterd-hr-export")
        .is_none());
    assert!(!release
        .config_text()
        .contains("hr-token-from-a-secret-file"));

    let root = tempfile::tempdir().unwrap();
    let config = release.mount(root.path());
    let (code, stdout, stderr) = run_container(&release, &config);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(!stdout.contains("hr-token-from-a-secret-file"));
    assert!(!stderr.contains("hr-token-from-a-secret-file"));
    assert_eq!(emails(&fake), expected_emails(9));
    assert_eq!(hr.seen().len(), 3, "9 users in pages of 4");
}

/// The config loads as rosterd loads it, but for `*_file`s under `/run/secrets/` that
/// only the cluster mounts; `env` is the container's environment. A loader from before
/// the PostgreSQL state, which takes `state` only as a path, is tolerated for the
/// `state: {url, password_file}` form alone.
fn loads_but_for_mounted_secret_files(release: &Release, env: &dyn Fn(&str) -> Option<String>) {
    let path = Path::new("/etc/rosterd/rosterd.yaml");
    if let Err(e) = rosterd::config::Config::from_yaml(release.config_text(), path, env) {
        for i in e.issues() {
            if i.path == "state"
                && i.message.contains("expected path string")
                && release.config()["state"]["password_file"].is_string()
            {
                eprintln!("note: this rosterd does not read state: {{url, password_file}}");
                continue;
            }
            assert!(
                i.path.ends_with("_file") && i.message.contains("/run/secrets/rosterd"),
                "unexpected problem: {i}\n{}",
                release.config_text()
            );
        }
    }
}

#[test]
fn the_chart_examples_render_valid_manifests_and_configs_rosterd_loads() {
    let Some(helm) = helm() else { return };
    let dir = chart().join("examples");
    let mut seen = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let values: Value = serde_saphyr::from_str(&std::fs::read_to_string(&path).unwrap())
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let release = Release::render(&helm, &values);
        loads_but_for_mounted_secret_files(&release, &|_| None);
        let (creds, read_only) = release.mounted_at("/run/secrets/rosterd").unwrap();
        assert!(read_only);
        assert_eq!(creds["secret"]["secretName"], "rosterd-credentials");
        seen.push((
            path.file_name().unwrap().to_str().unwrap().to_string(),
            release.kinds(),
        ));
    }
    seen.sort();
    assert_eq!(
        seen,
        [
            (
                "cronjob-postgres-http.yaml".to_string(),
                vec!["ConfigMap".to_string(), "CronJob".to_string()]
            ),
            (
                "cronjob-sqlite-csv.yaml".to_string(),
                vec![
                    "ConfigMap".to_string(),
                    "CronJob".to_string(),
                    "PersistentVolumeClaim".to_string()
                ]
            ),
            (
                "deployment-postgres.yaml".to_string(),
                vec![
                    "ConfigMap".to_string(),
                    "Deployment".to_string(),
                    "PodDisruptionBudget".to_string(),
                    "Service".to_string(),
                    "ServiceMonitor".to_string()
                ]
            ),
        ]
    );
}

#[test]
fn default_values_refuse_to_render_without_a_source_and_providers() {
    let Some(helm) = helm() else { return };
    let (ok, stdout, stderr) = run_helm(&helm, &["template", "sync"], &json!({}));
    assert!(!ok, "rendered\n{stdout}");
    assert!(stderr.contains("config.source: required"), "{stderr}");
    // helm lint does not run `fail` as an error: it passes on the defaults.
    let (ok, out, err) = run_helm(&helm, &["lint", "--strict"], &json!({}));
    assert!(ok, "{out}{err}");
}

#[test]
fn cronjob_on_postgres_needs_no_volume_and_reads_the_password_from_a_file() {
    let Some(helm) = helm() else { return };
    let release = Release::render(&helm, &postgres_values("cronJob"));
    assert!(release.all("PersistentVolumeClaim").is_empty());
    assert!(release.mounted_at("/var/lib/rosterd").is_none());
    let config = release.config();
    assert_eq!(
        config["state"]["url"],
        "postgres://rosterd@postgres.db.svc:5432/rosterd?sslmode=require"
    );
    assert_eq!(
        config["state"]["password_file"],
        "/run/secrets/rosterd-postgres/password"
    );
    let (pw, read_only) = release.mounted_at("/run/secrets/rosterd-postgres").unwrap();
    assert!(read_only);
    assert_eq!(
        pw["secret"]["items"],
        json!([{ "key": "password", "path": "password" }])
    );
    let secret = release
        .named("Secret", "sync-rosterd-postgres")
        .expect("the chart's Secret for the password");
    assert_eq!(pw["secret"]["secretName"], secret["metadata"]["name"]);
    // The password is only in the Secret, base64-encoded.
    for cm in release.all("ConfigMap") {
        assert!(!serde_json::to_string(cm)
            .unwrap()
            .contains("pg-pass-never-in-a-configmap"));
    }
    let root = tempfile::tempdir().unwrap();
    release.mount(root.path());
    assert_eq!(
        std::fs::read_to_string(under(root.path(), "/run/secrets/rosterd-postgres/password"))
            .unwrap(),
        "pg-pass-never-in-a-configmap"
    );
}

// ---------------------------------------------------------------------------------
// Deployment mode
// ---------------------------------------------------------------------------------

#[test]
fn deployment_runs_two_daemons_on_postgres_with_metrics_and_no_service_monitor() {
    let Some(helm) = helm() else { return };
    let release = Release::render(&helm, &postgres_values("deployment"));
    assert_eq!(
        release.kinds(),
        [
            "ConfigMap",
            "Deployment",
            "PodDisruptionBudget",
            "Secret",
            "Service"
        ]
    );
    let d = release.one("Deployment");
    assert_eq!(d["spec"]["replicas"], 2);
    // A drain evicts one daemon at a time; the two go to different nodes where they can.
    let pdb = release.one("PodDisruptionBudget");
    assert_eq!(pdb["spec"]["maxUnavailable"], 1);
    assert_eq!(pdb["spec"]["selector"], d["spec"]["selector"]);
    let spread = &d["spec"]["template"]["spec"]["topologySpreadConstraints"][0];
    assert_eq!(spread["topologyKey"], "kubernetes.io/hostname");
    assert_eq!(spread["labelSelector"], d["spec"]["selector"]);
    assert_eq!(release.args(), ["daemon"]);
    assert!(release.all("PersistentVolumeClaim").is_empty());
    assert!(release.all("CronJob").is_empty());

    // The daemon listens where the port, the probes and the Service point.
    let config = release.config();
    assert_eq!(config["daemon"]["listen"], "0.0.0.0:9898");
    assert_eq!(config["schedule"], "*/30 * * * *");
    let c = release.container();
    assert_eq!(c["ports"][0]["containerPort"], 9898);
    assert_eq!(c["ports"][0]["name"], "metrics");
    assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(c["livenessProbe"]["httpGet"]["port"], "metrics");
    let svc = release.one("Service");
    assert_eq!(svc["spec"]["ports"][0]["targetPort"], "metrics");
    let pod_labels = &d["spec"]["template"]["metadata"]["labels"];
    for (k, v) in svc["spec"]["selector"].as_object().unwrap() {
        assert_eq!(&pod_labels[k], v, "the Service selects the pods by {k}");
    }
    assert_eq!(
        d["spec"]["selector"]["matchLabels"],
        svc["spec"]["selector"]
    );

    // The same hardening as the CronJob.
    let pod = release.pod();
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(c["securityContext"]["readOnlyRootFilesystem"], true);
    assert_eq!(c["securityContext"]["capabilities"]["drop"], json!(["ALL"]));
    assert!(release
        .mounted_at("/run/secrets/rosterd-postgres")
        .is_some());

    // The password file is named in the config, apart from the URL.
    assert_eq!(
        config["state"],
        json!({
            "url": "postgres://rosterd@postgres.db.svc:5432/rosterd?sslmode=require",
            "password_file": "/run/secrets/rosterd-postgres/password",
        })
    );
    loads_but_for_mounted_secret_files(&release, &|_| None);
}

#[test]
fn the_postgres_password_can_come_through_the_environment_into_the_url() {
    let Some(helm) = helm() else { return };
    let mut values = postgres_values("deployment");
    values["state"]["postgres"]["password"] =
        json!({ "existingSecret": "pg-app", "key": "pg-password", "as": "env" });
    let release = Release::render(&helm, &values);
    assert!(release
        .mounted_at("/run/secrets/rosterd-postgres")
        .is_none());
    let env = &release.container()["env"];
    assert_eq!(env[1]["name"], "ROSTERD_STATE_PASSWORD");
    assert_eq!(
        env[1]["valueFrom"]["secretKeyRef"],
        json!({ "name": "pg-app", "key": "pg-password" })
    );
    let config = release.config();
    assert_eq!(
        config["state"],
        "postgres://rosterd:${ROSTERD_STATE_PASSWORD}@postgres.db.svc:5432/rosterd?sslmode=require"
    );
    loads_but_for_mounted_secret_files(&release, &|name| {
        (name == "ROSTERD_STATE_PASSWORD").then(|| "from-the-secret".to_string())
    });
}

/// A child process killed when the test ends, passed or not.
struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn the_deployment_daemon_answers_its_probes_and_metrics_on_the_port_the_chart_opens() {
    let Some(helm) = helm() else { return };
    let fake = FakeHesh::start_blocking(FakeHeshOptions::default());
    let port = support::process::free_port();
    let mut values = cronjob_csv_values(&fake, 3);
    merge(
        &mut values,
        json!({
            "mode": "deployment",
            "metrics": { "port": port },
            "state": { "backend": "postgres", "postgres": { "url": "postgres://rosterd@postgres.db.svc:5432/rosterd" } },
        }),
    );
    let release = Release::render(&helm, &values);
    let c = release.container();
    assert_eq!(c["ports"][0]["containerPort"], port);
    let root = tempfile::tempdir().unwrap();
    let config_path = release.mount(root.path());
    // No PostgreSQL server here: the state is a file for this run, the rest as rendered.
    let mut config: Value =
        serde_saphyr::from_str(&std::fs::read_to_string(&config_path).unwrap()).unwrap();
    config["state"] = json!(root.path().join("rosterd.db").to_str().unwrap());
    std::fs::write(&config_path, serde_json::to_string(&config).unwrap()).unwrap();

    let daemon = Killed(
        Command::new(env!("CARGO_BIN_EXE_rosterd"))
            .args(release.args())
            .env("ROSTERD_CONFIG", &config_path)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    for probe in ["livenessProbe", "readinessProbe"] {
        let get = &c[probe]["httpGet"];
        assert_eq!(get["port"], c["ports"][0]["name"], "{probe}");
        let path = get["path"].as_str().unwrap();
        let (status, _) = support::process::wait_for(
            &format!("{probe} {path}"),
            std::time::Duration::from_secs(30),
            || support::process::http_get(port, path),
        );
        assert_eq!(status, 200, "{probe} {path} before any pass");
    }
    let (status, metrics) = support::process::http_get(port, "/metrics").unwrap();
    assert_eq!(status, 200);
    assert!(metrics.contains("rosterd_passes_total"), "{metrics}");
    drop(daemon);
}

#[test]
fn deployment_replicas_and_the_service_monitor_follow_the_values() {
    let Some(helm) = helm() else { return };
    let mut values = postgres_values("deployment");
    values["replicas"] = json!(3);
    values["metrics"] = json!({
        "port": 9100,
        "serviceMonitor": { "enabled": true, "labels": { "release": "kube-prometheus-stack" } },
    });
    let release = Release::render(&helm, &values);
    assert_eq!(release.one("Deployment")["spec"]["replicas"], 3);
    assert_eq!(release.config()["daemon"]["listen"], "0.0.0.0:9100");
    let svc = release.one("Service");
    assert_eq!(svc["spec"]["ports"][0]["port"], 9100);
    let sm = release.one("ServiceMonitor");
    assert_eq!(sm["apiVersion"], "monitoring.coreos.com/v1");
    assert_eq!(sm["metadata"]["labels"]["release"], "kube-prometheus-stack");
    assert_eq!(
        sm["spec"]["endpoints"][0]["port"],
        svc["spec"]["ports"][0]["name"]
    );
    assert_eq!(sm["spec"]["endpoints"][0]["path"], "/metrics");
    for (k, v) in sm["spec"]["selector"]["matchLabels"].as_object().unwrap() {
        assert_eq!(
            &svc["metadata"]["labels"][k], v,
            "selects the Service by {k}"
        );
    }

    // Without the Service, no scrape target: nothing of either.
    values["metrics"] = json!({ "service": { "enabled": false } });
    let release = Release::render(&helm, &values);
    assert!(release.all("Service").is_empty() && release.all("ServiceMonitor").is_empty());
}

// ---------------------------------------------------------------------------------
// Where things come from, and the sizing
// ---------------------------------------------------------------------------------

#[test]
fn existing_secrets_and_an_export_volume_are_mounted_not_made() {
    let Some(helm) = helm() else { return };
    let mut values = postgres_values("cronJob");
    values["state"]["postgres"]["password"] =
        json!({ "existingSecret": "pg-app", "key": "pg-password" });
    values["credentials"] = json!({ "existingSecret": "vendor-keys" });
    values["source"] = json!({
        "mountPath": "/data/exports",
        "volume": { "persistentVolumeClaim": { "claimName": "hr-exports", "readOnly": true } },
    });
    values["config"] = json!({
        "source": { "type": "csv", "path": "/data/exports/people.csv" },
        "providers": [{
            "name": "hesh", "type": "hesh", "base_url": "https://api.hesh.example.com",
            "api_key_file": "/run/secrets/rosterd/hesh-api-key",
            "tenant_id": "00000000-0000-4000-8000-000000000000",
        }],
    });
    let release = Release::render(&helm, &values);
    assert!(release.all("Secret").is_empty(), "{:?}", release.kinds());
    let (creds, _) = release.mounted_at("/run/secrets/rosterd").unwrap();
    assert_eq!(creds["secret"]["secretName"], "vendor-keys");
    let (pw, _) = release.mounted_at("/run/secrets/rosterd-postgres").unwrap();
    assert_eq!(pw["secret"]["secretName"], "pg-app");
    assert_eq!(
        pw["secret"]["items"],
        json!([{ "key": "pg-password", "path": "password" }])
    );
    let (export, read_only) = release.mounted_at("/data/exports").unwrap();
    assert!(read_only);
    assert_eq!(export["persistentVolumeClaim"]["claimName"], "hr-exports");

    // An export ConfigMap of the cluster's own, instead.
    values["source"] =
        json!({ "mountPath": "/data/exports", "existingConfigMap": "hr-export-today" });
    let release = Release::render(&helm, &values);
    let (export, _) = release.mounted_at("/data/exports").unwrap();
    assert_eq!(export["configMap"]["name"], "hr-export-today");
}

/// The peak RSS figure (MB) of the BENCHMARKS.md row starting with `row`.
fn benchmark_mb(row: &str) -> f64 {
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("BENCHMARKS.md"))
        .unwrap();
    let line = text
        .lines()
        .find(|l| l.starts_with(row))
        .unwrap_or_else(|| {
            panic!("BENCHMARKS.md has no row `{row}`: size the chart's resources anew")
        });
    let cell = line
        .split('|')
        .find(|c| c.trim().trim_matches('*').ends_with(" MB"))
        .unwrap_or_else(|| panic!("no MB figure in {line}"));
    cell.trim()
        .trim_matches('*')
        .trim_end_matches(" MB")
        .replace(',', "")
        .parse()
        .unwrap()
}

fn mebibytes_as_mb(quantity: &str) -> f64 {
    let mi: f64 = quantity.strip_suffix("Mi").unwrap().parse().unwrap();
    mi * 1024.0 * 1024.0 / 1e6
}

#[test]
fn memory_is_sized_from_the_benchmark_of_the_real_binary_at_a_million_users() {
    let Some(helm) = helm() else { return };
    for values in [http_values(), postgres_values("deployment")] {
        let release = Release::render(&helm, &values);
        let resources = &release.container()["resources"];
        let limit = mebibytes_as_mb(resources["limits"]["memory"].as_str().unwrap());
        let request = mebibytes_as_mb(resources["requests"]["memory"].as_str().unwrap());
        let first_run = benchmark_mb("| first-run `sync --dry-run --format json`");
        let daily = benchmark_mb("| no-change `sync`");
        assert!(
            limit > first_run * 1.2,
            "a first run at 1M users ({first_run} MB) needs room under the limit ({limit} MB)"
        );
        assert!(
            request >= daily,
            "the daily pass at 1M users ({daily} MB) fits the request ({request} MB)"
        );
        // No CPU limit: it would only stretch each pass.
        assert!(resources["limits"].get("cpu").is_none());
        assert!(resources["requests"]["cpu"].is_string());
    }
}

// ---------------------------------------------------------------------------------
// Refusals
// ---------------------------------------------------------------------------------

#[test]
fn unsafe_combinations_are_refused_with_the_value_to_change() {
    let Some(helm) = helm() else { return };
    let pg = |mode: &str, extra: Value| {
        let mut v = postgres_values(mode);
        merge(&mut v, extra);
        v
    };
    // Everything else from http_values; null removes a key, as in a values file.
    let base = |extra: Value| {
        let mut v = http_values();
        merge(&mut v, extra);
        v
    };
    let cases: Vec<(&str, Value, &str)> = vec![
        (
            "deployment on SQLite",
            base(json!({ "mode": "deployment" })),
            "mode: deployment needs state.backend: postgres",
        ),
        (
            "deployment on SQLite, even one replica",
            base(json!({ "mode": "deployment", "replicas": 1 })),
            "mode: deployment needs state.backend: postgres",
        ),
        (
            "cronJob with replicas",
            base(json!({ "replicas": 2 })),
            "replicas: a CronJob runs one Job per tick",
        ),
        (
            "cronJob on postgres with replicas",
            pg("cronJob", json!({ "replicas": 1 })),
            "replicas: a CronJob runs one Job per tick",
        ),
        (
            "a mode that does not exist",
            base(json!({ "mode": "statefulSet" })),
            "at '/mode': value must be one of 'cronJob', 'deployment'",
        ),
        (
            "a misspelt value key (values.schema.json)",
            base(json!({ "replica": 2 })),
            "additional properties 'replica' not allowed",
        ),
        (
            "a password delivered neither as a file nor by the environment",
            pg(
                "cronJob",
                json!({ "state": { "postgres": { "password": { "as": "argv" } } } }),
            ),
            "at '/state/postgres/password/as': value must be one of 'file', 'env'",
        ),
        (
            "a password in the URL",
            pg(
                "deployment",
                json!({ "state": { "postgres": { "url": "postgres://rosterd:hunter22@db/rosterd" } } }),
            ),
            "state.postgres.url: has a password in it",
        ),
        (
            "not a PostgreSQL URL",
            pg(
                "deployment",
                json!({ "state": { "postgres": { "url": "mysql://db/rosterd" } } }),
            ),
            "is not a postgres:// or postgresql:// URL",
        ),
        (
            "the password put after no user",
            pg(
                "cronJob",
                json!({ "state": { "postgres": {
                    "url": "postgres://db.svc/rosterd",
                    "password": { "as": "env" },
                } } }),
            ),
            "name the user (postgres://USER@host:5432/db)",
        ),
        (
            "no source",
            base(json!({ "config": { "source": null } })),
            "config.source: required",
        ),
        (
            "no providers",
            base(json!({ "config": { "providers": null } })),
            "config.providers: required",
        ),
        (
            "a ServiceMonitor for a CronJob",
            base(json!({ "metrics": { "serviceMonitor": { "enabled": true } } })),
            "a CronJob serves no /metrics",
        ),
        (
            "a ServiceMonitor without its Service",
            pg(
                "deployment",
                json!({ "metrics": { "service": { "enabled": false }, "serviceMonitor": { "enabled": true } } }),
            ),
            "needs metrics.service.enabled",
        ),
        (
            "the state in the config",
            base(json!({ "config": { "state": "/tmp/x.db" } })),
            "config.state: set by the chart",
        ),
        (
            "the listen address in the config",
            base(json!({ "config": { "daemon": { "listen": "127.0.0.1:1" } } })),
            "config.daemon.listen: set by the chart",
        ),
        (
            "secret files with no Secret mounted",
            base(json!({ "credentials": { "existingSecret": "" } })),
            "no credentials are mounted there",
        ),
        (
            "a CSV source with nothing mounted",
            base(
                json!({ "config": { "source": { "type": "csv", "path": "/srv/hr-export/u.csv" } } }),
            ),
            "reads a file: mount the export",
        ),
        (
            "a CSV path outside the export's mount",
            base(json!({
                "source": { "existingConfigMap": "hr" },
                "config": { "source": { "type": "csv", "path": "/etc/u.csv" } },
            })),
            "is not under source.mountPath",
        ),
        (
            "an export mounted for an HTTP source",
            base(json!({ "source": { "existingConfigMap": "hr" } })),
            "does not read a file",
        ),
        (
            "two places for the export",
            base(json!({
                "source": { "existingConfigMap": "hr", "volume": { "emptyDir": {} } },
                "config": { "source": { "type": "csv", "path": "/srv/hr-export/u.csv" } },
            })),
            "give one of existingConfigMap, files or volume",
        ),
    ];
    for (what, values, message) in cases {
        let (ok, stdout, stderr) = run_helm(&helm, &["template", "sync"], &values);
        assert!(!ok, "{what}: rendered\n{stdout}");
        assert!(stderr.contains(message), "{what}: {stderr}");
        assert!(!stderr.contains("hunter22"), "{what}: the password echoed");
    }
}

#[test]
fn a_secret_written_into_the_config_is_refused_before_it_reaches_a_configmap() {
    let Some(helm) = helm() else { return };
    // Every key rosterd holds as a secret, wherever in the config it is written.
    for key in rosterd::config::secret::SECRET_KEYS {
        let mut values = http_values();
        values["config"]["providers"][0][*key] = json!("sk-literal-in-values");
        let (ok, stdout, stderr) = run_helm(&helm, &["template", "sync"], &values);
        assert!(!ok, "{key}: rendered\n{stdout}");
        assert!(
            stderr.contains(&format!("config: has `{key}:`, a secret")),
            "{key}: {stderr}"
        );
        assert!(!stderr.contains("sk-literal-in-values"), "{key}: echoed");
    }
    let mut values = http_values();
    values["config"]["source"]["auth"] =
        json!({ "basic": { "username": "rosterd", "password": "pw-literal" } });
    let (ok, _, stderr) = run_helm(&helm, &["template", "sync"], &values);
    assert!(
        !ok && stderr.contains("config: has `password:`"),
        "{stderr}"
    );
}

#[test]
fn an_export_too_large_for_a_configmap_is_refused_and_sent_to_a_volume() {
    let Some(helm) = helm() else { return };
    let fake = FakeHesh::start_blocking(FakeHeshOptions::default());
    // 16,000 people: 1.04 MB of CSV, more than a ConfigMap holds.
    let values = cronjob_csv_values(&fake, 16_000);
    let (ok, _, stderr) = run_helm(&helm, &["template", "sync"], &values);
    assert!(!ok, "rendered");
    assert!(
        stderr.contains("more than a ConfigMap holds") && stderr.contains("source.volume"),
        "{stderr}"
    );
    assert!(!stderr.contains("user1@corp.example"), "the export echoed");
}

#[test]
fn the_chart_deploys_the_image_of_this_version() {
    let chart: Value =
        serde_saphyr::from_str(&std::fs::read_to_string(chart().join("Chart.yaml")).unwrap())
            .unwrap();
    assert_eq!(chart["appVersion"], env!("CARGO_PKG_VERSION"));
    assert_eq!(chart["apiVersion"], "v2");
}

/// `extra` merged into `base`, objects key by key.
fn merge(base: &mut Value, extra: Value) {
    match (base, extra) {
        (Value::Object(b), Value::Object(e)) => {
            for (k, v) in e {
                merge(b.entry(k).or_insert(Value::Null), v);
            }
        }
        (b, e) => *b = e,
    }
}
