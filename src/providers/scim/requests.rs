//! SCIM requests (RFC 7643 / 7644): discovery, lookups, create, read, PATCH / PUT,
//! delete and `/Bulk` (and its entries), each built by one function here, which both
//! the preview (`preview.rs`) and the sending (`client.rs`, `bulk.rs`) call; and the
//! bodies: the User resource rosterd writes, PATCH operations, filters.

use serde_json::{json, Map, Value};

use super::discovery::Effective;
use super::patch;
use crate::plan::Operation;
use crate::providers::request::{segment, Request};
use crate::providers::Record;

pub const USERS: &str = "/Users";
pub const BULK: &str = "/Bulk";
pub const SERVICE_PROVIDER_CONFIG: &str = "/ServiceProviderConfig";
pub const CONTENT_TYPE: &str = "application/scim+json";
pub const USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
pub const PATCH_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
pub const BULK_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:BulkRequest";

/// Users looked up per filter request in a bulk pass: keeps the URL short.
pub const LOOKUPS_PER_FILTER: usize = 20;

/// Users asked for per filter request: a lookup expects one or two.
pub const LOOKUP_COUNT: usize = 10;

pub fn user_path(id: &str) -> String {
    format!("{USERS}/{}", segment(id))
}

/// A request with SCIM's content negotiation headers, for the operation with key
/// `op` (none when empty: discovery, or a request that carries several).
pub fn scim_request(method: &'static str, path: String, body: Option<Value>, op: &str) -> Request {
    let mut r = Request::new(method, path, body, op).with_header("accept", CONTENT_TYPE);
    if op.is_empty() {
        r.external_ids.clear();
    }
    if matches!(method, "POST" | "PUT" | "PATCH") {
        r.with_header("content-type", CONTENT_TYPE)
    } else {
        r
    }
}

/// A SCIM filter string literal: a JSON string, so quotes and backslashes are escaped.
pub fn quoted(value: &str) -> String {
    Value::String(value.to_string()).to_string()
}

/// `attr eq "value"`.
pub fn eq(attr: &str, value: &str) -> String {
    format!("{attr} eq {}", quoted(value))
}

/// `GET /Users?filter=…&startIndex=1&count=…`.
pub fn filter_path(filter: &str, count: usize) -> String {
    let query = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("filter", filter)
        .append_pair("startIndex", "1")
        .append_pair("count", &count.to_string())
        .finish();
    format!("{USERS}?{query}")
}

/// The attributes of a User resource rosterd manages, from its record.
fn managed(record: &Record) -> Map<String, Value> {
    let text = |name: &str| record.get(name).map(|v| Value::String(v.to_string()));
    let mut m = Map::new();
    if let Some(v) = text("userName") {
        m.insert("userName".into(), v);
    }
    if let Some(v) = text("externalId") {
        m.insert("externalId".into(), v);
    }
    let mut name = Map::new();
    if let Some(v) = text("givenName") {
        name.insert("givenName".into(), v);
    }
    if let Some(v) = text("familyName") {
        name.insert("familyName".into(), v);
    }
    if !name.is_empty() {
        m.insert("name".into(), Value::Object(name));
    }
    if let (Some(g), Some(f)) = (record.get("givenName"), record.get("familyName")) {
        m.insert("displayName".into(), Value::String(format!("{g} {f}")));
    }
    if let Some(v) = text("email") {
        m.insert(
            "emails".into(),
            json!([{ "value": v, "type": "work", "primary": true }]),
        );
    }
    if let Some(v) = text("phone") {
        m.insert(
            "phoneNumbers".into(),
            json!([{ "value": v, "type": "work", "primary": true }]),
        );
    }
    let mut enterprise = Map::new();
    for (field, path) in patch::MAPPED {
        let Some(v) = text(field) else { continue };
        let v = if field == patch::MANAGER {
            json!({ "value": v })
        } else {
            v
        };
        match path.strip_prefix(patch::ENTERPRISE) {
            Some(_) => enterprise.insert(field.into(), v),
            None => m.insert(field.into(), v),
        };
    }
    if !enterprise.is_empty() {
        m.insert(patch::ENTERPRISE.into(), Value::Object(enterprise));
    }
    m
}

