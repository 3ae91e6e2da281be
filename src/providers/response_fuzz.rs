//! A fuzzing stand-in (proptest, part of `cargo test`) for every vendor's response
//! parser: each adapter, built from a real config, carries out random operations of
//! every kind against a scripted vendor that answers with arbitrary statuses and
//! bodies (nested JSON with the vendors' real field names, HTML pages, empty and
//! truncated bodies, huge arrays, 4xx / 5xx / dropped calls).
//!
//! What must hold whatever the vendor says: no panic; one result per operation; no
//! vendor id that is blank; every failure and manual action says something; no
//! secret in any message; a vendor that only ever answers 2xx with something that is
//! not JSON confirms nothing; and a create is only `Done` without an id where the
//! adapter documents that it does not need one (hesh has no read call and keys
//! everything by external id and email; vyte looks the id up by email when needed).
//! The SCIM discovery parser and every `error_message` are fuzzed on their own.
//!
//! `PROPTEST_CASES` raises the case count for a longer local run.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use proptest::prelude::*;
use serde_json::{json, Map, Value};

use super::call::{Applied, CallError, OpResult, Response};
use super::scim::discovery::{Effective, Features};
use super::scim::Mode;
use super::scripted::{scripted, user};
use super::{build, Provider, ProviderType};
use crate::config::Config;
use crate::net::lenient_json;
use crate::plan::{FieldChange, OpKind, Operation};

const CONFIG: &str = r#"
source:
  type: csv
  path: users.csv
  fields: { external_id: employee_id, email: work_email }
providers:
  - name: hesh
    type: hesh
    base_url: https://api.hesh.example
    api_key: ${HESH_KEY}
    tenant_id: 3f2b8c1e-6d4a-4e2b-9c1a-2b3c4d5e6f70
    batch_size: 2
  - name: chat
    type: saleschat
    base_url: https://api.saleschat.example
    token_file: secret.token
    org_id: org-42
    on_remove: delete
  - name: vyte
    type: vyte
    base_url: https://api.vyte.example
    api_key: ${VYTE_KEY}
    batch: true
  - name: zaia
    type: zaia
    base_url: https://api.zaia.example
    api_key: ${ZAIA_KEY}
    channel_id: 8d1c2b3a-4e5f-4a6b-8c7d-9e0f1a2b3c4d
  - name: scim-auto
    type: scim
    base_url: https://app.example/scim/v2
    bearer_token_file: secret.token
    bulk_size: 3
    on_remove: delete
  - name: scim-put
    type: scim
    base_url: https://app.example/scim/v2
    bearer_token_file: secret.token
    patch: off
    bulk: on
    etag: on
    bulk_size: 2
"#;

/// Every secret in [`CONFIG`] contains this: no message may.
const SECRET_MARK: &str = "secret-value";

fn env(name: &str) -> Option<String> {
    Some(format!("{}-{SECRET_MARK}", name.to_lowercase()))
}

/// The config's providers (the directory holds the token file while they are built).
fn configs() -> Vec<crate::config::ProviderConfig> {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("secret.token"),
        format!("t-{SECRET_MARK}\n"),
    )
    .unwrap();
    let config = Config::from_yaml(CONFIG, &dir.path().join("rosterd.yaml"), &env).unwrap();
    config.providers
}

fn config_named(name: &str) -> crate::config::ProviderConfig {
    configs().into_iter().find(|p| p.name == name).unwrap()
}

// ----- bodies -------------------------------------------------------------------

/// Strings a vendor might put anywhere: ids (good, blank, odd), the operations'
/// emails in other cases, booleans and numbers as text, markup.
fn any_string() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        Just("  ".to_string()),
        Just("u1".to_string()),
        Just("42".to_string()),
        Just(" u2 ".to_string()),
        Just("true".to_string()),
        Just("5".to_string()),
        Just("%20".to_string()),
        Just("https://app.example/scim/v2/Users/u9".to_string()),
        Just("https://app.example/scim/v2/Users/%20".to_string()),
        Just("8d1c2b3a-4e5f-4a6b-8c7d-9e0f1a2b3c4d".to_string()),
        Just("already exists".to_string()),
        Just("<b>oops</b>".to_string()),
        (0..4usize).prop_map(|i| format!("emp{i}@example.com")),
        (0..4usize).prop_map(|i| format!("EMP{i}@EXAMPLE.COM")),
        (0..4usize).prop_map(|i| format!("EMP{i}")),
        "\\PC{0,12}",
    ]
}

