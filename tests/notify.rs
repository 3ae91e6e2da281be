//! Notifications against a local receiver (axum on 127.0.0.1, a random port, which
//! records every body): a blocked pass sends one json webhook, a failing pass a Slack
//! message naming the failure; a receiver answering 500 is retried; one that never
//! answers costs the pass at most `timeout_seconds` and changes no exit code; and the
//! webhook URL (a secret) reaches neither the output nor the state file. A daemon
//! pass is told like a one-shot one.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::disallowed_methods)]

use crate::support;

use std::io::Read;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{StatusCode, Uri};
use axum::Router;
use serde_json::Value;

use support::fake_hesh::{FakeHesh, FakeHeshOptions};
use support::fake_server::{lock, FakeServer, FakeVendor};
use support::process::{free_port, wait_for};
use support::workspace::{Person, Workspace};

/// The variable the config names for the webhook URL.
const URL_ENV: &str = "ROSTERD_TEST_WEBHOOK_URL";
/// The token-like part of the receiver's URL path: Slack's URLs carry theirs so.
const TOKEN: &str = "xoxwh-T0NOTIFY-B0TEST-4f8a9c2e7d1b6a3f";

#[derive(Default)]
struct Received {
    /// Each request's path and body, in arrival order.
    requests: Vec<(String, String)>,
    /// The next this many requests are answered 500.
    fail_first: usize,
    /// Requests are read and recorded, then never answered.
    hang: bool,
    /// Every request is refused (404) with a body echoing the path it came to.
    refuse_echoing: bool,
}

/// A webhook receiver on 127.0.0.1.
struct Receiver {
    server: FakeServer,
    state: Arc<Mutex<Received>>,
}

impl Receiver {
    fn start(setup: Received) -> Receiver {
        let state = Arc::new(Mutex::new(setup));
        let app = Router::new()
            .fallback(receive)
            .with_state(Arc::clone(&state));
        Receiver {
            server: FakeServer::start("webhook", app),
            state,
        }
    }

    /// The webhook URL, with its token in the path.
    fn url(&self) -> String {
        format!("{}/hooks/{TOKEN}", self.server.base_url())
    }

    fn requests(&self) -> Vec<(String, String)> {
        lock(&self.state).requests.clone()
    }

    /// The bodies received, as JSON.
    fn bodies(&self) -> Vec<Value> {
        self.requests()
            .iter()
            .map(|(_, b)| serde_json::from_str(b).unwrap())
            .collect()
    }
}

async fn receive(
    State(state): State<Arc<Mutex<Received>>>,
    uri: Uri,
    body: Bytes,
) -> (StatusCode, String) {
    let (hang, status, answer) = {
        let mut st = lock(&state);
        st.requests.push((
            uri.path().to_string(),
            String::from_utf8_lossy(&body).into_owned(),
        ));
        if st.refuse_echoing {
            (
                false,
                StatusCode::NOT_FOUND,
                format!("no hook at {}", uri.path()),
            )
        } else if st.fail_first > 0 {
            st.fail_first -= 1;
            (false, StatusCode::INTERNAL_SERVER_ERROR, "busy".into())
        } else {
            (st.hang, StatusCode::OK, "ok".into())
        }
    };
    if hang {
        std::future::pending::<()>().await;
    }
    (status, answer)
}

/// A hesh workspace whose config ends with `notify` (top-level YAML).
fn workspace(fake: &FakeHesh, notify: &str) -> Workspace {
    let ws = Workspace::hesh(&fake.base_url(), fake.tenant_id(), fake.api_key(), "");
    let path = ws.path().join("rosterd.yaml");
    let mut yaml = std::fs::read_to_string(&path).unwrap();
    yaml.push_str(notify);
    std::fs::write(&path, yaml).unwrap();
    ws
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
    took: Duration,
}

