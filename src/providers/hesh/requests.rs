//! hesh requests (`PublicUserRequestDto`, `UsersExchangeDto`,
//! `DisableUserByExternalIdDto`): each kind built by one function here, which both the
//! preview ([`build`]) and the sending (`client.rs`) call.

use serde_json::{json, Map, Value};

use crate::plan::{OpKind, Operation};
use crate::providers::request::Request;
use crate::providers::Record;

pub const USERS: &str = "/api/v1/public/users";
pub const BATCH: &str = "/api/v1/public/users/batch";
pub const DISABLE: &str = "/api/v1/public/users/disable";

/// When an adoption follows a single create, for the preview.
const REFUSED: &str = "hesh refuses the create because it has the email or phone: the account is adopted (updated without its phone, so that only the email can match)";
/// When an adoption follows a batch, for the preview.
const SKIPPED: &str = "hesh's answer leaves this user out (it has the email or phone): the account is adopted (updated without its phone, so that only the email can match)";

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

/// `POST /users`: one new, active user.
pub fn create(op: &Operation, record: &Record) -> Request {
    Request::new(
        "POST",
        USERS,
        Some(user_body(record, "Active")),
        &op.external_id,
    )
}

/// `POST /users/batch`: the unit's creates (those with a record) in one request.
/// hesh's batch skips users it already has, so resending it is safe.
pub fn batch(ops: &[&Operation]) -> Request {
    let users: Vec<Value> = ops
        .iter()
        .filter_map(|o| o.record.as_ref().map(|r| user_body(r, "Active")))
        .collect();
    Request::carrying(
        "POST",
        BATCH,
        Some(json!({ "users": users })),
        ops.iter().map(|o| o.external_id.clone()).collect(),
    )
}

/// `PUT /users`: the account hesh matches by the record's email or phone, set to
/// `record` and active (an update, a re-enable, an adoption).
pub fn update(op: &Operation, record: &Record) -> Request {
    Request::new(
        "PUT",
        USERS,
        Some(user_body(record, "Active")),
        &op.external_id,
    )
}

/// `PATCH /users/disable`, by external_user_id.
pub fn disable(op: &Operation) -> Request {
    Request::new(
        "PATCH",
        DISABLE,
        Some(disable_body(&op.external_id)),
        &op.external_id,
    )
}

/// The record an adoption sends: without the phone, so that hesh can only match the
/// account by email (a phone held by somebody else's account must never re-key it).
pub fn adoption_record(record: &Record) -> Record {
    record.without("phone")
}

/// The operation groups sent together: all creates in batches of `batch_size` (when
/// there is more than one), every other operation alone. Indices into `ops`.
pub fn units(ops: &[Operation], batch_size: usize) -> Vec<Vec<usize>> {
    let creates: Vec<usize> = (0..ops.len())
        .filter(|&i| ops[i].op == OpKind::Create)
        .collect();
    let mut out: Vec<Vec<usize>> = if creates.len() > 1 {
        creates
            .chunks(batch_size.max(1))
            .map(<[usize]>::to_vec)
            .collect()
    } else {
        creates.into_iter().map(|i| vec![i]).collect()
    };
    out.extend(
        (0..ops.len())
            .filter(|&i| ops[i].op != OpKind::Create)
            .map(|i| vec![i]),
    );
    out
}

/// The preview: the requests of each unit (see [`units`]) in order, as `client::apply`
/// sends them when hesh answers as expected; adoptions as conditional follow-ups.
pub fn build(ops: &[Operation], batch_size: usize) -> Vec<Request> {
    units(ops, batch_size)
        .iter()
        .flat_map(|unit| {
            let unit: Vec<&Operation> = unit.iter().filter_map(|&i| ops.get(i)).collect();
            preview_unit(&unit)
        })
        .collect()
}

/// One unit's requests, following `client::apply` branch by branch.
fn preview_unit(ops: &[&Operation]) -> Vec<Request> {
    match ops {
        [] => Vec::new(),
        [op] => preview_one(op),
        many => {
            let mut request = batch(many).with_note(
                "users hesh skips (email or phone already there) are adopted, then updated",
            );
            for op in many {
                if let Some(r) = &op.record {
                    request = request.then_if(SKIPPED, update(op, &adoption_record(r)));
                }
            }
            vec![request]
        }
    }
}

fn preview_one(op: &Operation) -> Vec<Request> {
    let adoptable_create = |r: &Record| {
        create(op, r)
            .with_note("refused as existing (email or phone already there), the account is adopted, then updated")
            .then_if(REFUSED, update(op, &adoption_record(r)))
    };
    match (op.op, op.record.as_ref()) {
        (OpKind::Create, Some(r)) => vec![adoptable_create(r)],
        (OpKind::Update, Some(r)) => vec![update(op, r)],
        (OpKind::Enable, Some(r)) => vec![update(op, r).then_if(
            "only if hesh has no account with this email or phone (404): the rehire gets a new one",
            create(op, r),
        )],
        (OpKind::Disable | OpKind::Delete, _) => vec![disable(op)],
        // hesh disables by external_user_id, which the new account shares: the old
        // account is disabled first, while it is the only one with that id.
        (OpKind::Recreate, Some(r)) => vec![disable(op), adoptable_create(r)],
        // Nothing is sent: an enable without a record (its email changed) and
        // anything else without one fail before sending, and the plan says why.
        (_, None) => Vec::new(),
    }
}