/// The `schemas` of a body holding `m`: the core User, and the enterprise extension
/// when it carries that extension's attributes.
fn schemas(m: &Map<String, Value>) -> Value {
    if m.contains_key(patch::ENTERPRISE) {
        json!([USER_SCHEMA, patch::ENTERPRISE])
    } else {
        json!([USER_SCHEMA])
    }
}

/// `POST /Users` body: the managed attributes, active.
pub fn create_body(record: &Record) -> Value {
    let mut m = managed(record);
    m.insert("schemas".into(), schemas(&m));
    m.insert("active".into(), Value::Bool(true));
    Value::Object(m)
}

/// The User resource `record` / `active` mean, as far as rosterd manages it.
pub fn resource(record: Option<&Record>, active: Option<bool>) -> Value {
    let mut m = record.map(managed).unwrap_or_default();
    if let Some(a) = active {
        m.insert("active".into(), Value::Bool(a));
    }
    Value::Object(m)
}

/// A PatchOp body for `op`'s write of `record` / `active`: one operation per
/// attribute that differs from what rosterd last sent, with its path, and a `remove`
/// for one the service holds (as last sent, or in `current` when read) and the record
/// no longer has (see `patch.rs`).
pub fn patch_body(
    op: &Operation,
    current: Option<&Value>,
    record: Option<&Record>,
    active: Option<bool>,
) -> Value {
    let meant = resource(record, active);
    let sent = patch::last_sent(op, record);
    let paths = patch::written_paths(record, active);
    let ops = patch::operations(&meant, sent.as_ref(), current, &paths);
    json!({ "schemas": [PATCH_SCHEMA], "Operations": ops })
}

/// A PUT body: the resource as the service has it, with the managed attributes (and
/// `active`) replaced, so attributes rosterd does not manage are kept. Read-only
/// `meta` is dropped.
pub fn put_body(current: &Value, record: Option<&Record>, active: Option<bool>) -> Value {
    let mut body = current.as_object().cloned().unwrap_or_default();
    body.remove("meta");
    if let Some(r) = record {
        if r.get("phone").is_none() {
            body.remove("phoneNumbers");
        }
        // A mapped attribute the record holds empty is removed; the extension's
        // other attributes (a manager set elsewhere) are kept.
        for (field, path) in patch::MAPPED {
            if r.fields().any(|(n, v)| n == field && v.is_none()) {
                if path.starts_with(patch::ENTERPRISE) {
                    if let Some(Value::Object(ext)) = body.get_mut(patch::ENTERPRISE) {
                        ext.remove(field);
                    }
                } else {
                    body.remove(field);
                }
            }
        }
        for (k, v) in managed(r) {
            match (k.as_str(), v, body.get_mut(patch::ENTERPRISE)) {
                (patch::ENTERPRISE, Value::Object(new), Some(Value::Object(ext))) => {
                    ext.extend(new);
                }
                (_, v, _) => {
                    body.insert(k, v);
                }
            }
        }
        let has_extension = body
            .get(patch::ENTERPRISE)
            .and_then(Value::as_object)
            .is_some_and(|e| !e.is_empty());
        if let (true, Some(Value::Array(s))) = (has_extension, body.get_mut("schemas")) {
            if !s.iter().any(|u| u.as_str() == Some(patch::ENTERPRISE)) {
                s.push(Value::String(patch::ENTERPRISE.into()));
            }
        }
    }
    if let Some(a) = active {
        body.insert("active".into(), Value::Bool(a));
    }
    if !body.contains_key("schemas") {
        body.insert("schemas".into(), schemas(&body));
    }
    Value::Object(body)
}

