//! The SCIM calls against a scripted transport: what scim2-server cannot be made to
//! do on cue — a 412 between read and write, a 409 on a POST after the lookup found
//! nothing, a /Bulk operation answered 412 — and the headers sent.

use serde_json::{json, Value};

use super::discovery::{BulkLimits, Effective};
use super::{bulk, client, map_user};
use crate::plan::{OpKind, Operation};
use crate::providers::call::{Applied, CallError, Response};
use crate::providers::scripted::{self, numbered};

fn op(kind: OpKind, id: &str, vendor_id: Option<&str>) -> Operation {
    let user = scripted::user(id);
    let record = map_user(&user).unwrap();
    scripted::operation(kind, &user, record, vendor_id)
}

fn ok(body: Value) -> Result<Response, CallError> {
    Ok(Response { status: 200, body })
}

fn fail(status: u16, message: &str) -> Result<Response, CallError> {
    Err(CallError::new(Some(status), message))
}

fn eff(patch: bool, etag: bool) -> Effective {
    Effective {
        patch,
        bulk: None,
        filter: true,
        etag,
        listing: None,
        quirks: None,
    }
}

fn user(id: &str, version: u32) -> Value {
    json!({"id": id, "userName": "e1@example.com", "title": "Keep", "meta": {"version": format!("W/\"{version}\"")}})
}

#[tokio::test]
async fn a_412_is_read_again_and_retried_once_with_the_new_version() {
    let t = numbered(|r, n| match (r.method, n) {
        ("GET", 0) => ok(user("u1", 1)),
        ("PATCH", 1) => fail(412, "Resource has changed"),
        ("GET", 2) => ok(user("u1", 2)),
        ("PATCH", 3) => Ok(Response {
            status: 204,
            body: Value::Null,
        }),
        _ => fail(500, "unexpected"),
    });
    let o = op(OpKind::Update, "E1", Some("u1"));
    let r = client::apply_one(&t, &o, &eff(true, true)).await;
    assert_eq!(r, Ok(Applied::done(Some("u1".into()))));
    assert_eq!(
        t.calls(),
        [
            ("GET", "/Users/u1".to_string()),
            ("PATCH", "/Users/u1".into()),
            ("GET", "/Users/u1".into()),
            ("PATCH", "/Users/u1".into())
        ]
    );
    assert_eq!(t.header(1, "if-match").as_deref(), Some("W/\"1\""));
    assert_eq!(t.header(3, "if-match").as_deref(), Some("W/\"2\""));
    assert_eq!(
        t.header(3, "content-type").as_deref(),
        Some("application/scim+json")
    );
}

#[tokio::test]
async fn a_second_412_fails_the_operation_without_a_third_try() {
    let t = numbered(|r, _| match r.method {
        "GET" => ok(user("u1", 1)),
        _ => fail(412, "Resource has changed"),
    });
    let o = op(OpKind::Disable, "E1", Some("u1"));
    let r = client::apply_one(&t, &o, &eff(true, true)).await;
    assert_eq!(r.unwrap_err().status, Some(412));
    assert_eq!(t.calls().len(), 4);
}

#[tokio::test]
async fn without_etags_a_patch_is_sent_alone_without_if_match() {
    let t = numbered(|_, _| ok(Value::Null));
    let o = op(OpKind::Disable, "E1", Some("u1"));
    client::apply_one(&t, &o, &eff(true, false)).await.unwrap();
    assert_eq!(t.calls(), [("PATCH", "/Users/u1".to_string())]);
    assert_eq!(t.header(0, "if-match"), None);
    let body = t.log.lock().unwrap()[0].body.clone().unwrap();
    assert_eq!(
        body["Operations"],
        json!([{"op": "replace", "path": "active", "value": false}])
    );
}

