//! The state in a PostgreSQL database (`state: postgres://…`): opening it, with the
//! same care as a file (a database holding someone else's tables is refused, one
//! from a newer rosterd too), and its schema — the same migrations as SQLite's,
//! version for version, in PostgreSQL's dialect (`migrations-postgres/`; a test keeps
//! the two sets in step).
//!
//! The database must exist (rosterd creates tables, not databases) and use UTF-8:
//! the snapshot is read in pages that count text in bytes.

use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};

use super::backend::Pool;
use super::{first_look, judge, ready_read_only, Inspection, PgLocation, Store, StoreError};

/// PostgreSQL's schema, embedded in the binary.
pub(super) static MIGRATOR: Migrator = sqlx::migrate!("./migrations-postgres");

/// Connections a store keeps: the executor's concurrent writes and a snapshot read.
const MAX_CONNECTIONS: u32 = 4;

/// How long connecting may take before the error says why.
const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Opens (and migrates) the database for a real run.
pub(super) async fn open(pg: &PgLocation) -> Result<Store, StoreError> {
    let at = pg.display();
    let pool = connect(pg, options(pg)?).await?;
    let inspection = inspect(&pool, &at).await;
    if let Err(e) = inspection {
        pool.close().await;
        return Err(e);
    }
    // sqlx holds an advisory lock of its own while migrating, so two rosterd starting
    // at once migrate one after the other.
    if let Err(source) = MIGRATOR.run(&pool).await {
        pool.close().await;
        return Err(StoreError::Migrate { at, source });
    }
    Ok(Store {
        pool: Pool::Postgres(pool),
    })
}

/// Opens the database for a dry run: every transaction read-only (the server refuses
/// a write), `None` when rosterd has no tables there yet.
pub(super) async fn open_read_only(pg: &PgLocation) -> Result<Option<Store>, StoreError> {
    let at = pg.display();
    let options = options(pg)?.options([("default_transaction_read_only", "on")]);
    let pool = connect(pg, options).await?;
    let inspection = inspect(&pool, &at).await;
    let pool = ready_read_only(pool, inspection, &MIGRATOR, &at).await?;
    Ok(pool.map(|pool| Store {
        pool: Pool::Postgres(pool),
    }))
}

fn options(pg: &PgLocation) -> Result<PgConnectOptions, StoreError> {
    pg.connect_options().map_err(|e| StoreError::BadDatabase {
        at: pg.display(),
        message: e.to_string(),
    })
}

async fn connect(pg: &PgLocation, options: PgConnectOptions) -> Result<PgPool, StoreError> {
    PgPoolOptions::new()
        .max_connections(MAX_CONNECTIONS)
        .acquire_timeout(CONNECT_TIMEOUT)
        .connect_with(options)
        .await
        .map_err(|source| StoreError::Connect {
            at: pg.display(),
            source,
        })
}

/// Decides, without writing, whether the database is empty, rosterd's, or
/// something else (tables in its current schema that are not rosterd's).
async fn inspect(pool: &PgPool, at: &str) -> Result<Inspection, StoreError> {
    let err = |source| StoreError::Connect {
        at: at.to_string(),
        source,
    };
    let encoding: String = sqlx::query_scalar("SHOW server_encoding")
        .fetch_one(pool)
        .await
        .map_err(err)?;
    if encoding != "UTF8" {
        return Err(StoreError::BadDatabase {
            at: at.to_string(),
            message: format!(
                "its encoding is {encoding}; rosterd needs a UTF8 database \
                 (CREATE DATABASE … ENCODING 'UTF8')"
            ),
        });
    }
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT table_name::text FROM information_schema.tables \
         WHERE table_schema = current_schema()",
    )
    .fetch_all(pool)
    .await
    .map_err(err)?;
    if first_look(&tables, at)? {
        return Ok(Inspection::Empty);
    }
    let marker: Option<String> = sqlx::query_scalar(super::MARKER_QUERY)
        .bind(super::MARKER_KEY)
        .fetch_optional(pool)
        .await
        .map_err(err)?;
    let rows: Vec<(i64, bool)> = sqlx::query_as(super::MIGRATIONS_QUERY)
        .fetch_all(pool)
        .await
        .map_err(err)?;
    judge(marker, &rows, &MIGRATOR, at)
}

/// What the operator can do about a PostgreSQL error, by its SQLSTATE.
pub(super) fn hint(code: &str) -> Option<&'static str> {
    match code {
        "22021" => Some(
            "PostgreSQL text cannot hold the character U+0000 (NUL), which this value \
             contains: remove it at the source",
        ),
        "25006" => Some("the state was opened read-only (a dry run) and may not be written"),
        "53100" => Some("the disk of the PostgreSQL server is full"),
        "42501" => Some(
            "the PostgreSQL user may not do this: it needs to create tables in the \
             database's schema and write them",
        ),
        "57P01" | "57P02" | "57P03" => {
            Some("the PostgreSQL server is shutting down or starting up: run again once it is up")
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    #[test]
    fn both_backends_have_the_same_migrations() {
        let sqlite: Vec<(i64, String)> = super::super::MIGRATOR
            .iter()
            .map(|m| (m.version, m.description.to_string()))
            .collect();
        let postgres: Vec<(i64, String)> = super::MIGRATOR
            .iter()
            .map(|m| (m.version, m.description.to_string()))
            .collect();
        assert!(!sqlite.is_empty());
        assert_eq!(
            sqlite, postgres,
            "migrations/ and migrations-postgres/ must hold the same versions and \
             names: a new SQLite migration needs its PostgreSQL twin"
        );
    }
}
