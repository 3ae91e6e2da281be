//! hesh request bodies (`PublicUserRequestDto`, `UsersExchangeDto`,
//! `DisableUserByExternalIdDto`).

use serde_json::{json, Map, Value};

use crate::plan::{OpKind, Operation};
use crate::providers::request::Request;
use crate::providers::Record;

pub const USERS: &str = "/api/v1/public/users";
pub const BATCH: &str = "/api/v1/public/users/batch";
pub const DISABLE: &str = "/api/v1/public/users/disable";

/// A `PublicUserRequestDto`: the record's fields (an absent phone is left out, not
/// sent as null, as the schema has no nullable phone) and the status.
pub fn user_body(record: &Record, status: &str) -> Value {
    let mut body = Map::new();
    for (name, value) in record.fields() {
        if let Some(v) = value {
            body.insert(name.to_string(), Value::String(v.to_string()));
        }
    }
    body.insert("status".into(), Value::String(status.into()));
    Value::Object(body)
}

pub fn disable_body(external_id: &str) -> Value {
    json!({ "external_user_id": external_id })
}

/// The requests for a provider's operations: creates go through the batch endpoint
/// in groups of `batch_size` when there is more than one, the rest one by one.
pub fn build(ops: &[Operation], batch_size: usize) -> Vec<Request> {
    let creates: Vec<&Operation> = ops.iter().filter(|o| o.op == OpKind::Create).collect();
    let mut out = Vec::new();
    if creates.len() == 1 {
        if let Some(r) = &creates[0].record {
            out.push(Request::new(
                "POST",
                USERS,
                Some(user_body(r, "Active")),
                &creates[0].external_id,
            ));
        }
    } else {
        for chunk in creates.chunks(batch_size.max(1)) {
            let users: Vec<Value> = chunk
                .iter()
                .filter_map(|o| o.record.as_ref().map(|r| user_body(r, "Active")))
                .collect();
            out.push(Request {
                method: "POST",
                path: BATCH.into(),
                body: Some(json!({ "users": users })),
                external_ids: chunk.iter().map(|o| o.external_id.clone()).collect(),
                note: Some(
                    "users hesh skips (email or phone already there) are adopted, then updated"
                        .into(),
                ),
                headers: Vec::new(),
                send_once: false,
            });
        }
    }
    for op in ops {
        match op.op {
            OpKind::Create => {}
            OpKind::Update | OpKind::Enable => {
                let body = op.record.as_ref().map(|r| user_body(r, "Active"));
                let note = body
                    .is_none()
                    .then_some("body: the last confirmed record, with status Active");
                let req = Request::new("PUT", USERS, body, &op.external_id);
                out.push(match note {
                    Some(n) => req.with_note(n),
                    None => req,
                });
            }
            OpKind::Disable | OpKind::Delete => {
                out.push(Request::new(
                    "PATCH",
                    DISABLE,
                    Some(disable_body(&op.external_id)),
                    &op.external_id,
                ));
            }
            OpKind::Recreate => {
                // hesh disables by external_user_id, which the new account shares: the
                // old account is disabled first, while it is the only one with that id.
                out.push(Request::new(
                    "PATCH",
                    DISABLE,
                    Some(disable_body(&op.external_id)),
                    &op.external_id,
                ));
                if let Some(r) = &op.record {
                    out.push(Request::new(
                        "POST",
                        USERS,
                        Some(user_body(r, "Active")),
                        &op.external_id,
                    ));
                }
            }
        }
    }
    out
}
