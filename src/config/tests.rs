#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use secrecy::ExposeSecret;

use super::*;

mod fuzz;

const GOOD: &str = r#"
state: state/rosterd.db
schedule: "*/15 * * * *"
log: { level: info, format: json }
source:
  type: csv
  path: users.csv
  fields: { external_id: employee_id, email: work_email, phone: mobile }
  status: { field: status, active_values: [Active, Leave], termination_date_field: end_date }
  provision_days_before_start: 7
safety: { max_disable_percent: 10, max_disable_count: 50, min_source_users: 3 }
providers:
  - name: hesh-prod
    type: hesh
    base_url: https://api.hesh.example
    api_key: ${HESH_KEY}
    tenant_id: 3f2b8c1e-6d4a-4e2b-9c1a-2b3c4d5e6f70
    batch_size: 50
    scope: { include: { department: [Sales] } }
    rate_limit: { max_concurrency: 2, requests_per_second: 5 }
  - name: chat
    type: saleschat
    base_url: https://api.saleschat.example
    token_file: chat.token
    org_id: org-42
    on_remove: delete
  - name: vyte
    type: vyte
    base_url: https://api.vyte.example
    api_key: ${VYTE_KEY}
  - name: zaia
    type: zaia
    base_url: https://api.zaia.example
    api_key: ${ZAIA_KEY}
    channel_id: 8d1c2b3a-4e5f-4a6b-8c7d-9e0f1a2b3c4d
"#;

fn env(name: &str) -> Option<String> {
    match name {
        "HESH_KEY" => Some("hesh-secret-value".into()),
        "VYTE_KEY" => Some("vyte-secret-value".into()),
        "ZAIA_KEY" => Some("zaia-secret-value".into()),
        _ => None,
    }
}

/// Loads `yaml` as if it were `<dir>/rosterd.yaml`, with a token file beside it.
fn load(yaml: &str) -> (tempfile::TempDir, Result<Config, ConfigError>) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("chat.token"), "chat-secret-value\n").unwrap();
    let path = dir.path().join("rosterd.yaml");
    let r = Config::from_yaml(yaml, &path, &env);
    (dir, r)
}

fn issues(yaml: &str) -> Vec<Issue> {
    match load(yaml).1 {
        Ok(_) => panic!("expected the config to be refused"),
        Err(e) => e.issues(),
    }
}

fn has(issues: &[Issue], path: &str, needle: &str) -> bool {
    issues
        .iter()
        .any(|i| i.path == path && i.message.contains(needle))
}

