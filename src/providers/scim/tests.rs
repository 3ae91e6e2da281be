//! Unit tests of the SCIM provider's parsing and bodies: `/ServiceProviderConfig`,
//! SCIM error bodies, the settings, the mapping, and the PATCH / PUT bodies.

use serde_json::json;

use super::discovery::{BulkLimits, Effective, Features, DEFAULT_BULK_LIMITS};
use super::requests::{error_message, patch_body, put_body};
use super::*;
use crate::plan::OpKind;
use crate::user::Attributes;

fn features(doc: serde_json::Value) -> Features {
    Features::parse(&doc)
}

#[test]
fn service_provider_config_with_everything_is_read_with_its_bulk_limits() {
    let f = features(json!({
        "patch": {"supported": true},
        "bulk": {"supported": true, "maxOperations": 50, "maxPayloadSize": 65536},
        "filter": {"supported": true, "maxResults": 200},
        "etag": {"supported": true}
    }));
    assert_eq!(
        f,
        Features {
            patch: true,
            bulk: Some(BulkLimits {
                max_operations: 50,
                max_payload_size: 65536
            }),
            filter: true,
            etag: true
        }
    );
}

#[test]
fn service_provider_config_missing_or_odd_members_mean_unsupported() {
    let f = features(json!({
        "patch": {"supported": "true"},
        "bulk": {"supported": false, "maxOperations": 10},
        "etag": {}
    }));
    assert!(f.patch, "\"true\" as a string is accepted");
    assert_eq!(f.bulk, None);
    assert!(!f.filter && !f.etag);
    // Bulk announced without limits (or with 0 / junk): the RFC's example limits.
    let f =
        features(json!({"bulk": {"supported": true, "maxOperations": 0, "maxPayloadSize": "x"}}));
    assert_eq!(f.bulk, Some(DEFAULT_BULK_LIMITS));
    assert_eq!(features(json!("not an object")), features(json!({})));
}

#[test]
fn settings_override_what_the_service_announces() {
    let all = features(json!({
        "patch": {"supported": true},
        "bulk": {"supported": true, "maxOperations": 1000, "maxPayloadSize": 1000000},
        "filter": {"supported": true},
        "etag": {"supported": true}
    }));
    let auto = Effective::new(&all, Mode::Auto, Mode::Auto, Mode::Auto, 100);
    assert!(auto.patch && auto.etag);
    assert_eq!(
        auto.bulk.map(|b| b.max_operations),
        Some(100),
        "bulk_size caps"
    );
    let off = Effective::new(&all, Mode::Off, Mode::Off, Mode::Off, 100);
    assert!(!off.patch && !off.etag && off.bulk.is_none());
    let none = Features::minimal();
    let on = Effective::new(&none, Mode::On, Mode::On, Mode::On, 5000);
    assert!(on.patch && on.etag);
    assert_eq!(on.bulk, Some(DEFAULT_BULK_LIMITS));
    // Filtering: as announced, or as the `filter:` setting says.
    assert!(auto.clone().with_filter(Mode::Auto, &all).filter);
    assert!(!auto.with_filter(Mode::Off, &all).filter);
    let unfiltered = features(json!({"filter": {"supported": false}}));
    assert!(!on.clone().with_filter(Mode::Auto, &unfiltered).filter);
    assert!(on.with_filter(Mode::On, &unfiltered).filter);
}

#[test]
fn scim_error_bodies_give_detail_scim_type_and_status() {
    let body = json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"],
        "status": "409",
        "scimType": "uniqueness",
        "detail": "userName is already in use"
    });
    assert_eq!(
        error_message(&body).as_deref(),
        Some("userName is already in use (scimType uniqueness, status 409)")
    );
    assert_eq!(
        error_message(&json!({"status": 400, "detail": "bad filter"})).as_deref(),
        Some("bad filter (status 400)")
    );
    assert_eq!(
        error_message(&json!({"scimType": "mutability"})).as_deref(),
        Some("SCIM error (scimType mutability)")
    );
    assert_eq!(error_message(&json!({"status": "500"})), None);
    assert_eq!(error_message(&json!("<html>oops</html>")), None);
}

fn parse(yaml: serde_json::Value) -> (Option<Settings>, Vec<Issue>) {
    let mut issues = Vec::new();
    let ctx = ParseContext {
        base_dir: std::path::Path::new("."),
    };
    let raw = yaml.as_object().cloned().unwrap_or_default();
    let s = Settings::parse(raw, &ctx, "providers[0]", &mut issues);
    (s, issues)
}

