//! The HTTP source (`source.type: http`) end to end: the binary reads a fake HR API
//! on 127.0.0.1 in every paging style, with each kind of auth, and survives or fails
//! as it must — retries on 5xx, dropped connections and timeouts; a failing page,
//! bad JSON or too many pages fail the whole pass (exit 1) and disable no one.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::support;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use rosterd::store::{AccountState, Store};
use support::fake_hesh::{FakeHesh, FakeHeshOptions, HeshStatus, DISABLE_PATH};
use support::fake_hr::{base64, hr_user, Auth, FakeHr, FakeHrOptions, Fault, Paging};
use support::fake_server::FakeVendor;

const HR_TOKEN: &str = "hr-token-must-never-print";
const HR_PASSWORD: &str = "hr-password-must-never-print";
const HESH_KEY: &str = "hesh-key-must-never-print";
const TODAY: &str = "2026-11-24";

const FIELDS: &str = "  fields: { external_id: id, email: work.email, first_name: first, last_name: last, phone: phone }\n  status: { field: status, active_values: [active] }\n";

/// A folder with a config whose source is the fake HR API.
struct Ws {
    dir: tempfile::TempDir,
}

impl Ws {
    /// `source` is the lines under `source:` after `type`, `url` and the field map
    /// (each indented two spaces); the provider is hesh at `hesh_url`.
    fn new(url: &str, source: &str, hesh_url: &str, tenant: &str) -> Ws {
        let dir = tempfile::tempdir().unwrap();
        let yaml = format!(
            "state: state.db\n\
             source:\n  type: http\n  url: {url}\n{FIELDS}{source}\
             safety: {{ max_disable_percent: 100, min_source_users: 1 }}\n\
             providers:\n  - name: hesh\n    type: hesh\n    base_url: {hesh_url}\n    api_key: ${{ROSTERD_TEST_HESH_KEY}}\n    tenant_id: {tenant}\n    rate_limit: {{ max_attempts: 2 }}\n"
        );
        std::fs::write(dir.path().join("rosterd.yaml"), yaml).unwrap();
        Ws { dir }
    }

    /// For runs that never reach a vendor (check, dry run).
    fn offline(hr: &FakeHr, source: &str) -> Ws {
        Ws::new(
            &hr.url(),
            source,
            "http://127.0.0.1:9",
            "40dd0c53-2fa7-4193-82ae-14d4e62c20fb",
        )
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Runs rosterd: (exit code, stdout, stderr). No secret may appear in either.
    fn run(&self, args: &[&str]) -> (i32, String, String) {
        let out = Command::new(env!("CARGO_BIN_EXE_rosterd"))
            .arg("-c")
            .arg(self.path().join("rosterd.yaml"))
            .args(args)
            .env("ROSTERD_TEST_HR_TOKEN", HR_TOKEN)
            .env("ROSTERD_TEST_HR_PASSWORD", HR_PASSWORD)
            .env("ROSTERD_TEST_HESH_KEY", HESH_KEY)
            .env("RUST_LOG", "debug")
            .output()
            .unwrap();
        let stdout = String::from_utf8(out.stdout).unwrap();
        let stderr = String::from_utf8(out.stderr).unwrap();
        for secret in [
            HR_TOKEN,
            HR_PASSWORD,
            HESH_KEY,
            &base64(&format!("svc:{HR_PASSWORD}")),
        ] {
            assert!(
                !stdout.contains(secret) && !stderr.contains(secret),
                "a secret leaked:\n{stdout}\n{stderr}"
            );
        }
        (out.status.code().unwrap_or(-1), stdout, stderr)
    }

    /// `sync --dry-run --format json`: (exit code, plan, stderr).
    fn dry_run(&self) -> (i32, Value, String) {
        let (code, stdout, stderr) =
            self.run(&["sync", "--dry-run", "--format", "json", "--today", TODAY]);
        let doc = serde_json::from_str(&stdout).unwrap_or(Value::Null);
        (code, doc, stderr)
    }

    fn check_json(&self) -> (i32, Value, String) {
        let (code, stdout, stderr) = self.run(&["check", "--format", "json"]);
        let doc = serde_json::from_str(&stdout).unwrap_or(Value::Null);
        (code, doc, stderr)
    }
}

fn users(n: usize) -> Vec<Value> {
    (0..n).map(hr_user).collect()
}

fn ids(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("E{i:05}")).collect()
}

