//! rosterd's state file: the per-provider snapshot, the operation journal and the run
//! history, in one SQLite database.
//!
//! The store only keeps what it is given: every time it records is passed in by the
//! caller, and it makes no decisions. A real run opens it with [`Store::open`], which
//! creates and migrates the file; a dry run opens it with [`Store::open_read_only`],
//! which never creates, migrates or writes anything.
//!
//! Opening is careful about whose file it is: a database that holds tables but not
//! rosterd's marker is refused rather than migrated, and a file written by a newer
//! rosterd is refused rather than misread.

mod failures;
mod groups;
mod history;
mod journal;
mod leavers;
mod lock;
mod quirks;
mod rate_windows;
mod runs;
mod snapshot;
mod snapshot_read;
pub mod types;

#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};

use chrono::{DateTime, SecondsFormat, Utc};
use sqlx::migrate::{MigrateError, Migrator};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
};
use sqlx::{ConnectOptions, Connection, Row};

pub use failures::{Attention, FailureRecord};
pub use groups::{GroupRecord, GroupRow, GroupSnapshot, MemberRow};
pub use history::{HistoryEntry, HistoryFilter, Pruned};
pub use journal::{Begun, JournalEntry, JournalStatus, SnapshotChange};
pub use leavers::LeaverOutcome;
pub use lock::{LockError, RunLock};
pub use quirks::QuirkRow;
pub use rate_windows::RateWindow;
pub use runs::{PassOutcome, RunMode, RunRecord};
pub use snapshot::{Forgotten, SnapshotUpsert};
pub use types::{AccountState, OpKind, RowDetails, Snapshot, SnapshotRow};

/// The schema, embedded in the binary.
static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

/// Written by the first migration; its absence means "not our database".
const MARKER_KEY: &str = "application";
const MARKER_VALUE: &str = "rosterd";

/// A writer waiting on another connection's lock gives up after this long.
const BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open the state file {}: {source}{}", path.display(), with_hint(source))]
    Open {
        path: PathBuf,
        #[source]
        source: sqlx::Error,
    },
    #[error("{path} is not a rosterd state file")]
    NotRosterd { path: PathBuf },
    #[error(
        "{path} was written by a newer rosterd (schema {found}, this build knows up to {supported})"
    )]
    NewerSchema {
        path: PathBuf,
        found: i64,
        supported: i64,
    },
    #[error(
        "{path} has an older schema (schema {found}, this build needs {required}); run `rosterd sync` once without --dry-run to upgrade it"
    )]
    OlderSchema {
        path: PathBuf,
        found: i64,
        required: i64,
    },
    #[error("cannot migrate the state file {path}: {source}")]
    Migrate {
        path: PathBuf,
        #[source]
        source: MigrateError,
    },
    #[error("cannot {action}: {source}{}", with_hint(source))]
    Query {
        action: &'static str,
        #[source]
        source: sqlx::Error,
    },
    #[error("the state file holds a bad snapshot or journal row for {provider}/{external_id}: {message}")]
    Corrupt {
        provider: String,
        external_id: String,
        message: String,
    },
    #[error("the state file holds a bad {table} row ({key}): {message}")]
    CorruptRow {
        table: &'static str,
        key: String,
        message: String,
    },
    #[error("reading the snapshot of {provider} stopped unexpectedly: {source}")]
    Unpack {
        provider: String,
        #[source]
        source: tokio::task::JoinError,
    },
    #[error("journal entry {id} is not in flight (unknown, or already finished)")]
    NotInFlight { id: i64 },
    #[error("run {run_id} was never started")]
    UnknownRun { run_id: String },
}

