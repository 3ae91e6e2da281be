//! The fake hesh itself behaves as hesh's documents say (tests/support/fake_hesh.rs):
//! auth, creates and the batch's skipping, updates matched by email or phone, disables,
//! its fixed-window rate limit and headers, schema validation, fault injection, and
//! that it stops when dropped.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::support;

use std::time::Duration;

use reqwest::{Client, Method, StatusCode};
use serde_json::{json, Value};

use support::fake_hesh::{
    openapi, FakeHesh, FakeHeshOptions, Fault, HeshStatus, HeshUser, BATCH_PATH, DISABLE_PATH,
    USERS_PATH,
};
use support::fake_server::FakeVendor;

/// An address at a domain of our own (built, never written out whole).
fn mail(local: &str) -> String {
    format!("{local}@{}", "hesh.test")
}

fn user(email: &str, first: &str, ext: &str, phone: Option<&str>) -> Value {
    let mut u = json!({
        "external_user_id": ext,
        "email": email,
        "first_name": first,
        "last_name": "Smith",
        "status": "Active",
    });
    if let Some(p) = phone {
        u["phone"] = json!(p);
    }
    u
}

async fn start() -> FakeHesh {
    FakeHesh::start(FakeHeshOptions::default()).await
}

async fn send(
    fake: &FakeHesh,
    client: &Client,
    method: Method,
    path: &str,
    body: &Value,
) -> (StatusCode, Value) {
    let resp = fake
        .authed(client, method, path)
        .json(body)
        .send()
        .await
        .unwrap();
    let status = resp.status();
    (status, resp.json().await.unwrap())
}

fn header(resp: &reqwest::Response, name: &str) -> Option<u64> {
    resp.headers()
        .get(name)
        .map(|v| v.to_str().unwrap().parse().unwrap())
}

/// An error and its sources, as text.
fn chain(err: &reqwest::Error) -> String {
    let mut out = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(e) = source {
        out.push_str(": ");
        out.push_str(&e.to_string());
        source = e.source();
    }
    out
}

/// A dropped connection: no status, no timeout, hyper saw the socket close.
fn assert_dropped(err: &reqwest::Error) {
    assert!(err.status().is_none(), "{err:?}");
    assert!(!err.is_timeout(), "{err:?}");
    assert!(
        chain(err).contains("connection closed before message completed"),
        "{}",
        chain(err)
    );
}

/// (limit, remaining, reset) from a response's X-RateLimit-* headers.
fn rate(resp: &reqwest::Response) -> (Option<u64>, Option<u64>, Option<u64>) {
    (
        header(resp, "X-RateLimit-Limit"),
        header(resp, "X-RateLimit-Remaining"),
        header(resp, "X-RateLimit-Reset"),
    )
}

#[tokio::test]
async fn auth_needs_the_api_key_and_the_tenant() {
    let fake = start().await;
    let c = Client::new();
    let url = format!("{}{USERS_PATH}", fake.base_url());
    let body = user(&mail("ann"), "Ann", "e-1", None);
    let attempts = [
        c.post(&url).json(&body),
        c.post(&url)
            .header("x-api-key", "wrong")
            .header("x-tenant-id", fake.tenant_id())
            .json(&body),
        c.post(&url).header("x-api-key", fake.api_key()).json(&body),
        c.post(&url)
            .header("x-api-key", fake.api_key())
            .header("x-tenant-id", "00000000-0000-4000-8000-000000000000")
            .json(&body),
    ];
    for attempt in attempts {
        let resp = attempt.send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
        let msg: Value = resp.json().await.unwrap();
        assert!(msg["message"].as_str().unwrap().contains("x-"), "{msg}");
    }
    assert!(fake.users().is_empty());
    let (status, _) = send(&fake, &c, Method::POST, USERS_PATH, &body).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(fake.users().len(), 1);
    assert_eq!(fake.count("POST", USERS_PATH), 5);
}

