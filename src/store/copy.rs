//! `rosterd state copy --from A --to B`: moves a state between backends (an SQLite
//! file to PostgreSQL, or back), every table row for row, ids included.
//!
//! The source is opened read-only and read in one consistent transaction; the target
//! is created and migrated like any state, then filled in one transaction (all of it
//! or nothing). A target that already holds rows is refused unless `force`, which
//! replaces them — and the report says which was done. Both run locks are held
//! throughout, so no pass writes either state meanwhile.

use futures_util::TryStreamExt;
use sqlx::AssertSqlSafe;

#[cfg(test)]
use super::backend::Pool;
use super::backend::{placeholders, Begin, Cols, Dialect};
use super::{LockError, RunLock, StateLocation, Store, StoreError};

/// How a column is read and written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Text,
    Int,
}

use Kind::{Int, Text};

/// A table and its columns, in the order rows are copied (the primary key).
struct Table {
    name: &'static str,
    columns: &'static [(&'static str, Kind)],
    order: &'static str,
}

/// Every table that holds state (the marker table and the migration record are the
/// target's own). A table a migration adds must be listed here: a test compares this
/// list with the schema.
const TABLES: &[Table] = &[
    Table {
        name: "snapshot",
        columns: &[
            ("provider", Text),
            ("external_id", Text),
            ("vendor_id", Text),
            ("email", Text),
            ("fingerprint", Text),
            ("state", Text),
            ("record", Text),
            ("confirmed_at", Text),
            ("last_error", Text),
            ("failures", Int),
        ],
        order: "provider, external_id",
    },
    Table {
        name: "journal",
        columns: &[
            ("id", Int),
            ("run_id", Text),
            ("provider", Text),
            ("op", Text),
            ("external_id", Text),
            ("payload", Text),
            ("status", Text),
            ("error", Text),
            ("created_at", Text),
            ("finished_at", Text),
            ("fields", Text),
            ("vendor_id", Text),
            ("outcome", Text),
        ],
        order: "id",
    },
    Table {
        name: "runs",
        // `rowid` orders runs started in the same microsecond: SQLite's own, a
        // column of that name on PostgreSQL; copied so the order survives.
        columns: &[
            ("rowid", Int),
            ("run_id", Text),
            ("started_at", Text),
            ("finished_at", Text),
            ("mode", Text),
            ("outcome", Text),
            ("summary", Text),
        ],
        order: "rowid",
    },
    Table {
        name: "failures",
        columns: &[
            ("provider", Text),
            ("external_id", Text),
            ("op", Text),
            ("fingerprint", Text),
            ("count", Int),
            ("last_error", Text),
            ("last_at", Text),
        ],
        order: "provider, external_id",
    },
    Table {
        name: "leaver_checks",
        columns: &[
            ("provider", Text),
            ("external_id", Text),
            ("outcome", Text),
            ("checked_at", Text),
        ],
        order: "provider, external_id",
    },
    Table {
        name: "scim_quirks",
        columns: &[
            ("provider", Text),
            ("quirk", Text),
            ("config_digest", Text),
            ("detail", Text),
            ("detected_at", Text),
        ],
        order: "provider, quirk",
    },
    Table {
        name: "rate_windows",
        columns: &[
            ("provider", Text),
            ("base_url", Text),
            ("request_limit", Int),
            ("remaining", Int),
            ("reset_at", Text),
            ("observed_at", Text),
        ],
        order: "provider",
    },
    Table {
        name: "scim_groups",
        columns: &[
            ("provider", Text),
            ("name", Text),
            ("group_id", Text),
            ("display_name", Text),
            ("created", Int),
            ("confirmed_at", Text),
        ],
        order: "provider, name",
    },
    Table {
        name: "scim_group_members",
        columns: &[
            ("provider", Text),
            ("name", Text),
            ("external_id", Text),
            ("member_id", Text),
            ("added", Int),
            ("confirmed_at", Text),
        ],
        order: "provider, name, external_id",
    },
    Table {
        name: "group_journal",
        columns: &[
            ("id", Int),
            ("run_id", Text),
            ("provider", Text),
            ("op", Text),
            ("name", Text),
            ("payload", Text),
            ("status", Text),
            ("error", Text),
            ("created_at", Text),
            ("finished_at", Text),
        ],
        order: "id",
    },
];

/// Bound parameters per insert: well under SQLite's 32,766 and PostgreSQL's 65,535.
const PARAMS_PER_INSERT: usize = 8_000;

/// One value of a row being copied.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Cell {
    Text(Option<String>),
    Int(Option<i64>),
}

#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    #[error("{0}")]
    Lock(#[from] LockError),
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("there is no state at {at} to copy")]
    NoSource { at: String },
    #[error("--from and --to name the same state ({at})")]
    Same { at: String },
    #[error(
        "{at} already holds a state ({}): refused, to keep it; --force replaces it",
        describe(.counts)
    )]
    NotEmpty {
        at: String,
        counts: Vec<(&'static str, u64)>,
    },
    #[error("cannot copy the {table} table: {source}")]
    Query {
        table: &'static str,
        #[source]
        source: sqlx::Error,
    },
}

