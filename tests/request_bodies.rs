//! Every request body rosterd would send, for every kind of operation and every
//! vendor, validated against that vendor's published request schema (OpenAPI copies
//! under tests/fixtures/openapi/; vyte, which publishes none, against the shape its
//! documents show) — both as `--show-requests` previews them and as `Provider::apply`
//! really sends them (through a recording transport answering as the vendor does
//! when all goes well), and the two must be the same requests.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::support;

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Mutex;

use chrono::NaiveDate;
use serde_json::{json, Value};

use rosterd::config::Config;
use rosterd::plan::{plan_provider, OpKind, Operation, PlanContext};
use rosterd::providers::call::{Applied, BoxFuture, CallError, Response, Transport};
use rosterd::providers::{self, Provider, Request};
use rosterd::store::{AccountState, RowDetails, SnapshotRow};
use rosterd::user::User;
use support::openapi::body_schema;

fn fixture(name: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/openapi")
        .join(name);
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

/// Whether an OpenAPI path template (`/v1/org/{orgId}/user`) matches a request path.
fn matches(template: &str, path: &str) -> bool {
    let (t, p): (Vec<&str>, Vec<&str>) = (template.split('/').collect(), path.split('/').collect());
    t.len() == p.len()
        && t.iter()
            .zip(&p)
            .all(|(a, b)| (a.starts_with('{') && !b.is_empty()) || a == b)
}

/// The request body schema of `method path` in an OpenAPI document, with the document's
/// components alongside so that `$ref`s resolve.
fn request_schema(openapi: &Value, method: &str, path: &str) -> Option<Value> {
    let (_, ops) = openapi["paths"]
        .as_object()?
        .iter()
        .find(|(t, _)| matches(t, path))?;
    let op = &ops[method.to_lowercase()];
    assert!(!op.is_null(), "the vendor's API has no {method} {path}");
    let schema = &op["requestBody"]["content"]["application/json"]["schema"];
    (!schema.is_null()).then(|| body_schema(openapi, schema))
}

fn validate(vendor: &str, schema: &Value, request: &Request) {
    let body = request.body.as_ref().unwrap_or_else(|| {
        panic!(
            "{vendor}: {} {} has a schema but no body",
            request.method, request.path
        )
    });
    let validator = jsonschema::validator_for(schema).unwrap();
    let errors: Vec<String> = validator
        .iter_errors(body)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "{vendor}: {} {} body {body} breaks the schema: {errors:?}",
        request.method,
        request.path
    );
}

fn check_against_openapi(vendor: &str, openapi: &Value, requests: &[Request]) {
    for r in requests {
        match request_schema(
            openapi,
            r.method,
            r.path.split('?').next().unwrap_or_default(),
        ) {
            Some(schema) => validate(vendor, &schema, r),
            None => assert!(
                r.body.is_none(),
                "{vendor}: {} {} sends a body the API does not take",
                r.method,
                r.path
            ),
        }
    }
}

/// The example config's users, a snapshot in which some are already pushed (one of
/// them disabled), and a source in which one was renamed and one left: every kind of
/// operation, for every provider.
fn requests_for(provider_name: &str) -> (Vec<Request>, BTreeSet<OpKind>) {
    let (provider, ops) = planned(provider_name, ("", ""));
    let kinds = ops.iter().map(|o| o.op).collect();
    (provider.requests(&ops), kinds)
}

