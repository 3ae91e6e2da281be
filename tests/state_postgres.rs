//! The state in a real PostgreSQL (`state: postgres://…`), started by the test
//! (`support::postgres`): a sync converges and the next sends nothing; a one-shot
//! sync against a held run lock says who holds it; two `rosterd daemon` on one
//! database pass one at a time, and when the holder is killed with SIGKILL the other
//! takes over within a tick. The password never shows in any output.
//!
//! Without PostgreSQL installed these tests say so and pass, unless `CI` is set.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::disallowed_methods)]

use crate::support;

use std::fs::File;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use support::fake_hesh::{FakeHesh, FakeHeshOptions};
use support::fake_server::FakeVendor;
use support::postgres::{PgServer, PASSWORD};
use support::process::{free_port, wait_for};
use support::workspace::{Person, Workspace};

/// The variable the configs name for the database password.
const PW_ENV: &str = "ROSTERD_TEST_PG_PASSWORD";

/// A database of its own on the shared server, and its `state:` line.
struct Db {
    server: Arc<PgServer>,
    name: String,
}

impl Db {
    fn new() -> Option<Db> {
        let server = PgServer::shared()?;
        let name = server.database_blocking();
        Some(Db { server, name })
    }

    /// The config's `state:` value: the password by reference, as a user writes it.
    fn state_line(&self) -> String {
        format!(
            "state: postgres://{}:${{{PW_ENV}}}@127.0.0.1:{}/{}\n",
            support::postgres::USER,
            self.server.port,
            self.name
        )
    }

    fn location(&self) -> rosterd::store::StateLocation {
        rosterd::store::StateLocation::Postgres(
            rosterd::store::PgLocation::parse(&self.server.url(&self.name), None).unwrap(),
        )
    }

    /// Runs `f` on a fresh runtime (the tests here are plain threads).
    fn block_on<T>(f: impl std::future::Future<Output = T>) -> T {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(f)
    }

    /// Every run the state records: (started_at, finished_at, outcome), oldest first.
    fn runs(&self) -> Vec<(String, Option<String>, Option<String>)> {
        let url = self.server.url(&self.name);
        Db::block_on(async move {
            use sqlx::Connection;
            let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
            let runs = sqlx::query_as(
                "SELECT started_at, finished_at, outcome FROM runs ORDER BY started_at",
            )
            .fetch_all(&mut conn)
            .await
            .unwrap();
            conn.close().await.unwrap();
            runs
        })
    }

    /// The pid of the rosterd holding the run lock, as `rosterd status` finds it.
    fn holder(&self) -> Option<u32> {
        let location = self.location();
        Db::block_on(async move { rosterd::store::RunLock::holder(&location).await })
    }
}

/// A hesh workspace whose state is `db`; `head` goes before the rest of the config.
fn workspace(fake: &FakeHesh, db: &Db, head: &str) -> Workspace {
    let ws = Workspace::hesh(&fake.base_url(), fake.tenant_id(), fake.api_key(), "");
    let path = ws.path().join("rosterd.yaml");
    let yaml = std::fs::read_to_string(&path).unwrap();
    let yaml = yaml.replacen("state: state.db\n", &db.state_line(), 1);
    std::fs::write(&path, format!("{head}{yaml}")).unwrap();
    ws
}

/// Runs rosterd on `config` to the end: (exit code, stdout, stderr), checking that
/// neither the vendor key nor the database password shows.
fn run(ws: &Workspace, config: &Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_rosterd"))
        .arg("-c")
        .arg(config)
        .args(args)
        .env(ws.key_env, &ws.secret)
        .env(PW_ENV, PASSWORD)
        .env("RUST_LOG", "info")
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    for text in [&stdout, &stderr] {
        assert!(
            !text.contains(PASSWORD),
            "the database password leaked: {text}"
        );
        assert!(!text.contains(&ws.secret), "the vendor key leaked: {text}");
    }
    (out.status.code().unwrap_or(-1), stdout, stderr)
}

fn people(n: usize) -> Vec<Person> {
    (1..=n).map(Person::new).collect()
}

