//! vyte requests: the list, create (single and batch) and update, with bodies
//! `{organization?, user: {…, account: {organization: {extid}}}}` — each built by one
//! function here, which both the preview ([`build`]) and the sending (`client.rs`)
//! call.

use serde_json::{json, Map, Value};

use crate::plan::{OpKind, Operation};
use crate::providers::request::{segment, Request, ID_FOUND_AT_SEND_TIME};
use crate::providers::Record;

pub const USERS: &str = "/v2/users";
pub const BATCH: &str = "/v2/users/batch";

/// Why the list is read, for the preview.
const ADOPT_NOTE: &str = "vyte's users are listed once per pass: an account it already has for an email is adopted with PUT /v2/users/{_id} instead of created";

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

/// `GET /v2/users`: every user vyte has (a request of the pass, for no operation).
pub fn list() -> Request {
    Request::carrying("GET", USERS, None, Vec::new())
}

/// `POST /v2/users`. Sent once: vyte does not refuse an email it has, so a resend
/// could make a second account.
pub fn create(op: &Operation, record: &Record, organization: Option<&str>) -> Request {
    Request::new(
        "POST",
        USERS,
        Some(user_body(record, organization)),
        &op.external_id,
    )
    .send_once()
}

/// `POST /v2/users/batch`: an array of create bodies (the shape vyte leaves
/// undocumented). Sent once, as a create is.
pub fn batch(ops: &[&Operation], organization: Option<&str>) -> Request {
    let bodies: Vec<Value> = ops
        .iter()
        .filter_map(|o| o.record.as_ref().map(|r| user_body(r, organization)))
        .collect();
    Request::carrying(
        "POST",
        BATCH,
        Some(Value::Array(bodies)),
        ops.iter().map(|o| o.external_id.clone()).collect(),
    )
    .send_once()
}

/// `PUT /v2/users/{id}`: an update, or the adoption of an account vyte has.
pub fn update(op: &Operation, id: &str, record: &Record, organization: Option<&str>) -> Request {
    Request::new(
        "PUT",
        format!("{USERS}/{}", segment(id)),
        Some(user_body(record, organization)),
        &op.external_id,
    )
}

/// When an account is adopted instead of created, for the preview.
const LISTED: &str = "vyte's list has the email (or extid) already: the account is adopted instead of the create";
/// When the list is read again, for the preview.
const RELIST: &str = "vyte's answer does not give the new id (or refuses the email as taken): the list is read again, at most once per pass";

/// The operation groups sent together: with `batch`, the creates in chunks of
/// `batch` (when there is more than one create); every other operation alone.
pub fn units(ops: &[Operation], batch: Option<usize>) -> Vec<Vec<usize>> {
    let creates: Vec<usize> = (0..ops.len())
        .filter(|&i| ops[i].op == OpKind::Create)
        .collect();
    let mut out: Vec<Vec<usize>> = match batch {
        Some(size) if creates.len() > 1 => {
            creates.chunks(size.max(1)).map(<[usize]>::to_vec).collect()
        }
        _ => creates.into_iter().map(|i| vec![i]).collect(),
    };
    out.extend(
        (0..ops.len())
            .filter(|&i| ops[i].op != OpKind::Create)
            .map(|i| vec![i]),
    );
    out
}

/// The preview: the requests of each unit (see [`units`]) in order, as
/// `client::apply` sends them when vyte answers as expected (nobody listed yet, each
/// create answered with its id). The list is read once, by the first operation that
/// needs it.
pub fn build(ops: &[Operation], organization: Option<&str>, batch_size: Option<usize>) -> Vec<Request> {
    let mut listed = false;
    let mut out = Vec::new();
    for unit in units(ops, batch_size) {
        let unit: Vec<&Operation> = unit.iter().filter_map(|&i| ops.get(i)).collect();
        match unit.as_slice() {
            [] => {}
            [op] => match (op.op, op.record.as_ref()) {
                (OpKind::Create, Some(r)) => {
                    list_once(&mut listed, &mut out);
                    out.push(adoptable(create(op, r, organization), &[op], organization));
                }
                (OpKind::Update, Some(r)) => match op.vendor_id.as_deref() {
                    Some(id) => out.push(update(op, id, r, organization)),
                    None => {
                        let put = update(op, ID_FOUND_AT_SEND_TIME, r, organization)
                            .with_note("{id}: found by email in vyte's user list");
                        if listed {
                            out.push(put.then_if("the list read this pass lacks the account: it is read again, at most once per pass", list()));
                        } else {
                            list_once(&mut listed, &mut out);
                            out.push(put);
                        }
                    }
                },
                // vyte has no disable or enable call: the plan reports those as
                // manual action, and nothing is sent.
                _ => {}
            },
            many => {
                list_once(&mut listed, &mut out);
                let request = batch(many, organization).with_note(
                    "batch shape undocumented by vyte: an array of create bodies",
                );
                out.push(adoptable(request, many, organization));
            }
        }
    }
    out
}

/// The list, unless read already this pass.
fn list_once(listed: &mut bool, out: &mut Vec<Request>) {
    if !std::mem::replace(listed, true) {
        out.push(list().with_note(ADOPT_NOTE));
    }
}

/// A create (or batch) with its conditional follow-ups: the adoptions instead of it,
/// and the list read again when an id is not in the answer.
fn adoptable(request: Request, ops: &[&Operation], organization: Option<&str>) -> Request {
    let mut request = request;
    for op in ops {
        if let Some(r) = &op.record {
            request = request.then_if(
                LISTED,
                update(op, ID_FOUND_AT_SEND_TIME, r, organization)
                    .with_note("{id}: vyte's id of the listed account"),
            );
        }
    }
    request.then_if(RELIST, list())
}
