//! A stateful fake of saleschat's user API, as `providers/NOTES.md` and
//! `seeds/saleschat-user-api.md` describe it, for integration tests that assert on the
//! vendor's final state and on the requests it received.
//!
//! # Behaviour
//! - Every path is below `/v1/org/{orgId}/user`; another org id → 403.
//! - `POST /v1/org/{org}/user` (`CreateUserReqDto`) → 200 `{user_id}`; an email that a
//!   (not deleted) user already has, case-insensitively → **422** `ErrorRespDto`.
//!   After `create_without_org_next(n)`, the next `n` creates make a user that is not a
//!   member of the org: find does not return it and actions answer 404.
//! - `GET /v1/org/{org}/user?q=&offset=&size=` → `{items, has_more}`: members (not
//!   deleted, disabled included) whose email **contains** `q` (case-insensitive), in
//!   creation order, `size` defaults to 10.
//! - `POST /v1/org/{org}/user/{id}/disable|enable|delete` → 204; an id that is not a
//!   member (or is deleted) → 404 `ErrorRespDto`.
//! - Errors are `ErrorRespDto {error_code, error_message, error_description, payload}`.
//!
//! # Order of checks
//! 1. `fail_next` (the status with an `ErrorRespDto`, nothing applied, not counted),
//! 2. rate limit (fixed window; 429 with `X-RateLimit-*` headers), 3. auth
//!    (`Authorization: Bearer <token>` → 401), 4. org id (403), 5. route (404),
//! 6. the body against the OpenAPI request schema (422 + recorded as a violation; a
//!    body sent where the API takes none is a violation too), 7. apply, then
//!    `fail_after_apply_next` (a successful write answered 500 instead).
//!
//! The server runs on its own thread and tokio runtime; dropping the [`FakeSaleschat`]
//! stops it and waits for it ([`FakeServer`]).

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use serde_json::{json, Value};
use uuid::Uuid;

use super::fake_server::{self, FakeServer, FakeVendor, Faults, RequestLog};
use super::openapi::{self, RequestValidators};
use super::rate_window::FixedWindow;

/// The create operation's path template in saleschat's OpenAPI document.
const CREATE_TEMPLATE: &str = "/v1/org/{orgId}/user";

pub const DEFAULT_TOKEN: &str = "test-saleschat-jwt.eyJzdWIiOiJhZG1pbiJ9.sig";
pub const DEFAULT_ORG_ID: &str = "org-42";

const OPENAPI: &str = include_str!("../fixtures/openapi/saleschat.openapi.json");

#[derive(Debug, Clone)]
pub struct FakeSaleschatOptions {
    pub token: String,
    pub org_id: String,
    /// Requests allowed per fixed window (opens with the first counted request).
    pub limit: u32,
    pub window: Duration,
    pub send_rate_headers: bool,
}

impl Default for FakeSaleschatOptions {
    fn default() -> Self {
        FakeSaleschatOptions {
            token: DEFAULT_TOKEN.into(),
            org_id: DEFAULT_ORG_ID.into(),
            limit: 10_000,
            window: Duration::from_secs(60),
            send_rate_headers: true,
        }
    }
}

/// A user as the fake holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScUser {
    pub id: String,
    pub email: String,
    pub first_name: String,
    pub last_name: String,
    pub in_org: bool,
    pub disabled: bool,
    pub deleted: bool,
    pub ask_user_to_update_password_on_login: bool,
}

impl ScUser {
    /// A member of the org, enabled, with a fresh id (for `seed`).
    pub fn new(email: &str, first_name: &str, last_name: &str) -> ScUser {
        ScUser {
            id: Uuid::new_v4().to_string(),
            email: email.into(),
            first_name: first_name.into(),
            last_name: last_name.into(),
            in_org: true,
            disabled: false,
            deleted: false,
            ask_user_to_update_password_on_login: false,
        }
    }

    fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "email": self.email,
            "first_name": self.first_name,
            "last_name": self.last_name,
        })
    }
}

