//! The whole lifecycle against two real, independent SCIM 2.0 servers with the
//! default provider settings: scim2-server (`support/scim_server.rs`) and
//! django-scim2 in a throwaway Django project (`support/django_scim.rs`). Creates,
//! adoption of users who exist already (another email case; an address with `'` and
//! `+`), renames, email and phone changes, a phone removed, a leaver, a rehire, and
//! after each step a pass that sends no write. What is asserted is each server's own
//! `/Users`, read back, never rosterd's report alone. And a 409 that no lookup
//! explains, from a small fake: manual action, not resent until the record changes.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::support;

use std::process::Command;

use serde_json::{json, Value};
use support::django_scim::{DjangoScim, RealScim};
use support::scim_server::{ScimServer, USER_SCHEMA};
use support::workspace::{provider, Person};

const TOKEN_ENV: &str = "ROSTERD_TEST_SCIM_TOKEN";

struct Ws {
    dir: tempfile::TempDir,
    token: String,
}

impl Ws {
    fn new(target: &dyn RealScim) -> Ws {
        let dir = tempfile::tempdir().unwrap();
        let yaml = format!(
            "state: state.db\n\
             source:\n  type: csv\n  path: users.csv\n  fields: {{ external_id: id, email: email, first_name: first, last_name: last, phone: phone }}\n  status: {{ field: status, active_values: [active] }}\n\
             safety: {{ max_disable_percent: 100, min_source_users: 1 }}\n\
             providers:\n  - name: scim\n    type: scim\n    base_url: {}\n    bearer_token: ${{{TOKEN_ENV}}}\n",
            target.base_url()
        );
        std::fs::write(dir.path().join("rosterd.yaml"), yaml).unwrap();
        Ws {
            dir,
            token: target.token().to_string(),
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

    /// Runs rosterd with `args`: (exit code, stdout, stderr); the token never shows.
    fn run(&self, args: &[&str]) -> (i32, String, String) {
        let out = Command::new(env!("CARGO_BIN_EXE_rosterd"))
            .arg("-c")
            .arg(self.dir.path().join("rosterd.yaml"))
            .args(args)
            .env(TOKEN_ENV, &self.token)
            .output()
            .unwrap();
        let stdout = String::from_utf8(out.stdout).unwrap();
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert!(
            !stdout.contains(&self.token) && !stderr.contains(&self.token),
            "the bearer token leaked"
        );
        (out.status.code().unwrap_or(-1), stdout, stderr)
    }

    /// `sync --format json`: (exit code, the provider's report, stderr).
    fn sync(&self) -> (i32, Value, String) {
        let (code, stdout, stderr) = self.run(&["sync", "--format", "json"]);
        let doc: Value =
            serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}\n{stderr}"));
        (code, provider(&doc, "scim").clone(), stderr)
    }

    /// The quirks `status --format json` shows as remembered, by name.
    fn quirks(&self) -> Vec<String> {
        let (code, stdout, stderr) = self.run(&["status", "--format", "json"]);
        assert_eq!(code, 0, "{stderr}");
        let doc: Value = serde_json::from_str(&stdout).unwrap();
        doc["scim_quirks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|q| q["quirk"].as_str().unwrap().to_string())
            .collect()
    }
}

fn person(id: &str, email: &str, first: &str, last: &str, phone: &str) -> Person {
    Person {
        id: id.into(),
        email: email.into(),
        first: first.into(),
        last: last.into(),
        phone: phone.into(),
        status: "active".into(),
    }
}

fn seeded(user_name: &str, given: &str, family: &str, phone: Option<&str>) -> Value {
    let mut u = json!({
        "schemas": [USER_SCHEMA],
        "userName": user_name,
        "name": {"givenName": given, "familyName": family},
        "emails": [{"value": user_name, "type": "work", "primary": true}],
        "active": true
    });
    if let Some(p) = phone {
        u["phoneNumbers"] = json!([{"value": p, "type": "work", "primary": true}]);
    }
    u
}

/// The server holds exactly `people`, once each, as the source has them: names,
/// one primary email, the phone or none, active as the status says.
fn assert_holds(server: &dyn RealScim, people: &[Person], step: &str) {
    let users = server.all_users();
    let label = server.label();
    assert_eq!(users.len(), people.len(), "{label}, {step}: {users:#?}");
    for p in people {
        let held: Vec<&Value> = users
            .iter()
            .filter(|u| u["externalId"].as_str() == Some(p.id.as_str()))
            .collect();
        assert_eq!(
            held.len(),
            1,
            "{label}, {step}: {} held {} times: {users:#?}",
            p.id,
            held.len()
        );
        let u = held[0];
        let at = format!("{label}, {step}, {}: {u:#}", p.id);
        assert_eq!(u["userName"], p.email.as_str(), "{at}");
        assert_eq!(u["name"]["givenName"], p.first.as_str(), "{at}");
        assert_eq!(u["name"]["familyName"], p.last.as_str(), "{at}");
        assert_eq!(u["displayName"], format!("{} {}", p.first, p.last), "{at}");
        let emails = u["emails"].as_array().unwrap();
        assert_eq!(emails.len(), 1, "one email, not a merge: {at}");
        assert_eq!(emails[0]["value"], p.email.as_str(), "{at}");
        assert_eq!(emails[0]["primary"], true, "{at}");
        let phones = u.get("phoneNumbers").and_then(Value::as_array);
        if p.phone.is_empty() {
            assert!(phones.is_none_or(|p| p.is_empty()), "no phone: {at}");
        } else {
            let phones = phones.unwrap_or_else(|| panic!("a phone: {at}"));
            assert_eq!(phones.len(), 1, "one phone, not a merge: {at}");
            assert_eq!(phones[0]["value"], p.phone.as_str(), "{at}");
        }
        assert_eq!(u["active"], p.status == "active", "{at}");
    }
}

/// One step: a pass that must succeed and leave the server as the source says, then
/// a pass that has nothing to do and sends nothing. Returns the first pass's report.
fn step(
    server: &dyn RealScim,
    ws: &Ws,
    people: &[Person],
    name: &str,
    writes: &dyn Fn() -> usize,
) -> Value {
    ws.write_people(people);
    let (code, report, stderr) = ws.sync();
    assert_eq!(code, 0, "{}, {name}: {report:#}\n{stderr}", server.label());
    assert_eq!(
        report["result"]["failed"],
        0,
        "{}, {name}: {report:#}",
        server.label()
    );
    assert_holds(server, people, name);
    let before = writes();
    let (code, again, stderr) = ws.sync();
    assert_eq!(
        code,
        0,
        "{}, {name} again: {again:#}\n{stderr}",
        server.label()
    );
    assert_eq!(
        again["operations"],
        json!([]),
        "{}, {name} again: {again:#}",
        server.label()
    );
    assert_eq!(
        again["result"]["requests"].as_u64().unwrap_or(0),
        0,
        "{}, {name} again: nothing sent",
        server.label()
    );
    assert_eq!(
        writes(),
        before,
        "{}, {name} again: the server got no write",
        server.label()
    );
    assert_holds(server, people, name);
    report
}

/// The lifecycle; returns the quirks rosterd remembered for the server.
fn lifecycle(server: &dyn RealScim, writes: &dyn Fn() -> usize) -> (Vec<String>, Ws, Vec<Person>) {
    // Two people exist on the server already: one in another email case, one with an
    // address that needs quoting (`'` and `+`), with a phone the source does not have.
    server.seed(seeded("Ann.Lee@Corp.Example", "Ann", "Old", None));
    server.seed(seeded(
        "o'brien+ops@corp.example",
        "Pat",
        "O'Brien",
        Some("+15550000001"),
    ));
    let mut people = vec![
        person("E1", "ann.lee@corp.example", "Ann", "Lee", "+15551000001"),
        person("E2", "o'brien+ops@corp.example", "Pat", "O'Brien", ""),
        person("E3", "cy.new@corp.example", "Cy", "New", "+15551000003"),
        person("E4", "di.new@corp.example", "Di", "New", ""),
        person("E5", "ed.new@corp.example", "Ed", "New", "+15551000005"),
    ];
    let ws = Ws::new(server);
    let first = step(server, &ws, &people, "creates and adoptions", writes);
    assert_eq!(first["result"]["applied"]["create"], 5, "{first:#}");

    // A rename, an email change, a phone changed, a phone removed, a phone added.
    people[2].first = "Cyrus".into();
    people[2].last = "Newer".into();
    people[0].email = "ann.lee-smith@corp.example".into();
    people[3].phone = "+15552000004".into();
    people[4].phone = "+15552000005".into();
    people[0].phone = String::new();
    step(server, &ws, &people, "changes", writes);

    // A leaver, and a change to someone else.
    people[4].status = "terminated".into();
    people[1].last = "O'Brien-Ng".into();
    step(server, &ws, &people, "a leaver", writes);

    // The leaver is rehired, with a new email.
    people[4].status = "active".into();
    people[4].email = "ed.back@corp.example".into();
    step(server, &ws, &people, "a rehire", writes);
    (ws.quirks(), ws, people)
}

#[test]
fn scim2_server_converges_through_a_whole_lifecycle_with_the_default_settings() {
    let server = ScimServer::start();
    // scim2-server keeps no request log: the passes after each step must send no
    // request at all (asserted in `step`), which bounds its writes too.
    let (quirks, _, _) = lifecycle(&server, &|| 0);
    assert!(
        quirks.is_empty(),
        "scim2-server does what it announces: {quirks:?}"
    );
}

#[test]
fn django_scim2_converges_through_a_whole_lifecycle_with_the_default_settings() {
    let server = DjangoScim::start();
    let (quirks, ws, mut people) = lifecycle(&server, &|| server.writes().len());
    // django-scim2 announces PATCH but cannot replace externalId, displayName or
    // phoneNumbers by it (501): learned at the first adoption, PUT from then on.
    assert_eq!(quirks, ["patch_unusable"]);
    let log = server.log();
    let first_put = log.iter().position(|l| l.starts_with("PUT ")).unwrap();
    assert!(
        log[first_put..]
            .iter()
            .filter(|l| l.starts_with("PATCH "))
            .count()
            <= 1,
        "after the 501, changes go as a read and a PUT: {log:#?}"
    );
    // The dry run shows the remembered fallback, and the pass sends just that.
    people[2].first = "Cy".into();
    ws.write_people(&people);
    let (code, stdout, stderr) =
        ws.run(&["sync", "--dry-run", "--show-requests", "--format", "json"]);
    assert_eq!(code, 0, "{stderr}");
    let doc: Value = serde_json::from_str(&stdout).unwrap();
    let shown: Vec<String> = provider(&doc, "scim")["requests"]["requests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            format!(
                "{} /scim/v2{}",
                r["method"].as_str().unwrap(),
                r["path"].as_str().unwrap()
            )
        })
        .collect();
    // Its id at the server: creates run concurrently, so ids are not in source order.
    let id = server
        .all_users()
        .into_iter()
        .find(|u| u["externalId"] == people[2].id.as_str())
        .and_then(|u| u["id"].as_str().map(str::to_string))
        .unwrap();
    assert_eq!(
        shown,
        [
            "GET /scim/v2/ServiceProviderConfig".to_string(),
            format!("GET /scim/v2/Users/{id}"),
            format!("PUT /scim/v2/Users/{id}"),
        ]
    );
    server.clear_log();
    step(&server, &ws, &people, "a rename after the quirk", &|| {
        server.writes().len()
    });
    let sent: Vec<String> = server
        .log()
        .into_iter()
        .filter(|l| !l.contains("?startIndex"))
        .collect();
    assert_eq!(sent[..3], shown[..], "{sent:#?}");
    // `status` and `check` say so.
    for cmd in ["status", "check"] {
        let (code, stdout, stderr) = ws.run(&[cmd]);
        assert_eq!(code, 0, "{cmd}: {stderr}");
        assert!(
            stdout.contains("scim quirk scim: PATCH unusable: changes are read and PUT"),
            "{cmd}: {stdout}"
        );
    }
}

