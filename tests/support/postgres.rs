//! A real PostgreSQL server for tests: `initdb` into a temp dir, `postgres` on a free
//! port of 127.0.0.1 (its unix socket in the temp dir too), stopped and removed on
//! Drop — a panicking test included.
//!
//! Also compiled into the library's unit tests (`src/store/tests.rs` runs the same
//! store tests against both backends), so it uses std and sqlx only.
//!
//! The binaries come from `ROSTERD_POSTGRES_BIN` (a bin folder), else
//! `/usr/lib/postgresql/*/bin` (Debian's `postgresql` package). Without them the
//! tests that need a server print why and pass — unless `CI` is set: `.ci/run`
//! installs the package and exports `ROSTERD_POSTGRES_BIN`, so CI never skips.
//!
//! One server serves every test that runs at the same time ([`PgServer::shared`]),
//! each test in a database of its own ([`PgServer::database`]): `initdb` is the slow
//! part, a database costs milliseconds.

#![allow(dead_code)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::disallowed_methods)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

/// The role the tests connect as, and its password (scram-sha-256: the password is
/// really checked, so a test can tell a missing or wrong one).
pub const USER: &str = "rosterd";
pub const PASSWORD: &str = "pg-test-Secret-7d1c";

/// A running PostgreSQL server, owned by the test (or tests) holding it.
pub struct PgServer {
    dir: tempfile::TempDir,
    child: Mutex<Option<Child>>,
    pub port: u16,
}

/// The bin folder holding initdb and postgres, or `None` (with the reason printed)
/// when there is none and `CI` is unset.
pub fn bin_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("ROSTERD_POSTGRES_BIN") {
        let dir = PathBuf::from(dir);
        assert!(
            dir.join("initdb").is_file() && dir.join("postgres").is_file(),
            "ROSTERD_POSTGRES_BIN={} holds no initdb and postgres",
            dir.display()
        );
        return Some(dir);
    }
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("bin"))
        .filter(|bin| bin.join("initdb").is_file() && bin.join("postgres").is_file())
        .collect();
    // The newest major version (folders are named by it).
    found.sort_by_key(|p| {
        p.parent()
            .and_then(|v| v.file_name())
            .and_then(|v| v.to_str())
            .and_then(|v| v.parse::<u32>().ok())
            .unwrap_or(0)
    });
    if let Some(bin) = found.pop() {
        return Some(bin);
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "CI is set but PostgreSQL is not installed: set ROSTERD_POSTGRES_BIN or install \
         Debian's `postgresql` package"
    );
    eprintln!(
        "skipped: PostgreSQL is not installed (no /usr/lib/postgresql/*/bin) and \
         ROSTERD_POSTGRES_BIN is unset (install Debian's `postgresql` package; CI sets \
         ROSTERD_POSTGRES_BIN and never skips)"
    );
    None
}

/// initdb and postgres refuse to run as root: as root, they run as this user.
fn unprivileged() -> Option<(u32, u32)> {
    if !rustix::process::geteuid().is_root() {
        return None;
    }
    // Debian's package creates `postgres`; `nobody` does everywhere else.
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    for name in ["postgres", "nobody"] {
        for line in passwd.lines() {
            let f: Vec<&str> = line.split(':').collect();
            if f.len() > 3 && f[0] == name {
                if let (Ok(uid), Ok(gid)) = (f[2].parse(), f[3].parse()) {
                    return Some((uid, gid));
                }
            }
        }
    }
    panic!("running as root, and there is no postgres or nobody user to run PostgreSQL as");
}

