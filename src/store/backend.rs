//! The two databases the store runs on, behind one API: an SQLite file or a
//! PostgreSQL database.
//!
//! Every query is written once, with `$1`-style placeholders, which both accept
//! (sqlx's SQLite driver binds `$N` by number). [`with_pool!`] runs a block with the
//! concrete pool bound, so the same text is type-checked once per backend with its
//! native types — no conversion layer between the rows and the store. Where the
//! dialects differ (aggregating text, JSON, catalog tables), the two texts sit side
//! by side in a [`Sql`] and [`Dialect::pick`] chooses.

use std::future::Future;

use sqlx::postgres::{PgPool, PgRow, Postgres};
use sqlx::sqlite::{Sqlite, SqlitePool, SqliteRow};
use sqlx::{Row, Transaction};

/// The open database.
#[derive(Debug, Clone)]
pub(crate) enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Which SQL a query is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    Sqlite,
    Postgres,
}

/// A query whose text differs between the dialects.
pub(crate) struct Sql {
    pub sqlite: &'static str,
    pub postgres: &'static str,
}

impl Dialect {
    pub fn pick(self, sql: &Sql) -> &'static str {
        match self {
            Dialect::Sqlite => sql.sqlite,
            Dialect::Postgres => sql.postgres,
        }
    }
}

/// Runs `$body` with `$pool` bound to the store's concrete pool (and `$dialect` to
/// its [`Dialect`]): one text, compiled for each backend.
macro_rules! with_pool {
    ($store:expr, |$pool:ident, $dialect:ident| $body:expr) => {
        match &$store.pool {
            $crate::store::backend::Pool::Sqlite($pool) => {
                #[allow(unused_variables)]
                let $dialect = $crate::store::backend::Dialect::Sqlite;
                $body
            }
            $crate::store::backend::Pool::Postgres($pool) => {
                #[allow(unused_variables)]
                let $dialect = $crate::store::backend::Dialect::Postgres;
                $body
            }
        }
    };
    ($store:expr, |$pool:ident| $body:expr) => {
        with_pool!($store, |$pool, _dialect| $body)
    };
    // The body in an async block of its own: its `?` ends the block, not the caller.
    ($store:expr, async |$pool:ident, $dialect:ident| $body:expr) => {
        with_pool!($store, |$pool, $dialect| async { $body }.await)
    };
    ($store:expr, async |$pool:ident| $body:expr) => {
        with_pool!($store, |$pool, _dialect| async { $body }.await)
    };
}

/// How each backend begins a transaction.
pub(crate) trait Begin {
    type Db: sqlx::Database;
    /// A transaction that will write: SQLite takes the write lock up front
    /// (`BEGIN IMMEDIATE`), so two writers never deadlock upgrading a read lock.
    fn begin_write(
        &self,
    ) -> impl Future<Output = Result<Transaction<'static, Self::Db>, sqlx::Error>> + Send;
    /// A transaction that only reads, and sees one consistent state throughout.
    fn begin_read(
        &self,
    ) -> impl Future<Output = Result<Transaction<'static, Self::Db>, sqlx::Error>> + Send;
}

impl Begin for SqlitePool {
    type Db = Sqlite;
    fn begin_write(
        &self,
    ) -> impl Future<Output = Result<Transaction<'static, Sqlite>, sqlx::Error>> + Send {
        self.begin_with("BEGIN IMMEDIATE")
    }
    fn begin_read(
        &self,
    ) -> impl Future<Output = Result<Transaction<'static, Sqlite>, sqlx::Error>> + Send {
        // An SQLite read transaction is a snapshot already.
        self.begin()
    }
}

impl Begin for PgPool {
    type Db = Postgres;
    fn begin_write(
        &self,
    ) -> impl Future<Output = Result<Transaction<'static, Postgres>, sqlx::Error>> + Send {
        self.begin()
    }
    fn begin_read(
        &self,
    ) -> impl Future<Output = Result<Transaction<'static, Postgres>, sqlx::Error>> + Send {
        // READ COMMITTED would let a paged read see rows written between pages.
        self.begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
    }
}

/// Reading a row's columns the same way on both backends, for the functions that
/// turn a row into a value (one function, either row type).
pub(crate) trait Cols {
    fn text(&self, i: usize) -> Result<&str, sqlx::Error>;
    fn opt_text(&self, i: usize) -> Result<Option<&str>, sqlx::Error>;
    fn int(&self, i: usize) -> Result<i64, sqlx::Error>;
    fn opt_int(&self, i: usize) -> Result<Option<i64>, sqlx::Error>;
}

macro_rules! impl_cols {
    ($($row:ty),*) => {$(
        impl Cols for $row {
            fn text(&self, i: usize) -> Result<&str, sqlx::Error> {
                self.try_get(i)
            }
            fn opt_text(&self, i: usize) -> Result<Option<&str>, sqlx::Error> {
                self.try_get(i)
            }
            fn int(&self, i: usize) -> Result<i64, sqlx::Error> {
                self.try_get(i)
            }
            fn opt_int(&self, i: usize) -> Result<Option<i64>, sqlx::Error> {
                self.try_get(i)
            }
        }
    )*};
}
impl_cols!(SqliteRow, PgRow);

/// `$first, $first+1, …` for `n` values: the placeholders of a list built at run time.
pub(crate) fn placeholders(first: usize, n: usize) -> String {
    (first..first + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Whether `table` exists: a state from before the migration that made it may be read
/// by a dry run (which never migrates).
pub(crate) const HAS_TABLE: Sql = Sql {
    sqlite: "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = $1",
    postgres: "SELECT count(*) FROM information_schema.tables \
               WHERE table_schema = current_schema() AND table_name = $1",
};

impl super::Store {
    /// Whether `table` exists in the state.
    pub(crate) async fn has_table(&self, table: &str) -> Result<bool, sqlx::Error> {
        let n: i64 = with_pool!(self, |pool, dialect| sqlx::query_scalar(
            dialect.pick(&HAS_TABLE)
        )
        .bind(table)
        .fetch_one(pool)
        .await)?;
        Ok(n > 0)
    }
}
