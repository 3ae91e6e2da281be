//! Reading a provider's whole snapshot quickly.
//!
//! A large tenant has a million rows, and the planner wants them all in memory within
//! a few seconds. Handing them over one SQLite row at a time costs more in sqlx's
//! per-row machinery (a value copy per column, a channel message and a thread hand-off
//! per row) than in SQLite itself. So SQLite packs each page of rows into one text
//! value — every field prefixed with its byte length, so no content can be mistaken
//! for a separator — and we cut that text into fields here, copying each field once,
//! into its `Box<str>`.
//!
//! Pages follow the primary key (keyset pagination, no OFFSET), inside one read
//! transaction so the pages are a consistent view.
//!
//! Only the lean columns (key, fingerprint, state, failures) are read for every row;
//! [`Store::fill_details`] reads the rest for the rows a plan touches.

use std::collections::HashMap;

use super::backend::{placeholders, Begin, Sql};
use super::{query_err, AccountState, RowDetails, Snapshot, SnapshotRow, Store, StoreError};
use crate::providers::Fingerprint;

/// Rows per page: large enough to make per-query costs vanish, small enough that a
/// page (about 200 bytes a row) stays a few megabytes.
pub(super) const PAGE_ROWS: i64 = 10_000;

/// One page of rows, packed: per row, `<len>:<text>` per field (`~` for NULL), then
/// the failure count and `;`. The columns are text checked as UTF-8 (STRICT in
/// SQLite; a UTF8 database in PostgreSQL), so `octet_length` is the UTF-8 length Rust
/// sees. `concat` builds a row in one pass and copies text by length (`||` would copy
/// the row once per operator; `format` stops at a NUL byte).
///
/// The primary key (provider, external_id) serves both the filter and the order, so
/// the database walks the index and never sorts; the BINARY (SQLite) or "C"
/// (PostgreSQL) collation makes that order bytewise. Only the aggregate is spelled
/// differently.
macro_rules! page_query {
    ($aggregate:literal, $collation:literal, $bound:literal) => {
        concat!(
            "SELECT count(*), ",
            $aggregate,
            ", max(external_id) FROM ( \
               SELECT external_id, concat( \
                 octet_length(external_id), ':', external_id, \
                 octet_length(fingerprint), ':', fingerprint, \
                 octet_length(state), ':', state, \
                 failures, ';') AS packed \
               FROM snapshot WHERE provider = $1 ",
            $bound,
            " ORDER BY external_id COLLATE ",
            $collation,
            " LIMIT $2) AS page"
        )
    };
}

macro_rules! page_sql {
    ($bound:literal) => {
        Sql {
            sqlite: page_query!("group_concat(packed, '')", "BINARY", $bound),
            postgres: page_query!(
                "string_agg(packed, '' ORDER BY external_id)",
                "\"C\"",
                $bound
            ),
        }
    };
}

const FIRST_PAGE: Sql = page_sql!("");
const NEXT_PAGE: Sql = page_sql!("AND external_id > $3");