#[test]
fn settings_need_a_token_and_check_their_values() {
    let (s, issues) = parse(json!({"bearer_token": "t0ken", "bulk": "off", "bulk_size": 10}));
    assert!(issues.is_empty(), "{issues:?}");
    let s = s.unwrap();
    assert_eq!(
        (s.bulk, s.patch, s.etag, s.bulk_size),
        (Mode::Off, Mode::Auto, Mode::Auto, 10)
    );
    let (_, issues) = parse(json!({"bulk": "sometimes"}));
    let text: Vec<String> = issues.iter().map(ToString::to_string).collect();
    assert!(
        text.iter()
            .any(|t| t.starts_with("providers[0].bearer_token: missing")),
        "{text:?}"
    );
    assert!(
        text.iter().any(|t| t.starts_with("providers[0].bulk:")),
        "{text:?}"
    );
    let (_, issues) = parse(json!({"bearer_token": "t0ken", "bulk_size": 0}));
    assert_eq!(issues[0].path, "providers[0].bulk_size");
}

fn user(phone: Option<&str>) -> User {
    User {
        external_id: "E1".into(),
        email: "ada@corp.example".into(),
        first_name: "Ada".into(),
        last_name: "Lovelace".into(),
        phone: phone.map(str::to_string),
        status_active: true,
        start_date: None,
        termination_date: None,
        attributes: Attributes::default(),
    }
}

#[test]
fn a_user_maps_to_user_name_email_names_phone_and_external_id() {
    let r = map_user(&user(Some("+15551234"))).unwrap();
    let body = super::requests::create_body(&r);
    assert_eq!(body["userName"], "ada@corp.example");
    assert_eq!(body["externalId"], "E1");
    assert_eq!(
        body["name"],
        json!({"givenName": "Ada", "familyName": "Lovelace"})
    );
    assert_eq!(
        body["emails"][0],
        json!({"value": "ada@corp.example", "type": "work", "primary": true})
    );
    assert_eq!(body["phoneNumbers"][0]["value"], "+15551234");
    assert_eq!(body["active"], true);
}

/// An update of `user(None)` from what rosterd last sent: `old` (field, value).
fn update_from(old: &[(&str, Option<&str>)]) -> crate::plan::Operation {
    let u = user(None);
    let record = map_user(&u).unwrap();
    let mut op = crate::providers::scripted::operation(OpKind::Update, &u, record, Some("u1"));
    op.changes = old
        .iter()
        .map(|(f, v)| crate::plan::FieldChange {
            field: f.to_string(),
            old: v.map(str::to_string),
            new: op.record.as_ref().and_then(|r| r.get(f)).map(str::to_string),
        })
        .collect();
    op
}

#[test]
fn patch_sends_one_operation_per_changed_attribute_with_its_path() {
    // Renamed, and the email changed: each attribute by its path, emails whole.
    let op = update_from(&[
        ("givenName", Some("Augusta")),
        ("email", Some("old@corp.example")),
        ("userName", Some("old@corp.example")),
    ]);
    let body = patch_body(&op, None, op.record.as_ref(), None);
    assert_eq!(
        body["Operations"],
        json!([
            {"op": "replace", "path": "userName", "value": "ada@corp.example"},
            {"op": "replace", "path": "name.givenName", "value": "Ada"},
            {"op": "replace", "path": "displayName", "value": "Ada Lovelace"},
            {"op": "replace", "path": "emails",
             "value": [{"value": "ada@corp.example", "type": "work", "primary": true}]}
        ])
    );
}

#[test]
fn patch_removes_a_phone_only_when_the_service_holds_one() {
    let had_phone = update_from(&[("phone", Some("+1555"))]);
    let body = patch_body(&had_phone, None, had_phone.record.as_ref(), Some(true));
    assert_eq!(
        body["Operations"],
        json!([
            {"op": "remove", "path": "phoneNumbers"},
            {"op": "replace", "path": "active", "value": true}
        ])
    );
    // Never had one (a re-enable with no change): only `active`, no `remove`.
    let none = update_from(&[]);
    let body = patch_body(&none, None, none.record.as_ref(), Some(true));
    assert_eq!(
        body["Operations"],
        json!([{"op": "replace", "path": "active", "value": true}])
    );
    let mut disable = update_from(&[]);
    disable.record = None;
    let body = patch_body(&disable, None, None, Some(false));
    assert_eq!(
        body["Operations"],
        json!([{"op": "replace", "path": "active", "value": false}])
    );
}

