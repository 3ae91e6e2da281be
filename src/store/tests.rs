#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

use chrono::{DateTime, Utc};
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};
use sqlx::{ConnectOptions, Connection};

use super::test_state::{on_both_backends, Fresh};
use super::*;
use crate::providers::Fingerprint;

fn at(secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(secs, 123_456_000).unwrap()
}

fn row<'a>(provider: &'a str, external_id: &'a str, fingerprint: u128) -> SnapshotUpsert<'a> {
    SnapshotUpsert {
        provider,
        external_id,
        vendor_id: Some("v-1"),
        email: "ada@example.com",
        fingerprint: Fingerprint(fingerprint),
        state: AccountState::Active,
        record_json: r#"{"name":"Ada"}"#,
        confirmed_at: at(1_700_000_000),
    }
}

/// The whole snapshot with every row's details loaded.
async fn full_snapshot(store: &Store, provider: &str) -> Snapshot {
    let mut snap = store.snapshot(provider).await.unwrap();
    assert!(
        snap.iter().all(|r| r.details.is_none()),
        "snapshot() reads lean rows"
    );
    let all: Vec<usize> = (0..snap.len()).collect();
    store.fill_details(provider, &mut snap, &all).await.unwrap();
    snap
}

fn details(r: &SnapshotRow) -> &RowDetails {
    r.details.as_deref().unwrap()
}

/// A plain connection, for setting up files the store must then judge.
async fn raw(path: &Path) -> SqliteConnection {
    SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .connect()
        .await
        .unwrap()
}

async fn table_names(path: &Path) -> Vec<String> {
    let mut conn = raw(path).await;
    let names =
        sqlx::query_scalar("SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name")
            .fetch_all(&mut conn)
            .await
            .unwrap();
    conn.close().await.unwrap();
    names
}

#[tokio::test]
async fn open_creates_and_migrates_and_reopens() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let store = Store::open(&path).await.unwrap();
    assert!(path.exists());
    let marker: String = with_pool!(store, |pool| sqlx::query_scalar(
        "SELECT value FROM rosterd_meta WHERE key = 'application'"
    )
    .fetch_one(pool)
    .await)
    .unwrap();
    assert_eq!(marker, "rosterd");
    store.close().await;

    let names = table_names(&path).await;
    for t in [
        "_sqlx_migrations",
        "journal",
        "rosterd_meta",
        "runs",
        "snapshot",
    ] {
        assert!(names.iter().any(|n| n == t), "{t} missing from {names:?}");
    }

    let store = Store::open(&path).await.unwrap();
    assert!(store.snapshot("hesh").await.unwrap().is_empty());
    store.close().await;
}

#[tokio::test]
async fn wal_mode_is_on() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("state.db")).await.unwrap();
    let Pool::Sqlite(pool) = &store.pool else {
        unreachable!()
    };
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(pool)
        .await
        .unwrap();
    assert_eq!(mode, "wal");
    let fk: i64 = sqlx::query_scalar("PRAGMA foreign_keys")
        .fetch_one(pool)
        .await
        .unwrap();
    assert_eq!(fk, 1);
}

#[tokio::test]
async fn plain_text_file_is_refused_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let text = "this is a shopping list, not a database\n".repeat(40);
    std::fs::write(&path, &text).unwrap();

    let err = Store::open(&path).await.unwrap_err();
    assert!(matches!(err, StoreError::NotRosterd { .. }), "{err:?}");
    assert!(
        err.to_string().contains("is not a rosterd state file"),
        "{err}"
    );
    let err = Store::open_read_only(&path).await.unwrap_err();
    assert!(matches!(err, StoreError::NotRosterd { .. }), "{err:?}");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), text);
}

#[tokio::test]
async fn unrelated_database_is_refused_and_not_migrated() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("other.db");
    let mut conn = raw(&path).await;
    sqlx::raw_sql("CREATE TABLE people (name TEXT); INSERT INTO people VALUES ('Ada');")
        .execute(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
    let before = std::fs::read(&path).unwrap();

    let err = Store::open(&path).await.unwrap_err();
    assert!(matches!(err, StoreError::NotRosterd { .. }), "{err:?}");
    let err = Store::open_read_only(&path).await.unwrap_err();
    assert!(matches!(err, StoreError::NotRosterd { .. }), "{err:?}");

    assert_eq!(std::fs::read(&path).unwrap(), before, "file changed");
    assert_eq!(table_names(&path).await, ["people"]);
}