impl Store {
    /// All of a provider's rows, sorted by `external_id` in byte order (the order of
    /// Rust's `str`, which the planner merges in).
    pub async fn snapshot(&self, provider: &str) -> Result<Snapshot, StoreError> {
        const ACTION: &str = "read the snapshot";
        let qe = query_err(ACTION);
        with_pool!(self, |pool, dialect| {
            let mut tx = pool.begin_read().await.map_err(qe)?;
            // Counted first so the million-row vector is allocated once, not regrown.
            let total: i64 =
                sqlx::query_scalar("SELECT count(*) FROM snapshot WHERE provider = $1")
                    .bind(provider)
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(query_err(ACTION))?;
            let mut rows = Snapshot::with_capacity(usize::try_from(total).unwrap_or(0));
            // The database packs page N+1 while page N is cut up on a blocking
            // thread; `rows` travels with the unpacking, so it is never copied.
            let mut unpacking = None;
            let mut after: Option<String> = None;
            loop {
                let query = match &after {
                    None => sqlx::query_as(dialect.pick(&FIRST_PAGE))
                        .bind(provider)
                        .bind(PAGE_ROWS),
                    Some(key) => sqlx::query_as(dialect.pick(&NEXT_PAGE))
                        .bind(provider)
                        .bind(PAGE_ROWS)
                        .bind(key.as_str()),
                };
                let (count, page, last): (i64, Option<String>, Option<String>) =
                    query.fetch_one(&mut *tx).await.map_err(query_err(ACTION))?;
                if let Some(task) = unpacking.take() {
                    rows = joined(provider, task).await?;
                }
                let page = Page {
                    provider: provider.to_owned(),
                    packed: page.unwrap_or_default(),
                    count,
                };
                let so_far = std::mem::take(&mut rows);
                unpacking = Some(tokio::task::spawn_blocking(move || page.unpack(so_far)));
                match last {
                    Some(key) if count >= PAGE_ROWS => after = Some(key),
                    _ => break,
                }
            }
            // Nothing was written: ending the read transaction either way is the same.
            tx.rollback().await.map_err(query_err(ACTION))?;
            if let Some(task) = unpacking {
                rows = joined(provider, task).await?;
            }
            Ok(rows)
        })
    }
}

/// Keys per details query: well under SQLite's limit on bound parameters.
const DETAILS_BATCH: usize = 500;

type DetailsRow = (String, String, Option<String>, String, Option<String>);

impl Store {
    /// Loads [`RowDetails`] into `rows[i]` for each `i` in `indices` (rows of
    /// `provider`'s snapshot, as [`Store::snapshot`] returned them). A row that is no
    /// longer in the state file is an error: the snapshot changed under the pass.
    pub async fn fill_details(
        &self,
        provider: &str,
        rows: &mut [SnapshotRow],
        indices: &[usize],
    ) -> Result<(), StoreError> {
        const ACTION: &str = "read snapshot details";
        for chunk in indices.chunks(DETAILS_BATCH) {
            let keys: Vec<String> = chunk
                .iter()
                .filter_map(|&i| rows.get(i).map(|r| r.external_id.to_string()))
                .collect();
            let sql = format!(
                "SELECT external_id, email, vendor_id, record, last_error FROM snapshot \
                 WHERE provider = $1 AND external_id IN ({})",
                placeholders(2, keys.len())
            );
            let found: Vec<DetailsRow> = with_pool!(self, |pool| {
                let mut query =
                    sqlx::query_as::<_, DetailsRow>(sqlx::AssertSqlSafe(sql)).bind(provider);
                for key in &keys {
                    query = query.bind(key.as_str());
                }
                query.fetch_all(pool).await
            })
            .map_err(query_err(ACTION))?;
            let found: HashMap<String, RowDetails> = found
                .into_iter()
                .map(|(key, email, vendor_id, record, last_error)| {
                    let details = RowDetails {
                        email: email.into(),
                        vendor_id: vendor_id.map(Into::into),
                        record: record.into(),
                        last_error: last_error.map(Into::into),
                    };
                    (key, details)
                })
                .collect();
            let mut found = found;
            for &i in chunk {
                let Some(row) = rows.get_mut(i) else { continue };
                match found.remove(&*row.external_id) {
                    Some(d) => row.details = Some(Box::new(d)),
                    None => {
                        return Err(corrupt(
                            provider,
                            &row.external_id,
                            "the row disappeared from the state file during the pass".into(),
                        ))
                    }
                }
            }
        }
        Ok(())
    }
}

async fn joined(
    provider: &str,
    task: tokio::task::JoinHandle<Result<Snapshot, StoreError>>,
) -> Result<Snapshot, StoreError> {
    task.await.map_err(|source| StoreError::Unpack {
        provider: provider.to_owned(),
        source,
    })?
}