/// `GET /ServiceProviderConfig`: what the service supports (read once per pass).
pub fn discovery() -> Request {
    scim_request("GET", SERVICE_PROVIDER_CONFIG.into(), None, "")
}

/// `GET /ServiceProviderConfig`, then `GET /Users?startIndex=1&count=1`: what the
/// service supports, and one user with the token, for `check --connect`.
pub fn healthcheck() -> Vec<Request> {
    let query = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("startIndex", "1")
        .append_pair("count", "1")
        .finish();
    vec![
        discovery(),
        scim_request("GET", format!("{USERS}?{query}"), None, ""),
    ]
}

/// The userName the operation's user is looked up by (the record's, else its email).
pub fn user_name(op: &Operation) -> String {
    op.record
        .as_ref()
        .and_then(|r| r.get("userName"))
        .unwrap_or(&op.email)
        .to_string()
}

/// The externalId the operation's user is looked up by (the record's, else its key).
pub fn external_id(op: &Operation) -> String {
    op.record
        .as_ref()
        .and_then(|r| r.get("externalId"))
        .unwrap_or(&op.external_id)
        .to_string()
}

/// Users per page when `/Users` is listed whole (a service that cannot filter).
pub const LIST_COUNT: usize = 100;

/// `GET /Users?startIndex=<start>&count=LIST_COUNT`: one page of every user, for a
/// service that cannot filter (adoption looks users up in the whole list).
pub fn list_page(start: usize) -> Request {
    let query = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("startIndex", &start.to_string())
        .append_pair("count", &LIST_COUNT.to_string())
        .finish();
    scim_request("GET", format!("{USERS}?{query}"), None, "")
}

/// `GET /Users?filter=<attr> eq "<value>"`: one user's lookup.
pub fn find(op: &Operation, attr: &str, value: &str) -> Request {
    let path = filter_path(&eq(attr, value), LOOKUP_COUNT);
    scim_request("GET", path, None, &op.external_id)
}

/// `GET /Users?filter=… or …`: the lookup of several users of a `/Bulk` unit, each
/// by id (`true`: its current resource) or by userName / externalId (`false`).
pub fn lookup(group: &[(&Operation, bool)]) -> Request {
    let mut clauses = Vec::new();
    for &(op, by_id) in group {
        if by_id {
            clauses.push(eq("id", op.vendor_id.as_deref().unwrap_or_default()));
        } else {
            clauses.push(eq("userName", &user_name(op)));
            clauses.push(eq("externalId", &op.external_id));
        }
    }
    let path = filter_path(&clauses.join(" or "), clauses.len().max(1) * 2);
    let mut request = scim_request("GET", path, None, "");
    request.external_ids = group.iter().map(|(op, _)| op.external_id.clone()).collect();
    request
}

/// `POST /Users`: a new, active user.
pub fn create(op: &Operation, record: &Record) -> Request {
    scim_request("POST", USERS.into(), Some(create_body(record)), &op.external_id)
}

/// `GET /Users/{id}`: the resource as the service has it (for a PUT, or its version).
pub fn read(op: &Operation, id: &str) -> Request {
    scim_request("GET", user_path(id), None, &op.external_id)
}

/// The write of `record` / `active` to user `id`: a PATCH, or (without PATCH) a PUT
/// of `current` with them merged in; `If-Match` with `current`'s version when ETags
/// are used.
pub fn write(
    op: &Operation,
    eff: &Effective,
    id: &str,
    current: Option<&Value>,
    record: Option<&Record>,
    active: Option<bool>,
) -> Request {
    let path = user_path(id);
    let request = if eff.patch {
        scim_request(
            "PATCH",
            path,
            Some(patch_body(op, current, record, active)),
            &op.external_id,
        )
    } else {
        let empty = Value::Null;
        let body = put_body(current.unwrap_or(&empty), record, active);
        scim_request("PUT", path, Some(body), &op.external_id)
    };
    match current.and_then(version).filter(|_| eff.etag) {
        Some(v) => request.with_header("if-match", v),
        None => request,
    }
}