#[tokio::test]
async fn another_sqlx_application_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("other.db");
    let mut conn = raw(&path).await;
    sqlx::raw_sql(
        "CREATE TABLE _sqlx_migrations (version BIGINT PRIMARY KEY, description TEXT NOT NULL, \
         installed_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP, success BOOLEAN NOT NULL, \
         checksum BLOB NOT NULL, execution_time BIGINT NOT NULL); \
         CREATE TABLE orders (id INTEGER PRIMARY KEY);",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    conn.close().await.unwrap();

    let err = Store::open(&path).await.unwrap_err();
    assert!(matches!(err, StoreError::NotRosterd { .. }), "{err:?}");
    assert_eq!(table_names(&path).await, ["_sqlx_migrations", "orders"]);
}

#[tokio::test]
async fn newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    Store::open(&path).await.unwrap().close().await;
    let mut conn = raw(&path).await;
    sqlx::query(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
         VALUES (9999, 'from the future', 1, x'00', 0)",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    conn.close().await.unwrap();

    for err in [
        Store::open(&path).await.unwrap_err(),
        Store::open_read_only(&path).await.unwrap_err(),
    ] {
        match &err {
            StoreError::NewerSchema {
                found, supported, ..
            } => {
                assert_eq!((*found, *supported), (9999, supported_version()));
            }
            other => panic!("expected NewerSchema, got {other:?}"),
        }
        let text = err.to_string();
        assert!(
            text.contains(&format!(
                "written by a newer rosterd (schema 9999, this build knows up to {})",
                supported_version()
            )),
            "{text}"
        );
    }
}

#[tokio::test]
async fn open_read_only_on_a_missing_file_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    assert!(Store::open_read_only(&path).await.unwrap().is_none());
    assert!(!path.exists());
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[tokio::test]
async fn read_only_store_reads_but_refuses_writes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let store = Store::open(&path).await.unwrap();
    store.upsert_snapshot(&row("hesh", "e1", 1)).await.unwrap();
    store.close().await;
    let before = std::fs::read(&path).unwrap();

    let ro = Store::open_read_only(&path).await.unwrap().unwrap();
    assert_eq!(ro.snapshot("hesh").await.unwrap().len(), 1);
    let err = ro.upsert_snapshot(&row("hesh", "e2", 2)).await.unwrap_err();
    assert!(matches!(err, StoreError::Query { .. }), "{err:?}");
    assert!(ro
        .journal_begin("r1", "hesh", OpKind::Create, "e2", "{}", at(0))
        .await
        .is_err());
    assert!(ro.run_start("r1", RunMode::DryRun, at(0)).await.is_err());
    ro.close().await;

    assert_eq!(
        std::fs::read(&path).unwrap(),
        before,
        "a dry run wrote to the file"
    );
    // SQLite's read-only WAL reader may leave its shared-memory index and an empty
    // log beside the file; neither holds data.
    let wal = dir.path().join("state.db-wal");
    if wal.exists() {
        assert_eq!(
            std::fs::metadata(&wal).unwrap().len(),
            0,
            "the log holds writes"
        );
    }
}

#[tokio::test]
async fn read_only_open_of_an_unmigrated_file_asks_for_a_real_sync() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    Store::open(&path).await.unwrap().close().await;
    // As if the file came from a build that had not yet applied migration 1.
    let mut conn = raw(&path).await;
    sqlx::query("DELETE FROM _sqlx_migrations")
        .execute(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();

    let err = Store::open_read_only(&path).await.unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::OlderSchema {
                found: 0,
                required,
                ..
            } if required == supported_version()
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("without --dry-run"), "{err}");
}

#[tokio::test]
async fn read_only_open_of_an_empty_file_means_no_state_yet() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    std::fs::write(&path, b"").unwrap();
    assert!(Store::open_read_only(&path).await.unwrap().is_none());
    assert_eq!(std::fs::read(&path).unwrap(), b"");
}

