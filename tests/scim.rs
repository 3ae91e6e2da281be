//! `rosterd sync` against a real, independent SCIM 2.0 server (`scim2-server` from
//! PyPI, see `support/scim_server.rs`): the provider's first sync, adoption, updates,
//! disable / enable, deletes, /Bulk on and off (and its maxOperations), PUT when the
//! service has no PATCH, a rerun that sends nothing — and the SCIM source, with one
//! server as the source and another as the target.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::support;

use std::process::Command;

use serde_json::{json, Value};
use support::scim_server::{
    service_provider_config, service_provider_config_with_filter, user_body, ScimServer, ENTERPRISE,
};
use support::workspace::{provider, Person};

const TARGET_TOKEN_ENV: &str = "ROSTERD_TEST_SCIM_TOKEN";
const SOURCE_TOKEN_ENV: &str = "ROSTERD_TEST_SCIM_SOURCE_TOKEN";

/// A folder with a config: a CSV source (or `source_yaml`) and one SCIM provider
/// named `scim` at `target`.
struct Ws {
    dir: tempfile::TempDir,
    target_token: String,
    source_token: Option<String>,
}

const CSV_SOURCE: &str = "source:\n  type: csv\n  path: users.csv\n  fields: { external_id: id, email: email, first_name: first, last_name: last, phone: phone }\n  status: { field: status, active_values: [active] }\n";

impl Ws {
    fn new(target: &ScimServer, extra: &str) -> Ws {
        Self::with_source(target, CSV_SOURCE, None, extra)
    }

    fn with_source(
        target: &ScimServer,
        source_yaml: &str,
        source: Option<&ScimServer>,
        extra: &str,
    ) -> Ws {
        let dir = tempfile::tempdir().unwrap();
        let yaml = format!(
            "state: state.db\n{source_yaml}\
             safety: {{ max_disable_percent: 100, min_source_users: 1 }}\n\
             providers:\n  - name: scim\n    type: scim\n    base_url: {}\n    bearer_token: ${{{TARGET_TOKEN_ENV}}}\n{extra}",
            target.base_url()
        );
        std::fs::write(dir.path().join("rosterd.yaml"), yaml).unwrap();
        Ws {
            dir,
            target_token: target.token().to_string(),
            source_token: source.map(|s| s.token().to_string()),
        }
    }

    fn write_people(&self, people: &[Person]) {
        let mut csv = String::from("id,email,first,last,phone,status\n");
        for p in people {
            csv.push_str(&format!(
                "{},{},{},{},{},{}\n",
                p.id, p.email, p.first, p.last, p.phone, p.status
            ));
        }
        std::fs::write(self.dir.path().join("users.csv"), csv).unwrap();
    }

    /// Runs rosterd: (exit code, stdout, stderr); no token may appear in either.
    fn run(&self, args: &[&str]) -> (i32, String, String) {
        let mut c = Command::new(env!("CARGO_BIN_EXE_rosterd"));
        c.arg("-c")
            .arg(self.dir.path().join("rosterd.yaml"))
            .args(args)
            .env(TARGET_TOKEN_ENV, &self.target_token)
            .env("RUST_LOG", "debug");
        if let Some(t) = &self.source_token {
            c.env(SOURCE_TOKEN_ENV, t);
        }
        let out = c.output().unwrap();
        let stdout = String::from_utf8(out.stdout).unwrap();
        let stderr = String::from_utf8(out.stderr).unwrap();
        for secret in std::iter::once(&self.target_token).chain(self.source_token.iter()) {
            assert!(
                !stdout.contains(secret.as_str()) && !stderr.contains(secret.as_str()),
                "a bearer token leaked"
            );
        }
        (out.status.code().unwrap_or(-1), stdout, stderr)
    }

    /// `sync --format json`: (exit code, the scim provider's report).
    fn sync(&self) -> (i32, Value) {
        let (code, stdout, stderr) = self.run(&["sync", "--format", "json"]);
        let doc: Value =
            serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}\n{stderr}"));
        assert!(
            provider(&doc, "scim")["result"]["failed"]
                .as_u64()
                .unwrap_or(0)
                == 0
                || code != 0,
            "failures must show in the exit code"
        );
        (code, provider(&doc, "scim").clone())
    }
}

