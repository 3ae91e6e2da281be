#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use chrono::{DateTime, Utc};

use super::*;
use crate::providers::Fingerprint;
use crate::store::test_state::{on_both_backends, Fresh};
use crate::store::{AccountState, PassOutcome, RunMode, SnapshotChange, SnapshotUpsert};

fn at(day: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_700_000_000 + day * 86_400, 0).unwrap()
}

fn payload(email: &str) -> String {
    serde_json::json!({ "op": "create", "external_id": "E1", "email": email }).to_string()
}

fn upsert<'a>(external_id: &'a str, email: &'a str, state: AccountState) -> SnapshotUpsert<'a> {
    SnapshotUpsert {
        provider: "hesh",
        external_id,
        vendor_id: Some("v-1"),
        email,
        fingerprint: Fingerprint(1),
        state,
        record_json: "{}",
        confirmed_at: at(0),
    }
}

async fn history_lists_operations_oldest_first_with_fields_outcome_and_vendor_id(state: &Fresh) {
    let s = state.open().await;
    s.run_start("r1", RunMode::Apply, at(0)).await.unwrap();
    let fields = ["email", "first_name"];
    let created = s
        .journal_begin_fields(
            "r1",
            "hesh",
            OpKind::Create,
            "E1",
            &payload("a@x.example"),
            Some(&fields),
            at(0),
        )
        .await
        .unwrap();
    let row = upsert("E1", "a@x.example", AccountState::Active);
    s.journal_finish(created.id, Some(&SnapshotChange::Upsert(row)), at(0))
        .await
        .unwrap();
    s.run_finish("r1", at(0), PassOutcome::Ok, "{}")
        .await
        .unwrap();
    s.run_start("r2", RunMode::Apply, at(1)).await.unwrap();
    let updated = s
        .journal_begin_fields(
            "r2",
            "hesh",
            OpKind::Update,
            "E1",
            &payload("a@x.example"),
            Some(&["first_name"]),
            at(1),
        )
        .await
        .unwrap();
    s.journal_fail(updated.id, "HTTP 422: first_name too long", at(1))
        .await
        .unwrap();
    let disabled = s
        .journal_begin("r2", "hesh", OpKind::Disable, "E1", "{}", at(2))
        .await
        .unwrap();
    s.journal_defer(disabled.id, "unreachable", at(2))
        .await
        .unwrap();
    // Another user and another provider, for the filters.
    s.journal_begin("r2", "vyte", OpKind::Create, "E2", "{}", at(3))
        .await
        .unwrap();

    let all = s.history(&HistoryFilter::default()).await.unwrap();
    let summary: Vec<(&str, &str, &str, &str)> = all
        .iter()
        .map(|e| {
            (
                e.external_id.as_str(),
                e.op.as_str(),
                e.outcome.as_str(),
                e.run_outcome.as_str(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("E1", "create", "done", "ok"),
            ("E1", "update", "failed", "unfinished"),
            ("E1", "disable", "deferred", "unfinished"),
            ("E2", "create", "in_flight", "unfinished"),
        ]
    );
    assert_eq!(
        all[0].fields,
        Some(vec!["email".to_string(), "first_name".into()])
    );
    assert_eq!(all[0].vendor_id.as_deref(), Some("v-1"));
    assert_eq!(all[0].finished_at, Some(at(0)));
    assert_eq!(
        all[1].error.as_deref(),
        Some("HTTP 422: first_name too long")
    );
    assert_eq!(all[2].fields, None, "journal_begin records no field list");

    let filter = HistoryFilter {
        keys: Some(vec!["E1".into()]),
        since: Some(at(1)),
        until: Some(at(2)),
        ..HistoryFilter::default()
    };
    let ops: Vec<OpKind> = s
        .history(&filter)
        .await
        .unwrap()
        .iter()
        .map(|e| e.op)
        .collect();
    assert_eq!(ops, [OpKind::Update], "since is inclusive, until exclusive");
    let vyte = HistoryFilter {
        provider: Some("vyte".into()),
        ..HistoryFilter::default()
    };
    assert_eq!(s.history(&vyte).await.unwrap().len(), 1);
    let nobody = HistoryFilter {
        keys: Some(Vec::new()),
        ..HistoryFilter::default()
    };
    assert!(s.history(&nobody).await.unwrap().is_empty());
}

async fn a_manual_outcome_and_a_delete_keep_the_vendor_id(state: &Fresh) {
    let s = state.open().await;
    let made = s
        .journal_begin("r1", "hesh", OpKind::Create, "E1", "{}", at(0))
        .await
        .unwrap();
    let row = upsert("E1", "a@x.example", AccountState::Manual);
    s.journal_finish(made.id, Some(&SnapshotChange::Upsert(row)), at(0))
        .await
        .unwrap();
    let gone = s
        .journal_begin("r1", "hesh", OpKind::Delete, "E1", "{}", at(1))
        .await
        .unwrap();
    let remove = SnapshotChange::Remove {
        provider: "hesh",
        external_id: "E1",
    };
    s.journal_finish(gone.id, Some(&remove), at(1))
        .await
        .unwrap();
    let all = s.history(&HistoryFilter::default()).await.unwrap();
    assert_eq!(all[0].outcome, "manual");
    assert_eq!(all[0].run_outcome, "pruned", "no run row for r1");
    assert_eq!(all[1].outcome, "done");
    assert_eq!(all[1].vendor_id.as_deref(), Some("v-1"));
}

async fn keys_with_email_finds_a_key_under_its_old_and_new_email(state: &Fresh) {
    let s = state.open().await;
    let old = s
        .journal_begin(
            "r1",
            "hesh",
            OpKind::Create,
            "E1",
            &payload("old@x.example"),
            at(0),
        )
        .await
        .unwrap();
    let row = upsert("E1", "new@x.example", AccountState::Active);
    s.journal_finish(old.id, Some(&SnapshotChange::Upsert(row)), at(0))
        .await
        .unwrap();
    assert_eq!(s.keys_with_email("OLD@x.example").await.unwrap(), ["E1"]);
    assert_eq!(s.keys_with_email("new@x.example").await.unwrap(), ["E1"]);
    assert!(s
        .keys_with_email("else@x.example")
        .await
        .unwrap()
        .is_empty());
}

async fn pruning_removes_old_finished_rows_and_keeps_in_flight_new_and_snapshot(state: &Fresh) {
    let s = state.open().await;
    for (run, day, outcome) in [
        ("old-ok", 0, PassOutcome::Ok),
        ("old-failed", 1, PassOutcome::Failed),
        ("new", 500, PassOutcome::Failed),
    ] {
        s.run_start(run, RunMode::Apply, at(day)).await.unwrap();
        s.run_finish(run, at(day), outcome, "{}").await.unwrap();
    }
    s.run_start("old-crashed", RunMode::Apply, at(2))
        .await
        .unwrap();
    let old = s
        .journal_begin("old-ok", "hesh", OpKind::Create, "E1", "{}", at(0))
        .await
        .unwrap();
    let row = upsert("E1", "a@x.example", AccountState::Active);
    s.journal_finish(old.id, Some(&SnapshotChange::Upsert(row)), at(0))
        .await
        .unwrap();
    // Left in flight by the crash: crash recovery still needs it.
    s.journal_begin("old-crashed", "hesh", OpKind::Create, "E2", "{}", at(2))
        .await
        .unwrap();
    let new = s
        .journal_begin("new", "hesh", OpKind::Update, "E1", "{}", at(500))
        .await
        .unwrap();
    s.journal_fail(new.id, "HTTP 500", at(500)).await.unwrap();

    let pruned = s.prune_before(at(100)).await.unwrap();
    assert_eq!(
        pruned,
        Pruned {
            journal: 1,
            runs: 1
        }
    );
    let left: Vec<(String, String)> = s
        .history(&HistoryFilter::default())
        .await
        .unwrap()
        .into_iter()
        .map(|e| (e.external_id, e.run_id))
        .collect();
    assert_eq!(
        left,
        [
            ("E2".to_string(), "old-crashed".to_string()),
            ("E1".into(), "new".into())
        ]
    );
    let mut runs: Vec<String> = s
        .recent_runs(10)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.run_id)
        .collect();
    runs.sort();
    // old-ok stays: it is the newest successful run.
    assert_eq!(runs, ["new", "old-crashed", "old-ok"]);
    assert_eq!(
        s.snapshot("hesh").await.unwrap().len(),
        1,
        "snapshot untouched"
    );
}

async fn retention_0_or_past_any_date_prunes_nothing_and_days_count_back_from_now(state: &Fresh) {
    let s = state.open().await;
    s.run_start("r", RunMode::Apply, at(0)).await.unwrap();
    s.run_finish("r", at(0), PassOutcome::Failed, "{}")
        .await
        .unwrap();
    assert_eq!(
        s.prune_history(0, at(10_000)).await.unwrap(),
        Pruned::default()
    );
    assert_eq!(
        s.prune_history(u32::MAX, at(10_000)).await.unwrap(),
        Pruned::default()
    );
    assert_eq!(
        s.prune_history(30, at(30)).await.unwrap(),
        Pruned::default()
    );
    assert_eq!(
        s.prune_history(30, at(31)).await.unwrap(),
        Pruned {
            journal: 0,
            runs: 1
        }
    );
}

on_both_backends!(
    history_lists_operations_oldest_first_with_fields_outcome_and_vendor_id,
    a_manual_outcome_and_a_delete_keep_the_vendor_id,
    keys_with_email_finds_a_key_under_its_old_and_new_email,
    pruning_removes_old_finished_rows_and_keeps_in_flight_new_and_snapshot,
    retention_0_or_past_any_date_prunes_nothing_and_days_count_back_from_now,
);
