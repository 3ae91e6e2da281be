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

/// The answer, ready to print.
#[derive(Debug, Clone, Serialize)]
pub struct History {
    pub format_version: u32,
    /// The state file read.
    pub state: String,
    /// The source keys `--email` matched (absent without `--email`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email_keys: Option<Vec<String>>,
    pub entries: Vec<Entry>,
}

/// One operation, as printed.
#[derive(Debug, Clone, Serialize)]
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

/// Reads the history `query` asks for from `store`.
pub async fn read(store: &Store, state: &str, query: &HistoryQuery) -> Result<History, StoreError> {
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
    let entries = store.history(&filter).await?;
    Ok(History {
        format_version: FORMAT_VERSION,
        state: state.to_string(),
        email_keys,
        entries: entries.into_iter().map(Entry::from).collect(),
    })
}

impl History {
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// A header line, then one line per operation; fields joined with `;`.
    pub fn to_csv(&self) -> Result<String, String> {
        let mut w = csv::Writer::from_writer(Vec::new());
        let cannot = |e: csv::Error| format!("cannot write the CSV: {e}");
        w.write_record(COLUMNS).map_err(cannot)?;
        for e in &self.entries {
            w.write_record(row(e, ";")).map_err(cannot)?;
        }
        let bytes = w
            .into_inner()
            .map_err(|e| format!("cannot write the CSV: {e}"))?;
        String::from_utf8(bytes).map_err(|e| format!("cannot write the CSV: {e}"))
    }

    pub fn to_text(&self) -> String {
        let mut out = String::new();
        if let Some(keys) = &self.email_keys {
            if keys.is_empty() {
                let _ = writeln!(out, "no user key ever had that email in {}", self.state);
                return out;
            }
            let _ = writeln!(out, "user key(s) that had that email: {}", keys.join(", "));
        }
        if self.entries.is_empty() {
            let _ = writeln!(out, "no operations recorded in {} match", self.state);
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
        for e in &self.entries {
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