/// The external ids the plan creates at hesh, sorted.
fn planned_creates(plan: &Value) -> Vec<String> {
    let hesh = plan["providers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "hesh")
        .unwrap();
    let mut out: Vec<String> = hesh["operations"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["op"] == "create")
        .map(|o| o["external_id"].as_str().unwrap().to_string())
        .collect();
    out.sort();
    out
}

fn hr(paging: Paging, page_size: usize, auth: Auth) -> FakeHr {
    FakeHr::start(FakeHrOptions {
        paging,
        page_size,
        auth,
        ignore_paging: false,
    })
}

// ---------------------------------------------------------------------------------
// Paging styles, through `sync --dry-run`
// ---------------------------------------------------------------------------------

#[test]
fn no_pagination_reads_a_top_level_array_in_one_request() {
    let fake = hr(Paging::None, 10, Auth::None);
    fake.set_users(users(7));
    let ws = Ws::offline(&fake, "  pagination: { type: none }\n");
    let (code, plan, stderr) = ws.dry_run();
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(plan["source"]["users"], 7);
    assert_eq!(planned_creates(&plan), ids(7));
    assert_eq!(fake.targets(), ["/users"]);
}

#[test]
fn page_numbers_are_followed_until_an_empty_page() {
    let fake = hr(Paging::Page, 10, Auth::None);
    fake.set_users(users(23));
    let ws = Ws::offline(
        &fake,
        "  records: /data/users\n  pagination: { type: page, param: page, start: 1, size_param: per_page, size: 10 }\n",
    );
    let (code, plan, stderr) = ws.dry_run();
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(planned_creates(&plan), ids(23));
    assert_eq!(
        fake.targets(),
        [
            "/users?page=1&per_page=10",
            "/users?page=2&per_page=10",
            "/users?page=3&per_page=10",
            "/users?page=4&per_page=10",
        ]
    );
}

#[test]
fn offsets_follow_what_the_server_sent_when_it_caps_the_page() {
    // rosterd asks for 50 a page; the server gives at most 8.
    let fake = hr(Paging::Offset, 8, Auth::None);
    fake.set_users(users(20));
    let ws = Ws::offline(
        &fake,
        "  records: /data/users\n  pagination: { type: offset, limit: 50 }\n",
    );
    let (code, plan, stderr) = ws.dry_run();
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(planned_creates(&plan), ids(20), "nobody lost to the cap");
    assert_eq!(
        fake.targets(),
        [
            "/users?offset=0&limit=50",
            "/users?offset=8&limit=50",
            "/users?offset=16&limit=50",
            "/users?offset=20&limit=50",
        ]
    );
}

#[test]
fn cursors_are_sent_back_until_the_body_has_none() {
    let fake = hr(Paging::Cursor, 5, Auth::None);
    fake.set_users(users(12));
    let ws = Ws::offline(
        &fake,
        "  records: /data/users\n  pagination: { type: cursor, next: /meta/next_cursor, param: cursor }\n",
    );
    let (code, plan, stderr) = ws.dry_run();
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(planned_creates(&plan), ids(12));
    assert_eq!(
        fake.targets(),
        ["/users", "/users?cursor=after-5", "/users?cursor=after-10"]
    );
}

#[test]
fn link_headers_are_followed_with_relative_urls_resolved() {
    let fake = hr(Paging::Link, 4, Auth::None);
    fake.set_users(users(10));
    let ws = Ws::new(
        &format!("{}?page=1", fake.url()),
        "  records: /data/users\n  pagination: { type: link }\n",
        "http://127.0.0.1:9",
        "40dd0c53-2fa7-4193-82ae-14d4e62c20fb",
    );
    let (code, plan, stderr) = ws.dry_run();
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(planned_creates(&plan), ids(10));
    assert_eq!(
        fake.targets(),
        ["/users?page=1", "/users?page=2", "/users?page=3"]
    );
}

// ---------------------------------------------------------------------------------
// Auth
// ---------------------------------------------------------------------------------

#[test]
fn a_bearer_token_arrives_in_the_authorization_header() {
    let fake = hr(Paging::Page, 10, Auth::Bearer(HR_TOKEN.into()));
    fake.set_users(users(3));
    let ws = Ws::offline(
        &fake,
        "  records: /data/users\n  pagination: { type: page }\n  auth: { bearer_token: '${ROSTERD_TEST_HR_TOKEN}' }\n",
    );
    let (code, doc, stderr) = ws.check_json();
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(doc["source"]["users"], 3);
    let seen = fake.seen();
    assert_eq!(seen.len(), 2);
    for s in &seen {
        assert_eq!(
            s.header("authorization"),
            Some(format!("Bearer {HR_TOKEN}").as_str())
        );
    }
}

#[test]
fn basic_auth_sends_username_and_password_from_a_file() {
    let fake = hr(
        Paging::Page,
        10,
        Auth::Basic("svc".into(), HR_PASSWORD.into()),
    );
    fake.set_users(users(3));
    let ws = Ws::offline(
        &fake,
        "  records: /data/users\n  pagination: { type: page }\n  auth: { basic: { username: svc, password_file: hr.pass } }\n",
    );
    std::fs::write(ws.path().join("hr.pass"), format!("{HR_PASSWORD}\n")).unwrap();
    let (code, doc, stderr) = ws.check_json();
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(doc["source"]["users"], 3);
    let expected = format!("Basic {}", base64(&format!("svc:{HR_PASSWORD}")));
    assert!(fake
        .seen()
        .iter()
        .all(|s| s.header("authorization") == Some(expected.as_str())));
}

#[test]
fn a_named_header_carries_the_api_key() {
    let fake = hr(
        Paging::Page,
        10,
        Auth::Header("X-Api-Key".into(), HR_TOKEN.into()),
    );
    fake.set_users(users(3));
    let ws = Ws::offline(
        &fake,
        "  records: /data/users\n  pagination: { type: page }\n  auth: { header: { name: X-Api-Key, value: '${ROSTERD_TEST_HR_TOKEN}' } }\n",
    );
    let (code, doc, stderr) = ws.check_json();
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(doc["source"]["users"], 3);
    assert!(fake
        .seen()
        .iter()
        .all(|s| s.header("x-api-key") == Some(HR_TOKEN) && s.header("authorization").is_none()));
}

#[test]
fn a_wrong_token_is_a_clear_error_that_never_shows_the_token() {
    // The fake expects another token and echoes back the one it got.
    let fake = hr(Paging::Page, 10, Auth::Bearer("the-right-token".into()));
    fake.set_users(users(3));
    let ws = Ws::offline(
        &fake,
        "  records: /data/users\n  pagination: { type: page }\n  auth: { bearer_token: '${ROSTERD_TEST_HR_TOKEN}' }\n",
    );
    let (code, _, stderr) = ws.dry_run();
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("page 1"), "{stderr}");
    assert!(stderr.contains("answered 401"), "{stderr}");
    assert!(
        stderr.contains("invalid credentials: Bearer ***"),
        "{stderr}"
    );
    assert!(stderr.contains("check source.auth"), "{stderr}");
    // A 401 is not retried.
    assert_eq!(fake.seen().len(), 1);
}

