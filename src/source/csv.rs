//! CSV exports: a header row, then one user per record.
//!
//! Records are read as bytes and decoded one field at a time, so that one row in
//! another encoding, or with a field too many, is rejected with its line while the
//! rest of the file loads. What makes the whole file untrustworthy — no content, an
//! unreadable header, a mapped column missing from it — is a [`SourceError`].

use std::collections::VecDeque;
use std::future::Future;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::pin::Pin;

use ::csv::{ByteRecord, ReaderBuilder};

use super::budget::{self, Capped, RecordMark, BUFFER};
use super::build::Builder;
use super::{parse_file, RawRecord, Source, SourceError, SourceLoad, SourceRejection};
use crate::config::SourceConfig;
use crate::user::normalise_email;

const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// `source.max_record_bytes` counts a record's field content; as written, with its
/// delimiters and quotes, a record within it can take twice that (a million one-byte
/// fields) and more. Reading stops once a record's written form passes this many times
/// the limit: memory stays bounded, and every record the content check would let
/// through with ordinary punctuation is still read (and judged) whole.
const WRITTEN_PER_CONTENT: usize = 4;

/// A CSV file with a header row.
#[derive(Debug, Clone)]
pub struct CsvSource {
    config: SourceConfig,
    delimiter: u8,
}

impl CsvSource {
    pub fn new(config: SourceConfig, delimiter: u8) -> Self {
        CsvSource { config, delimiter }
    }
}

impl Source for CsvSource {
    fn describe(&self) -> String {
        format!("CSV file {}", self.config.path.display())
    }

    fn load(&self) -> Pin<Box<dyn Future<Output = Result<SourceLoad, SourceError>> + Send + '_>> {
        let delimiter = self.delimiter;
        Box::pin(parse_file(
            self.config.clone(),
            "csv",
            move |file, path, config| parse_csv(file, path, delimiter, config),
        ))
    }
}

/// Parses CSV from `input`; `path` is only for messages.
pub(super) fn parse_csv(
    input: impl Read,
    path: &Path,
    delimiter: u8,
    config: &SourceConfig,
) -> Result<SourceLoad, SourceError> {
    let read_error = |source| SourceError::Read {
        path: path.to_path_buf(),
        source,
    };
    // The header is a record too: 300,000 columns of nonsense are refused as it is read.
    let mark = RecordMark::default();
    mark.start();
    let mut input = BufReader::with_capacity(
        BUFFER,
        Capped::new(
            input,
            config
                .limits
                .max_record_bytes
                .saturating_mul(WRITTEN_PER_CONTENT),
            &mark,
        ),
    );
    let start = input.fill_buf().map_err(read_error)?;
    let (empty, bom) = (start.is_empty(), start.starts_with(UTF8_BOM));
    if empty {
        return Err(SourceError::Empty {
            path: path.to_path_buf(),
        });
    }
    // The csv crate strips a BOM too, but only when it arrives in one read; be sure.
    if bom {
        input.consume(UTF8_BOM.len());
    }

    let mut reader = ReaderBuilder::new()
        .delimiter(delimiter)
        .has_headers(true)
        // Field counts are checked here, so that a bad row is a rejection with its
        // line rather than an error that ends the read.
        .flexible(true)
        .from_reader(LineTracker::new(input));
    let header = reader
        .byte_headers()
        .map_err(|err| over_cap_or(path, &mark, err, "the header".into(), config))?
        .clone();
    let header_line = reader.get_mut().line_at(start_byte(&header));
    let columns = header_names(&header, header_line, path)?;
    check_columns(&columns, path, config)?;

    let keys = KeyColumns {
        external_id: columns.iter().position(|c| *c == config.fields.external_id),
        email: columns.iter().position(|c| *c == config.fields.email),
    };
    let mut builder = Builder::new(config);
    let mut record = ByteRecord::new();
    loop {
        let next_start = reader.position().byte();
        mark.start();
        let more = reader.read_byte_record(&mut record).map_err(|err| {
            let line = reader.get_mut().line_at(next_start);
            over_cap_or(path, &mark, err, format!("line {line}"), config)
        })?;
        if !more {
            break;
        }
        let line = reader.get_mut().line_at(start_byte(&record));
        let location = format!("line {line}");
        let whole_file_error = |message: String| SourceError::Csv {
            path: path.to_path_buf(),
            location: format!("line {line}"),
            message,
        };
        check_limits(&record, &config.limits).map_err(whole_file_error)?;
        if let Some(message) = swallows_rows(&record, columns.len(), delimiter) {
            // The parse has lost sync with the rows: the people after this line would
            // read as gone and be disabled. The file is not trusted at all.
            return Err(whole_file_error(message));
        }
        if record.len() != columns.len() {
            let reason = format!(
                "has {} fields but the header has {}",
                record.len(),
                columns.len()
            );
            builder.push_rejected(rejection(&record, location, reason, keys));
            continue;
        }

        let mut fields = Vec::with_capacity(columns.len());
        let mut not_utf8 = Vec::new();
        for (column, bytes) in columns.iter().zip(record.iter()) {
            if column.is_empty() {
                continue;
            }
            match std::str::from_utf8(bytes) {
                Ok(text) => fields.push((column.clone(), text.to_string())),
                Err(_) => not_utf8.push(format!("`{column}`")),
            }
        }
        if !not_utf8.is_empty() {
            let reason = format!(
                "not valid UTF-8 in column {} (is the file in another encoding, such as \
                 Latin-1?)",
                not_utf8.join(", ")
            );
            builder.push_rejected(rejection(&record, location, reason, keys));
            continue;
        }
        builder.push_record(RawRecord { location, fields });
    }
    Ok(builder.finish())
}

