//! rosterd's state: the per-provider snapshot, the operation journal and the run
//! history, in one SQLite file or one PostgreSQL database (`state: postgres://…`,
//! see `postgres.rs`); the rest of the program does not care which (`backend.rs`).
//!
//! The store only keeps what it is given: every time it records is passed in by the
//! caller, and it makes no decisions. A real run opens it with [`Store::open`], which
//! creates and migrates the file; a dry run opens it with [`Store::open_read_only`],
//! which never creates, migrates or writes anything.
//!
//! Opening is careful about whose file it is: a database that holds tables but not
//! rosterd's marker is refused rather than migrated, and a file written by a newer
//! rosterd is refused rather than misread.

#[macro_use]
pub(crate) mod backend;
pub mod copy;
mod failures;
mod groups;
mod history;
mod journal;
mod leavers;
pub mod location;
mod lock;
mod lock_postgres;
mod postgres;
mod quirks;
mod rate_windows;
mod references;
mod runs;
mod snapshot;
mod snapshot_read;
pub mod types;

#[cfg(test)]
#[path = "../../tests/support/postgres.rs"]
pub(crate) mod test_postgres;
#[cfg(test)]
mod test_state;
#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};

use chrono::{DateTime, SecondsFormat, Utc};
use sqlx::migrate::{MigrateError, Migrator};
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePoolOptions};
use sqlx::{ConnectOptions, Connection};

use backend::Pool;

pub use failures::{Attention, FailureRecord};
pub use groups::{GroupRecord, GroupRow, GroupSnapshot, MemberRow};
pub use history::{HistoryEntry, HistoryFilter, Pruned};
pub use journal::{Begun, JournalEntry, JournalStatus, SnapshotChange};
pub use leavers::LeaverOutcome;
pub use location::{PgLocation, StateLocation};
pub use lock::{FileLock, LockError, RunLock};
pub use quirks::QuirkRow;
pub use rate_windows::RateWindow;
pub use runs::{PassOutcome, RunMode, RunRecord};
pub use snapshot::{Forgotten, SnapshotUpsert};
pub use types::{AccountState, OpKind, RowDetails, Snapshot, SnapshotRow};

/// The schema, embedded in the binary: SQLite's, and the same versions in
/// PostgreSQL's dialect (`postgres.rs`).
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
    #[error("cannot connect to the PostgreSQL state {at}: {}", crate::redact::scrub(&source.to_string()))]
    Connect {
        /// `postgres://user@host:port/db`: never the password.
        at: String,
        #[source]
        source: sqlx::Error,
    },
    #[error("the PostgreSQL state {at} cannot be used: {message}")]
    BadDatabase { at: String, message: String },
    #[error("{at} is not a rosterd state file")]
    NotRosterd { at: String },
    #[error(
        "{at} was written by a newer rosterd (schema {found}, this build knows up to {supported})"
    )]
    NewerSchema {
        at: String,
        found: i64,
        supported: i64,
    },
    #[error(
        "{at} has an older schema (schema {found}, this build needs {required}); run `rosterd sync` once without --dry-run to upgrade it"
    )]
    OlderSchema {
        at: String,
        found: i64,
        required: i64,
    },
    #[error("cannot migrate the state {at}: {source}")]
    Migrate {
        at: String,
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
        sqlx::Error::Database(db)
            if db
                .try_downcast_ref::<sqlx::postgres::PgDatabaseError>()
                .is_some() =>
        {
            postgres::hint(db.code()?.as_ref())
        }
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

/// The state, open for reading (and writing, unless opened read-only).
#[derive(Debug, Clone)]
pub struct Store {
    pool: Pool,
}

/// What a look at an existing file found, before anything is written to it.
enum Inspection {
    /// No tables at all: a file just created, or an empty one.
    Empty,
    /// rosterd's file, with these migration versions applied successfully.
    Rosterd { applied: Vec<i64> },
}

impl Store {
    /// Opens the state for a real run: creates it if missing (a file; a PostgreSQL
    /// database must exist), checks it is rosterd's and not from a newer build, and
    /// applies any pending migrations.
    pub async fn open(state: impl Into<StateLocation>) -> Result<Store, StoreError> {
        match state.into() {
            StateLocation::File(path) => Self::open_file(&path).await,
            StateLocation::Postgres(pg) => postgres::open(&pg).await,
        }
    }

    /// Opens the state for a dry run, which must write nothing: `Ok(None)` when there
    /// is no state yet (no file, or no tables), an error when it needs a migration
    /// first.
    pub async fn open_read_only(
        state: impl Into<StateLocation>,
    ) -> Result<Option<Store>, StoreError> {
        match state.into() {
            StateLocation::File(path) => Self::open_file_read_only(&path).await,
            StateLocation::Postgres(pg) => postgres::open_read_only(&pg).await,
        }
    }

    /// Which dialect the state speaks.
    pub(crate) fn dialect(&self) -> backend::Dialect {
        match self.pool {
            Pool::Sqlite(_) => backend::Dialect::Sqlite,
            Pool::Postgres(_) => backend::Dialect::Postgres,
        }
    }

    /// The SQLite state file at `path`: see [`Store::open`]; also turns on WAL.
    async fn open_file(path: &Path) -> Result<Store, StoreError> {
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
                at: path.display().to_string(),
                source,
            })?;
        Ok(Store {
            pool: Pool::Sqlite(pool),
        })
    }

    /// The SQLite state file at `path`: see [`Store::open_read_only`].
    async fn open_file_read_only(path: &Path) -> Result<Option<Store>, StoreError> {
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
        let at = path.display().to_string();
        let pool = ready_read_only(pool, inspection, &MIGRATOR, &at).await?;
        Ok(pool.map(|pool| Store {
            pool: Pool::Sqlite(pool),
        }))
    }

    /// Closes every connection, letting SQLite fold the WAL back into the file.
    pub async fn close(self) {
        with_pool!(self, |pool| pool.close().await)
    }
}

