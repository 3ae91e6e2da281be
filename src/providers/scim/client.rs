//! Carrying out operations at a SCIM service one user at a time.
//!
//! A create first looks the user up (`userName eq`, then `externalId eq`) and adopts
//! what it finds, so a create resent after a crash, or one for a user made by hand,
//! never makes a second account; a 409 `uniqueness` on the POST (a user made in
//! between) is adopted the same way, and one no lookup explains is manual action.
//! Changes are PATCHes (one operation per changed attribute), or a read and a PUT of
//! the whole resource when the service lacks PATCH — or turns out to refuse or
//! misapply it, as its answer shows (a quirk, remembered). With ETags, every change
//! carries `If-Match` with the version just read, and a 412 (someone changed the user
//! since) is read again and retried once.

use futures_util::stream::{self, StreamExt};
use serde_json::Value;

use super::discovery::{Effective, Features};
use super::patch;
use super::quirks::Quirk;
use super::list::{check_paging, parse_page};
use super::requests::{self, external_id, user_name};
use crate::plan::{OpKind, Operation};
use crate::providers::call::{Applied, CallError, OpResult, Response, Transport};
use crate::providers::Record;

pub use super::requests::version;

/// Operations of one unit sent at once when `/Bulk` is not used (the pacer still
/// bounds what is in flight).
const IN_FLIGHT: usize = 4;

/// Reads `/ServiceProviderConfig`. A service without one (404 / 501) is taken to
/// support only what RFC 7644 makes mandatory; other failures fail the pass's writes.
pub async fn read_features(transport: &dyn Transport) -> Result<Features, CallError> {
    match transport.send(&requests::discovery()).await {
        Ok(resp) => Ok(Features::parse(&resp.body)),
        Err(e) if matches!(e.status, Some(404 | 501)) => Ok(Features::minimal()),
        Err(e) => Err(e),
    }
}

/// Carries out `ops` one by one (a few at a time); one result per operation, in order.
pub async fn apply_each(
    transport: &dyn Transport,
    ops: &[&Operation],
    eff: &Effective,
) -> Vec<OpResult> {
    // The futures are made first (a Vec, not a stream's map): a closure taking
    // `&&Operation` is not general enough for the boxed future's `Send`.
    let futures: Vec<_> = ops.iter().map(|op| apply_one(transport, op, eff)).collect();
    stream::iter(futures).buffered(IN_FLIGHT).collect().await
}

pub async fn apply_one(transport: &dyn Transport, op: &Operation, eff: &Effective) -> OpResult {
    let record = op.record.as_ref();
    match (op.op, record) {
        (OpKind::Create, Some(r)) => create(transport, op, r, eff, None).await,
        (OpKind::Update, r) => change(transport, op, eff, r, None).await,
        (OpKind::Enable, r) => change(transport, op, eff, r, Some(true)).await,
        (OpKind::Disable, _) => change(transport, op, eff, None, Some(false)).await,
        (OpKind::Delete, _) => delete(transport, op, eff).await,
        (OpKind::Recreate, Some(r)) => {
            // The new account first (never the old one adopted), then the old one
            // disabled. Resent after a failure, the create adopts what it made.
            let old = op.vendor_id.as_deref();
            let created = create(transport, op, r, eff, old).await?;
            if let Applied::Manual { reason, .. } = created {
                // No new account (a 409 no lookup explains): the old one stays active,
                // and its id stays known.
                return Ok(Applied::Manual {
                    vendor_id: old.map(str::to_string),
                    reason,
                });
            }
            match old {
                Some(old) => {
                    modify(transport, op, eff, old, None, None, Some(false)).await?;
                    Ok(created)
                }
                None => Ok(Applied::Manual {
                    vendor_id: created.vendor_id().map(str::to_string),
                    reason: "created the new SCIM user, but the id of the old one is unknown: deactivate it by hand".into(),
                }),
            }
        }
        (kind, None) => Err(CallError::new(
            None,
            format!("internal: a {} operation without a record", kind.as_str()),
        )),
    }
}

