//! `rosterd history`: what rosterd did to whom, when and in which pass — read from the
//! state file's journal and run history, oldest first, as a table, JSON or CSV.
//!
//! It shows no field values and no emails: the names of the changed fields, the
//! outcome, the vendor's id and, for a failure, the vendor's message. `--email` is
//! turned into the source keys that ever had that email (see
//! [`Store::keys_with_email`]), so a person is found across an email change.

use std::fmt::Write as _;

use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use comfy_table::{presets::UTF8_FULL_CONDENSED, Table};
use serde::Serialize;

use futures_util::StreamExt;

use crate::store::{HistoryEntry, HistoryFilter, Store, StoreError};

/// The version of the JSON document; raised when a field changes meaning or goes.
pub const FORMAT_VERSION: u32 = 1;

/// How `history` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum HistoryFormat {
    Text,
    Json,
    Csv,
}

/// A `--since` / `--until` bound: a day (UTC) or an exact time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeBound {
    Day(NaiveDate),
    At(DateTime<Utc>),
}

impl TimeBound {
    /// For clap: `YYYY-MM-DD` or an RFC 3339 time (`2026-11-24T10:00:00Z`).
    pub fn parse(s: &str) -> Result<TimeBound, String> {
        if let Ok(day) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
            return Ok(TimeBound::Day(day));
        }
        DateTime::parse_from_rfc3339(s)
            .map(|t| TimeBound::At(t.with_timezone(&Utc)))
            .map_err(|_| {
                format!(
                    "{s:?} is not a date (YYYY-MM-DD) or an RFC 3339 time (2026-11-24T10:00:00Z)"
                )
            })
    }

    /// The first instant it includes as a lower bound: a day from its midnight (UTC).
    fn start(self) -> Option<DateTime<Utc>> {
        match self {
            TimeBound::Day(d) => Some(d.and_time(chrono::NaiveTime::MIN).and_utc()),
            TimeBound::At(t) => Some(t),
        }
    }

    /// The first instant it excludes as an upper bound: a day is included whole.
    fn end(self) -> Option<DateTime<Utc>> {
        match self {
            TimeBound::Day(d) => d
                .succ_opt()
                .map(|next| next.and_time(chrono::NaiveTime::MIN).and_utc()),
            TimeBound::At(t) => Some(t),
        }
    }
}

/// What to look for.
#[derive(Debug, Clone, Default)]
pub struct HistoryQuery {
    pub user: Option<String>,
    pub email: Option<String>,
    pub provider: Option<String>,
    pub since: Option<TimeBound>,
    pub until: Option<TimeBound>,
}

/// What the JSON document says before its entries.
#[derive(Debug, Clone, Serialize)]
struct Header<'a> {
    format_version: u32,
    /// The state file read.
    state: &'a str,
    /// The source keys `--email` matched (absent without `--email`).
    #[serde(skip_serializing_if = "Option::is_none")]
    email_keys: Option<&'a [String]>,
}

#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("cannot write the history as {format}: {message}")]
    Write {
        format: &'static str,
        message: String,
    },
}

/// One operation, as printed.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Entry {
    /// When it was written to the journal, just before it was sent (UTC, RFC 3339).
    pub sent_at: String,
    /// When the vendor's answer was recorded; `null` while in flight.
    pub finished_at: Option<String>,
    pub run_id: String,
    /// How that pass ended: `ok`, `blocked`, `failed`, `stopped`, `timeout`, `error`,
    /// `unfinished` (running or interrupted) or `pruned` (its run row is gone).
    pub pass_outcome: String,
    pub provider: String,
    /// The source's key for the person.
    pub user: String,
    pub op: String,
    /// Names of the changed fields; `null` for operations recorded before rosterd
    /// kept them.
    pub fields: Option<Vec<String>>,
    /// `done`, `manual`, `failed`, `deferred`, or `in_flight` (not known yet).
    pub outcome: String,
    pub vendor_id: Option<String>,
    pub error: Option<String>,
}

fn time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

impl From<HistoryEntry> for Entry {
    fn from(e: HistoryEntry) -> Self {
        Entry {
            sent_at: time(e.sent_at),
            finished_at: e.finished_at.map(time),
            run_id: e.run_id,
            pass_outcome: e.run_outcome,
            provider: e.provider,
            user: e.external_id,
            op: e.op.as_str().to_string(),
            fields: e.fields,
            outcome: e.outcome,
            vendor_id: e.vendor_id,
            error: e.error,
        }
    }
}

