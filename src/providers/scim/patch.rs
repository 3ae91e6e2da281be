//! PATCH bodies that every server understands, and the comparison of what a server
//! answers with what was meant — both over the attributes rosterd manages, by path.
//!
//! A path-less `replace` of the whole record is legal (RFC 7644 §3.5.2) but the least
//! portable form: servers answer it 501, or merge the multi-valued attributes. So a
//! PATCH carries one `replace` per changed attribute, with its path (`name.givenName`,
//! `displayName`, `active`…); a changed `emails` or `phoneNumbers` is replaced whole
//! (`"path": "emails"` and the full new list); and `remove` is sent only for an
//! attribute the service holds — as rosterd last sent it (the snapshot's record,
//! through the operation's changes), or as read.

use std::collections::BTreeSet;

use serde_json::{json, Value};

use crate::plan::Operation;
use crate::providers::{Record, StoredRecord};

/// The attributes rosterd manages, by PATCH path, in the order operations are sent.
pub const PATHS: [&str; 8] = [
    "userName",
    "externalId",
    "name.givenName",
    "name.familyName",
    "displayName",
    "emails",
    "phoneNumbers",
    "active",
];

/// The enterprise User extension (RFC 7643 §4.3): department, employeeNumber,
/// costCenter live in an object under this key, and their PATCH paths start with it.
pub const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

/// Attributes rosterd manages only where a mapping sets them (`attributes:`), as
/// (record field, PATCH path): a provider without them never writes or removes them.
pub const MAPPED: [(&str, &str); 8] = [
    ("title", "title"),
    ("preferredLanguage", "preferredLanguage"),
    ("locale", "locale"),
    ("timezone", "timezone"),
    (
        "department",
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department",
    ),
    (
        "employeeNumber",
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber",
    ),
    (
        "costCenter",
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:costCenter",
    ),
    (MANAGER, MANAGER_PATH),
];

/// The enterprise `manager`: a complex attribute whose `value` is the manager's id at
/// the service (the record holds it as sent, resolved from the manager's key by the
/// executor). Written as `{"value": id}`; compared by `value` only, as servers add
/// `$ref` and `displayName` to what they answer.
pub const MANAGER: &str = "manager";
pub const MANAGER_PATH: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager";

/// The value of a User resource at a managed `path` (`name.givenName` inside `name`,
/// `urn:…:enterprise:2.0:User:department` inside the extension's object); `None` for
/// absent, null or an empty list (the same to every server).
pub fn at<'a>(resource: &'a Value, path: &str) -> Option<&'a Value> {
    let extension = path
        .strip_prefix(ENTERPRISE)
        .and_then(|rest| rest.strip_prefix(':'));
    let v = match (extension, path.split_once('.')) {
        (Some(attr), _) => resource.get(ENTERPRISE)?.get(attr)?,
        (None, Some((outer, inner))) => resource.get(outer)?.get(inner)?,
        (None, None) => resource.get(path)?,
    };
    let empty = v.is_null() || v.as_array().is_some_and(Vec::is_empty);
    (!empty).then_some(v)
}

/// A multi-valued attribute as rosterd compares it: the set of values (emails
/// case-insensitively), the primary one, and whether more than one claims primary.
fn multi(path: &str, v: &Value, strict: bool) -> (BTreeSet<String>, Option<String>, bool) {
    let norm = |s: &str| {
        let s = s.trim();
        if path == "emails" && !strict {
            s.to_lowercase()
        } else {
            s.to_string()
        }
    };
    let items = v.as_array().cloned().unwrap_or_default();
    let values = items
        .iter()
        .filter_map(|e| e.get("value").and_then(Value::as_str))
        .map(norm)
        .collect();
    let primaries = items
        .iter()
        .filter(|e| e.get("primary").and_then(Value::as_bool) == Some(true))
        .count();
    let primary = super::list::primary(Some(v))
        .and_then(Value::as_str)
        .map(norm);
    (values, primary, primaries > 1)
}