/// One request the fake received, in arrival order.
#[derive(Debug, Clone)]
pub struct RequestRecord {
    pub at: Instant,
    pub method: String,
    /// The path without the query string.
    pub path: String,
    pub query: String,
    pub status: u16,
    pub body: Value,
    /// The `password` of a create body, as received.
    pub password: Option<String>,
    pub authorization: Option<String>,
}

pub struct FakeSaleschat {
    shared: Arc<Shared>,
    server: FakeServer,
}

fake_server::impl_fake_vendor!(FakeSaleschat, RequestRecord);

impl FakeSaleschat {
    pub async fn start(opts: FakeSaleschatOptions) -> FakeSaleschat {
        FakeSaleschat::start_blocking(opts)
    }

    pub fn start_blocking(opts: FakeSaleschatOptions) -> FakeSaleschat {
        let shared = Arc::new(Shared::new(opts));
        let app = Router::new()
            .fallback(handle)
            .with_state(Arc::clone(&shared));
        FakeSaleschat {
            shared,
            server: FakeServer::start("saleschat", app),
        }
    }

    pub fn token(&self) -> &str {
        &self.shared.opts.token
    }

    pub fn org_id(&self) -> &str {
        &self.shared.opts.org_id
    }

    /// `/v1/org/{org}/user`.
    pub fn users_path(&self) -> String {
        format!("/v1/org/{}/user", self.org_id())
    }

    // -- faults -----------------------------------------------------------------------

    /// The next `n` creates make a user that is not a member of the org.
    pub fn create_without_org_next(&self, n: usize) {
        self.shared.lock().without_org_next += n;
    }

    // -- state ------------------------------------------------------------------------

    pub fn seed(&self, users: impl IntoIterator<Item = ScUser>) {
        let mut st = self.shared.lock();
        for u in users {
            assert!(
                st.find_email(&u.email).is_none(),
                "seed: {} is taken",
                u.email
            );
            st.users.push(u);
        }
    }

    /// Every user ever created (deleted ones too), in creation order.
    pub fn users(&self) -> Vec<ScUser> {
        self.shared.lock().users.clone()
    }

    /// The user (not deleted) with this email, case-insensitively.
    pub fn user_by_email(&self, email: &str) -> Option<ScUser> {
        let st = self.shared.lock();
        st.find_email(email).map(|i| st.users[i].clone())
    }

    /// Emails that more than one live user holds (saleschat refuses this; non-empty
    /// means the fake is wrong).
    pub fn duplicates(&self) -> Vec<String> {
        let st = self.shared.lock();
        let mut seen = std::collections::BTreeMap::<String, usize>::new();
        for u in st.users.iter().filter(|u| !u.deleted) {
            *seen.entry(u.email.to_ascii_lowercase()).or_default() += 1;
        }
        seen.into_iter()
            .filter(|(_, n)| *n > 1)
            .map(|(e, _)| e)
            .collect()
    }

    /// Requests whose method matches and whose path ends with `suffix`.
    pub fn count(&self, method: &str, suffix: &str) -> usize {
        self.shared
            .lock()
            .log
            .count(method, |p| p.ends_with(suffix))
    }

    /// Every password received in a create body, in arrival order.
    pub fn passwords(&self) -> Vec<String> {
        self.requests()
            .into_iter()
            .filter_map(|r| r.password)
            .collect()
    }
}

struct Shared {
    opts: FakeSaleschatOptions,
    validators: RequestValidators,
    state: Mutex<ScState>,
}

struct ScState {
    rate: FixedWindow,
    users: Vec<ScUser>,
    log: RequestLog<RequestRecord>,
    faults: Faults,
    without_org_next: usize,
}

impl Shared {
    fn new(opts: FakeSaleschatOptions) -> Shared {
        let doc: Value = serde_json::from_str(OPENAPI).unwrap();
        let validators = RequestValidators::from_openapi("saleschat", &doc);
        assert!(
            validators.get(&Method::POST, CREATE_TEMPLATE).is_some(),
            "saleschat.openapi.json: no create schema"
        );
        let state = ScState {
            rate: FixedWindow::new(opts.limit, opts.window),
            users: Vec::new(),
            log: RequestLog::default(),
            faults: Faults::default(),
            without_org_next: 0,
        };
        Shared {
            opts,
            validators,
            state: Mutex::new(state),
        }
    }

