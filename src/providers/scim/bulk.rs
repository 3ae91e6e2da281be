//! Carrying out a unit of operations through SCIM `/Bulk` (RFC 7644 §3.7).
//!
//! The users a unit needs are looked up first with few filter requests (`userName eq
//! … or externalId eq … or id eq …`, [`LOOKUPS_PER_FILTER`] users each): that finds
//! the users to adopt and, when writes need them, the current resources and versions.
//! The writes then go in `/Bulk` requests that respect the service's `maxOperations`
//! and `maxPayloadSize`, and each operation's own result in the BulkResponse decides
//! its outcome. What `/Bulk` cannot settle — a recreate, a 409 or 412 answer, an
//! operation too large for one request — goes one by one through `client.rs`.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use super::client::{self, matches_attr, needs_read, resource_id, resources};
use super::quirks::Quirk;
use super::discovery::{BulkLimits, Effective};
use super::requests::{self, user_name, BULK_SCHEMA, LOOKUPS_PER_FILTER};
use crate::plan::{OpKind, Operation};
use crate::providers::call::{Applied, CallError, OpResult, Transport};

/// One write in a BulkRequest, for operation `op` of the unit.
pub struct Entry {
    pub op: usize,
    pub method: &'static str,
    /// The user's id, when known (every method but POST).
    pub id: Option<String>,
    pub json: Value,
}

/// Carries out `ops` (two or more) through `/Bulk`; one result per operation, in order.
pub async fn apply(
    transport: &dyn Transport,
    ops: &[&Operation],
    eff: &Effective,
    limits: BulkLimits,
) -> Vec<OpResult> {
    let mut results: Vec<Option<OpResult>> = (0..ops.len()).map(|_| None).collect();
    let mut one_by_one: Vec<usize> = Vec::new();
    let found = lookup(transport, ops, eff, &mut results).await;
    let mut entries = Vec::new();
    for (i, op) in ops.iter().enumerate() {
        if results[i].is_some() {
            continue;
        }
        match plan_entry(i, op, eff, found.get(&i)) {
            Planned::Entry(e) => entries.push(e),
            Planned::Done(r) => results[i] = Some(r),
            Planned::OneByOne => one_by_one.push(i),
        }
    }
    let sizes: Vec<usize> = entries.iter().map(|e| e.json.to_string().len()).collect();
    let (chunks, too_big) = chunk_by_limits(&sizes, limits, envelope_size());
    one_by_one.extend(too_big.iter().map(|&k| entries[k].op));
    for chunk in chunks {
        let chunk: Vec<&Entry> = chunk.iter().map(|&k| &entries[k]).collect();
        send_chunk(transport, ops, eff, &chunk, &mut results, &mut one_by_one).await;
    }
    for i in one_by_one {
        if let Some(op) = ops.get(i) {
            results[i] = Some(client::apply_one(transport, op, eff).await);
        }
    }
    results
        .into_iter()
        .map(|r| {
            r.unwrap_or_else(|| {
                Err(CallError::new(
                    None,
                    "internal: no result for the operation",
                ))
            })
        })
        .collect()
}

/// Bytes of a BulkRequest with no operations: `{"schemas":[…],"Operations":[]}`.
pub fn envelope_size() -> usize {
    json!({ "schemas": [BULK_SCHEMA], "Operations": [] })
        .to_string()
        .len()
}

/// Splits entries of `sizes` bytes into requests of at most `max_operations`
/// entries and `max_payload_size` bytes (with `overhead` for the envelope and one
/// byte per separating comma). Returns the chunks (indices, in order) and the entries
/// too large for any request.
pub fn chunk_by_limits(
    sizes: &[usize],
    limits: BulkLimits,
    overhead: usize,
) -> (Vec<Vec<usize>>, Vec<usize>) {
    let max_ops = limits.max_operations.max(1);
    let mut chunks: Vec<Vec<usize>> = Vec::new();
    let mut too_big = Vec::new();
    let mut current: Vec<usize> = Vec::new();
    let mut bytes = overhead;
    for (k, &size) in sizes.iter().enumerate() {
        if overhead + size > limits.max_payload_size {
            too_big.push(k);
            continue;
        }
        let comma = usize::from(!current.is_empty());
        if current.len() == max_ops || bytes + comma + size > limits.max_payload_size {
            chunks.push(std::mem::take(&mut current));
            bytes = overhead;
        }
        bytes += usize::from(!current.is_empty()) + size;
        current.push(k);
    }
    if !current.is_empty() {
        chunks.push(current);
    }
    (chunks, too_big)
}

