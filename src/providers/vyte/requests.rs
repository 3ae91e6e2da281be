//! vyte request bodies: `{organization?, user: {…, account: {organization: {extid}}}}`.

use serde_json::{json, Map, Value};

use crate::plan::{OpKind, Operation};
use crate::providers::request::{segment, Request, ID_FOUND_AT_SEND_TIME};
use crate::providers::Record;

pub const USERS: &str = "/v2/users";
pub const BATCH: &str = "/v2/users/batch";

/// How a create is really carried out, for the preview.
const ADOPT_NOTE: &str = "vyte's users are listed once per run (GET /v2/users): an account it already has for this email is adopted with PUT /v2/users/{_id} instead";

/// The create/update body; optional fields the source does not give are left out.
pub fn user_body(record: &Record, organization: Option<&str>) -> Value {
    let mut user = Map::new();
    for key in [
        "email",
        "first_name",
        "last_name",
        "language",
        "timezone",
        "picture_url",
    ] {
        if let Some(v) = record.get(key) {
            user.insert(key.into(), Value::String(v.into()));
        }
    }
    user.insert(
        "account".into(),
        json!({ "organization": { "extid": record.get("extid") } }),
    );
    let mut body = Map::new();
    if let Some(org) = organization {
        body.insert("organization".into(), Value::String(org.into()));
    }
    body.insert("user".into(), Value::Object(user));
    Value::Object(body)
}

pub fn build(ops: &[Operation], organization: Option<&str>, batch: Option<usize>) -> Vec<Request> {
    let mut out = Vec::new();
    let creates: Vec<&Operation> = ops.iter().filter(|o| o.op == OpKind::Create).collect();
    match batch {
        Some(size) if creates.len() > 1 => {
            for chunk in creates.chunks(size.max(1)) {
                let bodies: Vec<Value> = chunk
                    .iter()
                    .filter_map(|o| o.record.as_ref().map(|r| user_body(r, organization)))
                    .collect();
                out.push(Request {
                    method: "POST",
                    path: BATCH.into(),
                    body: Some(Value::Array(bodies)),
                    external_ids: chunk.iter().map(|o| o.external_id.clone()).collect(),
                    note: Some(format!(
                        "batch shape undocumented by vyte: an array of create bodies; {ADOPT_NOTE}"
                    )),
                    conditional: Vec::new(),
                    headers: Vec::new(),
                    send_once: true,
                });
            }
        }
        _ => {
            for op in &creates {
                if let Some(r) = &op.record {
                    out.push(
                        Request::new(
                            "POST",
                            USERS,
                            Some(user_body(r, organization)),
                            &op.external_id,
                        )
                        .with_note(ADOPT_NOTE),
                    );
                }
            }
        }
    }
    for op in ops {
        if op.op == OpKind::Update {
            if let Some(r) = &op.record {
                let id = op.vendor_id.as_deref().unwrap_or(ID_FOUND_AT_SEND_TIME);
                let req = Request::new(
                    "PUT",
                    format!("{USERS}/{}", segment(id)),
                    Some(user_body(r, organization)),
                    &op.external_id,
                );
                out.push(if op.vendor_id.is_none() {
                    req.with_note("{id}: found by email in vyte's user list (GET /v2/users)")
                } else {
                    req
                });
            }
        }
        // vyte has no disable or enable call: the plan reports those as manual action.
    }
    out
}