/// Whether two values at `path` are the same to rosterd: `emails` and
/// `phoneNumbers` as sets with the same single primary (their `type` and `display`
/// are not compared), others exactly. Not `strict` (reading an answer), `userName`
/// and emails compare case-insensitively (RFC 7643 §4.1.1: a server may fold them);
/// `strict` (deciding what to write), the source's spelling is written.
pub fn same(path: &str, a: &Value, b: &Value, strict: bool) -> bool {
    match path {
        "userName" if !strict => match (a.as_str(), b.as_str()) {
            (Some(x), Some(y)) => x.trim().eq_ignore_ascii_case(y.trim()),
            _ => a == b,
        },
        "emails" | "phoneNumbers" => {
            let (x, y) = (multi(path, a, strict), multi(path, b, strict));
            !x.2 && !y.2 && x == y
        }
        MANAGER_PATH => {
            let id = |v: &Value| v.get("value").cloned().unwrap_or_else(|| v.clone());
            id(a) == id(b)
        }
        _ => a == b,
    }
}

/// The managed paths at which `answer` differs from `meant` (a path `meant` leaves
/// out is not compared, except that what it removes must be gone).
pub fn differences(meant: &Value, answer: &Value, paths: &[&'static str]) -> Vec<&'static str> {
    paths
        .iter()
        .copied()
        .filter(|p| match (at(meant, p), at(answer, p)) {
            (Some(m), Some(a)) => !same(p, m, a, false),
            (Some(_), None) | (None, Some(_)) => true,
            (None, None) => false,
        })
        .collect()
}

/// The paths a write of `record` / `active` sets: all managed ones with a record
/// (the [`MAPPED`] ones only where the record has the field), `active` when given.
pub fn written_paths(record: Option<&Record>, active: Option<bool>) -> Vec<&'static str> {
    let mut paths: Vec<&'static str> = PATHS
        .iter()
        .copied()
        .filter(|p| *p != "active" && record.is_some())
        .collect();
    if let Some(r) = record {
        paths.extend(
            MAPPED
                .iter()
                .filter(|(field, _)| r.fields().any(|(n, _)| n == *field))
                .map(|(_, path)| *path),
        );
    }
    if active.is_some() {
        paths.push("active");
    }
    paths
}

/// What rosterd last sent for `op`'s user: the operation's record with its changes'
/// old values; `None` for a create (nothing sent yet), or without a record.
pub fn last_sent(op: &Operation, record: Option<&Record>) -> Option<Value> {
    if op.op.creates() {
        return None;
    }
    let record = record?;
    let mut old = StoredRecord(
        record
            .fields()
            .map(|(n, v)| (n.to_string(), v.map(str::to_string)))
            .collect(),
    );
    for c in &op.changes {
        old.0.insert(c.field.clone(), c.old.clone());
    }
    Some(super::requests::resource(
        Some(&Record::from_stored(&old)),
        None,
    ))
}

/// The PatchOp operations that make the service's user `meant` at `paths`: a
/// `replace` with its path per attribute that differs from what rosterd last sent
/// (every meant one when that is unknown: a create's adoption), and a `remove` for
/// an attribute no longer meant that the service holds — by what rosterd last sent,
/// or by the resource as read (`current`). The diff is against what was sent, not
/// what was read, so that the preview (which cannot read) shows what is sent. With
/// nothing differing (a resend), every meant attribute is replaced: a PatchOp may not
/// be empty.
pub fn operations(
    meant: &Value,
    last_sent: Option<&Value>,
    current: Option<&Value>,
    paths: &[&'static str],
) -> Vec<Value> {
    let replace = |p: &str, v: &Value| json!({ "op": "replace", "path": p, "value": v });
    let mut ops = Vec::new();
    for &p in paths {
        let want = at(meant, p);
        let sent = last_sent.and_then(|h| at(h, p));
        let read = current.and_then(|c| at(c, p));
        match (want, sent) {
            (Some(w), Some(h)) if same(p, w, h, true) => {}
            (Some(w), _) => ops.push(replace(p, w)),
            (None, _) if sent.is_some() || read.is_some() => {
                ops.push(json!({ "op": "remove", "path": p }));
            }
            (None, _) => {}
        }
    }
    if ops.is_empty() {
        ops = paths
            .iter()
            .filter_map(|&p| at(meant, p).map(|w| replace(p, w)))
            .collect();
    }
    ops
}