#[tokio::test]
async fn without_patch_the_user_is_read_and_put_whole() {
    let t = numbered(|r, _| match r.method {
        "GET" => ok(user("u1", 5)),
        _ => ok(user("u1", 6)),
    });
    let o = op(OpKind::Enable, "E1", Some("u1"));
    client::apply_one(&t, &o, &eff(false, true)).await.unwrap();
    assert_eq!(
        t.calls(),
        [
            ("GET", "/Users/u1".to_string()),
            ("PUT", "/Users/u1".into())
        ]
    );
    let body = t.log.lock().unwrap()[1].body.clone().unwrap();
    assert_eq!(body["title"], "Keep");
    assert_eq!(body["active"], true);
    assert_eq!(body["name"]["givenName"], "Ada");
    assert_eq!(t.header(1, "if-match").as_deref(), Some("W/\"5\""));
}

#[tokio::test]
async fn a_409_on_create_adopts_the_user_made_in_between() {
    // The lookups find nothing, the POST says uniqueness, the next lookup finds it.
    let t = numbered(|r, n| match (r.method, n) {
        ("GET", 0 | 1) => ok(json!({"totalResults": 0, "Resources": []})),
        ("POST", 2) => fail(409, "userName in use (scimType uniqueness)"),
        ("GET", 3) => ok(json!({"totalResults": 1, "Resources": [user("u9", 1)]})),
        ("PATCH", 4) => ok(Value::Null),
        _ => fail(500, "unexpected"),
    });
    let o = op(OpKind::Create, "E1", None);
    let r = client::apply_one(&t, &o, &eff(true, false)).await;
    assert_eq!(r, Ok(Applied::done(Some("u9".into())).as_adopted()));
    let first = &t.log.lock().unwrap()[0];
    assert!(
        first
            .path
            .contains("filter=userName+eq+%22e1%40example.com%22"),
        "{}",
        first.path
    );
}

#[tokio::test]
async fn a_vendor_error_keeps_its_message_and_status() {
    let t = numbered(|_, _| fail(400, "bad value (scimType invalidValue, status 400)"));
    let o = op(OpKind::Update, "E1", Some("u1"));
    let e = client::apply_one(&t, &o, &eff(true, false))
        .await
        .unwrap_err();
    assert_eq!(e.status, Some(400));
    assert!(e.message.contains("scimType invalidValue"));
}

#[tokio::test]
async fn bulk_results_are_per_operation_and_a_412_in_bulk_goes_one_by_one() {
    // Lookup (by id, for versions), one /Bulk where op1 is 412 and op2 is 400, then
    // op1 alone: GET + PATCH.
    let t = numbered(|r, _| match (r.method, r.path.as_str()) {
        ("GET", p) if p.starts_with("/Users?") => ok(json!({"totalResults": 3, "Resources": [
            user("u0", 1), user("u1", 1), user("u2", 1)]})),
        ("POST", "/Bulk") => ok(json!({"Operations": [
            {"bulkId": "op0", "status": "200", "method": "PATCH"},
            {"bulkId": "op1", "status": "412", "method": "PATCH"},
            {"bulkId": "op2", "status": "400", "method": "PATCH",
             "response": {"status": "400", "scimType": "invalidValue", "detail": "no"}}
        ]})),
        ("GET", "/Users/u1") => ok(user("u1", 2)),
        ("PATCH", "/Users/u1") => ok(Value::Null),
        _ => fail(500, "unexpected"),
    });
    let ops = [
        op(OpKind::Disable, "E0", Some("u0")),
        op(OpKind::Disable, "E1", Some("u1")),
        op(OpKind::Disable, "E2", Some("u2")),
    ];
    let refs: Vec<&Operation> = ops.iter().collect();
    let limits = BulkLimits {
        max_operations: 10,
        max_payload_size: 100_000,
    };
    let e = Effective {
        bulk: Some(limits),
        ..eff(true, true)
    };
    let results = bulk::apply(&t, &refs, &e, limits).await;
    assert_eq!(results[0], Ok(Applied::done(Some("u0".into()))));
    assert_eq!(results[1], Ok(Applied::done(Some("u1".into()))));
    let err = results[2].clone().unwrap_err();
    assert_eq!(
        (err.status, err.message.as_str()),
        (Some(400), "no (scimType invalidValue, status 400)")
    );
    let bulk_body = t.log.lock().unwrap()[1].body.clone().unwrap();
    assert_eq!(bulk_body["Operations"][0]["version"], "W/\"1\"");
    assert_eq!(t.calls().len(), 4);
}

