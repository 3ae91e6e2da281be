//! Carrying out operations at vyte: creates (single, or through the batch endpoint
//! when configured), adoption of the accounts vyte already has for an email, and
//! updates by vyte's `_id` (PUT).
//!
//! vyte's create answers are not to be relied on (its own sample is `{}`), so the
//! adapter keeps a directory of vyte's users for the pass: `GET /v2/users` once, when
//! the first operation needs it, and once more at most to learn the ids of accounts
//! created without one in the answer. Responses are read leniently: unknown fields are
//! ignored and missing optional ones never fail an operation.
//!
//! vyte has no disable, enable or delete call: the planner reports those as manual
//! action, and they never reach this module (an `Err` says so if they do).

use std::collections::HashMap;

use serde_json::Value;
use tokio::sync::Mutex;
use tracing::{debug, warn};

use super::requests;
use crate::plan::{OpKind, Operation};
use crate::providers::call::{Applied, CallError, OpResult, Transport};
use crate::providers::{same_email, Record};

/// Largest batch sent to the batch endpoint (vyte documents none; this is ours).
pub const BATCH_SIZE: usize = 100;

/// `GET /v2/users` at most this often per pass: the first listing, and one refresh.
pub const MAX_LISTS_PER_PASS: usize = 2;

pub use super::requests::units;

/// The operator-facing message in a vyte error body (`message` or `error`, a string
/// or a list of them).
pub fn error_message(body: &Value) -> Option<String> {
    ["message", "error", "msg"].iter().find_map(|k| {
        let text = match body.get(*k)? {
            Value::String(s) => s.trim().to_string(),
            Value::Array(items) => items
                .iter()
                .map(|v| {
                    v.as_str()
                        .map_or_else(|| v.to_string(), |s| s.trim().to_string())
                })
                .filter(|s| !s.is_empty() && s != "null")
                .collect::<Vec<_>>()
                .join("; "),
            _ => String::new(),
        };
        // A blank message says nothing: the next key, or the caller's fallback.
        (!text.is_empty()).then_some(text)
    })
}

/// vyte's users as listed this pass: `_id` by lower-cased email and by extid.
#[derive(Debug, Default)]
struct Index {
    by_email: HashMap<String, String>,
    by_extid: HashMap<String, String>,
}

impl Index {
    fn from_list(body: &Value) -> Index {
        let mut index = Index::default();
        for user in users_in(body) {
            let Some(id) = user_id(user) else { continue };
            for email in emails_of(user) {
                index.by_email.entry(email).or_insert_with(|| id.clone());
            }
            if let Some(extid) = extid_of(user) {
                index.by_extid.entry(extid).or_insert_with(|| id.clone());
            }
        }
        index
    }

    fn find(&self, email: &str, extid: Option<&str>) -> Option<String> {
        self.by_email
            .get(&email.trim().to_lowercase())
            .or_else(|| extid.and_then(|x| self.by_extid.get(x)))
            .cloned()
    }

    fn remember(&mut self, email: &str, id: &str) {
        self.by_email
            .insert(email.trim().to_lowercase(), id.to_string());
    }
}

#[derive(Debug, Default)]
struct DirectoryState {
    index: Option<Index>,
    lists: usize,
    /// Why the first listing failed: every operation of the pass that needs the list
    /// fails with it, instead of asking vyte again (the transport already retried).
    failed: Option<CallError>,
}

/// The adapter's memory of vyte's users for one pass (the adapter is built per pass).
/// Shared by the units running at once: the lock is held while listing, so units that
/// need the list wait for one `GET` instead of each sending their own.
#[derive(Debug, Default)]
pub struct Directory {
    state: Mutex<DirectoryState>,
}

/// How a lookup may use the vendor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refresh {
    /// Only list when nothing was listed yet this pass.
    IfUnlisted,
    /// Also list again when the current list lacks the account (within the budget).
    IfMissing,
}

impl Directory {
    pub fn new() -> Directory {
        Directory::default()
    }

    /// How many times `GET /v2/users` was sent by this directory.
    pub async fn lists(&self) -> usize {
        self.state.lock().await.lists
    }

