//! Carrying out operations at saleschat: creates (with a generated password, then a
//! find by email to confirm org membership), adoption of an existing email through
//! find, and disable / enable / delete by saleschat's own user id.
//!
//! Responses are read leniently: a missing or unexpected optional field must not fail
//! a sync. The generated password only ever lives in the request body handed to the
//! transport: it is never logged, stored, or put into an error message.

use serde_json::Value;

use super::requests::{self, old_email};
use crate::plan::{OpKind, Operation};
use crate::providers::call::{Applied, CallError, OpResult, Transport};
use crate::providers::{same_email, Record};

pub use super::requests::PAGE_SIZE;
/// Pages read at most per find (a vendor that always says `has_more` cannot loop us).
const MAX_PAGES: usize = 100;
/// Length of a generated password (saleschat accepts 8 to 64).
pub const PASSWORD_LEN: usize = 32;

/// Why a created user needs a person.
pub const NOT_IN_ORG: &str =
    "created, but saleschat did not add the user to the organisation: add them by hand";

const UPPER: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ";
const LOWER: &[u8] = b"abcdefghijklmnopqrstuvwxyz";
const DIGITS: &[u8] = b"0123456789";
const SYMBOLS: &[u8] = b"!#$%&*+-=?@^_~";

/// A fresh password from the OS RNG: [`PASSWORD_LEN`] characters with at least one
/// upper-case letter, lower-case letter, digit and symbol. The error says nothing of
/// the password.
pub fn generate_password() -> Result<String, CallError> {
    let alphabet: Vec<u8> = [UPPER, LOWER, DIGITS, SYMBOLS].concat();
    let n = alphabet.len();
    // Bytes at or above this are rejected, so every character is equally likely.
    let limit = 256 - 256 % n;
    for _ in 0..16 {
        let mut out = String::with_capacity(PASSWORD_LEN);
        while out.len() < PASSWORD_LEN {
            let mut buf = [0u8; 64];
            getrandom::fill(&mut buf).map_err(|e| {
                CallError::new(
                    None,
                    format!("cannot generate a password: the OS random source failed ({e})"),
                )
            })?;
            for b in buf {
                if out.len() == PASSWORD_LEN {
                    break;
                }
                if usize::from(b) < limit {
                    out.push(char::from(alphabet[usize::from(b) % n]));
                }
            }
        }
        if is_strong(&out) {
            return Ok(out);
        }
    }
    Err(CallError::new(
        None,
        "cannot generate a password: the OS random source keeps giving weak ones",
    ))
}

/// At least one character of each class.
pub fn is_strong(password: &str) -> bool {
    let has = |set: &[u8]| password.bytes().any(|b| set.contains(&b));
    has(UPPER) && has(LOWER) && has(DIGITS) && has(SYMBOLS)
}

/// Carries out one unit (one operation, saleschat has no batch); one result per
/// operation, in order.
pub async fn apply(transport: &dyn Transport, ops: &[&Operation], org_id: &str) -> Vec<OpResult> {
    let mut out = Vec::with_capacity(ops.len());
    for op in ops {
        out.push(apply_one(transport, op, org_id).await);
    }
    out
}

async fn apply_one(transport: &dyn Transport, op: &Operation, org_id: &str) -> OpResult {
    match (op.op, op.record.as_ref()) {
        (OpKind::Create, Some(r)) => create(transport, op, r, org_id).await,
        (OpKind::Disable | OpKind::Enable | OpKind::Delete, _) => {
            let id = match &op.vendor_id {
                Some(id) => id.clone(),
                None => find_id_or_err(transport, op, &op.email, org_id).await?,
            };
            action(transport, op, &id, op.op, org_id).await?;
            Ok(Applied::done(Some(id)))
        }
        (OpKind::Recreate, Some(r)) => recreate(transport, op, r, org_id).await,
        (OpKind::Update, _) => Err(CallError::new(
            None,
            "saleschat has no call to change an existing user: change it by hand",
        )),
        (kind, None) => Err(CallError::new(
            None,
            format!("internal: a {} operation without a record", kind.as_str()),
        )),
    }
}

/// Creates the account (or adopts the one saleschat has for this email), then
/// confirms it is a member of the organisation.
async fn create(
    transport: &dyn Transport,
    op: &Operation,
    record: &Record,
    org_id: &str,
) -> OpResult {
    let password = generate_password()?;
    let request = requests::create(op, org_id, record, &password);
    let sent = transport.send(&request).await;
    drop(request);
    drop(password);
    let created = match sent {
        Ok(resp) => user_id(&resp.body, "user_id"),
        Err(e) if is_existing_email(&e) => return adopt(transport, op, org_id, e).await,
        Err(e) => return Err(e),
    };
    // saleschat sometimes creates a user without adding it to the org: find it.
    match find_by_email(transport, op, &op.email, org_id).await {
        Ok(Some(found)) => Ok(Applied::done(created.or(Some(found)))),
        Ok(None) => Ok(Applied::Manual {
            vendor_id: created,
            reason: NOT_IN_ORG.into(),
        }),
        Err(e) => Ok(Applied::Manual {
            vendor_id: created,
            reason: format!(
                "created, but its membership of the organisation could not be confirmed ({}): check by hand",
                e.message
            ),
        }),
    }
}

/// A create refused because the email is taken: 422 (saleschat's answer for it), or
/// a 409 / 400 whose message says so.
fn is_existing_email(e: &CallError) -> bool {
    match e.status {
        Some(422) => true,
        Some(400 | 409) => {
            let m = e.message.to_lowercase();
            m.contains("exist") || m.contains("already") || m.contains("duplicate")
        }
        _ => false,
    }
}

