use serde_json::{json, Value};

use super::client::{self, Directory};
use super::*;
use crate::plan::OpKind;
use crate::providers::call::{Applied, CallError, Response};
use crate::providers::scripted::{operation, scripted, user};
use crate::user::Attributes;

fn op(kind: OpKind, id: &str) -> Operation {
    let u = user(id);
    let record = map_user(&u).unwrap();
    operation(kind, &u, record, None)
}

fn ok(body: Value) -> Result<Response, CallError> {
    Ok(Response { status: 200, body })
}

fn pairs(items: &[(&'static str, &str)]) -> Vec<(&'static str, String)> {
    items.iter().map(|(a, b)| (*a, b.to_string())).collect()
}

#[test]
fn language_timezone_and_picture_come_from_attributes() {
    let mut u = user("E1");
    u.attributes = Attributes::from_pairs([
        ("language".to_string(), "fr".to_string()),
        ("timezone".to_string(), "Europe/Paris".to_string()),
    ]);
    let r = map_user(&u).unwrap();
    let body = requests::user_body(&r, Some("org-1"));
    assert_eq!(body["organization"], "org-1");
    assert_eq!(body["user"]["language"], "fr");
    assert_eq!(body["user"]["timezone"], "Europe/Paris");
    assert!(body["user"].get("picture_url").is_none());
    assert_eq!(body["user"]["account"]["organization"]["extid"], "E1");
}

#[test]
fn units_batch_creates_only_when_configured() {
    let ops: Vec<Operation> = (0..5)
        .map(|i| op(OpKind::Create, &format!("E{i}")))
        .chain([op(OpKind::Update, "U1")])
        .collect();
    assert_eq!(client::units(&ops, None).len(), 6);
    let units = client::units(&ops, Some(2));
    assert_eq!(units, vec![vec![0, 1], vec![2, 3], vec![4], vec![5]]);
    assert_eq!(client::units(&ops[..1], Some(100)), vec![vec![0]]);
}

#[test]
fn error_message_reads_message_or_error() {
    assert_eq!(
        client::error_message(&json!({"message": "Email already used"})).as_deref(),
        Some("Email already used")
    );
    assert_eq!(
        client::error_message(&json!({"error": ["a", "b"]})).as_deref(),
        Some("a; b")
    );
    assert_eq!(client::error_message(&json!({})), None);
}

/// Found by the response fuzzer: blank messages were shown as the vendor's message.
#[test]
fn blank_error_messages_fall_through_to_the_next_key_or_none() {
    assert_eq!(
        client::error_message(&json!({"message": " ", "error": "Forbidden"})).as_deref(),
        Some("Forbidden")
    );
    assert_eq!(client::error_message(&json!({"message": [""]})), None);
    assert_eq!(client::error_message(&json!({"error": [null, " "]})), None);
}

#[tokio::test]
async fn create_adopts_a_listed_email_and_lists_once() {
    let t = scripted(|r| match (r.method, r.path.as_str()) {
        // An object wrapping the array, with unknown fields and an upper-case email.
        ("GET", "/v2/users") => ok(json!({"users": [
            {"_id": "v-1", "emails": ["E1@Example.com"], "calendars": {}},
            {"id": 7, "email": "other@example.com"}
        ]})),
        ("PUT", "/v2/users/v-1") => ok(json!({})),
        ("POST", "/v2/users") => ok(json!({"user": {"_id": "v-2"}})),
        _ => Err(CallError::new(Some(500), "unexpected")),
    });
    let dir = Directory::new();
    let (a, b) = (op(OpKind::Create, "E1"), op(OpKind::Create, "E2"));
    assert_eq!(
        client::apply(&t, &dir, None, &[&a]).await,
        vec![Ok(Applied::done(Some("v-1".into())).as_adopted())]
    );
    assert_eq!(
        client::apply(&t, &dir, None, &[&b]).await,
        vec![Ok(Applied::done(Some("v-2".into())))]
    );
    assert_eq!(
        t.calls(),
        pairs(&[
            ("GET", "/v2/users"),
            ("PUT", "/v2/users/v-1"),
            ("POST", "/v2/users")
        ])
    );
}

#[tokio::test]
async fn an_empty_create_answer_learns_the_id_from_one_more_listing() {
    let created = std::sync::Mutex::new(false);
    let t = scripted(|r| match (r.method, r.path.as_str()) {
        ("GET", "/v2/users") => {
            if *created.lock().unwrap() {
                ok(json!([{"_id": "v-9", "emails": ["e1@example.com"]}]))
            } else {
                ok(json!([]))
            }
        }
        ("POST", "/v2/users") => {
            *created.lock().unwrap() = true;
            ok(Value::Null)
        }
        _ => Err(CallError::new(Some(500), "unexpected")),
    });
    let dir = Directory::new();
    let a = op(OpKind::Create, "E1");
    assert_eq!(
        client::apply(&t, &dir, None, &[&a]).await,
        vec![Ok(Applied::done(Some("v-9".into())))]
    );
    assert_eq!(dir.lists().await, 2);
    // The budget is spent: another id-less create is confirmed without an id.
    let b = op(OpKind::Create, "E2");
    assert_eq!(
        client::apply(&t, &dir, None, &[&b]).await,
        vec![Ok(Applied::done(None))]
    );
    assert_eq!(dir.lists().await, 2);
}

#[tokio::test]
async fn a_create_vyte_does_not_list_afterwards_fails_clearly() {
    let t = scripted(|r| match (r.method, r.path.as_str()) {
        ("GET", "/v2/users") => ok(json!([])),
        ("POST", "/v2/users") => ok(json!({})),
        _ => Err(CallError::new(Some(500), "unexpected")),
    });
    let a = op(OpKind::Create, "E1");
    let result = client::apply(&t, &Directory::new(), None, &[&a]).await;
    let err = result[0].clone().unwrap_err();
    assert!(err.message.contains("does not list"), "{err}");
}

#[tokio::test]
async fn update_puts_by_vendor_id_or_finds_it_by_email() {
    let t = scripted(|r| match (r.method, r.path.as_str()) {
        ("GET", "/v2/users") => ok(json!([{"_id": "v-3", "emails": ["e3@example.com"]}])),
        ("PUT", _) => ok(json!({})),
        _ => Err(CallError::new(Some(500), "unexpected")),
    });
    let dir = Directory::new();
    let mut a = op(OpKind::Update, "E1");
    a.vendor_id = Some("v/1".into());
    let b = op(OpKind::Update, "E3");
    assert_eq!(
        client::apply(&t, &dir, None, &[&a]).await,
        vec![Ok(Applied::done(Some("v/1".into())))]
    );
    assert_eq!(
        client::apply(&t, &dir, None, &[&b]).await,
        vec![Ok(Applied::done(Some("v-3".into())))]
    );
    assert_eq!(
        t.calls(),
        pairs(&[
            ("PUT", "/v2/users/v%2F1"),
            ("GET", "/v2/users"),
            ("PUT", "/v2/users/v-3")
        ])
    );
}

#[tokio::test]
async fn batch_creates_send_one_array_and_adopt_the_listed() {
    let t = scripted(|r| match (r.method, r.path.as_str()) {
        ("GET", "/v2/users") => ok(json!([
            {"_id": "v-0", "emails": ["e0@example.com"]},
            {"_id": "v-2", "emails": ["e2@example.com"]}
        ])),
        ("PUT", "/v2/users/v-0") => ok(json!({})),
        ("POST", "/v2/users/batch") => {
            let n = r.body.as_ref().and_then(Value::as_array).map(Vec::len);
            assert_eq!(n, Some(2));
            ok(json!([{"_id": "v-1", "emails": ["e1@example.com"]}]))
        }
        _ => Err(CallError::new(Some(500), "unexpected")),
    });
    let ops: Vec<Operation> = (0..3)
        .map(|i| op(OpKind::Create, &format!("E{}", [0, 1, 3][i])))
        .collect();
    let refs: Vec<&Operation> = ops.iter().collect();
    let dir = Directory::new();
    let results = client::apply(&t, &dir, None, &refs).await;
    assert_eq!(results[0], Ok(Applied::done(Some("v-0".into())).as_adopted()));
    assert_eq!(results[1], Ok(Applied::done(Some("v-1".into()))));
    // E3 was not in the answer nor in the refreshed list: the create did not take.
    assert!(results[2].is_err(), "{:?}", results[2]);
    assert_eq!(dir.lists().await, 2);
}

#[tokio::test]
async fn disable_never_reaches_vyte() {
    let t = scripted(|_| Err(CallError::new(Some(500), "unexpected")));
    let mut a = op(OpKind::Disable, "E1");
    a.record = None;
    let result = client::apply(&t, &Directory::new(), None, &[&a]).await;
    assert!(result[0]
        .clone()
        .unwrap_err()
        .message
        .contains("manual action"));
    assert!(t.calls().is_empty());
}

#[tokio::test]
async fn a_failed_listing_fails_the_pass_without_asking_again() {
    let t = scripted(|_| Err(CallError::new(None, "connection refused")));
    let dir = Directory::new();
    let (a, b) = (op(OpKind::Create, "E1"), op(OpKind::Create, "E2"));
    for o in [&a, &b] {
        let result = client::apply(&t, &dir, None, &[o]).await;
        let err = result[0].clone().unwrap_err();
        assert!(err.message.contains("cannot list vyte's users"), "{err}");
    }
    assert_eq!(t.calls(), pairs(&[("GET", "/v2/users")]));
}
