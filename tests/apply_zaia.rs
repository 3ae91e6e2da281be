//! `rosterd sync` against a stateful fake zaia on 127.0.0.1: adoption of existing
//! users (by externalId and by identifier, through the paged list), creates with all
//! six fields, update / block / unblock round trips by zaia's id, the vendor's error
//! message in the summary, and a SIGKILL in the middle of an apply.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::support;

use std::time::Duration;

use rosterd::store::AccountState;
use serde_json::Value;
use support::fake_server::{assert_no_violations, first_429_then_waited, FakeVendor};
use support::fake_zaia::{FakeZaia, FakeZaiaOptions, ZaiaUser, CREATE_FIELDS, USERS_PATH};
use support::process::kill_when;
use support::state::snapshot_with_ids;
use support::workspace::{op_kinds, provider, Person, Workspace};

fn workspace(fake: &FakeZaia, extra: &str) -> Workspace {
    Workspace::zaia(&fake.base_url(), fake.channel_id(), fake.api_key(), extra)
}

/// Users of the configured channel.
fn channel_users(fake: &FakeZaia) -> Vec<ZaiaUser> {
    fake.users()
        .into_iter()
        .filter(|u| u.channel_id == fake.channel_id())
        .collect()
}

/// The channel holds exactly these people, once each, unblocked, with their fields;
/// `others` more users (seeded, not in the source) may be there too.
fn assert_holds(fake: &FakeZaia, people: &[Person], others: usize) {
    let users = channel_users(fake);
    assert_eq!(users.len(), people.len() + others, "{users:#?}");
    for p in people {
        let held: Vec<&ZaiaUser> = users
            .iter()
            .filter(|u| u.external_id.as_deref() == Some(p.id.as_str()))
            .collect();
        assert_eq!(held.len(), 1, "{} held {} times", p.id, held.len());
        let u = held[0];
        assert_eq!(u.identifier.as_deref(), Some(p.email.as_str()));
        assert_eq!(
            u.name.as_deref(),
            Some(format!("{} {}", p.first, p.last).as_str())
        );
        assert!(!u.blocked, "{} is blocked", p.id);
        assert_eq!(
            (u.external_user_group_id.as_ref(), u.tier_id.as_ref()),
            (None, None)
        );
    }
    assert_no_violations(&fake.schema_violations());
}