/// The provider `provider_name` of the example config (with the text `edit.0`
/// replaced by `edit.1`) and its planned operations (see [`requests_for`]).
fn planned(provider_name: &str, edit: (&str, &str)) -> (Box<dyn Provider>, Vec<Operation>) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let config = Config::from_yaml(
        &std::fs::read_to_string(root.join("config/example.yaml"))
            .unwrap()
            .replacen(edit.0, edit.1, usize::from(!edit.0.is_empty())),
        &root.join("config/example.yaml"),
        &|_| None,
    )
    .unwrap();
    let pc = config
        .providers
        .iter()
        .find(|p| p.name == provider_name)
        .unwrap();
    let provider = providers::build(pc);
    let today = NaiveDate::from_ymd_opt(2026, 11, 24).unwrap();
    let ctx = PlanContext {
        today,
        provision_days_before_start: 7,
        held: BTreeSet::new(),
        quarantine_after: 5,
        failures: Default::default(),
        unsettled: Default::default(),
        uncertain: Default::default(),
        leavers: Default::default(),
        groups: Default::default(),
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let loaded = runtime
        .block_on(rosterd::source::from_config(&config.source).load())
        .unwrap();
    let in_scope: Vec<&User> = loaded
        .users
        .iter()
        .filter(|u| pc.scope.matches(u) && provider.map_user(u).is_ok())
        .collect();
    assert!(
        in_scope.len() >= 4,
        "{provider_name}: the example needs at least 4 users in scope"
    );

    // Pushed earlier: all but the first two (which are still to create); the third is
    // disabled (to enable), the fourth was pushed with another name (to update).
    let mut snapshot: Vec<SnapshotRow> = in_scope[2..]
        .iter()
        .map(|u| row(provider.as_ref(), u))
        .collect();
    snapshot[0].state = AccountState::Disabled;
    let mut renamed = (*in_scope[3]).clone();
    renamed.last_name.push_str("-Old");
    snapshot[1] = row(provider.as_ref(), &renamed);
    // And one who left the source since (to disable).
    let mut leaver = (*in_scope[3]).clone();
    leaver.external_id = "Z9999".into();
    leaver.email = "leaver@example.com".into();
    snapshot.push(row(provider.as_ref(), &leaver));
    snapshot.sort_by(|a, b| a.external_id.cmp(&b.external_id));

    let plan = plan_provider(provider.as_ref(), pc, &loaded.users, &snapshot, &ctx).unwrap();
    (provider, plan.operations)
}

/// A vendor answering every request through `answer` (a status and body: one of 400
/// or more is the transport's error, with the body's `message`), and keeping every
/// request it was sent.
struct Recorder {
    answer: fn(&Request) -> (u16, Value),
    log: Mutex<Vec<Request>>,
}

impl Transport for Recorder {
    fn send<'a>(&'a self, request: &'a Request) -> BoxFuture<'a, Result<Response, CallError>> {
        self.log.lock().unwrap().push(request.clone());
        let (status, body) = (self.answer)(request);
        let answer = if status >= 400 {
            let message = body["message"].as_str().unwrap_or("refused").to_string();
            Err(CallError::new(Some(status), message))
        } else {
            Ok(Response { status, body })
        };
        Box::pin(async move { answer })
    }
}

/// What a provider's plan (see [`requests_for`]) previews, and what its `apply` really
/// sends, unit by unit as the executor groups them, to a vendor answering with
/// `answer`; every operation must be confirmed.
struct Sent {
    preview: Vec<Request>,
    sent: Vec<Request>,
    kinds: BTreeSet<OpKind>,
}

fn sent_for(provider_name: &str, answer: fn(&Request) -> (u16, Value)) -> Sent {
    sent_with(provider_name, ("", ""), answer)
}

