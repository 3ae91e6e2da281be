//! The deployment files are parsed and the fields that matter checked: what runs, how
//! often, never twice at once, as whom, with which filesystem, and a config that
//! rosterd accepts.

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