/// One page as SQLite packed it.
struct Page {
    provider: String,
    packed: String,
    /// Rows SQLite put in the page.
    count: i64,
}

impl Page {
    /// Appends the page's rows to `rows` and hands it back.
    fn unpack(self, mut rows: Snapshot) -> Result<Snapshot, StoreError> {
        let before = rows.len();
        unpack_rows(&self.provider, &self.packed, &mut rows)?;
        let read = rows.len() - before;
        if usize::try_from(self.count).ok() != Some(read) {
            return Err(corrupt(
                &self.provider,
                rows.last().map_or("", |r| &r.external_id),
                format!("a page of {} rows unpacked into {read}", self.count),
            ));
        }
        // The page holds the right rows (the inner ORDER BY + LIMIT picks them), but
        // SQLite does not promise that `group_concat` keeps their order: check, cheaply.
        let page = &mut rows[before..];
        if !page.is_sorted_by(|a, b| a.external_id < b.external_id) {
            page.sort_unstable_by(|a, b| a.external_id.cmp(&b.external_id));
        }
        Ok(rows)
    }
}

fn corrupt(provider: &str, external_id: &str, message: String) -> StoreError {
    StoreError::Corrupt {
        provider: provider.to_owned(),
        external_id: external_id.to_owned(),
        message,
    }
}

/// Cuts a packed page into rows, appending them to `out`.
fn unpack_rows(provider: &str, page: &str, out: &mut Snapshot) -> Result<(), StoreError> {
    let mut fields = Fields { rest: page };
    while !fields.rest.is_empty() {
        let row = unpack_row(&mut fields).map_err(|(id, message)| {
            let id = id.or(out.last().map(|r| &*r.external_id)).unwrap_or("");
            corrupt(provider, id, message)
        })?;
        out.push(row);
    }
    Ok(())
}

/// One row; on error, the row's key (when it got that far) and what was wrong.
fn unpack_row<'a>(f: &mut Fields<'a>) -> Result<SnapshotRow, (Option<&'a str>, String)> {
    let external_id = f.text().map_err(|m| (None, m))?;
    let bad = |m: String| (Some(external_id), m);
    let fingerprint = f.text().map_err(bad)?;
    let state = f.text().map_err(bad)?;
    let failures = f.terminated(';').map_err(bad)?;

    let fingerprint: Fingerprint = fingerprint
        .parse()
        .map_err(|e| bad(format!("bad fingerprint {fingerprint:?}: {e}")))?;
    let state =
        AccountState::parse(state).ok_or_else(|| bad(format!("unknown state {state:?}")))?;
    let failures: u32 = failures
        .parse()
        .map_err(|e| bad(format!("bad failure count {failures:?}: {e}")))?;
    Ok(SnapshotRow {
        external_id: external_id.into(),
        fingerprint,
        state,
        failures,
        details: None,
    })
}

/// A cursor over packed fields.
struct Fields<'a> {
    rest: &'a str,
}

impl<'a> Fields<'a> {
    /// `<len>:<text>`
    fn text(&mut self) -> Result<&'a str, String> {
        let len = self.terminated(':')?;
        let len: usize = len
            .parse()
            .map_err(|_| format!("packed field length {len:?} is not a number"))?;
        match (self.rest.get(..len), self.rest.get(len..)) {
            (Some(value), Some(rest)) => {
                self.rest = rest;
                Ok(value)
            }
            _ => Err(format!(
                "packed field of {len} bytes does not fit (is the file's text encoding UTF-8?)"
            )),
        }
    }

    /// Everything up to `end`, which is consumed.
    fn terminated(&mut self, end: char) -> Result<&'a str, String> {
        let Some((value, rest)) = self.rest.split_once(end) else {
            return Err(format!("packed row ends early (no {end:?})"));
        };
        self.rest = rest;
        Ok(value)
    }
}
