#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

use crate::config::{Config, ConfigError};

use super::*;

const HEAD: &str = "state: s.db\n\
source: { type: csv, path: users.csv, fields: { external_id: id, email: email } }\n\
providers:\n  - { name: v, type: vyte, base_url: https://api.vyte.example, api_key: \"${VYTE_KEY}\" }\n";

const HOOK_URL: &str = "https://hooks.slack.example/services/T000/B000/tok3n-unit-notify";

fn env(name: &str) -> Option<String> {
    match name {
        "VYTE_KEY" => Some("vyte-secret-value".into()),
        "HOOK" => Some(HOOK_URL.into()),
        "PLAIN" => Some("http://hooks.example/in/secret-path-unit".into()),
        "BAD" => Some("not a url at all, secret-bad-unit".into()),
        _ => None,
    }
}

fn load(notify: &str) -> (tempfile::TempDir, Result<Config, ConfigError>) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("users.csv"), "id,email\n").unwrap();
    std::fs::write(
        dir.path().join("hook.url"),
        "https://hooks.example/from-file-unit\n",
    )
    .unwrap();
    let yaml = format!("{HEAD}{notify}");
    let path = dir.path().join("rosterd.yaml");
    let r = Config::from_yaml(&yaml, Path::new(&path), &env);
    (dir, r)
}

fn issues(notify: &str) -> Vec<String> {
    match load(notify).1 {
        Ok(_) => panic!("expected errors for {notify}"),
        Err(e) => e.issues().iter().map(ToString::to_string).collect(),
    }
}

#[test]
fn defaults_are_json_failed_and_blocked_within_ten_seconds() {
    let (_d, c) = load("notify:\n  - url: ${HOOK}\n  - url_file: hook.url\n    format: slack\n    on: [manual, leaver_disabled]\n    timeout_seconds: 3\n");
    let c = c.unwrap();
    assert_eq!(c.notify.len(), 2);
    let a = &c.notify[0];
    assert_eq!(a.key, "notify[0]");
    assert_eq!(a.format, Format::Json);
    assert_eq!(a.on, DEFAULT_EVENTS.to_vec());
    assert_eq!(a.timeout, Duration::from_secs(10));
    assert_eq!(a.url.endpoint().as_str(), HOOK_URL);
    let b = &c.notify[1];
    assert_eq!(b.format, Format::Slack);
    assert_eq!(b.on, vec![Event::Manual, Event::LeaverDisabled]);
    assert_eq!(b.timeout, Duration::from_secs(3));
    assert_eq!(
        b.url.endpoint().as_str(),
        "https://hooks.example/from-file-unit"
    );
}

#[test]
fn the_url_is_a_secret_scrubbed_and_never_debug_printed() {
    let (_d, c) = load("notify:\n  - url: ${HOOK}\n");
    let c = c.unwrap();
    let debug = format!("{c:?}");
    assert!(!debug.contains("tok3n"), "{debug}");
    assert!(debug.contains("https://hooks.slack.example"), "{debug}");
    let said = crate::redact::scrub(&format!("posting to {HOOK_URL} failed")).into_owned();
    assert!(!said.contains("tok3n"), "{said}");
    // A receiver echoing only the path (or only the token) is scrubbed too.
    for echo in [
        "no hook at /services/T000/B000/tok3n-unit-notify",
        "bad tok3n-unit-notify",
    ] {
        let said = crate::redact::scrub(echo).into_owned();
        assert!(!said.contains("tok3n"), "{said}");
    }
    assert_eq!(crate::redact::scrub("services T000"), "services T000");
}

#[test]
fn a_literal_url_is_refused_without_repeating_it() {
    let found = issues("notify:\n  - url: https://hooks.example/literal-token-unit\n");
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].starts_with("notify[0].url: "), "{found:?}");
    assert!(found[0].contains("url_file"), "{found:?}");
    assert!(!found[0].contains("literal-token-unit"), "{found:?}");
}

#[test]
fn unknown_events_formats_and_keys_name_their_key_path() {
    let found = issues("notify:\n  - url: ${HOOK}\n    on: [failed, quarantine, nope]\n");
    assert_eq!(found.len(), 2, "{found:?}");
    assert!(
        found[0].starts_with(
            "notify[0].on[1]: \"quarantine\" is not an event (did you mean quarantined?)"
        ),
        "{found:?}"
    );
    assert!(found[1].starts_with("notify[0].on[2]: "), "{found:?}");
    assert!(found[1].contains("leaver_disabled"), "{found:?}");

    let found = issues("notify:\n  - url: ${HOOK}\n    format: teams\n");
    assert!(found[0].starts_with("notify[0].format: "), "{found:?}");
    let found = issues("notify:\n  - url: ${HOOK}\n    channel: x\n");
    assert!(found[0].contains("channel"), "{found:?}");
    let found = issues("notify:\n  - url: ${HOOK}\n    on: []\n");
    assert!(found[0].starts_with("notify[0].on: empty"), "{found:?}");
    let found = issues("notify:\n  - format: json\n");
    assert!(found[0].starts_with("notify[0].url: missing"), "{found:?}");
}

#[test]
fn the_timeout_is_bounded() {
    for t in [0, 61] {
        let found = issues(&format!(
            "notify:\n  - url: ${{HOOK}}\n    timeout_seconds: {t}\n"
        ));
        assert_eq!(
            found,
            vec![format!(
                "notify[0].timeout_seconds: {t} is out of range (1 to 60)"
            )]
        );
    }
}

#[test]
fn the_url_follows_the_outbound_policy_without_printing_it() {
    let found = issues("notify:\n  - url: ${PLAIN}\n");
    assert!(
        found[0].starts_with("notify[0].url: plain http"),
        "{found:?}"
    );
    assert!(!found[0].contains("secret-path-unit"), "{found:?}");
    let (_d, c) = load("notify:\n  - url: ${PLAIN}\n    allow_insecure_http: true\n");
    assert!(c.unwrap().notify[0].url.endpoint().is_insecure());
    let found = issues("notify:\n  - url: ${BAD}\n");
    assert!(found[0].contains("not a valid URL"), "{found:?}");
    assert!(!found[0].contains("secret-bad-unit"), "{found:?}");
}

#[test]
fn no_notify_section_means_no_webhooks() {
    let (_d, c) = load("");
    assert!(c.unwrap().notify.is_empty());
}