/// [`sent_for`] with the example config edited (see [`planned`]).
fn sent_with(
    provider_name: &str,
    edit: (&str, &str),
    answer: fn(&Request) -> (u16, Value),
) -> Sent {
    let (provider, ops) = planned(provider_name, edit);
    let recorder = Recorder {
        answer,
        log: Mutex::new(Vec::new()),
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    for unit in provider.units(&ops) {
        let unit: Vec<&Operation> = unit.iter().map(|&i| &ops[i]).collect();
        let results = runtime.block_on(provider.apply(&recorder, &unit));
        assert_eq!(results.len(), unit.len());
        for (op, result) in unit.iter().zip(results) {
            assert!(
                matches!(result, Ok(Applied::Done { .. })),
                "{provider_name}: {} {} was not confirmed: {result:?}",
                op.op.as_str(),
                op.external_id
            );
        }
    }
    Sent {
        preview: provider.requests(&ops),
        sent: recorder.log.into_inner().unwrap(),
        kinds: ops.iter().map(|o| o.op).collect(),
    }
}

/// A request as compared between preview and sending: method, path, body (a generated
/// password shown as the preview's placeholder) and its own headers.
fn shown(r: &Request) -> (String, String, Option<Value>, Vec<(&'static str, String)>) {
    let mut body = r.body.clone();
    if let Some(Value::Object(b)) = &mut body {
        if let Some(p) = b.get_mut("password") {
            *p = json!("<generated at send time, never shown>");
        }
    }
    (
        r.method.to_string(),
        r.path.clone(),
        body,
        r.headers.clone(),
    )
}

/// The preview's requests (not its conditional follow-ups) are exactly those sent, in
/// order; a difference names the operations it is about.
fn assert_sent_as_previewed(vendor: &str, preview: &[Request], sent: &[Request]) {
    for (k, (p, s)) in preview.iter().zip(sent).enumerate() {
        assert_eq!(
            shown(p),
            shown(s),
            "{vendor}: request {k} (for {:?}) is sent otherwise than previewed",
            s.external_ids
        );
    }
    let rest = |r: &[Request]| -> Vec<String> {
        r.iter()
            .map(|r| format!("{} {} {:?}", r.method, r.path, r.external_ids))
            .collect()
    };
    assert_eq!(
        preview.len(),
        sent.len(),
        "{vendor}: previewed but not sent: {:?}; sent but not previewed: {:?}",
        rest(preview.get(sent.len()..).unwrap_or_default()),
        rest(sent.get(preview.len()..).unwrap_or_default())
    );
}

/// Each request sent is one the preview shows, unconditionally or as a conditional
/// follow-up (a `{id}` segment of the preview's path standing for the id found at
/// send time): for answers that take the other branches.
fn assert_each_sent_is_previewed(vendor: &str, preview: &[Request], sent: &[Request]) {
    let all = with_conditional(preview);
    let same_path = |template: &str, path: &str| {
        let (t, p): (Vec<&str>, Vec<&str>) =
            (template.split('/').collect(), path.split('/').collect());
        t.len() == p.len() && t.iter().zip(&p).all(|(a, b)| *a == "{id}" || a == b)
    };
    for s in sent {
        let (method, path, body, headers) = shown(s);
        assert!(
            all.iter().any(|p| {
                let (pm, pp, pb, ph) = shown(p);
                pm == method && same_path(&pp, &path) && pb == body && ph == headers
            }),
            "{vendor}: {method} {path} {body:?} is sent but not previewed"
        );
    }
}

/// Every request of a preview with its conditional follow-ups, depth first.
fn with_conditional(requests: &[Request]) -> Vec<Request> {
    requests
        .iter()
        .flat_map(|r| {
            let mut v = vec![r.clone()];
            v.extend(with_conditional(&r.conditional));
            v
        })
        .collect()
}

/// The vendor's id in a path ending `/<id>` (or `/<id>/<action>`), for answers.
fn last_segment(path: &str) -> String {
    path.split('?')
        .next()
        .unwrap_or_default()
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .to_string()
}

/// hesh as the guide shows it: the user created or updated (with an id), the batch's
/// created users as an array, a message for a disable.
fn hesh_answers(r: &Request) -> (u16, Value) {
    let user = |u: &Value| {
        let mut u = u.clone();
        u["id"] = json!(format!(
            "h-{}",
            u["external_user_id"].as_str().unwrap_or("")
        ));
        u
    };
    let body = r.body.clone().unwrap_or(Value::Null);
    match (r.method, r.path.as_str()) {
        ("POST", "/api/v1/public/users/batch") => (
            201,
            Value::Array(body["users"].as_array().unwrap().iter().map(user).collect()),
        ),
        ("POST" | "PUT", _) => (if r.method == "POST" { 201 } else { 200 }, user(&body)),
        ("PATCH", _) => (200, json!({"message": "User disabled successfully"})),
        other => panic!("hesh has no {other:?}"),
    }
}

/// saleschat: `{user_id}` for a create, the member with the email asked for on a
/// find, 204 for an action.
fn saleschat_answers(r: &Request) -> (u16, Value) {
    match r.method {
        "GET" => {
            let q = url::Url::parse(&format!("http://x{}", r.path))
                .unwrap()
                .query_pairs()
                .find(|(k, _)| k == "q")
                .map(|(_, v)| v.into_owned())
                .unwrap();
            (
                200,
                json!({"items": [{"id": format!("sc-{q}"), "email": q}], "has_more": false}),
            )
        }
        "POST" if r.path.ends_with("/user") => (200, json!({"user_id": "sc-new"})),
        "POST" => (204, Value::Null),
        other => panic!("saleschat has no {other} {}", r.path),
    }
}

/// vyte: nobody listed yet, a created user with its `_id`, the batch's as an array.
fn vyte_answers(r: &Request) -> (u16, Value) {
    let user = |b: &Value| {
        let email = b["user"]["email"].clone();
        json!({"_id": format!("vy-{}", email.as_str().unwrap_or("")), "emails": [email]})
    };
    match (r.method, r.path.as_str()) {
        ("GET", "/v2/users") => (200, json!([])),
        ("POST", "/v2/users/batch") => (
            201,
            Value::Array(
                r.body
                    .as_ref()
                    .unwrap()
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(user)
                    .collect(),
            ),
        ),
        ("POST", _) => (201, user(r.body.as_ref().unwrap())),
        ("PUT", _) => (200, json!({})),
        other => panic!("vyte has no {other:?}"),
    }
}

/// zaia: no user found by a search (an empty page), the created or PATCHed user.
fn zaia_answers(r: &Request) -> (u16, Value) {
    match r.method {
        "GET" => (200, json!([])),
        "POST" => {
            let mut u = r.body.clone().unwrap();
            u["id"] = json!("0b7e2c4a-1d3f-4e5a-8b6c-7d8e9f0a1b2c");
            u["blocked"] = json!(false);
            (200, u)
        }
        "PATCH" => (200, json!({"id": last_segment(&r.path)})),
        other => panic!("zaia has no {other} {}", r.path),
    }
}

fn row(provider: &dyn Provider, user: &User) -> SnapshotRow {
    let record = provider.map_user(user).unwrap();
    SnapshotRow {
        external_id: user.external_id.clone().into(),
        fingerprint: record.fingerprint(),
        state: AccountState::Active,
        failures: 0,
        details: Some(Box::new(RowDetails {
            email: user.email.clone().into(),
            vendor_id: Some(format!("vid-{}", user.external_id).into()),
            record: record.to_stored().to_json().into(),
            last_error: None,
        })),
    }
}

#[test]
fn hesh_bodies_match_its_openapi_with_batch_items_as_objects() {
    let (requests, kinds) = requests_for("hesh");
    assert_sent_kinds(
        &kinds,
        &[
            OpKind::Create,
            OpKind::Update,
            OpKind::Disable,
            OpKind::Enable,
        ],
    );
    // As NOTES.md says: the guide sends objects where the schema says strings.
    let openapi = support::fake_hesh::openapi();
    check_against_openapi("hesh", &openapi, &requests);
    // Two creates go as one batch request.
    let batches: Vec<&Request> = requests
        .iter()
        .filter(|r| r.path.ends_with("/batch"))
        .collect();
    assert_eq!(batches.len(), 1);
    assert_eq!(batches[0].external_ids.len(), 2);
    assert!(requests
        .iter()
        .any(|r| r.method == "PATCH" && r.path == "/api/v1/public/users/disable"));
}

#[test]
fn saleschat_bodies_match_its_openapi() {
    let (requests, kinds) = requests_for("saleschat");
    assert_sent_kinds(&kinds, &[OpKind::Create, OpKind::Disable, OpKind::Enable]);
    check_against_openapi("saleschat", &fixture("saleschat.openapi.json"), &requests);
    let create = requests
        .iter()
        .find(|r| r.method == "POST" && r.path == "/v1/org/org-12345/user")
        .unwrap();
    let body = create.body.as_ref().unwrap();
    assert_eq!(body["ask_user_to_update_password_on_login"], true);
    assert!(
        requests.iter().any(|r| r.path.ends_with("/enable"))
            && requests.iter().any(|r| r.path.ends_with("/disable"))
    );
}

#[test]
fn zaia_bodies_match_its_openapi_with_nullable_fields_sent_as_null() {
    let (requests, kinds) = requests_for("zaia");
    assert_sent_kinds(
        &kinds,
        &[
            OpKind::Create,
            OpKind::Update,
            OpKind::Disable,
            OpKind::Enable,
        ],
    );
    check_against_openapi("zaia", &fixture("zaia.openapi.json"), &requests);
    let create = requests
        .iter()
        .find(|r| r.method == "POST")
        .unwrap()
        .body
        .clone()
        .unwrap();
    for key in support::fake_zaia::CREATE_FIELDS {
        assert!(
            create.as_object().unwrap().contains_key(key),
            "create body lacks {key}: {create}"
        );
    }
    assert_eq!(create["tierId"], Value::Null);
    assert!(requests
        .iter()
        .any(|r| r.body.as_ref().is_some_and(|b| b["blocked"] == true)));
    assert!(requests
        .iter()
        .any(|r| r.body.as_ref().is_some_and(|b| b["blocked"] == false)));
}

#[test]
fn vyte_bodies_match_the_documented_shape() {
    let (requests, kinds) = requests_for("vyte");
    assert_sent_kinds(&kinds, &[OpKind::Create, OpKind::Update]);
    let schema = fixture("vyte.schema.json");
    check_vyte(&schema, &requests);
    let update = requests.iter().find(|r| r.method == "PUT").unwrap();
    assert!(update.path.starts_with("/v2/users/vid-"), "{}", update.path);
    assert_eq!(
        update.body.as_ref().unwrap()["user"]["account"]["organization"]["extid"]
            .as_str()
            .map(|s| s.starts_with('E')),
        Some(true)
    );
}

/// Every kind in `wanted` was among the operations sent.
fn assert_sent_kinds(kinds: &BTreeSet<OpKind>, wanted: &[OpKind]) {
    assert!(
        wanted.iter().all(|k| kinds.contains(k)),
        "sent {kinds:?}, wanted {wanted:?}"
    );
}

#[test]
fn hesh_sends_what_it_previews_and_every_body_matches_its_openapi() {
    let Sent {
        preview,
        sent,
        kinds,
    } = sent_for("hesh", hesh_answers);
    assert_sent_kinds(
        &kinds,
        &[
            OpKind::Create,
            OpKind::Update,
            OpKind::Disable,
            OpKind::Enable,
        ],
    );
    let openapi = support::fake_hesh::openapi();
    check_against_openapi("hesh", &openapi, &sent);
    // The adoptions a batch may lead to are previewed, and valid too.
    let all = with_conditional(&preview);
    assert!(all.len() > preview.len(), "no adoption previewed");
    check_against_openapi("hesh", &openapi, &all);
    assert_sent_as_previewed("hesh", &preview, &sent);
}

#[test]
fn saleschat_sends_what_it_previews_and_every_body_matches_its_openapi() {
    let Sent {
        preview,
        sent,
        kinds,
    } = sent_for("saleschat", saleschat_answers);
    assert_sent_kinds(&kinds, &[OpKind::Create, OpKind::Disable, OpKind::Enable]);
    let openapi = fixture("saleschat.openapi.json");
    check_against_openapi("saleschat", &openapi, &sent);
    check_against_openapi("saleschat", &openapi, &with_conditional(&preview));
    // Each create sends a password of its own, never the preview's placeholder.
    let passwords: BTreeSet<&str> = sent
        .iter()
        .filter_map(|r| r.body.as_ref()?.get("password")?.as_str())
        .collect();
    let creates = sent.iter().filter(|r| r.body.is_some()).count();
    assert_eq!(passwords.len(), creates, "{passwords:?}");
    assert!(passwords
        .iter()
        .all(|p| (8..=64).contains(&p.len()) && !p.starts_with("<generated")));
    // Every create is followed by the find that confirms membership.
    assert_sent_as_previewed("saleschat", &preview, &sent);
}

#[test]
fn zaia_sends_what_it_previews_and_every_body_matches_its_openapi() {
    let Sent {
        preview,
        sent,
        kinds,
    } = sent_for("zaia", zaia_answers);
    assert_sent_kinds(
        &kinds,
        &[
            OpKind::Create,
            OpKind::Update,
            OpKind::Disable,
            OpKind::Enable,
        ],
    );
    let openapi = fixture("zaia.openapi.json");
    check_against_openapi("zaia", &openapi, &sent);
    check_against_openapi("zaia", &openapi, &with_conditional(&preview));
    // A create searches by externalId and by identifier before it posts.
    let post = sent.iter().position(|r| r.method == "POST").unwrap();
    assert!(post >= 2 && sent[..post].iter().all(|r| r.method == "GET"));
    assert_sent_as_previewed("zaia", &preview, &sent);
}

/// Every vyte body against the documented shape (each item of a batch, whose shape
/// vyte leaves undocumented: an array of them); only the list goes without one.
fn check_vyte(schema: &Value, requests: &[Request]) {
    for r in requests {
        if let Some(Value::Array(items)) = &r.body {
            for item in items {
                let mut one = r.clone();
                one.body = Some(item.clone());
                validate("vyte", schema, &one);
            }
        } else if r.body.is_some() {
            validate("vyte", schema, r);
        } else {
            assert_eq!((r.method, r.path.as_str()), ("GET", "/v2/users"));
        }
    }
}

#[test]
fn vyte_sends_what_it_previews_and_every_body_matches_the_documented_shape() {
    let Sent {
        preview,
        sent,
        kinds,
    } = sent_for("vyte", vyte_answers);
    assert_sent_kinds(&kinds, &[OpKind::Create, OpKind::Update]);
    let schema = fixture("vyte.schema.json");
    check_vyte(&schema, &sent);
    check_vyte(&schema, &with_conditional(&preview));
    // The list is read once per pass, by the first create.
    assert_eq!(sent.iter().filter(|r| r.method == "GET").count(), 1);
    assert_eq!(sent[0].method, "GET");
    assert_sent_as_previewed("vyte", &preview, &sent);

    // With batching on, the creates go as one batch request, sent as previewed.
    let batched = sent_with("vyte", ("batch: false", "batch: true"), vyte_answers);
    let batches: Vec<&Request> = batched
        .sent
        .iter()
        .filter(|r| r.path == "/v2/users/batch")
        .collect();
    assert_eq!(batches.len(), 1);
    assert!(batches[0].external_ids.len() >= 2);
    check_vyte(&schema, &batched.sent);
    check_vyte(&schema, &with_conditional(&batched.preview));
    assert_sent_as_previewed("vyte", &batched.preview, &batched.sent);
}

/// A SCIM provider added to the example config (`settings`: more of its YAML lines).
fn scim_entry(settings: &str) -> (&'static str, String) {
    (
        "providers:\n",
        format!(
            "providers:\n  - name: scim\n    type: scim\n    base_url: https://scim.example.invalid/scim/v2\n    bearer_token_file: secrets/saleschat.token.example\n{settings}"
        ),
    )
}

/// A SCIM service announcing PATCH and `/Bulk` but neither filtering nor ETags (the
/// service the preview shows): the resources created or changed, with their ids, and
/// each `/Bulk` operation's result.
fn scim_answers(r: &Request) -> (u16, Value) {
    let user = |data: &Value, id: String| {
        let mut u = data.clone();
        u["id"] = json!(id);
        u
    };
    let new_id = |data: &Value| format!("scim-{}", data["externalId"].as_str().unwrap_or(""));
    match (r.method, r.path.split('?').next().unwrap_or_default()) {
        ("GET", "/ServiceProviderConfig") => (
            200,
            json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"],
                "patch": {"supported": true},
                "bulk": {"supported": true, "maxOperations": 1000, "maxPayloadSize": 1_048_576},
                "filter": {"supported": false, "maxResults": 0},
                "etag": {"supported": false},
            }),
        ),
        // It cannot filter: the pass lists its users (nobody there yet).
        ("GET", "/Users") => (
            200,
            json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"], "totalResults": 0, "Resources": []}),
        ),
        ("POST", "/Users") => {
            let body = r.body.clone().unwrap();
            let id = new_id(&body);
            (201, user(&body, id))
        }
        // The resource as patched (as far as this fake keeps it): what was sent is
        // what it holds, so no read-back is needed.
        ("PATCH", path) => {
            let mut u = json!({"id": last_segment(path), "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"]});
            for o in r.body.as_ref().unwrap()["Operations"].as_array().unwrap() {
                if let (Some("replace"), Some(p)) = (o["op"].as_str(), o["path"].as_str()) {
                    match p.split_once('.') {
                        Some((a, b)) => u[a][b] = o["value"].clone(),
                        None => u[p] = o["value"].clone(),
                    }
                }
            }
            (200, u)
        }
        ("DELETE", _) => (204, Value::Null),
        ("POST", "/Bulk") => {
            let results: Vec<Value> = r.body.as_ref().unwrap()["Operations"]
                .as_array()
                .unwrap()
                .iter()
                .map(|o| {
                    let path = o["path"].as_str().unwrap();
                    let (status, id) = match o["method"].as_str().unwrap() {
                        "POST" => ("201", new_id(&o["data"])),
                        "DELETE" => ("204", last_segment(path)),
                        _ => ("200", last_segment(path)),
                    };
                    json!({
                        "bulkId": o["bulkId"],
                        "method": o["method"],
                        "status": status,
                        "location": format!("https://scim.example.invalid/scim/v2/Users/{id}"),
                    })
                })
                .collect();
            (
                200,
                json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkResponse"], "Operations": results}),
            )
        }
        other => panic!("the SCIM service was not asked for {other:?}"),
    }
}