/// Whether the operation needs a lookup, and by what: `Some(true)` by id (its current
/// resource), `Some(false)` by userName / externalId.
fn lookup_kind(op: &Operation, eff: &Effective) -> Option<bool> {
    match (op.op, op.vendor_id.is_some()) {
        (OpKind::Recreate, _) => None,
        (OpKind::Create, _) | (_, false) => Some(false),
        (OpKind::Delete, true) => None,
        (_, true) => needs_read(eff).then_some(true),
    }
}

/// The lookups a unit needs: operations (index, by id) in groups of
/// [`LOOKUPS_PER_FILTER`], one filter request each.
pub fn lookup_groups(ops: &[&Operation], eff: &Effective) -> Vec<Vec<(usize, bool)>> {
    let wanted: Vec<(usize, bool)> = ops
        .iter()
        .enumerate()
        .filter_map(|(i, op)| lookup_kind(op, eff).map(|by_id| (i, by_id)))
        .collect();
    wanted
        .chunks(LOOKUPS_PER_FILTER)
        .map(<[(usize, bool)]>::to_vec)
        .collect()
}

/// The filter request of one lookup group (see [`lookup_groups`]).
pub fn lookup_request(ops: &[&Operation], group: &[(usize, bool)]) -> crate::providers::Request {
    let group: Vec<(&Operation, bool)> = group.iter().map(|&(i, by_id)| (ops[i], by_id)).collect();
    requests::lookup(&group)
}

/// Looks up the users the unit needs, a few per filter request; a failed lookup
/// fails its operations (retried next pass).
async fn lookup(
    transport: &dyn Transport,
    ops: &[&Operation],
    eff: &Effective,
    results: &mut [Option<OpResult>],
) -> BTreeMap<usize, Value> {
    let mut found = BTreeMap::new();
    if !eff.filter {
        // No filter: the users the pass listed (read on first use), if any.
        let Some(listing) = &eff.listing else {
            return found;
        };
        let wanted: Vec<(usize, bool)> = lookup_groups(ops, eff).into_iter().flatten().collect();
        if wanted.is_empty() {
            return found;
        }
        match listing.0.get_or_try_init(|| client::list_all(transport)).await {
            Ok(listed) => {
                for &(i, by_id) in &wanted {
                    if let Some(u) = match_listed(ops[i], by_id, listed) {
                        found.insert(i, u.clone());
                    }
                }
            }
            Err(e) => {
                for &(i, _) in &wanted {
                    results[i] = Some(Err(e.clone()));
                }
            }
        }
        return found;
    }
    for group in lookup_groups(ops, eff) {
        let group = group.as_slice();
        let request = lookup_request(ops, group);
        match transport.send(&request).await {
            // Filtering refused despite the announcement: the listed users instead,
            // for this unit and (remembered) from now on.
            Err(e) if matches!(e.status, Some(400 | 405 | 501)) && eff.listing.is_some() => {
                eff.learn(
                    Quirk::FilterUnusable,
                    format!("a filtered GET /Users: {}", e.message),
                );
                let listed = Effective {
                    filter: false,
                    ..eff.clone()
                };
                return Box::pin(lookup(transport, ops, &listed, results)).await;
            }
            Ok(resp) => {
                let listed = resources(&resp);
                for &(i, by_id) in group {
                    if let Some(u) = match_listed(ops[i], by_id, &listed) {
                        found.insert(i, u.clone());
                    }
                }
            }
            Err(e) => {
                for &(i, _) in group {
                    results[i] = Some(Err(e.clone()));
                }
            }
        }
    }
    found
}

/// The user of `listed` that `op` is about: by its id (`by_id`), else by userName,
/// then externalId.
fn match_listed<'l>(op: &Operation, by_id: bool, listed: &'l [Value]) -> Option<&'l Value> {
    if by_id {
        let id = op.vendor_id.as_deref();
        return listed.iter().find(|u| resource_id(u).as_deref() == id);
    }
    let name = user_name(op);
    listed
        .iter()
        .find(|u| matches_attr(u, "userName", &name))
        .or_else(|| {
            listed
                .iter()
                .find(|u| matches_attr(u, "externalId", &op.external_id))
        })
}

/// What becomes of one operation of a `/Bulk` unit.
pub enum Planned {
    Entry(Entry),
    Done(OpResult),
    OneByOne,
}