/// Why `record` shows that a quote swallowed the rows after it, if it does: a field
/// that runs over lines in a record of the wrong width, or a field holding a line
/// that is itself as wide as a record (a quote opened in the last column). A quoted
/// line break in a record of the right width (an address over two lines) is fine.
fn swallows_rows(record: &ByteRecord, columns: usize, delimiter: u8) -> Option<String> {
    let multi_line = |field: &[u8]| field.contains(&b'\n') || field.contains(&b'\r');
    if !record.iter().any(multi_line) {
        return None;
    }
    let row_like = columns > 1
        && record.iter().filter(|f| multi_line(f)).any(|field| {
            field
                .split(|b| *b == b'\n')
                .skip(1)
                .any(|l| l.iter().filter(|b| **b == delimiter).count() + 1 >= columns)
        });
    if record.len() == columns && !row_like {
        return None;
    }
    let lines = record
        .iter()
        .map(|f| f.iter().filter(|b| **b == b'\n').count())
        .sum::<usize>()
        + 1;
    Some(format!(
        "a quoted field opened here runs over {lines} lines{}; is a quote never closed? \
         The whole file is refused (nobody is disabled): the rows after it would read as \
         people who left",
        if record.len() == columns {
            String::new()
        } else {
            format!(" and the record has {} fields, not {columns}", record.len())
        }
    ))
}

/// A field or record over `source.max_field_bytes` / `source.max_record_bytes`.
fn check_limits(record: &ByteRecord, limits: &crate::config::FileLimits) -> Result<(), String> {
    if record.as_slice().len() > limits.max_record_bytes {
        return Err(format!(
            "the record is larger than source.max_record_bytes ({} bytes)",
            limits.max_record_bytes
        ));
    }
    if let Some((i, _)) = record
        .iter()
        .enumerate()
        .find(|(_, f)| f.len() > limits.max_field_bytes)
    {
        return Err(format!(
            "field {} is larger than source.max_field_bytes ({} bytes)",
            i + 1,
            limits.max_field_bytes
        ));
    }
    Ok(())
}

/// Where the key and email columns are in the header.
#[derive(Clone, Copy)]
struct KeyColumns {
    external_id: Option<usize>,
    email: Option<usize>,
}

/// A rejection for a record that cannot be read as a whole, with a best-effort key and
/// email taken from their header positions: the planner then holds that user instead
/// of disabling them as gone.
fn rejection(
    record: &ByteRecord,
    location: String,
    reason: String,
    keys: KeyColumns,
) -> SourceRejection {
    let field = |index: Option<usize>| {
        let text = std::str::from_utf8(record.get(index?)?).ok()?.trim();
        (!text.is_empty()).then_some(text)
    };
    SourceRejection {
        location,
        external_id: field(keys.external_id).map(str::to_string),
        // Even an invalid address: it still ties the record to an account to hold.
        email: field(keys.email).map(normalise_email),
        reason,
    }
}

/// The header's column names, trimmed. An unreadable or repeated name makes every
/// record's mapping doubtful, so it fails the file.
fn header_names(header: &ByteRecord, line: u64, path: &Path) -> Result<Vec<String>, SourceError> {
    if header.is_empty() {
        return Err(SourceError::NoHeader {
            path: path.to_path_buf(),
        });
    }
    let mut names: Vec<String> = Vec::with_capacity(header.len());
    // A set, not a scan of `names` per column: 300,000 columns took over a minute.
    let mut seen: std::collections::HashSet<String> = std::collections::HashSet::new();
    for (i, bytes) in header.iter().enumerate() {
        let name = std::str::from_utf8(bytes).map_err(|err| SourceError::Csv {
            path: path.to_path_buf(),
            location: format!("line {line}"),
            message: format!("header column {} is not valid UTF-8: {err}", i + 1),
        })?;
        let name = name.trim_start_matches('\u{feff}').trim().to_string();
        if !name.is_empty() && !seen.insert(name.clone()) {
            return Err(SourceError::DuplicateColumn {
                path: path.to_path_buf(),
                column: name,
                line,
            });
        }
        names.push(name);
    }
    Ok(names)
}

