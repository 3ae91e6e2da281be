//! Walks a JSON document down a path to its users array and hands over the array's
//! elements one at a time, as [`Element`]s (repeated keys and exact integers kept), so
//! that the array never exists whole in memory. Shared by the JSON file source (path:
//! the dotted `source.array_field`) and the HTTP source (path: the JSON pointer
//! `source.records`, whose page the pager reads too).
//!
//! Everything off the path is skipped unparsed, or — for a caller that still needs it,
//! like the HTTP pager reading a cursor — kept as a [`Value`] with the users array
//! left empty. A path segment that is a number indexes an array, as in a JSON pointer.
//! A key on the path given twice is an error: which array is meant is unknown.

use std::fmt;

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use super::budget::RecordMark;
use super::element::Element;

/// Why the walk stopped, when it was the document's shape and not its syntax.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Shape {
    /// The path's first `depth + 1` segments lead nowhere.
    Missing { depth: usize },
    /// The path ends at `found`, not an array.
    NotArray { found: &'static str },
    /// The element sink refused an element (a field over its limit, say).
    Refused { message: String },
}

/// The walk's settings and what it found.
pub(super) struct Walker<'a, F> {
    pub segments: &'a [String],
    /// Keep what is off the path (as a `Value`, the users array empty) or skip it.
    pub keep_rest: bool,
    /// Marks each element's start for a [`Capped`](super::budget::Capped) reader.
    pub mark: Option<&'a RecordMark>,
    /// Receives each element of the users array, in order; `Err` stops the walk.
    pub sink: F,
    /// Set when the walk stopped on the document's shape.
    pub shape: Option<Shape>,
}

impl<F: FnMut(Element) -> Result<(), String>> Walker<'_, F> {
    /// Walks the document in `deserializer`; the rest of it (`Value::Null` unless
    /// `keep_rest`) on success. On an error, [`Walker::shape`] says whether it was the
    /// shape.
    pub(super) fn walk<'de, D: de::Deserializer<'de>>(
        &mut self,
        deserializer: D,
    ) -> Result<Value, D::Error> {
        Walk {
            depth: 0,
            walker: self,
        }
        .deserialize(deserializer)
    }
}

struct Walk<'w, 'a, F> {
    /// How many segments are already walked.
    depth: usize,
    walker: &'w mut Walker<'a, F>,
}

impl<'a, F> Walk<'_, 'a, F> {
    fn at_array(&self) -> bool {
        self.depth >= self.walker.segments.len()
    }

    fn deeper(&mut self) -> Walk<'_, 'a, F> {
        Walk {
            depth: self.depth + 1,
            walker: &mut *self.walker,
        }
    }

    /// Records that the value here is `found` where an array (or, above it, an object)
    /// was expected, and returns the error that stops the walk.
    fn wrong<E: de::Error>(self, found: &'static str) -> E {
        if self.at_array() {
            self.walker.shape = Some(Shape::NotArray { found });
            E::custom(format!("expected an array of users, found {found}"))
        } else {
            self.missing()
        }
    }

    fn missing<E: de::Error>(self) -> E {
        self.walker.shape = Some(Shape::Missing { depth: self.depth });
        E::custom(format!("no `{}`", self.walker.segments[self.depth]))
    }

    fn rest<'de, A: SeqAccess<'de>>(&self, seq: &mut A) -> Result<Option<Value>, A::Error> {
        Ok(if self.walker.keep_rest {
            seq.next_element::<Value>()?
        } else {
            seq.next_element::<IgnoredAny>()?.map(|_| Value::Null)
        })
    }
}

