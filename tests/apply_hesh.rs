//! `rosterd sync` against a stateful fake hesh on 127.0.0.1: the fake's final state,
//! its request log (batch sizes, 429s, duplicates), the snapshot rows and the exit
//! codes — including a SIGKILL in the middle of a large apply.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
// Test code may block and read the real clock: clippy.toml's disallowed-methods
// are for the library.
#![allow(clippy::disallowed_methods)]

use crate::support;

use std::time::Duration;

use rosterd::store::{AccountState, RunLock};
use support::fake_hesh::{
    FakeHesh, FakeHeshOptions, HeshStatus, HeshUser, DISABLE_PATH, USERS_PATH,
};
use support::fake_server::{assert_no_violations, first_429_then_waited, FakeVendor};
use support::process::{kill_when, wait_for};
use support::state::snapshot_states;
use support::workspace::{op_kinds, provider, Person, Workspace};

fn workspace(fake: &FakeHesh, extra: &str) -> Workspace {
    Workspace::hesh(&fake.base_url(), fake.tenant_id(), fake.api_key(), extra)
}

/// The fake holds exactly these people, active, with their fields, once each.
fn assert_holds(fake: &FakeHesh, people: &[Person]) {
    fake.assert_no_duplicates();
    assert!(
        fake.created_twice().is_empty(),
        "created twice: {:?}",
        fake.created_twice()
    );
    let users = fake.users();
    assert_eq!(users.len(), people.len(), "{users:#?}");
    for p in people {
        let u = fake
            .user_by_email(&p.email)
            .unwrap_or_else(|| panic!("{} missing", p.email));
        assert_eq!(u.external_user_id.as_deref(), Some(p.id.as_str()));
        assert_eq!(
            (u.first_name.as_str(), u.last_name.as_str()),
            (p.first.as_str(), p.last.as_str())
        );
        assert_eq!(u.phone.as_deref(), Some(p.phone.as_str()));
        assert_eq!(u.status, HeshStatus::Active);
    }
    assert_no_violations(&fake.schema_violations());
}

#[tokio::test]
async fn first_run_creates_everyone_in_batches_and_a_rerun_sends_nothing() {
    let fake = FakeHesh::start(FakeHeshOptions::default()).await;
    let ws = workspace(&fake, "    batch_size: 100\n");
    let people: Vec<Person> = (0..250).map(Person::new).collect();
    ws.write_people(&people);

    let (code, doc) = ws.sync();
    assert_eq!(code, 0, "{doc}");
    let result = &provider(&doc, "hesh")["result"];
    assert_eq!(result["applied"]["create"], 250);
    assert_eq!(result["failed"], 0);
    assert_holds(&fake, &people);
    // 250 creates in ceil(250 / 100) = 3 batch requests, none larger than 100.
    let batches: Vec<usize> = fake.requests().iter().filter_map(|r| r.batch_len).collect();
    assert_eq!(batches.len(), 3, "{batches:?}");
    assert!(batches.iter().all(|&n| n <= 100));
    assert_eq!(fake.count("POST", USERS_PATH), 0);
    let states = snapshot_states(&ws.state(), "hesh").await;
    assert_eq!(states.len(), 250);
    assert!(states.iter().all(|(_, s)| *s == AccountState::Active));

    fake.clear_requests();
    let (code, doc) = ws.sync();
    assert_eq!(code, 0);
    assert_eq!(op_kinds(&doc, "hesh").len(), 0);
    assert!(
        fake.requests().is_empty(),
        "a rerun with nothing to do sends nothing"
    );
}