/// Every column the config names must be in the header: a renamed column in the
/// export would otherwise reject (or, for dates, silently drop) it for every user.
fn check_columns(
    columns: &[String],
    path: &Path,
    config: &SourceConfig,
) -> Result<(), SourceError> {
    let fields = &config.fields;
    let status = &config.status;
    let required = [
        ("source.fields.external_id", Some(&fields.external_id)),
        ("source.fields.email", Some(&fields.email)),
        ("source.fields.first_name", Some(&fields.first_name)),
        ("source.fields.last_name", Some(&fields.last_name)),
        ("source.status.field", status.field.as_ref()),
        (
            "source.status.start_date_field",
            status.start_date_field.as_ref(),
        ),
        (
            "source.status.termination_date_field",
            status.termination_date_field.as_ref(),
        ),
    ];
    for (key, column) in required {
        let Some(column) = column else { continue };
        if !columns.contains(column) {
            return Err(SourceError::MissingColumn {
                path: path.to_path_buf(),
                column: column.clone(),
                key,
                header: columns.join(", "),
            });
        }
    }
    Ok(())
}

fn start_byte(record: &ByteRecord) -> u64 {
    record.position().map_or(0, |p| p.byte())
}

/// Passes bytes through to the CSV reader and notes where each line break is, so that
/// a record's physical line can be told from its byte offset.
///
/// The csv crate counts lines itself, but a record's position there is where the
/// previous one ended: with CRLF endings every record is reported one line early, with
/// bare CR endings all are on line 1, and skipped blank lines are not counted. A
/// rejection that points at the wrong line sends someone to fix the wrong employee.
struct LineTracker<R> {
    inner: R,
    /// Bytes passed through so far.
    offset: u64,
    /// A `\r` at the end of the last chunk: a break of its own, or half of `\r\n`.
    pending_cr: Option<u64>,
    /// `(start, end)` byte offsets of line breaks not yet passed by a `line_at` call.
    breaks: VecDeque<(u64, u64)>,
    /// 1 + the line breaks passed.
    line: u64,
}

impl<R> LineTracker<R> {
    fn new(inner: R) -> Self {
        LineTracker {
            inner,
            offset: 0,
            pending_cr: None,
            breaks: VecDeque::new(),
            line: 1,
        }
    }

    /// The physical line (from 1) of the first byte at or after `byte` that is not a
    /// line break: where a record starting at `byte` really begins. Calls must come
    /// with non-decreasing offsets, as records do.
    fn line_at(&mut self, byte: u64) -> u64 {
        let mut at = byte;
        while let Some(&(start, end)) = self.breaks.front() {
            if start > at {
                break;
            }
            self.line += 1;
            at = at.max(end);
            self.breaks.pop_front();
        }
        self.line
    }
}

impl<R: Read> Read for LineTracker<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n == 0 {
            if let Some(cr) = self.pending_cr.take() {
                self.breaks.push_back((cr, cr + 1));
            }
        }
        // Only the line-break bytes are visited (memchr): a per-byte loop here cost
        // more than the CSV parse itself.
        for i in memchr::memchr2_iter(b'\r', b'\n', &buf[..n]) {
            let (at, b) = (self.offset + i as u64, buf[i]);
            if let Some(cr) = self.pending_cr.take() {
                // `\r\n` only when the `\n` comes right after the `\r`.
                if b == b'\n' && at == cr + 1 {
                    self.breaks.push_back((cr, at + 1));
                    continue;
                }
                self.breaks.push_back((cr, cr + 1));
            }
            match b {
                b'\r' => self.pending_cr = Some(at),
                b'\n' => self.breaks.push_back((at, at + 1)),
                _ => {}
            }
        }
        // A `\r` followed by something else in this chunk is a break of its own now;
        // only one that ends the chunk waits for the next byte.
        let end = self.offset + n as u64;
        if let Some(cr) = self.pending_cr.filter(|cr| cr + 1 < end) {
            self.breaks.push_back((cr, cr + 1));
            self.pending_cr = None;
        }
        self.offset = end;
        Ok(n)
    }
}

/// The error for a failed read: the record cap's, naming the limit and where the
/// record began, when that is what stopped it.
fn over_cap_or(
    path: &Path,
    mark: &RecordMark,
    err: ::csv::Error,
    at: String,
    config: &SourceConfig,
) -> SourceError {
    if mark.tripped() {
        return SourceError::Csv {
            path: path.to_path_buf(),
            location: at,
            message: budget::over_limit(config.limits.max_record_bytes),
        };
    }
    csv_error(path, err)
}

fn csv_error(path: &Path, err: ::csv::Error) -> SourceError {
    // Not `p.line()`: see `LineTracker` for why the crate's line numbers are not used.
    let location = err.position().map_or_else(
        || "the header".to_string(),
        |p| format!("byte {}", p.byte()),
    );
    let message = err.to_string();
    match err.into_kind() {
        ::csv::ErrorKind::Io(source) => SourceError::Read {
            path: PathBuf::from(path),
            source,
        },
        _ => SourceError::Csv {
            path: path.to_path_buf(),
            location,
            message,
        },
    }
}
