//! The saleschat client against a scripted transport.

use serde_json::{json, Value};

use super::client::{self, generate_password, is_strong, NOT_IN_ORG, PASSWORD_LEN};
use crate::plan::{FieldChange, OpKind, Operation};
use crate::providers::call::{Applied, CallError, Response};
use crate::providers::scripted::{self, scripted};
use crate::providers::Request;

const ORG: &str = "org-1";

fn op(kind: OpKind, email: &str, vendor_id: Option<&str>) -> Operation {
    let mut u = scripted::user("E1");
    u.email = email.into();
    let record = super::map_user(&u).unwrap();
    let mut op = scripted::operation(kind, &u, record, vendor_id);
    // Only a create carries its record here: the other calls must not need one.
    if !matches!(kind, OpKind::Create | OpKind::Recreate) {
        op.record = None;
        op.fingerprint = None;
    }
    op
}

fn ok(body: Value) -> Result<Response, CallError> {
    Ok(Response { status: 200, body })
}

fn page(items: Value, has_more: bool) -> Result<Response, CallError> {
    ok(json!({ "items": items, "has_more": has_more }))
}

fn query(r: &Request, key: &str) -> Option<String> {
    let (_, q) = r.path.split_once('?')?;
    url::form_urlencoded::parse(q.as_bytes())
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.into_owned())
}

#[test]
fn passwords_are_long_strong_and_fresh() {
    let a = generate_password().unwrap();
    let b = generate_password().unwrap();
    assert_eq!(a.chars().count(), PASSWORD_LEN);
    assert!(is_strong(&a) && is_strong(&b));
    assert_ne!(a, b);
    assert!(!is_strong("alllowercase1!"));
}

#[tokio::test]
async fn create_sends_a_password_then_confirms_membership_across_pages() {
    let t = scripted(|r| match r.method {
        "POST" => ok(json!({ "user_id": "u-9" })),
        _ => match query(r, "offset").as_deref() {
            // The partial match returns a look-alike first, the user on page two.
            Some("0") => page(json!([{ "id": "x", "email": "xada@example.com" }]), true),
            _ => page(
                json!([{ "id": "u-9", "email": "ADA@example.com", "extra": 1 }]),
                false,
            ),
        },
    });
    let o = op(OpKind::Create, "ada@example.com", None);
    let out = client::apply(&t, &[&o], ORG).await;
    assert_eq!(out, vec![Ok(Applied::done(Some("u-9".into())))]);
    let log = t.log.lock().unwrap();
    assert_eq!(log.len(), 3);
    assert_eq!(log[0].path, "/v1/org/org-1/user");
    let body = log[0].body.as_ref().unwrap();
    assert_eq!(body["ask_user_to_update_password_on_login"], true);
    let pw = body["password"].as_str().unwrap();
    assert!(pw.len() >= 24 && is_strong(pw));
    assert_eq!(query(&log[1], "q").as_deref(), Some("ada@example.com"));
    assert_eq!(query(&log[1], "size").as_deref(), Some("100"));
    assert_eq!(query(&log[2], "offset").as_deref(), Some("1"));
}

#[tokio::test]
async fn find_matches_an_email_in_another_case_beyond_ascii_and_nothing_partial() {
    let t = scripted(|r| match r.method {
        "POST" => ok(json!({ "user_id": "u-5" })),
        // A partial match first (it contains the email), then the member in capitals.
        _ => page(
            json!([
                { "id": "x", "email": "zoë@example.com.old" },
                { "id": "u-5", "email": "ZOË@Example.com" }
            ]),
            false,
        ),
    });
    let o = op(OpKind::Create, "zoë@example.com", None);
    let out = client::apply(&t, &[&o], ORG).await;
    assert_eq!(out, vec![Ok(Applied::done(Some("u-5".into())))]);
}

#[tokio::test]
async fn a_created_user_missing_from_the_org_is_manual_with_its_id() {
    let t = scripted(|r| match r.method {
        "POST" => ok(json!({ "user_id": "u-1" })),
        _ => ok(json!({})), // no items, no has_more: tolerated
    });
    let o = op(OpKind::Create, "ada@example.com", None);
    let out = client::apply(&t, &[&o], ORG).await;
    assert_eq!(
        out,
        vec![Ok(Applied::Manual {
            vendor_id: Some("u-1".into()),
            reason: NOT_IN_ORG.into()
        })]
    );
}