fn command(bin: &Path, program: &str, user: Option<(u32, u32)>) -> Command {
    match user {
        None => Command::new(bin.join(program)),
        Some((uid, gid)) => {
            let mut c = Command::new("setpriv");
            c.args([
                format!("--reuid={uid}"),
                format!("--regid={gid}"),
                "--clear-groups".into(),
                "--".into(),
            ])
            .arg(bin.join(program));
            c
        }
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

static SHARED: Mutex<Weak<PgServer>> = Mutex::new(Weak::new());
static DATABASES: AtomicU32 = AtomicU32::new(0);

impl PgServer {
    /// The server every test running now shares, started when none runs; `None` when
    /// PostgreSQL is not installed (see [`bin_dir`]). It stops once the last test
    /// holding it drops it.
    pub fn shared() -> Option<Arc<PgServer>> {
        let mut shared = SHARED.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(server) = shared.upgrade() {
            return Some(server);
        }
        let server = Arc::new(PgServer::start()?);
        *shared = Arc::downgrade(&server);
        Some(server)
    }

    /// A server of its own (for a test that stops or breaks it).
    pub fn start() -> Option<PgServer> {
        let bin = bin_dir()?;
        let user = unprivileged();
        let dir = tempfile::Builder::new()
            .prefix("rosterd-pg-")
            .tempdir()
            .unwrap();
        if let Some((uid, gid)) = user {
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid)).unwrap();
        }
        let pwfile = dir.path().join("pwfile");
        std::fs::write(&pwfile, PASSWORD).unwrap();
        if let Some((uid, gid)) = user {
            std::os::unix::fs::chown(&pwfile, Some(uid), Some(gid)).unwrap();
        }
        let data = dir.path().join("data");
        let out = command(&bin, "initdb", user)
            .arg("-D")
            .arg(&data)
            .args([
                "--username",
                USER,
                "--auth",
                "scram-sha-256",
                "--encoding",
                "UTF8",
                "--locale",
                "C",
                "--no-sync",
            ])
            .arg(format!("--pwfile={}", pwfile.display()))
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "initdb failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        // A port found free may be taken before postgres binds it: try a few.
        let mut last = String::new();
        for _ in 0..5 {
            let port = free_port();
            let log = dir.path().join(format!("postgres-{port}.log"));
            let mut child = spawn(&bin, user, dir.path(), &data, &log, port);
            match wait_ready(&mut child, &data, &log) {
                Ok(()) => {
                    return Some(PgServer {
                        dir,
                        child: Mutex::new(Some(child)),
                        port,
                    })
                }
                Err(message) => {
                    last = message;
                    stop(child);
                }
            }
        }
        panic!("postgres did not start: {last}");
    }

    /// The URL of `database` on this server, with the password (as a user would
    /// write it after `${…}` interpolation).
    pub fn url(&self, database: &str) -> String {
        format!(
            "postgres://{USER}:{PASSWORD}@127.0.0.1:{}/{database}",
            self.port
        )
    }

    /// The URL of `database` without the password.
    pub fn url_without_password(&self, database: &str) -> String {
        format!("postgres://{USER}@127.0.0.1:{}/{database}", self.port)
    }

    /// A new, empty database for one test; its name.
    pub async fn database(&self) -> String {
        use sqlx::{Connection, Executor};
        let name = format!(
            "t{}_{}",
            std::process::id(),
            DATABASES.fetch_add(1, Ordering::Relaxed)
        );
        let mut conn = sqlx::PgConnection::connect(&self.url("postgres"))
            .await
            .unwrap();
        conn.execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .await
            .unwrap();
        conn.close().await.unwrap();
        name
    }

    /// [`PgServer::database`], blocking (for tests without a runtime of their own).
    pub fn database_blocking(&self) -> String {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(self.database())
    }

    /// Stops postgres now (immediate shutdown); Drop does it too.
    pub fn stop(&self) {
        if let Some(child) = self.child.lock().unwrap_or_else(|e| e.into_inner()).take() {
            stop(child);
        }
    }
}

/// Starts postgres on `port`, its log in `log`.
fn spawn(
    bin: &Path,
    user: Option<(u32, u32)>,
    dir: &Path,
    data: &Path,
    log: &Path,
    port: u16,
) -> Child {
    let log_file = std::fs::File::create(log).unwrap();
    if let Some((uid, gid)) = user {
        std::os::unix::fs::chown(log, Some(uid), Some(gid)).unwrap();
    }
    command(bin, "postgres", user)
        .arg("-D")
        .arg(data)
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .arg("-k")
        .arg(dir)
        // Tests' databases are throwaway: no waiting on the disk.
        .args(["-c", "fsync=off", "-c", "synchronous_commit=off"])
        .args(["-c", "full_page_writes=off", "-c", "max_connections=200"])
        .stdin(Stdio::null())
        .stdout(log_file.try_clone().unwrap())
        .stderr(log_file)
        .spawn()
        .unwrap()
}

/// Waits until postgres says it is ready (postmaster.pid's status line).
fn wait_ready(child: &mut Child, data: &Path, log: &Path) -> Result<(), String> {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(30) {
        if let Ok(Some(status)) = child.try_wait() {
            let text = std::fs::read_to_string(log).unwrap_or_default();
            return Err(format!("postgres exited ({status}): {text}"));
        }
        let pid = std::fs::read_to_string(data.join("postmaster.pid")).unwrap_or_default();
        if pid.lines().nth(7).is_some_and(|l| l.trim() == "ready") {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Err(format!(
        "not ready after 30 s: {}",
        std::fs::read_to_string(log).unwrap_or_default()
    ))
}

/// Immediate shutdown (SIGQUIT, which also ends the backends), then SIGKILL.
fn stop(mut child: Child) {
    if let Some(pid) = rustix::process::Pid::from_raw(child.id() as i32) {
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::QUIT);
    }
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(10) {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let _ = child.kill();
    let _ = child.wait();
}

impl Drop for PgServer {
    fn drop(&mut self) {
        self.stop();
        // The TempDir field removes the folder after this.
    }
}