// ---------------------------------------------------------------------------------
// Failures: retried, or the whole pass fails
// ---------------------------------------------------------------------------------

#[test]
fn a_5xx_page_is_retried_and_the_load_completes() {
    let fake = hr(Paging::Page, 5, Auth::None);
    fake.set_users(users(12));
    fake.fault(1, Fault::Status(503), 2);
    let ws = Ws::offline(
        &fake,
        "  records: /data/users\n  pagination: { type: page }\n  max_attempts: 3\n",
    );
    let (code, plan, stderr) = ws.dry_run();
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(planned_creates(&plan), ids(12));
    let page2 = fake.seen().iter().filter(|s| s.page == 1).count();
    assert_eq!(page2, 3, "two 503s, then the answer");
}

#[test]
fn a_429_waits_and_resends_without_spending_attempts() {
    let fake = hr(Paging::Page, 5, Auth::None);
    fake.set_users(users(7));
    fake.fault(0, Fault::Status(429), 2);
    // One attempt only: a 429 is throttling, not a failed attempt (as for vendors).
    let ws = Ws::offline(
        &fake,
        "  records: /data/users\n  pagination: { type: page }\n  max_attempts: 1\n",
    );
    let (code, plan, stderr) = ws.dry_run();
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(planned_creates(&plan), ids(7));
    assert_eq!(fake.seen().iter().filter(|s| s.page == 0).count(), 3);
}