fn people(n: usize) -> Vec<Person> {
    (1..=n).map(Person::new).collect()
}

fn ops(report: &Value) -> Vec<String> {
    report["operations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["op"].as_str().unwrap().to_string())
        .collect()
}

fn requests(report: &Value) -> u64 {
    report["result"]["requests"].as_u64().unwrap_or(0)
}

/// The server holds exactly these people (and `others` more), once each, with their
/// attributes; each one's `active` is `true` unless its status says otherwise.
fn assert_holds(server: &ScimServer, people: &[Person], others: usize) {
    let users = server.users();
    assert_eq!(users.len(), people.len() + others, "{users:#?}");
    for p in people {
        let held: Vec<&Value> = users
            .iter()
            .filter(|u| u["externalId"].as_str() == Some(p.id.as_str()))
            .collect();
        assert_eq!(held.len(), 1, "{} held {} times", p.id, held.len());
        let u = held[0];
        assert_eq!(u["userName"], p.email.as_str());
        assert_eq!(u["name"]["givenName"], p.first.as_str());
        assert_eq!(u["name"]["familyName"], p.last.as_str());
        assert_eq!(u["emails"][0]["value"], p.email.as_str());
        assert_eq!(u["emails"][0]["primary"], true);
        if p.phone.is_empty() {
            assert!(u.get("phoneNumbers").is_none(), "{u}");
        } else {
            assert_eq!(u["phoneNumbers"][0]["value"], p.phone.as_str());
        }
        assert_eq!(u["active"], p.status == "active", "{}", p.id);
    }
}

#[test]
fn first_sync_creates_every_user_and_a_rerun_sends_nothing() {
    let server = ScimServer::start();
    let ws = Ws::new(&server, "    bulk: off\n");
    let people = people(3);
    ws.write_people(&people);

    // The preview names the requests, with SCIM's content type and no token.
    let (code, stdout, _) = ws.run(&["sync", "--dry-run", "--show-requests", "--format", "json"]);
    assert_eq!(code, 0);
    let doc: Value = serde_json::from_str(&stdout).unwrap();
    let preview = &provider(&doc, "scim")["requests"];
    assert_eq!(preview["headers"]["authorization"], "Bearer <redacted>");
    let sent = preview["requests"].as_array().unwrap();
    assert_eq!(sent[0]["path"], "/ServiceProviderConfig");
    // The preview shows a service that cannot filter: its users listed once first.
    assert_eq!(sent[1]["method"], "GET");
    assert_eq!(sent[1]["path"], "/Users?startIndex=1&count=100");
    assert_eq!(sent[2]["method"], "POST");
    assert_eq!(sent[2]["path"], "/Users");
    assert!(sent[2]["headers"]
        .to_string()
        .contains("application/scim+json"));
    assert!(server.users().is_empty(), "a dry run sends nothing");

    let (code, report) = ws.sync();
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["result"]["applied"]["create"], 3);
    assert_holds(&server, &people, 0);
    // One ServiceProviderConfig read, then per user two lookups and a POST.
    assert_eq!(requests(&report), 1 + 3 * 3);

    let (code, report) = ws.sync();
    assert_eq!(code, 0);
    assert!(ops(&report).is_empty(), "{report}");
    assert_eq!(
        requests(&report),
        0,
        "a rerun sends nothing, not even discovery"
    );
    assert_holds(&server, &people, 0);
}

#[test]
fn users_already_on_the_server_are_adopted_by_user_name_or_external_id() {
    let server = ScimServer::start();
    let people = people(3);
    // Same userName, other names, inactive: adopted, brought up to date, activated.
    server.create_user(user_body(&people[0].email, None, "Old", "Name", false));
    // Same externalId under an older userName: adopted, renamed.
    server.create_user(user_body(
        "renamed@corp.example",
        Some(&people[1].id),
        "X",
        "Y",
        true,
    ));
    // Someone rosterd does not know: never touched.
    let stranger = server.create_user(user_body("stranger@corp.example", None, "S", "T", true));
    let ws = Ws::new(&server, "");
    ws.write_people(&people);

    let (code, report) = ws.sync();
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["result"]["applied"]["create"], 3);
    assert_holds(&server, &people, 1);
    let after = server.user("stranger@corp.example").unwrap();
    assert_eq!(
        after["meta"]["version"], stranger["meta"]["version"],
        "untouched"
    );
    assert!(server.user("renamed@corp.example").is_none());

    // Everyone is in the snapshot now: leaving the source disables only them.
    ws.write_people(&people[..1]);
    let (code, report) = ws.sync();
    assert_eq!(code, 0, "{report}");
    assert_eq!(ops(&report), ["disable", "disable"]);
    assert_eq!(
        server.user("stranger@corp.example").unwrap()["active"],
        true
    );
}

