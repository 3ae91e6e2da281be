//! saleschat requests: create (`CreateUserReqDto`), find by email, and the actions by
//! saleschat's user id — each built by one function here, which both the preview
//! ([`build`]) and the sending (`client.rs`) call.

use serde_json::{json, Value};

use crate::plan::{OpKind, Operation};
use crate::providers::request::{segment, Request, ID_FOUND_AT_SEND_TIME};
use crate::providers::Record;

/// Shown instead of the password, which is generated per user at send time and
/// never logged, stored or printed.
pub const PASSWORD_PLACEHOLDER: &str = "<generated at send time, never shown>";

/// Users asked for per page of a find.
pub const PAGE_SIZE: usize = 100;

pub fn users_path(org_id: &str) -> String {
    format!("/v1/org/{}/user", segment(org_id))
}

pub fn user_action_path(org_id: &str, user_id: &str, action: &str) -> String {
    format!(
        "/v1/org/{}/user/{}/{action}",
        segment(org_id),
        segment(user_id)
    )
}

/// Find by email: `q` is the email (saleschat matches it partially), paged by
/// `offset` / `size`.
pub fn find_path(org_id: &str, email: &str, offset: usize, size: usize) -> String {
    let q: String = url::form_urlencoded::byte_serialize(email.as_bytes()).collect();
    format!("{}?q={q}&offset={offset}&size={size}", users_path(org_id))
}

/// A `CreateUserReqDto`; `password` is the generated one (or the placeholder).
pub fn create_body(record: &Record, password: &str) -> Value {
    json!({
        "email": record.get("email"),
        "first_name": record.get("first_name"),
        "last_name": record.get("last_name"),
        "password": password,
        "ask_user_to_update_password_on_login": true,
    })
}

/// `POST /user`: a new user with `password` (the generated one, or the placeholder).
pub fn create(op: &Operation, org_id: &str, record: &Record, password: &str) -> Request {
    Request::new(
        "POST",
        users_path(org_id),
        Some(create_body(record, password)),
        &op.external_id,
    )
}

/// `GET /user?q=<email>&offset=…&size=PAGE_SIZE`: one page of the members found by
/// `email`, for the operation `op`.
pub fn find(op: &Operation, org_id: &str, email: &str, offset: usize) -> Request {
    Request::new(
        "GET",
        find_path(org_id, email, offset, PAGE_SIZE),
        None,
        &op.external_id,
    )
}

/// `GET /user?q=&offset=0&size=1`: one member of the organisation, for `check
/// --connect` (a read with the token, nothing changed).
pub fn healthcheck(org_id: &str) -> Request {
    Request::carrying("GET", find_path(org_id, "", 0, 1), None, Vec::new())
}

/// `POST /user/{id}/disable|enable|delete` (any other kind disables).
pub fn action(op: &Operation, org_id: &str, id: &str, kind: OpKind) -> Request {
    let verb = match kind {
        OpKind::Enable => "enable",
        OpKind::Delete => "delete",
        _ => "disable",
    };
    Request::new(
        "POST",
        user_action_path(org_id, id, verb),
        None,
        &op.external_id,
    )
}

/// The preview: each operation's requests (saleschat has no batch: every operation
/// is its own unit) as `client::apply` sends them when saleschat answers as expected.
pub fn build(ops: &[Operation], org_id: &str) -> Vec<Request> {
    ops.iter().flat_map(|op| preview_one(op, org_id)).collect()
}

/// A find by `email`, with the next page as a conditional follow-up.
fn preview_find(op: &Operation, org_id: &str, email: &str) -> Request {
    find(op, org_id, email, 0).then_if(
        "saleschat says has_more and the page lacks the email (and so on, page by page)",
        find(op, org_id, email, PAGE_SIZE),
    )
}

fn preview_one(op: &Operation, org_id: &str) -> Vec<Request> {
    let create_and_confirm = |r: &Record| {
        vec![
            create(op, org_id, r, PASSWORD_PLACEHOLDER)
                .with_note("an existing email (422) is adopted through the find that follows"),
            preview_find(op, org_id, &op.email)
                .with_note("confirms org membership (or finds the account to adopt)"),
        ]
    };
    // The id found by email at send time.
    let found_action = |email: &str, kind: OpKind| {
        vec![
            preview_find(op, org_id, email).with_note("saleschat's id of the user"),
            action(op, org_id, ID_FOUND_AT_SEND_TIME, kind)
                .with_note("{id}: found by email just before"),
        ]
    };
    match (op.op, op.record.as_ref()) {
        (OpKind::Create, Some(r)) => create_and_confirm(r),
        (OpKind::Disable | OpKind::Enable | OpKind::Delete, _) => match &op.vendor_id {
            Some(id) => vec![action(op, org_id, id, op.op)],
            None => found_action(&op.email, op.op),
        },
        (OpKind::Recreate, Some(r)) => {
            let mut out = create_and_confirm(r);
            match (&op.vendor_id, old_email(op)) {
                (Some(id), _) => out.push(action(op, org_id, id, OpKind::Disable)),
                (None, Some(email)) => out.extend(found_action(&email, OpKind::Disable)),
                // Unknown: reported as manual action.
                (None, None) => {}
            }
            out
        }
        // saleschat has no update call: the plan reports changes as manual action.
        (OpKind::Update, _) | (_, None) => Vec::new(),
    }
}

/// The email before the change, from the plan (not kept when resent from the journal).
pub fn old_email(op: &Operation) -> Option<String> {
    op.changes
        .iter()
        .find(|c| c.field == "email")
        .and_then(|c| c.old.clone())
}