/// What the operator can do about a failed SQLite call, when SQLite or the OS said
/// why: "disk I/O error (code 4874)" tells nobody that the disk is full.
fn hint(source: &sqlx::Error) -> Option<&'static str> {
    match source {
        sqlx::Error::Database(db) => {
            let code: i64 = db.code()?.parse().ok()?;
            // Extended result codes keep the primary code in the low byte.
            match code & 0xff {
                5 | 6 => Some(
                    "another process holds the state file locked (an sqlite3 shell, a backup \
                     tool, or a rosterd with another state path): let it finish, then run again",
                ),
                8 => Some(
                    "the state file or its folder is read-only: rosterd writes the file and \
                     its -wal and -shm files beside it",
                ),
                13 => Some("the disk that holds the state file is full: free some space"),
                10 => Some(
                    "a disk I/O error: is the disk that holds the state file full, read-only \
                     or failing?",
                ),
                14 => Some(
                    "the file cannot be opened: does its folder exist, and may rosterd write there?",
                ),
                _ => None,
            }
        }
        sqlx::Error::Io(e) => match e.kind() {
            std::io::ErrorKind::StorageFull => {
                Some("the disk that holds the state file is full: free some space")
            }
            std::io::ErrorKind::ReadOnlyFilesystem | std::io::ErrorKind::PermissionDenied => {
                Some("rosterd may not write the state file or its folder")
            }
            _ => None,
        },
        _ => None,
    }
}

/// ` (hint)` for messages, or nothing.
fn with_hint(source: &sqlx::Error) -> String {
    hint(source).map_or_else(String::new, |h| format!(" ({h})"))
}

/// Wraps a sqlx error with the action that failed.
fn query_err(action: &'static str) -> impl FnOnce(sqlx::Error) -> StoreError {
    move |source| StoreError::Query { action, source }
}

/// The state file, open for reading (and writing, unless opened read-only).
#[derive(Debug, Clone)]
pub struct Store {
    pool: SqlitePool,
}

/// What a look at an existing file found, before anything is written to it.
enum Inspection {
    /// No tables at all: a file just created, or an empty one.
    Empty,
    /// rosterd's file, with these migration versions applied successfully.
    Rosterd { applied: Vec<i64> },
}

impl Store {
    /// Opens the state file at `path` for a real run: creates it if missing, checks it
    /// is rosterd's and not from a newer build, turns on WAL, and applies any pending
    /// migrations.
    pub async fn open(path: &Path) -> Result<Store, StoreError> {
        make_private(path)?;
        let base = base_options(path);

        // Look first, on a connection that changes nothing: the journal mode is only
        // switched to WAL (a change to the file) once we know the file is ours.
        let mut probe = base
            .clone()
            .create_if_missing(true)
            .connect()
            .await
            .map_err(|e| open_err(path, e))?;
        let inspection = inspect(&mut probe, path).await;
        // Closing is best effort: the connection is dropped either way.
        let _ = probe.close().await;
        inspection?;

        let options = base
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal);
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await
            .map_err(|e| open_err(path, e))?;
        MIGRATOR
            .run(&pool)
            .await
            .map_err(|source| StoreError::Migrate {
                path: path.to_path_buf(),
                source,
            })?;
        Ok(Store { pool })
    }

    /// Opens the state file for a dry run, which must write nothing: `Ok(None)` when
    /// there is no state yet (no file, or a file without tables), an error when the
    /// file needs a migration first.
    pub async fn open_read_only(path: &Path) -> Result<Option<Store>, StoreError> {
        match tokio::fs::try_exists(path).await {
            Ok(true) => {}
            Ok(false) => return Ok(None),
            Err(e) => {
                return Err(open_err(path, sqlx::Error::Io(e)));
            }
        }
        let options = base_options(path).read_only(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(2)
            .connect_with(options)
            .await
            .map_err(|e| open_err(path, e))?;
        let inspection = {
            let mut conn = pool.acquire().await.map_err(|e| open_err(path, e))?;
            inspect(&mut conn, path).await
        };
        let applied = match inspection {
            Ok(Inspection::Empty) => {
                pool.close().await;
                return Ok(None);
            }
            Ok(Inspection::Rosterd { applied }) => applied,
            Err(e) => {
                pool.close().await;
                return Err(e);
            }
        };
        let pending = MIGRATOR
            .iter()
            .any(|m| !m.migration_type.is_down_migration() && !applied.contains(&m.version));
        if pending {
            pool.close().await;
            return Err(StoreError::OlderSchema {
                path: path.to_path_buf(),
                found: applied.iter().copied().max().unwrap_or(0),
                required: supported_version(),
            });
        }
        Ok(Some(Store { pool }))
    }

    /// Closes every connection, letting SQLite fold the WAL back into the file.
    pub async fn close(self) {
        self.pool.close().await;
    }
}

