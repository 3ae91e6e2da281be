//! JSON exports: an array of user objects, either the whole document or found at a
//! dotted path (`source.array_field`, e.g. `data.users`) inside it.
//!
//! The document is streamed: serde walks down to the array and hands over one element
//! at a time, so a million-user export never exists as one `Value` tree in memory.
//! Each element is flattened to column → text (nested objects as dotted names, arrays
//! as their JSON text) and validated like any other source's records.

use std::fmt;
use std::future::Future;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::pin::Pin;

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

use super::build::Builder;
use super::element::{self, Element};
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
    let mut input = BufReader::with_capacity(64 * 1024, input);
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

    let segments: Vec<&str> = array_field
        .map(|f| f.split('.').collect())
        .unwrap_or_default();
    let mut state = WalkState {
        builder: Builder::new(config),
        index: 0,
        shape: None,
    };
    let mut deserializer = serde_json::Deserializer::from_reader(input);
    let walked = Walk {
        segments: &segments,
        depth: 0,
        state: &mut state,
    }
    .deserialize(&mut deserializer)
    .and_then(|()| deserializer.end());

    if let Err(err) = walked {
        return Err(match state.shape {
            Some(Shape::Missing { missing }) => SourceError::ArrayFieldNotFound {
                path: path.to_path_buf(),
                array_field: array_field.unwrap_or_default().to_string(),
                missing,
            },
            Some(Shape::NotArray { found }) => SourceError::NotAnArray {
                path: path.to_path_buf(),
                at: array_field.map(str::to_string),
                found,
            },
            None if err.is_io() => SourceError::Read {
                path: path.to_path_buf(),
                source: err.into(),
            },
            None => SourceError::Json {
                path: path.to_path_buf(),
                line: err.line(),
                column: err.column(),
                message: err.to_string(),
            },
        });
    }
    Ok(state.builder.finish())
}

struct WalkState<'c> {
    builder: Builder<'c>,
    /// Index of the next element of the users array.
    index: usize,
    /// Set when the document's shape, not its syntax, is wrong.
    shape: Option<Shape>,
}

enum Shape {
    /// `missing` is the dotted prefix of `array_field` that does not exist.
    Missing {
        missing: String,
    },
    NotArray {
        found: &'static str,
    },
}

impl WalkState<'_> {
    fn push(&mut self, value: Element) {
        let location = format!("record {}", self.index);
        self.index += 1;
        push_element(&mut self.builder, location, value);
    }
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

/// Walks down `segments` (the dotted `array_field`) to the users array, then feeds its
/// elements to the builder one by one; everything else is skipped unparsed.
struct Walk<'a, 'b, 'c> {
    segments: &'a [&'a str],
    /// How many segments are already walked.
    depth: usize,
    state: &'b mut WalkState<'c>,
}

impl Walk<'_, '_, '_> {
    fn at_array(&self) -> bool {
        self.depth >= self.segments.len()
    }

    /// Records that the value here is `found` where an array (or, above it, an object)
    /// was expected, and returns the error that stops the walk.
    fn wrong<E: de::Error>(self, found: &'static str) -> E {
        if self.at_array() {
            self.state.shape = Some(Shape::NotArray { found });
            E::custom(format!("expected an array of users, found {found}"))
        } else {
            self.missing()
        }
    }

    fn missing<E: de::Error>(self) -> E {
        let missing = self.segments[..=self.depth].join(".");
        let message = format!("no `{missing}`");
        self.state.shape = Some(Shape::Missing { missing });
        E::custom(message)
    }
}

impl<'de> DeserializeSeed<'de> for Walk<'_, '_, '_> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Walk<'_, '_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.at_array() {
            f.write_str("an array of user objects")
        } else {
            write!(f, "an object with the key `{}`", self.segments[self.depth])
        }
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        if !self.at_array() {
            return Err(self.wrong("an array"));
        }
        while let Some(value) = seq.next_element::<Element>()? {
            self.state.push(value);
        }
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let Some(&wanted) = self.segments.get(self.depth) else {
            return Err(self.wrong("an object"));
        };
        let mut found = false;
        while let Some(key) = map.next_key::<String>()? {
            if !found && key == wanted {
                found = true;
                map.next_value_seed(Walk {
                    segments: self.segments,
                    depth: self.depth + 1,
                    state: &mut *self.state,
                })?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        if found {
            Ok(())
        } else {
            Err(self.missing())
        }
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        Err(self.wrong("a string"))
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        Err(self.wrong("a boolean"))
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        Err(self.wrong("a number"))
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        Err(self.wrong("a number"))
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        Err(self.wrong("a number"))
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Err(self.wrong("null"))
    }
}
