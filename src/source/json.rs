//! JSON exports: an array of user objects, either the whole document or found at a
//! dotted path (`source.array_field`, e.g. `data.users`) inside it.
//!
//! The document is streamed: serde walks down to the array and hands over one element
//! at a time, so a million-user export never exists as one `Value` tree in memory.
//! Each element is flattened to column → text (nested objects as dotted names, arrays
//! as their JSON text) and validated like any other source's records.

use std::future::Future;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::pin::Pin;

use serde_json::Value;

use super::budget::{self, Capped, RecordMark, BUFFER};
use super::build::Builder;
use super::element::{self, Element};
use super::walk::{Shape, Walker};
use super::{parse_file, RawRecord, Source, SourceError, SourceLoad, SourceRejection};
use crate::config::SourceConfig;

const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// A JSON file holding an array of user objects.
#[derive(Debug, Clone)]
pub struct JsonSource {
    config: SourceConfig,
    array_field: Option<String>,
}

impl JsonSource {
    pub fn new(config: SourceConfig, array_field: Option<String>) -> Self {
        JsonSource {
            config,
            array_field,
        }
    }
}

impl Source for JsonSource {
    fn describe(&self) -> String {
        match &self.array_field {
            Some(field) => format!(
                "JSON file {} (users at `{field}`)",
                self.config.path.display()
            ),
            None => format!("JSON file {}", self.config.path.display()),
        }
    }

    fn load(&self) -> Pin<Box<dyn Future<Output = Result<SourceLoad, SourceError>> + Send + '_>> {
        let array_field = self.array_field.clone();
        Box::pin(parse_file(
            self.config.clone(),
            "json",
            move |file, path, config| parse_json(file, path, array_field.as_deref(), config),
        ))
    }
}

/// Parses a JSON document from `input`; `path` is only for messages.
pub(super) fn parse_json(
    input: impl Read,
    path: &Path,
    array_field: Option<&str>,
    config: &SourceConfig,
) -> Result<SourceLoad, SourceError> {
    let limits = config.limits;
    let mark = RecordMark::default();
    // Under the buffer, so that serde's byte-at-a-time reads cost nothing extra.
    let mut input =
        BufReader::with_capacity(BUFFER, Capped::new(input, limits.max_record_bytes, &mark));
    let start = input.fill_buf().map_err(|source| SourceError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let (empty, bom) = (start.is_empty(), start.starts_with(UTF8_BOM));
    if empty {
        return Err(SourceError::Empty {
            path: path.to_path_buf(),
        });
    }
    if bom {
        input.consume(UTF8_BOM.len());
    }

    let segments: Vec<String> = array_field
        .map(|f| f.split('.').map(str::to_string).collect())
        .unwrap_or_default();
    let mut builder = Builder::new(config);
    let mut index = 0usize;
    let mut walker = Walker {
        segments: &segments,
        keep_rest: false,
        mark: Some(&mark),
        sink: |element: Element| {
            let location = format!("record {index}");
            index += 1;
            if let Some(key) = element::oversize_field(&element, limits.max_field_bytes) {
                return Err(format!(
                    "{location}: the value of `{key}` is larger than source.max_field_bytes \
                     ({} bytes); the whole file is refused (nobody is disabled)",
                    limits.max_field_bytes
                ));
            }
            push_element(&mut builder, location, element);
            Ok(())
        },
        shape: None,
    };
    let mut deserializer = serde_json::Deserializer::from_reader(input);
    let walked = walker
        .walk(&mut deserializer)
        .and_then(|_| deserializer.end());
    let shape = walker.shape.take();
    drop(walker);

    if let Err(err) = walked {
        let path = path.to_path_buf();
        return Err(match shape {
            Some(Shape::Missing { depth }) => SourceError::ArrayFieldNotFound {
                path,
                array_field: array_field.unwrap_or_default().to_string(),
                missing: segments[..=depth].join("."),
            },
            Some(Shape::NotArray { found }) => SourceError::NotAnArray {
                path,
                at: array_field.map(str::to_string),
                found,
            },
            Some(Shape::Refused { message }) => SourceError::Json {
                path,
                line: err.line(),
                column: err.column(),
                message,
            },
            None if mark.tripped() => SourceError::Json {
                path,
                line: err.line(),
                column: err.column(),
                message: format!(
                    "record {index}: {}",
                    budget::over_limit(limits.max_record_bytes)
                ),
            },
            None if err.is_io() => SourceError::Read {
                path,
                source: err.into(),
            },
            None => SourceError::Json {
                path,
                line: err.line(),
                column: err.column(),
                message: err.to_string(),
            },
        });
    }
    Ok(builder.finish())
}

/// Feeds one element of a users array to the builder: an object as a record
/// (flattened to column → text; a repeated key or an inexact numeric key rejects it,
/// with the key and email it has so that their account is held), anything else as a
/// rejection. Shared with the HTTP source, whose pages hold the same kind of array.
pub(super) fn push_element(builder: &mut Builder<'_>, location: String, value: Element) {
    match value {
        Element::Object(object) => {
            let (fields, problems) = element::flatten(object, builder.key_column());
            builder.push_flawed(RawRecord { location, fields }, problems);
        }
        other => builder.push_rejected(SourceRejection {
            location,
            external_id: None,
            email: None,
            reason: format!("is {}, not an object", other.kind()),
        }),
    }
}

/// What a JSON value is, for messages: `an object`, `a string`, …
pub(super) fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
