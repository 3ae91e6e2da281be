//! SCIM request bodies and paths (RFC 7643 / 7644): the User resource rosterd writes,
//! PATCH operations, filters, `/Bulk` operations, and the preview `sync --dry-run
//! --show-requests` prints.

use serde_json::{json, Map, Value};

use crate::plan::{OpKind, Operation};
use crate::providers::request::{segment, Request, ID_FOUND_AT_SEND_TIME};
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
    m
}

/// `POST /Users` body: the managed attributes, active.
pub fn create_body(record: &Record) -> Value {
    let mut m = managed(record);
    m.insert("schemas".into(), json!([USER_SCHEMA]));
    m.insert("active".into(), Value::Bool(true));
    Value::Object(m)
}

/// A PatchOp body: the record's attributes replaced (and a missing phone removed),
/// and `active` set when given.
pub fn patch_body(record: Option<&Record>, active: Option<bool>) -> Value {
    let mut value = record.map(managed).unwrap_or_default();
    if let Some(a) = active {
        value.insert("active".into(), Value::Bool(a));
    }
    let mut ops = Vec::new();
    if record.is_some_and(|r| r.get("phone").is_none()) {
        ops.push(json!({ "op": "remove", "path": "phoneNumbers" }));
    }
    ops.push(json!({ "op": "replace", "value": value }));
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
        for (k, v) in managed(r) {
            body.insert(k, v);
        }
    }
    if let Some(a) = active {
        body.insert("active".into(), Value::Bool(a));
    }
    if !body.contains_key("schemas") {
        body.insert("schemas".into(), json!([USER_SCHEMA]));
    }
    Value::Object(body)
}

/// The preview: what a pass would send, before the service is asked what it supports.
/// Bulk chunks are shown when bulk is not `off` (with `auto`, they are sent so only if
/// the service supports `/Bulk`).
pub fn build(ops: &[Operation], bulk_size: Option<usize>) -> Vec<Request> {
    let mut out = vec![scim_request(
        "GET",
        SERVICE_PROVIDER_CONFIG.into(),
        None,
        "",
    )
    .with_note("read once per pass: PATCH, /Bulk (maxOperations, maxPayloadSize), filter and ETag support decide the requests below")];
    match bulk_size {
        Some(size) if ops.len() > 1 => {
            for chunk in ops.chunks(size.max(1)) {
                let operations: Vec<Value> = chunk
                    .iter()
                    .enumerate()
                    .flat_map(|(i, op)| bulk_preview(op, i))
                    .collect();
                let mut r = scim_request(
                    "POST",
                    BULK.into(),
                    Some(json!({ "schemas": [BULK_SCHEMA], "Operations": operations })),
                    "",
                )
                .with_note("when the service supports /Bulk (else one by one); split further by its maxOperations and maxPayloadSize; creates first look their users up with one filter GET (userName / externalId) and adopt those found");
                r.external_ids = chunk.iter().map(|o| o.external_id.clone()).collect();
                out.push(r);
            }
        }
        _ => {
            for op in ops {
                out.extend(single_preview(op));
            }
        }
    }
    out
}

fn id_path(op: &Operation) -> String {
    match op.vendor_id.as_deref() {
        Some(id) => user_path(id),
        // Found at send time by filter (userName, then externalId).
        None => format!("{USERS}/{ID_FOUND_AT_SEND_TIME}"),
    }
}

const WRITE_NOTE: &str = "PUT of the whole resource (read first) when the service lacks PATCH; with If-Match when it supports ETags";

fn single_preview(op: &Operation) -> Vec<Request> {
    let id = &op.external_id;
    let record = op.record.as_ref();
    let patch =
        |body: Value| scim_request("PATCH", id_path(op), Some(body), id).with_note(WRITE_NOTE);
    match (op.op, record) {
        (OpKind::Create, Some(r)) => vec![scim_request("POST", USERS.into(), Some(create_body(r)), id)
            .with_note("first GET /Users?filter=userName eq \"…\" (then externalId eq \"…\"): an existing user is adopted (updated, active) instead")],
        (OpKind::Update, r) => vec![patch(patch_body(r, None))],
        (OpKind::Enable, r) => vec![patch(patch_body(r, Some(true)))],
        (OpKind::Disable, _) => vec![patch(patch_body(None, Some(false)))],
        (OpKind::Delete, _) => vec![scim_request("DELETE", id_path(op), None, id)],
        (OpKind::Recreate, r) => {
            let mut v = Vec::new();
            if let Some(r) = r {
                v.push(scim_request("POST", USERS.into(), Some(create_body(r)), id));
            }
            v.push(patch(patch_body(None, Some(false))));
            v
        }
        (OpKind::Create, None) => Vec::new(),
    }
}

/// One operation's entries in a previewed `/Bulk` request.
fn bulk_preview(op: &Operation, i: usize) -> Vec<Value> {
    single_preview(op)
        .into_iter()
        .map(|r| bulk_operation(r.method, &r.path, r.body, &format!("op{i}")))
        .collect()
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