    /// vyte's `_id` for the account with this email (or, failing that, this extid).
    /// `Ok(None)` when vyte does not list one (and, with `IfMissing`, also not after a
    /// refresh; `refreshed` says whether this call listed again).
    async fn find(
        &self,
        transport: &dyn Transport,
        email: &str,
        extid: Option<&str>,
        refresh: Refresh,
    ) -> Result<Found, CallError> {
        let mut st = self.state.lock().await;
        if let Some(id) = st.index.as_ref().and_then(|i| i.find(email, extid)) {
            return Ok(Found {
                id: Some(id),
                refreshed: false,
            });
        }
        let must_list =
            st.index.is_none() || (refresh == Refresh::IfMissing && st.lists < MAX_LISTS_PER_PASS);
        if !must_list {
            return Ok(Found {
                id: None,
                refreshed: false,
            });
        }
        if let Some(e) = &st.failed {
            return Err(e.clone());
        }
        st.lists += 1;
        let resp = match transport.send(&requests::list()).await {
            Ok(resp) => resp,
            Err(e) => {
                let e =
                    CallError::new(e.status, format!("cannot list vyte's users: {}", e.message));
                if st.index.is_none() {
                    st.failed = Some(e.clone());
                }
                return Err(e);
            }
        };
        let index = Index::from_list(&resp.body);
        debug!(
            users = index.by_email.len(),
            lists = st.lists,
            "Listed vyte's users."
        );
        let id = index.find(email, extid);
        st.index = Some(index);
        Ok(Found {
            id,
            refreshed: true,
        })
    }

    async fn remember(&self, email: &str, id: &str) {
        let mut st = self.state.lock().await;
        st.index
            .get_or_insert_with(Index::default)
            .remember(email, id);
    }
}

struct Found {
    id: Option<String>,
    refreshed: bool,
}

/// vyte's `_id` for the account of `op`'s person (by email, else extid) in the
/// pass's one listing.
pub async fn lookup(
    transport: &dyn Transport,
    directory: &Directory,
    op: &Operation,
) -> Result<Option<String>, CallError> {
    let found = directory
        .find(
            transport,
            &op.email,
            Some(op.external_id.as_str()),
            Refresh::IfUnlisted,
        )
        .await?;
    Ok(found.id)
}

/// Every user `GET /v2/users` lists (vyte documents no paging), for `rosterd
/// orphans`; vyte's users carry no active flag.
pub async fn list_all(
    transport: &dyn Transport,
) -> Result<Vec<crate::providers::VendorAccount>, CallError> {
    let resp = transport.send(&requests::list()).await?;
    let users = users_in(&resp.body);
    if users.len() > crate::providers::MAX_LISTED {
        return Err(crate::providers::listing_too_long(
            crate::providers::ProviderType::Vyte,
            users.len(),
        ));
    }
    Ok(users
        .into_iter()
        .filter_map(|u| {
            Some(crate::providers::VendorAccount {
                vendor_id: user_id(u)?,
                email: emails_of(u).into_iter().next(),
                external_id: extid_of(u),
                active: None,
            })
        })
        .collect())
}

/// Carries out one unit (see [`units`]); one result per operation, in order.
pub async fn apply(
    transport: &dyn Transport,
    directory: &Directory,
    organization: Option<&str>,
    ops: &[&Operation],
) -> Vec<OpResult> {
    match ops {
        [] => Vec::new(),
        [op] => vec![apply_one(transport, directory, organization, op).await],
        many => create_batch(transport, directory, organization, many).await,
    }
}

async fn apply_one(
    transport: &dyn Transport,
    directory: &Directory,
    organization: Option<&str>,
    op: &Operation,
) -> OpResult {
    match (op.op, op.record.as_ref()) {
        (OpKind::Create, Some(r)) => create_one(transport, directory, organization, op, r).await,
        (OpKind::Update, Some(r)) => update(transport, directory, organization, op, r).await,
        (OpKind::Disable | OpKind::Enable | OpKind::Delete | OpKind::Recreate, _) => {
            Err(CallError::new(
                None,
                format!(
                    "vyte has no call to {} a user: this needs manual action at vyte",
                    op.op.as_str()
                ),
            ))
        }
        (kind, None) => Err(CallError::new(
            None,
            format!("internal: a {} operation without a record", kind.as_str()),
        )),
    }
}

