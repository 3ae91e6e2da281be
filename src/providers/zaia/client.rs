//! Carrying out operations at zaia. zaia documents no uniqueness error, so a create
//! first looks for an existing user (the paged list, searched by externalId, then by
//! identifier) and adopts it: a create resent after a crash finds what the first
//! attempt made instead of making it twice. Updates, blocks (disable) and unblocks
//! (enable) are PATCHes by zaia's id. Responses are read leniently: unknown fields
//! are ignored and a missing optional field never fails a sync.

use serde_json::Value;

use super::requests;
use crate::plan::{OpKind, Operation};
use crate::providers::call::{Applied, CallError, OpResult, Transport};
use crate::providers::{same_email, Record};

pub use super::requests::PAGE_SIZE;

/// Pages read at most per search (100 000 users): a guard against a list that never
/// ends, not a limit anyone should meet.
const MAX_PAGES: usize = 1000;

/// The operator-facing message in a zaia error body `{code, message, name, feedback,
/// cta}`: the message with the code when given; else the English feedback or the name.
pub fn error_message(body: &Value) -> Option<String> {
    let text = |key: &str| {
        body.get(key)
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
    };
    let message = text("message")
        .or_else(|| {
            body.get("feedback")
                .and_then(|f| f.get("enUs"))
                .and_then(Value::as_str)
                .map(str::trim)
                .filter(|s| !s.is_empty())
        })
        .or_else(|| text("name"))?;
    Some(match text("code") {
        Some(code) => format!("{message} ({code})"),
        None => message.to_string(),
    })
}

/// Carries out one unit (every zaia operation is its own unit); one result per
/// operation, in order.
pub async fn apply(
    transport: &dyn Transport,
    ops: &[&Operation],
    channel_id: &str,
) -> Vec<OpResult> {
    let mut out = Vec::with_capacity(ops.len());
    for op in ops {
        out.push(apply_one(transport, op, channel_id).await);
    }
    out
}

async fn apply_one(transport: &dyn Transport, op: &Operation, channel_id: &str) -> OpResult {
    let record = op.record.as_ref();
    match (op.op, record) {
        (OpKind::Create, Some(r)) => create(transport, op, r, channel_id, None).await,
        (OpKind::Update, Some(r)) => patch_user(transport, op, channel_id, Some(r), None).await,
        // Without a record (its changes need a person): only unblocked.
        (OpKind::Enable, r) => patch_user(transport, op, channel_id, r, Some(false)).await,
        (OpKind::Disable | OpKind::Delete, _) => {
            patch_user(transport, op, channel_id, None, Some(true)).await
        }
        (OpKind::Recreate, Some(r)) => {
            // The new account first (never the old one adopted), then the old one
            // blocked. Resent after a failure, the create adopts what it made.
            let old = op.vendor_id.as_deref();
            let created = create(transport, op, r, channel_id, old).await?;
            match old {
                Some(old) => {
                    transport
                        .send(&requests::change(op, old, None, Some(true)))
                        .await?;
                    Ok(created)
                }
                None => Ok(Applied::Manual {
                    vendor_id: created.vendor_id().map(str::to_string),
                    reason: "created the new zaia user, but zaia's id of the old one is unknown: block it by hand".into(),
                }),
            }
        }
        (kind, None) => Err(CallError::new(
            None,
            format!("internal: a {} operation without a record", kind.as_str()),
        )),
    }
}

/// Creates the user, or adopts the one zaia already has for its externalId or
/// identifier (brought up to date and unblocked). `exclude` is an id never adopted
/// (a recreate's old account).
async fn create(
    transport: &dyn Transport,
    op: &Operation,
    record: &Record,
    channel_id: &str,
    exclude: Option<&str>,
) -> OpResult {
    if let Some(id) = find(transport, op, channel_id, exclude).await? {
        let resp = transport
            .send(&requests::change(op, &id, Some(record), Some(false)))
            .await?;
        return Ok(Applied::done(user_id(&resp.body).or(Some(id))).as_adopted());
    }
    let resp = transport
        .send(&requests::create(op, record, channel_id))
        .await?;
    let id = match user_id(&resp.body) {
        Some(id) => id,
        // An answer without the id: look the new user up, so later PATCHes know it.
        // Not found, the answer confirmed nothing: a failure, retried next pass,
        // where the search before the POST adopts the user if it was made after all.
        None => find(transport, op, channel_id, exclude)
            .await?
            .ok_or_else(|| {
                CallError::new(
                    Some(resp.status),
                    format!(
                        "zaia answered the create with HTTP {} but without the user's id, and finds no user with externalId {} in the channel",
                        resp.status, op.external_id
                    ),
                )
                .maybe_applied()
            })?,
    };
    Ok(Applied::done(Some(id)))
}