/// RFC 7643 / 7644's shape of what rosterd writes: a User resource, a PatchOp, a
/// BulkRequest (each of whose operations' data is checked as its method's body).
fn check_scim(requests: &[Request]) {
    let schema_of = |urn: &str, required: Value, properties: Value| {
        json!({
            "type": "object",
            "required": required,
            "properties": {
                "schemas": {"type": "array", "contains": {"const": urn}},
            },
            "allOf": [{"properties": properties}],
        })
    };
    let user = schema_of(
        "urn:ietf:params:scim:schemas:core:2.0:User",
        json!(["schemas", "userName"]),
        json!({
            "userName": {"type": "string", "minLength": 1},
            "externalId": {"type": "string"},
            "active": {"type": "boolean"},
            "name": {"type": "object", "properties": {
                "givenName": {"type": "string"}, "familyName": {"type": "string"}}},
            "emails": {"type": "array", "items": {"type": "object", "required": ["value"]}},
            "phoneNumbers": {"type": "array", "items": {"type": "object", "required": ["value"]}},
        }),
    );
    let patch = schema_of(
        "urn:ietf:params:scim:api:messages:2.0:PatchOp",
        json!(["schemas", "Operations"]),
        // The portable form (#15): every operation names its attribute by path, a
        // `replace` carries a value, and a `remove` only a path.
        json!({"Operations": {"type": "array", "minItems": 1, "items": {
            "type": "object", "required": ["op", "path"],
            "properties": {
                "op": {"enum": ["remove", "replace"]},
                "path": {"enum": ["userName", "externalId", "name.givenName", "name.familyName",
                                  "displayName", "emails", "phoneNumbers", "active"]}},
            "if": {"properties": {"op": {"const": "replace"}}},
            "then": {"required": ["value"]},
            "else": {"not": {"required": ["value"]}}}}}),
    );
    let bulk = schema_of(
        "urn:ietf:params:scim:api:messages:2.0:BulkRequest",
        json!(["schemas", "Operations"]),
        json!({"Operations": {"type": "array", "minItems": 1, "items": {
            "type": "object", "required": ["method", "path", "bulkId"],
            "properties": {"method": {"enum": ["POST", "PUT", "PATCH", "DELETE"]}}}}}),
    );
    let schema = |method: &str, path: &str| match (method, path) {
        ("POST", "/Users") | ("PUT", _) => Some(&user),
        ("PATCH", _) => Some(&patch),
        ("POST", "/Bulk") => Some(&bulk),
        _ => None,
    };
    for r in requests {
        match schema(r.method, r.path.split('?').next().unwrap_or_default()) {
            Some(s) => validate("scim", s, r),
            None => assert!(r.body.is_none(), "scim: {} {} has a body", r.method, r.path),
        }
        if r.path == "/Bulk" {
            for o in r.body.as_ref().unwrap()["Operations"].as_array().unwrap() {
                let mut one = r.clone();
                one.method = if o["method"] == "POST" {
                    "POST"
                } else {
                    "PATCH"
                };
                one.path = if o["method"] == "POST" {
                    "/Users".into()
                } else {
                    o["path"].as_str().unwrap().into()
                };
                one.body = o.get("data").cloned();
                match o["method"].as_str().unwrap() {
                    "DELETE" => assert!(one.body.is_none(), "{o}"),
                    "PUT" => validate("scim", &user, &one),
                    _ => check_scim(&[one]),
                }
            }
        }
    }
}