/// Takes over the account vyte already has (id `id`), bringing it up to date.
async fn adopt(
    transport: &dyn Transport,
    organization: Option<&str>,
    op: &Operation,
    id: String,
    record: &Record,
) -> OpResult {
    debug!(external_id = %op.external_id, vendor_id = %id, "Adopting the account vyte has for this email.");
    transport
        .send(&requests::update(op, &id, record, organization))
        .await?;
    Ok(Applied::done(Some(id)).as_adopted())
}

async fn create_one(
    transport: &dyn Transport,
    directory: &Directory,
    organization: Option<&str>,
    op: &Operation,
    record: &Record,
) -> OpResult {
    let extid = record.get("extid");
    if let Some(id) = directory
        .find(transport, &op.email, extid, Refresh::IfUnlisted)
        .await?
        .id
    {
        return adopt(transport, organization, op, id, record).await;
    }
    match transport
        .send(&requests::create(op, record, organization))
        .await
    {
        Ok(resp) => {
            if let Some(id) = created_id(&resp.body) {
                directory.remember(&op.email, &id).await;
                return Ok(Applied::done(Some(id)));
            }
            learn_id(transport, directory, op).await
        }
        // vyte has the email after all (created since the list was read): adopt it.
        Err(e) if matches!(e.status, Some(400 | 409 | 422)) && mentions_existing(&e.message) => {
            match directory
                .find(transport, &op.email, extid, Refresh::IfMissing)
                .await?
                .id
            {
                Some(id) => adopt(transport, organization, op, id, record).await,
                None => Err(e),
            }
        }
        Err(e) => Err(e),
    }
}

/// The id of an account vyte created without saying so: from the list, refreshed
/// once per pass. Not listed after our own refresh → the create did not take.
async fn learn_id(transport: &dyn Transport, directory: &Directory, op: &Operation) -> OpResult {
    let extid = op.record.as_ref().and_then(|r| r.get("extid"));
    let found = directory
        .find(transport, &op.email, extid, Refresh::IfMissing)
        .await?;
    match found {
        Found { id: Some(id), .. } => Ok(Applied::done(Some(id))),
        Found {
            id: None,
            refreshed: true,
        } => Err(CallError::new(
            None,
            format!(
                "vyte accepted the create of {} but does not list an account with that email",
                op.email
            ),
        )),
        Found {
            id: None,
            refreshed: false,
        } => {
            // The list was already refreshed this pass: the id is looked up by email
            // when an update first needs it.
            warn!(
                external_id = %op.external_id,
                "vyte created the account without telling its id; it is looked up by email when needed."
            );
            Ok(Applied::done(None))
        }
    }
}

async fn update(
    transport: &dyn Transport,
    directory: &Directory,
    organization: Option<&str>,
    op: &Operation,
    record: &Record,
) -> OpResult {
    let extid = record.get("extid");
    let id = match &op.vendor_id {
        Some(id) => id.clone(),
        None => directory
            .find(transport, &op.email, extid, Refresh::IfMissing)
            .await?
            .id
            .ok_or_else(|| {
                CallError::new(
                    None,
                    format!(
                        "vyte lists no account for {} and rosterd has no vyte id for it: resolve by hand",
                        op.email
                    ),
                )
            })?,
    };
    match transport
        .send(&requests::update(op, &id, record, organization))
        .await
    {
        Ok(_) => Ok(Applied::done(Some(id))),
        Err(e) if e.status == Some(404) => Err(CallError::new(
            Some(404),
            format!(
                "vyte has no user {id} (for {}): {}; it may have been removed at vyte",
                op.email, e.message
            ),
        )),
        Err(e) => Err(e),
    }
}

