//! What `sync --dry-run --show-requests` shows for a SCIM provider: the requests a
//! pass sends, unit by unit as the executor groups them, composed from the builders
//! in `requests.rs` along the branches `client.rs` and `bulk.rs` take.
//!
//! What a service supports is only known once its `/ServiceProviderConfig` is read,
//! so the preview shows a service that announces PATCH and `/Bulk` (RFC 7644's
//! example limits) but neither filtering nor ETags, with the `patch`, `bulk` and
//! `etag` settings applied. What filtering adds (the lookups before a create, the
//! adoption of a user found, a user found when its id is not known) is shown as
//! conditional follow-ups: each is sent only when the service can filter. Without
//! filtering, the users are listed once per pass instead (shown before the first
//! operation that looks a user up).

use super::bulk::{self, Planned};
use super::client::needs_read;
use super::discovery::{BulkLimits, Effective, Features, DEFAULT_BULK_LIMITS};
use super::quirks::Quirks;
use super::requests::{self, external_id, user_name};
use super::{units, Settings};
use crate::plan::{OpKind, Operation};
use crate::providers::request::{Request, ID_FOUND_AT_SEND_TIME};
use crate::providers::Record;

/// The service the preview shows (see the module docs).
const ASSUMED: Features = Features {
    patch: true,
    bulk: Some(DEFAULT_BULK_LIMITS),
    filter: false,
    etag: false,
};

const FILTERS: &str = "the service supports filtering";

/// Follow-ups that have no request of their own to follow (when, request): shown
/// after the discovery request, whose answer says whether the service filters.
type Orphans = Vec<(String, Request)>;

/// The preview of `ops` (empty when there is nothing to do: a pass with nothing to
/// send does not even read the service's features).
/// Remembered `quirks` (see `quirks.rs`) take the fallbacks a real pass takes.
pub fn build(ops: &[Operation], settings: &Settings, quirks: &Quirks) -> Vec<Request> {
    if ops.is_empty() {
        return Vec::new();
    }
    let eff = Effective::new(
        &ASSUMED,
        settings.patch,
        settings.bulk,
        settings.etag,
        settings.bulk_size,
    )
    .with_filter(settings.filter, &ASSUMED)
    .with_quirks(quirks, settings);
    let mut out = Vec::new();
    let mut orphans = Orphans::new();
    let mut listed = false;
    for unit in units(ops, settings) {
        let unit: Vec<&Operation> = unit.iter().filter_map(|&i| ops.get(i)).collect();
        match eff.bulk {
            Some(limits) if unit.len() > 1 => {
                bulk_unit(&unit, &eff, limits, &mut out, &mut orphans, &mut listed);
            }
            _ => {
                for op in unit {
                    one(op, &eff, &mut out, &mut orphans, &mut listed);
                }
            }
        }
    }
    let discovery = requests::discovery().with_note(
        "read once per pass: PATCH, /Bulk (maxOperations, maxPayloadSize), filter and ETag support decide the requests below, shown for a service with PATCH and /Bulk but no filtering or ETags (as the settings allow)",
    );
    let discovery = orphans
        .into_iter()
        .fold(discovery, |d, (when, r)| d.then_if(&when, r));
    std::iter::once(discovery).chain(out).collect()
}

/// Without filtering, the first lookup of the pass lists `/Users` (see
/// `client::find`): shown once, before the requests of the first operation that
/// looks a user up.
fn listing(eff: &Effective, listed: &mut bool, out: &mut Vec<Request>) {
    if eff.filter || *listed {
        return;
    }
    *listed = true;
    out.push(
        requests::list_page(1)
            .with_note("the service cannot filter: its users are listed once per pass to find those to adopt")
            .then_if(
                "totalResults is more than one page: the next pages, until it is reached",
                requests::list_page(requests::LIST_COUNT + 1),
            ),
    );
}

/// The lookups by userName, then externalId, of one user (see `client::find`).
fn finds(op: &Operation) -> [Request; 2] {
    [
        requests::find(op, "userName", &user_name(op)),
        requests::find(op, "externalId", &external_id(op)),
    ]
}

/// A write to user `id`, read first when the write needs the current resource (for
/// a PUT, or its version for `If-Match`), as `client::modify` sends it.
fn modify(
    op: &Operation,
    eff: &Effective,
    id: &str,
    record: Option<&Record>,
    active: Option<bool>,
) -> Vec<Request> {
    let mut write = requests::write(op, eff, id, None, record, active);
    if eff.patch {
        write = write.then_if(
            "the answer carries no User resource (204, or a bare id) and no PATCH of emails / phoneNumbers has checked out yet this pass: read back to compare with what was meant (a merge or an ignored change is redone as a read and a PUT)",
            requests::read(op, id),
        );
    }
    if needs_read(eff) {
        vec![
            requests::read(op, id),
            write.with_note("the resource as read, with If-Match its version when ETags are used"),
        ]
    } else {
        vec![write]
    }
}