#[test]
fn scim_sends_what_it_previews_one_by_one_and_through_bulk() {
    // One by one: every kind, a leaver disabled.
    let (from, to) = scim_entry("    bulk: off\n");
    let Sent {
        preview,
        sent,
        kinds,
    } = sent_with("scim", (from, &to), scim_answers);
    assert_sent_kinds(
        &kinds,
        &[
            OpKind::Create,
            OpKind::Update,
            OpKind::Disable,
            OpKind::Enable,
        ],
    );
    check_scim(&sent);
    check_scim(&with_conditional(&preview));
    assert_eq!(sent[0].path, "/ServiceProviderConfig");
    assert!(sent.iter().all(|r| r.path != "/Bulk"));
    assert_sent_as_previewed("scim", &preview, &sent);

    // Through /Bulk: the whole plan in one request, a leaver deleted.
    let (from, to) = scim_entry("    on_remove: delete\n");
    let Sent {
        preview,
        sent,
        kinds,
    } = sent_with("scim", (from, &to), scim_answers);
    assert!(kinds.contains(&OpKind::Delete), "{kinds:?}");
    check_scim(&sent);
    check_scim(&with_conditional(&preview));
    // It cannot filter: its users are listed once, to find any to adopt.
    assert_eq!(
        sent.iter().map(|r| r.path.as_str()).collect::<Vec<_>>(),
        [
            "/ServiceProviderConfig",
            "/Users?startIndex=1&count=100",
            "/Bulk"
        ]
    );
    assert_sent_as_previewed("scim", &preview, &sent);
}

