//! Sources: where the HR user list comes from, read into validated [`User`]s.
//!
//! Every source type does two things. It reads its input into [`RawRecord`]s (column
//! name → raw text) — `csv.rs`, `json.rs`, `http/` (a paged JSON API) and `scim.rs`
//! (a SCIM service's `/Users`) — and hands them
//! to [`build_users`], which alone decides what a valid user is: the same mapping,
//! normalisation, status and date rules, and duplicate checks for every source.
//!
//! A broken *record* never stops a load: it becomes a [`SourceRejection`] with its
//! location and, when known, its key and email, so that the planner holds that key
//! (never disables it because it seems to be gone). A broken *file* — unreadable, empty,
//! not CSV/JSON, missing a mapped column — is a [`SourceError`]: an export that cannot be
//! trusted must stop the run, never read as "everyone left".

mod build;
mod csv;
mod http;
mod json;
mod scim;

#[cfg(test)]
mod tests;

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;

use serde::Serialize;

use crate::config::{SourceConfig, SourceFormat};
use crate::user::User;

pub use self::csv::CsvSource;
pub use self::http::{HttpSource, HttpSourceError};
pub use self::json::JsonSource;
pub use self::scim::ScimSource;
pub use build::build_users;

/// What a source load produced.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SourceLoad {
    /// Valid users, sorted by `external_id` (ascending byte order).
    pub users: Vec<User>,
    /// Records that were not turned into users, in the order they were read.
    pub rejected: Vec<SourceRejection>,
    /// Records read (users + rejected); a CSV header row is not a record.
    pub records: usize,
}

/// One record that could not be turned into a user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SourceRejection {
    /// `line 7` for CSV (the physical line where the record starts), `record 3` for
    /// JSON (0-based index into the users array), `page 2 record 3` for HTTP (pages
    /// from 1 in the order read, the 0-based index in that page's array).
    pub location: String,
    /// The record's key, when it could be read: the planner holds this key.
    pub external_id: Option<String>,
    /// The record's normalised email, when it is a valid address.
    pub email: Option<String>,
    /// What is wrong; several problems are separated by `; `.
    pub reason: String,
}

/// One record as the source has it, before validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawRecord {
    /// Where the record is, for messages: `line 7`, `record 3`.
    pub location: String,
    /// Column name → raw text value. Absent values are simply not listed.
    pub fields: Vec<(String, String)>,
}

/// A source that cannot be read as a whole.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("cannot read source file {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "source file {path} is empty (0 bytes); an empty export is treated as broken, \
         never as \"everyone left\""
    )]
    Empty { path: PathBuf },
    #[error("source file {path} has no header row (only blank lines)")]
    NoHeader { path: PathBuf },
    #[error("source file {path} is not valid CSV at {location}: {message}")]
    Csv {
        path: PathBuf,
        location: String,
        message: String,
    },
    #[error(
        "source file {path} has no column `{column}` (set by `{key}`); \
         the header has: {header}"
    )]
    MissingColumn {
        path: PathBuf,
        column: String,
        key: &'static str,
        /// The header's column names, comma-separated.
        header: String,
    },
    #[error("source file {path} has the column `{column}` twice in its header (line {line})")]
    DuplicateColumn {
        path: PathBuf,
        column: String,
        line: u64,
    },
    #[error("source file {path} is not valid JSON at line {line}, column {column}: {message}")]
    Json {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    #[error(
        "source file {path}: `source.array_field` is `{array_field}`, but the document has \
         no `{missing}`"
    )]
    ArrayFieldNotFound {
        path: PathBuf,
        array_field: String,
        /// The dotted prefix of `array_field` that does not exist.
        missing: String,
    },
    #[error("source file {path}: {}", not_an_array(at.as_deref(), found))]
    NotAnArray {
        path: PathBuf,
        /// The dotted path that was expected to hold the users; `None` for the document
        /// itself (no `source.array_field`).
        at: Option<String>,
        /// What was found instead: `an object`, `a string`, …
        found: &'static str,
    },
    #[error("reading source file {path} stopped unexpectedly: {message}")]
    Task { path: PathBuf, message: String },
    /// `type: http`: a page could not be fetched or read.
    #[error(transparent)]
    Http(#[from] HttpSourceError),
    #[error("SCIM source {url} (page at startIndex {start}): {message}")]
    ScimRequest {
        url: String,
        start: usize,
        message: String,
    },
    #[error("SCIM source {url} (page at startIndex {start}) answered HTTP {status}: {message}")]
    ScimStatus {
        url: String,
        start: usize,
        status: u16,
        message: String,
    },
    #[error("SCIM source {url} (page at startIndex {start}): {message}; the whole list is refused, never read in part")]
    ScimResponse {
        url: String,
        start: usize,
        message: String,
    },
}

fn not_an_array(at: Option<&str>, found: &str) -> String {
    match at {
        None if found == "an object" => "the document is an object, not an array of users; \
             set `source.array_field` to the (dotted) key that holds them"
            .to_string(),
        None => format!("the document is {found}, not an array of users"),
        Some(at) => format!("`{at}` (`source.array_field`) is {found}, not an array of users"),
    }
}

/// A source of users: a file or a SCIM service.
pub trait Source: Send + Sync {
    /// For logs and reports: what is read, e.g. `CSV file /etc/rosterd/users.csv`.
    fn describe(&self) -> String;

    /// Reads the whole user list.
    fn load(&self) -> Pin<Box<dyn Future<Output = Result<SourceLoad, SourceError>> + Send + '_>>;
}

/// The source described by the `source:` config section.
pub fn from_config(config: &SourceConfig) -> Box<dyn Source> {
    match &config.format {
        SourceFormat::Csv { delimiter } => Box::new(CsvSource::new(config.clone(), *delimiter)),
        SourceFormat::Json { array_field } => {
            Box::new(JsonSource::new(config.clone(), array_field.clone()))
        }
        SourceFormat::Http(http) => Box::new(HttpSource::new(config.clone(), (**http).clone())),
        SourceFormat::Scim(settings) => Box::new(ScimSource::new(config.clone(), settings.clone())),
    }
}

/// Runs a blocking file parse off the async runtime: a million-row export takes
/// seconds to parse, and the daemon's health endpoint must keep answering meanwhile.
async fn parse_file<F>(
    config: SourceConfig,
    kind: &'static str,
    parse: F,
) -> Result<SourceLoad, SourceError>
where
    F: FnOnce(std::fs::File, &std::path::Path, &SourceConfig) -> Result<SourceLoad, SourceError>
        + Send
        + 'static,
{
    let path = config.path.clone();
    let task = tokio::task::spawn_blocking(move || {
        let path = config.path.clone();
        let file = std::fs::File::open(&path).map_err(|source| SourceError::Read {
            path: path.clone(),
            source,
        })?;
        let load = parse(file, &path, &config)?;
        tracing::debug!(
            path = %path.display(),
            kind,
            records = load.records,
            users = load.users.len(),
            rejected = load.rejected.len(),
            "Source file read."
        );
        Ok(load)
    });
    match task.await {
        Ok(result) => result,
        Err(err) => Err(SourceError::Task {
            path,
            message: err.to_string(),
        }),
    }
}
