//! The filters rosterd adds to minijinja's builtins: `lookup("table")`, `ascii` and
//! `truncate(n)`.
//!
//! A lookup miss is an undefined value (so `default` can catch it); the miss itself is
//! noted for the thread doing the render, so that when it is printed after all the
//! user is rejected with "lookup T has no entry for K" rather than "undefined value".
//! Rendering is synchronous, so a thread-local is exactly one render's scope.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::sync::Arc;

use minijinja::{Environment, Error, ErrorKind, Value};

thread_local! {
    static MISS: RefCell<Option<String>> = const { RefCell::new(None) };
}

pub(super) fn clear_miss() {
    MISS.with(|m| m.borrow_mut().take());
}

pub(super) fn take_miss() -> Option<String> {
    MISS.with(|m| m.borrow_mut().take())
}

pub(super) fn register(
    env: &mut Environment<'static>,
    lookups: Arc<BTreeMap<String, BTreeMap<String, String>>>,
) {
    env.add_filter("lookup", move |value: &Value, table: &str| {
        let Some(entries) = lookups.get(table) else {
            let known: Vec<&str> = lookups.keys().map(String::as_str).collect();
            return Err(Error::new(
                ErrorKind::InvalidOperation,
                format!(
                    "no lookup table {table:?} (tables: {})",
                    if known.is_empty() {
                        "none".to_string()
                    } else {
                        known.join(", ")
                    }
                ),
            ));
        };
        if value.is_undefined() || value.is_none() {
            return Ok(Value::UNDEFINED);
        }
        let key = value.to_string();
        match entries.get(key.trim()) {
            Some(v) => Ok(Value::from(v.as_str())),
            None => {
                MISS.with(|m| {
                    *m.borrow_mut() = Some(format!("lookup {table} has no entry for {key:?}"))
                });
                Ok(Value::UNDEFINED)
            }
        }
    });
    env.add_filter("ascii", |value: &str| deunicode::deunicode(value));
    env.add_filter("truncate", |value: &str, length: usize| {
        value.chars().take(length).collect::<String>()
    });
}
