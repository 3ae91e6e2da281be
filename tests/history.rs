//! `rosterd history` against state files made by real passes (a fake hesh on
//! 127.0.0.1) and by the store at chosen times: one user's create, update and disable
//! in order with the passes' run ids, the filters, the three formats, a state file
//! from before schema 5 upgraded by the next pass, and `state_retention_days`
//! pruning at the end of a pass.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::support;

use chrono::{DateTime, Duration, TimeZone, Utc};
use serde_json::Value;

use rosterd::store::{AccountState, OpKind, PassOutcome, RunMode, Store};
use support::fake_hesh::{FakeHesh, FakeHeshOptions};
use support::fake_server::FakeVendor;
use support::state::snapshot_states;
use support::workspace::{Person, Workspace};

fn workspace(fake: &FakeHesh) -> Workspace {
    Workspace::hesh(&fake.base_url(), fake.tenant_id(), fake.api_key(), "")
}

/// `history ARGS --format json`, which must succeed: its entries.
fn history_json(ws: &Workspace, args: &[&str]) -> Vec<Value> {
    let mut all = vec!["history"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--format", "json"]);
    let (code, stdout, stderr) = ws.run(&all);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    let doc: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(doc["format_version"], 1);
    doc["entries"].as_array().unwrap().clone()
}

fn column<'a>(entries: &'a [Value], key: &str) -> Vec<&'a str> {
    entries.iter().map(|e| e[key].as_str().unwrap()).collect()
}

#[tokio::test]
async fn history_follows_one_user_across_create_update_and_disable() {
    let fake = FakeHesh::start(FakeHeshOptions::default()).await;
    let ws = workspace(&fake);
    let mut people: Vec<Person> = (1..=2).map(Person::new).collect();
    ws.write_people(&people);
    assert_eq!(ws.sync().0, 0);
    people[0].last = "Renamed".into();
    ws.write_people(&people);
    assert_eq!(ws.sync().0, 0);
    people[0].status = "inactive".into();
    ws.write_people(&people);
    assert_eq!(ws.sync().0, 0);

    let entries = history_json(&ws, &["--user", "E00001"]);
    assert_eq!(column(&entries, "op"), ["create", "update", "disable"]);
    assert_eq!(column(&entries, "user"), ["E00001"; 3]);
    assert_eq!(column(&entries, "outcome"), ["done"; 3]);
    assert_eq!(column(&entries, "pass_outcome"), ["ok"; 3]);
    // The passes' run ids, as `status` lists them (newest first there).
    let (code, stdout, _) = ws.run(&["status", "--format", "json"]);
    assert_eq!(code, 0);
    let status: Value = serde_json::from_str(&stdout).unwrap();
    let mut runs: Vec<&str> = status["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["run_id"].as_str().unwrap())
        .collect();
    runs.reverse();
    assert_eq!(column(&entries, "run_id"), runs);
    assert_eq!(entries[1]["fields"], serde_json::json!(["last_name"]));
    assert_eq!(entries[2]["fields"], serde_json::json!([]));
    let created = entries[0]["fields"].as_array().unwrap();
    assert!(created.iter().any(|f| f == "email"), "{created:?}");
    let vendor_id = fake.user_by_email(&people[0].email).unwrap().id.to_string();
    assert_eq!(column(&entries, "vendor_id"), [vendor_id.as_str(); 3]);
    assert!(entries.iter().all(|e| e["error"].is_null()));
    let sent = column(&entries, "sent_at");
    assert!(
        sent.windows(2).all(|w| w[0] <= w[1]),
        "oldest first: {sent:?}"
    );

    // No email, name or phone in any form of the answer.
    let (_, text, _) = ws.run(&["history", "--user", "E00001"]);
    let (_, csv, _) = ws.run(&["history", "--user", "E00001", "--format", "csv"]);
    let json = serde_json::to_string(&entries).unwrap();
    for out in [&text, &csv, &json] {
        for value in [&people[0].email, &people[0].first, &people[0].phone] {
            assert!(!out.contains(value.as_str()), "{value} in {out}");
        }
    }
    assert!(
        text.contains("E00001") && text.contains("disable"),
        "{text}"
    );
    assert!(text.contains(runs[2]), "{text}");

    // CSV: a header, then one record per operation, the same as the JSON.
    let mut reader = csv::Reader::from_reader(csv.as_bytes());
    let header: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
    assert_eq!(
        header,
        [
            "sent_at",
            "finished_at",
            "run_id",
            "pass_outcome",
            "provider",
            "user",
            "op",
            "fields",
            "outcome",
            "vendor_id",
            "error"
        ]
    );
    let records: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    let ops: Vec<&str> = records.iter().map(|r| &r[6]).collect();
    assert_eq!(ops, ["create", "update", "disable"]);
    assert_eq!(&records[1][7], "last_name");
    assert_eq!(&records[2][2], runs[2]);

    // The whole history holds the other user's create too; a provider filter that
    // matches nothing answers nothing.
    assert_eq!(history_json(&ws, &[]).len(), 4);
    assert!(history_json(&ws, &["--provider", "vyte"]).is_empty());
}

fn day(d: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, d, 12, 0, 0).unwrap()
}