/// A SCIM service that filters and refuses every create as a duplicate it never
/// lists (an account hidden from this client): neither real server can be made to
/// refuse a user it does not show, hence this small in-process fake. It counts the
/// POSTs it gets.
mod conflict_fake {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    use axum::extract::State;
    use axum::http::StatusCode;
    use axum::Router;
    use serde_json::{json, Value};
    use tokio::sync::oneshot;

    pub const DETAIL: &str = "userName is already taken by an account in another tenant";

    pub struct Fake {
        pub posts: Arc<AtomicUsize>,
        port: u16,
        stop: Option<oneshot::Sender<()>>,
        thread: Option<std::thread::JoinHandle<()>>,
    }

    async fn config() -> String {
        json!({"patch": {"supported": true}, "bulk": {"supported": false},
               "filter": {"supported": true, "maxResults": 100}, "etag": {"supported": false}})
        .to_string()
    }

    async fn list() -> String {
        json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"],
               "totalResults": 0, "startIndex": 1, "itemsPerPage": 0, "Resources": []})
        .to_string()
    }

    async fn create(State(posts): State<Arc<AtomicUsize>>) -> (StatusCode, String) {
        posts.fetch_add(1, Ordering::SeqCst);
        let body = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"],
            "status": "409", "scimType": "uniqueness", "detail": DETAIL});
        (StatusCode::CONFLICT, body.to_string())
    }

    impl Fake {
        pub fn start() -> Fake {
            let posts = Arc::new(AtomicUsize::new(0));
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.set_nonblocking(true).unwrap();
            let port = listener.local_addr().unwrap().port();
            let (stop, stop_rx) = oneshot::channel::<()>();
            let state = Arc::clone(&posts);
            let thread = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                rt.block_on(async move {
                    let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                    let app = Router::new()
                        .route("/scim/ServiceProviderConfig", axum::routing::get(config))
                        .route("/scim/Users", axum::routing::get(list).post(create))
                        .with_state(state);
                    tokio::select! {
                        _ = std::future::IntoFuture::into_future(axum::serve(listener, app)) => {}
                        _ = stop_rx => {}
                    }
                });
            });
            Fake {
                posts,
                port,
                stop: Some(stop),
                thread: Some(thread),
            }
        }

        pub fn posts(&self) -> usize {
            self.posts.load(Ordering::SeqCst)
        }
    }

    impl super::RealScim for Fake {
        fn label(&self) -> &'static str {
            "a fake refusing every create"
        }
        fn base_url(&self) -> String {
            format!("http://127.0.0.1:{}/scim", self.port)
        }
        fn token(&self) -> &str {
            "conflict-fake-token"
        }
        fn call(&self, _: &str, _: &str, _: Option<&Value>) -> (u16, Value) {
            unreachable!("the tests read the fake's counters, not its users")
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

/// A 409 with no user to adopt is manual action carrying the server's detail, not
/// a failure resent every pass: the next pass sends nothing; a change to the
/// person's record tries the create once more.
#[test]
fn a_duplicate_no_lookup_shows_is_manual_action_and_not_resent_until_the_record_changes() {
    let fake = conflict_fake::Fake::start();
    let ws = Ws::new(&fake);
    let mut people = vec![person("E1", "taken@corp.example", "Ann", "Lee", "")];
    ws.write_people(&people);
    let (code, report, stderr) = ws.sync();
    assert_eq!(report["result"]["failed"], 0, "{report:#}\n{stderr}");
    assert_eq!(report["result"]["manual"], 1, "{report:#}");
    assert!(stderr.contains(conflict_fake::DETAIL), "{stderr}");
    assert_eq!(fake.posts(), 1);
    assert_eq!(code, 0, "manual action is not a failure: {report:#}");

    let (_, again, _) = ws.sync();
    assert_eq!(again["operations"], json!([]), "{again:#}");
    assert_eq!(
        again["manual"][0]["reason"]
            .as_str()
            .map(|r| r.contains(conflict_fake::DETAIL)),
        Some(true),
        "{again:#}"
    );
    assert_eq!(
        again["result"]["requests"].as_u64().unwrap_or(0),
        0,
        "{again:#}"
    );
    assert_eq!(fake.posts(), 1, "not resent while the record is unchanged");

    people[0].last = "Lee-Smith".into();
    ws.write_people(&people);
    let (_, changed, _) = ws.sync();
    assert_eq!(
        fake.posts(),
        2,
        "tried again once the record changed: {changed:#}"
    );
}