#[tokio::test]
async fn existing_accounts_are_adopted_by_email_not_duplicated() {
    let fake = FakeHesh::start(FakeHeshOptions::default()).await;
    let people: Vec<Person> = (0..5).map(Person::new).collect();
    // Two of them already have hesh accounts (another name, no phone, no external id).
    fake.seed([
        HeshUser::new(&people[1].email.to_uppercase(), "Old", "Name"),
        HeshUser::new(&people[3].email, "Other", "Name"),
    ]);
    let ws = workspace(&fake, "");
    ws.write_people(&people);

    let (code, doc) = ws.sync();
    assert_eq!(code, 0, "{doc}");
    assert_eq!(provider(&doc, "hesh")["result"]["applied"]["create"], 5);
    assert_eq!(fake.users().len(), 5, "adopted, not duplicated");
    let adopted = fake.user_by_email(&people[1].email).unwrap();
    assert_eq!(adopted.first_name, people[1].first);
    assert_eq!(
        adopted.external_user_id.as_deref(),
        Some(people[1].id.as_str())
    );
    // The adoption was matched by email only (no phone sent); the next pass adds it.
    assert_eq!(adopted.phone, None);
    let (code, doc) = ws.sync();
    assert_eq!(code, 0);
    assert_eq!(op_kinds(&doc, "hesh"), ["update", "update"]);
    assert_holds(&fake, &people);
    fake.clear_requests();
    let (_, doc) = ws.sync();
    assert!(op_kinds(&doc, "hesh").is_empty());
    assert!(fake.requests().is_empty());
}

#[tokio::test]
async fn updates_disables_and_re_enables_round_trip() {
    let fake = FakeHesh::start(FakeHeshOptions::default()).await;
    let ws = workspace(&fake, "");
    let mut people: Vec<Person> = (0..4).map(Person::new).collect();
    ws.write_people(&people);
    assert_eq!(ws.sync().0, 0);

    people[0].last = "Renamed".into();
    people[1].status = "terminated".into();
    let leaver = people.remove(3);
    ws.write_people(&people);
    let (code, doc) = ws.sync();
    assert_eq!(code, 0, "{doc}");
    let applied = &provider(&doc, "hesh")["result"]["applied"];
    assert_eq!(
        (applied["update"].as_u64(), applied["disable"].as_u64()),
        (Some(1), Some(2))
    );
    assert_eq!(
        fake.user_by_email(&people[0].email).unwrap().last_name,
        "Renamed"
    );
    assert_eq!(
        fake.user_by_email(&people[1].email).unwrap().status,
        HeshStatus::Inactive
    );
    assert_eq!(
        fake.user_by_email(&leaver.email).unwrap().status,
        HeshStatus::Inactive
    );
    assert_eq!(fake.count("PATCH", DISABLE_PATH), 2);
    let states = snapshot_states(&ws.state(), "hesh").await;
    assert!(states.contains(&(people[1].id.clone(), AccountState::Disabled)));

    people[1].status = "active".into();
    ws.write_people(&people);
    let (code, doc) = ws.sync();
    assert_eq!(code, 0);
    assert_eq!(provider(&doc, "hesh")["result"]["applied"]["enable"], 1);
    assert_eq!(
        fake.user_by_email(&people[1].email).unwrap().status,
        HeshStatus::Active
    );
    assert_eq!(
        fake.user_by_email(&leaver.email).unwrap().status,
        HeshStatus::Inactive,
        "the leaver stays disabled"
    );
}

#[tokio::test]
async fn adoption_never_re_keys_an_account_that_only_shares_the_phone() {
    let fake = FakeHesh::start(FakeHeshOptions::default()).await;
    let ws = workspace(&fake, "");
    let people: Vec<Person> = (0..1).map(Person::new).collect();
    ws.write_people(&people);
    // A user that hesh already knows by this phone under another email: adoption
    // would re-key somebody else's account, so rosterd refuses and says why.
    fake.seed([
        HeshUser::new("someone.else@corp.example", "Some", "One").with_phone(&people[0].phone)
    ]);
    let (code, doc) = ws.sync();
    assert_eq!(code, 2, "{doc}");
    let result = &provider(&doc, "hesh")["result"];
    assert_eq!(result["failed"], 1);
    let error = result["failures"][0]["error"].as_str().unwrap();
    assert!(
        error.contains("another account holds the phone number"),
        "{error}"
    );
    assert!(
        fake.user_by_email("someone.else@corp.example").is_some(),
        "the other account was not touched"
    );
    assert!(
        snapshot_states(&ws.state(), "hesh").await.is_empty(),
        "a failed create leaves no snapshot row"
    );
}