/// A finished pass at `at` with one confirmed operation on `key` (email `email`).
async fn recorded(store: &Store, run: &str, at: DateTime<Utc>, op: OpKind, key: &str, email: &str) {
    store.run_start(run, RunMode::Apply, at).await.unwrap();
    let payload = serde_json::json!({ "op": op, "external_id": key, "email": email }).to_string();
    let begun = store
        .journal_begin_fields(run, "hesh", op, key, &payload, Some(&["email"]), at)
        .await
        .unwrap();
    store.journal_finish(begun.id, None, at).await.unwrap();
    store
        .run_finish(run, at, PassOutcome::Ok, "{}")
        .await
        .unwrap();
}

#[tokio::test]
async fn since_until_and_email_select_what_history_shows() {
    let fake = FakeHesh::start(FakeHeshOptions::default()).await;
    let ws = workspace(&fake);
    let store = Store::open(&ws.state()).await.unwrap();
    recorded(
        &store,
        "r1",
        day(1),
        OpKind::Create,
        "K1",
        "old@corp.example",
    )
    .await;
    recorded(
        &store,
        "r2",
        day(2),
        OpKind::Update,
        "K1",
        "new@corp.example",
    )
    .await;
    recorded(
        &store,
        "r3",
        day(3),
        OpKind::Disable,
        "K1",
        "new@corp.example",
    )
    .await;
    recorded(
        &store,
        "r4",
        day(3),
        OpKind::Create,
        "K2",
        "other@corp.example",
    )
    .await;
    store.close().await;

    let runs = |args: &[&str]| -> Vec<String> {
        column(&history_json(&ws, args), "run_id")
            .into_iter()
            .map(String::from)
            .collect()
    };
    assert_eq!(
        runs(&["--since", "2026-01-02", "--until", "2026-01-02"]),
        ["r2"]
    );
    assert_eq!(runs(&["--since", "2026-01-02"]), ["r2", "r3", "r4"]);
    assert_eq!(runs(&["--until", "2026-01-01"]), ["r1"]);
    assert_eq!(
        runs(&["--since", "2026-01-03T12:00:00Z", "--user", "K1"]),
        ["r3"],
        "an exact --since is inclusive"
    );
    // An email the user had before it changed finds all of that user's operations.
    assert_eq!(runs(&["--email", "OLD@corp.example"]), ["r1", "r2", "r3"]);
    assert_eq!(runs(&["--email", "new@corp.example"]), ["r1", "r2", "r3"]);
    assert!(runs(&["--email", "nobody@corp.example"]).is_empty());
    let (code, text, _) = ws.run(&["history", "--email", "nobody@corp.example"]);
    assert_eq!(code, 0);
    assert!(text.contains("no user key ever had that email"), "{text}");

    let (code, _, stderr) = ws.run(&["history", "--since", "yesterday"]);
    assert_eq!(code, 1);
    assert!(stderr.contains("YYYY-MM-DD"), "{stderr}");
}

#[test]
fn history_without_a_state_file_is_an_error_and_creates_none() {
    let ws = Workspace::hesh(
        "http://127.0.0.1:9",
        "00000000-0000-4000-8000-000000000000",
        "unused-secret-4711",
        "",
    );
    let (code, stdout, stderr) = ws.run(&["history"]);
    assert_eq!(code, 1, "{stdout}");
    assert!(stderr.contains("no state file at"), "{stderr}");
    assert!(!ws.state().exists());
}

/// A state file as rosterd made it before schema 5 (migrations 1 and 2), with one
/// pass that created `key`.
async fn schema_2_state(path: &std::path::Path, key: &str) {
    let dir = tempfile::tempdir().unwrap();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
    for name in ["0001_init.sql", "0002_failures.sql"] {
        std::fs::copy(root.join(name), dir.path().join(name)).unwrap();
    }
    let migrator = sqlx::migrate::Migrator::new(dir.path()).await.unwrap();
    let options = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true);
    let pool = sqlx::SqlitePool::connect_with(options).await.unwrap();
    migrator.run(&pool).await.unwrap();
    sqlx::query(
        "INSERT INTO runs (run_id, started_at, finished_at, mode, outcome, summary) \
         VALUES ('old-run', '2026-01-01T00:00:00.000000Z', '2026-01-01T00:00:01.000000Z', \
                 'apply', 'ok', '{}')",
    )
    .execute(&pool)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO journal (run_id, provider, op, external_id, payload, status, created_at, \
                              finished_at) \
         VALUES ('old-run', 'hesh', 'create', ?, '{}', 'done', \
                 '2026-01-01T00:00:00.500000Z', '2026-01-01T00:00:00.600000Z')",
    )
    .bind(key)
    .execute(&pool)
    .await
    .unwrap();
    pool.close().await;
}