#[test]
fn changes_are_patched_and_leavers_are_deactivated_then_reactivated() {
    let server = ScimServer::start();
    let ws = Ws::new(&server, "    bulk: off\n");
    let mut people = people(3);
    ws.write_people(&people);
    assert_eq!(ws.sync().0, 0);

    people[0].first = "Renamed".into();
    people[0].phone = String::new();
    people[1].email = "new-address@corp.example".into();
    people[2].status = "inactive".into();
    ws.write_people(&people);
    let (code, report) = ws.sync();
    assert_eq!(code, 0, "{report}");
    let mut kinds = ops(&report);
    kinds.sort();
    assert_eq!(kinds, ["disable", "update", "update"]);
    assert_holds(&server, &people, 0);

    people[2].status = "active".into();
    people[2].last = "Back".into();
    ws.write_people(&people);
    let (code, report) = ws.sync();
    assert_eq!(code, 0, "{report}");
    assert_eq!(ops(&report), ["enable"]);
    assert_holds(&server, &people, 0);
    assert!(ops(&ws.sync().1).is_empty());
}

#[test]
fn leavers_are_deleted_when_on_remove_is_delete() {
    let server = ScimServer::start();
    let ws = Ws::new(&server, "    on_remove: delete\n");
    let people = people(4);
    ws.write_people(&people);
    assert_eq!(ws.sync().0, 0);
    assert_holds(&server, &people, 0);

    ws.write_people(&people[..2]);
    let (code, report) = ws.sync();
    assert_eq!(code, 0, "{report}");
    assert_eq!(ops(&report), ["delete", "delete"]);
    assert_holds(&server, &people[..2], 0);
    assert!(
        ops(&ws.sync().1).is_empty(),
        "deleted users are gone from the snapshot too"
    );
}

#[test]
fn bulk_carries_a_large_batch_in_few_requests_and_off_sends_them_one_by_one() {
    let people = people(30);
    let with_bulk = ScimServer::start();
    let ws = Ws::new(&with_bulk, "");
    ws.write_people(&people);
    let (code, bulk) = ws.sync();
    assert_eq!(code, 0, "{bulk}");
    assert_holds(&with_bulk, &people, 0);
    // Discovery, 2 lookups of 20 and 10 users, one /Bulk.
    assert_eq!(requests(&bulk), 1 + 2 + 1);

    let without = ScimServer::start();
    let ws_off = Ws::new(&without, "    bulk: off\n");
    ws_off.write_people(&people);
    let (code, single) = ws_off.sync();
    assert_eq!(code, 0, "{single}");
    assert_holds(&without, &people, 0);
    assert_eq!(requests(&single), 1 + 30 * 3);

    // Changes and leavers go through /Bulk too.
    let mut changed = people.clone();
    for p in changed.iter_mut().take(10) {
        p.last = format!("{}-x", p.last);
    }
    for p in changed.iter_mut().skip(25) {
        p.status = "inactive".into();
    }
    ws.write_people(&changed);
    let (code, report) = ws.sync();
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["result"]["applied"]["update"], 10);
    assert_eq!(report["result"]["applied"]["disable"], 5);
    // ETags are announced: one lookup per 20 users for their versions, one /Bulk.
    assert_eq!(requests(&report), 1 + 1 + 1);
    assert_holds(&with_bulk, &changed, 0);
}

#[test]
fn bulk_requests_respect_the_max_operations_the_service_announces() {
    let server = ScimServer::start_with(Some(service_provider_config(
        true,
        Some((7, 1_048_576)),
        false,
    )));
    let ws = Ws::new(&server, "");
    let people = people(30);
    ws.write_people(&people);
    let (code, report) = ws.sync();
    assert_eq!(code, 0, "{report}");
    assert_holds(&server, &people, 0);
    // Discovery, 2 lookups, ceil(30 / 7) = 5 /Bulk requests.
    assert_eq!(requests(&report), 1 + 2 + 5);
}