async fn create_batch(
    transport: &dyn Transport,
    directory: &Directory,
    organization: Option<&str>,
    ops: &[&Operation],
) -> Vec<OpResult> {
    let mut out: Vec<Option<OpResult>> = vec![None; ops.len()];
    // Accounts vyte already has are adopted one by one; the rest go in the batch.
    let mut to_create: Vec<usize> = Vec::new();
    for (i, op) in ops.iter().enumerate() {
        let Some(record) = op.record.as_ref() else {
            out[i] = Some(Err(CallError::new(
                None,
                "internal: a create without a record",
            )));
            continue;
        };
        if op.op != OpKind::Create {
            out[i] = Some(apply_one(transport, directory, organization, op).await);
            continue;
        }
        match directory
            .find(
                transport,
                &op.email,
                record.get("extid"),
                Refresh::IfUnlisted,
            )
            .await
        {
            Ok(Found { id: Some(id), .. }) => {
                out[i] = Some(adopt(transport, organization, op, id, record).await);
            }
            Ok(_) => to_create.push(i),
            Err(e) => out[i] = Some(Err(e)),
        }
    }
    match to_create.as_slice() {
        [] => {}
        [i] => {
            let op = ops[*i];
            if let Some(r) = op.record.as_ref() {
                out[*i] = Some(create_one(transport, directory, organization, op, r).await);
            }
        }
        many => {
            let unit: Vec<&Operation> = many.iter().map(|&i| ops[i]).collect();
            let request = requests::batch(&unit, organization);
            match transport.send(&request).await {
                Ok(resp) => {
                    let created: Vec<&Value> = users_in(&resp.body);
                    for &i in many {
                        let op = ops[i];
                        let mine = created
                            .iter()
                            .find(|u| emails_of(u).iter().any(|e| same_email(e, &op.email)));
                        out[i] = Some(match mine.and_then(|u| user_id(u)) {
                            Some(id) => {
                                directory.remember(&op.email, &id).await;
                                Ok(Applied::done(Some(id)))
                            }
                            None => learn_id(transport, directory, op).await,
                        });
                    }
                }
                Err(e) => {
                    for &i in many {
                        out[i] = Some(Err(e.clone()));
                    }
                }
            }
        }
    }
    out.into_iter()
        .map(|r| r.unwrap_or_else(|| Err(CallError::new(None, "internal: no result"))))
        .collect()
}

fn mentions_existing(message: &str) -> bool {
    let m = message.to_lowercase();
    m.contains("exist") || m.contains("already") || m.contains("duplicate") || m.contains("taken")
}

/// The users in a list (or batch) answer: an array, or an object wrapping one
/// (`users`, `data`, `items`, `results`, or its only array).
fn users_in(body: &Value) -> Vec<&Value> {
    let array = match body {
        Value::Array(items) => Some(items),
        Value::Object(map) => ["users", "data", "items", "results"]
            .iter()
            .find_map(|k| map.get(*k).and_then(Value::as_array))
            .or_else(|| {
                let mut arrays = map.values().filter_map(Value::as_array);
                match (arrays.next(), arrays.next()) {
                    (Some(a), None) => Some(a),
                    _ => None,
                }
            }),
        _ => None,
    };
    array
        .map(|a| a.iter().filter(|v| v.is_object()).collect())
        .unwrap_or_default()
}

/// vyte's id of a user object (`_id`, else `id`; a string or a number).
fn user_id(user: &Value) -> Option<String> {
    ["_id", "id"].iter().find_map(|k| match user.get(*k)? {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    })
}

/// The id in a create answer: the user itself, or nested under `user`.
fn created_id(body: &Value) -> Option<String> {
    user_id(body).or_else(|| body.get("user").and_then(user_id))
}

/// A user's emails, lower-cased: `emails[]` (strings, or objects with `email` /
/// `address`) and `email`.
fn emails_of(user: &Value) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(items) = user.get("emails").and_then(Value::as_array) {
        for item in items {
            let email = item.as_str().or_else(|| {
                ["email", "address", "value"]
                    .iter()
                    .find_map(|k| item.get(*k).and_then(Value::as_str))
            });
            out.extend(email.map(|e| e.trim().to_lowercase()));
        }
    }
    if let Some(e) = user.get("email").and_then(Value::as_str) {
        out.push(e.trim().to_lowercase());
    }
    out.retain(|e| !e.is_empty());
    out
}

/// The stable key rosterd gave the account (`account.organization.extid`), if listed.
fn extid_of(user: &Value) -> Option<String> {
    user.pointer("/account/organization/extid")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}