#[tokio::test]
async fn vendor_error_body_is_shown_and_the_operation_retried_next_run() {
    let fake = FakeHesh::start(FakeHeshOptions::default()).await;
    let ws = workspace(&fake, "");
    let people: Vec<Person> = (0..1).map(Person::new).collect();
    ws.write_people(&people);
    fake.fail_next(1, 422);
    let (code, doc) = ws.sync();
    assert_eq!(code, 2, "{doc}");
    let error = provider(&doc, "hesh")["result"]["failures"][0]["error"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(error.starts_with("hesh answered 422"), "{error}");
    let (code, doc) = ws.sync();
    assert_eq!(code, 0, "{doc}");
    assert_holds(&fake, &people);
}

#[tokio::test]
async fn server_errors_and_dropped_connections_are_retried_to_the_same_end_state() {
    let fake = FakeHesh::start(FakeHeshOptions::default()).await;
    let ws = workspace(
        &fake,
        "    batch_size: 5\n    rate_limit: { max_attempts: 5 }\n",
    );
    let people: Vec<Person> = (0..20).map(Person::new).collect();
    ws.write_people(&people);
    fake.fail_next(2, 503);
    fake.drop_next(1);
    fake.fail_after_apply_next(1);
    let (code, doc) = ws.sync();
    assert_eq!(code, 0, "{doc}");
    assert_holds(&fake, &people);
    let result = &provider(&doc, "hesh")["result"];
    assert!(result["retries"].as_u64().unwrap() >= 4, "{result}");
}

#[tokio::test]
async fn rate_limit_headers_keep_every_request_inside_the_window() {
    let opts = FakeHeshOptions {
        limit: 5,
        window: Duration::from_millis(700),
        ..FakeHeshOptions::default()
    };
    let fake = FakeHesh::start(opts).await;
    let ws = workspace(
        &fake,
        "    batch_size: 1\n    rate_limit: { max_concurrency: 3 }\n",
    );
    let people: Vec<Person> = (0..16).map(Person::new).collect();
    ws.write_people(&people);
    let (code, doc) = ws.sync();
    assert_eq!(code, 0, "{doc}");
    assert_holds(&fake, &people);
    let statuses: Vec<Option<u16>> = fake.requests().iter().map(|r| r.status).collect();
    assert!(
        !statuses.contains(&Some(429)),
        "the headers could have prevented every 429: {statuses:?}"
    );
}

#[tokio::test]
async fn a_429_is_waited_out_not_failed_and_nothing_is_sent_before_the_reset() {
    let window = Duration::from_millis(1500);
    let opts = FakeHeshOptions {
        limit: 3,
        window,
        ..FakeHeshOptions::default()
    };
    let fake = FakeHesh::start(opts).await;
    // Somebody else spends the window first: rosterd's first request gets a 429.
    let client = reqwest::Client::new();
    for _ in 0..3 {
        fake.authed(&client, reqwest::Method::PATCH, DISABLE_PATH)
            .json(&serde_json::json!({"external_user_id": "nobody"}))
            .send()
            .await
            .unwrap();
    }
    let window_start = fake.requests()[0].at;
    let ws = workspace(
        &fake,
        "    batch_size: 1\n    rate_limit: { max_concurrency: 1 }\n",
    );
    let people: Vec<Person> = (0..4).map(Person::new).collect();
    ws.write_people(&people);
    let (code, doc) = ws.sync();
    assert_eq!(code, 0, "a 429 is not a failure: {doc}");
    assert_holds(&fake, &people);
    let requests = fake.requests();
    first_429_then_waited(
        requests.iter().map(|r| (r.at, r.status == Some(429))),
        window_start + window,
    );
    assert_eq!(provider(&doc, "hesh")["result"]["rate_limited"], 1);
}

#[tokio::test]
async fn a_fixed_client_rate_avoids_429s_from_a_vendor_without_headers() {
    let opts = FakeHeshOptions {
        limit: 4,
        window: Duration::from_millis(500),
        send_rate_headers: false,
        ..FakeHeshOptions::default()
    };
    let fake = FakeHesh::start(opts).await;
    let ws = workspace(
        &fake,
        "    batch_size: 1\n    rate_limit: { requests_per_second: 6, max_concurrency: 1 }\n",
    );
    let people: Vec<Person> = (0..8).map(Person::new).collect();
    ws.write_people(&people);
    let (code, doc) = ws.sync();
    assert_eq!(code, 0, "{doc}");
    assert_holds(&fake, &people);
    assert!(fake.requests().iter().all(|r| r.status != Some(429)));
}

#[tokio::test]
async fn killed_mid_apply_and_rerun_the_vendor_holds_the_source_once() {
    // Kill points by progress, not by the clock: after 2, 12 and 25 of the 30 batch
    // requests have reached hesh (some answered, some still in flight).
    for kill_at in [2usize, 12, 25] {
        let fake = FakeHesh::start(FakeHeshOptions::default()).await;
        let ws = workspace(
            &fake,
            "    batch_size: 10\n    rate_limit: { max_concurrency: 2 }\n",
        );
        let people: Vec<Person> = (0..300).map(Person::new).collect();
        ws.write_people(&people);
        fake.delay(Duration::from_millis(60));
        kill_when(ws.spawn_sync(), || fake.requests().len() >= kill_at).await;
        let created_before_rerun = fake.users().len();
        fake.delay(Duration::ZERO);

        let (code, doc) = ws.sync();
        assert_eq!(code, 0, "killed at request {kill_at}: {doc}");
        assert_holds(&fake, &people);
        let states = snapshot_states(&ws.state(), "hesh").await;
        assert_eq!(states.len(), 300, "killed at request {kill_at}");
        assert!(
            created_before_rerun < 300,
            "killed too late to test anything"
        );
        let resolved = provider(&doc, "hesh")["result"]["resolved"]
            .as_u64()
            .unwrap();
        eprintln!("killed at request {kill_at}: {created_before_rerun} created before, {resolved} resent first");
    }
}

#[test]
fn a_second_run_on_the_same_state_file_is_refused_while_one_runs() {
    let fake = FakeHesh::start_blocking(FakeHeshOptions::default());
    let ws = workspace(
        &fake,
        "    batch_size: 1\n    rate_limit: { max_concurrency: 1 }\n",
    );
    let people: Vec<Person> = (0..30).map(Person::new).collect();
    ws.write_people(&people);
    fake.delay(Duration::from_millis(50));
    let mut first = ws.spawn_sync();
    let lock = RunLock::path_for(&ws.state());
    let pid = first.id().to_string();
    wait_for(
        "the first run to hold the lock",
        Duration::from_secs(30),
        || {
            let holder = std::fs::read_to_string(&lock).ok()?;
            (holder.trim() == pid).then_some(())
        },
    );
    let (code, _, stderr) = ws.run(&["sync"]);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("another rosterd run holds"), "{stderr}");
    assert!(first.wait().unwrap().success());
    fake.delay(Duration::ZERO);
    assert_holds(&fake, &people);
}

