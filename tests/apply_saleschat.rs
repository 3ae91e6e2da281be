//! `rosterd sync` against a stateful fake saleschat on 127.0.0.1: adoption of existing
//! members, generated passwords, the org-membership check, disable / enable / delete
//! by saleschat's user id, vendor error bodies, and a SIGKILL in the middle of a run.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::support;

use std::time::Duration;

use rosterd::store::AccountState;
use serde_json::Value;
use support::fake_saleschat::{FakeSaleschat, FakeSaleschatOptions, ScUser};
use support::fake_server::{assert_no_violations, first_429_then_waited, FakeVendor};
use support::process::kill_when;
use support::state::snapshot_with_ids;
use support::workspace::{op_kinds, provider, Person, Workspace};

fn workspace(fake: &FakeSaleschat, extra: &str) -> Workspace {
    Workspace::saleschat(&fake.base_url(), fake.org_id(), fake.token(), extra)
}

async fn start() -> FakeSaleschat {
    FakeSaleschat::start(FakeSaleschatOptions::default()).await
}

/// The fake holds exactly these people, enabled members, once each, and every body
/// matched the schema.
fn assert_holds(fake: &FakeSaleschat, people: &[Person]) {
    assert!(fake.duplicates().is_empty(), "{:?}", fake.duplicates());
    let live: Vec<ScUser> = fake.users().into_iter().filter(|u| !u.deleted).collect();
    assert_eq!(live.len(), people.len(), "{live:#?}");
    for p in people {
        let u = fake
            .user_by_email(&p.email)
            .unwrap_or_else(|| panic!("{} missing", p.email));
        assert!(u.in_org && !u.disabled, "{u:?}");
    }
    assert_no_violations(&fake.schema_violations());
}

/// Runs `sync --format json` and checks that no password the fake received and no
/// token appears in what rosterd printed.
fn sync(ws: &Workspace, fake: &FakeSaleschat) -> (i32, Value) {
    let (code, stdout, stderr) = ws.run(&["sync", "--format", "json"]);
    for pw in fake.passwords() {
        assert!(
            !stdout.contains(&pw) && !stderr.contains(&pw),
            "a password leaked"
        );
    }
    assert!(!stdout.contains(fake.token()) && !stderr.contains(fake.token()));
    let doc = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}\n{stderr}"));
    (code, doc)
}

fn strong(pw: &str) -> bool {
    pw.len() >= 24
        && pw.len() <= 64
        && pw.chars().any(|c| c.is_ascii_uppercase())
        && pw.chars().any(|c| c.is_ascii_lowercase())
        && pw.chars().any(|c| c.is_ascii_digit())
        && pw.chars().any(|c| !c.is_ascii_alphanumeric())
}

#[tokio::test]
async fn first_run_adopts_existing_members_creates_the_rest_and_a_rerun_sends_nothing() {
    let fake = start().await;
    let people: Vec<Person> = (0..6).map(Person::new).collect();
    // Two exist already (one in another case); a look-alike email matches partially.
    fake.seed([
        ScUser::new(&people[1].email.to_uppercase(), "Old", "Name"),
        ScUser::new(&people[4].email, "Other", "Name"),
        ScUser::new(&format!("x{}", people[2].email), "Look", "Alike"),
    ]);
    let seeded: Vec<String> = fake.users().iter().map(|u| u.id.clone()).collect();
    let ws = workspace(&fake, "");
    ws.write_people(&people);

    let (code, doc) = sync(&ws, &fake);
    assert_eq!(code, 0, "{doc}");
    let result = &provider(&doc, "saleschat")["result"];
    assert_eq!(result["applied"]["create"], 6, "{result}");
    assert_eq!(result["failed"], 0);
    assert_eq!(result["manual"], 0);
    assert_eq!(fake.users().len(), 7, "adopted, not duplicated");
    assert!(fake.duplicates().is_empty());
    assert_no_violations(&fake.schema_violations());

    // Four creates, each with its own strong password, asking for a new one at login.
    let passwords = fake.passwords();
    assert_eq!(passwords.len(), 6, "4 created + 2 refused as existing");
    let mut distinct = passwords.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), passwords.len(), "a password was reused");
    assert!(passwords.iter().all(|p| strong(p)), "{}", passwords.len());
    for u in fake.users().iter().filter(|u| !seeded.contains(&u.id)) {
        assert!(u.ask_user_to_update_password_on_login, "{u:?}");
    }
    for r in fake.requests() {
        assert_eq!(
            r.authorization.as_deref(),
            Some(format!("Bearer {}", fake.token()).as_str())
        );
    }

    // Every snapshot row keeps saleschat's user id.
    let rows = snapshot_with_ids(&ws.state(), "saleschat").await;
    assert_eq!(rows.len(), 6);
    for (external_id, state, vendor_id) in &rows {
        let p = people.iter().find(|p| &p.id == external_id).unwrap();
        let u = fake.user_by_email(&p.email).unwrap();
        assert_eq!(vendor_id.as_deref(), Some(u.id.as_str()));
        assert_eq!(*state, AccountState::Active);
    }
    assert_eq!(rows[1].2.as_deref(), Some(seeded[0].as_str()));

    fake.clear_requests();
    let (code, doc) = sync(&ws, &fake);
    assert_eq!(code, 0, "{doc}");
    assert!(op_kinds(&doc, "saleschat").is_empty(), "{doc}");
    assert!(fake.requests().is_empty(), "a rerun sends nothing");
}