#[tokio::test]
async fn existing_users_are_adopted_and_creates_send_all_six_fields() {
    let fake = FakeZaia::start(FakeZaiaOptions::default());
    let people: Vec<Person> = (1..=5).map(Person::new).collect();
    let by_external_id =
        ZaiaUser::new(Some(&people[1].id), Some("old@corp.example"), "Old Name").blocked(true);
    let by_identifier = ZaiaUser::new(None, Some(&people[3].email.to_uppercase()), "Other Name");
    // Same externalId, another channel: not ours, never adopted.
    let elsewhere = ZaiaUser::new(Some(&people[0].id), Some("x@corp.example"), "Else Where")
        .in_channel("11111111-2222-4333-8444-555555555555");
    fake.seed([
        by_external_id.clone(),
        by_identifier.clone(),
        elsewhere.clone(),
    ]);
    let ws = workspace(&fake, "");
    ws.write_people(&people);

    let (code, doc) = ws.sync();
    assert_eq!(code, 0, "{doc}");
    assert_eq!(provider(&doc, "zaia")["result"]["applied"]["create"], 5);
    assert_holds(&fake, &people, 0);
    // Adopted in place: same ids, brought up to date and unblocked.
    let a = fake.user(by_external_id.id).unwrap();
    assert_eq!(a.identifier.as_deref(), Some(people[1].email.as_str()));
    assert!(!a.blocked);
    let b = fake.user(by_identifier.id).unwrap();
    assert_eq!(b.external_id.as_deref(), Some(people[3].id.as_str()));
    assert_eq!(fake.user(elsewhere.id).unwrap(), elsewhere, "untouched");

    // Three real creates, each with the six fields, the empty ones as null.
    let posts: Vec<Value> = fake
        .requests()
        .into_iter()
        .filter(|r| r.method == "POST")
        .map(|r| r.body)
        .collect();
    assert_eq!(posts.len(), 3, "{posts:?}");
    for body in &posts {
        let keys: Vec<&String> = body.as_object().unwrap().keys().collect();
        assert_eq!(keys.len(), 6, "{body}");
        for f in CREATE_FIELDS {
            assert!(body.get(f).is_some(), "{f} missing from {body}");
        }
        assert_eq!(body["channelId"], fake.channel_id());
        assert!(body["externalUserGroupId"].is_null() && body["tierId"].is_null());
    }
    // Every search is scoped to the channel, in pages of at most 100.
    for r in fake.requests().iter().filter(|r| r.method == "GET") {
        assert_eq!(r.param("channelIds"), Some(fake.channel_id()));
        assert!(r.param("pageSize").unwrap().parse::<usize>().unwrap() <= 100);
    }
    // The snapshot knows zaia's ids.
    let rows = snapshot_with_ids(&ws.state(), "zaia").await;
    assert_eq!(rows.len(), 5);
    for (external_id, state, vendor_id) in &rows {
        assert_eq!(*state, AccountState::Active);
        let u = channel_users(&fake)
            .into_iter()
            .find(|u| u.external_id.as_deref() == Some(external_id.as_str()))
            .unwrap();
        assert_eq!(vendor_id.as_deref(), Some(u.id.to_string().as_str()));
    }

    fake.clear_requests();
    let (code, doc) = ws.sync();
    assert_eq!(code, 0, "{doc}");
    assert!(op_kinds(&doc, "zaia").is_empty(), "{doc}");
    assert!(fake.requests().is_empty(), "a rerun sends nothing");
}

#[tokio::test]
async fn rename_disable_and_enable_round_trip_by_zaias_id() {
    let fake = FakeZaia::start(FakeZaiaOptions::default());
    let ws = workspace(&fake, "");
    let mut people: Vec<Person> = (1..=4).map(Person::new).collect();
    ws.write_people(&people);
    assert_eq!(ws.sync().0, 0);
    assert_holds(&fake, &people, 0);

    people[0].last = "Renamed".into();
    people[1].status = "terminated".into();
    let leaver = people.remove(3);
    ws.write_people(&people);
    fake.clear_requests();
    let (code, doc) = ws.sync();
    assert_eq!(code, 0, "{doc}");
    let applied = &provider(&doc, "zaia")["result"]["applied"];
    assert_eq!(
        (applied["update"].as_u64(), applied["disable"].as_u64()),
        (Some(1), Some(2)),
        "{doc}"
    );
    // Known ids: PATCHes only, no searches.
    let writes = fake.requests();
    assert!(writes.iter().all(|r| r.method == "PATCH"), "{writes:?}");
    let renamed = fake.user_by_external_id(&people[0].id).unwrap();
    assert_eq!(renamed.name.as_deref(), Some("Fn1 Renamed"));
    assert!(fake.user_by_external_id(&people[1].id).unwrap().blocked);
    let gone = fake.user_by_external_id(&leaver.id).unwrap();
    assert!(gone.blocked);
    let disables: Vec<&Value> = writes
        .iter()
        .filter(|r| r.body.get("blocked").is_some())
        .map(|r| &r.body)
        .collect();
    assert_eq!(disables.len(), 2);
    assert!(disables
        .iter()
        .all(|b| **b == serde_json::json!({"blocked": true})));
    let rows = snapshot_with_ids(&ws.state(), "zaia").await;
    assert!(rows
        .iter()
        .any(|(id, s, _)| *id == people[1].id && *s == AccountState::Disabled));

    people[1].status = "active".into();
    ws.write_people(&people);
    let (code, doc) = ws.sync();
    assert_eq!(code, 0, "{doc}");
    assert_eq!(provider(&doc, "zaia")["result"]["applied"]["enable"], 1);
    assert!(!fake.user_by_external_id(&people[1].id).unwrap().blocked);
    assert!(
        fake.user_by_external_id(&leaver.id).unwrap().blocked,
        "the leaver stays blocked"
    );
    assert_holds(&fake, &people, 1);

    fake.clear_requests();
    let (code, doc) = ws.sync();
    assert_eq!(code, 0);
    assert!(op_kinds(&doc, "zaia").is_empty(), "{doc}");
    assert!(fake.requests().is_empty());
}