    fn lock(&self) -> MutexGuard<'_, ScState> {
        fake_server::lock(&self.state)
    }
}

impl ScState {
    fn find_email(&self, email: &str) -> Option<usize> {
        self.users
            .iter()
            .position(|u| !u.deleted && u.email.eq_ignore_ascii_case(email))
    }

    fn member(&self, id: &str) -> Option<usize> {
        self.users
            .iter()
            .position(|u| u.id == id && u.in_org && !u.deleted)
    }
}

fn error(status: StatusCode, message: &str, description: &str) -> (StatusCode, Value) {
    (
        status,
        json!({
            "error_code": status.as_u16() * 100 + 1,
            "error_message": message,
            "error_description": description,
            "payload": {},
        }),
    )
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            if let Some(Ok(b)) = s.get(i + 1..i + 3).map(|h| u8::from_str_radix(h, 16)) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

enum Route {
    Create,
    Find,
    Action(String, &'static str),
}

async fn handle(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (status, answer, rate, delay) = {
        let mut st = shared.lock();
        let (mut status, mut answer, rate, record_body, password) =
            decide(&shared, &mut st, &method, &uri, &headers, &body);
        if st.faults.fails_after_apply(&method, status) {
            let (s, a) = error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Internal server error",
                "the fake applied the change, then failed",
            );
            (status, answer) = (s, Some(a));
        }
        st.log.push(RequestRecord {
            at: Instant::now(),
            method: method.as_str().to_string(),
            path: uri.path().to_string(),
            query: uri.query().unwrap_or_default().to_string(),
            status: status.as_u16(),
            body: record_body,
            password,
            authorization: headers
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string),
        });
        (status, answer, rate, st.faults.delay())
    };
    fake_server::hold(delay).await;
    let mut resp = match answer {
        Some(body) => (status, Json(body)).into_response(),
        None => status.into_response(),
    };
    if let (Some((limit, remaining, reset)), true) = (rate, shared.opts.send_rate_headers) {
        fake_server::insert_rate_headers(&mut resp, limit, remaining, reset);
    }
    resp
}

type Decision = (
    StatusCode,
    Option<Value>,
    Option<(u32, u32, u64)>,
    Value,
    Option<String>,
);