#[tokio::test]
async fn disable_and_enable_round_trip_by_user_id() {
    let fake = start().await;
    let ws = workspace(&fake, "");
    let mut people: Vec<Person> = (0..3).map(Person::new).collect();
    ws.write_people(&people);
    assert_eq!(sync(&ws, &fake).0, 0);
    let id1 = fake.user_by_email(&people[1].email).unwrap().id;
    let leaver = people.remove(2);
    let leaver_id = fake.user_by_email(&leaver.email).unwrap().id;

    people[1].status = "terminated".into();
    ws.write_people(&people);
    fake.clear_requests();
    let (code, doc) = sync(&ws, &fake);
    assert_eq!(code, 0, "{doc}");
    assert_eq!(
        provider(&doc, "saleschat")["result"]["applied"]["disable"],
        2
    );
    assert_eq!(fake.count("POST", &format!("/user/{id1}/disable")), 1);
    assert_eq!(fake.count("POST", &format!("/user/{leaver_id}/disable")), 1);
    assert_eq!(fake.count("GET", "/user"), 0, "ids known: no find");
    assert!(fake.user_by_email(&people[1].email).unwrap().disabled);
    assert!(fake.user_by_email(&leaver.email).unwrap().disabled);
    let rows = snapshot_with_ids(&ws.state(), "saleschat").await;
    assert!(rows.contains(&(
        people[1].id.clone(),
        AccountState::Disabled,
        Some(id1.clone())
    )));

    people[1].status = "active".into();
    ws.write_people(&people);
    let (code, doc) = sync(&ws, &fake);
    assert_eq!(code, 0, "{doc}");
    assert_eq!(
        provider(&doc, "saleschat")["result"]["applied"]["enable"],
        1
    );
    assert_eq!(fake.count("POST", &format!("/user/{id1}/enable")), 1);
    assert!(!fake.user_by_email(&people[1].email).unwrap().disabled);
    assert!(
        fake.user_by_email(&leaver.email).unwrap().disabled,
        "the leaver stays disabled"
    );
    assert_no_violations(&fake.schema_violations());
}

#[tokio::test]
async fn on_remove_delete_deletes_and_disable_is_the_default() {
    let fake = start().await;
    let ws = workspace(&fake, "    on_remove: delete\n");
    let mut people: Vec<Person> = (0..2).map(Person::new).collect();
    ws.write_people(&people);
    assert_eq!(sync(&ws, &fake).0, 0);
    let leaver = people.remove(1);
    let id = fake.user_by_email(&leaver.email).unwrap().id;
    ws.write_people(&people);
    let (code, doc) = sync(&ws, &fake);
    assert_eq!(code, 0, "{doc}");
    assert_eq!(
        provider(&doc, "saleschat")["result"]["applied"]["delete"],
        1
    );
    assert_eq!(fake.count("POST", &format!("/user/{id}/delete")), 1);
    assert_eq!(fake.count("POST", "/disable"), 0);
    assert!(fake.user_by_email(&leaver.email).is_none());
    assert_eq!(
        snapshot_with_ids(&ws.state(), "saleschat").await.len(),
        1,
        "the deleted user's row is gone"
    );
    assert_holds(&fake, &people);
}