/// `DELETE /Users/{id}`.
pub fn delete(op: &Operation, id: &str) -> Request {
    scim_request("DELETE", user_path(id), None, &op.external_id)
}

/// `POST /Bulk` with `entries` (see the `bulk_*` entry builders), carrying the
/// operations `external_ids`.
pub fn bulk(entries: Vec<Value>, external_ids: Vec<String>) -> Request {
    let body = json!({ "schemas": [BULK_SCHEMA], "Operations": entries });
    let mut request = scim_request("POST", BULK.into(), Some(body), "");
    request.external_ids = external_ids;
    request
}

/// A `/Bulk` entry creating the user.
pub fn bulk_create(bulk_id: &str, record: &Record) -> Value {
    bulk_operation("POST", USERS, Some(create_body(record)), bulk_id)
}

/// A `/Bulk` entry deleting user `id`.
pub fn bulk_delete(bulk_id: &str, id: &str) -> Value {
    bulk_operation("DELETE", &user_path(id), None, bulk_id)
}

/// A `/Bulk` entry writing `record` / `active` to user `id`, as [`write`] does (PATCH,
/// or PUT of `current` merged; its version when ETags are used). Returns the method.
pub fn bulk_write(
    op: &Operation,
    bulk_id: &str,
    eff: &Effective,
    id: &str,
    current: Option<&Value>,
    record: Option<&Record>,
    active: Option<bool>,
) -> (&'static str, Value) {
    let path = user_path(id);
    let (method, data) = if eff.patch {
        ("PATCH", patch_body(op, current, record, active))
    } else {
        let empty = Value::Null;
        ("PUT", put_body(current.unwrap_or(&empty), record, active))
    };
    let mut json = bulk_operation(method, &path, Some(data), bulk_id);
    if let (true, Some(v), Some(obj)) = (eff.etag, current.and_then(version), json.as_object_mut())
    {
        obj.insert("version".into(), Value::String(v));
    }
    (method, json)
}

/// A resource's version (`meta.version`, the ETag).
pub fn version(body: &Value) -> Option<String> {
    body.get("meta")
        .and_then(|m| m.get("version"))
        .and_then(Value::as_str)
        .filter(|v| !v.is_empty())
        .map(str::to_string)
}

/// One entry of a BulkRequest's `Operations`.
pub fn bulk_operation(method: &str, path: &str, data: Option<Value>, bulk_id: &str) -> Value {
    let mut m = Map::new();
    m.insert("method".into(), Value::String(method.into()));
    m.insert("path".into(), Value::String(path.into()));
    m.insert("bulkId".into(), Value::String(bulk_id.into()));
    if let Some(d) = data {
        m.insert("data".into(), d);
    }
    Value::Object(m)
}

/// The operator-facing message in a SCIM error body (RFC 7644 §3.12): its `detail`,
/// with `scimType` and `status` when given.
pub fn error_message(body: &Value) -> Option<String> {
    let text = |key: &str| match body.get(key) {
        Some(Value::String(s)) if !s.trim().is_empty() => Some(s.trim().to_string()),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    };
    let detail = text("detail");
    let scim_type = text("scimType");
    let status = text("status");
    if detail.is_none() && scim_type.is_none() {
        return None;
    }
    let mut out = detail.unwrap_or_else(|| "SCIM error".to_string());
    let mut tags = Vec::new();
    if let Some(t) = scim_type {
        tags.push(format!("scimType {t}"));
    }
    if let Some(s) = status {
        tags.push(format!("status {s}"));
    }
    if !tags.is_empty() {
        out.push_str(&format!(" ({})", tags.join(", ")));
    }
    Some(out)
}