/// `rosterd sync --format json` with the webhook URL in the environment, logging at
/// debug (the most a log could say).
fn sync(ws: &Workspace, receiver: &Receiver) -> Run {
    let started = Instant::now();
    let out = ws
        .command(&["sync", "--format", "json"])
        .env(URL_ENV, receiver.url())
        .env("RUST_LOG", "debug")
        .output()
        .unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
        took: started.elapsed(),
    }
}

/// An empty export: the source guard (min_source_users: 1) blocks every provider.
fn blocked_workspace(fake: &FakeHesh, notify: &str) -> Workspace {
    let ws = workspace(fake, notify);
    ws.write_people(&[]);
    ws
}

fn assert_no_url(run: &Run, ws: &Workspace, receiver: &Receiver) {
    for text in [&run.stdout, &run.stderr] {
        assert!(!text.contains(TOKEN), "the webhook token leaked:\n{text}");
        assert!(!text.contains(&receiver.url()));
    }
    for file in ["state.db", "state.db-wal"] {
        if let Ok(bytes) = std::fs::read(ws.path().join(file)) {
            let hay = String::from_utf8_lossy(&bytes);
            assert!(!hay.contains(TOKEN), "the webhook token is in {file}");
        }
    }
}

#[test]
fn a_pass_blocked_by_a_guard_sends_one_json_webhook_with_event_blocked() {
    let fake = FakeHesh::start_blocking(FakeHeshOptions::default());
    let receiver = Receiver::start(Received::default());
    let ws = blocked_workspace(&fake, &format!("notify:\n  - url: ${{{URL_ENV}}}\n"));
    let run = sync(&ws, &receiver);
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(fake.writes().is_empty(), "a blocked pass writes nothing");

    let bodies = receiver.bodies();
    assert_eq!(bodies.len(), 1, "{bodies:?}");
    let doc = &bodies[0];
    assert_eq!(doc["format_version"], 1, "{doc}");
    assert_eq!(doc["event"], "blocked", "{doc}");
    assert_eq!(doc["events"], serde_json::json!(["blocked"]), "{doc}");
    assert_eq!(doc["outcome"], "blocked", "{doc}");
    assert!(!doc["run_id"].as_str().unwrap().is_empty(), "{doc}");
    let provider = &doc["providers"][0];
    assert_eq!(provider["name"], "hesh", "{doc}");
    assert!(
        provider["blocked"].as_str().unwrap().contains("source"),
        "the guard's reason: {doc}"
    );
    assert_eq!(receiver.requests()[0].0, format!("/hooks/{TOKEN}"));
    assert!(run.stderr.contains("Notification sent."), "{}", run.stderr);
    assert_no_url(&run, &ws, &receiver);

    // The run it names is the one the history holds.
    let out = ws
        .command(&["status", "--format", "json"])
        .env(URL_ENV, receiver.url())
        .output()
        .unwrap();
    let status: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(status["runs"][0]["run_id"], doc["run_id"], "{status}");
}

#[test]
fn a_daemon_pass_sends_its_webhook_too() {
    let fake = FakeHesh::start_blocking(FakeHeshOptions::default());
    let receiver = Receiver::start(Received::default());
    let port = free_port();
    let ws = blocked_workspace(
        &fake,
        &format!(
            "schedule: \"0 0 1 1 *\"\ndaemon: {{ listen: \"127.0.0.1:{port}\" }}\n\
             notify:\n  - url: ${{{URL_ENV}}}\n"
        ),
    );
    let mut daemon = ws
        .command(&["daemon", "--run-now"])
        .env(URL_ENV, receiver.url())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for("the daemon pass's webhook", Duration::from_secs(30), || {
        (!receiver.requests().is_empty()).then_some(())
    });
    assert!(Command::new("kill")
        .args(["-TERM", &daemon.id().to_string()])
        .status()
        .unwrap()
        .success());
    let status = daemon.wait().unwrap();
    let mut stderr = String::new();
    daemon
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(status.success(), "{stderr}");
    assert!(!stderr.contains(TOKEN), "{stderr}");
    let bodies = receiver.bodies();
    assert_eq!(bodies.len(), 1, "{bodies:?}");
    assert_eq!(bodies[0]["event"], "blocked");
}