fn decide(
    shared: &Shared,
    st: &mut ScState,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    raw: &Bytes,
) -> Decision {
    // Text that is not JSON is checked (and refused) as the JSON string it reads as.
    let (_, logged) = fake_server::read_body(raw);
    let parsed = (!raw.is_empty()).then(|| logged.clone());
    let password = logged
        .get("password")
        .and_then(Value::as_str)
        .map(str::to_string);
    let done = |(status, body): (StatusCode, Value), rate| {
        (status, Some(body), rate, logged.clone(), password.clone())
    };
    if let Some(status) = st.faults.take_failure() {
        return done(
            error(
                status,
                "Injected failure",
                "the fake was told to fail this request",
            ),
            None,
        );
    }
    let opts = &shared.opts;
    let check = st.rate.check(Instant::now());
    let rate = Some((check.limit, check.remaining, check.reset_secs()));
    if !check.allowed {
        return done(
            error(
                StatusCode::TOO_MANY_REQUESTS,
                "Too many requests",
                "rate limit exceeded",
            ),
            rate,
        );
    }
    let auth = headers.get("authorization").and_then(|v| v.to_str().ok());
    if auth != Some(format!("Bearer {}", opts.token).as_str()) {
        return done(
            error(
                StatusCode::UNAUTHORIZED,
                "Unauthorized",
                "Authentication is required",
            ),
            rate,
        );
    }
    let segments: Vec<String> = uri
        .path()
        .trim_start_matches('/')
        .split('/')
        .map(percent_decode)
        .collect();
    let seg: Vec<&str> = segments.iter().map(String::as_str).collect();
    let (org, route) = match (method.as_str(), seg.as_slice()) {
        ("POST", ["v1", "org", org, "user"]) => (*org, Route::Create),
        ("GET", ["v1", "org", org, "user"]) => (*org, Route::Find),
        ("POST", ["v1", "org", org, "user", id, action @ ("disable" | "enable" | "delete")]) => {
            let action = match *action {
                "disable" => "disable",
                "enable" => "enable",
                _ => "delete",
            };
            (*org, Route::Action((*id).to_string(), action))
        }
        _ => {
            let message = format!("No route for {method} {}", uri.path());
            return done(error(StatusCode::NOT_FOUND, "Not found", &message), rate);
        }
    };
    if org != opts.org_id {
        return done(
            error(
                StatusCode::FORBIDDEN,
                "Forbidden",
                "You don't have permission to access this resource",
            ),
            rate,
        );
    }
    // The request body against the OpenAPI document.
    let errors: Vec<String> = match (&route, &parsed) {
        (Route::Create, Some(body)) => shared
            .validators
            .get(&Method::POST, CREATE_TEMPLATE)
            .map(|v| openapi::errors(v, body, ""))
            .unwrap_or_default(),
        (Route::Create, None) => vec!["the request body is required".into()],
        (_, Some(_)) => vec!["this operation takes no request body".into()],
        (_, None) => Vec::new(),
    };
    if !errors.is_empty() {
        st.log.violation(method, uri.path(), &logged, &errors);
        return done(
            error(
                StatusCode::UNPROCESSABLE_ENTITY,
                "Invalid request",
                &errors.join("; "),
            ),
            rate,
        );
    }
    match route {
        Route::Create => {
            let body = parsed.unwrap_or_default();
            let s = |k: &str| body.get(k).and_then(Value::as_str).unwrap_or_default();
            if st.find_email(s("email")).is_some() {
                return done(
                    error(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        "User already exists",
                        &format!("a user with email {} already exists", s("email")),
                    ),
                    rate,
                );
            }
            let in_org = if st.without_org_next > 0 {
                st.without_org_next -= 1;
                false
            } else {
                true
            };
            let user = ScUser {
                id: Uuid::new_v4().to_string(),
                email: s("email").to_string(),
                first_name: s("first_name").to_string(),
                last_name: s("last_name").to_string(),
                in_org,
                disabled: false,
                deleted: false,
                ask_user_to_update_password_on_login: body
                    .get("ask_user_to_update_password_on_login")
                    .and_then(Value::as_bool)
                    .unwrap_or(false),
            };
            let id = user.id.clone();
            st.users.push(user);
            done((StatusCode::OK, json!({ "user_id": id })), rate)
        }
        Route::Find => {
            let mut q = String::new();
            let mut offset = 0usize;
            let mut size = 10usize;
            for (k, v) in url::form_urlencoded::parse(uri.query().unwrap_or_default().as_bytes()) {
                match &*k {
                    "q" => q = v.into_owned(),
                    "offset" => offset = v.parse().unwrap_or(0),
                    "size" => size = v.parse().unwrap_or(10),
                    _ => {}
                }
            }
            let q = q.to_lowercase();
            let matches: Vec<Value> = st
                .users
                .iter()
                .filter(|u| u.in_org && !u.deleted && u.email.to_lowercase().contains(&q))
                .map(ScUser::to_json)
                .collect();
            let items: Vec<Value> = matches.iter().skip(offset).take(size).cloned().collect();
            let has_more = offset + items.len() < matches.len();
            done(
                (
                    StatusCode::OK,
                    json!({ "items": items, "has_more": has_more }),
                ),
                rate,
            )
        }
        Route::Action(id, action) => {
            let Some(i) = st.member(&id) else {
                return done(
                    error(
                        StatusCode::NOT_FOUND,
                        "User not found",
                        "userId does not exist for this org",
                    ),
                    rate,
                );
            };
            let u = &mut st.users[i];
            match action {
                "disable" => u.disabled = true,
                "enable" => u.disabled = false,
                _ => u.deleted = true,
            }
            (StatusCode::NO_CONTENT, None, rate, logged, password)
        }
    }
}