/// The `/Bulk` write for operation `i`, given the user the lookup found.
pub fn plan_entry(i: usize, op: &Operation, eff: &Effective, found: Option<&Value>) -> Planned {
    let bulk_id = format!("op{i}");
    let record = op.record.as_ref();
    let (record, active) = match op.op {
        OpKind::Recreate => return Planned::OneByOne,
        OpKind::Create => match (record, found) {
            (Some(r), None) => {
                let json = requests::bulk_create(&bulk_id, r);
                return Planned::Entry(Entry {
                    op: i,
                    method: "POST",
                    id: None,
                    json,
                });
            }
            // Adopted: updated and activated.
            (Some(r), Some(_)) => (Some(r), Some(true)),
            (None, _) => {
                return Planned::Done(Err(CallError::new(
                    None,
                    "internal: a create operation without a record",
                )))
            }
        },
        OpKind::Update => (record, None),
        OpKind::Enable => (record, Some(true)),
        OpKind::Disable => (None, Some(false)),
        OpKind::Delete => {
            let id = op.vendor_id.clone().or_else(|| found.and_then(resource_id));
            let Some(id) = id else {
                // The service has no such user (any more): nothing to delete.
                return Planned::Done(Ok(Applied::done(None)));
            };
            let json = requests::bulk_delete(&bulk_id, &id);
            return Planned::Entry(Entry {
                op: i,
                method: "DELETE",
                id: Some(id),
                json,
            });
        }
    };
    let id = op.vendor_id.clone().or_else(|| found.and_then(resource_id));
    let Some(id) = id else {
        return Planned::OneByOne;
    };
    if needs_read(eff) && found.is_none() {
        // The lookup did not return it (or could not filter): read it on its own.
        return Planned::OneByOne;
    }
    let (method, json) = requests::bulk_write(op, &bulk_id, eff, &id, found, record, active);
    Planned::Entry(Entry {
        op: i,
        method,
        id: Some(id),
        json,
    })
}

/// The BulkRequest of one chunk of entries.
pub fn bulk_request(ops: &[&Operation], chunk: &[&Entry]) -> crate::providers::Request {
    requests::bulk(
        chunk.iter().map(|e| e.json.clone()).collect(),
        chunk
            .iter()
            .map(|e| ops[e.op].external_id.clone())
            .collect(),
    )
}

/// Sends one BulkRequest and records each operation's result; 409 / 412 answers, a
/// request too large for the service (413) and a missing `/Bulk` (501 / 405: remembered
/// as a quirk) go one by one.
async fn send_chunk(
    transport: &dyn Transport,
    ops: &[&Operation],
    eff: &Effective,
    chunk: &[&Entry],
    results: &mut [Option<OpResult>],
    one_by_one: &mut Vec<usize>,
) {
    let request = bulk_request(ops, chunk);
    let resp = match transport.send(&request).await {
        Ok(resp) => resp,
        // Too large for the service after all, or /Bulk not there despite its
        // ServiceProviderConfig: the same operations, one by one.
        Err(e) if matches!(e.status, Some(413 | 501 | 405)) => {
            if e.status != Some(413) {
                eff.learn(
                    Quirk::BulkUnusable,
                    format!("POST /Bulk: {}", e.message),
                );
            }
            one_by_one.extend(chunk.iter().map(|e| e.op));
            return;
        }
        Err(e) => {
            for entry in chunk {
                results[entry.op] = Some(Err(e.clone()));
            }
            return;
        }
    };
    let answers = resp
        .body
        .get("Operations")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for (k, entry) in chunk.iter().enumerate() {
        let bulk_id = entry.json.get("bulkId").and_then(Value::as_str);
        // Matched by bulkId; by position when the service does not echo it.
        let answer = answers
            .iter()
            .find(|a| a.get("bulkId").and_then(Value::as_str) == bulk_id && bulk_id.is_some())
            .or_else(|| answers.get(k).filter(|a| a.get("bulkId").is_none()));
        let Some(answer) = answer else {
            results[entry.op] = Some(Err(CallError::new(
                None,
                "the SCIM /Bulk response has no result for this operation",
            )));
            continue;
        };
        match outcome(entry, answer) {
            // A create answered without the new user's id: one by one, the create
            // looks the user up first (and adopts it) before it would POST again.
            Outcome::Done(None) if entry.method == "POST" && eff.filter => {
                one_by_one.push(entry.op);
            }
            Outcome::Done(None) if entry.method == "POST" => {
                results[entry.op] = Some(Ok(Applied::Manual {
                    vendor_id: None,
                    reason: "the SCIM /Bulk response confirms the create without the user's id, and the service cannot filter to look it up: check the account by hand".into(),
                }));
            }
            Outcome::Done(id) => results[entry.op] = Some(Ok(Applied::done(id))),
            Outcome::OneByOne => one_by_one.push(entry.op),
            Outcome::Failed(e) => results[entry.op] = Some(Err(e)),
        }
    }
}

enum Outcome {
    Done(Option<String>),
    OneByOne,
    Failed(CallError),
}

