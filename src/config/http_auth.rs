//! `source.auth` of the HTTP source: a bearer token, basic auth, or a named header,
//! each secret an `${ENV}` reference or a `*_file` path, never a literal.

use std::path::Path;

use secrecy::{ExposeSecret, SecretString};
use serde_json::{Map, Value};

use super::secret::{join, take_secret};
use super::Issue;

/// How requests authenticate. Values are secrets and never print.
#[derive(Debug, Clone)]
pub enum HttpAuth {
    None,
    /// `Authorization: Bearer <token>`.
    Bearer(SecretString),
    /// `Authorization: Basic base64(username:password)`.
    Basic {
        username: String,
        password: SecretString,
    },
    /// `<name>: <value>`, e.g. `X-Api-Key`.
    Header {
        name: String,
        value: SecretString,
    },
}

// By hand: SecretString has no PartialEq (on purpose); configs compare in tests.
impl PartialEq for HttpAuth {
    fn eq(&self, other: &Self) -> bool {
        let same = |a: &SecretString, b: &SecretString| a.expose_secret() == b.expose_secret();
        match (self, other) {
            (HttpAuth::None, HttpAuth::None) => true,
            (HttpAuth::Bearer(a), HttpAuth::Bearer(b)) => same(a, b),
            (
                HttpAuth::Basic {
                    username: ua,
                    password: pa,
                },
                HttpAuth::Basic {
                    username: ub,
                    password: pb,
                },
            ) => ua == ub && same(pa, pb),
            (
                HttpAuth::Header {
                    name: na,
                    value: va,
                },
                HttpAuth::Header {
                    name: nb,
                    value: vb,
                },
            ) => na.eq_ignore_ascii_case(nb) && same(va, vb),
            _ => false,
        }
    }
}

impl Eq for HttpAuth {}

/// `source.auth`: exactly one of `bearer_token`(`_file`), `basic`, `header`.
pub(super) fn parse_auth(
    mut map: Map<String, Value>,
    base_dir: &Path,
    issues: &mut Vec<Issue>,
) -> Option<HttpAuth> {
    const AT: &str = "source.auth";
    let has_bearer = map.contains_key("bearer_token") || map.contains_key("bearer_token_file");
    let basic = map.remove("basic");
    let header = map.remove("header");
    let bearer = take_secret(&mut map, "bearer_token", base_dir, AT, false, issues);
    for key in map.keys() {
        issues.push(Issue::new(
            join(AT, key),
            "unknown key; expected one of bearer_token, bearer_token_file, basic, header".into(),
        ));
    }
    let given =
        usize::from(has_bearer) + usize::from(basic.is_some()) + usize::from(header.is_some());
    if given != 1 {
        issues.push(Issue::new(
            AT.into(),
            format!(
                "give exactly one of bearer_token (or bearer_token_file), basic or header \
                 ({given} given); leave auth out for none"
            ),
        ));
        return None;
    }
    if has_bearer {
        // take_secret has refused what a header cannot carry.
        return Some(HttpAuth::Bearer(bearer?));
    }
    if let Some(basic) = basic {
        let at = join(AT, "basic");
        let mut basic = object(basic, &at, issues)?;
        let password = take_secret(&mut basic, "password", base_dir, &at, true, issues);
        let username = take_string(&mut basic, "username", &at, issues);
        unknown_keys(&basic, &at, issues);
        if let Some(u) = &username {
            if u.contains(':') {
                issues.push(Issue::new(
                    join(&at, "username"),
                    "a basic-auth username cannot contain ':'".into(),
                ));
                return None;
            }
        }
        let (username, password) = (username?, password?);
        // Sent as base64 of `user:password`: that form is scrubbed too.
        crate::redact::register_basic(&username, password.expose_secret());
        return Some(HttpAuth::Basic { username, password });
    }
    let at = join(AT, "header");
    let mut header = object(header?, &at, issues)?;
    let value = take_secret(&mut header, "value", base_dir, &at, true, issues);
    let name = take_string(&mut header, "name", &at, issues);
    unknown_keys(&header, &at, issues);
    if let Some(n) = &name {
        if reqwest::header::HeaderName::from_bytes(n.as_bytes()).is_err() {
            issues.push(Issue::new(
                join(&at, "name"),
                format!("{n:?} is not a valid HTTP header name"),
            ));
            return None;
        }
    }
    Some(HttpAuth::Header {
        name: name?,
        value: value?,
    })
}

fn object(value: Value, at: &str, issues: &mut Vec<Issue>) -> Option<Map<String, Value>> {
    match value {
        Value::Object(map) => Some(map),
        _ => {
            issues.push(Issue::new(at.into(), "expected a mapping".into()));
            None
        }
    }
}

fn take_string(
    map: &mut Map<String, Value>,
    key: &str,
    at: &str,
    issues: &mut Vec<Issue>,
) -> Option<String> {
    match map.remove(key) {
        Some(Value::String(s)) if !s.trim().is_empty() => Some(s.trim().to_string()),
        Some(Value::String(_)) => {
            issues.push(Issue::new(join(at, key), "empty".into()));
            None
        }
        Some(_) => {
            issues.push(Issue::new(join(at, key), "expected a string".into()));
            None
        }
        None => {
            issues.push(Issue::new(join(at, key), "missing".into()));
            None
        }
    }
}

fn unknown_keys(map: &Map<String, Value>, at: &str, issues: &mut Vec<Issue>) {
    for key in map.keys() {
        issues.push(Issue::new(join(at, key), "unknown key".into()));
    }
}

/// `source.auth.header.value` is a secret under a name (`value`) too common to list
/// in [`super::secret::SECRET_KEYS`]: refuse a literal there, before `${ENV}` expansion.
pub fn check_no_literal_header_value(tree: &Value, issues: &mut Vec<Issue>) {
    let value = tree
        .pointer("/source/auth/header/value")
        .filter(|_| tree.pointer("/source/type").and_then(Value::as_str) == Some("http"));
    if let Some(v) = value {
        let reference = v.as_str().map(str::trim).is_some_and(|s| {
            s.len() > 3
                && s.starts_with("${")
                && s.ends_with('}')
                && s[2..s.len() - 1]
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_')
        });
        if !reference {
            issues.push(Issue::new(
                "source.auth.header.value".into(),
                "a literal secret is refused; write `value: ${ENV_VAR}` or \
                 `value_file: path/to/file`"
                    .into(),
            ));
        }
    }
}