#[test]
fn a_sync_on_postgres_converges_and_the_next_sends_nothing() {
    let Some(db) = Db::new() else { return };
    let fake = FakeHesh::start_blocking(FakeHeshOptions::default());
    let ws = workspace(&fake, &db, "");
    ws.write_people(&people(5));
    let config = ws.path().join("rosterd.yaml");

    let (code, stdout, stderr) = run(&ws, &config, &["sync", "--format", "json"]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert_eq!(fake.users().len(), 5);
    fake.assert_no_duplicates();
    assert!(
        !ws.path().join("state.db").exists(),
        "a file state was written beside the PostgreSQL one"
    );

    fake.clear_requests();
    let (code, stdout, stderr) = run(&ws, &config, &["sync", "--format", "json"]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    let writes: Vec<_> = fake
        .requests()
        .into_iter()
        .filter(|r| r.method != "GET")
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert!(writes.is_empty(), "the second pass sent {writes:?}");

    // The state says so too: two passes, both ok; `status` reads it without the
    // password.
    let runs = db.runs();
    assert_eq!(runs.len(), 2, "{runs:?}");
    assert!(
        runs.iter().all(|r| r.2.as_deref() == Some("ok")),
        "{runs:?}"
    );
    let (code, stdout, stderr) = run(&ws, &config, &["status"]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(
        stdout.contains(&format!(
            "postgres://rosterd@127.0.0.1:{}/{}",
            db.server.port, db.name
        )),
        "{stdout}"
    );
}

#[test]
fn a_sync_against_a_held_run_lock_says_who_holds_it() {
    let Some(db) = Db::new() else { return };
    let fake = FakeHesh::start_blocking(FakeHeshOptions::default());
    let ws = workspace(&fake, &db, "");
    ws.write_people(&people(2));
    let config = ws.path().join("rosterd.yaml");
    let location = db.location();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let lock = runtime
        .block_on(rosterd::store::RunLock::acquire(&location))
        .unwrap();

    let (code, stdout, stderr) = run(&ws, &config, &["sync"]);
    assert_eq!(code, 1, "{stdout}\n{stderr}");
    let expected = format!(
        "another rosterd run holds the run lock of postgres://rosterd@127.0.0.1:{}/{} (pid {})",
        db.server.port,
        db.name,
        std::process::id()
    );
    assert!(stderr.contains(&expected), "{stderr}");
    assert!(fake.users().is_empty(), "a pass ran without the lock");

    runtime.block_on(lock.release());
    let (code, stdout, stderr) = run(&ws, &config, &["sync"]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert_eq!(fake.users().len(), 2);
}

/// `rosterd daemon` on `config`, its stderr (JSON lines) in `log`.
struct Daemon {
    child: Child,
    log: std::path::PathBuf,
}

impl Daemon {
    fn start(ws: &Workspace, config: &Path, log: &str) -> Daemon {
        let log = ws.path().join(log);
        let child = Command::new(env!("CARGO_BIN_EXE_rosterd"))
            .arg("-c")
            .arg(config)
            .args(["daemon", "--run-now"])
            .env(ws.key_env, &ws.secret)
            .env(PW_ENV, PASSWORD)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(File::create(&log).unwrap())
            .spawn()
            .unwrap();
        Daemon { child, log }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// RFC 3339 text (as the state stores it) → seconds on the test's clock scale.
fn seconds(t: &str) -> f64 {
    chrono::DateTime::parse_from_rfc3339(t)
        .unwrap()
        .timestamp_micros() as f64
        / 1e6
}

#[test]
fn two_daemons_pass_one_at_a_time_and_the_survivor_takes_over_from_a_killed_holder() {
    let Some(db) = Db::new() else { return };
    let fake = FakeHesh::start_blocking(FakeHeshOptions::default());
    // Slow answers keep a pass (and its lock) going for seconds: long enough to be
    // caught holding it.
    fake.delay(Duration::from_millis(3000));
    let (port_a, port_b) = (free_port(), free_port());
    let head = |port: u16| {
        format!(
            "schedule: \"* * * * * *\"\ndaemon: {{ listen: \"127.0.0.1:{port}\", stop_timeout_seconds: 5 }}\nlog: {{ format: json }}\n"
        )
    };
    let ws = workspace(&fake, &db, &head(port_a));
    ws.write_people(&people(3));
    let config_a = ws.path().join("rosterd.yaml");
    let config_b = ws.path().join("rosterd-b.yaml");
    let yaml = std::fs::read_to_string(&config_a).unwrap();
    std::fs::write(&config_b, yaml.replace(&head(port_a), &head(port_b))).unwrap();

    let mut a = Daemon::start(&ws, &config_a, "a.stderr");
    let mut b = Daemon::start(&ws, &config_b, "b.stderr");

    // One of them holds the lock, mid-pass; the other has found it held.
    let holder = wait_for(
        "a daemon to hold the run lock",
        Duration::from_secs(30),
        || db.holder(),
    );
    let (holder, waiter) = if holder == a.child.id() {
        (&mut a, &b)
    } else {
        assert_eq!(holder, b.child.id(), "the lock is held by neither daemon");
        (&mut b, &a)
    };
    wait_for("the other daemon to wait", Duration::from_secs(20), || {
        waiter
            .log()
            .contains("The run lock is held elsewhere")
            .then_some(())
    });
    assert!(
        !waiter.log().contains("Run started"),
        "the waiting daemon passed while the other held the lock:\n{}",
        waiter.log()
    );

    holder.child.kill().unwrap(); // SIGKILL: no goodbye to the server
    holder.child.wait().unwrap();
    let killed_at = Instant::now();
    let killed_wall = chrono::Utc::now().timestamp_micros() as f64 / 1e6;

    // The survivor takes over at its next tick and finishes the work.
    wait_for(
        "the survivor to start a pass",
        Duration::from_secs(20),
        || waiter.log().contains("Run started").then_some(()),
    );
    let took_over = killed_at.elapsed();
    wait_for("every user to exist once", Duration::from_secs(60), || {
        (fake.users().len() == 3).then_some(())
    });
    fake.assert_no_duplicates();
    eprintln!("takeover after SIGKILL: {took_over:?}");
    assert!(
        took_over < Duration::from_millis(2500),
        "the survivor took {took_over:?} (one tick is 1 s)"
    );

    // The history: one interrupted run (the killed holder's), and no two runs ever
    // overlapping in time.
    wait_for("a finished pass", Duration::from_secs(30), || {
        db.runs()
            .iter()
            .any(|r| r.1.is_some() && seconds(&r.0) > killed_wall - 0.5)
            .then_some(())
    });
    let runs = db.runs();
    for pair in runs.windows(2) {
        let end = pair[0].1.as_deref().map(seconds);
        match end {
            Some(end) => assert!(end <= seconds(&pair[1].0), "runs overlap: {runs:?}"),
            // Unfinished: only the killed one, and the next began after the kill.
            None => assert!(seconds(&pair[1].0) >= killed_wall - 0.5, "{runs:?}"),
        }
    }
    for d in [&a, &b] {
        assert!(!d.log().contains(PASSWORD), "the database password leaked");
    }
}

#[test]
fn state_copy_moves_a_file_state_to_postgres_and_the_next_pass_sends_nothing() {
    let Some(db) = Db::new() else { return };
    let fake = FakeHesh::start_blocking(FakeHeshOptions::default());
    // First on the file state, as before the move.
    let ws = Workspace::hesh(&fake.base_url(), fake.tenant_id(), fake.api_key(), "");
    ws.write_people(&people(4));
    let config = ws.path().join("rosterd.yaml");
    let (code, stdout, stderr) = run(&ws, &config, &["sync"]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert_eq!(fake.users().len(), 4);

    // The password by PGPASSWORD, not on the command line.
    let url = db.server.url_without_password(&db.name);
    let copy = |force: bool| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_rosterd"));
        c.args(["state", "copy", "--from"])
            .arg(ws.state())
            .args(["--to", &url])
            .env("PGPASSWORD", PASSWORD);
        if force {
            c.arg("--force");
        }
        let out = c.output().unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!text.contains(PASSWORD), "the password leaked: {text}");
        (out.status.code().unwrap_or(-1), text)
    };
    let (code, text) = copy(false);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("snapshot 4"), "{text}");
    assert!(text.contains(&format!("to {url}")), "{text}");

    // Again: the target holds a state now, kept unless --force.
    let (code, text) = copy(false);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("already holds a state"), "{text}");
    let (code, text) = copy(true);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("replaced the state"), "{text}");

    // The config moves to PostgreSQL: the copied snapshot is the truth, nothing to do.
    let yaml = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        yaml.replacen("state: state.db\n", &db.state_line(), 1),
    )
    .unwrap();
    fake.clear_requests();
    let (code, stdout, stderr) = run(&ws, &config, &["sync"]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    let writes = fake
        .requests()
        .into_iter()
        .filter(|r| r.method != "GET")
        .count();
    assert_eq!(writes, 0, "the pass after the move sent writes");
    fake.assert_no_duplicates();
    assert_eq!(
        db.runs().len(),
        2,
        "the file's run and the pass after the move"
    );
}
