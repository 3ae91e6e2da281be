//! The deployment files are parsed and the fields that matter checked: what runs, how
//! often, never twice at once, as whom, with which filesystem, and a config that
//! rosterd accepts; the image's default command never writes; the release profile is
//! stripped; completions and man pages come out of the binary without a config.
//! (The Prometheus rules and the Grafana dashboard: `tests/prometheus.rs`.)

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};

use serde_json::Value;

fn deploy(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("deploy")
        .join(path)
}

fn manifest(path: &str) -> Value {
    let text = std::fs::read_to_string(deploy(path)).unwrap();
    serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn check_pod(pod: &Value, what: &str) {
    let sc = &pod["securityContext"];
    assert_eq!(sc["runAsNonRoot"], true, "{what}");
    assert_eq!(sc["runAsUser"], 10001, "{what}");
    assert_eq!(pod["restartPolicy"], "Never", "{what}");
    let c = &pod["containers"][0];
    assert_eq!(
        c["securityContext"]["readOnlyRootFilesystem"], true,
        "{what}"
    );
    assert_eq!(
        c["securityContext"]["allowPrivilegeEscalation"], false,
        "{what}"
    );
    let mounts: Vec<&str> = c["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["mountPath"].as_str().unwrap())
        .collect();
    assert!(
        mounts.contains(&"/var/lib/rosterd"),
        "{what}: the state volume"
    );
    assert!(mounts.contains(&"/etc/rosterd"), "{what}: the config");
    let volumes = pod["volumes"].as_array().unwrap();
    assert!(
        volumes
            .iter()
            .any(|v| v["persistentVolumeClaim"]["claimName"] == "rosterd-state"),
        "{what}"
    );
    assert!(
        volumes
            .iter()
            .any(|v| v["secret"]["secretName"] == "rosterd-credentials"),
        "{what}"
    );
}

#[test]
fn cronjob_runs_one_sync_at_a_time_non_root_read_only() {
    let cj = manifest("kubernetes/cronjob.yaml");
    assert_eq!(cj["kind"], "CronJob");
    let spec = &cj["spec"];
    assert_eq!(spec["concurrencyPolicy"], "Forbid");
    assert!(spec["schedule"]
        .as_str()
        .unwrap()
        .parse::<croner::Cron>()
        .is_ok());
    assert!(
        spec["successfulJobsHistoryLimit"].as_u64().is_some()
            && spec["failedJobsHistoryLimit"].as_u64().is_some()
    );
    let job = &spec["jobTemplate"]["spec"];
    assert!(job["backoffLimit"].as_u64().is_some());
    assert!(job["activeDeadlineSeconds"].as_u64().unwrap() > 0);
    // A safety guard's exit code fails the Job at once instead of retrying.
    assert_eq!(
        job["podFailurePolicy"]["rules"][0]["onExitCodes"]["values"][0],
        3
    );
    let pod = &job["template"]["spec"];
    check_pod(pod, "cronjob");
    let args: Vec<&str> = pod["containers"][0]["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert_eq!(args[0], "sync");
    assert!(!args.contains(&"--dry-run"));
}

#[test]
fn dry_run_job_only_plans() {
    let job = manifest("kubernetes/dry-run-job.yaml");
    assert_eq!(job["kind"], "Job");
    let pod = &job["spec"]["template"]["spec"];
    check_pod(pod, "dry-run job");
    let args: Vec<&str> = pod["containers"][0]["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert_eq!(&args[..2], ["sync", "--dry-run"]);
}

#[test]
fn state_volume_is_read_write_once_and_secret_example_holds_no_real_key() {
    let pvc = manifest("kubernetes/pvc.yaml");
    assert_eq!(pvc["spec"]["accessModes"][0], "ReadWriteOnce");
    let secret = manifest("kubernetes/secret.example.yaml");
    assert_eq!(secret["stringData"]["hesh-api-key"], "REPLACE-ME");
}

#[test]
fn configmap_config_is_valid_but_for_the_secret_files_the_cluster_mounts() {
    let cm = manifest("kubernetes/configmap.yaml");
    let yaml = cm["data"]["rosterd.yaml"].as_str().unwrap();
    let path = Path::new("/etc/rosterd/rosterd.yaml");
    match rosterd::config::Config::from_yaml(yaml, path, &|_| None) {
        Ok(_) => {} // running where /run/secrets/rosterd exists
        Err(e) => {
            let issues = e.issues();
            assert!(!issues.is_empty());
            for i in issues {
                assert!(
                    i.path.ends_with("_file") && i.message.contains("/run/secrets/rosterd/"),
                    "unexpected problem: {i}"
                );
            }
        }
    }
}

#[test]
fn dockerfile_builds_in_one_stage_and_runs_rosterd_as_non_root_in_another() {
    let text = std::fs::read_to_string(deploy("Dockerfile")).unwrap();
    let froms = text.lines().filter(|l| l.starts_with("FROM ")).count();
    assert_eq!(froms, 2, "multi-stage");
    assert!(text.contains("cargo build --release --locked"));
    let user = text.lines().find(|l| l.starts_with("USER ")).unwrap();
    assert!(!user.contains("root") && !user.contains(" 0"), "{user}");
    assert!(text.contains(r#"ENTRYPOINT ["rosterd"]"#));
}

#[test]
fn dockerfile_default_command_never_writes() {
    let text = std::fs::read_to_string(deploy("Dockerfile")).unwrap();
    let cmds: Vec<&str> = text.lines().filter(|l| l.starts_with("CMD ")).collect();
    assert_eq!(cmds.len(), 1, "{cmds:?}");
    let args: Vec<String> = serde_json::from_str(&cmds[0]["CMD ".len()..]).unwrap();
    // Commands that write nothing: they read the config, the source or the state.
    let read_only = [
        vec!["check"],
        vec!["status"],
        vec!["--help"],
        vec!["sync", "--dry-run"],
    ];
    assert!(
        read_only
            .iter()
            .any(|r| args.iter().map(String::as_str).eq(r.iter().copied())),
        "a bare `docker run` would run {args:?}"
    );
    // And run as the image would, on a config with a state file to be: it answers,
    // and the folder holds the same files afterwards.
    let dir = crate::support::process::fixture_copy("dry_run");
    let files = |dir: &Path| {
        let mut names: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        names.sort();
        names
    };
    let before = files(dir.path());
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_rosterd"))
        .args(&args)
        .env("ROSTERD_CONFIG", dir.path().join("rosterd.yaml"))
        .env("ROSTERD_TEST_HESH_KEY", "hesh-test-key")
        .env("ROSTERD_TEST_VYTE_KEY", "vyte-test-key")
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(files(dir.path()), before, "rosterd {args:?} wrote a file");
}

#[test]
fn release_builds_are_stripped_without_full_lto() {
    let manifest: toml_like::Profile = toml_like::release_profile(
        &std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml")).unwrap(),
    );
    assert_eq!(manifest.strip.as_deref(), Some("true"));
    // Full ("fat") LTO multiplies the release build time on the 2-core machine.
    assert!(
        matches!(
            manifest.lto.as_deref(),
            None | Some("false") | Some("\"thin\"") | Some("\"off\"")
        ),
        "{:?}",
        manifest.lto
    );
}

/// Just enough of Cargo.toml: the `[profile.release]` keys, as written.
mod toml_like {
    #[derive(Debug, Default)]
    pub struct Profile {
        pub strip: Option<String>,
        pub lto: Option<String>,
    }

    pub fn release_profile(text: &str) -> Profile {
        let mut profile = Profile::default();
        let mut inside = false;
        for line in text.lines().map(str::trim) {
            if line.starts_with('[') {
                inside = line == "[profile.release]";
                continue;
            }
            let Some((key, value)) = line.split_once('=') else {
                continue;
            };
            let value = Some(value.trim().to_string());
            match key.trim() {
                "strip" if inside => profile.strip = value,
                "lto" if inside => profile.lto = value,
                _ => {}
            }
        }
        profile
    }
}

/// `completions` and `man` run without any config (a package build has none) and
/// name every command.
#[test]
fn completions_and_man_pages_need_no_config_and_name_every_command() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_rosterd"))
            .args(args)
            .current_dir(dir.path())
            .env("ROSTERD_CONFIG", dir.path().join("missing.yaml"))
            .output()
            .unwrap();
        (
            out.status.code().unwrap(),
            String::from_utf8(out.stdout).unwrap(),
            String::from_utf8(out.stderr).unwrap(),
        )
    };
    for shell in ["bash", "zsh", "fish"] {
        let (code, script, err) = run(&["completions", shell]);
        assert_eq!(code, 0, "{shell}: {err}");
        for command in ["sync", "check", "status", "daemon", "forget-provider"] {
            assert!(script.contains(command), "{shell}: {command} missing");
        }
    }
    let (code, page, err) = run(&["man"]);
    assert_eq!(code, 0, "{err}");
    assert!(page.contains(".TH rosterd 1"), "{page}");
    for command in ["sync", "check", "status", "daemon", "forget\\-provider"] {
        assert!(
            page.contains(&format!("rosterd\\-{command}(1)")),
            "{command}: {page}"
        );
    }
    let (code, page, _) = run(&["man", "status"]);
    assert_eq!(code, 0);
    assert!(page.contains("\\-\\-exit\\-code"), "{page}");
    let (code, _, err) = run(&["man", "nope"]);
    assert_eq!(code, 1);
    assert!(err.contains("no command \"nope\""), "{err}");
    assert!(!dir.path().join("rosterd.db").exists(), "nothing written");
}

#[test]
fn systemd_unit_runs_the_daemon_hardened_with_its_own_state_and_credentials() {
    let text = std::fs::read_to_string(deploy("systemd/rosterd.service")).unwrap();
    let keys: Vec<(&str, &str)> = text
        .lines()
        .filter(|l| !l.starts_with('#') && l.contains('='))
        .filter_map(|l| l.split_once('='))
        .collect();
    let has = |k: &str, v: &str| keys.iter().any(|(a, b)| *a == k && b.contains(v));
    assert!(has(
        "ExecStart",
        "rosterd --config /etc/rosterd/rosterd.yaml daemon"
    ));
    for (k, v) in [
        ("NoNewPrivileges", "yes"),
        ("ProtectSystem", "strict"),
        ("PrivateTmp", "yes"),
        ("DynamicUser", "yes"),
        ("StateDirectory", "rosterd"),
        ("Restart", "on-failure"),
        ("LoadCredential", "hesh-api-key"),
        ("ExecReload", "-HUP"),
    ] {
        assert!(has(k, v), "{k}={v} missing");
    }
}
