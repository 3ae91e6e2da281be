//! saleschat request bodies (`CreateUserReqDto`) and paths (by saleschat's user id).

use serde_json::{json, Value};

use crate::plan::{OpKind, Operation};
use crate::providers::request::{segment, Request, ID_FOUND_AT_SEND_TIME};
use crate::providers::Record;

/// Shown instead of the password, which is generated per user at send time and
/// never logged, stored or printed.
pub const PASSWORD_PLACEHOLDER: &str = "<generated at send time, never shown>";

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

pub fn build(ops: &[Operation], org_id: &str) -> Vec<Request> {
    let mut out = Vec::new();
    let action = |op: &Operation, action: &str| {
        let id = op.vendor_id.as_deref().unwrap_or(ID_FOUND_AT_SEND_TIME);
        let req = Request::new(
            "POST",
            user_action_path(org_id, id, action),
            None,
            &op.external_id,
        );
        if op.vendor_id.is_none() {
            req.with_note("saleschat's id is found by email first")
        } else {
            req
        }
    };
    for op in ops {
        match op.op {
            OpKind::Create => {
                if let Some(r) = &op.record {
                    out.push(
                        Request::new("POST", users_path(org_id), Some(create_body(r, PASSWORD_PLACEHOLDER)), &op.external_id)
                            .with_note("then find by email to confirm org membership; an existing email (422) is adopted through find"),
                    );
                }
            }
            // saleschat has no update call: the plan reports changes as manual action.
            OpKind::Update => {}
            OpKind::Disable => out.push(action(op, "disable")),
            OpKind::Enable => out.push(action(op, "enable")),
            OpKind::Delete => out.push(action(op, "delete")),
            OpKind::Recreate => {
                if let Some(r) = &op.record {
                    out.push(Request::new(
                        "POST",
                        users_path(org_id),
                        Some(create_body(r, PASSWORD_PLACEHOLDER)),
                        &op.external_id,
                    ));
                }
                out.push(action(op, "disable"));
            }
        }
    }
    out
}
