//! The audit trail in the log: a real `rosterd sync` against a fake hesh, with JSON
//! logs, writes one event per operation's outcome — `Account created.`,
//! `Account updated.`, `Account disabled.`, `Account update failed.` — with the run,
//! provider, source key, operation, changed field names, outcome and vendor id, and
//! no email, name or phone anywhere in it.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::support;

use serde_json::Value;

use support::fake_hesh::{FakeHesh, FakeHeshOptions};
use support::fake_server::FakeVendor;
use support::workspace::{Person, Workspace};

/// The audit events in a run's stderr (JSON lines), in order.
fn audit_events(stderr: &str) -> Vec<Value> {
    stderr
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|e| e["audit"] == true)
        .collect()
}

/// No personal value of `people` appears in any audit event.
fn assert_no_personal_values(events: &[Value], people: &[Person]) {
    for e in events {
        let text = e.to_string();
        for p in people {
            for value in [&p.email, &p.first, &p.last, &p.phone] {
                assert!(!text.contains(value.as_str()), "{value} in {text}");
            }
        }
    }
}

fn runs(stderr: &str) -> Vec<String> {
    stderr
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|e| e["message"] == "Run finished.")
        .map(|e| e["run_id"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn every_operation_is_one_audit_event_with_names_not_values() {
    let fake = FakeHesh::start(FakeHeshOptions::default()).await;
    let ws = Workspace::hesh(&fake.base_url(), fake.tenant_id(), fake.api_key(), "");
    let mut people: Vec<Person> = (1..=3).map(Person::new).collect();
    ws.write_people(&people);

    // Pass 1: three creates.
    let (code, _, stderr) = ws.run(&["sync"]);
    assert_eq!(code, 0, "{stderr}");
    let events = audit_events(&stderr);
    assert_eq!(events.len(), 3, "{stderr}");
    let run1 = runs(&stderr);
    assert_eq!(run1.len(), 1);
    for (e, p) in events.iter().zip(&people) {
        assert_eq!(e["message"], "Account created.");
        assert_eq!(e["level"], "INFO");
        assert_eq!(e["run_id"], run1[0].as_str());
        assert_eq!(e["provider"], "hesh");
        assert_eq!(e["external_id"], p.id.as_str());
        assert_eq!(e["op"], "create");
        assert_eq!(e["outcome"], "done");
        let fields = e["fields"].as_str().unwrap();
        for name in ["email", "first_name", "last_name"] {
            assert!(fields.split(',').any(|f| f == name), "{fields}");
        }
        let held = fake.user_by_email(&p.email).unwrap();
        assert_eq!(e["vendor_id"], held.id.to_string().as_str());
    }
    assert_no_personal_values(&events, &people);

    // Pass 2: one rename (an update naming only the changed field), one leaver.
    let before = people.clone();
    people[0].last = "Renamed".into();
    people[1].status = "inactive".into();
    ws.write_people(&people);
    let (code, _, stderr) = ws.run(&["sync"]);
    assert_eq!(code, 0, "{stderr}");
    let events = audit_events(&stderr);
    let got: Vec<(&str, &str, &str, &str)> = events
        .iter()
        .map(|e| {
            (
                e["message"].as_str().unwrap(),
                e["external_id"].as_str().unwrap(),
                e["op"].as_str().unwrap(),
                e["fields"].as_str().unwrap(),
            )
        })
        .collect();
    let mut got_sorted = got.clone();
    got_sorted.sort();
    assert_eq!(
        got_sorted,
        [
            ("Account disabled.", "E00002", "disable", ""),
            ("Account updated.", "E00001", "update", "last_name"),
        ],
        "{stderr}"
    );
    assert!(events.iter().all(|e| e["vendor_id"].is_string()));
    assert_no_personal_values(&events, &people);
    assert_no_personal_values(&events, &before);

    // Pass 3: the vendor refuses an update: a WARN event, still without values.
    people[2].first = "Changed".into();
    ws.write_people(&people);
    fake.fail_next(1, 422);
    let (code, _, stderr) = ws.run(&["sync"]);
    assert_eq!(code, 2, "{stderr}");
    let events = audit_events(&stderr);
    assert_eq!(events.len(), 1, "{stderr}");
    let e = &events[0];
    assert_eq!(e["message"], "Account update failed.");
    assert_eq!(e["level"], "WARN");
    assert_eq!(e["outcome"], "failed");
    assert_eq!(e["external_id"], "E00003");
    assert_eq!(e["fields"], "first_name");
    assert_eq!(e["http_status"], 422);
    assert_no_personal_values(&events, &people);
}

#[tokio::test]
async fn a_dead_vendor_defers_and_an_unknown_answer_says_so_then_settles() {
    // Nothing listens: every create is deferred (the provider failed as a whole).
    let port = support::process::free_port();
    let key = "audit-dead-vendor-key";
    let tenant = "00000000-0000-4000-8000-000000000000";
    // One attempt per request: the retries are not what is tested here.
    let once = "    rate_limit: { max_attempts: 1 }\n";
    let ws = Workspace::hesh(&format!("http://127.0.0.1:{port}"), tenant, key, once);
    let people: Vec<Person> = (1..=2).map(Person::new).collect();
    ws.write_people(&people);
    let (code, _, stderr) = ws.run(&["sync"]);
    assert_eq!(code, 2, "{stderr}");
    let events = audit_events(&stderr);
    assert!(!events.is_empty(), "{stderr}");
    for e in &events {
        assert_eq!(e["outcome"], "deferred", "{e}");
        assert_eq!(e["level"], "INFO");
        assert!(e["vendor_id"].is_null());
    }
    assert_no_personal_values(&events, &people);

    // The vendor applies the batch and the answer is lost, every attempt: unknown,
    // at WARN; the next pass settles it by adoption, as created.
    let fake = FakeHesh::start(FakeHeshOptions::default()).await;
    let ws = Workspace::hesh(&fake.base_url(), fake.tenant_id(), fake.api_key(), once);
    ws.write_people(&people);
    fake.drop_after_apply_next(100);
    let (code, _, stderr) = ws.run(&["sync"]);
    assert_eq!(code, 2, "{stderr}");
    let events = audit_events(&stderr);
    assert_eq!(events.len(), 2, "{stderr}");
    for e in &events {
        assert_eq!(e["outcome"], "unknown", "{e}");
        assert_eq!(e["level"], "WARN");
    }
    fake.clear_faults();
    let (code, _, stderr) = ws.run(&["sync"]);
    assert_eq!(code, 0, "{stderr}");
    let events = audit_events(&stderr);
    let settled: Vec<(&str, &str)> = events
        .iter()
        .map(|e| {
            (
                e["message"].as_str().unwrap(),
                e["outcome"].as_str().unwrap(),
            )
        })
        .collect();
    // The resends first (they come before the plan), then whatever the plan adds
    // for the adopted accounts.
    assert_eq!(settled[..2], [("Account created.", "done"); 2], "{stderr}");
    assert!(settled.iter().all(|(_, o)| *o == "done"), "{stderr}");
    assert_no_personal_values(&events, &people);
}

#[tokio::test]
async fn an_account_that_existed_already_is_adopted_in_the_audit_trail() {
    let fake = FakeHesh::start(FakeHeshOptions::default()).await;
    let people: Vec<Person> = (1..=2).map(Person::new).collect();
    // The second person's account was made by hand before rosterd.
    fake.seed([support::fake_hesh::HeshUser::new(
        &people[1].email,
        "Old",
        "Name",
    )]);
    let ws = Workspace::hesh(&fake.base_url(), fake.tenant_id(), fake.api_key(), "");
    ws.write_people(&people);
    let (code, _, stderr) = ws.run(&["sync"]);
    assert_eq!(code, 0, "{stderr}");
    let said: Vec<(String, String, String)> = audit_events(&stderr)
        .iter()
        .map(|e| {
            (
                e["external_id"].as_str().unwrap().to_string(),
                e["message"].as_str().unwrap().to_string(),
                e["outcome"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert!(
        said.contains(&(
            people[0].id.clone(),
            "Account created.".into(),
            "done".into()
        )),
        "{said:?}"
    );
    assert!(
        said.contains(&(
            people[1].id.clone(),
            "Account adopted.".into(),
            "adopted".into()
        )),
        "{said:?}"
    );
    fake.assert_no_duplicates();
}