/// The requests of one operation sent on its own (`client::apply_one`).
fn one(
    op: &Operation,
    eff: &Effective,
    out: &mut Vec<Request>,
    orphans: &mut Orphans,
    listed: &mut bool,
) {
    let record = op.record.as_ref();
    let looks_up = match op.op {
        OpKind::Create | OpKind::Recreate => record.is_some(),
        _ => op.vendor_id.is_none(),
    };
    if looks_up {
        listing(eff, listed, out);
    }
    match (op.op, record) {
        (OpKind::Create, Some(r)) => out.push(create(op, eff, r)),
        (OpKind::Update, r) => change(op, eff, r, None, out, orphans),
        (OpKind::Enable, r) => change(op, eff, r, Some(true), out, orphans),
        (OpKind::Disable, _) => change(op, eff, None, Some(false), out, orphans),
        (OpKind::Delete, _) => match op.vendor_id.as_deref() {
            Some(id) => out.push(requests::delete(op, id)),
            None => {
                let when = format!("{FILTERS} ({} has no known id)", op.external_id);
                let [by_name, _] = finds(op);
                orphans.push((when.clone(), by_name));
                orphans.push((when, requests::delete(op, ID_FOUND_AT_SEND_TIME)));
            }
        },
        (OpKind::Recreate, Some(r)) => {
            out.push(create(op, eff, r));
            // Without the old id: reported as manual action, nothing more sent.
            if let Some(old) = op.vendor_id.as_deref() {
                out.extend(modify(op, eff, old, None, Some(false)));
            }
        }
        (_, None) => {}
    }
}

/// A create, with what filtering adds: the lookups before it, and the adoption of a
/// user found instead of it.
fn create(op: &Operation, eff: &Effective, record: &Record) -> Request {
    let [by_name, by_external_id] = finds(op);
    let adopt = requests::write(
        op,
        eff,
        ID_FOUND_AT_SEND_TIME,
        None,
        Some(record),
        Some(true),
    )
    .with_note("{id}: the user found, brought up to date and activated (with a `remove` of phoneNumbers when the user found has a phone the source does not)");
    requests::create(op, record)
        .then_if(&format!("{FILTERS}: first, before the POST"), by_name)
        .then_if(
            &format!("{FILTERS} and no user has the userName"),
            by_external_id,
        )
        .then_if(
            "a lookup finds the user (or the POST is refused as a duplicate, 409): it is adopted instead",
            adopt,
        )
}

/// An update, enable or disable: by the known id, else by the id a lookup finds.
fn change(
    op: &Operation,
    eff: &Effective,
    record: Option<&Record>,
    active: Option<bool>,
    out: &mut Vec<Request>,
    orphans: &mut Orphans,
) {
    let [by_name, _] = finds(op);
    let found = requests::write(op, eff, ID_FOUND_AT_SEND_TIME, None, record, active)
        .with_note("{id}: the user found");
    match op.vendor_id.as_deref() {
        Some(id) => {
            let mut sent = modify(op, eff, id, record, active);
            if let Some(last) = sent.pop() {
                let when = format!("the service no longer knows {id} (404) and {FILTERS}");
                sent.push(last.then_if(&when, by_name).then_if(&when, found));
            }
            out.extend(sent);
        }
        None => {
            let when = format!("{FILTERS} ({} has no known id)", op.external_id);
            orphans.push((when.clone(), by_name));
            orphans.push((when, found));
        }
    }
}

/// A unit sent through `/Bulk` (`bulk::apply`): its writes in requests within the
/// limits, then what `/Bulk` cannot carry, one by one.
fn bulk_unit(
    ops: &[&Operation],
    eff: &Effective,
    limits: BulkLimits,
    out: &mut Vec<Request>,
    orphans: &mut Orphans,
    listed: &mut bool,
) {
    if !bulk::lookup_groups(ops, eff).is_empty() {
        listing(eff, listed, out);
    }
    let mut entries = Vec::new();
    let mut one_by_one = Vec::new();
    // Nothing is found without filtering: no user is adopted, none written by a
    // found id.
    for (i, op) in ops.iter().enumerate() {
        match bulk::plan_entry(i, op, eff, None) {
            Planned::Entry(e) => entries.push(e),
            Planned::Done(_) => {}
            Planned::OneByOne => one_by_one.push(i),
        }
    }
    let sizes: Vec<usize> = entries.iter().map(|e| e.json.to_string().len()).collect();
    let (chunks, too_big) = bulk::chunk_by_limits(&sizes, limits, bulk::envelope_size());
    one_by_one.extend(too_big.iter().map(|&k| entries[k].op));
    let lookups: Vec<Request> = bulk::lookup_groups(ops, eff)
        .iter()
        .map(|g| bulk::lookup_request(ops, g))
        .collect();
    let when = format!("{FILTERS}: first, the unit's users looked up a few per request (those found are adopted, or written by the id found)");
    let mut requests = chunks.iter().map(|chunk| {
        let chunk: Vec<&bulk::Entry> = chunk.iter().map(|&k| &entries[k]).collect();
        bulk::bulk_request(ops, &chunk)
            .with_note("each operation's result decides it; a 409 or 412 goes one by one")
    });
    match requests.next() {
        Some(first) => {
            out.push(lookups.into_iter().fold(first, |r, l| r.then_if(&when, l)));
            out.extend(requests);
        }
        None => orphans.extend(lookups.into_iter().map(|l| (when.clone(), l))),
    }
    for i in one_by_one {
        if let Some(op) = ops.get(i) {
            one(op, eff, out, orphans, listed);
        }
    }
}