async fn snapshot_round_trips_sorted_by_bytes(state: &Fresh) {
    let store = state.open().await;
    // Mixed case, digits and non-ASCII: only byte order sorts these like `str`.
    let ids = ["b", "Ä", "10", "a", "B", "9", "é", "Z"];
    for (i, id) in ids.iter().enumerate() {
        let mut r = row("hesh", id, u128::MAX - i as u128);
        if *id == "a" {
            r.vendor_id = None;
            r.state = AccountState::Disabled;
            r.fingerprint = Fingerprint(1); // leading zeros survive the text form
        }
        if *id == "Z" {
            r.state = AccountState::Manual;
        }
        store.upsert_snapshot(&r).await.unwrap();
    }
    store.upsert_snapshot(&row("vyte", "a", 7)).await.unwrap();

    let snap = full_snapshot(&store, "hesh").await;
    let mut expected: Vec<&str> = ids.to_vec();
    expected.sort();
    let got: Vec<&str> = snap.iter().map(|r| &*r.external_id).collect();
    assert_eq!(got, expected);

    let a = snap.iter().find(|r| &*r.external_id == "a").unwrap();
    assert_eq!(
        *a,
        SnapshotRow {
            external_id: "a".into(),
            fingerprint: Fingerprint(1),
            state: AccountState::Disabled,
            failures: 0,
            details: Some(Box::new(RowDetails {
                email: "ada@example.com".into(),
                vendor_id: None,
                record: r#"{"name":"Ada"}"#.into(),
                last_error: None,
            })),
        }
    );
    let b = snap.iter().find(|r| &*r.external_id == "b").unwrap();
    assert_eq!(b.fingerprint, Fingerprint(u128::MAX));
    assert_eq!(details(b).vendor_id.as_deref(), Some("v-1"));
    let z = snap.iter().find(|r| &*r.external_id == "Z").unwrap();
    assert_eq!(z.state, AccountState::Manual);

    let vyte = store.snapshot("vyte").await.unwrap();
    assert_eq!(vyte.len(), 1);
    assert_eq!(vyte[0].fingerprint, Fingerprint(7));
    assert!(store.snapshot("zaia").await.unwrap().is_empty());
}

async fn failures_count_up_and_a_confirmed_write_clears_them(state: &Fresh) {
    let store = state.open().await;
    store.upsert_snapshot(&row("hesh", "e1", 1)).await.unwrap();
    store
        .record_failure("hesh", "e1", "503 first")
        .await
        .unwrap();
    store
        .record_failure("hesh", "e1", "503 again")
        .await
        .unwrap();
    // No row, no trace: a failed create is not remembered as an account.
    store.record_failure("hesh", "ghost", "400").await.unwrap();

    let snap = full_snapshot(&store, "hesh").await;
    assert_eq!(snap.len(), 1);
    assert_eq!(snap[0].failures, 2);
    assert_eq!(details(&snap[0]).last_error.as_deref(), Some("503 again"));

    let mut again = row("hesh", "e1", 2);
    again.email = "ada@new.example.com";
    store.upsert_snapshot(&again).await.unwrap();
    let snap = full_snapshot(&store, "hesh").await;
    assert_eq!(
        (snap[0].failures, details(&snap[0]).last_error.as_deref()),
        (0, None)
    );
    assert_eq!(&*details(&snap[0]).email, "ada@new.example.com");
    assert_eq!(snap[0].fingerprint, Fingerprint(2));
}

async fn rows_are_deleted_and_counted(state: &Fresh) {
    let store = state.open().await;
    let mut disabled = row("hesh", "e3", 3);
    disabled.state = AccountState::Disabled;
    let rows = [
        row("hesh", "e1", 1),
        row("hesh", "e2", 2),
        disabled,
        row("vyte", "e1", 1),
    ];
    store.upsert_snapshot_many(&rows).await.unwrap();
    store.delete_snapshot_row("hesh", "e2").await.unwrap();
    store.delete_snapshot_row("hesh", "nobody").await.unwrap();

    assert_eq!(
        store.snapshot_counts().await.unwrap(),
        [
            ("hesh".to_string(), AccountState::Active, 1),
            ("hesh".to_string(), AccountState::Disabled, 1),
            ("vyte".to_string(), AccountState::Active, 1),
        ]
    );
}