#[test]
fn bulk_requests_respect_the_max_payload_size_the_service_announces() {
    // A create is about 400 bytes: 2 KB carries a few per request.
    let server = ScimServer::start_with(Some(service_provider_config(
        true,
        Some((1000, 2048)),
        false,
    )));
    let ws = Ws::new(&server, "");
    let people = people(12);
    ws.write_people(&people);
    let (code, report) = ws.sync();
    assert_eq!(code, 0, "{report}");
    assert_holds(&server, &people, 0);
    let bulk_requests = requests(&report) - 1 - 1;
    // More than one request (1000 operations would fit), fewer than one per user.
    assert!(
        (3..12).contains(&bulk_requests),
        "{bulk_requests} /Bulk requests"
    );
}

#[test]
fn without_patch_support_changes_are_put_and_keep_attributes_rosterd_does_not_manage() {
    // This server answers PATCH and /Bulk with 501: every change must be a PUT.
    let server = ScimServer::start_with(Some(service_provider_config(false, None, false)));
    let mut people = people(2);
    let mut seeded = user_body(&people[0].email, None, "Old", "Name", true);
    seeded["title"] = json!("Engineer");
    seeded[ENTERPRISE] = json!({"department": "R&D"});
    seeded["schemas"] = json!(["urn:ietf:params:scim:schemas:core:2.0:User", ENTERPRISE]);
    server.create_user(seeded);
    let ws = Ws::new(&server, "");
    ws.write_people(&people);
    let (code, report) = ws.sync();
    assert_eq!(code, 0, "{report}");
    assert_holds(&server, &people, 0);

    people[0].status = "inactive".into();
    people[1].first = "Changed".into();
    ws.write_people(&people);
    let (code, report) = ws.sync();
    assert_eq!(code, 0, "{report}");
    assert_holds(&server, &people, 0);
    let kept = server.user(&people[0].email).unwrap();
    assert_eq!(kept["title"], "Engineer");
    assert_eq!(kept[ENTERPRISE]["department"], "R&D");
}

fn scim_source_yaml(source: &ScimServer, extra: &str) -> String {
    format!(
        "source:\n  type: scim\n  url: {}\n  bearer_token: ${{{SOURCE_TOKEN_ENV}}}\n  page_size: 2\n{extra}",
        source.base_url()
    )
}

fn seed_source(source: &ScimServer) {
    for i in 1..=5 {
        let mut u = user_body(
            &format!("person{i}@corp.example"),
            Some(&format!("E{i}")),
            &format!("First{i}"),
            &format!("Last{i}"),
            i != 4,
        );
        u["phoneNumbers"] =
            json!([{"value": format!("+1555000{i}"), "type": "work", "primary": true}]);
        u["schemas"] = json!(["urn:ietf:params:scim:schemas:core:2.0:User", ENTERPRISE]);
        u[ENTERPRISE] = json!({
            "department": if i % 2 == 0 { "Sales" } else { "R&D" },
            "employeeNumber": format!("{i}"),
        });
        source.create_user(u);
    }
}

#[test]
fn scim_to_scim_sync_copies_active_users_from_one_server_to_another() {
    let source = ScimServer::start();
    let target = ScimServer::start();
    seed_source(&source);
    // Five users read two per page; E4 is inactive at the source, so not created.
    let ws = Ws::with_source(&target, &scim_source_yaml(&source, ""), Some(&source), "");
    let (code, report) = ws.sync();
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["result"]["applied"]["create"], 4);
    let users = target.users();
    assert_eq!(users.len(), 4, "{users:#?}");
    for i in [1, 2, 3, 5] {
        let u = target.user(&format!("person{i}@corp.example")).unwrap();
        assert_eq!(u["externalId"], format!("E{i}"));
        assert_eq!(u["name"]["givenName"], format!("First{i}"));
        assert_eq!(u["name"]["familyName"], format!("Last{i}"));
        assert_eq!(u["phoneNumbers"][0]["value"], format!("+1555000{i}"));
        assert_eq!(u["active"], true);
    }

    // Deactivated at the source: deactivated at the target.
    let id = source.user("person2@corp.example").unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let patch = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "value": {"active": false}}]});
    assert_eq!(
        source
            .request("PATCH", &format!("/Users/{id}"), Some(&patch))
            .0,
        204
    );
    let (code, report) = ws.sync();
    assert_eq!(code, 0, "{report}");
    assert_eq!(ops(&report), ["disable"]);
    assert_eq!(
        target.user("person2@corp.example").unwrap()["active"],
        false
    );
    assert!(ops(&ws.sync().1).is_empty());
}