#[tokio::test]
async fn an_existing_email_is_adopted_through_find_or_fails_clearly() {
    let found = scripted(|r| match r.method {
        "POST" => Err(CallError::new(Some(422), "saleschat answered 422: exists")),
        _ => page(json!([{ "id": 7, "email": "ada@example.com" }]), false),
    });
    let o = op(OpKind::Create, "ada@example.com", None);
    assert_eq!(
        client::apply(&found, &[&o], ORG).await,
        vec![Ok(Applied::done(Some("7".into())).as_adopted())]
    );
    let missing = scripted(|r| match r.method {
        "POST" => Err(CallError::new(Some(422), "saleschat answered 422: bad")),
        _ => page(json!([]), false),
    });
    let err = client::apply(&missing, &[&o], ORG)
        .await
        .remove(0)
        .unwrap_err();
    assert_eq!(err.status, Some(422));
    assert!(err.message.contains("saleschat answered 422: bad"), "{err}");
    assert!(
        err.message.contains("no member with ada@example.com"),
        "{err}"
    );
    // Other refusals are not adopted.
    let other = scripted(|_| Err(CallError::new(Some(403), "forbidden")));
    let err = client::apply(&other, &[&o], ORG)
        .await
        .remove(0)
        .unwrap_err();
    assert_eq!(err.status, Some(403));
    assert_eq!(other.log.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn disable_enable_delete_go_by_id_and_find_it_when_unknown() {
    let t = scripted(|r| match r.method {
        "GET" => page(json!([{ "id": "u 5", "email": "ada@example.com" }]), false),
        _ => Ok(Response {
            status: 204,
            body: Value::Null,
        }),
    });
    let d = op(OpKind::Disable, "ada@example.com", Some("u-1"));
    let e = op(OpKind::Enable, "ada@example.com", None);
    let x = op(OpKind::Delete, "ada@example.com", Some("u-2"));
    let out = client::apply(&t, &[&d, &e, &x], ORG).await;
    assert_eq!(
        out,
        vec![
            Ok(Applied::done(Some("u-1".into()))),
            Ok(Applied::done(Some("u 5".into()))),
            Ok(Applied::done(Some("u-2".into()))),
        ]
    );
    let paths: Vec<String> = t
        .log
        .lock()
        .unwrap()
        .iter()
        .map(|r| r.path.clone())
        .collect();
    assert_eq!(paths[0], "/v1/org/org-1/user/u-1/disable");
    assert!(paths[1].starts_with("/v1/org/org-1/user?q="));
    assert_eq!(paths[2], "/v1/org/org-1/user/u%205/enable");
    assert_eq!(paths[3], "/v1/org/org-1/user/u-2/delete");
}

#[tokio::test]
async fn a_delete_of_a_user_already_gone_is_done_a_disable_is_not() {
    let t = scripted(|_| Err(CallError::new(Some(404), "saleschat answered 404: gone")));
    let x = op(OpKind::Delete, "ada@example.com", Some("u-2"));
    let d = op(OpKind::Disable, "ada@example.com", Some("u-2"));
    let out = client::apply(&t, &[&x, &d], ORG).await;
    assert!(out[0].is_ok());
    assert_eq!(out[1].as_ref().unwrap_err().status, Some(404));
}

#[tokio::test]
async fn recreate_creates_the_new_account_then_disables_the_old() {
    let t = scripted(|r| match (r.method, r.path.as_str()) {
        ("POST", p) if p.ends_with("/user") => ok(json!({ "user_id": "new" })),
        ("GET", _) => page(
            json!([{ "id": "new", "email": "ada.l@example.com" }]),
            false,
        ),
        _ => Ok(Response {
            status: 204,
            body: Value::Null,
        }),
    });
    let mut o = op(OpKind::Recreate, "ada.l@example.com", Some("old"));
    o.changes.push(FieldChange {
        field: "email".into(),
        old: Some("ada@example.com".into()),
        new: Some("ada.l@example.com".into()),
    });
    let out = client::apply(&t, &[&o], ORG).await;
    assert_eq!(out, vec![Ok(Applied::done(Some("new".into())))]);
    let log = t.log.lock().unwrap();
    assert_eq!(log.last().unwrap().path, "/v1/org/org-1/user/old/disable");
}

#[tokio::test]
async fn an_update_is_refused_without_sending() {
    let t = scripted(|_| ok(Value::Null));
    let o = op(OpKind::Update, "ada@example.com", Some("u"));
    let err = client::apply(&t, &[&o], ORG).await.remove(0).unwrap_err();
    assert!(err.message.contains("no call to change"), "{err}");
    assert!(t.log.lock().unwrap().is_empty());
}