#[test]
fn a_failing_pass_sends_a_slack_message_naming_the_failure() {
    let fake = FakeHesh::start_blocking(FakeHeshOptions::default());
    let receiver = Receiver::start(Received::default());
    let ws = workspace(
        &fake,
        &format!("notify:\n  - url: ${{{URL_ENV}}}\n    format: slack\n    on: [failed]\n"),
    );
    ws.write_people(&[Person::new(7)]);
    fake.fail_next(1, 422);
    let run = sync(&ws, &receiver);
    assert_eq!(run.code, 2, "{}", run.stderr);

    let bodies = receiver.bodies();
    assert_eq!(bodies.len(), 1, "{bodies:?}");
    let body = bodies[0].as_object().unwrap();
    assert_eq!(body.len(), 1, "Slack takes {{\"text\": …}}: {body:?}");
    let text = body["text"].as_str().unwrap();
    assert!(text.starts_with("*rosterd pass failed* (failed)"), "{text}");
    assert!(
        text.contains("*hesh* (hesh): applied 0, failed 1"),
        "{text}"
    );
    assert!(
        text.contains("failed create `E00007` user7@corp.example at hesh: hesh answered 422"),
        "{text}"
    );
    assert_no_url(&run, &ws, &receiver);

    // The next pass creates the user: nothing failed, nothing to say.
    let run = sync(&ws, &receiver);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(receiver.requests().len(), 1, "no event, no message");
}

#[test]
fn a_receiver_answering_500_twice_is_retried_until_it_takes_the_message() {
    let fake = FakeHesh::start_blocking(FakeHeshOptions::default());
    let receiver = Receiver::start(Received {
        fail_first: 2,
        ..Received::default()
    });
    let ws = blocked_workspace(&fake, &format!("notify:\n  - url: ${{{URL_ENV}}}\n"));
    let run = sync(&ws, &receiver);
    assert_eq!(run.code, 3, "{}", run.stderr);
    let requests = receiver.requests();
    assert_eq!(requests.len(), 3, "two 500s, then taken: {requests:?}");
    assert_eq!(requests[0].1, requests[2].1, "the same message each time");
    assert_eq!(receiver.bodies()[2]["event"], "blocked");
    assert!(run.stderr.contains("Notification sent."), "{}", run.stderr);
    assert_no_url(&run, &ws, &receiver);
}

#[test]
fn a_receiver_that_never_answers_delays_the_pass_by_its_timeout_at_most() {
    let fake = FakeHesh::start_blocking(FakeHeshOptions::default());
    let receiver = Receiver::start(Received {
        hang: true,
        ..Received::default()
    });
    let ws = blocked_workspace(
        &fake,
        &format!("notify:\n  - url: ${{{URL_ENV}}}\n    timeout_seconds: 2\n"),
    );
    let run = sync(&ws, &receiver);
    assert_eq!(run.code, 3, "the exit code is the pass's: {}", run.stderr);
    assert!(!receiver.requests().is_empty(), "it was tried");
    assert!(
        run.took < Duration::from_secs(2) + Duration::from_millis(2500),
        "took {:?}",
        run.took
    );
    assert!(
        run.stderr
            .contains("Notification not sent; the pass is not affected."),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("notify[0]"), "{}", run.stderr);
    let doc: Value = serde_json::from_str(&run.stdout).unwrap();
    assert!(
        doc["providers"][0]["blocked"].is_string(),
        "the report is the pass's"
    );
    assert_no_url(&run, &ws, &receiver);
}

