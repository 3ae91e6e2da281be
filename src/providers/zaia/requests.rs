//! zaia request bodies: the six required create fields (nullable ones as `null`) and
//! PATCH bodies by zaia's id.

use serde_json::{json, Map, Value};

use crate::plan::{OpKind, Operation};
use crate::providers::request::{segment, Request, ID_FOUND_AT_SEND_TIME};
use crate::providers::Record;

pub const USERS: &str = "/api/v1/external-users";

/// `PATCH` / `GET` path of one user by zaia's id.
pub fn user_path(id: &str) -> String {
    format!("{USERS}/{}", segment(id))
}

/// One page of the user list, searched for `term` in the channel.
pub fn search_path(term: &str, channel_id: &str, page: usize, page_size: usize) -> String {
    let query = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("search", term)
        .append_pair("channelIds", channel_id)
        .append_pair("pageNumber", &page.to_string())
        .append_pair("pageSize", &page_size.to_string())
        .finish();
    format!("{USERS}?{query}")
}

fn field(record: &Record, name: &str) -> Value {
    record
        .get(name)
        .map_or(Value::Null, |v| Value::String(v.into()))
}

/// The create body: all six fields, `null` where there is no value.
pub fn create_body(record: &Record, channel_id: &str) -> Value {
    json!({
        "channelId": channel_id,
        "externalId": field(record, "externalId"),
        "externalUserGroupId": field(record, "externalUserGroupId"),
        "identifier": field(record, "identifier"),
        "name": field(record, "name"),
        "tierId": field(record, "tierId"),
    })
}

/// A PATCH body with the record's fields, and `blocked` when given.
pub fn patch_body(record: Option<&Record>, blocked: Option<bool>) -> Value {
    let mut body = Map::new();
    if let Some(r) = record {
        for name in [
            "externalId",
            "externalUserGroupId",
            "identifier",
            "name",
            "tierId",
        ] {
            body.insert(name.into(), field(r, name));
        }
    }
    if let Some(b) = blocked {
        body.insert("blocked".into(), Value::Bool(b));
    }
    Value::Object(body)
}

pub fn build(ops: &[Operation], channel_id: &str) -> Vec<Request> {
    let mut out = Vec::new();
    for op in ops {
        let path = || match op.vendor_id.as_deref() {
            Some(id) => user_path(id),
            // Shown as a placeholder: found by externalId or identifier at send time.
            None => format!("{USERS}/{ID_FOUND_AT_SEND_TIME}"),
        };
        match op.op {
            OpKind::Create => {
                if let Some(r) = &op.record {
                    out.push(
                        Request::new("POST", USERS, Some(create_body(r, channel_id)), &op.external_id)
                            .with_note("first GET /api/v1/external-users?search=…&channelIds=…: an existing user with this externalId or identifier is adopted (PATCHed, unblocked) instead"),
                    );
                }
            }
            OpKind::Update => out.push(Request::new(
                "PATCH",
                path(),
                Some(patch_body(op.record.as_ref(), None)),
                &op.external_id,
            )),
            OpKind::Enable => out.push(Request::new(
                "PATCH",
                path(),
                Some(patch_body(op.record.as_ref(), Some(false))),
                &op.external_id,
            )),
            OpKind::Disable | OpKind::Delete => out.push(Request::new(
                "PATCH",
                path(),
                Some(patch_body(None, Some(true))),
                &op.external_id,
            )),
            OpKind::Recreate => {
                if let Some(r) = &op.record {
                    out.push(Request::new(
                        "POST",
                        USERS,
                        Some(create_body(r, channel_id)),
                        &op.external_id,
                    ));
                }
                out.push(Request::new(
                    "PATCH",
                    path(),
                    Some(patch_body(None, Some(true))),
                    &op.external_id,
                ));
            }
        }
    }
    out
}