/// hesh having everyone already: the batch answered with nobody created, a single
/// create refused as existing.
fn hesh_has_them(r: &Request) -> (u16, Value) {
    match (r.method, r.path.as_str()) {
        ("POST", "/api/v1/public/users/batch") => (201, json!([])),
        ("POST", _) => (
            409,
            json!({"message": "User with this email already exists"}),
        ),
        _ => hesh_answers(r),
    }
}

/// zaia having everyone already: each search finds the user by its term.
fn zaia_has_them(r: &Request) -> (u16, Value) {
    if r.method != "GET" {
        return zaia_answers(r);
    }
    let term = url::Url::parse(&format!("http://x{}", r.path))
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "search")
        .map(|(_, v)| v.into_owned())
        .unwrap();
    (
        200,
        json!([{"id": format!("zz-{term}"), "externalId": term, "identifier": term}]),
    )
}

/// A SCIM service without `/Bulk` that filters, and has everyone already: each
/// lookup finds the user.
fn scim_has_them(r: &Request) -> (u16, Value) {
    match (r.method, r.path.split('?').next().unwrap_or_default()) {
        ("GET", "/ServiceProviderConfig") => (
            200,
            json!({"patch": {"supported": true}, "filter": {"supported": true}}),
        ),
        ("GET", "/Users") => {
            let filter = url::Url::parse(&format!("http://x{}", r.path))
                .unwrap()
                .query_pairs()
                .find(|(k, _)| k == "filter")
                .map(|(_, v)| v.into_owned())
                .unwrap();
            let value: String = serde_json::from_str(filter.split_once(" eq ").unwrap().1).unwrap();
            (
                200,
                json!({"Resources": [{"id": format!("found-{value}"), "userName": value, "externalId": value}]}),
            )
        }
        _ => scim_answers(r),
    }
}