#[tokio::test]
async fn a_state_file_from_before_schema_5_is_upgraded_by_a_pass_and_keeps_its_history() {
    let fake = FakeHesh::start(FakeHeshOptions::default()).await;
    let ws = workspace(&fake);
    let mut people = vec![Person::new(1)];
    ws.write_people(&people);
    schema_2_state(&ws.state(), "E00001").await;

    // Read-only: it cannot upgrade the file, and says what will.
    let (code, _, stderr) = ws.run(&["history"]);
    assert_eq!(code, 1);
    assert!(stderr.contains("run `rosterd sync` once"), "{stderr}");

    people[0].last = "Renamed".into();
    ws.write_people(&people);
    assert_eq!(ws.sync().0, 0);
    let entries = history_json(&ws, &["--user", "E00001"]);
    assert_eq!(column(&entries, "run_id")[0], "old-run");
    assert_eq!(
        entries[0]["outcome"], "done",
        "read from the old status column"
    );
    assert!(
        entries[0]["fields"].is_null(),
        "not recorded before schema 5"
    );
    assert!(entries[0]["vendor_id"].is_null());
    assert_eq!(entries.len(), 2, "{entries:?}");
    assert_eq!(entries[1]["outcome"], "done");
    assert!(entries[1]["fields"].is_array());
}

#[tokio::test]
async fn a_pass_prunes_history_older_than_state_retention_days() {
    let fake = FakeHesh::start(FakeHeshOptions::default()).await;
    let ws = workspace(&fake);
    let config = ws.path().join("rosterd.yaml");
    let mut yaml = std::fs::read_to_string(&config).unwrap();
    yaml.push_str("state_retention_days: 30\n");
    std::fs::write(&config, yaml).unwrap();
    let people: Vec<Person> = (1..=2).map(Person::new).collect();
    ws.write_people(&people);
    assert_eq!(ws.sync().0, 0);

    // Rows from 40 days ago (past the limit), 10 days ago (within it), and an
    // operation a crash left in flight 40 days ago, which recovery still needs.
    #[allow(clippy::disallowed_methods)]
    let now = Utc::now();
    let store = Store::open(&ws.state()).await.unwrap();
    recorded(
        &store,
        "old",
        now - Duration::days(40),
        OpKind::Update,
        "E00001",
        "a@x",
    )
    .await;
    recorded(
        &store,
        "recent",
        now - Duration::days(10),
        OpKind::Update,
        "E00001",
        "a@x",
    )
    .await;
    let crashed = now - Duration::days(40);
    let payload = r#"{"op":"disable","external_id":"Z9","email":"z9@corp.example"}"#;
    store
        .run_start("crashed", RunMode::Apply, crashed)
        .await
        .unwrap();
    store
        .journal_begin("crashed", "hesh", OpKind::Disable, "Z9", payload, crashed)
        .await
        .unwrap();
    store.close().await;

    assert_eq!(ws.sync().0, 0);
    let entries = history_json(&ws, &[]);
    let mut kept: Vec<&str> = column(&entries, "run_id");
    kept.dedup();
    assert!(!kept.contains(&"old"), "{kept:?}");
    assert!(
        kept.contains(&"recent") && kept.contains(&"crashed"),
        "{kept:?}"
    );
    assert_eq!(entries.iter().filter(|e| e["op"] == "create").count(), 2);
    let (_, stdout, _) = ws.run(&["status", "--format", "json", "--runs", "50"]);
    let status: Value = serde_json::from_str(&stdout).unwrap();
    let runs: Vec<&str> = status["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["run_id"].as_str().unwrap())
        .collect();
    assert!(
        !runs.contains(&"old") && runs.contains(&"recent"),
        "{runs:?}"
    );
    assert_eq!(runs.len(), 4, "two passes, recent and crashed: {runs:?}");
    let states = snapshot_states(&ws.state(), "hesh").await;
    assert_eq!(states.len(), 2, "the snapshot is never pruned");
    assert!(states.iter().all(|(_, s)| *s == AccountState::Active));
}

#[test]
fn state_retention_days_defaults_to_400_and_takes_0() {
    let yaml = "source: { type: csv, path: users.csv }\n\
                providers:\n  - { name: hesh, type: hesh, base_url: 'http://127.0.0.1:9', \
                tenant_id: 00000000-0000-4000-8000-000000000000, api_key: '${KEY}' }\n";
    let env = |_: &str| Some("a-test-secret-value".to_string());
    let path = std::path::Path::new("rosterd.yaml");
    let config = rosterd::config::Config::from_yaml(yaml, path, &env).unwrap();
    assert_eq!(config.state_retention_days, 400);
    let keep = format!("{yaml}state_retention_days: 0\n");
    let config = rosterd::config::Config::from_yaml(&keep, path, &env).unwrap();
    assert_eq!(config.state_retention_days, 0);
    let bad = format!("{yaml}state_retention_days: -1\n");
    let err = rosterd::config::Config::from_yaml(&bad, path, &env).unwrap_err();
    assert!(err.to_string().contains("state_retention_days"), "{err}");
}
