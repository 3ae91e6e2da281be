#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

use secrecy::ExposeSecret;

use super::super::{Config, ConfigError, Issue, SourceFormat};
use super::*;

const PROVIDER: &str = "providers:
  - name: hesh
    type: hesh
    base_url: https://api.hesh.example
    api_key: '${HESH_KEY}'
    tenant_id: 3f2b8c1e-6d4a-4e2b-9c1a-2b3c4d5e6f70
";

fn env(name: &str) -> Option<String> {
    match name {
        "HESH_KEY" => Some("hesh-secret".into()),
        "HR_TOKEN" => Some("hr-token-value".into()),
        "HR_PASS" => Some("hr-pass-value".into()),
        "BAD_TOKEN" => Some("line\nbreak".into()),
        _ => None,
    }
}

fn load(source: &str) -> Result<Config, ConfigError> {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("hr.key"), "key-from-file\n").unwrap();
    let yaml = format!("source:\n{source}{PROVIDER}");
    Config::from_yaml(&yaml, &dir.path().join("rosterd.yaml"), &env)
}

fn http(source: &str) -> HttpSourceConfig {
    match load(source).unwrap().source.format {
        SourceFormat::Http(h) => *h,
        other => panic!("expected an http source, got {other:?}"),
    }
}

fn issues(source: &str) -> Vec<Issue> {
    match load(source) {
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
fn a_minimal_http_source_needs_only_a_url_and_gets_defaults() {
    let h = http("  type: http\n  url: https://hr.example/api/users\n");
    assert_eq!(h.url.as_str(), "https://hr.example/api/users");
    assert_eq!(h.auth, HttpAuth::None);
    assert_eq!(h.records, "");
    assert_eq!(h.pagination, Pagination::None {});
    assert_eq!(
        (h.max_pages, h.timeout_seconds, h.max_attempts),
        (DEFAULT_MAX_PAGES, 30, 5)
    );
    assert_eq!(
        load("  type: http\n  url: https://hr.example/\n")
            .unwrap()
            .source
            .path,
        Path::new("")
    );
}

#[test]
fn every_key_is_read() {
    let h = http(
        "  type: http
  url: https://hr.example/api/users?active=true
  auth: { bearer_token: '${HR_TOKEN}' }
  records: /data/users
  pagination: { type: cursor, next: /meta/next_cursor, param: after }
  max_pages: 50
  timeout_seconds: 10
  max_attempts: 3
  fields: { external_id: id }
",
    );
    match &h.auth {
        HttpAuth::Bearer(t) => assert_eq!(t.expose_secret(), "hr-token-value"),
        other => panic!("{other:?}"),
    }
    assert_eq!(h.records, "/data/users");
    assert_eq!(
        h.pagination,
        Pagination::Cursor {
            next: "/meta/next_cursor".into(),
            param: "after".into()
        }
    );
    assert_eq!(
        (h.max_pages, h.timeout_seconds, h.max_attempts),
        (50, 10, 3)
    );
}

#[test]
fn each_pagination_style_parses_with_its_defaults() {
    let p = |yaml: &str| {
        http(&format!(
            "  type: http\n  url: https://hr.example/u\n  pagination: {yaml}\n"
        ))
        .pagination
    };
    assert_eq!(p("{ type: none }"), Pagination::None {});
    assert_eq!(p("{ type: link }"), Pagination::Link {});
    assert_eq!(
        p("{ type: page }"),
        Pagination::Page {
            param: "page".into(),
            start: 1,
            size_param: None,
            size: None
        }
    );
    assert_eq!(
        p("{ type: page, param: p, start: 0, size_param: per_page, size: 200 }"),
        Pagination::Page {
            param: "p".into(),
            start: 0,
            size_param: Some("per_page".into()),
            size: Some(200)
        }
    );
    assert_eq!(
        p("{ type: offset }"),
        Pagination::Offset {
            offset_param: "offset".into(),
            limit_param: "limit".into(),
            limit: 100
        }
    );
    assert_eq!(
        p("{ type: cursor, next: /next }"),
        Pagination::Cursor {
            next: "/next".into(),
            param: "cursor".into()
        }
    );
}

#[test]
fn basic_and_header_auth_read_their_secrets_from_env_or_file() {
    let h = http(
        "  type: http\n  url: https://hr.example/u\n  auth: { basic: { username: svc, password: '${HR_PASS}' } }\n",
    );
    match &h.auth {
        HttpAuth::Basic { username, password } => {
            assert_eq!(username, "svc");
            assert_eq!(password.expose_secret(), "hr-pass-value");
        }
        other => panic!("{other:?}"),
    }
    let h = http(
        "  type: http\n  url: https://hr.example/u\n  auth: { header: { name: X-Api-Key, value_file: hr.key } }\n",
    );
    match &h.auth {
        HttpAuth::Header { name, value } => {
            assert_eq!(name, "X-Api-Key");
            assert_eq!(value.expose_secret(), "key-from-file");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn literal_secrets_are_refused_everywhere_in_auth() {
    let found = issues(
        "  type: http\n  url: https://hr.example/u\n  auth: { header: { name: X-Api-Key, value: plain-key } }\n",
    );
    assert!(
        has(&found, "source.auth.header.value", "literal secret"),
        "{found:?}"
    );
    assert!(found.iter().all(|i| !i.message.contains("plain-key")));
    let found = issues(
        "  type: http\n  url: https://hr.example/u\n  auth: { bearer_token: plain-token }\n",
    );
    assert!(
        has(&found, "source.auth.bearer_token", "literal secret"),
        "{found:?}"
    );
    let found = issues(
        "  type: http\n  url: https://hr.example/u\n  auth: { basic: { username: u, password: plain } }\n",
    );
    assert!(
        has(&found, "source.auth.basic.password", "literal secret"),
        "{found:?}"
    );
}

#[test]
fn missing_or_unusable_secrets_are_named_by_key_path() {
    let found =
        issues("  type: http\n  url: https://hr.example/u\n  auth: { bearer_token: '${NOPE}' }\n");
    assert!(
        has(&found, "source.auth.bearer_token", "NOPE is not set"),
        "{found:?}"
    );
    let found =
        issues("  type: http\n  url: https://hr.example/u\n  auth: { basic: { username: u } }\n");
    assert!(
        has(&found, "source.auth.basic.password", "missing"),
        "{found:?}"
    );
    let found = issues(
        "  type: http\n  url: https://hr.example/u\n  auth: { header: { name: X-Key, value_file: nope.key } }\n",
    );
    assert!(
        has(&found, "source.auth.header.value_file", "cannot read"),
        "{found:?}"
    );
    let found = issues(
        "  type: http\n  url: https://hr.example/u\n  auth: { bearer_token: '${BAD_TOKEN}' }\n",
    );
    assert!(
        has(&found, "source.auth.bearer_token", "cannot carry"),
        "{found:?}"
    );
    assert!(found.iter().all(|i| !i.message.contains("break")));
}

#[test]
fn auth_takes_exactly_one_method_and_no_unknown_keys() {
    let found = issues(
        "  type: http\n  url: https://hr.example/u\n  auth: { bearer_token: '${HR_TOKEN}', header: { name: X, value: '${HR_PASS}' } }\n",
    );
    assert!(has(&found, "source.auth", "exactly one"), "{found:?}");
    let found = issues("  type: http\n  url: https://hr.example/u\n  auth: { oauth: {} }\n");
    assert!(has(&found, "source.auth.oauth", "unknown key"), "{found:?}");
    let found = issues(
        "  type: http\n  url: https://hr.example/u\n  auth: { header: { name: 'bad name', value: '${HR_PASS}', extra: 1 } }\n",
    );
    assert!(
        has(&found, "source.auth.header.extra", "unknown key"),
        "{found:?}"
    );
    assert!(
        has(
            &found,
            "source.auth.header.name",
            "not a valid HTTP header name"
        ),
        "{found:?}"
    );
}

#[test]
fn bad_urls_are_refused_without_echoing_credentials() {
    let found = issues("  type: http\n  url: not a url\n");
    assert!(has(&found, "source.url", "not a valid URL"), "{found:?}");
    let found = issues("  type: http\n  url: ftp://hr.example/users\n");
    assert!(has(&found, "source.url", "not an http(s) URL"), "{found:?}");
    let found = issues("  type: http\n  url: https://svc:hunter2@hr.example/users\n");
    assert!(
        has(&found, "source.url", "credentials in the URL"),
        "{found:?}"
    );
    assert!(found.iter().all(|i| !i.message.contains("hunter2")));
    let found = issues("  type: http\n");
    assert!(has(&found, "source.url", "missing"), "{found:?}");
}

#[test]
fn bad_pointers_are_refused() {
    let found = issues("  type: http\n  url: https://hr.example/u\n  records: data/users\n");
    assert!(has(&found, "source.records", "start with `/`"), "{found:?}");
    let found = issues("  type: http\n  url: https://hr.example/u\n  records: /a~2b\n");
    assert!(
        has(&found, "source.records", "`~` must be followed"),
        "{found:?}"
    );
    let found = issues(
        "  type: http\n  url: https://hr.example/u\n  pagination: { type: cursor, next: meta.next }\n",
    );
    assert!(
        has(&found, "source.pagination.next", "not a JSON pointer"),
        "{found:?}"
    );
    let found =
        issues("  type: http\n  url: https://hr.example/u\n  pagination: { type: cursor }\n");
    assert!(has(&found, "source.pagination", "next"), "{found:?}");
}

#[test]
fn pagination_and_limits_are_checked() {
    let found =
        issues("  type: http\n  url: https://hr.example/u\n  pagination: { type: pages }\n");
    assert!(
        has(&found, "source.pagination.type", "unknown variant"),
        "{found:?}"
    );
    let found = issues(
        "  type: http\n  url: https://hr.example/u\n  pagination: { type: link, next: x }\n",
    );
    assert!(
        has(&found, "source.pagination", "unknown field"),
        "{found:?}"
    );
    let found = issues(
        "  type: http\n  url: https://hr.example/u\n  pagination: { type: page, size_param: per_page }\n",
    );
    assert!(
        has(&found, "source.pagination.size", "missing"),
        "{found:?}"
    );
    let found = issues(
        "  type: http\n  url: https://hr.example/u\n  pagination: { type: offset, limit: 0 }\n",
    );
    assert!(
        has(&found, "source.pagination.limit", "out of range"),
        "{found:?}"
    );
    let found = issues(
        "  type: http\n  url: https://hr.example/u\n  max_pages: 0\n  timeout_seconds: 0\n  max_attempts: 21\n",
    );
    assert!(has(&found, "source.max_pages", "at least 1"), "{found:?}");
    assert!(
        has(&found, "source.timeout_seconds", "out of range"),
        "{found:?}"
    );
    assert!(
        has(&found, "source.max_attempts", "out of range"),
        "{found:?}"
    );
}

#[test]
fn file_keys_and_http_keys_stay_with_their_source_types() {
    let found = issues(
        "  type: http\n  url: https://hr.example/u\n  path: users.json\n  array_field: data\n",
    );
    assert!(
        has(&found, "source.path", "only for file sources"),
        "{found:?}"
    );
    assert!(
        has(&found, "source.array_field", "use `records:`"),
        "{found:?}"
    );
    let found =
        issues("  type: csv\n  path: users.csv\n  url: https://hr.example/u\n  max_pages: 3\n");
    assert!(
        has(&found, "source.url", "only for type: http"),
        "{found:?}"
    );
    assert!(
        has(&found, "source.max_pages", "only for type: http"),
        "{found:?}"
    );
    let found = issues("  type: json\n");
    assert!(has(&found, "source.path", "missing"), "{found:?}");
    let found = issues("  type: http\n  url: https://hr.example/u\n  colour: blue\n");
    assert!(has(&found, "source.colour", "unknown field"), "{found:?}");
}

#[test]
fn the_readme_examples_of_the_http_source_load() {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let section = readme
        .split("### HTTP source")
        .nth(1)
        .unwrap()
        .split("\n## ")
        .next()
        .unwrap()
        .split("\n### ")
        .next()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    for name in ["hr-password", "hr-token"] {
        std::fs::write(dir.path().join(name), "from-a-file\n").unwrap();
    }
    let env = |name: &str| match name {
        "HR_TOKEN" | "HR_API_KEY" => Some("from-env".to_string()),
        other => env(other),
    };
    let blocks: Vec<&str> = section
        .split("```yaml\n")
        .skip(1)
        .map(|b| b.split("```").next().unwrap())
        .collect();
    assert_eq!(blocks.len(), 5, "one example per paging style");
    let mut styles = Vec::new();
    for block in blocks {
        let yaml = format!(
            "{}{PROVIDER}",
            block.replace("/run/secrets", &dir.path().display().to_string())
        );
        let config = Config::from_yaml(&yaml, &dir.path().join("rosterd.yaml"), &env)
            .unwrap_or_else(|e| panic!("{e}\n{block}"));
        match config.source.format {
            SourceFormat::Http(h) => styles.push(std::mem::discriminant(&h.pagination)),
            other => panic!("{other:?}"),
        }
    }
    styles.dedup();
    assert_eq!(styles.len(), 5);
}