/// Creates the user, or adopts the one the service has for its userName or externalId
/// (brought up to date and activated). `exclude` is an id never adopted.
pub async fn create(
    transport: &dyn Transport,
    op: &Operation,
    record: &Record,
    eff: &Effective,
    exclude: Option<&str>,
) -> OpResult {
    if let Some(found) = find(transport, op, eff, exclude).await? {
        return adopt(transport, op, eff, record, found).await;
    }
    match transport.send(&requests::create(op, record)).await {
        Ok(resp) => match resource_id(&resp.body) {
            Some(id) => Ok(Applied::done(Some(id))),
            None => created_without_id(transport, op, eff, exclude, resp.status).await,
        },
        // Made in between (or not found by a service that cannot filter): adopt it.
        // A duplicate that no lookup shows (another attribute is unique, or the user
        // is hidden from this client) is for a person: resent, it meets the same 409
        // every pass. The planner leaves it until the record changes.
        Err(e) if e.status == Some(409) => match find(transport, op, eff, exclude).await? {
            Some(found) => adopt(transport, op, eff, record, found).await,
            None => Ok(Applied::Manual {
                vendor_id: None,
                reason: format!(
                    "the SCIM service refused the create as a duplicate ({}) and lists no user with userName {} or externalId {} to adopt: resolve it by hand; the create is tried again when the source record changes",
                    e.message,
                    user_name(op),
                    external_id(op)
                ),
            }),
        },
        Err(e) => Err(e),
    }
}

/// A create answered 2xx without the new resource's id (RFC 7644 §3.3 says the answer
/// carries the resource): the user is looked up, so that later changes know it. Not
/// found means the answer confirmed nothing: a failure, tried again next pass (where
/// the lookup before the POST adopts it if it was made after all). A service that
/// cannot filter cannot be asked: a person checks.
async fn created_without_id(
    transport: &dyn Transport,
    op: &Operation,
    eff: &Effective,
    exclude: Option<&str>,
    status: u16,
) -> OpResult {
    if !eff.filter {
        return Ok(Applied::Manual {
            vendor_id: None,
            reason: format!(
                "the SCIM service answered the create with HTTP {status} but without the user's id, and cannot filter to look it up: check the account by hand"
            ),
        });
    }
    match find(transport, op, eff, exclude).await?.as_ref().and_then(resource_id) {
        Some(id) => Ok(Applied::done(Some(id))),
        None => Err(CallError::new(
            Some(status),
            format!(
                "the SCIM service answered the create with HTTP {status} but without the user's id, and lists no user with userName {} or externalId {}",
                user_name(op),
                external_id(op)
            ),
        )
        .maybe_applied()),
    }
}

/// Brings a user found at the service up to date and active.
pub async fn adopt(
    transport: &dyn Transport,
    op: &Operation,
    eff: &Effective,
    record: &Record,
    found: Value,
) -> OpResult {
    let id = resource_id(&found)
        .ok_or_else(|| CallError::new(None, "the SCIM service listed a user without an id"))?;
    modify(
        transport,
        op,
        eff,
        &id,
        Some(found),
        Some(record),
        Some(true),
    )
    .await
    .map(Applied::as_adopted)
}

/// Changes a user known by the operation's id, or found when it has none (or the
/// service no longer knows that id).
async fn change(
    transport: &dyn Transport,
    op: &Operation,
    eff: &Effective,
    record: Option<&Record>,
    active: Option<bool>,
) -> OpResult {
    if let Some(id) = op.vendor_id.as_deref() {
        match modify(transport, op, eff, id, None, record, active).await {
            Err(e) if e.status == Some(404) => {}
            other => return other,
        }
    }
    let found = match find(transport, op, eff, None).await? {
        Some(found) => found,
        // Nothing to disable: the service has no such user (e.g. its create needed
        // manual action), as a delete of a user it does not have is done.
        None if op.op == OpKind::Disable && op.vendor_id.is_none() => {
            return Ok(Applied::done(None))
        }
        None => return Err(not_found(op)),
    };
    let id = resource_id(&found).ok_or_else(|| not_found(op))?;
    modify(transport, op, eff, &id, Some(found), record, active).await
}

