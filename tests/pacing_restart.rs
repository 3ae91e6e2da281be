//! Pacing survives restarts (issue #16 item 7): a run that spent hesh's rate-limit
//! window — SIGKILLed while it waits for the reset, or finished — leaves the window in
//! the state file, and the next run sends nothing before the reset: the fake refuses
//! no request. With the saved window removed (what rosterd did before it kept it), the
//! same rerun meets 429s.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
// Test code reads the real clock and sleeps.
#![allow(clippy::disallowed_methods)]

use crate::support;

use std::time::{Duration, Instant};

use support::fake_hesh::{FakeHesh, FakeHeshOptions, RequestRecord};
use support::fake_server::FakeVendor;
use support::process::kill_when;
use support::workspace::{Person, Workspace};

/// hesh's window here: 5 requests per 6 s, opening with the first request.
const LIMIT: usize = 5;
const WINDOW: Duration = Duration::from_secs(6);

fn setup(people: usize) -> (FakeHesh, Workspace, Vec<Person>) {
    let fake = FakeHesh::start_blocking(FakeHeshOptions {
        limit: LIMIT as u32,
        window: WINDOW,
        ..FakeHeshOptions::default()
    });
    let ws = Workspace::hesh(
        &fake.base_url(),
        fake.tenant_id(),
        fake.api_key(),
        "    batch_size: 1\n    rate_limit: { max_concurrency: 2 }\n",
    );
    let people: Vec<Person> = (0..people).map(Person::new).collect();
    ws.write_people(&people);
    (fake, ws, people)
}

fn throttled(requests: &[RequestRecord]) -> usize {
    requests.iter().filter(|r| r.status == Some(429)).count()
}

/// Runs a sync that spends the window and is SIGKILLed while it waits for the reset
/// (300 ms after the fifth request arrived); `forget` then removes the saved window.
/// Returns the fake, the workspace and how many requests the first run sent.
async fn killed_in_a_spent_window(forget: bool) -> (FakeHesh, Workspace, Vec<Person>, usize) {
    let (fake, ws, people) = setup(8);
    let mut spent_at: Option<Instant> = None;
    kill_when(ws.spawn_sync(), || {
        if fake.requests().len() >= LIMIT {
            let at = *spent_at.get_or_insert_with(Instant::now);
            return at.elapsed() >= Duration::from_millis(300);
        }
        false
    })
    .await;
    let first_run = fake.requests();
    assert_eq!(first_run.len(), LIMIT, "the first run waits for the reset");
    assert_eq!(throttled(&first_run), 0);
    if forget {
        let options = sqlx::sqlite::SqliteConnectOptions::new().filename(ws.state());
        let pool = sqlx::SqlitePool::connect_with(options).await.unwrap();
        let gone = sqlx::query("DELETE FROM rate_windows")
            .execute(&pool)
            .await
            .unwrap();
        assert_eq!(gone.rows_affected(), 1, "the window was saved");
        pool.close().await;
    }
    (fake, ws, people, first_run.len())
}

#[tokio::test]
async fn a_rerun_after_sigkill_waits_for_the_spent_window_to_reset() {
    let (fake, ws, people, sent_before) = killed_in_a_spent_window(false).await;
    let (code, doc) = ws.sync();
    assert_eq!(code, 0, "{doc}");
    let requests = fake.requests();
    let reset = requests[0].at + WINDOW;
    let rerun = &requests[sent_before..];
    assert!(!rerun.is_empty());
    let early = rerun.iter().filter(|r| r.at < reset).count();
    eprintln!(
        "rerun: {} requests, {} before the reset, {} × 429",
        rerun.len(),
        early,
        throttled(rerun)
    );
    assert_eq!(throttled(&requests), 0, "the vendor refused requests");
    assert_eq!(early, 0, "requests sent into the spent window");
    assert_eq!(fake.users().len(), people.len());
    fake.assert_no_duplicates();
}

/// The control: the same crash and rerun without the saved window bursts into the
/// spent window and is refused.
#[tokio::test]
async fn without_the_saved_window_the_rerun_meets_429s() {
    let (fake, ws, _people, sent_before) = killed_in_a_spent_window(true).await;
    let _ = ws.sync();
    let requests = fake.requests();
    let refused = throttled(&requests[sent_before..]);
    eprintln!("rerun without the saved window: {refused} × 429");
    assert!(refused > 0, "the rerun should have met the spent window");
}

/// A run that finished having spent the window (five creates, five requests): the
/// next run, with two more people, waits for the reset before its first request.
#[test]
fn a_finished_run_that_spent_the_window_holds_the_next_run_until_the_reset() {
    let (fake, ws, mut people) = setup(LIMIT);
    let (code, doc) = ws.sync();
    assert_eq!(code, 0, "{doc}");
    assert_eq!(fake.requests().len(), LIMIT);
    people.extend([Person::new(100), Person::new(101)]);
    ws.write_people(&people);
    let (code, doc) = ws.sync();
    assert_eq!(code, 0, "{doc}");
    let requests = fake.requests();
    let reset = requests[0].at + WINDOW;
    assert_eq!(throttled(&requests), 0, "the vendor refused requests");
    assert!(
        requests[LIMIT..].iter().all(|r| r.at >= reset),
        "the second run sent before the reset"
    );
    assert_eq!(fake.users().len(), people.len());
}

/// What keeping the window saved costs a big pass: with `ROSTERD_LONG_TESTS=1`, a
/// pass of `ROSTERD_PACING_USERS` (default 10,000) creates, one request each, against
/// a window that changes with every answer; prints the pass's time (compare with
/// saving turned off to measure). Plain `cargo test` runs 200.
#[test]
fn a_big_pass_keeps_the_window_saved_without_slowing_down() {
    let long = std::env::var("ROSTERD_LONG_TESTS").is_ok_and(|v| v == "1");
    let users = std::env::var("ROSTERD_PACING_USERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if long { 10_000 } else { 200 });
    let fake = FakeHesh::start_blocking(FakeHeshOptions {
        limit: 1_000_000,
        window: Duration::from_secs(3600),
        ..FakeHeshOptions::default()
    });
    let ws = Workspace::hesh(
        &fake.base_url(),
        fake.tenant_id(),
        fake.api_key(),
        "    batch_size: 1\n",
    );
    let people: Vec<Person> = (0..users).map(Person::new).collect();
    ws.write_people(&people);
    let start = Instant::now();
    let (code, doc) = ws.sync();
    let took = start.elapsed();
    assert_eq!(code, 0, "{doc}");
    assert_eq!(fake.users().len(), users);
    eprintln!(
        "{users} creates, {} requests: pass took {took:?}",
        fake.requests().len()
    );
    let saved = tokio::runtime::Runtime::new().unwrap().block_on(async {
        let store = rosterd::store::Store::open_read_only(&ws.state())
            .await
            .unwrap()
            .unwrap();
        let url = format!("{}/", fake.base_url());
        let w = store.rate_window("hesh", &url).await.unwrap();
        store.close().await;
        w
    });
    let saved = saved.expect("the window is saved at the end of the pass");
    assert_eq!(saved.limit, Some(1_000_000));
    assert_eq!(saved.remaining, 1_000_000 - users as u64);
}
