//! Unit tests of the SCIM provider's parsing and bodies: `/ServiceProviderConfig`,
//! SCIM error bodies, the settings, the mapping, and the PATCH / PUT bodies.

use serde_json::json;

use super::discovery::{BulkLimits, Effective, Features, DEFAULT_BULK_LIMITS};
use super::requests::{error_message, patch_body, put_body};
use super::*;
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

#[test]
fn patch_removes_a_phone_the_source_no_longer_has_and_sets_active() {
    let r = map_user(&user(None)).unwrap();
    let body = patch_body(Some(&r), Some(true));
    let ops = body["Operations"].as_array().unwrap();
    assert_eq!(ops[0], json!({"op": "remove", "path": "phoneNumbers"}));
    assert_eq!(ops[1]["value"]["active"], true);
    assert_eq!(ops[1]["value"]["userName"], "ada@corp.example");
    let disable = patch_body(None, Some(false));
    assert_eq!(
        disable["Operations"],
        json!([{"op": "replace", "value": {"active": false}}])
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