/// PATCHes the user by the operation's vendor id, or by the one found when the
/// operation has none (or zaia no longer knows it).
async fn patch_user(
    transport: &dyn Transport,
    op: &Operation,
    channel_id: &str,
    record: Option<&Record>,
    blocked: Option<bool>,
) -> OpResult {
    let patch = |id: &str| requests::change(op, id, record, blocked);
    let id = match op.vendor_id.as_deref() {
        Some(id) => match transport.send(&patch(id)).await {
            Ok(resp) => return Ok(Applied::done(user_id(&resp.body).or(Some(id.into())))),
            Err(e) if e.status == Some(404) => {
                match find(transport, op, channel_id, Some(id)).await? {
                    Some(found) => found,
                    None => return Err(e),
                }
            }
            Err(e) => return Err(e),
        },
        None => find(transport, op, channel_id, None)
            .await?
            .ok_or_else(|| not_found(op))?,
    };
    let resp = transport.send(&patch(&id)).await?;
    Ok(Applied::done(user_id(&resp.body).or(Some(id))))
}

fn not_found(op: &Operation) -> CallError {
    let identifier = op
        .record
        .as_ref()
        .and_then(|r| r.get("identifier"))
        .unwrap_or(&op.email);
    CallError::new(
        Some(404),
        format!(
            "zaia has no user with externalId {} or identifier {identifier} in the channel",
            op.external_id
        ),
    )
}

/// zaia's id of the user with the operation's externalId (exactly), else with its
/// identifier (case-insensitively), in the channel; never `exclude`.
pub async fn find(
    transport: &dyn Transport,
    op: &Operation,
    channel_id: &str,
    exclude: Option<&str>,
) -> Result<Option<String>, CallError> {
    Ok(find_user(transport, op, channel_id, exclude)
        .await?
        .as_ref()
        .and_then(user_id))
}

/// The user [`find`] finds, as zaia lists it (with `blocked`).
pub async fn find_user(
    transport: &dyn Transport,
    op: &Operation,
    channel_id: &str,
    exclude: Option<&str>,
) -> Result<Option<Value>, CallError> {
    let (external_id, identifier) = requests::search_terms(op);
    // (search term, whether a user is the one: exact externalId / identifier)
    let searches = [(external_id.as_str(), true), (identifier.as_str(), false)];
    let matches = |u: &Value, by_external_id: bool| {
        if by_external_id {
            str_of(u, "externalId") == Some(external_id.as_str())
        } else {
            str_of(u, "identifier").is_some_and(|i| same_email(i, &identifier))
        }
    };
    for (term, by_external_id) in searches {
        if term.trim().is_empty() {
            continue;
        }
        for page in 1..=MAX_PAGES {
            let resp = transport
                .send(&requests::search(op, term, channel_id, page))
                .await?;
            let users = page_items(&resp.body);
            let hit = users.iter().find(|u| {
                matches(u, by_external_id)
                    && in_channel(u, channel_id)
                    && user_id(u).is_some_and(|id| Some(id.as_str()) != exclude)
            });
            if let Some(u) = hit {
                return Ok(Some(u.clone()));
            }
            if users.len() < PAGE_SIZE {
                break;
            }
        }
    }
    Ok(None)
}

/// Every user of the channel, page by page until a short page, for `rosterd
/// orphans`; `blocked` says which are disabled.
pub async fn list_all(
    transport: &dyn Transport,
    channel_id: &str,
) -> Result<Vec<crate::providers::VendorAccount>, CallError> {
    let mut out = Vec::new();
    let max_pages = crate::providers::MAX_LISTED / requests::PAGE_SIZE;
    for page in 1..=max_pages {
        let request = crate::providers::Request::carrying(
            "GET",
            requests::search_path("", channel_id, page, requests::PAGE_SIZE),
            None,
            Vec::new(),
        );
        let users = page_items(&transport.send(&request).await?.body);
        out.extend(users.iter().filter(|u| in_channel(u, channel_id)).filter_map(|u| {
            Some(crate::providers::VendorAccount {
                vendor_id: user_id(u)?,
                email: str_of(u, "identifier").map(str::to_string),
                external_id: str_of(u, "externalId").map(str::to_string),
                active: u.get("blocked").and_then(Value::as_bool).map(|b| !b),
            })
        }));
        if users.len() < requests::PAGE_SIZE {
            return Ok(out);
        }
    }
    Err(crate::providers::listing_too_long(
        crate::providers::ProviderType::Zaia,
        out.len(),
    ))
}

/// The users of one list page: the documented bare array, or one wrapped in an
/// object (`data` / `items` / `results`), which some gateways do.
fn page_items(body: &Value) -> Vec<Value> {
    let list = match body {
        Value::Array(a) => Some(a),
        Value::Object(o) => ["data", "items", "results", "externalUsers"]
            .iter()
            .find_map(|k| o.get(*k).and_then(Value::as_array)),
        _ => None,
    };
    list.cloned().unwrap_or_default()
}

/// A user whose channelId is missing is taken to be in the channel asked for.
fn in_channel(user: &Value, channel_id: &str) -> bool {
    str_of(user, "channelId").is_none_or(|c| c.eq_ignore_ascii_case(channel_id))
}

fn str_of<'v>(user: &'v Value, key: &str) -> Option<&'v str> {
    user.get(key).and_then(Value::as_str)
}

/// zaia's id of a user in a response (`id`, as a string or a number).
pub fn user_id(body: &Value) -> Option<String> {
    match body.get("id")? {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}
