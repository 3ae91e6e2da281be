//! `rosterd sync` against a stateful fake vyte on 127.0.0.1: adoption by email from
//! one listing per run, ids learned from the list when a create answers `{}`, updates
//! by `_id`, leavers reported as manual action (vyte cannot disable), the batch
//! endpoint, vendor error messages, and a SIGKILL in the middle of a run.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::support;

use std::time::Duration;

use support::fake_server::{assert_no_violations, first_429_then_waited, FakeVendor};
use support::fake_vyte::{FakeVyte, FakeVyteOptions, VyteUser, BATCH_PATH, USERS_PATH};
use support::process::kill_when;
use support::workspace::{op_kinds, provider, Person, Workspace};

fn workspace(fake: &FakeVyte, extra: &str) -> Workspace {
    Workspace::vyte(&fake.base_url(), fake.api_key(), extra)
}

/// Whether the source gives this person a language and a timezone (even ids do).
fn has_locale(p: &Person) -> bool {
    p.id.bytes().last().is_some_and(|b| b % 2 == 0)
}

/// The source with vyte's optional attributes: language `fr` and timezone
/// `Europe/Paris` for [`has_locale`] people, none for the others.
fn write_people(ws: &Workspace, people: &[Person]) {
    let mut csv = String::from("id,email,first,last,phone,status,language,timezone\n");
    for p in people {
        let (lang, tz) = if has_locale(p) {
            ("fr", "Europe/Paris")
        } else {
            ("", "")
        };
        csv.push_str(&format!(
            "{},{},{},{},{},{},{lang},{tz}\n",
            p.id, p.email, p.first, p.last, p.phone, p.status
        ));
    }
    std::fs::write(ws.path().join("users.csv"), csv).unwrap();
}

/// The fake holds each of `people` once, with its fields and extid, and nothing broke
/// the body shape.
fn assert_holds(fake: &FakeVyte, people: &[Person]) {
    assert!(fake.duplicates().is_empty(), "{:?}", fake.duplicates());
    for p in people {
        let u = fake
            .user_by_email(&p.email)
            .unwrap_or_else(|| panic!("{} missing", p.email));
        assert_eq!(u.extid.as_deref(), Some(p.id.as_str()), "{u:?}");
        assert_eq!(
            (u.first_name.as_str(), u.last_name.as_str()),
            (p.first.as_str(), p.last.as_str())
        );
        if has_locale(p) {
            assert_eq!(u.language.as_deref(), Some("fr"));
            assert_eq!(u.timezone.as_deref(), Some("Europe/Paris"));
        }
    }
    assert_no_violations(&fake.schema_violations());
}

#[tokio::test]
async fn first_run_adopts_existing_accounts_by_email_lists_once_and_a_rerun_sends_nothing() {
    let fake = FakeVyte::start().await;
    let people: Vec<Person> = (0..6).map(Person::new).collect();
    let old1 = VyteUser::new(&people[1].email.to_uppercase(), "Old", "Name");
    let old4 = VyteUser::new(&people[4].email, "Other", "Name");
    let (id1, id4) = (old1.id.clone(), old4.id.clone());
    fake.seed([old1, old4]);
    let ws = workspace(&fake, "");
    write_people(&ws, &people);

    let (code, doc) = ws.sync();
    assert_eq!(code, 0, "{doc}");
    let result = &provider(&doc, "vyte")["result"];
    assert_eq!(result["applied"]["create"], 6, "{result}");
    assert_eq!(result["failed"], 0);
    assert_eq!(fake.users().len(), 6, "adopted, not duplicated");
    assert_holds(&fake, &people);
    assert_eq!(fake.user_by_email(&people[1].email).unwrap().id, id1);
    assert_eq!(
        fake.user_by_email(&people[4].email).unwrap().first_name,
        people[4].first
    );
    assert_eq!(fake.list_count(), 1, "the list is read once per run");
    assert_eq!(fake.count("POST", USERS_PATH), 4);
    assert_eq!(fake.count("PUT", &format!("{USERS_PATH}/{id1}")), 1);
    assert_eq!(fake.count("PUT", &format!("{USERS_PATH}/{id4}")), 1);
    // Every create carries the stable key; language and timezone when the source has them.
    let create = fake
        .requests()
        .into_iter()
        .find(|r| r.method == "POST" && r.body["user"]["email"] == people[0].email.as_str())
        .unwrap();
    assert_eq!(
        create.body["user"]["account"]["organization"]["extid"],
        people[0].id.as_str()
    );
    assert_eq!(create.body["user"]["language"], "fr");
    assert_eq!(create.body["user"]["timezone"], "Europe/Paris");

    fake.clear_requests();
    let (code, doc) = ws.sync();
    assert_eq!(code, 0, "{doc}");
    assert!(op_kinds(&doc, "vyte").is_empty(), "{doc}");
    assert!(
        fake.requests().is_empty(),
        "a rerun with nothing to do sends nothing"
    );
}