async fn delete(transport: &dyn Transport, op: &Operation, eff: &Effective) -> OpResult {
    let id = match op.vendor_id.clone() {
        Some(id) => Some(id),
        None => find(transport, op, eff, None)
            .await?
            .and_then(|u| resource_id(&u)),
    };
    let Some(id) = id else {
        // Nothing to delete: the service has no such user (any more).
        return Ok(Applied::done(None));
    };
    match transport.send(&requests::delete(op, &id)).await {
        Ok(_) => Ok(Applied::done(Some(id))),
        Err(e) if e.status == Some(404) => Ok(Applied::done(Some(id))),
        Err(e) => Err(e),
    }
}

fn not_found(op: &Operation) -> CallError {
    CallError::new(
        Some(404),
        format!(
            "the SCIM service has no user with userName {} or externalId {}",
            user_name(op),
            op.external_id
        ),
    )
}

/// Whether writes need the current resource first: for PUT (merged into it) and for
/// `If-Match` (its version).
pub fn needs_read(eff: &Effective) -> bool {
    eff.etag || !eff.patch
}

/// Writes `record` / `active` to user `id`: PATCH, or PUT of the merged resource;
/// `If-Match` with the version of `current` (read here when needed and not given).
/// A 412 is read again and retried once. A PATCH refused (501 / 405), or answered
/// with a resource that differs from what was meant (a merge, an ignored change), is
/// redone at once as a PUT, and the quirk remembered.
pub async fn modify(
    transport: &dyn Transport,
    op: &Operation,
    eff: &Effective,
    id: &str,
    current: Option<Value>,
    record: Option<&Record>,
    active: Option<bool>,
) -> OpResult {
    let as_put = || Effective {
        patch: false,
        ..eff.clone()
    };
    if eff.patch && eff.patch_refused() {
        // Learned by another operation of this pass since this unit began.
        return Box::pin(modify(transport, op, &as_put(), id, current, record, active)).await;
    }
    let mut current = current;
    for attempt in 0..2 {
        if needs_read(eff) && (current.is_none() || attempt > 0) {
            current = Some(read(transport, op, id).await?);
        }
        let request = requests::write(op, eff, id, current.as_ref(), record, active);
        match transport.send(&request).await {
            Ok(resp) => {
                let answer = match eff.quirks.as_ref() {
                    // An answer without the resource (204, or a bare id) says nothing of
                    // what was stored: read back until one PATCH of the pass checks out.
                    Some(q) if eff.patch && !is_user(&resp.body) && !q.patch_checked() => {
                        read(transport, op, id).await.unwrap_or(resp.body)
                    }
                    _ => resp.body,
                };
                let differs = answer_differs(&answer, record, active);
                // Only a replaced multi-valued attribute can show a merge: a PATCH
                // of names or `active` that checks out says nothing about that.
                if eff.patch && is_user(&answer) && differs.is_empty() && replaces_multi(&request) {
                    if let Some(q) = &eff.quirks {
                        q.mark_patch_checked();
                    }
                }
                if eff.patch && !differs.is_empty() {
                    let merged = differs.iter().all(|p| matches!(*p, "emails" | "phoneNumbers"));
                    let quirk = if merged { Quirk::MultiValuedMerge } else { Quirk::PatchUnusable };
                    eff.learn(
                        quirk,
                        format!(
                            "a PATCH of {} was answered with {} other than sent",
                            request.path,
                            differs.join(", ")
                        ),
                    );
                    return Box::pin(modify(transport, op, &as_put(), id, None, record, active))
                        .await;
                }
                if !differs.is_empty() {
                    tracing::warn!(external_id = %op.external_id, attributes = %differs.join(", "), "The SCIM service answered a PUT with other values than sent (it may normalise them).");
                }
                return Ok(Applied::done(
                    resource_id(&answer).or_else(|| Some(id.to_string())),
                ));
            }
            Err(e) if e.status == Some(412) && attempt == 0 => {
                // Changed since it was read: read again (below) and retry once.
                current = None;
            }
            // A service that announces PATCH but does not implement it (or not for
            // these attributes) answers 501 or 405: the same change goes as a PUT of
            // the merged resource, at once, instead of failing every update.
            Err(e) if eff.patch && matches!(e.status, Some(501 | 405)) => {
                eff.learn(
                    Quirk::PatchUnusable,
                    format!("PATCH {}: {}", request.path, e.message),
                );
                return Box::pin(modify(transport, op, &as_put(), id, None, record, active)).await;
            }
            Err(e) => return Err(e),
        }
    }
    Err(CallError::new(
        Some(412),
        "the SCIM user kept changing between read and write (If-Match failed twice)",
    ))
}