#[test]
fn good_config_loads_with_paths_resolved_and_secrets_read() {
    let (dir, r) = load(GOOD);
    let c = r.unwrap();
    assert_eq!(
        c.state.file(),
        Some(dir.path().join("state/rosterd.db").as_path())
    );
    assert_eq!(c.source.path, dir.path().join("users.csv"));
    assert_eq!(c.source.provision_days_before_start, 7);
    assert_eq!(c.providers.len(), 4);
    assert_eq!(c.providers[1].on_remove, OnRemove::Delete);
    assert_eq!(c.providers[0].rate_limit.max_concurrency, 2);
    assert_eq!(c.providers[0].rate_limit.requests_per_second, Some(5.0));
    assert_eq!(c.providers[1].rate_limit, RateLimitConfig::default());
    match &c.providers[0].settings {
        VendorSettings::Hesh(s) => {
            assert_eq!(s.batch_size, 50);
            assert_eq!(s.api_key.expose_secret(), "hesh-secret-value");
        }
        other => panic!("{other:?}"),
    }
    match &c.providers[1].settings {
        VendorSettings::Saleschat(s) => assert_eq!(s.token.expose_secret(), "chat-secret-value"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn debug_output_of_the_config_holds_no_secret() {
    let c = load(GOOD).1.unwrap();
    let dump = format!("{c:?}");
    for secret in [
        "hesh-secret-value",
        "chat-secret-value",
        "vyte-secret-value",
        "zaia-secret-value",
    ] {
        assert!(!dump.contains(secret), "{secret} leaked into Debug");
    }
}

#[test]
fn unknown_key_is_named_with_its_path() {
    let i = issues(&GOOD.replace("    batch_size: 50", "    batch_size: 50\n    bacth: 1"));
    assert!(
        has(&i, "providers[0].bacth", "unknown field `bacth`"),
        "{i:?}"
    );
    let i = issues(&GOOD.replace("safety:", "safty: {}\nsafety:"));
    assert!(
        i.iter()
            .any(|x| x.message.contains("unknown field `safty`")),
        "{i:?}"
    );
    let i = issues(&GOOD.replace(
        "provision_days_before_start: 7",
        "provision_days_before_start: 7\n  colour: red",
    ));
    assert!(has(&i, "source.colour", "unknown field `colour`"), "{i:?}");
}

#[test]
fn missing_env_var_is_named_with_its_path() {
    let i = issues(&GOOD.replace("${VYTE_KEY}", "${NOT_SET_ANYWHERE}"));
    assert!(
        has(&i, "providers[2].api_key", "NOT_SET_ANYWHERE is not set"),
        "{i:?}"
    );
}

#[test]
fn bad_url_is_refused() {
    let i = issues(&GOOD.replace("https://api.vyte.example", "not a url"));
    assert!(has(&i, "providers[2].base_url", "not a valid URL"), "{i:?}");
    let i = issues(&GOOD.replace("https://api.vyte.example", "ftp://files.example"));
    assert!(
        has(&i, "providers[2].base_url", "not an http(s) URL"),
        "{i:?}"
    );
}

#[test]
fn duplicate_provider_names_are_refused() {
    let i = issues(&GOOD.replace("name: vyte", "name: chat"));
    assert!(
        has(
            &i,
            "providers[2].name",
            "duplicate provider name \"chat\" (also providers[1])"
        ),
        "{i:?}"
    );
}

#[test]
fn tenant_id_must_be_a_uuid() {
    let i = issues(&GOOD.replace("3f2b8c1e-6d4a-4e2b-9c1a-2b3c4d5e6f70", "tenant-one"));
    assert!(has(&i, "providers[0].tenant_id", "not a UUID"), "{i:?}");
}

#[test]
fn literal_secret_is_refused_without_echoing_it() {
    let i = issues(&GOOD.replace("${HESH_KEY}", "sk_live_abcdef"));
    assert!(
        has(&i, "providers[0].api_key", "literal secret is refused"),
        "{i:?}"
    );
    assert!(!format!("{i:?}").contains("sk_live_abcdef"));
}

#[test]
fn missing_secret_and_secret_file_are_reported() {
    let i = issues(&GOOD.replace("    api_key: ${VYTE_KEY}\n", ""));
    assert!(has(&i, "providers[2].api_key", "missing"), "{i:?}");
    let i = issues(&GOOD.replace("chat.token", "nope.token"));
    assert!(
        has(&i, "providers[1].token_file", "cannot read secret file"),
        "{i:?}"
    );
}

#[test]
fn several_problems_are_reported_together() {
    let bad = GOOD
        .replace("3f2b8c1e-6d4a-4e2b-9c1a-2b3c4d5e6f70", "x")
        .replace("https://api.zaia.example", "http//zaia")
        .replace("*/15 * * * *", "every tuesday");
    let i = issues(&bad);
    assert!(has(&i, "providers[0].tenant_id", "not a UUID"), "{i:?}");
    assert!(has(&i, "providers[3].base_url", "not a valid URL"), "{i:?}");
    assert!(has(&i, "schedule", "not a valid cron expression"), "{i:?}");
}

#[test]
fn wrong_types_and_enums_name_the_key() {
    let i = issues(&GOOD.replace("type: vyte", "type: slack"));
    assert!(
        i.iter()
            .any(|x| x.path.starts_with("providers[2]") && x.message.contains("slack")),
        "{i:?}"
    );
    let i = issues(&GOOD.replace("batch_size: 50", "batch_size: lots"));
    assert!(has(&i, "providers[0].batch_size", "invalid type"), "{i:?}");
    let i = issues(&GOOD.replace("batch_size: 50", "batch_size: 0"));
    assert!(has(&i, "providers[0].batch_size", "out of range"), "{i:?}");
}

#[test]
fn rate_limit_values_are_checked() {
    let i = issues(&GOOD.replace("max_concurrency: 2", "max_concurrency: 0"));
    assert!(
        has(
            &i,
            "providers[0].rate_limit.max_concurrency",
            "out of range"
        ),
        "{i:?}"
    );
    let i = issues(&GOOD.replace("requests_per_second: 5", "requests_per_second: -1"));
    assert!(
        has(
            &i,
            "providers[0].rate_limit.requests_per_second",
            "not a positive rate"
        ),
        "{i:?}"
    );
    let i = issues(&GOOD.replace("requests_per_second: 5", "rps: 5"));
    assert!(
        has(&i, "providers[0].rate_limit.rps", "unknown field"),
        "{i:?}"
    );
}

#[test]
fn safety_percent_must_be_a_percentage() {
    let i = issues(&GOOD.replace("max_disable_percent: 10", "max_disable_percent: 150"));
    assert!(
        has(&i, "safety.max_disable_percent", "not a percentage"),
        "{i:?}"
    );
}

#[test]
fn pass_timeout_defaults_to_an_hour_and_must_be_in_range() {
    let (_dir, config) = load(GOOD);
    assert_eq!(config.unwrap().daemon.pass_timeout_seconds, 3600);
    let with = |v: &str| {
        GOOD.replace(
            "log:",
            &format!("daemon: {{ pass_timeout_seconds: {v} }}\nlog:"),
        )
    };
    let (_dir, config) = load(&with("90"));
    assert_eq!(config.unwrap().daemon.pass_timeout_seconds, 90);
    for bad in ["0", "604801"] {
        let i = issues(&with(bad));
        assert!(
            has(
                &i,
                "daemon.pass_timeout_seconds",
                "out of range (1 to 604800)"
            ),
            "{bad}: {i:?}"
        );
    }
}

#[test]
fn invalid_yaml_is_a_yaml_error() {
    let r = load("source: [unclosed\n").1;
    assert!(matches!(r, Err(ConfigError::Yaml { .. })), "{r:?}");
}

#[test]
fn missing_file_says_which() {
    let e = Config::load(Path::new("/nonexistent/rosterd.yaml")).unwrap_err();
    assert!(e.to_string().contains("/nonexistent/rosterd.yaml"), "{e}");
}

#[test]
fn select_providers_by_name() {
    let c = load(GOOD).1.unwrap();
    assert_eq!(c.select_providers(&[]).unwrap().len(), 4);
    let one = c.select_providers(&["vyte".to_string()]).unwrap();
    assert_eq!(one[0].name, "vyte");
    let err = c.select_providers(&["nope".to_string()]).unwrap_err();
    assert!(err.contains("known: hesh-prod, chat, vyte, zaia"), "{err}");
}

#[test]
fn on_remove_delete_is_refused_where_the_vendor_cannot_delete() {
    let yaml = GOOD.replacen(
        "    batch_size: 50\n",
        "    batch_size: 50\n    on_remove: delete\n",
        1,
    );
    let found = issues(&yaml);
    assert!(
        has(
            &found,
            "providers[0].on_remove",
            "hesh has no call to delete"
        ),
        "{found:?}"
    );
    // saleschat can (GOOD has `on_remove: delete` on it): no issue there.
    assert!(!found.iter().any(|i| i.path == "providers[1].on_remove"));
}

const SCIM: &str = r#"
source:
  type: scim
  url: https://idp.example/scim/v2
  bearer_token: ${IDP_TOKEN}
  filter: active eq true
  page_size: 50
  fields: { external_id: employeeNumber }
providers:
  - name: target
    type: scim
    base_url: https://app.example/scim/v2
    bearer_token_file: chat.token
    bulk: off
    patch: auto
    on_remove: delete
"#;

fn scim_env(name: &str) -> Option<String> {
    (name == "IDP_TOKEN").then(|| "idp-secret-value".to_string())
}

fn load_scim(yaml: &str) -> Result<Config, ConfigError> {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("chat.token"), "scim-secret-value\n").unwrap();
    Config::from_yaml(yaml, &dir.path().join("rosterd.yaml"), &scim_env)
}

#[test]
fn scim_source_and_provider_load_with_scim_defaults_for_fields_and_status() {
    let c = load_scim(SCIM).unwrap();
    let SourceFormat::Scim(s) = &c.source.format else {
        panic!("not a scim source: {:?}", c.source.format)
    };
    assert_eq!(s.url.as_str(), "https://idp.example/scim/v2");
    assert_eq!(s.filter.as_deref(), Some("active eq true"));
    assert_eq!(s.page_size, 50);
    assert_eq!(
        s.bearer_token.as_ref().unwrap().0.expose_secret(),
        "idp-secret-value"
    );
    assert_eq!(c.source.fields.external_id, "employeeNumber");
    assert_eq!(
        c.source.fields.first_name, "givenName",
        "the rest keep the SCIM defaults"
    );
    assert_eq!(c.source.status.field.as_deref(), Some("active"));
    let p = &c.providers[0];
    assert_eq!(p.kind(), ProviderType::Scim);
    let VendorSettings::Scim(ps) = &p.settings else {
        panic!("not scim settings")
    };
    assert_eq!(ps.bearer_token.expose_secret(), "scim-secret-value");
    assert_eq!(ps.bulk, crate::providers::scim::Mode::Off);
    let debug = format!("{c:?}");
    assert!(!debug.contains("idp-secret-value") && !debug.contains("scim-secret-value"));
}

#[test]
fn scim_source_keys_are_checked_with_their_paths() {
    let bad = SCIM
        .replace("url: https://idp.example/scim/v2", "path: users.csv")
        .replace("page_size: 50", "page_size: 0");
    let text = load_scim(&bad).unwrap_err().to_string();
    assert!(text.contains("source.url: missing"), "{text}");
    assert!(
        text.contains("source.path: only for file sources"),
        "{text}"
    );
    assert!(
        text.contains("source.page_size: 0 is out of range"),
        "{text}"
    );
    let literal = SCIM.replace("${IDP_TOKEN}", "hunter2");
    let text = load_scim(&literal).unwrap_err().to_string();
    assert!(
        text.contains("source.bearer_token: a literal secret is refused"),
        "{text}"
    );
    assert!(!text.contains("hunter2"));
    let userinfo = SCIM.replace("https://idp.example", "https://me:pw-in-url@idp.example");
    let text = load_scim(&userinfo).unwrap_err().to_string();
    assert!(
        text.contains("source.url: credentials in the URL are refused"),
        "{text}"
    );
    assert!(!text.contains("pw-in-url"));
    let csv_with_url = GOOD.replace(
        "path: users.csv",
        "path: users.csv\n  url: https://x.example",
    );
    let (_d, r) = load(&csv_with_url);
    assert!(r
        .unwrap_err()
        .to_string()
        .contains("source.url: only for type: http or scim"));
}

#[test]
fn a_secret_expanded_into_the_wrong_key_is_not_echoed_by_its_error() {
    // `${VAR}` works in any string: a key pasted into base_url must not come back.
    let yaml = GOOD.replacen(
        "base_url: https://api.zaia.example",
        "base_url: https://api.zaia.example ${ZAIA_KEY}",
        1,
    );
    let (_dir, result) = load(&yaml);
    let text = result.unwrap_err().to_string();
    assert!(text.contains("providers[3].base_url"), "{text}");
    assert!(!text.contains("zaia-secret-value"), "{text}");
    assert!(text.contains("${ZAIA_KEY}"), "{text}");
}

#[test]
fn network_source_limits_have_defaults_and_can_be_set() {
    let c = load_scim(SCIM).unwrap();
    let SourceFormat::Scim(s) = &c.source.format else {
        panic!("not a scim source")
    };
    assert_eq!(
        (s.max_pages, s.max_users, s.max_page_bytes),
        (1000, 1_000_000, 64 * 1024 * 1024)
    );
    let set = SCIM.replace(
        "page_size: 50",
        "page_size: 50\n  max_pages: 7\n  max_users: 70\n  max_page_bytes: 4096",
    );
    let c = load_scim(&set).unwrap();
    let SourceFormat::Scim(s) = &c.source.format else {
        panic!("not a scim source")
    };
    assert_eq!((s.max_pages, s.max_users, s.max_page_bytes), (7, 70, 4096));
    let zero = SCIM.replace("page_size: 50", "page_size: 50\n  max_page_bytes: 0");
    let text = load_scim(&zero).unwrap_err().to_string();
    assert!(
        text.contains("source.max_page_bytes: 0 is out of range"),
        "{text}"
    );
    let on_csv = GOOD.replace("path: users.csv", "path: users.csv\n  max_users: 5");
    let found = issues(&on_csv);
    assert!(
        found
            .iter()
            .any(|i| i.path == "source.max_users" && i.message.contains("only for type")),
        "{found:?}"
    );
}

#[test]
fn plain_http_urls_need_allow_insecure_http_with_the_key_path() {
    let plain = GOOD.replace("https://api.vyte.example", "http://api.vyte.example");
    let found = issues(&plain);
    assert!(
        found.iter().any(|i| i.path == "providers[2].base_url"
            && i.message.contains("allow_insecure_http")),
        "{found:?}"
    );
    let allowed = GOOD.replace(
        "base_url: https://api.vyte.example",
        "base_url: http://api.vyte.example\n    allow_insecure_http: true",
    );
    let (_dir, c) = load(&allowed);
    let c = c.unwrap();
    assert!(c.providers[2].base_url.is_insecure());
    let loopback = GOOD.replace("https://api.vyte.example", "http://127.0.0.2:8080");
    assert!(load(&loopback).1.is_ok());
    let scim_plain = SCIM.replace("https://idp.example", "http://idp.example");
    let text = load_scim(&scim_plain).unwrap_err().to_string();
    assert!(text.contains("source.url: plain http"), "{text}");
    let scim_allowed = SCIM.replace(
        "url: https://idp.example/scim/v2",
        "url: http://idp.example/scim/v2\n  allow_insecure_http: true",
    );
    let c = load_scim(&scim_allowed).unwrap();
    let SourceFormat::Scim(s) = &c.source.format else {
        panic!("not a scim source")
    };
    assert!(s.url.is_insecure());
}

#[test]
fn userinfo_in_a_base_url_is_refused_without_the_password() {
    let bad = GOOD.replace(
        "https://api.zaia.example",
        "https://me:hunter9@api.zaia.example",
    );
    let found = issues(&bad);
    assert!(
        found
            .iter()
            .any(|i| i.path == "providers[3].base_url"
                && i.message.contains("credentials in the URL")),
        "{found:?}"
    );
    assert!(!format!("{found:?}").contains("hunter9"));
}

#[cfg(unix)]
#[test]
fn only_a_regular_config_file_of_at_most_1_mib_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("fifo.yaml");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    let err = Config::load(&fifo).unwrap_err().to_string();
    assert!(err.contains("not a regular file"), "{err}");
    let err = Config::load(dir.path()).unwrap_err().to_string();
    assert!(err.contains("not a regular file"), "{err}");
    let big = dir.path().join("big.yaml");
    std::fs::write(&big, vec![b'#'; (MAX_CONFIG_BYTES + 1) as usize]).unwrap();
    let err = Config::load(&big).unwrap_err().to_string();
    assert!(err.contains("larger than the limit of 1 MiB"), "{err}");
}

/// The registry is the one list of vendors: every entry parses from its config name,
/// builds an adapter of its own type, and names the record field that holds the
/// email (the planner's `on_email_change` rests on it) — checked on a real mapping.
#[test]
fn every_registered_vendor_loads_builds_and_names_its_email_field() {
    let yaml = GOOD.replace(
        "providers:\n",
        "providers:\n  - name: scim\n    type: scim\n    base_url: https://app.example/scim/v2\n    bearer_token_file: chat.token\n",
    );
    let (_dir, config) = load(&yaml);
    let config = config.unwrap();
    let kinds: Vec<ProviderType> = config.providers.iter().map(|p| p.kind()).collect();
    for kind in crate::providers::ProviderType::ALL {
        assert!(kinds.contains(kind), "{kind} is not in the test config");
        let parsed: ProviderType =
            serde_json::from_value(serde_json::json!(kind.as_str())).unwrap();
        assert_eq!(parsed, *kind);
    }
    let user = crate::providers::scripted::user("E1001");
    for p in &config.providers {
        let adapter = crate::providers::build(p);
        assert_eq!(adapter.provider_type(), p.kind());
        let field = adapter.capabilities().email_field;
        let record = adapter.map_user(&user).unwrap();
        assert_eq!(
            record.get(field),
            Some("e1001@example.com"),
            "{}: `{field}` does not hold the email",
            p.kind()
        );
    }
}

#[test]
fn groups_on_a_provider_without_groups_is_refused_with_its_key_path() {
    let yaml = GOOD.replace(
        "  - name: hesh-prod\n",
        "  - name: hesh-prod\n    groups: \"{{ department }}\"\n    on_group_empty: delete\n",
    );
    let found = issues(&yaml);
    let at = |key: &str| {
        found
            .iter()
            .find(|i| i.path == key)
            .map(|i| i.message.clone())
    };
    let groups = at("providers[0].groups").expect("groups refused");
    assert!(groups.contains("SCIM providers only"), "{groups}");
    assert!(at("providers[0].on_group_empty").is_some(), "{found:?}");
}
