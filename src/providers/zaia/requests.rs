//! zaia requests: the search, the create (all six fields, nullable ones as `null`)
//! and the PATCH by zaia's id — each built by one function here, which both the
//! preview ([`build`]) and the sending (`client.rs`) call.

use serde_json::{json, Map, Value};

use crate::plan::{OpKind, Operation};
use crate::providers::request::{segment, Request, ID_FOUND_AT_SEND_TIME};
use crate::providers::Record;

pub const USERS: &str = "/api/v1/external-users";

/// Largest page zaia's list accepts; a shorter page is the last one.
pub const PAGE_SIZE: usize = 100;

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

/// `GET /external-users?search=<term>&channelIds=…&pageNumber=<page>&pageSize=100`:
/// one page of the channel's users matching `term`, for the operation `op`.
pub fn search(op: &Operation, term: &str, channel_id: &str, page: usize) -> Request {
    Request::new(
        "GET",
        search_path(term, channel_id, page, PAGE_SIZE),
        None,
        &op.external_id,
    )
}

/// `GET /external-users?…&pageNumber=1&pageSize=1`: one user of the channel, for
/// `check --connect` (a read with the key, nothing changed).
pub fn healthcheck(channel_id: &str) -> Request {
    Request::carrying("GET", search_path("", channel_id, 1, 1), None, Vec::new())
}

/// What a user is searched by: the operation's externalId (matched exactly), then its
/// identifier (matched case-insensitively). Both fall back on the operation's own.
pub fn search_terms(op: &Operation) -> (String, String) {
    let field = |name: &str, fallback: &str| {
        op.record
            .as_ref()
            .and_then(|r| r.get(name))
            .unwrap_or(fallback)
            .to_string()
    };
    (
        field("externalId", &op.external_id),
        field("identifier", &op.email),
    )
}

/// `POST /external-users`. Sent once: zaia documents no uniqueness error, so a
/// resend could make a second user (the next pass searches before it creates).
pub fn create(op: &Operation, record: &Record, channel_id: &str) -> Request {
    Request::new(
        "POST",
        USERS,
        Some(create_body(record, channel_id)),
        &op.external_id,
    )
    .send_once()
}

/// `PATCH /external-users/{id}`: the record's fields and `blocked` when given (an
/// update, a block, an unblock, an adoption).
pub fn change(op: &Operation, id: &str, record: Option<&Record>, blocked: Option<bool>) -> Request {
    Request::new(
        "PATCH",
        user_path(id),
        Some(patch_body(record, blocked)),
        &op.external_id,
    )
}

/// The preview: each operation's requests (every zaia operation is its own unit) as
/// `client::apply` sends them when zaia answers as expected: a create's searches find
/// nobody, a PATCH by a known id is answered.
pub fn build(ops: &[Operation], channel_id: &str) -> Vec<Request> {
    ops.iter()
        .flat_map(|op| preview_one(op, channel_id))
        .collect()
}

fn preview_one(op: &Operation, channel_id: &str) -> Vec<Request> {
    let record = op.record.as_ref();
    match (op.op, record) {
        (OpKind::Create, Some(r)) => preview_create(op, r, channel_id),
        (OpKind::Update, Some(r)) => preview_change(op, channel_id, Some(r), None),
        (OpKind::Enable, r) => preview_change(op, channel_id, r, Some(false)),
        (OpKind::Disable | OpKind::Delete, _) => preview_change(op, channel_id, None, Some(true)),
        (OpKind::Recreate, Some(r)) => {
            let mut out = preview_create(op, r, channel_id);
            // Without the old id: reported as manual action, nothing more sent.
            if let Some(old) = op.vendor_id.as_deref() {
                out.push(change(op, old, None, Some(true)).with_note("the old user, blocked"));
            }
            out
        }
        (_, None) => Vec::new(),
    }
}

/// The searches for the operation's user, by externalId then identifier (a term
/// left empty is not searched).
fn searches(op: &Operation, channel_id: &str) -> Vec<Request> {
    let (external_id, identifier) = search_terms(op);
    [external_id, identifier]
        .iter()
        .filter(|t| !t.trim().is_empty())
        .map(|t| {
            search(op, t, channel_id, 1).then_if(
                "the page is full (100 users) without the user: the next page, and so on",
                search(op, t, channel_id, 2),
            )
        })
        .collect()
}

fn preview_create(op: &Operation, record: &Record, channel_id: &str) -> Vec<Request> {
    let mut out = searches(op, channel_id);
    let post = create(op, record, channel_id)
        .with_note("unless a search above finds the user: then it is adopted instead")
        .then_if(
            "a search above finds the user: it is adopted (PATCHed, unblocked) instead of created",
            change(op, ID_FOUND_AT_SEND_TIME, Some(record), Some(false)),
        );
    let post = searches(op, channel_id).into_iter().fold(post, |post, s| {
        post.then_if("zaia's answer lacks the new user's id: it is searched for", s)
    });
    out.push(post);
    out
}

fn preview_change(
    op: &Operation,
    channel_id: &str,
    record: Option<&Record>,
    blocked: Option<bool>,
) -> Vec<Request> {
    let by_found_id = change(op, ID_FOUND_AT_SEND_TIME, record, blocked)
        .with_note("{id}: found by externalId, else identifier");
    match op.vendor_id.as_deref() {
        Some(id) => {
            let mut patch = change(op, id, record, blocked);
            for s in searches(op, channel_id) {
                patch = patch.then_if("zaia no longer knows the id (404): the user is searched for", s);
            }
            vec![patch.then_if("the user is found by the search", by_found_id)]
        }
        None => {
            let mut found = searches(op, channel_id).into_iter();
            let mut out = Vec::new();
            if let Some(first) = found.next() {
                out.push(match found.next() {
                    Some(second) => {
                        first.then_if("no user has the externalId: by identifier", second)
                    }
                    None => first,
                });
            }
            out.push(by_found_id);
            out
        }
    }
}