/// Output is handed on in pieces of about this size, each ending where an entry ends
/// (so the scrubber, which sees one piece at a time, always sees whole values).
const CHUNK_BYTES: usize = 64 * 1024;

/// Reads the history `query` asks for from `store` and hands it to `out` in `format`,
/// in pieces of whole entries. JSON and CSV are written as the rows are read (a
/// million-row answer is never in memory at once); the text table is built whole, as
/// it is meant for a person.
pub async fn write(
    store: &Store,
    state: &str,
    query: &HistoryQuery,
    format: HistoryFormat,
    out: &mut dyn FnMut(&str),
) -> Result<(), HistoryError> {
    let email_keys = match &query.email {
        Some(email) => Some(store.keys_with_email(email.trim()).await?),
        None => None,
    };
    // --user and --email together: the rows of that key, if it ever had that email.
    let keys = match (&query.user, &email_keys) {
        (None, None) => None,
        (Some(u), None) => Some(vec![u.clone()]),
        (None, Some(k)) => Some(k.clone()),
        (Some(u), Some(k)) => Some(k.iter().filter(|x| *x == u).cloned().collect()),
    };
    let filter = HistoryFilter {
        keys,
        provider: query.provider.clone(),
        since: query.since.and_then(TimeBound::start),
        until: query.until.and_then(TimeBound::end),
    };
    let mut rows = store.history_stream(&filter);
    let mut chunk = String::new();
    match format {
        HistoryFormat::Text => {
            let mut entries = Vec::new();
            while let Some(e) = rows.next().await {
                entries.push(Entry::from(e?));
            }
            out(&text(state, email_keys.as_deref(), &entries));
        }
        HistoryFormat::Json => {
            let header = Header {
                format_version: FORMAT_VERSION,
                state,
                email_keys: email_keys.as_deref(),
            };
            let head = json_text(&header)?;
            // `{"format_version":1,…,"entries":[` then one entry per line.
            chunk.push_str(head.strip_suffix('}').unwrap_or(&head));
            chunk.push_str(",\"entries\":[");
            let mut first = true;
            while let Some(e) = rows.next().await {
                chunk.push_str(if first { "\n" } else { ",\n" });
                first = false;
                chunk.push_str(&json_text(&Entry::from(e?))?);
                flush_full(&mut chunk, out);
            }
            chunk.push_str("\n]}\n");
        }
        HistoryFormat::Csv => {
            chunk.push_str(&csv_line(&COLUMNS)?);
            while let Some(e) = rows.next().await {
                chunk.push_str(&csv_line(&row(&Entry::from(e?), ";"))?);
                flush_full(&mut chunk, out);
            }
        }
    }
    if !chunk.is_empty() {
        out(&chunk);
    }
    Ok(())
}

/// Hands `chunk` on once it is full.
fn flush_full(chunk: &mut String, out: &mut dyn FnMut(&str)) {
    if chunk.len() >= CHUNK_BYTES {
        out(chunk);
        chunk.clear();
    }
}

fn json_text(value: &impl Serialize) -> Result<String, HistoryError> {
    serde_json::to_string(value).map_err(|e| HistoryError::Write {
        format: "JSON",
        message: e.to_string(),
    })
}

/// One CSV record, quoted as needed, with its line end.
fn csv_line<S: AsRef<[u8]>>(record: &[S]) -> Result<String, HistoryError> {
    let cannot = |message: String| HistoryError::Write {
        format: "CSV",
        message,
    };
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(record).map_err(|e| cannot(e.to_string()))?;
    let bytes = w.into_inner().map_err(|e| cannot(e.to_string()))?;
    String::from_utf8(bytes).map_err(|e| cannot(e.to_string()))
}

/// The table, with what `--email` matched.
fn text(state: &str, email_keys: Option<&[String]>, entries: &[Entry]) -> String {
    let mut out = String::new();
    if let Some(keys) = email_keys {
        if keys.is_empty() {
            let _ = writeln!(out, "no user key ever had that email in {state}");
            return out;
        }
        let _ = writeln!(out, "user key(s) that had that email: {}", keys.join(", "));
    }
    if entries.is_empty() {
        let _ = writeln!(out, "no operations recorded in {state} match");
        return out;
    }
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED).set_header(vec![
        "when (UTC)",
        "run",
        "pass",
        "provider",
        "user",
        "op",
        "fields",
        "outcome",
        "vendor id",
        "error",
    ]);
    for e in entries {
        let mut cells = row(e, ", ");
        // One time column: the answer's (the send's while in flight).
        let sent = cells.remove(0);
        if let Some(when) = cells.first_mut() {
            if when.is_empty() {
                *when = sent;
            }
            // `2026-11-24 10:00:00` under a "(UTC)" header reads easier.
            *when = when.replacen('T', " ", 1).trim_end_matches('Z').to_string();
        }
        table.add_row(cells);
    }
    let _ = writeln!(out, "{table}");
    out
}