async fn a_corrupt_row_is_reported_with_its_key(state: &Fresh) {
    let store = state.open().await;
    store.upsert_snapshot(&row("hesh", "e1", 1)).await.unwrap();
    with_pool!(store, |pool| sqlx::query(
        "UPDATE snapshot SET fingerprint = 'zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz'"
    )
    .execute(pool)
    .await
    .map(|_| ()))
    .unwrap();
    match store.snapshot("hesh").await.unwrap_err() {
        StoreError::Corrupt {
            provider,
            external_id,
            message,
        } => {
            assert_eq!((provider.as_str(), external_id.as_str()), ("hesh", "e1"));
            assert!(message.contains("fingerprint"), "{message}");
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
}

async fn journal_finish_applies_the_snapshot_in_the_same_transaction(state: &Fresh) {
    let store = state.open().await;
    let id = store
        .journal_begin(
            "run-1",
            "hesh",
            OpKind::Create,
            "e1",
            r#"{"email":"a@b.co"}"#,
            at(10),
        )
        .await
        .unwrap()
        .id;
    store
        .journal_finish(id, Some(&row("hesh", "e1", 42).into()), at(11))
        .await
        .unwrap();
    let snap = store.snapshot("hesh").await.unwrap();
    assert_eq!(snap.len(), 1);
    assert_eq!(snap[0].fingerprint, Fingerprint(42));
    assert!(store.in_flight().await.unwrap().is_empty());

    // Finishing twice is a bug in the caller, and changes nothing.
    let err = store
        .journal_finish(id, Some(&row("hesh", "e1", 43).into()), at(12))
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::NotInFlight { id: i } if i == id),
        "{err:?}"
    );
    assert_eq!(
        store.snapshot("hesh").await.unwrap()[0].fingerprint,
        Fingerprint(42)
    );

    // When the snapshot write fails, the journal entry is not marked done either.
    let id2 = store
        .journal_begin("run-1", "hesh", OpKind::Create, "e2", "{}", at(13))
        .await
        .unwrap()
        .id;
    let mut bad = row("hesh", "e2", 5);
    bad.record_json = "not json";
    assert!(store
        .journal_finish(id2, Some(&bad.into()), at(14))
        .await
        .is_err());
    let pending = store.in_flight().await.unwrap();
    assert_eq!(pending.iter().map(|e| e.id).collect::<Vec<_>>(), [id2]);
    assert_eq!(store.snapshot("hesh").await.unwrap().len(), 1);
}

