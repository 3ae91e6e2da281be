//! Carrying out operations at hesh: batch creates with adoption of the users hesh
//! skips, updates and re-enables (PUT, matched by email or phone), disables (PATCH by
//! external_user_id). Responses are read leniently: hesh's documents disagree on
//! field names and types, and a missing optional field must not fail a sync.

use serde_json::Value;

use super::requests;
use crate::plan::{OpKind, Operation};
use crate::providers::call::{Applied, CallError, OpResult, Transport};
use crate::providers::Record;

pub use super::requests::units;

/// The operator-facing message in a hesh error body (`message` as a string or a list,
/// else `error`). Blank ones say nothing: `None`, so the caller's fallback is shown.
pub fn error_message(body: &Value) -> Option<String> {
    let text = |v: &Value| match v {
        Value::String(s) => s.trim().to_string(),
        Value::Null => String::new(),
        other => other.to_string(),
    };
    let message = match body.get("message") {
        Some(Value::Array(items)) => items
            .iter()
            .map(text)
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join("; "),
        Some(Value::String(s)) => s.trim().to_string(),
        _ => String::new(),
    };
    if !message.is_empty() {
        return Some(message);
    }
    body.get("error")
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// Carries out one unit (see [`units`]); one result per operation, in order.
pub async fn apply(transport: &dyn Transport, ops: &[&Operation]) -> Vec<OpResult> {
    match ops {
        [] => Vec::new(),
        [op] => vec![apply_one(transport, op).await],
        many => create_batch(transport, many).await,
    }
}

/// Whether hesh's refusal says it has no user with this external_user_id: a 404, or
/// a 400/422 whose message says so (hesh documents no answer for it).
fn says_not_found(e: &CallError) -> bool {
    let message = e.message.to_ascii_lowercase();
    match e.status {
        Some(404) => true,
        Some(400 | 422) => ["not found", "no user", "does not exist", "doesn't exist", "unknown"]
            .iter()
            .any(|m| message.contains(m)),
        _ => false,
    }
}

async fn apply_one(transport: &dyn Transport, op: &Operation) -> OpResult {
    let record = op.record.as_ref();
    match (op.op, record) {
        (OpKind::Create, Some(r)) => create_one(transport, op, r).await,
        (OpKind::Update | OpKind::Enable, Some(r)) => {
            match transport.send(&requests::update(op, r)).await {
                Ok(resp) => Ok(Applied::done(user_id(&resp.body))),
                // A re-enable that finds no account by this email or phone (a leaver's
                // blind disable adopted a row for an account hesh never had, or the
                // account was deleted there): the rehire gets a new one. The 404 says
                // neither the email nor the phone is taken, so no duplicate is made.
                Err(e) if op.op == OpKind::Enable && e.status == Some(404) => {
                    create_one(transport, op, r).await
                }
                Err(e) => Err(e),
            }
        }
        (OpKind::Enable, None) => Err(CallError::new(
            None,
            "cannot re-enable at hesh: its email changed and hesh matches accounts by email or phone; re-enable it by hand",
        )),
        (OpKind::Disable | OpKind::Delete, _) => match transport.send(&requests::disable(op)).await {
            Ok(_) => Ok(Applied::done(op.vendor_id.clone())),
            // A leaver's disable is sent blind (hesh cannot look up): "no such
            // user" is an answer, recorded so that it is never sent again.
            Err(e) if op.adopt && says_not_found(&e) => Ok(Applied::Absent),
            Err(e) => Err(e),
        },
        (OpKind::Recreate, Some(r)) => {
            // The old account is disabled first, while it is the only one with this
            // external_user_id (hesh disables by it).
            transport.send(&requests::disable(op)).await?;
            create_one(transport, op, r).await
        }
        (kind, None) => Err(CallError::new(
            None,
            format!("internal: a {} operation without a record", kind.as_str()),
        )),
    }
}

async fn create_one(transport: &dyn Transport, op: &Operation, record: &Record) -> OpResult {
    match transport.send(&requests::create(op, record)).await {
        Ok(resp) => Ok(Applied::done(user_id(&resp.body))),
        // hesh refuses a create whose email or phone it already has: adopt it.
        Err(e) if matches!(e.status, Some(400 | 409 | 422)) && mentions_existing(&e.message) => {
            adopt(transport, op, record).await
        }
        Err(e) => Err(e),
    }
}

async fn create_batch(transport: &dyn Transport, ops: &[&Operation]) -> Vec<OpResult> {
    let resp = match transport.send(&requests::batch(ops)).await {
        Ok(resp) => resp,
        Err(e) => return ops.iter().map(|_| Err(e.clone())).collect(),
    };
    // hesh answers with the array of the users it created: an empty one means it
    // skipped them all (adopted below). Anything else says nothing of what it did:
    // every create fails and is retried next pass, where skipped users are adopted.
    let Some(created) = resp.body.as_array() else {
        let e = CallError::new(
            Some(resp.status),
            format!(
                "hesh answered the batch create with HTTP {} but not with the list of users it created: what it did is unknown",
                resp.status
            ),
        )
        .maybe_applied();
        return ops.iter().map(|_| Err(e.clone())).collect();
    };
    let created: Vec<&Value> = created.iter().collect();
    let mut out = Vec::with_capacity(ops.len());
    for op in ops {
        let Some(record) = op.record.as_ref() else {
            out.push(Err(CallError::new(
                None,
                "internal: a create without a record",
            )));
            continue;
        };
        let mine = created.iter().find(|u| {
            u.get("email")
                .and_then(Value::as_str)
                .is_some_and(|e| e.eq_ignore_ascii_case(&op.email))
        });
        out.push(match mine {
            Some(u) => Ok(Applied::done(user_id(u))),
            // Absent from the answer: hesh skipped it because it has the email or phone.
            None => adopt(transport, op, record).await,
        });
    }
    out
}

/// Takes over an account hesh already has for this email, bringing it up to date.
/// The update is sent without the phone, so that hesh can only match it by email: a
/// phone held by somebody else's account must never re-key that account. The phone
/// follows in the next pass's update (the confirmed record says it was not sent).
async fn adopt(transport: &dyn Transport, op: &Operation, record: &Record) -> OpResult {
    let without_phone = requests::adoption_record(record);
    match transport.send(&requests::update(op, &without_phone)).await {
        Ok(resp) => {
            // The account may have the right phone already (a create resent after a
            // crash finds the account it made): then the whole record is confirmed,
            // and the next pass has nothing left to send.
            let has_phone = match (record.get("phone"), resp.str_field("phone")) {
                (Some(want), Some(got)) => want.trim() == got.trim(),
                _ => false,
            };
            Ok(Applied::Done {
                vendor_id: user_id(&resp.body),
                record: (!has_phone && without_phone != *record).then_some(without_phone),
                adopted: true,
            })
        }
        Err(e) if e.status == Some(404) => Err(CallError::new(
            Some(404),
            format!(
                "hesh refused the create as a duplicate, but has no account with {}: another account holds the phone number; resolve by hand",
                op.email
            ),
        )),
        Err(e) => Err(e),
    }
}

fn mentions_existing(message: &str) -> bool {
    let m = message.to_lowercase();
    m.contains("exist") || m.contains("already") || m.contains("duplicate") || m.contains("taken")
}

/// hesh's id of a user in a response (`id`, as a string or a number).
fn user_id(body: &Value) -> Option<String> {
    match body.get("id")? {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}