/// A row that loses its key in a later export (an empty id, or one with a NUL in it)
/// is rejected, and its account — found by the email the row still has — is held:
/// not disabled as "gone", not created again. Everyone else syncs as usual.
#[tokio::test]
async fn a_row_that_lost_its_key_holds_the_account_with_its_email() {
    let fake = FakeHesh::start(FakeHeshOptions::default()).await;
    let ws = workspace(&fake, "");
    let mut people: Vec<Person> = (0..6).map(Person::new).collect();
    ws.write_people(&people);
    let (code, doc) = ws.sync();
    assert_eq!(code, 0, "{doc}");
    assert_holds(&fake, &people);

    people[1].id = String::new();
    people[2].id = format!("{}\u{0}", people[2].id);
    people[5].last = "Renamed".into();
    ws.write_people(&people);
    fake.clear_requests();
    let (code, doc) = ws.sync();
    assert_eq!(code, 0, "{doc}");
    assert_eq!(
        doc["source"]["rejected"].as_array().unwrap().len(),
        2,
        "{doc}"
    );
    assert_eq!(op_kinds(&doc, "hesh"), ["update"], "{doc}");
    assert_eq!(fake.count("PATCH", DISABLE_PATH), 0);
    assert!(fake.users().iter().all(|u| u.status == HeshStatus::Active));
    assert_eq!(fake.users().len(), 6, "nobody was created again");
    let states = snapshot_states(&ws.state(), "hesh").await;
    assert!(
        states.iter().all(|(_, s)| *s == AccountState::Active),
        "{states:?}"
    );
}