async fn in_flight_lists_only_unfinished_entries_oldest_first(state: &Fresh) {
    let store = state.open().await;
    let a = store
        .journal_begin("run-1", "hesh", OpKind::Create, "e1", "{}", at(1))
        .await
        .unwrap()
        .id;
    let b = store
        .journal_begin("run-1", "hesh", OpKind::Update, "e2", r#"{"x":1}"#, at(2))
        .await
        .unwrap()
        .id;
    let c = store
        .journal_begin("run-1", "vyte", OpKind::Disable, "e3", "{}", at(3))
        .await
        .unwrap()
        .id;
    let d = store
        .journal_begin("run-1", "vyte", OpKind::Enable, "e4", "{}", at(4))
        .await
        .unwrap()
        .id;
    store.journal_finish(a, None, at(5)).await.unwrap();
    store.journal_fail(c, "422 bad email", at(6)).await.unwrap();
    assert!(matches!(
        store.journal_fail(c, "again", at(7)).await,
        Err(StoreError::NotInFlight { .. })
    ));

    let pending = store.in_flight().await.unwrap();
    assert_eq!(pending.iter().map(|e| e.id).collect::<Vec<_>>(), [b, d]);
    assert_eq!(
        pending[0],
        JournalEntry {
            id: b,
            run_id: "run-1".into(),
            provider: "hesh".into(),
            op: OpKind::Update,
            external_id: "e2".into(),
            payload: r#"{"x":1}"#.into(),
            status: JournalStatus::InFlight,
            error: None,
            created_at: at(2),
            finished_at: None,
        }
    );
}

async fn run_history_is_newest_first(state: &Fresh) {
    let store = state.open().await;
    store
        .run_start("r1", RunMode::Apply, at(100))
        .await
        .unwrap();
    store
        .run_start("r3", RunMode::Apply, at(300))
        .await
        .unwrap();
    store
        .run_start("r2", RunMode::DryRun, at(200))
        .await
        .unwrap();
    store
        .run_finish("r1", at(150), PassOutcome::Ok, r#"{"created":3}"#)
        .await
        .unwrap();
    assert!(matches!(
        store.run_finish("nope", at(1), PassOutcome::Ok, "{}").await,
        Err(StoreError::UnknownRun { .. })
    ));
    assert!(store
        .run_start("r1", RunMode::Apply, at(400))
        .await
        .is_err());

    let runs = store.recent_runs(10).await.unwrap();
    let ids: Vec<&str> = runs.iter().map(|r| r.run_id.as_str()).collect();
    assert_eq!(ids, ["r3", "r2", "r1"]);
    assert_eq!(
        runs[2],
        RunRecord {
            run_id: "r1".into(),
            started_at: at(100),
            finished_at: Some(at(150)),
            mode: RunMode::Apply,
            outcome: Some(PassOutcome::Ok),
            summary: Some(r#"{"created":3}"#.into()),
        }
    );
    assert_eq!(runs[1].mode, RunMode::DryRun);
    assert_eq!(runs[0].finished_at, None);
    assert_eq!(store.recent_runs(1).await.unwrap().len(), 1);
}

async fn upsert_many_of_ten_thousand_rows_reads_back_in_order(state: &Fresh) {
    let store = state.open().await;
    let ids: Vec<String> = (0..10_000u32)
        .map(|i| format!("emp-{}", (i * 7_919) % 10_000))
        .collect();
    let rows: Vec<SnapshotUpsert> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| row("hesh", id, i as u128))
        .collect();
    store.upsert_snapshot_many(&rows).await.unwrap();

    let snap = store.snapshot("hesh").await.unwrap();
    let mut expected: Vec<&str> = ids.iter().map(String::as_str).collect();
    expected.sort();
    let got: Vec<&str> = snap.iter().map(|r| &*r.external_id).collect();
    assert_eq!(got, expected);
}

async fn snapshot_keeps_awkward_text_intact(state: &Fresh) {
    let store = state.open().await;
    // Text that looks like the packed form's own punctuation, empty text, non-ASCII,
    // and empty-but-present next to absent.
    let mut awkward = vec!["", "~", "3:abc", ";;", "12:~~", "ü:ñ;€", "line\nbreak"];
    match store.dialect() {
        // PostgreSQL's text cannot hold U+0000 at all: refused, saying so.
        backend::Dialect::Postgres => {
            let err = store
                .upsert_snapshot(&row("hesh", "nul\u{0}", 1))
                .await
                .unwrap_err();
            assert!(err.to_string().contains("U+0000"), "{err}");
        }
        backend::Dialect::Sqlite => awkward.push("nul\u{0}"),
    }
    for (i, text) in awkward.iter().enumerate() {
        let id = format!("{text}#{i}");
        let record = serde_json::json!({ "note": text }).to_string();
        let mut r = row("hesh", &id, i as u128);
        r.email = text;
        r.vendor_id = if i % 2 == 0 { Some(text) } else { None };
        r.record_json = &record;
        store.upsert_snapshot(&r).await.unwrap();
        if i % 3 == 0 {
            store.record_failure("hesh", &id, text).await.unwrap();
        }
    }
    let snap = full_snapshot(&store, "hesh").await;
    assert_eq!(snap.len(), awkward.len());
    for r in &snap {
        let (text, i) = r.external_id.rsplit_once('#').unwrap();
        let i: usize = i.parse().unwrap();
        assert_eq!(text, awkward[i]);
        let d = details(r);
        assert_eq!(&*d.email, text);
        assert_eq!(d.vendor_id.as_deref(), i.is_multiple_of(2).then_some(text));
        assert_eq!(d.last_error.as_deref(), i.is_multiple_of(3).then_some(text));
        assert_eq!(r.failures, u32::from(i.is_multiple_of(3)));
        assert_eq!(r.fingerprint, Fingerprint(i as u128));
        let record: serde_json::Value = serde_json::from_str(&d.record).unwrap();
        assert_eq!(record["note"], *text);
    }
    assert!(snap.windows(2).all(|w| w[0].external_id < w[1].external_id));
}

async fn fill_details_loads_only_the_rows_asked_for_and_reports_a_vanished_row(state: &Fresh) {
    let store = state.open().await;
    let ids: Vec<String> = (0..1200).map(|i| format!("k{i:05}")).collect();
    let rows: Vec<SnapshotUpsert> = ids.iter().map(|id| row("hesh", id, 1)).collect();
    store.upsert_snapshot_many(&rows).await.unwrap();
    let mut snap = store.snapshot("hesh").await.unwrap();
    // More than one query's worth, in no particular order.
    let wanted: Vec<usize> = (0..1200).rev().step_by(2).collect();
    store
        .fill_details("hesh", &mut snap, &wanted)
        .await
        .unwrap();
    for (i, r) in snap.iter().enumerate() {
        assert_eq!(r.details.is_some(), wanted.contains(&i), "row {i}");
    }
    assert_eq!(&*details(&snap[1199]).email, "ada@example.com");
    store.delete_snapshot_row("hesh", "k00000").await.unwrap();
    let err = store
        .fill_details("hesh", &mut snap, &[0])
        .await
        .unwrap_err();
    assert!(err.to_string().contains("k00000"), "{err}");
}

async fn snapshot_reads_across_pages(state: &Fresh) {
    let store = state.open().await;
    let n = 2 * usize::try_from(super::snapshot_read::PAGE_ROWS).unwrap() + 17;
    let ids: Vec<String> = (0..n).rev().map(|i| format!("{i}")).collect();
    let rows: Vec<SnapshotUpsert> = ids.iter().map(|id| row("hesh", id, 1)).collect();
    store.upsert_snapshot_many(&rows).await.unwrap();
    store.upsert_snapshot(&row("vyte", "0", 1)).await.unwrap();

    let snap = store.snapshot("hesh").await.unwrap();
    let mut expected: Vec<&str> = ids.iter().map(String::as_str).collect();
    expected.sort();
    let got: Vec<&str> = snap.iter().map(|r| &*r.external_id).collect();
    assert_eq!(got, expected);
}

async fn upsert_many_writes_all_rows_or_none(state: &Fresh) {
    let store = state.open().await;
    let mut bad = row("hesh", "e2", 2);
    bad.record_json = "{";
    let rows = [row("hesh", "e1", 1), bad, row("hesh", "e3", 3)];
    assert!(store.upsert_snapshot_many(&rows).await.is_err());
    assert!(store.snapshot("hesh").await.unwrap().is_empty());
}

/// Not a timing assertion: run with `--ignored --nocapture` to see the numbers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "slow: fills a million rows"]
async fn a_million_row_snapshot_loads() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("state.db")).await.unwrap();
    let ids: Vec<String> = (0..1_000_000u32).map(|i| format!("emp-{i:07}")).collect();
    let rows: Vec<SnapshotUpsert> = ids
        .iter()
        .map(|id| SnapshotUpsert {
            record_json: r#"{"email":"someone@example.com","first_name":"Someone","last_name":"Else"}"#,
            ..row("hesh", id, 12_345)
        })
        .collect();
    let start = std::time::Instant::now();
    store.upsert_snapshot_many(&rows).await.unwrap();
    eprintln!("upsert_snapshot_many(1e6): {:?}", start.elapsed());
    let start = std::time::Instant::now();
    let snap = store.snapshot("hesh").await.unwrap();
    eprintln!("snapshot(1e6), just written: {:?}", start.elapsed());
    assert_eq!(snap.len(), 1_000_000);
    drop(snap);

    // As the next run sees it: a fresh process, the WAL folded back into the file.
    store.close().await;
    let store = Store::open(&dir.path().join("state.db")).await.unwrap();
    let start = std::time::Instant::now();
    let snap = store.snapshot("hesh").await.unwrap();
    eprintln!("snapshot(1e6), reopened: {:?}", start.elapsed());
    assert_eq!(snap.len(), 1_000_000);
    assert!(snap.windows(2).all(|w| w[0].external_id < w[1].external_id));
}