#[tokio::test]
async fn an_empty_create_answer_learns_the_id_from_the_list_and_a_rename_puts_by_it() {
    let fake = FakeVyte::start().await;
    fake.empty_create_response(true);
    let ws = workspace(&fake, "");
    let mut people: Vec<Person> = (0..1).map(Person::new).collect();
    write_people(&ws, &people);
    let (code, doc) = ws.sync();
    assert_eq!(code, 0, "{doc}");
    assert_eq!(
        fake.list_count(),
        2,
        "listed, then listed again to learn the id"
    );
    let id = fake.user_by_email(&people[0].email).unwrap().id;

    fake.clear_requests();
    people[0].last = "Renamed".into();
    write_people(&ws, &people);
    let (code, doc) = ws.sync();
    assert_eq!(code, 0, "{doc}");
    assert_eq!(op_kinds(&doc, "vyte"), ["update"]);
    let writes = fake.writes();
    assert_eq!(writes.len(), 1, "{writes:?}");
    assert_eq!(
        (writes[0].method.as_str(), writes[0].path.clone()),
        ("PUT", format!("{USERS_PATH}/{id}"))
    );
    assert_eq!(fake.list_count(), 0, "the id was kept: no lookup needed");
    assert_holds(&fake, &people);
    assert_eq!(fake.users().len(), 1);
}

#[tokio::test]
async fn ids_vyte_never_told_are_found_by_email_when_an_update_needs_them() {
    let fake = FakeVyte::start().await;
    fake.empty_create_response(true);
    let ws = workspace(&fake, "    rate_limit: { max_concurrency: 1 }\n");
    let mut people: Vec<Person> = (0..4).map(Person::new).collect();
    write_people(&ws, &people);
    let (code, doc) = ws.sync();
    assert_eq!(code, 0, "{doc}");
    assert!(fake.list_count() <= 2, "at most one refresh per run");
    assert_holds(&fake, &people);

    fake.clear_requests();
    for p in &mut people {
        p.first = format!("{}x", p.first);
    }
    write_people(&ws, &people);
    let (code, doc) = ws.sync();
    assert_eq!(code, 0, "{doc}");
    assert_eq!(op_kinds(&doc, "vyte"), ["update"; 4]);
    assert!(fake.list_count() <= 1);
    for p in &people {
        let id = fake.user_by_email(&p.email).unwrap().id;
        assert_eq!(
            fake.count("PUT", &format!("{USERS_PATH}/{id}")),
            1,
            "{}",
            p.email
        );
    }
    assert_holds(&fake, &people);
    assert_eq!(fake.users().len(), 4);
}