/// Takes over the member saleschat already has for this email.
async fn adopt(
    transport: &dyn Transport,
    op: &Operation,
    org_id: &str,
    refused: CallError,
) -> OpResult {
    match find_by_email(transport, op, &op.email, org_id).await? {
        Some(id) => Ok(Applied::done(Some(id)).as_adopted()),
        None => Err(CallError::new(
            refused.status,
            format!(
                "{} (and the organisation has no member with {} to adopt: if the account exists outside the organisation, add it by hand)",
                refused.message, op.email
            ),
        )),
    }
}

/// A new account for the new email, then the old account disabled.
async fn recreate(
    transport: &dyn Transport,
    op: &Operation,
    record: &Record,
    org_id: &str,
) -> OpResult {
    let created = create(transport, op, record, org_id).await?;
    let old_id = match &op.vendor_id {
        Some(id) => Some(id.clone()),
        None => match old_email(op) {
            Some(email) => find_by_email(transport, op, &email, org_id).await?,
            None => None,
        },
    };
    let (new_id, manual) = match &created {
        Applied::Done { vendor_id, .. } => (vendor_id.clone(), None),
        Applied::Manual { vendor_id, reason } => (vendor_id.clone(), Some(reason.clone())),
        Applied::Absent => (None, None),
    };
    let Some(old_id) = old_id.filter(|old| Some(old) != new_id.as_ref()) else {
        return Ok(Applied::Manual {
            vendor_id: new_id,
            reason: "the new account was created, but saleschat's id of the old one is unknown: disable the old account by hand".into(),
        });
    };
    match action(transport, op, &old_id, OpKind::Disable, org_id).await {
        Ok(()) => {}
        // The old account is gone already.
        Err(e) if e.status == Some(404) => {}
        Err(e) => return Err(e),
    }
    Ok(match manual {
        Some(reason) => Applied::Manual {
            vendor_id: new_id,
            reason,
        },
        None => created,
    })
}

/// `POST .../user/{id}/disable|enable|delete`. A delete of a user saleschat no longer
/// has is done already.
async fn action(
    transport: &dyn Transport,
    op: &Operation,
    id: &str,
    kind: OpKind,
    org_id: &str,
) -> Result<(), CallError> {
    match transport.send(&requests::action(op, org_id, id, kind)).await {
        Ok(_) => Ok(()),
        Err(e) if kind == OpKind::Delete && e.status == Some(404) => Ok(()),
        Err(e) => Err(e),
    }
}

async fn find_id_or_err(
    transport: &dyn Transport,
    op: &Operation,
    email: &str,
    org_id: &str,
) -> Result<String, CallError> {
    find_by_email(transport, op, email, org_id)
        .await?
        .ok_or_else(|| {
            CallError::new(
                None,
                format!(
                    "saleschat's id of this user is unknown and the organisation has no member with {email}: {} it by hand",
                    op.op.as_str()
                ),
            )
        })
}

/// saleschat's id of the member whose email is exactly `email` (case-insensitive):
/// saleschat's search is a partial match, so every page is read until it is found
/// or `has_more` is false.
pub async fn find_by_email(
    transport: &dyn Transport,
    op: &Operation,
    email: &str,
    org_id: &str,
) -> Result<Option<String>, CallError> {
    let mut offset = 0;
    for _ in 0..MAX_PAGES {
        let resp = transport
            .send(&requests::find(op, org_id, email, offset))
            .await?;
        let items: &[Value] = resp
            .body
            .get("items")
            .and_then(Value::as_array)
            .map_or(&[], Vec::as_slice);
        let found = items.iter().find(|u| {
            u.get("email")
                .and_then(Value::as_str)
                .is_some_and(|e| same_email(e, email))
        });
        if let Some(u) = found {
            return Ok(user_id(u, "id"));
        }
        let more = resp
            .body
            .get("has_more")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        if !more || items.is_empty() {
            return Ok(None);
        }
        offset += items.len();
    }
    Err(CallError::new(
        None,
        format!(
            "saleschat's search for {email} did not end after {MAX_PAGES} pages: look the user up by hand"
        ),
    ))
}

/// Every member of the organisation (an empty `q` matches everyone), page by page
/// until `has_more` is false, for `rosterd orphans`. saleschat's members carry no
/// disabled flag.
pub async fn list_all(
    transport: &dyn Transport,
    org_id: &str,
) -> Result<Vec<crate::providers::VendorAccount>, CallError> {
    let mut out = Vec::new();
    let mut offset = 0;
    while out.len() <= crate::providers::MAX_LISTED {
        let request = crate::providers::Request::carrying(
            "GET",
            requests::find_path(org_id, "", offset, requests::PAGE_SIZE),
            None,
            Vec::new(),
        );
        let resp = transport.send(&request).await?;
        let items: &[Value] = resp
            .body
            .get("items")
            .and_then(Value::as_array)
            .map_or(&[], Vec::as_slice);
        out.extend(items.iter().filter_map(|u| {
            Some(crate::providers::VendorAccount {
                vendor_id: user_id(u, "id")?,
                email: u.get("email").and_then(Value::as_str).map(str::to_string),
                external_id: None,
                active: None,
            })
        }));
        let more = resp.body.get("has_more").and_then(Value::as_bool) == Some(true);
        if !more || items.is_empty() {
            return Ok(out);
        }
        offset += items.len();
    }
    Err(crate::providers::listing_too_long(
        crate::providers::ProviderType::Saleschat,
        out.len(),
    ))
}

/// A user id in a response (a string or a number).
fn user_id(body: &Value, key: &str) -> Option<String> {
    match body.get(key)? {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}
