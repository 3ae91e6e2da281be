use super::*;
use crate::user::Attributes;

fn user(first: &str, phone: Option<&str>) -> User {
    User {
        external_id: "E1".into(),
        email: "ada@example.com".into(),
        first_name: first.into(),
        last_name: "Lovelace".into(),
        phone: phone.map(str::to_string),
        status_active: true,
        start_date: None,
        termination_date: None,
        attributes: Attributes::default(),
    }
}

fn hesh() -> Hesh {
    Hesh {
        info: ProviderInfo {
            name: "hesh".into(),
            provider_type: ProviderType::Hesh,
            capabilities: capabilities(100),
        },
        mapping: Default::default(),
        batch_size: 100,
        tenant_id: uuid::Uuid::nil(),
        api_key: secrecy::SecretString::from("k".to_string()),
    }
}

#[test]
fn first_name_over_ten_characters_is_rejected_with_the_limit() {
    let err = map_user(&user("Maximilian-Alexander", None))
        .err()
        .unwrap_or_default();
    assert!(err.contains("first_name is 20 characters"), "{err}");
    assert!(err.contains("1 to 10"), "{err}");
    assert!(map_user(&user("Maximilian", None)).is_ok());
}

#[test]
fn email_change_needs_an_unchanged_phone() {
    let h = hesh();
    let old = map_user(&user("Ada", Some("+331"))).unwrap().to_stored();
    let mut u = user("Ada", Some("+331"));
    u.email = "ada.l@example.com".into();
    assert!(h.check_update(&old, &map_user(&u).unwrap()).is_ok());
    u.phone = Some("+332".into());
    assert!(h.check_update(&old, &map_user(&u).unwrap()).is_err());
    let old_no_phone = map_user(&user("Ada", None)).unwrap().to_stored();
    let mut u = user("Ada", None);
    u.email = "ada.l@example.com".into();
    assert!(h
        .check_update(&old_no_phone, &map_user(&u).unwrap())
        .is_err());
}

#[test]
fn name_change_is_updatable() {
    let h = hesh();
    let old = map_user(&user("Ada", None)).unwrap().to_stored();
    assert!(h
        .check_update(&old, &map_user(&user("Augusta", None)).unwrap())
        .is_ok());
}

mod client_tests {
    use serde_json::{json, Value};

    use crate::plan::{OpKind, Operation};
    use crate::providers::call::{Applied, CallError, Response};
    use crate::providers::hesh::client;
    use crate::providers::scripted::{operation, scripted};

    fn op(kind: OpKind, id: &str, phone: Option<&str>) -> Operation {
        let mut u = super::user("Ada", phone);
        u.external_id = id.into();
        u.email = format!("{}@example.com", id.to_lowercase());
        let record = super::map_user(&u).unwrap();
        operation(kind, &u, record, None)
    }

    fn ok(status: u16, body: Value) -> Result<Response, CallError> {
        Ok(Response { status, body })
    }

    #[tokio::test]
    async fn batch_create_adopts_skipped_users_by_email_only() {
        let t = scripted(|r| match (r.method, r.path.as_str()) {
            ("POST", "/api/v1/public/users/batch") => {
                // hesh created e1 and skipped e2 (it already had that email).
                ok(201, json!([{ "id": "h-1", "email": "E1@example.com" }]))
            }
            ("PUT", "/api/v1/public/users") => {
                ok(200, json!({ "id": "h-2", "email": "e2@example.com" }))
            }
            _ => Err(CallError::new(Some(500), "unexpected")),
        });
        let ops = [
            op(OpKind::Create, "E1", Some("+331")),
            op(OpKind::Create, "E2", Some("+332")),
        ];
        let refs: Vec<&Operation> = ops.iter().collect();
        let results = client::apply(&t, &refs).await;
        assert_eq!(results[0], Ok(Applied::done(Some("h-1".into()))));
        match &results[1] {
            Ok(Applied::Done {
                vendor_id,
                record: Some(r),
                adopted: true,
            }) => {
                assert_eq!(vendor_id.as_deref(), Some("h-2"));
                assert_eq!(
                    r.get("phone"),
                    None,
                    "the confirmed record says the phone was not sent"
                );
            }
            other => panic!("{other:?}"),
        }
        let log = t.log.lock().unwrap();
        assert_eq!(log.len(), 2);
        assert_eq!(
            log[0].body.as_ref().unwrap()["users"]
                .as_array()
                .unwrap()
                .len(),
            2
        );
        let adopt = log[1].body.as_ref().unwrap();
        assert_eq!(adopt["email"], "e2@example.com");
        assert!(
            adopt.get("phone").is_none(),
            "adoption must not match by phone: {adopt}"
        );
        assert_eq!(adopt["status"], "Active");
    }