#[tokio::test]
async fn zaias_error_message_is_shown_and_the_run_exits_2() {
    // rosterd's channel is one zaia does not have: the create answers 404 with
    // zaia's {code, message, …} body.
    let fake = FakeZaia::start(FakeZaiaOptions {
        channel_ids: vec!["7a3e5b1c-0d2f-4e6a-9b8c-1d2e3f4a5b6c".into()],
        ..FakeZaiaOptions::default()
    });
    let ws = Workspace::zaia(
        &fake.base_url(),
        "9c8b7a6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d",
        fake.api_key(),
        "",
    );
    ws.write_people(&[Person::new(1)]);
    let (code, doc) = ws.sync();
    assert_eq!(code, 2, "{doc}");
    let result = &provider(&doc, "zaia")["result"];
    assert_eq!(result["failed"], 1);
    let error = result["failures"][0]["error"].as_str().unwrap();
    assert!(error.contains("zaia answered 404"), "{error}");
    assert!(
        error.contains("Channel not found. (CHANNEL_NOT_FOUND)"),
        "{error}"
    );
    assert!(snapshot_with_ids(&ws.state(), "zaia").await.is_empty());
    assert!(fake.users().is_empty());

    // A 4xx on a search fails the create before anything is sent; the next run
    // carries it out.
    let fake = FakeZaia::start(FakeZaiaOptions::default());
    let ws = workspace(&fake, "");
    let people = [Person::new(1)];
    ws.write_people(&people);
    fake.fail_next(1, 422);
    let (code, doc) = ws.sync();
    assert_eq!(code, 2, "{doc}");
    let error = provider(&doc, "zaia")["result"]["failures"][0]["error"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(error.contains("Injected failure (INJECTED)"), "{error}");
    assert_eq!(fake.count("POST", USERS_PATH), 0);
    let (code, doc) = ws.sync();
    assert_eq!(code, 0, "{doc}");
    assert_holds(&fake, &people, 0);
}

#[tokio::test]
async fn adoption_pages_past_the_first_hundred_search_hits() {
    let fake = FakeZaia::start(FakeZaiaOptions::default());
    let people: Vec<Person> = (1..=3).map(Person::new).collect();
    // 150 users the externalId search for people[0] also hits, before the real one.
    let mut seeds: Vec<ZaiaUser> = (0..150)
        .map(|i| {
            ZaiaUser::new(
                Some(&format!("{}-old-{i}", people[0].id)),
                Some(&format!("old{i}@corp.example")),
                "Old Timer",
            )
        })
        .collect();
    // 120 users the identifier search for people[1] hits, before the real one.
    seeds.extend((0..120).map(|i| {
        ZaiaUser::new(
            Some(&format!("X{i:04}")),
            Some(&format!("{}.archive{i}", people[1].email)),
            "Arch Ive",
        )
    }));
    let first = ZaiaUser::new(Some(&people[0].id), Some("stale@corp.example"), "Stale One");
    let second = ZaiaUser::new(None, Some(&people[1].email), "Stale Two");
    seeds.push(first.clone());
    seeds.push(second.clone());
    fake.seed(seeds);
    let ws = workspace(&fake, "");
    ws.write_people(&people);

    let (code, doc) = ws.sync();
    assert_eq!(code, 0, "{doc}");
    assert_holds(&fake, &people, 270);
    assert_eq!(
        fake.user_by_external_id(&people[0].id).unwrap().id,
        first.id
    );
    assert_eq!(
        fake.user_by_external_id(&people[1].id).unwrap().id,
        second.id
    );
    assert_eq!(fake.count("POST", USERS_PATH), 1, "only people[2] is new");
    let requests = fake.requests();
    assert!(requests
        .iter()
        .any(|r| r.method == "GET" && r.param("pageNumber") == Some("2")));
    assert!(requests.iter().all(|r| r.status < 400), "{requests:?}");
}

#[tokio::test]
async fn killed_mid_apply_and_rerun_zaia_holds_everyone_once() {
    for kill_at in [5usize, 40, 90] {
        let fake = FakeZaia::start(FakeZaiaOptions::default());
        let ws = workspace(&fake, "    rate_limit: { max_concurrency: 2 }\n");
        let people: Vec<Person> = (1..=40).map(Person::new).collect();
        ws.write_people(&people);
        fake.delay(Duration::from_millis(25));
        kill_when(ws.spawn_sync(), || fake.requests().len() >= kill_at).await;
        let created_before = fake.users().len();
        fake.delay(Duration::ZERO);

        let (code, doc) = ws.sync();
        assert_eq!(code, 0, "killed at request {kill_at}: {doc}");
        assert_holds(&fake, &people, 0);
        fake.assert_no_duplicates();
        assert!(created_before < 40, "killed too late to test anything");
        let resolved = provider(&doc, "zaia")["result"]["resolved"]
            .as_u64()
            .unwrap();
        eprintln!(
            "killed at request {kill_at}: {created_before} created before, {resolved} resent first"
        );
        let rows = snapshot_with_ids(&ws.state(), "zaia").await;
        assert_eq!(rows.len(), 40);
        assert!(rows
            .iter()
            .all(|(_, s, v)| *s == AccountState::Active && v.is_some()));

        fake.clear_requests();
        let (code, doc) = ws.sync();
        assert_eq!(code, 0);
        assert!(op_kinds(&doc, "zaia").is_empty(), "{doc}");
        assert!(fake.requests().is_empty());
    }
}

#[tokio::test]
async fn a_429_is_waited_out_until_the_reset_time_and_nothing_is_sent_before_it() {
    let window = Duration::from_millis(1500);
    let fake = FakeZaia::start(FakeZaiaOptions {
        limit: 3,
        window,
        ..FakeZaiaOptions::default()
    });
    // Somebody else spends the window first: rosterd's first request gets a 429 whose
    // X-RateLimit-Reset is a Unix time.
    let client = reqwest::Client::new();
    for _ in 0..3 {
        let resp = client
            .get(format!("{}{USERS_PATH}", fake.base_url()))
            .header("authorization", fake.api_key())
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        let reset: u64 = resp.headers()["x-ratelimit-reset"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!(reset > 1_000_000_000, "a Unix time: {reset}");
    }
    let window_start = fake.requests()[0].at;
    let ws = workspace(&fake, "    rate_limit: { max_concurrency: 1 }\n");
    let people: Vec<Person> = (1..=2).map(Person::new).collect();
    ws.write_people(&people);

    let (code, doc) = ws.sync();
    assert_eq!(code, 0, "a 429 is not a failure: {doc}");
    assert_holds(&fake, &people, 0);
    let requests = fake.requests();
    let first_429 = first_429_then_waited(
        requests.iter().map(|r| (r.at, r.status == 429)),
        window_start + window,
    );
    assert_eq!(first_429, 3);
    // Two searches and a create per user: the headers pace them with no other 429.
    assert_eq!(requests.iter().filter(|r| r.status == 429).count(), 1);
    assert_eq!(provider(&doc, "zaia")["result"]["rate_limited"], 1);
}