#[test]
fn requests_that_depend_on_the_answer_are_sent_as_previewed() {
    // hesh skips users it has: each is adopted with the PUT the preview shows.
    let hesh = sent_with("hesh", ("", ""), hesh_has_them);
    assert!(hesh.sent.iter().filter(|r| r.method == "PUT").count() >= 3);
    check_against_openapi("hesh", &support::fake_hesh::openapi(), &hesh.sent);
    assert_each_sent_is_previewed("hesh", &hesh.preview, &hesh.sent);
    // zaia finds the users a create looks for: adopted, never created.
    let zaia = sent_with("zaia", ("", ""), zaia_has_them);
    assert!(zaia.sent.iter().all(|r| r.method != "POST"));
    check_against_openapi("zaia", &fixture("zaia.openapi.json"), &zaia.sent);
    assert_each_sent_is_previewed("zaia", &zaia.preview, &zaia.sent);
    // A SCIM service that filters: lookups first, the users found adopted.
    let (from, to) = scim_entry("    bulk: off\n");
    let scim = sent_with("scim", (from, &to), scim_has_them);
    assert!(scim.sent.iter().all(|r| r.method != "POST"));
    check_scim(&scim.sent);
    assert_each_sent_is_previewed("scim", &scim.preview, &scim.sent);
}

#[test]
fn a_body_that_breaks_the_schema_is_caught() {
    // The check itself must be able to fail: a hesh first name over 10 characters.
    let openapi = support::fake_hesh::openapi();
    let schema = request_schema(&openapi, "POST", "/api/v1/public/users").unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let body = json!({"external_user_id": "E1", "email": "a@b.co", "first_name": "Maximiliane", "last_name": "O"});
    assert!(!validator.is_valid(&body));
    let zaia = request_schema(
        &fixture("zaia.openapi.json"),
        "POST",
        "/api/v1/external-users",
    )
    .unwrap();
    let missing_null = json!({"channelId": "8d1c2b3a-4e5f-4a6b-8c7d-9e0f1a2b3c4d", "externalId": "E100", "identifier": "a@b.co", "name": "Ada L"});
    assert!(
        !jsonschema::validator_for(&zaia)
            .unwrap()
            .is_valid(&missing_null),
        "the six fields are required"
    );
}