#[tokio::test]
async fn a_leaver_is_manual_action_every_run_and_nothing_is_sent_for_it() {
    let fake = FakeVyte::start().await;
    let ws = workspace(&fake, "");
    let mut people: Vec<Person> = (0..3).map(Person::new).collect();
    write_people(&ws, &people);
    assert_eq!(ws.sync().0, 0);

    let leaver = people.remove(2);
    people[0].status = "terminated".into();
    let terminated = people[0].clone();
    write_people(&ws, &people);
    for run in 0..2 {
        fake.clear_requests();
        let (code, doc) = ws.sync();
        assert_eq!(code, 0, "run {run}: {doc}");
        let p = provider(&doc, "vyte");
        assert!(op_kinds(&doc, "vyte").is_empty(), "run {run}: {doc}");
        let mut manual: Vec<(String, String)> = p["manual"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| {
                assert!(
                    m["reason"].as_str().unwrap().contains("no call to disable"),
                    "{m}"
                );
                (
                    m["external_id"].as_str().unwrap().to_string(),
                    m["needed"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        manual.sort();
        assert_eq!(
            manual,
            [
                (terminated.id.clone(), "disable".to_string()),
                (leaver.id.clone(), "disable".to_string())
            ],
            "run {run}"
        );
        assert!(fake.requests().is_empty(), "run {run}: nothing sent");
    }
    // The text summary says so too.
    let (code, stdout, _) = ws.run(&["sync"]);
    assert_eq!(code, 0);
    let line = stdout
        .lines()
        .find(|l| l.contains("manual") && l.contains(&leaver.email))
        .unwrap_or_else(|| panic!("{stdout}"));
    assert!(line.contains("needs disable"), "{line}");
    assert!(fake.user_by_email(&leaver.email).is_some());

    // `rosterd status` lists both from the last pass's plan, with the reason.
    let (code, text, _) = ws.run(&["status"]);
    assert_eq!(code, 0, "{text}");
    for p in [&leaver, &terminated] {
        let line = text
            .lines()
            .find(|l| l.contains(&p.id))
            .unwrap_or_else(|| panic!("{} not in: {text}", p.id));
        assert!(line.contains("manual action"), "{line}");
        assert!(line.contains("needs disable"), "{line}");
        assert!(line.contains("no call to disable"), "{line}");
    }

    // Back in the source as they were: nothing to do at vyte, nothing listed.
    people[0].status = "active".into();
    write_people(&ws, &[people.clone(), vec![leaver]].concat());
    let (code, doc) = ws.sync();
    assert_eq!(code, 0, "{doc}");
    assert!(provider(&doc, "vyte")["manual"]
        .as_array()
        .unwrap()
        .is_empty());
    let (_, text, _) = ws.run(&["status"]);
    assert!(text.contains("nothing needs attention"), "{text}");
}

#[tokio::test]
async fn batch_true_sends_creates_through_the_batch_endpoint() {
    let fake = FakeVyte::start().await;
    fake.empty_create_response(true);
    let people: Vec<Person> = (0..7).map(Person::new).collect();
    let old = VyteUser::new(&people[3].email, "Old", "Name");
    let old_id = old.id.clone();
    fake.seed([old]);
    let ws = workspace(&fake, "    batch: true\n");
    write_people(&ws, &people);
    let (code, doc) = ws.sync();
    assert_eq!(code, 0, "{doc}");
    assert_eq!(provider(&doc, "vyte")["result"]["applied"]["create"], 7);
    let batches: Vec<usize> = fake.requests().iter().filter_map(|r| r.batch_len).collect();
    assert_eq!(
        batches,
        [6],
        "the listed account is adopted, the rest batched"
    );
    assert_eq!(fake.count("POST", BATCH_PATH), 1);
    assert_eq!(fake.count("POST", USERS_PATH), 0);
    assert_eq!(fake.count("PUT", &format!("{USERS_PATH}/{old_id}")), 1);
    assert_eq!(
        fake.list_count(),
        2,
        "listed, then once more to learn the ids"
    );
    assert_holds(&fake, &people);
    assert_eq!(fake.users().len(), 7);

    // The ids were learned: renames are PUTs by id, with no lookup.
    fake.clear_requests();
    let renamed: Vec<Person> = people
        .iter()
        .cloned()
        .map(|mut p| {
            p.last = format!("{}-r", p.last);
            p
        })
        .collect();
    write_people(&ws, &renamed);
    let (code, doc) = ws.sync();
    assert_eq!(code, 0, "{doc}");
    assert_eq!(fake.list_count(), 0);
    assert_eq!(fake.count("PUT", &format!("{USERS_PATH}/{old_id}")), 1);
    assert_holds(&fake, &renamed);
}

#[tokio::test]
async fn a_vendor_error_message_surfaces_and_the_create_is_retried_next_run() {
    let fake = FakeVyte::start().await;
    let ws = workspace(&fake, "");
    let people: Vec<Person> = (0..1).map(Person::new).collect();
    write_people(&ws, &people);
    fake.fail_writes(1, 422, "timezone Mars/Olympus is not a known timezone");
    let (code, doc) = ws.sync();
    assert_eq!(code, 2, "{doc}");
    let result = &provider(&doc, "vyte")["result"];
    assert_eq!(result["failed"], 1);
    let error = result["failures"][0]["error"].as_str().unwrap();
    assert!(error.contains("422"), "{error}");
    assert!(
        error.contains("Mars/Olympus is not a known timezone"),
        "{error}"
    );
    assert!(fake.users().is_empty());

    let (code, doc) = ws.sync();
    assert_eq!(code, 0, "{doc}");
    assert_holds(&fake, &people);
    assert_eq!(fake.users().len(), 1);
}

#[tokio::test]
async fn killed_mid_run_and_rerun_vyte_holds_the_source_once() {
    for kill_at in [3usize, 12] {
        let fake = FakeVyte::start().await;
        fake.empty_create_response(kill_at > 5);
        let ws = workspace(&fake, "    rate_limit: { max_concurrency: 2 }\n");
        let people: Vec<Person> = (0..40).map(Person::new).collect();
        write_people(&ws, &people);
        fake.delay(Duration::from_millis(60));
        kill_when(ws.spawn_sync(), || fake.requests().len() >= kill_at).await;
        let before = fake.users().len();
        fake.delay(Duration::ZERO);

        let (code, doc) = ws.sync();
        assert_eq!(code, 0, "killed at request {kill_at}: {doc}");
        assert!(before < 40, "killed too late to test anything");
        assert_eq!(fake.users().len(), 40, "killed at request {kill_at}");
        assert_holds(&fake, &people);
        assert_eq!(
            provider(&doc, "vyte")["result"]["failed"],
            0,
            "killed at request {kill_at}"
        );
        fake.clear_requests();
        let (code, doc) = ws.sync();
        assert_eq!(code, 0);
        assert!(
            op_kinds(&doc, "vyte").is_empty(),
            "killed at request {kill_at}: {doc}"
        );
        assert!(fake.requests().is_empty());
    }
}

#[tokio::test]
async fn a_429_with_retry_after_is_waited_out_and_nothing_is_sent_before_it() {
    let window = Duration::from_millis(1200);
    let fake = FakeVyte::start_with(FakeVyteOptions {
        limit: 4,
        window,
        ..FakeVyteOptions::default()
    });
    let people: Vec<Person> = (0..3).map(Person::new).collect();
    fake.seed([VyteUser::new(&people[2].email, "Old", "Name")]);
    // Somebody else spends the window first: rosterd's first request gets a 429 with
    // only `Retry-After` (vyte tells nothing in advance).
    let client = reqwest::Client::new();
    for _ in 0..4 {
        let resp = client
            .get(format!("{}{USERS_PATH}", fake.base_url()))
            .header("Authorization", fake.api_key())
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
    }
    let window_start = fake.requests()[0].at;
    let ws = workspace(&fake, "    rate_limit: { max_concurrency: 1 }\n");
    write_people(&ws, &people);

    let (code, doc) = ws.sync();
    assert_eq!(code, 0, "a 429 is not a failure: {doc}");
    assert_holds(&fake, &people);
    assert_eq!(fake.users().len(), 3);
    let requests = fake.requests();
    let first_429 = first_429_then_waited(
        requests.iter().map(|r| (r.at, r.status == 429)),
        window_start + window,
    );
    assert_eq!(first_429, 4);
    // The list, two creates and the adoption's PUT fit in the next window.
    assert_eq!(requests.len(), 4 + 1 + 4, "{requests:?}");
    assert_eq!(provider(&doc, "vyte")["result"]["rate_limited"], 1);
}