/// Whether a PATCH replaces `emails` or `phoneNumbers`.
fn replaces_multi(request: &crate::providers::Request) -> bool {
    let ops = request
        .body
        .as_ref()
        .and_then(|b| b.get("Operations"))
        .and_then(Value::as_array);
    ops.is_some_and(|ops| {
        ops.iter().any(|o| {
            o.get("op").and_then(Value::as_str) == Some("replace")
                && matches!(
                    o.get("path").and_then(Value::as_str),
                    Some("emails" | "phoneNumbers")
                )
        })
    })
}

/// Whether an answer is a User resource (RFC 7643: it names its schema), not an
/// empty 200 / 204 or a bare id.
fn is_user(body: &Value) -> bool {
    body.get("id").is_some()
        && body
            .get("schemas")
            .and_then(Value::as_array)
            .is_some_and(|s| s.iter().any(|u| u.as_str() == Some(requests::USER_SCHEMA)))
}

/// The managed attributes at which a write's answer differs from what it meant —
/// only for an answer that is a User resource; an attribute the answer leaves out is
/// not taken as refused.
fn answer_differs(body: &Value, record: Option<&Record>, active: Option<bool>) -> Vec<&'static str> {
    if !is_user(body) {
        return Vec::new();
    }
    let meant = requests::resource(record, active);
    let paths: Vec<&'static str> = patch::written_paths(record, active)
        .into_iter()
        .filter(|p| patch::at(body, p).is_some() || patch::at(&meant, p).is_none())
        .collect();
    patch::differences(&meant, body, &paths)
}

async fn read(transport: &dyn Transport, op: &Operation, id: &str) -> Result<Value, CallError> {
    Ok(transport.send(&requests::read(op, id)).await?.body)
}

/// The service's user for this operation: by userName (case-insensitively, as RFC
/// 7643 makes it), else by externalId; never `exclude`. Without filtering (or once a
/// filter is refused), in the pass's listing of `/Users`; `None` without either.
pub async fn find(
    transport: &dyn Transport,
    op: &Operation,
    eff: &Effective,
    exclude: Option<&str>,
) -> Result<Option<Value>, CallError> {
    let user_name = user_name(op);
    let external_id = external_id(op);
    if eff.filter {
        match find_by_filter(transport, op, exclude, &user_name, &external_id).await {
            // Filtering refused despite the announcement: the listed users instead,
            // for this lookup and (remembered) from now on.
            Err(e) if matches!(e.status, Some(400 | 405 | 501)) && eff.listing.is_some() => {
                eff.learn(
                    Quirk::FilterUnusable,
                    format!("a filtered GET /Users: {}", e.message),
                );
            }
            other => return other,
        }
    }
    let Some(listing) = &eff.listing else {
        return Ok(None);
    };
    let users = listing.0.get_or_try_init(|| list_all(transport)).await?;
    let usable = |u: &&Value| resource_id(u).is_some_and(|id| Some(id.as_str()) != exclude);
    // By userName, then the primary email (both case-insensitively), then externalId.
    let hit = users
        .iter()
        .filter(usable)
        .find(|u| matches_attr(u, "userName", &user_name))
        .or_else(|| {
            users.iter().filter(usable).find(|u| {
                primary_email(u).is_some_and(|e| e.trim().eq_ignore_ascii_case(op.email.trim()))
            })
        })
        .or_else(|| {
            users
                .iter()
                .filter(usable)
                .find(|u| matches_attr(u, "externalId", &external_id))
        });
    Ok(hit.cloned())
}