    #[tokio::test]
    async fn a_re_enable_that_finds_no_account_creates_one_and_a_leavers_404_is_absent() {
        // The rehire's account is gone at hesh (or never was: a leaver's blind
        // disable): the PUT finds nothing by email or phone, so a create follows.
        let t = scripted(|r| match (r.method, r.path.as_str()) {
            ("PUT", "/api/v1/public/users") => Err(CallError::new(Some(404), "User not found")),
            ("POST", "/api/v1/public/users") => ok(201, json!({ "id": "h-9" })),
            ("PATCH", "/api/v1/public/users/disable") => {
                Err(CallError::new(Some(404), "User not found"))
            }
            _ => Err(CallError::new(Some(500), "unexpected")),
        });
        let enable = op(OpKind::Enable, "E9", None);
        let results = client::apply(&t, &[&enable]).await;
        assert_eq!(results[0], Ok(Applied::done(Some("h-9".into()))));
        let calls: Vec<&str> = t.calls().iter().map(|(m, _)| *m).collect();
        assert_eq!(calls, ["PUT", "POST"]);
        // An update is not turned into a create, nor a plain disable's 404 into Absent.
        let update = op(OpKind::Update, "E9", None);
        assert!(client::apply(&t, &[&update]).await[0].is_err());
        let disable = Operation { op: OpKind::Disable, record: None, ..op(OpKind::Create, "E9", None) };
        assert!(client::apply(&t, &[&disable]).await[0].is_err());
        let leaver = Operation { adopt: true, ..disable.clone() };
        assert_eq!(client::apply(&t, &[&leaver]).await[0], Ok(Applied::Absent));
    }

    #[tokio::test]
    async fn an_adopted_account_that_already_has_the_phone_is_confirmed_whole() {
        // A create resent after a crash: hesh refuses it (it made the account before
        // the crash) and the adopting PUT's answer shows the phone is already right.
        let t = scripted(|r| match (r.method, r.path.as_str()) {
            ("POST", "/api/v1/public/users") => {
                Err(CallError::new(Some(409), "User already exists"))
            }
            ("PUT", "/api/v1/public/users") => ok(
                200,
                json!({ "id": "h-3", "email": "e3@example.com", "phone": "+333" }),
            ),
            _ => Err(CallError::new(Some(500), "unexpected")),
        });
        let ops = [op(OpKind::Create, "E3", Some("+333"))];
        let refs: Vec<&Operation> = ops.iter().collect();
        let results = client::apply(&t, &refs).await;
        assert_eq!(results[0], Ok(Applied::done(Some("h-3".into())).as_adopted()));
        let adopt = t.sent()[1].body.clone().unwrap();
        assert!(
            adopt.get("phone").is_none(),
            "still matched by email only: {adopt}"
        );
    }