/// One operation's result in a BulkResponse.
fn outcome(entry: &Entry, answer: &Value) -> Outcome {
    let status = match answer.get("status") {
        Some(Value::String(s)) => s.trim().parse::<u16>().ok(),
        Some(Value::Number(n)) => n.as_u64().and_then(|n| u16::try_from(n).ok()),
        // RFC 7644 once had `{"code": …}` objects here.
        Some(Value::Object(o)) => o.get("code").and_then(|c| {
            c.as_str()
                .and_then(|s| s.parse().ok())
                .or(c.as_u64().and_then(|n| u16::try_from(n).ok()))
        }),
        _ => None,
    };
    match status {
        Some(200..=299) => {
            let id = entry.id.clone().or_else(|| {
                answer
                    .get("location")
                    .and_then(Value::as_str)
                    .and_then(id_from_location)
                    .or_else(|| answer.get("response").and_then(resource_id))
            });
            Outcome::Done(id)
        }
        Some(404) if entry.method == "DELETE" => Outcome::Done(entry.id.clone()),
        // A user made in between (adopted one by one), or changed since it was read.
        Some(409 | 412) => Outcome::OneByOne,
        status => {
            let message = answer
                .get("response")
                .and_then(requests::error_message)
                .unwrap_or_else(|| match status {
                    Some(s) => format!("HTTP {s}"),
                    None => "the SCIM /Bulk response gives no status for this operation".into(),
                });
            Outcome::Failed(CallError::new(status, message))
        }
    }
}

/// The id at the end of a resource's location URL.
pub fn id_from_location(location: &str) -> Option<String> {
    let last = location.trim_end_matches('/').rsplit('/').next()?;
    let id = url::form_urlencoded::parse(format!("x={last}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())?;
    (!id.is_empty()).then_some(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(ops: usize, bytes: usize) -> BulkLimits {
        BulkLimits {
            max_operations: ops,
            max_payload_size: bytes,
        }
    }

    #[test]
    fn chunks_respect_max_operations() {
        let (chunks, too_big) = chunk_by_limits(&[10; 7], limits(3, 10_000), 20);
        assert_eq!(chunks, vec![vec![0, 1, 2], vec![3, 4, 5], vec![6]]);
        assert!(too_big.is_empty());
    }

    #[test]
    fn chunks_respect_max_payload_size_counting_envelope_and_commas() {
        // overhead 10: 10 + 40 + 1 + 40 = 91 fits in 100; a third would make 132.
        let (chunks, _) = chunk_by_limits(&[40, 40, 40, 40, 40], limits(100, 100), 10);
        assert_eq!(chunks, vec![vec![0, 1], vec![2, 3], vec![4]]);
        // Exactly at the limit still fits: 10 + 44 + 1 + 45 = 100.
        let (chunks, _) = chunk_by_limits(&[44, 45], limits(100, 100), 10);
        assert_eq!(chunks, vec![vec![0, 1]]);
    }

    #[test]
    fn an_entry_larger_than_the_payload_limit_is_set_aside() {
        let (chunks, too_big) = chunk_by_limits(&[10, 95, 10], limits(100, 100), 10);
        assert_eq!(chunks, vec![vec![0, 2]]);
        assert_eq!(too_big, vec![1]);
    }

    #[test]
    fn ids_come_from_locations() {
        assert_eq!(
            id_from_location("http://h/v2/Users/abc123").as_deref(),
            Some("abc123")
        );
        assert_eq!(id_from_location("/Users/a%20b/").as_deref(), Some("a b"));
        assert_eq!(id_from_location(""), None);
    }

    #[test]
    fn bulk_answers_become_outcomes() {
        let post = Entry {
            op: 0,
            method: "POST",
            id: None,
            json: json!({}),
        };
        match outcome(
            &post,
            &json!({"status": "201", "location": "http://h/Users/u1"}),
        ) {
            Outcome::Done(id) => assert_eq!(id.as_deref(), Some("u1")),
            _ => panic!("201 is done"),
        }
        assert!(matches!(
            outcome(&post, &json!({"status": "409"})),
            Outcome::OneByOne
        ));
        let bad = json!({"status": "400", "response": {"status": "400", "scimType": "invalidValue", "detail": "bad email"}});
        match outcome(&post, &bad) {
            Outcome::Failed(e) => {
                assert_eq!(e.status, Some(400));
                assert_eq!(e.message, "bad email (scimType invalidValue, status 400)");
            }
            _ => panic!("400 fails"),
        }
        let delete = Entry {
            op: 1,
            method: "DELETE",
            id: Some("u2".into()),
            json: json!({}),
        };
        assert!(matches!(
            outcome(&delete, &json!({"status": 404})),
            Outcome::Done(_)
        ));
    }
}