impl<'de, F: FnMut(Element) -> Result<(), String>> DeserializeSeed<'de> for Walk<'_, '_, F> {
    type Value = Value;

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de, F: FnMut(Element) -> Result<(), String>> Visitor<'de> for Walk<'_, '_, F> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.at_array() {
            f.write_str("an array of user objects")
        } else {
            write!(
                f,
                "an object with the key `{}`",
                self.walker.segments[self.depth]
            )
        }
    }

    fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<Value, A::Error> {
        if self.at_array() {
            let walker = &mut *self.walker;
            loop {
                if let Some(mark) = walker.mark {
                    mark.start();
                }
                let Some(element) = seq.next_element::<Element>()? else {
                    break;
                };
                if let Err(message) = (walker.sink)(element) {
                    walker.shape = Some(Shape::Refused {
                        message: message.clone(),
                    });
                    return Err(de::Error::custom(message));
                }
            }
            if let Some(mark) = walker.mark {
                mark.disarm();
            }
            return Ok(Value::Array(Vec::new()));
        }
        let Ok(wanted) = self.walker.segments[self.depth].parse::<usize>() else {
            return Err(self.wrong("an array"));
        };
        let mut kept = Vec::new();
        let mut found = false;
        for index in 0.. {
            let item = if index == wanted {
                let item = seq.next_element_seed(self.deeper())?;
                found = item.is_some();
                item
            } else {
                self.rest(&mut seq)?
            };
            let Some(item) = item else { break };
            if self.walker.keep_rest {
                kept.push(item);
            }
        }
        if !found {
            return Err(self.missing());
        }
        Ok(if self.walker.keep_rest {
            Value::Array(kept)
        } else {
            Value::Null
        })
    }

    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<Value, A::Error> {
        if self.at_array() {
            return Err(self.wrong("an object"));
        }
        let wanted = self.walker.segments[self.depth].clone();
        let mut kept = Map::new();
        let mut found = false;
        while let Some(key) = map.next_key::<String>()? {
            let value = if key == wanted {
                if found {
                    return Err(de::Error::custom(format!(
                        "the key `{key}` on the way to the users array is given more than \
                         once: which array is meant is unknown"
                    )));
                }
                found = true;
                map.next_value_seed(self.deeper())?
            } else if self.walker.keep_rest {
                map.next_value::<Value>()?
            } else {
                map.next_value::<IgnoredAny>()?;
                continue;
            };
            if self.walker.keep_rest {
                kept.insert(key, value);
            }
        }
        if !found {
            return Err(self.missing());
        }
        Ok(if self.walker.keep_rest {
            Value::Object(kept)
        } else {
            Value::Null
        })
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<Value, E> {
        Err(self.wrong("a string"))
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Value, E> {
        Err(self.wrong("a boolean"))
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Value, E> {
        Err(self.wrong("a number"))
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Value, E> {
        Err(self.wrong("a number"))
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Value, E> {
        Err(self.wrong("a number"))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Err(self.wrong("null"))
    }
}

/// The segments of a JSON pointer (RFC 6901): `/data/users` → `data`, `users`; `""`
/// (the whole document) → none.
pub(super) fn pointer_segments(pointer: &str) -> Vec<String> {
    if pointer.is_empty() {
        return Vec::new();
    }
    pointer
        .split('/')
        .skip(1)
        .map(|s| s.replace("~1", "/").replace("~0", "~"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn walk(
        text: &str,
        path: &[&str],
        keep_rest: bool,
    ) -> (Result<Value, String>, Vec<Element>, Option<Shape>) {
        let segments: Vec<String> = path.iter().map(|s| s.to_string()).collect();
        let mut seen = Vec::new();
        let mut walker = Walker {
            segments: &segments,
            keep_rest,
            mark: None,
            sink: |e: Element| {
                seen.push(e);
                Ok(())
            },
            shape: None,
        };
        let mut de = serde_json::Deserializer::from_str(text);
        let result = walker.walk(&mut de).map_err(|e| e.to_string());
        let shape = walker.shape.clone();
        drop(walker);
        (result, seen, shape)
    }

    #[test]
    fn the_rest_is_kept_with_the_users_array_left_empty() {
        let (rest, seen, _) = walk(
            r#"{"meta":{"next":"c2"},"data":{"users":[{"id":1},{"id":2}],"n":2}}"#,
            &["data", "users"],
            true,
        );
        assert_eq!(seen.len(), 2);
        assert_eq!(
            rest.unwrap(),
            serde_json::json!({"meta":{"next":"c2"},"data":{"users":[],"n":2}})
        );
    }

    #[test]
    fn a_numeric_segment_indexes_an_array_and_a_missing_one_names_its_depth() {
        let (rest, seen, _) = walk(r#"[{"u":[]},{"u":[{"id":1}]}]"#, &["1", "u"], false);
        assert!(rest.is_ok());
        assert_eq!(seen.len(), 1);
        let (rest, _, shape) = walk(r#"[{"u":[]}]"#, &["3", "u"], false);
        assert!(rest.is_err());
        assert_eq!(shape, Some(Shape::Missing { depth: 0 }));
        let (_, _, shape) = walk(r#"{"data":{"x":1}}"#, &["data", "users"], false);
        assert_eq!(shape, Some(Shape::Missing { depth: 1 }));
        let (_, _, shape) = walk(r#"{"data":{"users":{}}}"#, &["data", "users"], false);
        assert_eq!(shape, Some(Shape::NotArray { found: "an object" }));
    }

    #[test]
    fn a_repeated_key_on_the_path_is_an_error() {
        let (rest, seen, shape) = walk(
            r#"{"users":[{"id":"E1"}],"users":[{"id":"E2"}]}"#,
            &["users"],
            true,
        );
        let err = rest.unwrap_err();
        assert!(
            err.contains("`users`") && err.contains("more than once"),
            "{err}"
        );
        assert_eq!(shape, None);
        assert_eq!(seen.len(), 1);
    }

    #[test]
    fn pointer_segments_unescape() {
        assert!(pointer_segments("").is_empty());
        assert_eq!(pointer_segments("/a~1b/c~0d"), ["a/b", "c~d"]);
        assert_eq!(pointer_segments("/"), [""]);
    }
}
