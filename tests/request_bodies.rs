//! Every request body rosterd would send, for every kind of operation and every
//! vendor, validated against that vendor's published request schema (OpenAPI copies
//! under tests/fixtures/openapi/; vyte, which publishes none, against the shape its
//! documents show).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::support;

use std::collections::BTreeSet;
use std::path::Path;

use chrono::NaiveDate;
use serde_json::{json, Value};

use rosterd::config::Config;
use rosterd::plan::{plan_provider, OpKind, PlanContext};
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
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let config = Config::from_yaml(
        &std::fs::read_to_string(root.join("config/example.yaml")).unwrap(),
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
    let kinds = plan.operations.iter().map(|o| o.op).collect();
    (provider.requests(&plan.operations), kinds)
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
    assert!(
        kinds.is_superset(
            &[
                OpKind::Create,
                OpKind::Update,
                OpKind::Disable,
                OpKind::Enable
            ]
            .into()
        ),
        "{kinds:?}"
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
    assert!(
        kinds.is_superset(&[OpKind::Create, OpKind::Disable, OpKind::Enable].into()),
        "{kinds:?}"
    );
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
    assert!(
        kinds.is_superset(
            &[
                OpKind::Create,
                OpKind::Update,
                OpKind::Disable,
                OpKind::Enable
            ]
            .into()
        ),
        "{kinds:?}"
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
    assert!(
        kinds.is_superset(&[OpKind::Create, OpKind::Update].into()),
        "{kinds:?}"
    );
    let schema = fixture("vyte.schema.json");
    for r in &requests {
        validate("vyte", &schema, r);
    }
    let update = requests.iter().find(|r| r.method == "PUT").unwrap();
    assert!(update.path.starts_with("/v2/users/vid-"), "{}", update.path);
    assert_eq!(
        update.body.as_ref().unwrap()["user"]["account"]["organization"]["extid"]
            .as_str()
            .map(|s| s.starts_with('E')),
        Some(true)
    );
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