/// Field names the vendors really use, and a few they do not.
fn any_key() -> impl Strategy<Value = String> {
    prop::sample::select(vec![
        "id",
        "_id",
        "user_id",
        "email",
        "emails",
        "address",
        "value",
        "items",
        "has_more",
        "Resources",
        "totalResults",
        "users",
        "data",
        "results",
        "externalUsers",
        "user",
        "externalId",
        "identifier",
        "channelId",
        "userName",
        "meta",
        "version",
        "Operations",
        "bulkId",
        "status",
        "code",
        "location",
        "response",
        "message",
        "error",
        "msg",
        "error_message",
        "error_description",
        "detail",
        "scimType",
        "feedback",
        "enUs",
        "name",
        "supported",
        "patch",
        "bulk",
        "filter",
        "etag",
        "maxOperations",
        "maxPayloadSize",
        "account",
        "organization",
        "extid",
        "other",
    ])
    .prop_map(str::to_string)
}

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        (0u64..600).prop_map(Value::from),
        Just(json!(u64::MAX)),
        Just(json!(1e300)),
        Just(json!(-0.5)),
        any_string().prop_map(Value::String),
    ]
}

/// Arbitrary JSON a few levels deep, keyed with the vendors' field names.
fn any_json() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(3, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((any_key(), inner), 0..6)
                .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// A user as one of the vendors might list it: a few id and email fields, mixed.
fn user_object() -> impl Strategy<Value = Value> {
    prop::collection::vec(
        (
            prop::sample::select(vec![
                "id",
                "_id",
                "user_id",
                "email",
                "externalId",
                "identifier",
                "userName",
                "channelId",
                "bulkId",
                "status",
                "location",
            ]),
            leaf(),
        ),
        0..6,
    )
    .prop_map(|kv| {
        Value::Object(
            kv.into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect::<Map<_, _>>(),
        )
    })
}

/// The shapes the vendors answer with, filled with arbitrary users.
fn shaped() -> impl Strategy<Value = Value> {
    let users = || prop::collection::vec(user_object(), 0..5);
    prop_oneof![
        users().prop_map(Value::Array),
        (users(), any::<bool>()).prop_map(|(u, more)| json!({ "items": u, "has_more": more })),
        (users(), 0u64..10).prop_map(|(u, n)| json!({ "Resources": u, "totalResults": n })),
        users().prop_map(|u| json!({ "users": u })),
        users().prop_map(|u| json!({ "Operations": u })),
        user_object(),
        user_object().prop_map(|u| json!({ "user": u })),
        (
            any::<bool>(),
            any::<bool>(),
            any::<bool>(),
            any::<bool>(),
            leaf(),
            leaf()
        )
            .prop_map(|(p, b, f, e, ops, size)| json!({
                "patch": { "supported": p },
                "bulk": { "supported": b, "maxOperations": ops, "maxPayloadSize": size },
                "filter": { "supported": f },
                "etag": { "supported": e },
            })),
    ]
}

/// A body as the HTTP transport hands it over.
fn any_body() -> impl Strategy<Value = Value> {
    prop_oneof![
        3 => any_json(),
        4 => shaped(),
        1 => Just(Value::Null),
        1 => Just(lenient_json(
            "<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head>\n<body>nginx</body></html>"
        )),
        // Truncated JSON, cut where a connection would drop it.
        1 => (shaped(), any::<prop::sample::Index>()).prop_map(|(v, cut)| {
            let text = v.to_string();
            let at = cut.index(text.len().max(1));
            lenient_json(text.get(..at).unwrap_or(&text))
        }),
        // Huge arrays: more than a page of users, or of noise.
        1 => (user_object(), 101usize..400).prop_map(|(u, n)| Value::Array(vec![u; n])),
        1 => (user_object(), 101usize..400, any::<bool>())
            .prop_map(|(u, n, more)| json!({ "items": vec![u; n], "has_more": more })),
    ]
}

#[derive(Debug, Clone)]
enum Answer {
    Ok(u16, Value),
    Err(Option<u16>, String),
}

fn any_answer() -> impl Strategy<Value = Answer> {
    prop_oneof![
        3 => (prop::sample::select(vec![200u16, 201, 202, 204]), any_body())
            .prop_map(|(s, b)| Answer::Ok(s, b)),
        1 => (
            prop::sample::select(vec![
                Some(400u16), Some(401), Some(403), Some(404), Some(409), Some(412),
                Some(413), Some(422), Some(429), Some(500), Some(501), Some(502), Some(503), None,
            ]),
            prop::sample::select(vec![
                "HTTP error", "email already exists", "duplicate user", "not found",
                "<html>502</html>", "connection reset",
            ]),
        )
            .prop_map(|(s, m)| Answer::Err(s, m.to_string())),
    ]
}

// ----- operations ---------------------------------------------------------------

fn any_kind() -> impl Strategy<Value = OpKind> {
    prop::sample::select(OpKind::ALL.to_vec())
}

/// (kind, which user, vendor id known, record given to an enable)
type OpSeed = (OpKind, usize, Option<&'static str>, bool);

fn any_ops() -> impl Strategy<Value = Vec<OpSeed>> {
    prop::collection::vec(
        (
            any_kind(),
            0..4usize,
            prop::sample::select(vec![None, Some("u1"), Some("42")]),
            any::<bool>(),
        ),
        1..7,
    )
}

/// Operations as the planner makes them, with the provider's own mapping.
fn operations(provider: &dyn Provider, seeds: &[OpSeed]) -> Vec<Operation> {
    seeds
        .iter()
        .map(|&(op, i, vendor_id, enable_with_record)| {
            let mut u = user(&format!("EMP{i}"));
            let old_email = u.email.clone();
            if op == OpKind::Recreate {
                u.email = format!("new{i}@example.com");
            }
            let record = provider.map_user(&u).unwrap();
            let record = match op {
                OpKind::Disable | OpKind::Delete => None,
                OpKind::Enable if !enable_with_record => None,
                _ => Some(record),
            };
            let changes = match op {
                OpKind::Recreate => vec![FieldChange {
                    field: "email".into(),
                    old: Some(old_email),
                    new: Some(u.email.clone()),
                }],
                _ => Vec::new(),
            };
            Operation {
                op,
                external_id: u.external_id.clone(),
                email: u.email.clone(),
                vendor_id: vendor_id
                    .filter(|_| op != OpKind::Create)
                    .map(str::to_string),
                reason: "fuzz".into(),
                changes,
                fingerprint: record.as_ref().map(super::Record::fingerprint),
                adopt: false,
                record,
            }
        })
        .collect()
}

// ----- the run ------------------------------------------------------------------

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap()
}

/// Applies every unit of `ops` with the vendor answering from `answers` in turn;
/// returns each operation's result, by index into `ops`.
fn run(provider: &dyn Provider, ops: &[Operation], answers: &[Answer]) -> Vec<Option<OpResult>> {
    let next = std::sync::atomic::AtomicUsize::new(0);
    let transport = scripted(|_req| {
        let n = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        match &answers[n % answers.len()] {
            Answer::Ok(status, body) => Ok(Response {
                status: *status,
                body: if *status == 204 {
                    Value::Null
                } else {
                    body.clone()
                },
            }),
            Answer::Err(status, message) => Err(CallError::new(*status, message.clone())),
        }
    });
    let rt = runtime();
    let mut out: Vec<Option<OpResult>> = vec![None; ops.len()];
    for unit in provider.units(ops) {
        let refs: Vec<&Operation> = unit.iter().map(|&i| &ops[i]).collect();
        let results = rt.block_on(provider.apply(&transport, &refs));
        assert_eq!(
            results.len(),
            unit.len(),
            "one result per operation of the unit {unit:?}"
        );
        for (i, r) in unit.into_iter().zip(results) {
            assert!(out[i].is_none(), "operation {i} is in two units");
            out[i] = Some(r);
        }
    }
    out
}

/// The properties every adapter keeps, whatever the vendor answered.
fn check(provider: &dyn Provider, seeds: &[OpSeed], answers: &[Answer]) {
    let ops = operations(provider, seeds);
    let results = run(provider, &ops, answers);
    let nonsense = answers
        .iter()
        .all(|a| matches!(a, Answer::Ok(s, Value::String(_)) if *s != 204));
    let kind = provider.provider_type();
    for (op, result) in ops.iter().zip(&results) {
        let result = result.as_ref().expect("every operation is in a unit");
        let text = format!("{result:?}");
        assert!(!text.contains(SECRET_MARK), "a secret in {text}");
        match result {
            // Only a leaver's blind disable may say so; none is fuzzed here.
            Ok(Applied::Absent) => panic!("an operation answered as absent: {op:?}"),
            Ok(Applied::Done { vendor_id, .. }) | Ok(Applied::Manual { vendor_id, .. }) => {
                if let Some(id) = vendor_id {
                    assert!(
                        !id.trim().is_empty(),
                        "a blank vendor id: {result:?} for {op:?}"
                    );
                }
                if let Ok(Applied::Manual { reason, .. }) = result {
                    assert!(
                        !reason.trim().is_empty(),
                        "a manual action without a reason"
                    );
                }
                assert!(
                    !nonsense,
                    "{kind} took answers that are not JSON as a confirmation: {result:?} for {op:?}"
                );
                let id_optional = matches!(kind, ProviderType::Hesh | ProviderType::Vyte);
                if op.op == OpKind::Create && !id_optional {
                    assert!(
                        !matches!(
                            result,
                            Ok(Applied::Done {
                                vendor_id: None,
                                ..
                            })
                        ),
                        "{kind} reports a create done without knowing the account: {op:?}"
                    );
                }
            }
            Err(e) => assert!(!e.message.trim().is_empty(), "a failure without a message"),
        }
    }
}

fn cases(default: u32) -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default);
    ProptestConfig {
        cases,
        ..ProptestConfig::default()
    }
}