#[test]
fn a_scim_source_filter_and_enterprise_attributes_scope_the_users() {
    let source = ScimServer::start();
    let target = ScimServer::start();
    seed_source(&source);
    let yaml = scim_source_yaml(&source, "  filter: active eq true\n");
    let ws = Ws::with_source(
        &target,
        &yaml,
        Some(&source),
        "    scope: { include: { department: [Sales] } }\n",
    );
    let (code, report) = ws.sync();
    assert_eq!(code, 0, "{report}");
    let names: Vec<String> = target
        .users()
        .iter()
        .map(|u| u["userName"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, ["person2@corp.example"], "Sales and active: only E2");
}

#[test]
fn a_scim_source_that_refuses_rosterd_fails_the_pass_and_changes_nothing() {
    let source = ScimServer::start();
    let target = ScimServer::start();
    seed_source(&source);
    let ws = Ws::with_source(&target, &scim_source_yaml(&source, ""), Some(&source), "");
    assert_eq!(ws.sync().0, 0);
    let before = target.users();
    assert_eq!(before.len(), 4);

    // The token is now wrong: the source cannot be read; nobody is disabled.
    let broken = Ws {
        dir: ws.dir,
        target_token: ws.target_token.clone(),
        source_token: Some("not-the-token".into()),
    };
    let (code, _stdout, stderr) = broken.run(&["sync", "--format", "json"]);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("answered HTTP 401"), "{stderr}");
    assert!(
        stderr.contains("Authorization failure"),
        "the SCIM detail is shown: {stderr}"
    );
    assert_eq!(
        target.users(),
        before,
        "a broken source never disables anyone"
    );
}

/// A SCIM source that pages correctly until told to break: then its second page
/// answers 500 (`Broken::Error`) or comes back empty (`Broken::Truncated`).
/// scim2-server cannot be made to fail part way, hence this small in-process fake.
mod paging_fake {
    use std::collections::HashMap;
    use std::sync::atomic::{AtomicU8, Ordering};
    use std::sync::Arc;

    use axum::extract::{Query, State};
    use axum::http::StatusCode;
    use axum::response::IntoResponse;
    use axum::Router;
    use serde_json::json;
    use tokio::sync::oneshot;

    pub const HEALTHY: u8 = 0;
    pub const ERROR: u8 = 1;
    pub const TRUNCATED: u8 = 2;

    pub struct Fake {
        pub mode: Arc<AtomicU8>,
        pub port: u16,
        stop: Option<oneshot::Sender<()>>,
        thread: Option<std::thread::JoinHandle<()>>,
    }

    fn user(i: usize) -> serde_json::Value {
        json!({
            "id": format!("s{i}"), "userName": format!("paged{i}@corp.example"),
            "externalId": format!("P{i}"), "active": true,
            "name": {"givenName": format!("G{i}"), "familyName": format!("F{i}")},
            "emails": [{"value": format!("paged{i}@corp.example"), "primary": true}]
        })
    }