#[tokio::test]
async fn a_user_created_outside_the_org_is_manual_action_and_status_lists_it() {
    let fake = start().await;
    let ws = workspace(&fake, "");
    let people: Vec<Person> = (0..3).map(Person::new).collect();
    ws.write_people(&people);
    fake.create_without_org_next(1);
    let (code, doc) = sync(&ws, &fake);
    assert_eq!(code, 0, "manual action is not a failure: {doc}");
    let result = &provider(&doc, "saleschat")["result"];
    assert_eq!(result["manual"], 1, "{result}");
    assert_eq!(result["applied"]["create"], 2);
    assert_eq!(result["failed"], 0);
    let orphan = fake.users().into_iter().find(|u| !u.in_org).unwrap();
    let rows = snapshot_with_ids(&ws.state(), "saleschat").await;
    let row = rows
        .iter()
        .find(|r| r.1 == AccountState::Manual)
        .expect("a manual row");
    assert_eq!(row.2.as_deref(), Some(orphan.id.as_str()), "the id is kept");

    let (code, text, _) = ws.run(&["status"]);
    assert_eq!(code, 0);
    assert!(text.contains("manual action"), "{text}");
    assert!(text.contains(&row.0), "{text}");
    assert!(
        text.contains("did not add the user to the organisation"),
        "{text}"
    );

    // Next pass: reported again, not created again.
    fake.clear_requests();
    let (code, doc) = sync(&ws, &fake);
    assert_eq!(code, 0, "{doc}");
    assert!(op_kinds(&doc, "saleschat").is_empty(), "{doc}");
    assert_eq!(
        provider(&doc, "saleschat")["manual"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert!(fake.requests().is_empty());
    assert_no_violations(&fake.schema_violations());
}

#[tokio::test]
async fn a_vendor_error_body_is_shown_and_the_next_run_recovers() {
    let fake = start().await;
    let ws = workspace(&fake, "");
    let people: Vec<Person> = (0..1).map(Person::new).collect();
    ws.write_people(&people);
    // A 403 is the provider's failure (credentials), said once, with the vendor's words.
    fake.fail_next(1, 403);
    let (code, doc) = sync(&ws, &fake);
    assert_eq!(code, 2, "{doc}");
    let error = provider(&doc, "saleschat")["result"]["provider_error"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        error.contains("credentials rejected (HTTP 403)")
            && error.contains("saleschat answered 403"),
        "{error}"
    );
    assert!(
        error.contains("Injected failure: the fake was told to fail this request"),
        "error_message and error_description: {error}"
    );
    assert!(snapshot_with_ids(&ws.state(), "saleschat").await.is_empty());

    // A 422 that is not an existing email: find has nobody to adopt, the error says so.
    fake.fail_next(1, 422);
    let (code, doc) = sync(&ws, &fake);
    assert_eq!(code, 2, "{doc}");
    let error = provider(&doc, "saleschat")["result"]["failures"][0]["error"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        error.contains("saleschat answered 422: Injected failure"),
        "{error}"
    );
    assert!(error.contains("no member with"), "{error}");

    let (code, doc) = sync(&ws, &fake);
    assert_eq!(code, 0, "{doc}");
    assert_holds(&fake, &people);
}

#[tokio::test]
async fn a_name_change_is_manual_in_the_plan_and_sends_nothing() {
    let fake = start().await;
    let ws = workspace(&fake, "");
    let mut people: Vec<Person> = (0..2).map(Person::new).collect();
    ws.write_people(&people);
    assert_eq!(sync(&ws, &fake).0, 0);
    people[0].last = "Renamed".into();
    ws.write_people(&people);
    fake.clear_requests();
    let (code, doc) = sync(&ws, &fake);
    assert_eq!(code, 0, "{doc}");
    assert!(op_kinds(&doc, "saleschat").is_empty(), "{doc}");
    let manual = provider(&doc, "saleschat")["manual"].as_array().unwrap();
    assert_eq!(manual.len(), 1, "{doc}");
    assert_eq!(manual[0]["external_id"], people[0].id.as_str());
    assert!(
        manual[0]["reason"]
            .as_str()
            .unwrap()
            .contains("cannot change last_name"),
        "{doc}"
    );
    assert!(fake.requests().is_empty(), "nothing is sent");
    assert_eq!(
        fake.user_by_email(&people[0].email).unwrap().last_name,
        Person::new(0).last
    );
}

#[tokio::test]
async fn an_email_change_with_recreate_creates_the_new_user_and_disables_the_old() {
    let fake = start().await;
    let ws = workspace(&fake, "    on_email_change: recreate\n");
    let mut people: Vec<Person> = (0..2).map(Person::new).collect();
    ws.write_people(&people);
    assert_eq!(sync(&ws, &fake).0, 0);
    let old = fake.user_by_email(&people[0].email).unwrap();
    people[0].email = "renamed0@corp.example".into();
    ws.write_people(&people);
    let (code, doc) = sync(&ws, &fake);
    assert_eq!(code, 0, "{doc}");
    assert_eq!(
        provider(&doc, "saleschat")["result"]["applied"]["recreate"],
        1
    );
    let new = fake.user_by_email(&people[0].email).unwrap();
    assert!(!new.disabled && new.in_org);
    assert!(fake.user_by_email(&old.email).unwrap().disabled);
    let rows = snapshot_with_ids(&ws.state(), "saleschat").await;
    assert!(rows.contains(&(people[0].id.clone(), AccountState::Active, Some(new.id))));
    assert_no_violations(&fake.schema_violations());
}

#[tokio::test]
async fn killed_mid_run_and_rerun_the_vendor_holds_the_source_once() {
    for kill_at in [3usize, 20] {
        let fake = start().await;
        let ws = workspace(&fake, "    rate_limit: { max_concurrency: 2 }\n");
        let people: Vec<Person> = (0..30).map(Person::new).collect();
        ws.write_people(&people);
        fake.delay(Duration::from_millis(40));
        kill_when(ws.spawn_sync(), || fake.requests().len() >= kill_at).await;
        let created_before = fake.users().len();
        fake.delay(Duration::ZERO);

        let (code, doc) = sync(&ws, &fake);
        assert_eq!(code, 0, "killed at request {kill_at}: {doc}");
        assert_holds(&fake, &people);
        assert!(created_before < 30, "killed too late to test anything");
        let rows = snapshot_with_ids(&ws.state(), "saleschat").await;
        assert_eq!(rows.len(), 30);
        assert!(rows
            .iter()
            .all(|(_, s, id)| id.is_some() && *s == AccountState::Active));
        let passwords = fake.passwords();
        assert!(passwords.iter().all(|p| strong(p)));
    }
}

#[tokio::test]
async fn a_429_is_waited_out_not_failed_and_nothing_is_sent_before_the_reset() {
    let window = Duration::from_millis(1500);
    let fake = FakeSaleschat::start(FakeSaleschatOptions {
        limit: 4,
        window,
        ..FakeSaleschatOptions::default()
    })
    .await;
    // Somebody else spends the window first: rosterd's first request gets a 429.
    let client = reqwest::Client::new();
    for _ in 0..4 {
        let resp = client
            .get(format!("{}{}?q=x", fake.base_url(), fake.users_path()))
            .bearer_auth(fake.token())
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
    }
    let window_start = fake.requests()[0].at;
    let ws = workspace(&fake, "    rate_limit: { max_concurrency: 1 }\n");
    let people: Vec<Person> = (0..2).map(Person::new).collect();
    ws.write_people(&people);

    let (code, doc) = sync(&ws, &fake);
    assert_eq!(code, 0, "a 429 is not a failure: {doc}");
    assert_holds(&fake, &people);
    let requests = fake.requests();
    let first_429 = first_429_then_waited(
        requests.iter().map(|r| (r.at, r.status == 429)),
        window_start + window,
    );
    assert_eq!(first_429, 4, "the first request after the spent window");
    // Two creates and their finds fit in the next window: one 429 in all.
    assert_eq!(requests.iter().filter(|r| r.status == 429).count(), 1);
    assert_eq!(provider(&doc, "saleschat")["result"]["rate_limited"], 1);
}