async fn journal_finish_can_change_only_the_state_or_remove_the_row(state: &Fresh) {
    let store = state.open().await;
    store.upsert_snapshot(&row("hesh", "e1", 42)).await.unwrap();
    store.record_failure("hesh", "e1", "503").await.unwrap();
    let id = store
        .journal_begin("r1", "hesh", OpKind::Disable, "e1", "{}", at(1))
        .await
        .unwrap()
        .id;
    let change = SnapshotChange::State {
        provider: "hesh",
        external_id: "e1",
        state: AccountState::Disabled,
        confirmed_at: at(2),
    };
    store
        .journal_finish(id, Some(&change), at(2))
        .await
        .unwrap();
    let snap = full_snapshot(&store, "hesh").await;
    assert_eq!(
        (snap[0].state, snap[0].failures),
        (AccountState::Disabled, 0)
    );
    assert_eq!(
        snap[0].fingerprint,
        Fingerprint(42),
        "the last record stays"
    );
    assert_eq!(&*details(&snap[0]).record, r#"{"name":"Ada"}"#);

    // A state change for a row that is not there fails and leaves the entry in flight.
    let id = store
        .journal_begin("r1", "hesh", OpKind::Disable, "ghost", "{}", at(3))
        .await
        .unwrap()
        .id;
    let ghost = SnapshotChange::State {
        provider: "hesh",
        external_id: "ghost",
        state: AccountState::Disabled,
        confirmed_at: at(3),
    };
    assert!(store.journal_finish(id, Some(&ghost), at(3)).await.is_err());
    assert_eq!(store.in_flight().await.unwrap().len(), 1);

    let id2 = store
        .journal_begin("r1", "hesh", OpKind::Delete, "e1", "{}", at(4))
        .await
        .unwrap()
        .id;
    let remove = SnapshotChange::Remove {
        provider: "hesh",
        external_id: "e1",
    };
    store
        .journal_finish(id2, Some(&remove), at(4))
        .await
        .unwrap();
    assert!(store.snapshot("hesh").await.unwrap().is_empty());
}

async fn failures_count_in_a_row_per_record_and_clear_on_success(state: &Fresh) {
    let store = state.open().await;
    for i in 0..3 {
        store
            .record_op_failure(
                "hesh",
                "e1",
                OpKind::Create,
                "aa",
                &format!("boom {i}"),
                at(i),
            )
            .await
            .unwrap();
    }
    let f = store.op_failures("hesh").await.unwrap();
    assert_eq!(f["e1"].count, 3);
    assert_eq!(f["e1"].last_error, "boom 2");
    // A different record (or operation) starts counting again.
    store
        .record_op_failure("hesh", "e1", OpKind::Create, "bb", "boom", at(9))
        .await
        .unwrap();
    assert_eq!(store.op_failures("hesh").await.unwrap()["e1"].count, 1);
    assert!(store.op_failures("vyte").await.unwrap().is_empty());
    store.clear_op_failure("hesh", "e1").await.unwrap();
    assert!(store.op_failures("hesh").await.unwrap().is_empty());
}

async fn a_new_attempt_at_an_account_supersedes_the_one_left_in_flight(state: &Fresh) {
    let store = state.open().await;
    let first = store
        .journal_begin("run-1", "hesh", OpKind::Create, "e1", "{}", at(1))
        .await
        .unwrap();
    assert!(!first.carries_unknown);
    let other = store
        .journal_begin("run-1", "hesh", OpKind::Create, "e2", "{}", at(2))
        .await
        .unwrap()
        .id;
    // The create of e1 failed with its outcome unknown and stayed in flight; the
    // next pass tries e1 again, and carries that unknown outcome.
    let second = store
        .journal_begin("run-2", "hesh", OpKind::Create, "e1", "{}", at(3))
        .await
        .unwrap();
    assert!(second.carries_unknown);
    let (first, second) = (first.id, second.id);
    let pending: Vec<i64> = store
        .in_flight()
        .await
        .unwrap()
        .iter()
        .map(|e| e.id)
        .collect();
    assert_eq!(pending, [other, second]);
    assert!(matches!(
        store.journal_finish(first, None, at(4)).await,
        Err(StoreError::NotInFlight { .. })
    ));
}

on_both_backends!(
    snapshot_round_trips_sorted_by_bytes,
    failures_count_up_and_a_confirmed_write_clears_them,
    rows_are_deleted_and_counted,
    a_corrupt_row_is_reported_with_its_key,
    journal_finish_applies_the_snapshot_in_the_same_transaction,
    in_flight_lists_only_unfinished_entries_oldest_first,
    run_history_is_newest_first,
    upsert_many_of_ten_thousand_rows_reads_back_in_order,
    snapshot_keeps_awkward_text_intact,
    fill_details_loads_only_the_rows_asked_for_and_reports_a_vanished_row,
    snapshot_reads_across_pages,
    upsert_many_writes_all_rows_or_none,
    journal_finish_can_change_only_the_state_or_remove_the_row,
    failures_count_in_a_row_per_record_and_clear_on_success,
    a_new_attempt_at_an_account_supersedes_the_one_left_in_flight,
);