const COLUMNS: [&str; 11] = [
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
    "error",
];

/// The entry's cells in [`COLUMNS`] order; absent values are empty.
fn row(e: &Entry, join: &str) -> Vec<String> {
    vec![
        e.sent_at.clone(),
        e.finished_at.clone().unwrap_or_default(),
        e.run_id.clone(),
        e.pass_outcome.clone(),
        e.provider.clone(),
        e.user.clone(),
        e.op.clone(),
        e.fields.as_ref().map(|f| f.join(join)).unwrap_or_default(),
        e.outcome.clone(),
        e.vendor_id.clone().unwrap_or_default(),
        e.error.clone().unwrap_or_default(),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::OpKind;

    /// A store with `n` operations on `n` users, each in flight.
    async fn store_with(n: usize) -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("state.db")).await.unwrap();
        let at = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        for i in 0..n {
            let key = format!("E{i:05}, \"quoted\"");
            store
                .journal_begin_fields(
                    "r1",
                    "hesh",
                    OpKind::Update,
                    &key,
                    "{}",
                    Some(&["a", "b"]),
                    at,
                )
                .await
                .unwrap();
        }
        (dir, store)
    }

    async fn written(store: &Store, format: HistoryFormat) -> Vec<String> {
        let mut chunks = Vec::new();
        let query = HistoryQuery::default();
        write(store, "state.db", &query, format, &mut |c| {
            chunks.push(c.to_string())
        })
        .await
        .unwrap();
        chunks
    }

    #[tokio::test]
    async fn json_and_csv_are_written_in_pieces_of_whole_entries_that_parse_as_one() {
        let (_dir, store) = store_with(1000).await;
        let chunks = written(&store, HistoryFormat::Json).await;
        assert!(chunks.len() > 1, "a 1000-entry answer comes in pieces");
        assert!(chunks.iter().all(|c| c.ends_with('}') || c.ends_with('\n')));
        let doc: serde_json::Value = serde_json::from_str(&chunks.concat()).unwrap();
        assert_eq!(doc["format_version"], 1);
        let entries = doc["entries"].as_array().unwrap();
        assert_eq!(entries.len(), 1000);
        assert_eq!(entries[7]["user"], "E00007, \"quoted\"");
        assert_eq!(entries[7]["outcome"], "in_flight");

        let chunks = written(&store, HistoryFormat::Csv).await;
        assert!(chunks.len() > 1 && chunks.iter().all(|c| c.ends_with('\n')));
        let text = chunks.concat();
        let mut reader = csv::Reader::from_reader(text.as_bytes());
        let records: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
        assert_eq!(records.len(), 1000);
        assert_eq!(
            (&records[7][5], &records[7][7]),
            ("E00007, \"quoted\"", "a;b")
        );
    }

    #[tokio::test]
    async fn an_empty_answer_is_still_a_whole_document() {
        let (_dir, store) = store_with(0).await;
        let json = written(&store, HistoryFormat::Json).await.concat();
        let doc: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(doc["entries"], serde_json::json!([]));
        let csv = written(&store, HistoryFormat::Csv).await.concat();
        assert_eq!(csv.lines().count(), 1, "the header alone: {csv}");
        let text = written(&store, HistoryFormat::Text).await.concat();
        assert!(text.contains("no operations recorded"), "{text}");
    }

    #[test]
    fn a_day_bound_covers_the_whole_day() {
        let day = TimeBound::parse("2026-11-24").unwrap();
        assert_eq!(
            day.start().map(time).as_deref(),
            Some("2026-11-24T00:00:00Z")
        );
        assert_eq!(day.end().map(time).as_deref(), Some("2026-11-25T00:00:00Z"));
        let at = TimeBound::parse("2026-11-24T10:30:00+01:00").unwrap();
        assert_eq!(
            at.start().map(time).as_deref(),
            Some("2026-11-24T09:30:00Z")
        );
        assert!(TimeBound::parse("24/11/2026")
            .unwrap_err()
            .contains("YYYY-MM-DD"));
    }
}