#[test]
fn a_dropped_connection_and_a_timeout_are_retried() {
    let fake = hr(Paging::Page, 5, Auth::None);
    fake.set_users(users(12));
    fake.fault(0, Fault::Drop, 1);
    fake.fault(2, Fault::Delay(Duration::from_secs(4)), 1);
    let ws = Ws::offline(
        &fake,
        "  records: /data/users\n  pagination: { type: page }\n  max_attempts: 3\n  timeout_seconds: 2\n",
    );
    let (code, plan, stderr) = ws.dry_run();
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(planned_creates(&plan), ids(12));
    // Each faulted page was asked for again (a busy machine may add a retry, so "at
    // least": the point is that the faults did not fail the load).
    let per_page = |p: usize| fake.seen().iter().filter(|s| s.page == p).count();
    assert!(per_page(0) >= 2 && per_page(2) >= 2, "{:?}", fake.targets());
    assert!(
        stderr.contains("timed out"),
        "the timeout was seen: {stderr}"
    );
}

#[test]
fn retries_that_run_out_fail_the_load_naming_the_page() {
    let fake = hr(Paging::Page, 5, Auth::None);
    fake.set_users(users(12));
    fake.fault(1, Fault::Status(502), usize::MAX);
    let ws = Ws::offline(
        &fake,
        "  records: /data/users\n  pagination: { type: page }\n  max_attempts: 2\n",
    );
    let (code, plan, stderr) = ws.dry_run();
    assert_eq!(code, 1, "{stderr}");
    assert_eq!(plan, Value::Null, "no plan is printed");
    assert!(stderr.contains("page 2 (http://127.0.0.1:"), "{stderr}");
    assert!(stderr.contains("/users?page=2)"), "{stderr}");
    assert!(
        stderr.contains("gave up after 2 attempts: HTTP 502"),
        "{stderr}"
    );
}

