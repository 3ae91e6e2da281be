//! Tests for the source module: record validation, CSV and JSON parsing, and loading
//! files through the `Source` trait.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod csv_file;
mod fuzz;
mod json_file;
mod loading;
mod records;

use std::path::{Path, PathBuf};

use chrono::NaiveDate;

use super::{RawRecord, SourceError, SourceLoad, SourceRejection};
use crate::config::{FieldMap, SourceConfig, SourceFormat, StatusRule};

/// A CSV config mapped the way the example export is laid out.
fn config() -> SourceConfig {
    SourceConfig {
        format: SourceFormat::Csv { delimiter: b',' },
        path: PathBuf::from("users.csv"),
        fields: FieldMap {
            external_id: "employee_id".into(),
            email: "work_email".into(),
            first_name: "first_name".into(),
            last_name: "last_name".into(),
            phone: Some("mobile".into()),
        },
        status: StatusRule::default(),
        provision_days_before_start: 0,
        limits: Default::default(),
    }
}

/// `config()` with a status column and date columns.
fn config_with_status() -> SourceConfig {
    let mut config = config();
    config.status = StatusRule {
        field: Some("status".into()),
        active_values: vec!["Active".into(), " Leave ".into()],
        start_date_field: Some("start_date".into()),
        termination_date_field: Some("termination_date".into()),
        date_format: "%Y-%m-%d".into(),
    };
    config
}

fn csv_with(text: &[u8], delimiter: u8, config: &SourceConfig) -> Result<SourceLoad, SourceError> {
    super::csv::parse_csv(text, Path::new("users.csv"), delimiter, config)
}

fn csv(text: &str) -> SourceLoad {
    csv_with(text.as_bytes(), b',', &config()).unwrap()
}

fn json_with(text: &str, array_field: Option<&str>) -> Result<SourceLoad, SourceError> {
    super::json::parse_json(
        text.as_bytes(),
        Path::new("users.json"),
        array_field,
        &config(),
    )
}

fn json(text: &str) -> SourceLoad {
    json_with(text, None).unwrap()
}

fn raw(location: &str, fields: &[(&str, &str)]) -> RawRecord {
    RawRecord {
        location: location.into(),
        fields: fields
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    }
}

/// A complete, valid record in the `config()` mapping, with `extra` added (or
/// overriding) fields.
fn person(location: &str, id: &str, email: &str, extra: &[(&str, &str)]) -> RawRecord {
    let mut fields = vec![
        ("employee_id", id),
        ("work_email", email),
        ("first_name", "Ada"),
        ("last_name", "Lovelace"),
    ];
    fields.extend_from_slice(extra);
    raw(location, &fields)
}

fn day(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

fn ids(load: &SourceLoad) -> Vec<&str> {
    load.users.iter().map(|u| u.external_id.as_str()).collect()
}

fn rejection<'a>(load: &'a SourceLoad, location: &str) -> &'a SourceRejection {
    load.rejected
        .iter()
        .find(|r| r.location == location)
        .unwrap_or_else(|| panic!("no rejection at {location}: {:#?}", load.rejected))
}

/// `config()` with small limits: fields of 1 KiB, records of 4 KiB.
fn small_limits() -> SourceConfig {
    let mut config = config();
    config.limits = crate::config::FileLimits {
        max_field_bytes: 1024,
        max_record_bytes: 4096,
    };
    config
}

/// `head`, then `tail_bytes` of `fill` — a file far too large to hold — with the
/// number of bytes the parser read from it.
struct Endless {
    head: std::io::Cursor<Vec<u8>>,
    fill: u8,
    tail_bytes: u64,
    read: std::rc::Rc<std::cell::Cell<u64>>,
}

impl Endless {
    fn new(head: &str, fill: u8, tail_bytes: u64) -> (Endless, std::rc::Rc<std::cell::Cell<u64>>) {
        let read = std::rc::Rc::new(std::cell::Cell::new(0));
        let endless = Endless {
            head: std::io::Cursor::new(head.as_bytes().to_vec()),
            fill,
            tail_bytes,
            read: read.clone(),
        };
        (endless, read)
    }
}

impl std::io::Read for Endless {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let mut n = self.head.read(buf)?;
        if n == 0 {
            let left = self.tail_bytes - (self.read.get() - self.head.get_ref().len() as u64);
            n = buf.len().min(left as usize);
            buf[..n].fill(self.fill);
        }
        self.read.set(self.read.get() + n as u64);
        Ok(n)
    }
}