#[tokio::test]
async fn a_bulk_endpoint_that_is_not_there_sends_the_unit_one_by_one() {
    let t = numbered(|r, _| match (r.method, r.path.as_str()) {
        ("POST", "/Bulk") => fail(501, "Bulk is not supported (status 501)"),
        ("PATCH", _) => ok(Value::Null),
        _ => fail(500, "unexpected"),
    });
    let ops = [
        op(OpKind::Disable, "E0", Some("u0")),
        op(OpKind::Disable, "E1", Some("u1")),
    ];
    let refs: Vec<&Operation> = ops.iter().collect();
    let limits = BulkLimits {
        max_operations: 10,
        max_payload_size: 100_000,
    };
    let e = Effective {
        bulk: Some(limits),
        ..eff(true, false)
    };
    let results = bulk::apply(&t, &refs, &e, limits).await;
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    assert_eq!(
        t.calls(),
        [
            ("POST", "/Bulk".to_string()),
            ("PATCH", "/Users/u0".into()),
            ("PATCH", "/Users/u1".into())
        ]
    );
}

/// Found by the response fuzzer: a POST answered 2xx without the new resource (an
/// empty 200) was reported done with no id, though the service may have made nothing.
#[tokio::test]
async fn a_create_answered_without_an_id_is_looked_up_and_fails_when_not_found() {
    let t = numbered(|r, _| match r.method {
        "GET" => ok(json!({ "Resources": [], "totalResults": 0 })),
        _ => ok(Value::Null),
    });
    let o = op(OpKind::Create, "E1", None);
    let err = client::apply_one(&t, &o, &eff(true, false))
        .await
        .unwrap_err();
    assert!(err.message.contains("without the user's id"), "{err}");
    assert!(err.message.contains("e1@example.com"), "{err}");
    let posts = t.calls().iter().filter(|(m, _)| *m == "POST").count();
    assert_eq!(posts, 1, "{:?}", t.calls());
}

#[tokio::test]
async fn a_create_answered_without_an_id_takes_the_id_found_afterwards() {
    let t = numbered(|r, n| match (r.method, n) {
        ("GET", 0 | 1) => ok(json!({ "Resources": [] })),
        ("POST", _) => ok(json!({ "schemas": [] })),
        ("GET", _) => ok(json!({ "Resources": [{ "id": "u7", "userName": "E1@example.com" }] })),
        _ => fail(500, "unexpected"),
    });
    let o = op(OpKind::Create, "E1", None);
    let r = client::apply_one(&t, &o, &eff(true, false)).await;
    assert_eq!(r, Ok(Applied::done(Some("u7".into()))));
}