#[test]
fn a_failing_page_fails_the_whole_sync_and_disables_nobody() {
    let hesh = FakeHesh::start_blocking(FakeHeshOptions {
        api_key: HESH_KEY.into(),
        ..FakeHeshOptions::default()
    });
    let fake = hr(Paging::Page, 5, Auth::Bearer(HR_TOKEN.into()));
    fake.set_users(users(12));
    let ws = Ws::new(
        &fake.url(),
        "  records: /data/users\n  pagination: { type: page }\n  max_attempts: 2\n  auth: { bearer_token: '${ROSTERD_TEST_HR_TOKEN}' }\n",
        &hesh.base_url(),
        hesh.tenant_id(),
    );
    // A first pass creates everyone: the snapshot now has 12 active users.
    let (code, _, stderr) = ws.run(&["sync", "--format", "json"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(hesh.users().len(), 12);

    // Page 2 (users 5..9) now fails for good: were it skipped, those five would be
    // "gone from the source" and disabled.
    fake.fault(1, Fault::Status(500), usize::MAX);
    hesh.clear_requests();
    let (code, stdout, stderr) = ws.run(&["sync", "--format", "json"]);
    assert_eq!(code, 1, "{stdout}\n{stderr}");
    assert!(stderr.contains("page 2"), "{stderr}");
    assert_eq!(hesh.requests().len(), 0, "nothing was sent to hesh");
    assert_eq!(hesh.count("PATCH", DISABLE_PATH), 0);
    assert!(hesh.users().iter().all(|u| u.status == HeshStatus::Active));

    let rt = tokio::runtime::Runtime::new().unwrap();
    let states = rt.block_on(async {
        let store = Store::open_read_only(&ws.path().join("state.db"))
            .await
            .unwrap()
            .unwrap();
        let rows = store.snapshot("hesh").await.unwrap();
        store.close().await;
        rows
    });
    assert_eq!(states.len(), 12);
    assert!(states.iter().all(|r| r.state == AccountState::Active));
}

#[test]
fn bad_json_fails_the_load_naming_the_page_and_position() {
    let fake = hr(Paging::Page, 5, Auth::None);
    fake.set_users(users(12));
    fake.fault(1, Fault::BadJson, 1);
    let ws = Ws::offline(
        &fake,
        "  records: /data/users\n  pagination: { type: page }\n",
    );
    let (code, _, stderr) = ws.dry_run();
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("page 2 (http://127.0.0.1:")
            && stderr.contains("is not valid JSON at line 1, column"),
        "{stderr}"
    );
    // Malformed JSON is not retried: the same body would come back.
    assert_eq!(fake.seen().iter().filter(|s| s.page == 1).count(), 1);
}

#[test]
fn a_records_pointer_that_misses_says_what_is_there() {
    let fake = hr(Paging::Page, 5, Auth::None);
    fake.set_users(users(3));
    let ws = Ws::offline(
        &fake,
        "  records: /data/people\n  pagination: { type: page }\n",
    );
    let (code, _, stderr) = ws.dry_run();
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("page 1"), "{stderr}");
    assert!(
        stderr.contains("nothing at `/data/people` (source.records)"),
        "{stderr}"
    );
    let ws = Ws::offline(&fake, "  pagination: { type: page }\n");
    let (code, _, stderr) = ws.dry_run();
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("the body is an object, not an array of users"),
        "{stderr}"
    );
}

#[test]
fn more_pages_than_max_pages_is_an_error_not_a_partial_list() {
    let fake = FakeHr::start(FakeHrOptions {
        paging: Paging::Page,
        page_size: 5,
        auth: Auth::None,
        ignore_paging: true,
    });
    fake.set_users(users(5));
    let ws = Ws::offline(
        &fake,
        "  records: /data/users\n  pagination: { type: page }\n  max_pages: 3\n",
    );
    let (code, _, stderr) = ws.dry_run();
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("more than source.max_pages (3) pages"),
        "{stderr}"
    );
    assert_eq!(fake.seen().len(), 3);
}

#[test]
fn rejected_records_are_located_by_page_and_index() {
    let fake = hr(Paging::Page, 4, Auth::None);
    let mut list = users(6);
    list[5]["work"]["email"] = Value::from("not-an-email");
    fake.set_users(list);
    let ws = Ws::offline(
        &fake,
        "  records: /data/users\n  pagination: { type: page }\n",
    );
    let (code, doc, stderr) = ws.check_json();
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(doc["source"]["records"], 6);
    assert_eq!(doc["source"]["users"], 5);
    let rejected = &doc["source"]["rejected"][0];
    assert_eq!(rejected["location"], "page 2 record 1");
    assert_eq!(rejected["external_id"], "E00005");
    assert!(rejected["reason"]
        .as_str()
        .unwrap()
        .contains("invalid email"));
}