#[test]
fn an_adopted_user_is_patched_from_what_the_service_holds() {
    // Found in another case, with a phone and two emails: every attribute replaced
    // by its path (what was sent before is unknown), the phone removed, activated.
    let mut op = update_from(&[]);
    op.op = OpKind::Create;
    let found = json!({
        "id": "u1", "userName": "Ada@Corp.Example", "externalId": "E1",
        "name": {"givenName": "Ada", "familyName": "Lovelace"}, "displayName": "Ada Lovelace",
        "emails": [{"value": "ada@corp.example", "primary": true}, {"value": "x@corp.example"}],
        "phoneNumbers": [{"value": "+1"}], "active": false
    });
    let body = patch_body(&op, Some(&found), op.record.as_ref(), Some(true));
    let paths: Vec<&str> = body["Operations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["path"].as_str().unwrap())
        .collect();
    assert_eq!(
        paths,
        [
            "userName",
            "externalId",
            "name.givenName",
            "name.familyName",
            "displayName",
            "emails",
            "phoneNumbers",
            "active"
        ]
    );
    assert_eq!(body["Operations"][6], json!({"op": "remove", "path": "phoneNumbers"}));
}

#[test]
fn a_resend_with_nothing_changed_replaces_every_attribute_by_path() {
    let op = update_from(&[]);
    let body = patch_body(&op, None, op.record.as_ref(), None);
    let ops = body["Operations"].as_array().unwrap();
    assert_eq!(ops.len(), 6, "{body}");
    assert!(ops.iter().all(|o| o["op"] == "replace" && o["path"].is_string()));
}

#[test]
fn an_answer_is_compared_on_the_managed_attributes_only() {
    use super::patch::{differences, PATHS};
    let meant = super::requests::resource(map_user(&user(None)).ok().as_ref(), Some(true));
    let mut answer = meant.clone();
    answer["id"] = json!("u1");
    answer["userName"] = json!("ADA@corp.example");
    answer["groups"] = json!([]);
    answer["emails"][0]["type"] = json!("other");
    assert!(differences(&meant, &answer, &PATHS).is_empty(), "{answer}");
    // Merged: the old email kept, two primaries.
    answer["emails"] = json!([
        {"value": "old@corp.example", "primary": true},
        {"value": "ada@corp.example", "primary": true}
    ]);
    answer["phoneNumbers"] = json!([{"value": "+1"}]);
    assert_eq!(
        differences(&meant, &answer, &PATHS),
        ["emails", "phoneNumbers"]
    );
}

#[test]
fn put_keeps_attributes_rosterd_does_not_manage() {
    let current = json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "id": "u1",
        "userName": "old@corp.example",
        "title": "Engineer",
        "phoneNumbers": [{"value": "+1"}],
        "meta": {"version": "W/\"3\""}
    });
    let r = map_user(&user(None)).unwrap();
    let body = put_body(&current, Some(&r), Some(false));
    assert_eq!(body["title"], "Engineer");
    assert_eq!(body["userName"], "ada@corp.example");
    assert_eq!(body["active"], false);
    assert!(body.get("meta").is_none() && body.get("phoneNumbers").is_none());
}

#[test]
fn mapped_attributes_are_written_only_where_the_record_has_them() {
    use super::patch::{written_paths, ENTERPRISE};
    let plain = map_user(&user(None)).unwrap();
    let body = super::requests::create_body(&plain);
    assert_eq!(body["schemas"], serde_json::json!([super::requests::USER_SCHEMA]));
    assert!(body.get(ENTERPRISE).is_none() && body.get("title").is_none());
    assert!(!written_paths(Some(&plain), None).contains(&"title"));

    let mapped = plain
        .clone()
        .set("title", Some("Engineer".into()))
        .set("department", Some("R&D".into()))
        .set("costCenter", None);
    let body = super::requests::create_body(&mapped);
    assert_eq!(
        body["schemas"],
        serde_json::json!([super::requests::USER_SCHEMA, ENTERPRISE])
    );
    assert_eq!(body["title"], "Engineer");
    assert_eq!(body[ENTERPRISE], serde_json::json!({ "department": "R&D" }));
    let paths = written_paths(Some(&mapped), Some(true));
    assert!(paths.contains(&"title"));
    assert!(paths.contains(&"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:costCenter"));
    assert!(!paths.contains(&"locale"));
    assert_eq!(paths.last(), Some(&"active"));
    // A PUT keeps the extension's other attributes and drops a cleared one.
    let current = serde_json::json!({
        "id": "1",
        "schemas": [super::requests::USER_SCHEMA, ENTERPRISE],
        ENTERPRISE: { "manager": { "value": "9" }, "costCenter": "C1" },
    });
    let put = super::requests::put_body(&current, Some(&mapped), None);
    assert_eq!(
        put[ENTERPRISE],
        serde_json::json!({ "manager": { "value": "9" }, "department": "R&D" })
    );
}