fn describe(counts: &[(&'static str, u64)]) -> String {
    counts
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(t, n)| format!("{n} {t} rows"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// What a copy did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Copied {
    /// Rows copied, per table.
    pub tables: Vec<(&'static str, u64)>,
    /// Rows the target held and `force` replaced, per table (empty: it held none).
    pub replaced: Vec<(&'static str, u64)>,
}

/// Copies the state at `from` to `to`; see the module docs.
pub async fn copy(
    from: &StateLocation,
    to: &StateLocation,
    force: bool,
) -> Result<Copied, CopyError> {
    let (from_at, to_at) = (from.display().to_string(), to.display().to_string());
    if from_at == to_at {
        return Err(CopyError::Same { at: from_at });
    }
    let from_lock = RunLock::acquire(from).await?;
    let to_lock = RunLock::acquire(to).await?;
    let Some(source) = Store::open_read_only(from).await? else {
        return Err(CopyError::NoSource { at: from_at });
    };
    let target = Store::open(to).await?;
    let result = fill(&source, &target, &to_at, force).await;
    source.close().await;
    target.close().await;
    to_lock.release().await;
    from_lock.release().await;
    result
}

async fn fill(
    source: &Store,
    target: &Store,
    to_at: &str,
    force: bool,
) -> Result<Copied, CopyError> {
    let dialect = target.dialect();
    with_pool!(target, async |tp| {
        let mut tx = tp.begin_write().await.map_err(|e| query_err("target", e))?;
        let mut held = Vec::new();
        for table in TABLES {
            let n: i64 = sqlx::query_scalar(AssertSqlSafe(format!(
                "SELECT count(*) FROM {}",
                table.name
            )))
            .fetch_one(&mut *tx)
            .await
            .map_err(|e| query_err(table.name, e))?;
            held.push((table.name, u64::try_from(n).unwrap_or(0)));
        }
        let replaced = if held.iter().any(|(_, n)| *n > 0) {
            if !force {
                return Err(CopyError::NotEmpty {
                    at: to_at.to_string(),
                    counts: held,
                });
            }
            for table in TABLES {
                sqlx::query(AssertSqlSafe(format!("DELETE FROM {}", table.name)))
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| query_err(table.name, e))?;
            }
            held
        } else {
            Vec::new()
        };
        let mut copied = Vec::new();
        with_pool!(source, async |sp| {
            let mut stx = sp.begin_read().await.map_err(|e| query_err("source", e))?;
            for table in TABLES {
                let names: Vec<&str> = table.columns.iter().map(|c| c.0).collect();
                let select = format!(
                    "SELECT {} FROM {} ORDER BY {}",
                    names.join(", "),
                    table.name,
                    table.order
                );
                let per_insert = (PARAMS_PER_INSERT / table.columns.len()).max(1);
                let mut rows = sqlx::query(AssertSqlSafe(select)).fetch(&mut *stx);
                let mut batch: Vec<Vec<Cell>> = Vec::with_capacity(per_insert);
                let mut n = 0u64;
                loop {
                    let row = rows
                        .try_next()
                        .await
                        .map_err(|e| query_err(table.name, e))?;
                    if let Some(row) = &row {
                        batch.push(read(row, table).map_err(|e| query_err(table.name, e))?);
                    }
                    if batch.len() == per_insert || (row.is_none() && !batch.is_empty()) {
                        n += batch.len() as u64;
                        let sql = insert_sql(table, batch.len());
                        let mut query = sqlx::query(AssertSqlSafe(sql));
                        for cell in batch.drain(..).flatten() {
                            query = match cell {
                                Cell::Text(v) => query.bind(v),
                                Cell::Int(v) => query.bind(v),
                            };
                        }
                        query
                            .execute(&mut *tx)
                            .await
                            .map_err(|e| query_err(table.name, e))?;
                    }
                    if row.is_none() {
                        break;
                    }
                }
                copied.push((table.name, n));
            }
            Ok::<_, CopyError>(())
        })?;
        if dialect == Dialect::Postgres {
            // Explicit ids leave the identity sequences behind: the next journal
            // entry and run continue after the copied ones.
            for (table, column) in [
                ("journal", "id"),
                ("runs", "rowid"),
                ("group_journal", "id"),
            ] {
                sqlx::query(AssertSqlSafe(format!(
                    "SELECT setval(pg_get_serial_sequence('{table}', '{column}'), \
                     coalesce(max({column}), 0) + 1, false) FROM {table}"
                )))
                .execute(&mut *tx)
                .await
                .map_err(|e| query_err(table, e))?;
            }
        }
        tx.commit().await.map_err(|e| query_err("target", e))?;
        Ok(Copied {
            tables: copied,
            replaced,
        })
    })
}

fn query_err(table: &'static str, source: sqlx::Error) -> CopyError {
    CopyError::Query { table, source }
}

fn read(row: &impl Cols, table: &Table) -> Result<Vec<Cell>, sqlx::Error> {
    table
        .columns
        .iter()
        .enumerate()
        .map(|(i, (_, kind))| match kind {
            Kind::Text => row.opt_text(i).map(|v| Cell::Text(v.map(str::to_owned))),
            Kind::Int => row.opt_int(i).map(Cell::Int),
        })
        .collect()
}

fn insert_sql(table: &Table, rows: usize) -> String {
    let names: Vec<&str> = table.columns.iter().map(|c| c.0).collect();
    let width = names.len();
    let values: Vec<String> = (0..rows)
        .map(|r| format!("({})", placeholders(r * width + 1, width)))
        .collect();
    format!(
        "INSERT INTO {} ({}) VALUES {}",
        table.name,
        names.join(", "),
        values.join(", ")
    )
}

#[cfg(test)]
#[path = "copy_tests.rs"]
mod tests;
