#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use chrono::{DateTime, Utc};

use super::*;
use crate::providers::Fingerprint;
use crate::store::test_state::Fresh;
use crate::store::{AccountState, LeaverOutcome, OpKind, PassOutcome, RateWindow, RunMode};
use crate::store::{SnapshotChange, SnapshotUpsert};

fn at(secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_700_000_000 + secs, 250_000).unwrap()
}

/// Every row of every copied table, as read back.
async fn dump(store: &Store) -> Vec<(&'static str, Vec<Vec<Cell>>)> {
    let mut out = Vec::new();
    for table in TABLES {
        let names: Vec<&str> = table.columns.iter().map(|c| c.0).collect();
        let sql = format!(
            "SELECT {} FROM {} ORDER BY {}",
            names.join(", "),
            table.name,
            table.order
        );
        let rows = with_pool!(store, |pool| {
            let rows = sqlx::query(AssertSqlSafe(sql))
                .fetch_all(pool)
                .await
                .unwrap();
            rows.iter()
                .map(|r| read(r, table).unwrap())
                .collect::<Vec<_>>()
        });
        out.push((table.name, rows));
    }
    out
}

/// A state with rows in every table, awkward text included.
async fn fill_every_table(store: &Store) {
    let row = |id: &'static str, fp: u128| SnapshotUpsert {
        provider: "hesh",
        external_id: id,
        vendor_id: Some("v-1"),
        email: "ada@example.com",
        fingerprint: Fingerprint(fp),
        state: AccountState::Active,
        record_json: r#"{"name":"Ädä ~ 3:x;"}"#,
        confirmed_at: at(0),
    };
    store.run_start("r1", RunMode::Apply, at(0)).await.unwrap();
    store.run_start("r2", RunMode::Apply, at(0)).await.unwrap();
    store
        .upsert_snapshot_many(&[row("b", 1), row("a", 2), row("é", 3)])
        .await
        .unwrap();
    store.record_failure("hesh", "a", "503 once").await.unwrap();
    let done = store
        .journal_begin_fields(
            "r1",
            "hesh",
            OpKind::Create,
            "c",
            "{}",
            Some(&["email"]),
            at(1),
        )
        .await
        .unwrap();
    store
        .journal_finish(done.id, Some(&SnapshotChange::Upsert(row("c", 4))), at(2))
        .await
        .unwrap();
    store
        .journal_begin("r2", "hesh", OpKind::Update, "a", r#"{"x":1}"#, at(3))
        .await
        .unwrap();
    store
        .run_finish("r1", at(4), PassOutcome::Ok, r#"{"ok":true}"#)
        .await
        .unwrap();
    store
        .record_op_failure("hesh", "z", OpKind::Create, "ff", "400 bad", at(5))
        .await
        .unwrap();
    store
        .record_leaver_check("hesh", "gone", LeaverOutcome::Absent, at(6))
        .await
        .unwrap();
    store
        .record_quirk("wiki", "patch_unusable", "d1", "PATCH 501", at(7))
        .await
        .unwrap();
    let window = RateWindow {
        limit: Some(100),
        remaining: 7,
        reset_at: at(60),
        observed_at: at(8),
    };
    store
        .save_rate_window("hesh", "https://hesh.example", &window)
        .await
        .unwrap();
    let t = DateTime::from_timestamp(1_700_000_030, 250_000).unwrap();
    let group = store
        .group_journal_begin("r2", "wiki", "create", "Sales", "{}", t)
        .await
        .unwrap();
    let created = crate::store::GroupRecord::Group {
        name: "Sales",
        group_id: "g-1",
        display_name: "Sales",
        created: true,
    };
    store
        .group_journal_finish(group, "wiki", Some(&created), t)
        .await
        .unwrap();
    let add = store
        .group_journal_begin("r2", "wiki", "add", "Sales", "{}", t)
        .await
        .unwrap();
    let members = [("a".to_string(), "v-1".to_string())];
    let added = crate::store::GroupRecord::Members {
        name: "Sales",
        members: &members,
        added: true,
    };
    store
        .group_journal_finish(add, "wiki", Some(&added), t)
        .await
        .unwrap();
}

async fn copies_exactly_both_ways(source: &Fresh, middle: &Fresh, back: &Fresh) {
    let store = source.open().await;
    fill_every_table(&store).await;
    let original = dump(&store).await;
    store.close().await;
    assert!(
        original.iter().all(|(_, rows)| !rows.is_empty()),
        "{original:?}"
    );

    let copied = copy(&source.location(), &middle.location(), false)
        .await
        .unwrap();
    assert!(copied.replaced.is_empty());
    let counts: Vec<u64> = original.iter().map(|(_, r)| r.len() as u64).collect();
    assert_eq!(
        copied.tables.iter().map(|t| t.1).collect::<Vec<_>>(),
        counts
    );
    let there = middle.open().await;
    assert_eq!(dump(&there).await, original);
    // Ids continue after the copied ones.
    let next = there
        .journal_begin("r3", "hesh", OpKind::Create, "n", "{}", at(9))
        .await
        .unwrap();
    let max_id = original[1].1.iter().filter_map(|r| match r[0] {
        Cell::Int(Some(id)) => Some(id),
        _ => None,
    });
    assert!(next.id > max_id.max().unwrap());
    there.close().await;

    copy(&middle.location(), &back.location(), false)
        .await
        .unwrap();
    let back_store = back.open().await;
    let mut expected = original.clone();
    // The entry written after the first copy came along too.
    expected[1].1 = dump(&middle.open().await).await[1].1.clone();
    assert_eq!(dump(&back_store).await, expected);
}

#[tokio::test]
async fn a_file_state_copies_to_postgres_and_back_exactly() {
    let Some(pg) = Fresh::postgres().await else {
        return;
    };
    copies_exactly_both_ways(&Fresh::sqlite(), &pg, &Fresh::sqlite()).await;
}

#[tokio::test]
async fn a_postgres_state_copies_to_a_file_and_back_exactly() {
    let (Some(pg), Some(pg2)) = (Fresh::postgres().await, Fresh::postgres().await) else {
        return;
    };
    copies_exactly_both_ways(&pg, &Fresh::sqlite(), &pg2).await;
}

#[tokio::test]
async fn a_target_holding_a_state_is_refused_unless_forced() {
    let (source, target) = (Fresh::sqlite(), Fresh::sqlite());
    let store = source.open().await;
    fill_every_table(&store).await;
    store.close().await;
    let other = target.open().await;
    other
        .run_start("theirs", RunMode::Apply, at(0))
        .await
        .unwrap();
    other.close().await;

    let err = copy(&source.location(), &target.location(), false)
        .await
        .unwrap_err();
    assert!(matches!(err, CopyError::NotEmpty { .. }), "{err:?}");
    assert!(err.to_string().contains("1 runs rows"), "{err}");
    assert!(err.to_string().contains("--force"), "{err}");
    let kept = target.open().await;
    assert_eq!(kept.recent_runs(10).await.unwrap().len(), 1);
    kept.close().await;

    let done = copy(&source.location(), &target.location(), true)
        .await
        .unwrap();
    assert_eq!(done.replaced.iter().find(|t| t.0 == "runs").unwrap().1, 1);
    let replaced = target.open().await;
    let runs: Vec<String> = replaced
        .recent_runs(10)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.run_id)
        .collect();
    assert_eq!(runs, ["r2", "r1"]);
}

#[tokio::test]
async fn a_missing_source_or_the_same_state_twice_is_refused() {
    let (a, b) = (Fresh::sqlite(), Fresh::sqlite());
    let err = copy(&a.location(), &b.location(), false).await.unwrap_err();
    assert!(matches!(err, CopyError::NoSource { .. }), "{err:?}");
    let err = copy(&a.location(), &a.location(), true).await.unwrap_err();
    assert!(matches!(err, CopyError::Same { .. }), "{err:?}");
}

#[tokio::test]
async fn every_table_of_the_schema_is_copied() {
    let state = Fresh::sqlite();
    let store = state.open().await;
    let Pool::Sqlite(pool) = &store.pool else {
        unreachable!()
    };
    let mut tables: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_schema WHERE type = 'table' \
         AND name NOT IN ('rosterd_meta', '_sqlx_migrations') ORDER BY name",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    tables.sort();
    let mut listed: Vec<&str> = TABLES.iter().map(|t| t.name).collect();
    listed.sort();
    assert_eq!(
        tables, listed,
        "a migration added a table: list it in store/copy.rs TABLES"
    );
}