#[tokio::test]
async fn without_filtering_a_create_answered_without_an_id_needs_a_person() {
    let t = numbered(|_, _| ok(Value::Null));
    let o = op(OpKind::Create, "E1", None);
    let no_filter = Effective {
        filter: false,
        ..eff(true, false)
    };
    match client::apply_one(&t, &o, &no_filter).await {
        Ok(Applied::Manual {
            vendor_id: None,
            reason,
        }) => {
            assert!(reason.contains("check the account by hand"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
}

/// Found by the response fuzzer: a /Bulk create answered 201 with neither location
/// nor resource was taken as done with no id; it is now looked up one by one (and
/// adopted, not posted again).
#[tokio::test]
async fn a_bulk_create_confirmed_without_an_id_is_looked_up_one_by_one() {
    let bulked = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let seen = bulked.clone();
    let t = numbered(move |r, _| match (r.method, r.path.as_str()) {
        ("GET", p) if p.starts_with("/Users?") => {
            if seen.load(std::sync::atomic::Ordering::SeqCst) {
                ok(json!({"Resources": [
                    {"id": "n1", "userName": "e1@example.com", "externalId": "E1"}]}))
            } else {
                ok(json!({"Resources": []}))
            }
        }
        ("POST", "/Bulk") => {
            seen.store(true, std::sync::atomic::Ordering::SeqCst);
            ok(json!({"Operations": [
                {"status": "201", "method": "POST", "location": "https://x/scim/v2/Users/n0"},
                {"status": "201", "method": "POST"}
            ]}))
        }
        ("PATCH", "/Users/n1") => ok(Value::Null),
        _ => fail(500, "unexpected"),
    });
    let ops = [
        op(OpKind::Create, "E0", None),
        op(OpKind::Create, "E1", None),
    ];
    let refs: Vec<&Operation> = ops.iter().collect();
    let limits = BulkLimits {
        max_operations: 10,
        max_payload_size: 100_000,
    };
    let e = Effective {
        bulk: Some(limits),
        ..eff(true, false)
    };
    let results = bulk::apply(&t, &refs, &e, limits).await;
    assert_eq!(results[0], Ok(Applied::done(Some("n0".into()))));
    assert_eq!(results[1], Ok(Applied::done(Some("n1".into())).as_adopted()));
    assert!(bulked.load(std::sync::atomic::Ordering::SeqCst));
    assert!(
        !t.calls().iter().any(|(m, p)| *m == "POST" && p == "/Users"),
        "{:?}",
        t.calls()
    );
}

#[tokio::test]
async fn a_patch_answered_501_or_405_goes_as_a_put_of_the_merged_resource_at_once() {
    for status in [501, 405] {
        let t = numbered(move |r, _| match r.method {
            "PATCH" => fail(status, "PATCH not implemented"),
            "GET" => ok(user("u1", 1)),
            "PUT" => ok(json!({"id": "u1"})),
            _ => fail(500, "unexpected"),
        });
        let o = op(OpKind::Update, "E1", Some("u1"));
        let r = client::apply_one(&t, &o, &eff(true, false)).await;
        assert_eq!(r, Ok(Applied::done(Some("u1".into()))), "{status}");
        assert_eq!(
            t.calls(),
            [
                ("PATCH", "/Users/u1".to_string()),
                ("GET", "/Users/u1".into()),
                ("PUT", "/Users/u1".into())
            ],
            "{status}"
        );
        // The PUT keeps what the service holds and rosterd does not manage.
        let sent = t.sent();
        let body = sent[2].body.as_ref().unwrap();
        assert_eq!(body["title"], "Keep", "{body}");
    }
}

#[tokio::test]
async fn without_filtering_users_are_found_in_the_listing_read_once_and_paged() {
    let listing = super::discovery::Listing::default();
    let eff = Effective {
        filter: false,
        listing: Some(listing),
        ..eff(true, false)
    };
    let page = |from: usize, n: usize| {
        let users: Vec<Value> = (from..from + n)
            .map(|i| json!({"id": format!("u{i}"), "userName": format!("other{i}@example.com")}))
            .collect();
        users
    };
    let t = numbered(move |r, _| match (r.method, r.path.as_str()) {
        ("GET", "/Users?startIndex=1&count=100") => {
            ok(json!({"totalResults": 101, "Resources": page(0, 100)}))
        }
        ("GET", "/Users?startIndex=101&count=100") => ok(json!({"totalResults": 101, "Resources": [
            {"id": "found", "userName": "x@example.com", "emails": [{"value": "E1@Example.com", "primary": true}]}
        ]})),
        ("PATCH", "/Users/found") => ok(json!({"id": "found"})),
        ("POST", _) => fail(409, "exists"),
        _ => fail(500, "unexpected"),
    });
    // Found by its primary email, whatever the case; adopted, not created.
    let o = op(OpKind::Create, "E1", None);
    let r = client::apply_one(&t, &o, &eff).await;
    assert_eq!(r, Ok(Applied::done(Some("found".into())).as_adopted()));
    // A second user of the pass does not list again.
    let o = op(OpKind::Create, "E2", None);
    let _ = client::apply_one(&t, &o, &eff).await;
    let calls = t.calls();
    let lists = calls.iter().filter(|(_, p)| p.starts_with("/Users?startIndex")).count();
    assert_eq!(lists, 2, "{calls:?}");
    assert!(calls.iter().all(|(_, p)| !p.contains("filter")), "{calls:?}");
}

#[tokio::test]
async fn a_bulk_unit_without_filtering_finds_users_to_adopt_in_the_listing() {
    let t = numbered(|r, _| match (r.method, r.path.as_str()) {
        ("GET", "/Users?startIndex=1&count=100") => ok(json!({"totalResults": 1, "Resources": [
            {"id": "u9", "userName": "E1@EXAMPLE.COM"}
        ]})),
        ("POST", "/Bulk") => ok(json!({"Operations": []})),
        ("PATCH", "/Users/u9") => ok(json!({"id": "u9"})),
        ("POST", "/Users") => ok(json!({"id": "new"})),
        _ => fail(500, "unexpected"),
    });
    let ops = [op(OpKind::Create, "E1", None), op(OpKind::Create, "E2", None)];
    let refs: Vec<&Operation> = ops.iter().collect();
    let limits = BulkLimits {
        max_operations: 10,
        max_payload_size: 100_000,
    };
    let e = Effective {
        bulk: Some(limits),
        filter: false,
        listing: Some(super::discovery::Listing::default()),
        ..eff(true, false)
    };
    let _ = bulk::apply(&t, &refs, &e, limits).await;
    let sent = t.sent();
    assert!(sent.iter().all(|r| !r.path.contains("filter")), "{:?}", t.calls());
    // The /Bulk request adopts E1 (a PATCH of u9) and creates only E2.
    let bulk = sent.iter().find(|r| r.path == "/Bulk").expect("a /Bulk request");
    let body = bulk.body.as_ref().unwrap().to_string();
    assert!(body.contains("/Users/u9"), "{body}");
    assert_eq!(body.matches("\"POST\"").count(), 1, "{body}");
}

#[tokio::test]
async fn a_patch_answered_with_merged_emails_is_redone_as_a_put_and_the_quirk_learned() {
    use super::quirks::{Quirk, Quirks};
    let o = op(OpKind::Update, "E1", Some("u1"));
    let record = o.record.clone().unwrap();
    let meant = super::requests::resource(Some(&record), None);
    let t = numbered(move |r, _| match r.method {
        "PATCH" => {
            // The old email kept first, both primary: a merge.
            let mut merged = meant.clone();
            merged["id"] = json!("u1");
            merged["schemas"] = json!([super::requests::USER_SCHEMA]);
            merged["emails"] = json!([
                {"value": "old@example.com", "primary": true},
                meant["emails"][0].clone()
            ]);
            ok(merged)
        }
        "GET" => ok(user("u1", 1)),
        _ => ok(Value::Null),
    });
    let quirks = Quirks::default();
    let e = Effective {
        quirks: Some(quirks.clone()),
        ..eff(true, false)
    };
    let r = client::apply_one(&t, &o, &e).await;
    assert_eq!(r, Ok(Applied::done(Some("u1".into()))));
    assert_eq!(
        t.calls(),
        [
            ("PATCH", "/Users/u1".to_string()),
            ("GET", "/Users/u1".into()),
            ("PUT", "/Users/u1".into())
        ]
    );
    assert!(quirks.has(Quirk::MultiValuedMerge));
    assert_eq!(quirks.learned().len(), 1);
    // The next change of the pass goes straight to a read and a PUT.
    let again = client::apply_one(&t, &o, &e).await;
    assert!(again.is_ok());
    assert_eq!(t.calls()[3..], [("GET", "/Users/u1".to_string()), ("PUT", "/Users/u1".into())]);
}

#[tokio::test]
async fn a_refused_filter_falls_back_to_the_listing_and_the_quirk_is_learned() {
    use super::discovery::Listing;
    use super::quirks::{Quirk, Quirks};
    let t = numbered(|r, _| match (r.method, r.path.as_str()) {
        ("GET", p) if p.contains("filter=") => fail(400, "filter not supported"),
        ("GET", p) if p.starts_with("/Users?") => ok(json!({
            "totalResults": 1, "startIndex": 1, "itemsPerPage": 1,
            "Resources": [{"id": "h1", "userName": "E1@Example.com"}]})),
        ("PATCH", "/Users/h1") => ok(Value::Null),
        _ => fail(500, "unexpected"),
    });
    let quirks = Quirks::default();
    let e = Effective {
        listing: Some(Listing::default()),
        quirks: Some(quirks.clone()),
        ..eff(true, false)
    };
    let o = op(OpKind::Create, "E1", None);
    let r = client::apply_one(&t, &o, &e).await;
    assert_eq!(r, Ok(Applied::done(Some("h1".into())).as_adopted()), "adopted, not created");
    assert!(quirks.has(Quirk::FilterUnusable));
    assert!(t.calls().iter().all(|(m, _)| *m != "POST"), "{:?}", t.calls());
}

#[tokio::test]
async fn a_patch_answered_without_the_resource_is_read_back_once_per_pass() {
    use super::quirks::Quirks;
    let o = op(OpKind::Update, "E1", Some("u1"));
    let record = o.record.clone().unwrap();
    let mut stored = super::requests::resource(Some(&record), None);
    stored["id"] = json!("u1");
    stored["schemas"] = json!([super::requests::USER_SCHEMA]);
    let t = numbered(move |r, _| match r.method {
        "PATCH" => Ok(Response {
            status: 204,
            body: Value::Null,
        }),
        "GET" => ok(stored.clone()),
        _ => fail(500, "unexpected"),
    });
    let e = Effective {
        quirks: Some(Quirks::default()),
        ..eff(true, false)
    };
    client::apply_one(&t, &o, &e).await.unwrap();
    client::apply_one(&t, &o, &e).await.unwrap();
    assert_eq!(
        t.calls(),
        [
            ("PATCH", "/Users/u1".to_string()),
            ("GET", "/Users/u1".into()),
            ("PATCH", "/Users/u1".into())
        ],
        "read back once: it matched, so the next PATCH is trusted"
    );
}

#[tokio::test]
async fn a_recreate_whose_create_meets_an_unexplained_409_keeps_the_old_account_active() {
    let t = numbered(|r, _| match r.method {
        "GET" => ok(json!({"Resources": []})),
        "POST" => fail(409, "userName taken"),
        _ => fail(500, "unexpected"),
    });
    let o = op(OpKind::Recreate, "E1", Some("old"));
    match client::apply_one(&t, &o, &eff(true, false)).await {
        Ok(Applied::Manual { vendor_id, reason }) => {
            assert!(reason.contains("userName taken"), "{reason}");
            assert_eq!(vendor_id.as_deref(), Some("old"), "the old account's id is kept");
        }
        other => panic!("{other:?}"),
    }
    assert!(
        t.calls().iter().all(|(m, _)| *m != "PATCH" && *m != "PUT"),
        "the old account is not deactivated: {:?}",
        t.calls()
    );
}