fn fuzz_vendor(name: &'static str) -> impl Fn(Vec<OpSeed>, Vec<Answer>) {
    let config = config_named(name);
    move |seeds, answers| {
        let provider = build(&config);
        check(provider.as_ref(), &seeds, &answers);
    }
}

proptest! {
    #![proptest_config(cases(64))]

    #[test]
    fn hesh_survives_any_answer(seeds in any_ops(), answers in prop::collection::vec(any_answer(), 1..10)) {
        fuzz_vendor("hesh")(seeds, answers);
    }

    #[test]
    fn saleschat_survives_any_answer(seeds in any_ops(), answers in prop::collection::vec(any_answer(), 1..10)) {
        fuzz_vendor("chat")(seeds, answers);
    }

    #[test]
    fn vyte_survives_any_answer(seeds in any_ops(), answers in prop::collection::vec(any_answer(), 1..10)) {
        fuzz_vendor("vyte")(seeds, answers);
    }

    #[test]
    fn zaia_survives_any_answer(seeds in any_ops(), answers in prop::collection::vec(any_answer(), 1..10)) {
        fuzz_vendor("zaia")(seeds, answers);
    }

    #[test]
    fn scim_with_discovery_survives_any_answer(seeds in any_ops(), answers in prop::collection::vec(any_answer(), 1..10)) {
        fuzz_vendor("scim-auto")(seeds, answers);
    }

    #[test]
    fn scim_with_put_bulk_and_etags_survives_any_answer(seeds in any_ops(), answers in prop::collection::vec(any_answer(), 1..10)) {
        fuzz_vendor("scim-put")(seeds, answers);
    }

    #[test]
    fn answers_that_are_not_json_confirm_nothing_at_any_vendor(
        seeds in any_ops(),
        pages in prop::collection::vec("\\PC{0,40}", 1..4),
        which in 0..6usize,
    ) {
        let answers: Vec<Answer> = pages
            .iter()
            .map(|p| Answer::Ok(200, Value::String(format!("<html>{p}"))))
            .collect();
        let name = ["hesh", "chat", "vyte", "zaia", "scim-auto", "scim-put"][which];
        fuzz_vendor(name)(seeds, answers);
    }

    #[test]
    fn error_messages_of_any_body_are_readable(body in any_body()) {
        for config in configs() {
            let provider = build(&config);
            if let Some(m) = provider.error_message(&body) {
                prop_assert!(!m.trim().is_empty(), "{}: an empty message for {body}", config.name);
            }
        }
    }

    #[test]
    fn service_provider_config_of_any_body_gives_usable_limits(
        body in any_body(),
        size in 1usize..50,
        modes in (0..3usize, 0..3usize, 0..3usize),
    ) {
        let mode = |i: usize| [Mode::Auto, Mode::On, Mode::Off][i];
        let features = Features::parse(&body);
        if let Some(b) = features.bulk {
            prop_assert!(b.max_operations > 0 && b.max_payload_size > 0, "{b:?}");
        }
        let eff = Effective::new(&features, mode(modes.0), mode(modes.1), mode(modes.2), size);
        if let Some(b) = eff.bulk {
            prop_assert!((1..=size).contains(&b.max_operations), "{b:?} for bulk_size {size}");
        }
    }
}