/// A read-only open needs every migration applied already: it may not apply any.
/// A dry run's pool once the look at the state is in: `None` for a state rosterd has
/// no tables in yet, an error for a foreign one or one behind this build's
/// migrations. The pool is closed whenever it is not handed back.
async fn ready_read_only<DB: sqlx::Database>(
    pool: sqlx::Pool<DB>,
    inspection: Result<Inspection, StoreError>,
    migrator: &Migrator,
    at: &str,
) -> Result<Option<sqlx::Pool<DB>>, StoreError> {
    let checked = inspection.and_then(|found| match found {
        Inspection::Empty => Ok(None),
        Inspection::Rosterd { applied } => up_to_date(migrator, &applied, at).map(Some),
    });
    match checked {
        Ok(Some(())) => Ok(Some(pool)),
        other => {
            pool.close().await;
            other.map(|_| None)
        }
    }
}

fn up_to_date(migrator: &Migrator, applied: &[i64], at: &str) -> Result<(), StoreError> {
    let pending = migrator
        .iter()
        .any(|m| !m.migration_type.is_down_migration() && !applied.contains(&m.version));
    if pending {
        return Err(StoreError::OlderSchema {
            at: at.to_string(),
            found: applied.iter().copied().max().unwrap_or(0),
            required: supported(migrator),
        });
    }
    Ok(())
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
            at: path.display().to_string(),
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
#[cfg(test)]
fn supported_version() -> i64 {
    supported(&MIGRATOR)
}

fn supported(migrator: &Migrator) -> i64 {
    migrator.iter().map(|m| m.version).max().unwrap_or_default()
}

/// Decides, without writing, whether the SQLite file is empty, rosterd's, or
/// something else.
async fn inspect(conn: &mut SqliteConnection, path: &Path) -> Result<Inspection, StoreError> {
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_schema \
         WHERE type IN ('table', 'view') AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'",
    )
    .fetch_all(&mut *conn)
    .await
    .map_err(|e| open_err(path, e))?;
    let at = path.display().to_string();
    if first_look(&tables, &at)? {
        return Ok(Inspection::Empty);
    }
    let marker: Option<String> = sqlx::query_scalar(MARKER_QUERY)
        .bind(MARKER_KEY)
        .fetch_optional(&mut *conn)
        .await
        .map_err(|e| open_err(path, e))?;
    let rows: Vec<(i64, bool)> = sqlx::query_as(MIGRATIONS_QUERY)
        .fetch_all(&mut *conn)
        .await
        .map_err(|e| open_err(path, e))?;
    judge(marker, &rows, &MIGRATOR, &at)
}

const MARKER_QUERY: &str = "SELECT value FROM rosterd_meta WHERE key = $1";
const MIGRATIONS_QUERY: &str = "SELECT version, success FROM _sqlx_migrations";

/// From the names of the tables a state holds: `true` when it has none (a new
/// state), an error when it is not rosterd's, `false` to look further.
fn first_look(tables: &[String], at: &str) -> Result<bool, StoreError> {
    if tables.is_empty() {
        return Ok(true);
    }
    let has = |name: &str| tables.iter().any(|t| t == name);
    if !has("rosterd_meta") || !has("_sqlx_migrations") {
        return Err(StoreError::NotRosterd { at: at.to_string() });
    }
    Ok(false)
}

/// From rosterd's marker and the migrations applied (version, success): whose state
/// it is, and whether this build can read it.
fn judge(
    marker: Option<String>,
    migrations: &[(i64, bool)],
    migrator: &Migrator,
    at: &str,
) -> Result<Inspection, StoreError> {
    if marker.as_deref() != Some(MARKER_VALUE) {
        return Err(StoreError::NotRosterd { at: at.to_string() });
    }
    let newest = migrations.iter().map(|m| m.0).max().unwrap_or(0);
    let supported = supported(migrator);
    if newest > supported {
        return Err(StoreError::NewerSchema {
            at: at.to_string(),
            found: newest,
            supported,
        });
    }
    let applied = migrations.iter().filter(|m| m.1).map(|m| m.0).collect();
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