/// [`find`] by filter requests: by userName, then externalId.
async fn find_by_filter(
    transport: &dyn Transport,
    op: &Operation,
    exclude: Option<&str>,
    user_name: &str,
    external_id: &str,
) -> Result<Option<Value>, CallError> {
    for (attr, value) in [("userName", user_name), ("externalId", external_id)] {
        if value.trim().is_empty() {
            continue;
        }
        let resp = transport.send(&requests::find(op, attr, value)).await?;
        let hit = resources(&resp).into_iter().find(|u| {
            matches_attr(u, attr, value)
                && resource_id(u).is_some_and(|id| Some(id.as_str()) != exclude)
        });
        if hit.is_some() {
            return Ok(hit);
        }
    }
    Ok(None)
}

/// Every user of the service, page by page (`startIndex`, `count`) until
/// `totalResults`, for a service that cannot filter. Bounded: a page that adds nobody
/// or more than [`MAX_LISTED`] users end it with an error, never with a partial list
/// taken for the whole.
pub async fn list_all(transport: &dyn Transport) -> Result<Vec<Value>, CallError> {
    let failed = |read: usize, why: String| {
        CallError::new(
            None,
            format!(
                "listing the SCIM service's /Users (it cannot filter) stopped after {read} \
                 user(s): {why}; users cannot be looked up to adopt"
            ),
        )
    };
    let mut users: Vec<Value> = Vec::new();
    let mut previous: Option<(usize, Vec<Value>)> = None;
    loop {
        let start = users.len() + 1;
        let resp = transport.send(&requests::list_page(start)).await?;
        // The same checks as the SCIM source's: a dishonest page ends the listing.
        let page = parse_page(&resp.body).map_err(|why| failed(users.len(), why))?;
        check_paging(&page, start, requests::LIST_COUNT, previous.as_ref(), users.len())
            .map_err(|why| failed(users.len(), why))?;
        let got = page.resources.len();
        users.extend(page.resources.iter().cloned());
        if users.len() >= page.total {
            return Ok(users);
        }
        if got == 0 || users.len() > MAX_LISTED {
            return Err(failed(
                users.len(),
                format!("totalResults is {} and the pages end", page.total),
            ));
        }
        previous = Some((page.total, page.resources));
    }
}

/// Most users listed from a service that cannot filter.
const MAX_LISTED: usize = 1_000_000;

/// The value of a resource's primary email (or its first one).
fn primary_email(u: &Value) -> Option<&str> {
    super::list::primary(u.get("emails"))?.as_str()
}

/// Whether resource `u` has `attr` equal to `value` (userName case-insensitively).
pub fn matches_attr(u: &Value, attr: &str, value: &str) -> bool {
    let have = u.get(attr).and_then(Value::as_str);
    match attr {
        "userName" => have.is_some_and(|h| h.trim().eq_ignore_ascii_case(value.trim())),
        _ => have == Some(value),
    }
}

/// The `Resources` of a ListResponse (absent when there are none).
pub fn resources(resp: &Response) -> Vec<Value> {
    resp.body
        .get("Resources")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

/// A resource's `id`.
pub fn resource_id(body: &Value) -> Option<String> {
    match body.get("id")? {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}