#[tokio::test]
async fn create_answers_a_public_user_and_refuses_a_taken_email_or_phone() {
    let fake = start().await;
    let c = Client::new();
    let (status, created) = send(
        &fake,
        &c,
        Method::POST,
        USERS_PATH,
        &user(&mail("ann"), "Ann", "e-1", Some("38000")),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(created["email"], mail("ann"));
    assert_eq!(created["full_name"], "Ann Smith");
    assert_eq!(created["status"], "Active");
    assert_eq!(created["avatar_id"], Value::Null);
    uuid::Uuid::parse_str(created["id"].as_str().unwrap()).unwrap();
    // The answer is a PublicUserResponseDto.
    let doc = openapi();
    let schema = json!({
        "allOf": [{ "$ref": "#/components/schemas/PublicUserResponseDto" }],
        "components": doc["components"],
    });
    let mut schema = schema;
    // OpenAPI's nullable object fields hold strings or null in practice.
    for f in ["avatar_id", "external_user_id", "phone"] {
        schema["components"]["schemas"]["PublicUserResponseDto"]["properties"][f] = json!({});
    }
    let v = jsonschema::validator_for(&schema).unwrap();
    assert!(v.is_valid(&created), "{created}");

    for (dup, why) in [
        (user(&mail("ann"), "Ann", "e-2", None), "email"),
        (user(&mail("bob"), "Bob", "e-2", Some("38000")), "phone"),
    ] {
        let (status, body) = send(&fake, &c, Method::POST, USERS_PATH, &dup).await;
        assert_eq!(status, StatusCode::CONFLICT, "{why}");
        assert_eq!(body["message"], "User already exists");
    }
    assert_eq!(fake.users().len(), 1);
    fake.assert_no_duplicates();
}

#[tokio::test]
async fn batch_creates_objects_and_skips_existing_email_or_phone() {
    let fake = start().await;
    let c = Client::new();
    let (status, _) = send(
        &fake,
        &c,
        Method::POST,
        USERS_PATH,
        &user(&mail("ann"), "Ann", "e-1", Some("111")),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let batch = json!({ "users": [
        user(&mail("ANN"), "Ann", "e-1", None),          // email taken (case differs)
        user(&mail("bob"), "Bob", "e-2", Some("111")),    // phone taken
        user(&mail("cid"), "Cid", "e-3", Some("333")),
        user(&mail("cid"), "Cid", "e-3b", None),          // taken earlier in this batch
        user(&mail("dan"), "Dan", "e-4", Some("333")),    // phone taken earlier in this batch
        user(&mail("eve"), "Eve", "e-5", None),
    ]});
    let (status, created) = send(&fake, &c, Method::POST, BATCH_PATH, &batch).await;
    assert_eq!(status, StatusCode::CREATED);
    let emails: Vec<&str> = created
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["email"].as_str().unwrap())
        .collect();
    assert_eq!(emails, [mail("cid"), mail("eve")]);
    let all: Vec<String> = fake.users().into_iter().map(|u| u.email).collect();
    assert_eq!(all, [mail("ann"), mail("cid"), mail("eve")]);
    assert_eq!(fake.user_by_email(&mail("eve")).unwrap().phone, None);
    assert!(fake.user_by_email(&mail("bob")).is_none());
    let batch_req = fake
        .requests()
        .into_iter()
        .find(|r| r.path == BATCH_PATH)
        .unwrap();
    assert_eq!(batch_req.batch_len, Some(6));
    assert_eq!(batch_req.status, Some(201));
    assert_eq!(batch_req.body, batch);
    fake.assert_no_duplicates();
    assert!(fake.created_twice().is_empty());
    assert!(fake.schema_violations().is_empty());
}

#[tokio::test]
async fn batch_larger_than_max_batch_is_refused() {
    let fake = FakeHesh::start(FakeHeshOptions {
        max_batch: 2,
        ..FakeHeshOptions::default()
    })
    .await;
    let c = Client::new();
    let users: Vec<Value> = (0..3)
        .map(|i| user(&mail(&format!("u{i}")), "U", &format!("e-{i}"), None))
        .collect();
    let (status, body) = send(
        &fake,
        &c,
        Method::POST,
        BATCH_PATH,
        &json!({ "users": users }),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["message"].as_str().unwrap().contains("2"), "{body}");
    assert!(fake.users().is_empty());
    assert!(fake.schema_violations().is_empty());
    let (status, _) = send(
        &fake,
        &c,
        Method::POST,
        BATCH_PATH,
        &json!({ "users": users[..2] }),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(fake.users().len(), 2);
}

#[tokio::test]
async fn update_matches_by_email_else_by_phone() {
    let fake = start().await;
    fake.seed([
        HeshUser::new(&mail("ann"), "Ann", "Old")
            .with_phone("111")
            .with_external_id("e-1"),
        HeshUser::new(&mail("bob"), "Bob", "Old")
            .with_phone("222")
            .with_external_id("e-2")
            .with_status(HeshStatus::Inactive),
    ]);
    let c = Client::new();

    // By email: names, external id, status; an absent phone stays.
    let mut body = user(&mail("ann"), "Annie", "e-1-new", None);
    body["status"] = json!("Pending");
    let (status, resp) = send(&fake, &c, Method::PUT, USERS_PATH, &body).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(resp["first_name"], "Annie");
    let ann = fake.user_by_email(&mail("ann")).unwrap();
    assert_eq!(
        (
            ann.first_name.as_str(),
            ann.last_name.as_str(),
            ann.external_user_id.as_deref(),
            ann.phone.as_deref(),
            ann.status
        ),
        (
            "Annie",
            "Smith",
            Some("e-1-new"),
            Some("111"),
            HeshStatus::Pending
        )
    );

    // By phone, with a new email: the email changes (and the user is re-enabled).
    let body = user(&mail("robert"), "Bob", "e-2", Some("222"));
    let (status, resp) = send(&fake, &c, Method::PUT, USERS_PATH, &body).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(resp["email"], mail("robert"));
    assert!(fake.user_by_email(&mail("bob")).is_none());
    let bob = fake.user_by_email(&mail("robert")).unwrap();
    assert_eq!(bob.status, HeshStatus::Active);
    assert_eq!(bob.phone.as_deref(), Some("222"));

    // Neither email nor phone known.
    let body = user(&mail("nobody"), "Nob", "e-9", Some("999"));
    let (status, resp) = send(&fake, &c, Method::PUT, USERS_PATH, &body).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(resp["message"], "User not found");

    // Matched by email, but the phone is somebody else's.
    let body = user(&mail("ann"), "Ann", "e-1", Some("222"));
    let (status, _) = send(&fake, &c, Method::PUT, USERS_PATH, &body).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(
        fake.user_by_email(&mail("ann")).unwrap().phone.as_deref(),
        Some("111")
    );

    assert_eq!(fake.users().len(), 2);
    fake.assert_no_duplicates();
    assert_eq!(fake.count("PUT", USERS_PATH), 4);
}

#[tokio::test]
async fn disable_by_external_user_id() {
    let fake = start().await;
    fake.seed([
        HeshUser::new(&mail("ann"), "Ann", "S").with_external_id("e-1"),
        HeshUser::new(&mail("bob"), "Bob", "S").with_external_id("e-2"),
    ]);
    let c = Client::new();
    let (status, body) = send(
        &fake,
        &c,
        Method::PATCH,
        DISABLE_PATH,
        &json!({ "external_user_id": "e-1" }),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(body["message"].is_string(), "{body}");
    let statuses: Vec<HeshStatus> = fake.users().iter().map(|u| u.status).collect();
    assert_eq!(statuses, [HeshStatus::Inactive, HeshStatus::Active]);

    let (status, _) = send(
        &fake,
        &c,
        Method::PATCH,
        DISABLE_PATH,
        &json!({ "external_user_id": "nobody" }),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        fake.users_by_external_id("e-2")[0].status,
        HeshStatus::Active
    );
}

#[tokio::test]
async fn rate_limit_is_a_fixed_window_with_counting_down_headers() {
    let window = Duration::from_millis(400);
    let fake = FakeHesh::start(FakeHeshOptions {
        limit: 3,
        window,
        ..FakeHeshOptions::default()
    })
    .await;
    let c = Client::new();
    let mut seen = Vec::new();
    for i in 0..4 {
        let resp = fake
            .authed(&c, Method::POST, USERS_PATH)
            .json(&user(&mail(&format!("u{i}")), "U", "e", None))
            .send()
            .await
            .unwrap();
        seen.push((resp.status().as_u16(), rate(&resp)));
    }
    let h = |remaining| (Some(3), Some(remaining), Some(1));
    assert_eq!(
        seen,
        [(201, h(2)), (201, h(1)), (201, h(0)), (429, h(0))],
        "the 4th request in the window is refused"
    );
    // The refused create changed nothing.
    assert_eq!(fake.users().len(), 3);
    assert!(fake.user_by_email(&mail("u3")).is_none());

    // A new window: allowed again, counting down from the top.
    tokio::time::sleep(window + Duration::from_millis(100)).await;
    let resp = fake
        .authed(&c, Method::POST, USERS_PATH)
        .json(&user(&mail("u4"), "U", "e", None))
        .send()
        .await
        .unwrap();
    assert_eq!((resp.status().as_u16(), rate(&resp)), (201, h(2)));
    assert_eq!(fake.users().len(), 4);
}

#[tokio::test]
async fn rate_limit_without_headers_is_still_enforced() {
    let fake = FakeHesh::start(FakeHeshOptions {
        limit: 1,
        window: Duration::from_secs(30),
        send_rate_headers: false,
        ..FakeHeshOptions::default()
    })
    .await;
    let c = Client::new();
    let mut seen = Vec::new();
    for i in 0..2 {
        let resp = fake
            .authed(&c, Method::POST, USERS_PATH)
            .json(&user(&mail(&format!("u{i}")), "U", "e", None))
            .send()
            .await
            .unwrap();
        seen.push((resp.status().as_u16(), rate(&resp)));
    }
    assert_eq!(seen, [(201, (None, None, None)), (429, (None, None, None))]);
    assert_eq!(fake.users().len(), 1);
}

#[tokio::test]
async fn rate_limit_reset_rounds_up_to_whole_seconds() {
    let fake = FakeHesh::start(FakeHeshOptions {
        limit: 5,
        window: Duration::from_millis(2500),
        ..FakeHeshOptions::default()
    })
    .await;
    let c = Client::new();
    let resp = fake
        .authed(&c, Method::PATCH, DISABLE_PATH)
        .json(&json!({ "external_user_id": "none" }))
        .send()
        .await
        .unwrap();
    // 404s count too, and carry the headers.
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    assert_eq!(rate(&resp), (Some(5), Some(4), Some(3)));
}

#[tokio::test]
async fn bodies_that_break_the_schema_are_400_and_recorded() {
    let fake = start().await;
    let c = Client::new();
    let cases = [
        (
            Method::POST,
            USERS_PATH,
            user(&mail("ann"), "Elevenchars", "e-1", None),
        ),
        (Method::POST, BATCH_PATH, json!({ "users": [mail("ann")] })),
        (
            Method::PUT,
            USERS_PATH,
            json!({ "email": mail("ann"), "first_name": "A", "last_name": "B" }),
        ),
        (
            Method::POST,
            USERS_PATH,
            user("not-an-email", "Ann", "e-1", None),
        ),
        (Method::PATCH, DISABLE_PATH, json!({})),
    ];
    for (method, path, body) in &cases {
        let (status, resp) = send(&fake, &c, method.clone(), path, body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{method} {path} {body}");
        assert!(resp["message"].as_array().is_some_and(|m| !m.is_empty()));
    }
    // Not JSON at all.
    let resp = fake
        .authed(&c, Method::POST, USERS_PATH)
        .header("content-type", "application/json")
        .body("{nope")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);

    let violations = fake.schema_violations();
    assert_eq!(violations.len(), cases.len() + 1);
    assert!(
        violations[0]
            .errors
            .iter()
            .any(|e| e.contains("first_name")),
        "{:?}",
        violations[0].errors
    );
    assert!(
        violations[1].errors.iter().any(|e| e.contains("/users/0")),
        "{:?}",
        violations[1].errors
    );
    assert!(violations[2]
        .errors
        .iter()
        .any(|e| e.contains("external_user_id")));
    assert_eq!(violations[5].body, json!("{nope"));
    assert!(fake.users().is_empty());
}

#[tokio::test]
async fn unknown_routes_are_404() {
    let fake = start().await;
    let c = Client::new();
    for (method, path) in [
        (Method::GET, USERS_PATH),
        (Method::DELETE, USERS_PATH),
        (Method::POST, "/api/v1/public/users/"),
    ] {
        let resp = fake.authed(&c, method, path).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::NOT_FOUND, "{path}");
    }
    assert!(fake.schema_violations().is_empty());
}

#[tokio::test]
async fn fail_next_answers_the_status_and_applies_nothing() {
    let fake = start().await;
    let c = Client::new();
    fake.fail_next(2, 503);
    fake.fail_next(1, 500);
    let body = user(&mail("ann"), "Ann", "e-1", None);
    let mut statuses = Vec::new();
    for _ in 0..4 {
        let resp = fake
            .authed(&c, Method::POST, USERS_PATH)
            .json(&body)
            .send()
            .await
            .unwrap();
        statuses.push(resp.status().as_u16());
    }
    assert_eq!(statuses, [503, 503, 500, 201]);
    assert_eq!(fake.users().len(), 1);
    let faults: Vec<Option<Fault>> = fake.requests().iter().map(|r| r.fault).collect();
    assert_eq!(
        faults,
        [Some(Fault::Failed); 3]
            .into_iter()
            .chain([None])
            .collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn drop_next_closes_the_connection_without_an_answer() {
    let fake = start().await;
    let c = Client::new();
    // A pooled keep-alive connection first, so the drop hits a reused connection too.
    let (status, _) = send(
        &fake,
        &c,
        Method::PATCH,
        DISABLE_PATH,
        &json!({ "external_user_id": "x" }),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    fake.drop_next(2);
    for _ in 0..2 {
        let err = fake
            .authed(&c, Method::POST, USERS_PATH)
            .json(&user(&mail("ann"), "Ann", "e-1", None))
            .send()
            .await
            .expect_err("a dropped connection is an error");
        assert_dropped(&err);
    }
    assert!(fake.users().is_empty(), "nothing applied");
    let (status, _) = send(
        &fake,
        &c,
        Method::POST,
        USERS_PATH,
        &user(&mail("ann"), "Ann", "e-1", None),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let drops: Vec<(Option<u16>, Option<Fault>)> = fake
        .requests()
        .iter()
        .map(|r| (r.status, r.fault))
        .collect();
    assert_eq!(
        drops,
        [
            (Some(404), None),
            (None, Some(Fault::Dropped)),
            (None, Some(Fault::Dropped)),
            (Some(201), None)
        ]
    );
}

#[tokio::test]
async fn delay_slows_answers_but_applies_on_arrival() {
    let fake = start().await;
    fake.delay(Duration::from_millis(400));
    let impatient = Client::builder()
        .timeout(Duration::from_millis(100))
        .build()
        .unwrap();
    let err = fake
        .authed(&impatient, Method::POST, USERS_PATH)
        .json(&user(&mail("ann"), "Ann", "e-1", None))
        .send()
        .await
        .expect_err("times out");
    assert!(err.is_timeout(), "{err:?}");
    // The vendor did it although the client gave up.
    assert!(fake.user_by_email(&mail("ann")).is_some());

    fake.delay(Duration::from_millis(50));
    let patient = Client::new();
    let (status, _) = send(
        &fake,
        &patient,
        Method::POST,
        USERS_PATH,
        &user(&mail("bob"), "Bob", "e-2", None),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
}

#[tokio::test]
async fn fail_after_apply_next_applies_then_answers_500() {
    let fake = start().await;
    let c = Client::new();
    fake.fail_after_apply_next(1);
    let body = user(&mail("ann"), "Ann", "e-1", None);
    let (status, _) = send(&fake, &c, Method::POST, USERS_PATH, &body).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(fake.user_by_email(&mail("ann")).is_some());
    // A blind retry now finds the user there.
    let (status, resp) = send(&fake, &c, Method::POST, USERS_PATH, &body).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(resp["message"], "User already exists");
    assert_eq!(fake.users().len(), 1);
    assert_eq!(fake.requests()[0].fault, Some(Fault::FailedAfterApply));
}

#[tokio::test]
async fn drop_after_apply_next_applies_then_closes_the_connection() {
    let fake = start().await;
    let c = Client::new();
    fake.drop_after_apply_next(1);
    let err = fake
        .authed(&c, Method::POST, BATCH_PATH)
        .json(&json!({ "users": [user(&mail("ann"), "Ann", "e-1", None)] }))
        .send()
        .await
        .expect_err("dropped");
    assert_dropped(&err);
    assert_eq!(fake.users().len(), 1);
    assert_eq!(fake.requests()[0].fault, Some(Fault::DroppedAfterApply));
    assert_eq!(fake.requests()[0].status, None);
}

#[tokio::test]
async fn seeded_users_are_there_and_duplicates_are_reported() {
    let fake = start().await;
    fake.seed([
        HeshUser::new(&mail("zed"), "Zed", "S").with_external_id("e-1"),
        HeshUser::new(&mail("amy"), "Amy", "S")
            .with_external_id("e-1")
            .with_phone("5"),
    ]);
    let emails: Vec<String> = fake.users().into_iter().map(|u| u.email).collect();
    assert_eq!(emails, [mail("amy"), mail("zed")], "sorted by email");
    assert_eq!(fake.user_by_phone("5").unwrap().first_name, "Amy");
    assert_eq!(fake.created_twice(), ["e-1"]);
    fake.assert_no_duplicates();
    assert!(fake.requests().is_empty(), "seeding is not a request");
}

#[test]
#[should_panic(expected = "already taken")]
fn seeding_a_taken_email_panics() {
    let fake = FakeHesh::start_blocking(FakeHeshOptions::default());
    fake.seed([
        HeshUser::new(&mail("same"), "A", "S"),
        HeshUser::new(&mail("Same"), "B", "S"),
    ]);
}

#[tokio::test]
async fn the_server_stops_when_dropped() {
    let fake = start().await;
    let base = fake.base_url();
    let c = Client::new();
    let (status, _) = send(
        &fake,
        &c,
        Method::POST,
        USERS_PATH,
        &user(&mail("ann"), "Ann", "e-1", None),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    drop(fake);
    // The pooled keep-alive connection is gone too.
    let pooled = c
        .post(format!("{base}{USERS_PATH}"))
        .json(&json!({}))
        .send()
        .await;
    assert!(pooled.is_err(), "{pooled:?}");
    let fresh = Client::new()
        .post(format!("{base}{USERS_PATH}"))
        .json(&json!({}))
        .send()
        .await
        .expect_err("nothing listens any more");
    assert!(fresh.is_connect(), "{fresh:?}");
}