#[test]
fn a_refused_webhook_whose_answer_echoes_its_url_leaks_it_nowhere() {
    let fake = FakeHesh::start_blocking(FakeHeshOptions::default());
    let receiver = Receiver::start(Received {
        refuse_echoing: true,
        ..Received::default()
    });
    let ws = workspace(
        &fake,
        &format!("notify:\n  - url: ${{{URL_ENV}}}\n    on: [failed, blocked, manual]\n"),
    );
    ws.write_people(&[Person::new(1), Person::new(2)]);
    fake.fail_next(1, 422);
    let run = sync(&ws, &receiver);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert_eq!(receiver.requests().len(), 1, "a 404 is not retried");
    assert!(
        run.stderr.contains("answered 404: no hook at ***"),
        "the receiver's answer, scrubbed: {}",
        run.stderr
    );
    assert_no_url(&run, &ws, &receiver);
    // The run history holds the pass, and not the URL (checked in the file's bytes).
    let out = ws
        .command(&["status", "--format", "json"])
        .env(URL_ENV, receiver.url())
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("\"failed\""), "{stdout}");
    assert!(!stdout.contains(TOKEN), "{stdout}");
}

#[test]
fn a_leavers_existing_account_disabled_is_the_leaver_disabled_event_naming_her() {
    use support::fake_hesh::{HeshStatus, HeshUser};
    let fake = FakeHesh::start_blocking(FakeHeshOptions::default());
    let receiver = Receiver::start(Received::default());
    let ws = workspace(
        &fake,
        &format!("notify:\n  - url: ${{{URL_ENV}}}\n    on: [leaver_disabled]\n"),
    );
    let stays = Person::new(1);
    let left = Person {
        status: "terminated".into(),
        ..Person::new(2)
    };
    fake.seed([HeshUser::new(&left.email, "Fn2", "Last2").with_external_id(&left.id)]);
    ws.write_people(&[stays, left.clone()]);
    let run = sync(&ws, &receiver);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        fake.user_by_email(&left.email).unwrap().status,
        HeshStatus::Inactive
    );

    let bodies = receiver.bodies();
    assert_eq!(bodies.len(), 1, "{bodies:?}");
    let doc = &bodies[0];
    assert_eq!(doc["event"], "leaver_disabled", "{doc}");
    assert_eq!(doc["providers"][0]["leavers_disabled"], 1, "{doc}");
    let items = doc["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{doc}");
    assert_eq!(items[0]["kind"], "leaver_disabled");
    assert_eq!(items[0]["external_id"], left.id.as_str());
    assert_eq!(items[0]["email"], left.email.as_str());
    assert_no_url(&run, &ws, &receiver);

    // Done once: the next pass disables nobody and says nothing.
    let run = sync(&ws, &receiver);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(receiver.requests().len(), 1);
}

#[test]
fn a_pass_that_cannot_start_because_the_state_is_locked_is_told_too() {
    let fake = FakeHesh::start_blocking(FakeHeshOptions::default());
    let receiver = Receiver::start(Received::default());
    let ws = workspace(&fake, &format!("notify:\n  - url: ${{{URL_ENV}}}\n"));
    ws.write_people(
        &(0..2)
            .map(support::workspace::Person::new)
            .collect::<Vec<_>>(),
    );
    // Another run holds the state file's lock (this test process, through the library).
    let _held = rosterd::store::FileLock::acquire(&ws.path().join("state.db")).unwrap();
    let run = sync(&ws, &receiver);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(fake.writes().is_empty());
    let bodies = receiver.bodies();
    assert_eq!(bodies.len(), 1, "{bodies:?}");
    assert_eq!(bodies[0]["event"], "failed", "{}", bodies[0]);
    assert_eq!(
        bodies[0]["run_id"],
        rosterd::sync::NOT_STARTED,
        "{}",
        bodies[0]
    );
    assert!(
        bodies[0]["error"]
            .as_str()
            .unwrap_or_default()
            .contains("lock"),
        "{}",
        bodies[0]
    );
    assert_no_url(&run, &ws, &receiver);
}