    #[tokio::test]
    async fn adoption_with_no_account_for_the_email_fails_clearly() {
        let t = scripted(|r| match r.method {
            "POST" => Err(CallError::new(Some(409), "User already exists")),
            _ => Err(CallError::new(Some(404), "User not found")),
        });
        let o = op(OpKind::Create, "E1", Some("+331"));
        let results = client::apply(&t, &[&o]).await;
        let err = results[0].clone().unwrap_err();
        assert_eq!(err.status, Some(404));
        assert!(
            err.message
                .contains("another account holds the phone number"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn a_failed_batch_fails_every_create_in_it() {
        let t = scripted(|_| Err(CallError::new(Some(400), "users.0.first_name too long")));
        let ops = [
            op(OpKind::Create, "E1", None),
            op(OpKind::Create, "E2", None),
        ];
        let refs: Vec<&Operation> = ops.iter().collect();
        let results = client::apply(&t, &refs).await;
        assert!(results
            .iter()
            .all(|r| r.as_ref().is_err_and(|e| e.message.contains("too long"))));
    }

    #[tokio::test]
    async fn update_enable_disable_and_recreate_send_the_documented_calls() {
        let t = scripted(|r| match r.method {
            "PUT" => ok(200, json!({ "id": "h-9" })),
            "PATCH" => ok(200, json!({ "message": "disabled" })),
            "POST" => ok(201, json!({ "id": 17 })),
            _ => Err(CallError::new(Some(500), "unexpected")),
        });
        for kind in [
            OpKind::Update,
            OpKind::Enable,
            OpKind::Disable,
            OpKind::Recreate,
        ] {
            let o = op(kind, "E1", None);
            let result = client::apply(&t, &[&o]).await.remove(0);
            assert!(result.is_ok(), "{kind:?}: {result:?}");
        }
        let log = t.log.lock().unwrap();
        let calls: Vec<(&str, &str)> = log.iter().map(|r| (r.method, r.path.as_str())).collect();
        assert_eq!(
            calls,
            [
                ("PUT", "/api/v1/public/users"),
                ("PUT", "/api/v1/public/users"),
                ("PATCH", "/api/v1/public/users/disable"),
                // recreate: the old account is disabled before the new one exists
                ("PATCH", "/api/v1/public/users/disable"),
                ("POST", "/api/v1/public/users"),
            ]
        );
        assert_eq!(
            log[2].body.as_ref().unwrap(),
            &json!({ "external_user_id": "E1" })
        );
    }

    #[test]
    fn units_batch_creates_and_keep_the_rest_alone() {
        let ops: Vec<Operation> = (0..5)
            .map(|i| {
                op(
                    if i == 2 {
                        OpKind::Disable
                    } else {
                        OpKind::Create
                    },
                    &format!("E{i}"),
                    None,
                )
            })
            .collect();
        assert_eq!(
            client::units(&ops, 3),
            vec![vec![0, 1, 3], vec![4], vec![2]]
        );
        assert_eq!(client::units(&ops[..1], 3), vec![vec![0]]);
    }

    /// Found by the response fuzzer: a batch create answered `{}` (or an empty 201)
    /// had every user "adopted" by a PUT, though hesh said nothing of what it made.
    #[tokio::test]
    async fn a_batch_answer_that_is_not_a_list_fails_every_create_in_it() {
        let t = scripted(|r| match r.method {
            "POST" => ok(201, json!({ "created": 2 })),
            _ => ok(200, json!({ "id": "h1" })),
        });
        let (a, b) = (
            op(OpKind::Create, "E1", None),
            op(OpKind::Create, "E2", None),
        );
        let results = client::apply(&t, &[&a, &b]).await;
        assert_eq!(results.len(), 2);
        for r in results {
            let e = r.unwrap_err();
            assert!(e.message.contains("not with the list of users"), "{e}");
        }
        assert_eq!(
            t.calls().len(),
            1,
            "no PUT after an answer that says nothing"
        );
    }

    /// Found by the response fuzzer: `base_url` pointing at a web app that answers
    /// `200 index.html` had every create and disable reported done.
    #[tokio::test]
    async fn answers_that_are_not_json_confirm_no_create_and_no_disable() {
        use crate::providers::Provider;
        let html = Value::String("<!DOCTYPE html><html><body>app</body></html>".into());
        let t = scripted(move |_| ok(200, html.clone()));
        let h = super::hesh();
        let create = op(OpKind::Create, "E1", None);
        let mut disable = op(OpKind::Disable, "E2", None);
        disable.record = None;
        for o in [&create, &disable] {
            let e = h.apply(&t, &[o]).await.remove(0).unwrap_err();
            assert_eq!(e.status, Some(200));
            assert!(e.message.contains("is not JSON"), "{e}");
            assert!(e.message.contains("<!DOCTYPE html>"), "{e}");
        }
    }

    #[test]
    fn blank_error_messages_say_nothing() {
        assert_eq!(client::error_message(&json!({"message": []})), None);
        assert_eq!(client::error_message(&json!({"message": ["", " "]})), None);
        assert_eq!(
            client::error_message(&json!({"message": " ", "error": "Bad Request"})).as_deref(),
            Some("Bad Request")
        );
        assert_eq!(client::error_message(&json!({"error": "  "})), None);
    }

    #[test]
    fn error_message_reads_string_or_list() {
        assert_eq!(
            client::error_message(&json!({"message": "bad"})).as_deref(),
            Some("bad")
        );
        assert_eq!(
            client::error_message(&json!({"message": ["a", "b"], "statusCode": 400})).as_deref(),
            Some("a; b")
        );
        assert_eq!(
            client::error_message(&json!({"error": "Unauthorized"})).as_deref(),
            Some("Unauthorized")
        );
        assert_eq!(client::error_message(&json!("<html>")), None);
    }
}