/// The state file and its `-wal` / `-shm` are 0600: they hold every employee's name
/// and email. A new file is made 0600 before SQLite opens it (SQLite gives the `-wal`
/// and `-shm` files the database file's mode); an existing one open to group or others
/// is tightened, with a warning.
fn make_private(path: &Path) -> Result<(), StoreError> {
    let io_err = |e| open_err(path, sqlx::Error::Io(e));
    crate::files::create_private(path).map_err(io_err)?;
    for suffix in ["", "-wal", "-shm"] {
        let mut name = path.as_os_str().to_os_string();
        name.push(suffix);
        let file = PathBuf::from(name);
        if crate::files::private(&file).map_err(io_err)? {
            tracing::warn!(
                file = %file.display(),
                "The state file was readable by others; it is now 0600."
            );
        }
    }
    Ok(())
}

/// Options every connection shares, read-only or not.
fn base_options(path: &Path) -> SqliteConnectOptions {
    SqliteConnectOptions::new()
        .filename(path)
        .busy_timeout(BUSY_TIMEOUT)
        .foreign_keys(true)
        // A statement waiting on a lock is slow by design (busy_timeout): not a
        // warning of its own, the error that may follow says what happened.
        .log_slow_statements(log::LevelFilter::Debug, std::time::Duration::from_secs(1))
    // `synchronous` stays FULL: the journal must be on disk before an operation is
    // sent, or a power cut could lose the record of work the vendor did.
}

fn open_err(path: &Path, source: sqlx::Error) -> StoreError {
    if is_not_a_database(&source) {
        StoreError::NotRosterd {
            path: path.to_path_buf(),
        }
    } else {
        StoreError::Open {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// SQLITE_NOTADB: the file exists but is not an SQLite database at all.
fn is_not_a_database(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(db) => db.code().as_deref() == Some("26"),
        _ => false,
    }
}

/// The highest schema version this build knows.
fn supported_version() -> i64 {
    MIGRATOR.iter().map(|m| m.version).max().unwrap_or_default()
}

/// Decides, without writing, whether the file is empty, rosterd's, or something else.
async fn inspect(conn: &mut SqliteConnection, path: &Path) -> Result<Inspection, StoreError> {
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_schema \
         WHERE type IN ('table', 'view') AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'",
    )
    .fetch_all(&mut *conn)
    .await
    .map_err(|e| open_err(path, e))?;
    if tables.is_empty() {
        return Ok(Inspection::Empty);
    }
    let has = |name: &str| tables.iter().any(|t| t == name);
    let not_ours = || StoreError::NotRosterd {
        path: path.to_path_buf(),
    };
    if !has("rosterd_meta") || !has("_sqlx_migrations") {
        return Err(not_ours());
    }
    let marker: Option<String> = sqlx::query_scalar("SELECT value FROM rosterd_meta WHERE key = ?")
        .bind(MARKER_KEY)
        .fetch_optional(&mut *conn)
        .await
        .map_err(|e| open_err(path, e))?;
    if marker.as_deref() != Some(MARKER_VALUE) {
        return Err(not_ours());
    }
    let rows = sqlx::query("SELECT version, success FROM _sqlx_migrations")
        .fetch_all(&mut *conn)
        .await
        .map_err(|e| open_err(path, e))?;
    let mut applied = Vec::with_capacity(rows.len());
    let mut newest = 0;
    for row in rows {
        let version: i64 = row.try_get(0).map_err(|e| open_err(path, e))?;
        let success: bool = row.try_get(1).map_err(|e| open_err(path, e))?;
        newest = newest.max(version);
        if success {
            applied.push(version);
        }
    }
    let supported = supported_version();
    if newest > supported {
        return Err(StoreError::NewerSchema {
            path: path.to_path_buf(),
            found: newest,
            supported,
        });
    }
    Ok(Inspection::Rosterd { applied })
}

/// How times are stored: UTC, fixed width, so text order is time order.
fn time_text(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

fn parse_time(s: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| format!("bad time {s:?}: {e}"))
}