#[test]
fn check_describes_the_http_source_and_counts_its_users() {
    let fake = hr(Paging::Page, 10, Auth::Bearer(HR_TOKEN.into()));
    fake.set_users(users(4));
    let ws = Ws::offline(
        &fake,
        "  records: /data/users\n  pagination: { type: page }\n  auth: { bearer_token: '${ROSTERD_TEST_HR_TOKEN}' }\n",
    );
    let (code, stdout, stderr) = ws.run(&["check"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains(&format!(
            "source HTTP source {} (users at `/data/users`, page-number pagination): 4 record(s), 4 valid user(s), 0 rejected",
            fake.url()
        )),
        "{stdout}"
    );
}

#[test]
fn a_config_error_in_the_http_source_names_the_key() {
    let fake = hr(Paging::Page, 10, Auth::None);
    let ws = Ws::offline(
        &fake,
        "  records: data/users\n  pagination: { type: page }\n  auth: { bearer_token: '${ROSTERD_TEST_NOT_SET}' }\n",
    );
    let (code, _, stderr) = ws.run(&["check"]);
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains(
            "source.auth.bearer_token: environment variable ROSTERD_TEST_NOT_SET is not set"
        ),
        "{stderr}"
    );
    assert!(fake.seen().is_empty());
}

#[test]
fn a_redirect_to_another_origin_is_not_followed_with_the_credentials() {
    // The HR API on one port redirects to a server on another port (another origin).
    let elsewhere = hr(Paging::None, 10, Auth::None);
    elsewhere.set_users(users(3));
    let target = elsewhere.url();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let app = axum::Router::new().route(
                "/users",
                axum::routing::get(
                    move || async move { axum::response::Redirect::temporary(&target) },
                ),
            );
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            tokio::select! {
                _ = std::future::IntoFuture::into_future(axum::serve(listener, app)) => {}
                _ = stop_rx => {}
            }
        });
    });

    let ws = Ws::new(
        &format!("http://127.0.0.1:{port}/users"),
        "  pagination: { type: none }\n  auth: { header: { name: X-Api-Key, value: '${ROSTERD_TEST_HR_TOKEN}' } }\n",
        "http://127.0.0.1:9",
        "40dd0c53-2fa7-4193-82ae-14d4e62c20fb",
    );
    let (code, _, stderr) = ws.dry_run();
    let _ = stop_tx.send(());
    server.join().unwrap();
    assert_eq!(code, 1, "{stderr}");
    // Refused by the outbound policy, which names both origins.
    assert!(
        stderr.contains(&format!(
            "redirect from http://127.0.0.1:{port} to another origin"
        )),
        "{stderr}"
    );
    assert!(elsewhere.seen().is_empty(), "the key never left its origin");
}

/// A record that gives a key twice (`"email": real, "email": attacker`) is rejected
/// naming both values, as in a JSON file — the page is parsed as written, not into a
/// map that keeps the last; a `users` key given twice on the way to the array fails
/// the load.
#[test]
fn a_repeated_key_in_a_page_rejects_the_record_and_a_repeated_array_fails_the_load() {
    let fake = hr(Paging::None, 10, Auth::None);
    fake.set_users(users(1));
    fake.fault(
        0,
        Fault::Body(
            r#"{"data": {"users": [
                {"id": "E00001", "work": {"email": "ada@corp.example"}, "work.email": "attacker@evil.example", "first": "Ada", "last": "L", "status": "active"},
                {"id": "E00002", "work": {"email": "bob@corp.example"}, "first": "Bob", "last": "M", "status": "active"}
            ]}}"#
                .into(),
        ),
        5,
    );
    let ws = Ws::offline(&fake, "  records: /data/users\n");
    let (code, doc, stderr) = ws.check_json();
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(doc["source"]["users"], 1, "{doc}");
    let rejected = &doc["source"]["rejected"][0];
    assert_eq!(rejected["location"], "page 1 record 0");
    assert_eq!(rejected["external_id"], "E00001");
    let reason = rejected["reason"].as_str().unwrap();
    assert!(
        reason.contains("`work.email` is given more than once")
            && reason.contains("ada@corp.example")
            && reason.contains("attacker@evil.example"),
        "{reason}"
    );

    fake.fault(
        0,
        Fault::Body(r#"{"data": {"users": []}, "data": {"users": []}}"#.into()),
        5,
    );
    let (code, _, stderr) = ws.check_json();
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("`data`") && stderr.contains("more than once"),
        "{stderr}"
    );
}