    async fn users(
        State(mode): State<Arc<AtomicU8>>,
        Query(q): Query<HashMap<String, String>>,
    ) -> impl IntoResponse {
        let start: usize = q
            .get("startIndex")
            .and_then(|s| s.parse().ok())
            .unwrap_or(1);
        let mode = mode.load(Ordering::SeqCst);
        if start > 1 && mode == ERROR {
            let body = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"],
                "status": "500", "detail": "directory backend unavailable"});
            return (StatusCode::INTERNAL_SERVER_ERROR, body.to_string());
        }
        let page: Vec<_> = if start > 1 && mode == TRUNCATED {
            Vec::new()
        } else {
            (start..=4).take(2).map(user).collect()
        };
        let body = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"],
            "totalResults": 4, "startIndex": start, "itemsPerPage": page.len(), "Resources": page});
        (StatusCode::OK, body.to_string())
    }

    impl Fake {
        pub fn start() -> Fake {
            let mode = Arc::new(AtomicU8::new(HEALTHY));
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.set_nonblocking(true).unwrap();
            let port = listener.local_addr().unwrap().port();
            let (stop, stop_rx) = oneshot::channel::<()>();
            let state = Arc::clone(&mode);
            let thread = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                rt.block_on(async move {
                    let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                    let app = Router::new()
                        .route("/scim/Users", axum::routing::get(users))
                        .with_state(state);
                    tokio::select! {
                        _ = std::future::IntoFuture::into_future(axum::serve(listener, app)) => {}
                        _ = stop_rx => {}
                    }
                });
            });
            Fake {
                mode,
                port,
                stop: Some(stop),
                thread: Some(thread),
            }
        }
    }

    impl Drop for Fake {
        fn drop(&mut self) {
            if let Some(s) = self.stop.take() {
                s.send(()).ok();
            }
            if let Some(t) = self.thread.take() {
                t.join().ok();
            }
        }
    }
}

#[test]
fn a_scim_source_page_that_fails_part_way_fails_the_whole_pass_and_disables_no_one() {
    use std::sync::atomic::Ordering;
    let fake = paging_fake::Fake::start();
    let target = ScimServer::start();
    let yaml = format!(
        "source:\n  type: scim\n  url: http://127.0.0.1:{}/scim\n  bearer_token: ${{{SOURCE_TOKEN_ENV}}}\n  page_size: 2\n",
        fake.port
    );
    let ws = Ws::with_source(&target, &yaml, None, "");
    let ws = Ws {
        source_token: Some("paging-fake-token".into()),
        ..ws
    };
    let (code, report) = ws.sync();
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["result"]["applied"]["create"], 4);
    let before = target.users();

    for (mode, expected) in [
        (
            paging_fake::ERROR,
            "answered HTTP 500: directory backend unavailable",
        ),
        (paging_fake::TRUNCATED, "the whole list is refused"),
    ] {
        fake.mode.store(mode, Ordering::SeqCst);
        let (code, _stdout, stderr) = ws.run(&["sync", "--format", "json"]);
        assert_eq!(code, 1, "{stderr}");
        assert!(stderr.contains("startIndex 3"), "{stderr}");
        assert!(stderr.contains(expected), "{stderr}");
        assert_eq!(
            target.users(),
            before,
            "half a list never disables the other half"
        );
    }
}

#[test]
fn without_filtering_users_are_found_in_the_listed_users_and_adopted() {
    // Without filtering, the service's /Users is listed once for the pass and the
    // user who exists already (in another email case) is found there and adopted:
    // no 409 resent every pass, no second account.
    let server = ScimServer::start_with(Some(service_provider_config_with_filter(
        true, None, false, false,
    )));
    let people = people(3);
    server.create_user(user_body(
        &people[1].email.to_uppercase(),
        None,
        "Made",
        "ByHand",
        true,
    ));
    let ws = Ws::new(&server, "");
    ws.write_people(&people);
    let (code, report) = ws.sync();
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["result"]["failed"], 0, "{report}");
    assert_eq!(server.users().len(), 3, "no duplicate was made");
    let adopted: Vec<Value> = server
        .users()
        .into_iter()
        .filter(|u| u["externalId"] == people[1].id.as_str())
        .collect();
    assert_eq!(adopted.len(), 1, "adopted and given its key");
    assert_eq!(adopted[0]["name"]["givenName"], people[1].first.as_str());
    assert!(
        ops(&ws.sync().1).is_empty(),
        "the next pass has nothing to do"
    );
}

/// `filter: off` overrides what the service announces (for a service that announces
/// filtering but answers it wrongly): no filter is sent, and the user who already
/// exists is found in the listed users instead.
#[test]
fn filter_off_sends_no_filter_whatever_the_service_announces() {
    let server = ScimServer::start_with(Some(service_provider_config_with_filter(
        true, None, false, true,
    )));
    let people = people(2);
    server.create_user(user_body(&people[1].email, None, "Made", "ByHand", true));
    let ws = Ws::new(&server, "    filter: off\n");
    ws.write_people(&people);
    let (code, report) = ws.sync();
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["result"]["applied"]["create"], 2, "{report}");
    assert_eq!(server.users().len(), 2, "no duplicate was made");
}
