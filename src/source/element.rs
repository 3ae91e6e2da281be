//! One element of a JSON users array, as written: what `serde_json::Value` would lose
//! is kept. An object keeps every key in order, repeats included, so that
//! `"email": "a@corp", "email": "attacker@evil"` is seen (and the record rejected)
//! rather than silently keeping the last; a number keeps whether it was an exact
//! integer, so that an id of `1e20` or `12345678901234567890123` is rejected rather
//! than turned into float text that loses digits and may collide with another.

use std::collections::HashSet;
use std::fmt;

use serde::de::{self, Deserialize, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

#[derive(Debug, Clone, PartialEq)]
pub(super) enum Element {
    Null,
    Bool(bool),
    /// An integer JSON held exactly (it fits i64 or u64), as its digits.
    Integer(String),
    /// Any other number: a fraction, an exponent, or too large for 64 bits.
    Float(f64),
    String(String),
    /// Kept as its JSON text (a list of roles, say).
    Array(Value),
    Object(Vec<(String, Element)>),
}

impl From<Value> for Element {
    fn from(value: Value) -> Self {
        match value {
            Value::Null => Element::Null,
            Value::Bool(b) => Element::Bool(b),
            Value::Number(n) if n.is_f64() => Element::Float(n.as_f64().unwrap_or(f64::NAN)),
            Value::Number(n) => Element::Integer(n.to_string()),
            Value::String(s) => Element::String(s),
            array @ Value::Array(_) => Element::Array(array),
            Value::Object(map) => {
                Element::Object(map.into_iter().map(|(k, v)| (k, v.into())).collect())
            }
        }
    }
}

impl Element {
    /// What it is, for messages.
    pub(super) fn kind(&self) -> &'static str {
        match self {
            Element::Null => "null",
            Element::Bool(_) => "a boolean",
            Element::Integer(_) | Element::Float(_) => "a number",
            Element::String(_) => "a string",
            Element::Array(_) => "an array",
            Element::Object(_) => "an object",
        }
    }
}

/// An object's fields flattened to column → text (nested objects as `a.b`, arrays as
/// their JSON text, null as absent), and what is wrong with them: a column given
/// twice (directly, or as `a.b` and `{"a": {"b": …}}`), or `key_column` given as a
/// number that is not an exact integer.
pub(super) fn flatten(
    object: Vec<(String, Element)>,
    key_column: &str,
) -> (Vec<(String, String)>, Vec<String>) {
    let mut fields = Vec::with_capacity(object.len());
    let mut floats = Vec::new();
    for (key, value) in object {
        flatten_into(key, value, &mut fields, &mut floats);
    }
    let mut problems = Vec::new();
    let mut seen = HashSet::with_capacity(fields.len());
    let mut repeated = Vec::new();
    for (name, _) in &fields {
        if !seen.insert(name.as_str()) && !repeated.contains(name) {
            repeated.push(name.clone());
        }
    }
    for name in repeated {
        let values: Vec<String> = fields
            .iter()
            .filter(|(n, _)| *n == name)
            .map(|(_, v)| super::build::quoted(v))
            .collect();
        problems.push(format!(
            "the key `{name}` is given more than once ({}): which one is meant is unknown",
            values.join(", ")
        ));
    }
    if floats.iter().any(|f| f == key_column) {
        problems.push(format!(
            "the key `{key_column}` is a number that is not an exact integer (a fraction, an \
             exponent, or beyond 64 bits): digits may be lost; write it as a string"
        ));
    }
    (fields, problems)
}

fn flatten_into(
    name: String,
    value: Element,
    out: &mut Vec<(String, String)>,
    floats: &mut Vec<String>,
) {
    match value {
        Element::Null => {}
        Element::String(text) => out.push((name, text)),
        Element::Integer(digits) => out.push((name, digits)),
        Element::Float(f) => {
            let text =
                serde_json::Number::from_f64(f).map_or_else(|| f.to_string(), |n| n.to_string());
            floats.push(name.clone());
            out.push((name, text));
        }
        Element::Bool(flag) => out.push((name, flag.to_string())),
        Element::Array(array) => out.push((name, array.to_string())),
        Element::Object(object) => {
            for (key, value) in object {
                flatten_into(format!("{name}.{key}"), value, out, floats);
            }
        }
    }
}

/// The (dotted) key of the first value in `element` whose text is longer than `max`
/// bytes: a string, or an array as its JSON text.
pub(super) fn oversize_field(element: &Element, max: usize) -> Option<String> {
    let Element::Object(object) = element else {
        return None;
    };
    object.iter().find_map(|(key, value)| match value {
        Element::String(text) if text.len() > max => Some(key.clone()),
        Element::Array(array) if array.to_string().len() > max => Some(key.clone()),
        Element::Object(_) => oversize_field(value, max).map(|inner| format!("{key}.{inner}")),
        _ => None,
    })
}

impl<'de> Deserialize<'de> for Element {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ElementVisitor)
    }
}

struct ElementVisitor;

impl<'de> Visitor<'de> for ElementVisitor {
    type Value = Element;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Element, E> {
        Ok(Element::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Element, E> {
        Ok(Element::Integer(v.to_string()))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Element, E> {
        Ok(Element::Integer(v.to_string()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Element, E> {
        Ok(Element::Float(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Element, E> {
        Ok(Element::String(v.to_string()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Element, E> {
        Ok(Element::String(v))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Element, E> {
        Ok(Element::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Element, E> {
        Ok(Element::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Element, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Value>()? {
            items.push(item);
        }
        Ok(Element::Array(Value::Array(items)))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Element, A::Error> {
        let mut entries = Vec::new();
        while let Some((key, value)) = map.next_entry::<String, Element>()? {
            entries.push((key, value));
        }
        Ok(Element::Object(entries))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(text: &str) -> Vec<(String, Element)> {
        match serde_json::from_str::<Element>(text).unwrap() {
            Element::Object(entries) => entries,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_repeated_key_is_a_problem_naming_it_and_both_values() {
        let (_, problems) = flatten(
            object(r#"{"id":"E1","email":"a@corp.example","email":"attacker@evil.example"}"#),
            "id",
        );
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].contains("`email`"), "{problems:?}");
        assert!(problems[0].contains("a@corp.example") && problems[0].contains("attacker@evil"));
    }

    #[test]
    fn a_dotted_key_and_a_nested_one_naming_the_same_column_are_a_repeat() {
        let (_, problems) = flatten(
            object(r#"{"id":"E1","work.email":"a@x","work":{"email":"b@x"}}"#),
            "id",
        );
        assert!(
            problems.iter().any(|p| p.contains("`work.email`")),
            "{problems:?}"
        );
    }

    #[test]
    fn integer_ids_are_kept_exactly_and_float_ids_are_refused() {
        let (fields, problems) = flatten(object(r#"{"id":18446744073709551615}"#), "id");
        assert!(problems.is_empty());
        assert_eq!(
            fields,
            [("id".to_string(), "18446744073709551615".to_string())]
        );
        for id in ["1e20", "12345678901234567890123", "3.5", "1.0"] {
            let (_, problems) = flatten(object(&format!(r#"{{"id":{id}}}"#)), "id");
            assert!(
                problems.iter().any(|p| p.contains("not an exact integer")),
                "{id}"
            );
        }
        // A float elsewhere is just text.
        let (fields, problems) = flatten(object(r#"{"id":"E1","fte":0.5}"#), "id");
        assert!(problems.is_empty());
        assert_eq!(fields[1], ("fte".to_string(), "0.5".to_string()));
    }
}
