//! Sources: where the HR user list comes from, read into validated [`User`]s.
//!
//! Every source type does two things. It reads its input into [`RawRecord`]s (column
//! name → raw text) — `csv.rs`, `json.rs`, `http/` (a paged JSON API) and `scim.rs`
//! (a SCIM service's `/Users`) — and hands them
//! to [`build_users`], which alone decides what a valid user is: the same mapping,
//! normalisation, status and date rules, and duplicate checks for every source.
//!
//! A broken *record* never stops a load: it becomes a [`SourceRejection`] with its
//! location and whatever key and email it has, so that the planner holds every account
//! it can be tied to (never disables it because it seems to be gone). A broken *file* —
//! unreadable, not a regular file, empty, not CSV/JSON, missing or repeating a column,
//! a quote that swallows rows, a field or record over its limit — is a [`SourceError`]:
//! an export that cannot be trusted whole must stop the run, never read as "everyone
//! after line 92 left".

mod budget;
mod build;
mod csv;
mod element;
mod http;
mod json;
mod scim;
mod walk;

#[cfg(test)]
mod tests;

use std::collections::BTreeSet;
use std::future::Future;
use std::path::{Path, PathBuf};
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
    /// The attribute columns (every column that is not a canonical field, status or
    /// date) seen in the records read, with a value or empty: what a scope key may
    /// name.
    pub attribute_columns: BTreeSet<String>,
}

impl SourceLoad {
    /// Every identity the rejected records carry — keys as written, emails lower-cased,
    /// each also with its control characters removed (`E1\0` still ties to `E1`) — for
    /// the planner: a snapshot account whose key or email is in this set is held, never
    /// disabled because its row was bad. Holding one account too many is safe;
    /// disabling one too many is what this prevents.
    pub fn held_identities(&self) -> BTreeSet<String> {
        let mut held = BTreeSet::new();
        for rejection in &self.rejected {
            let key = rejection.external_id.as_deref().map(str::trim);
            let email = rejection.email.as_deref().map(crate::user::normalise_email);
            for identity in key.into_iter().map(str::to_string).chain(email) {
                let bare: String = identity.chars().filter(|c| !c.is_control()).collect();
                let bare = bare.trim();
                if !bare.is_empty() && bare != identity {
                    held.insert(bare.to_string());
                }
                if !identity.is_empty() {
                    held.insert(identity);
                }
            }
        }
        held
    }
}

/// One record that could not be turned into a user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct SourceRejection {
    /// `line 7` for CSV (the physical line where the record starts), `record 3` for
    /// JSON (0-based index into the users array), `page 2 record 3` for HTTP (pages
    /// from 1 in the order read, the 0-based index in that page's array).
    pub location: String,
    /// The record's key, when it has one (as written, trimmed; even when it is what is
    /// wrong with the record): the planner holds the account with this key.
    pub external_id: Option<String>,
    /// The record's email, trimmed and lower-cased, when it has one (even when it is
    /// not a valid address): the planner holds the account with this email.
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
        "source file {path} is not a regular file (a {kind}): refused; a pipe or device \
         could block the pass or never end"
    )]
    NotRegular { path: PathBuf, kind: &'static str },
    #[error(
        "source file {path}: the {what} at {location} is over {limit} bytes (`{key}`); \
         the whole file is refused"
    )]
    TooLarge {
        path: PathBuf,
        /// `line 7`, `line 7, column \`notes\``, `record 3`, `record 3, key \`bio\``.
        location: String,
        /// `field`, `record`, `header row`.
        what: &'static str,
        limit: usize,
        /// The config key that sets the limit.
        key: &'static str,
    },
    #[error(
        "source file {path} cannot be read row by row from {location}: {message}; the \
         whole file is refused (nobody is disabled)"
    )]
    LostSync {
        path: PathBuf,
        location: String,
        message: String,
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
        let file = open_regular(&path)?;
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

/// Opens the regular file at `path` for reading, refusing anything else: opening a
/// FIFO blocks until a writer comes (forever, for a pass), and a device such as
/// `/dev/zero` never ends. Looked at before opening, opened without blocking anyway
/// (in case the path was swapped in between), and what was opened is looked at again.
fn open_regular(path: &Path) -> Result<std::fs::File, SourceError> {
    crate::files::open_regular(path).map_err(|e| match e {
        crate::files::ReadError::NotRegular(kind) => SourceError::NotRegular {
            path: path.to_path_buf(),
            kind,
        },
        crate::files::ReadError::Io(source) => SourceError::Read {
            path: path.to_path_buf(),
            source,
        },
        other => SourceError::Read {
            path: path.to_path_buf(),
            source: std::io::Error::other(other.to_string()),
        },
    })
}
