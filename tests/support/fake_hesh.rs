//! A stateful fake of hesh's public users API, as `providers/NOTES.md` and hesh's own
//! documents describe it, for integration tests that assert on the vendor's final
//! state and on the requests it received.
//!
//! # Behaviour
//! - `POST /api/v1/public/users` creates one user → 201 `PublicUserResponseDto`; an
//!   email (case-insensitive) or phone another user already has → **409**
//!   `{"statusCode":409,"message":"User already exists","error":"Conflict"}`.
//! - `POST /api/v1/public/users/batch` `{"users":[{..}, ..]}` creates each user in
//!   order and **skips** those whose email or phone already exists (also earlier in
//!   the same batch); a skipped user is absent from the 201 array. More than
//!   `max_batch` users → 400.
//! - `PUT /api/v1/public/users` matches by email (case-insensitive), else by phone;
//!   updates first_name, last_name, external_user_id, and phone / status when sent
//!   (absent → unchanged). Matched by phone with a different email → the email changes.
//!   A phone another user holds → 409. No match → 404 `{"message":"User not found"}`.
//! - `PATCH /api/v1/public/users/disable` `{external_user_id}` → every user with that
//!   external_user_id becomes Inactive, 200 `{"message":"User disabled successfully"}`;
//!   none → 404.
//! - An empty phone (`""`) is stored as no phone and never matches another user.
//! - Every other method/path → 404 (`Cannot GET /x`, as NestJS says).
//!
//! # Order of checks for each request
//! 1. `drop_next` (connection closed, nothing applied), 2. `fail_next` (the given
//!    status, nothing applied; no rate-limit headers: it stands for a gateway fault and
//!    does not count against the limit), 3. rate limit (counts every request that gets
//!    here, including 401/400/404 answers; over the limit → 429, nothing applied),
//! 4. auth (`x-api-key`, `x-tenant-id` → 401), 5. route (404), 6. the body against the
//!    OpenAPI request schema (400 + recorded as a schema violation), 7. `max_batch`
//!    (400, not a schema violation), 8. apply, then `fail_after_apply_next` (500, when the apply succeeded) or
//!    `drop_after_apply_next` (connection closed) replace the answer.
//!
//! From step 3 on every answer carries `X-RateLimit-Limit`, `X-RateLimit-Remaining` and
//! `X-RateLimit-Reset` (whole seconds until the fixed window ends, rounded up, ≥ 1)
//! unless `send_rate_headers` is off. The window opens with the first counted request.
//!
//! `delay` holds every answer (and every drop) back; the request itself is processed
//! and recorded on arrival, so a client that times out leaves the change applied.
//!
//! A dropped connection: the handler marks its connection dead and the connection's IO
//! then fails, so hyper closes the socket without writing a byte — the client sees a
//! connection error ("connection closed before message completed"), never a status.
//!
//! The server runs on its own thread and tokio runtime (real time, independent of the
//! test's runtime, so a test may block on `std::process::Command` while it answers).
//! Dropping the [`FakeHesh`] stops that runtime and waits for it: the port is closed
//! and every connection is gone when `drop` returns ([`FakeServer`]).

// Test code may block and read the real clock: clippy.toml's disallowed-methods
// are for the library.
#![allow(clippy::disallowed_methods)]

use std::collections::BTreeMap;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::connect_info::Connected;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::serve::{IncomingStream, Listener};
use axum::{Json, Router};
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Value};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use uuid::Uuid;

use super::fake_server::{self, FakeServer, FakeVendor, Faults, RequestLog};
use super::openapi::{self, RequestValidators};
use super::rate_window::FixedWindow;

pub const USERS_PATH: &str = "/api/v1/public/users";
pub const BATCH_PATH: &str = "/api/v1/public/users/batch";
pub const DISABLE_PATH: &str = "/api/v1/public/users/disable";

pub const DEFAULT_API_KEY: &str = "test-hesh-api-key";
pub const DEFAULT_TENANT_ID: &str = "40dd0c53-2fa7-4193-82ae-14d4e62c20fb";

/// hesh's OpenAPI as extracted verbatim from its documents (see
/// tests/fixtures/openapi/README.md); [`openapi`] applies the one documented fix.
const OPENAPI: &str = include_str!("../fixtures/openapi/hesh.openapi.json");

// ---------------------------------------------------------------------------------
// Options and the records tests inspect
// ---------------------------------------------------------------------------------

#[derive(Debug, Clone)]
pub struct FakeHeshOptions {
    /// Expected `x-api-key`.
    pub api_key: String,
    /// Expected `x-tenant-id` (compared case-insensitively, trimmed).
    pub tenant_id: String,
    /// Requests allowed per fixed window.
    pub limit: u32,
    /// Length of the fixed window; it opens with the first counted request.
    pub window: Duration,
    /// Off: no `X-RateLimit-*` headers, the limit is still enforced.
    pub send_rate_headers: bool,
    /// Largest batch accepted by the batch endpoint (larger → 400).
    pub max_batch: usize,
}

impl Default for FakeHeshOptions {
    /// The default key and tenant, a limit that tests do not hit by accident (1000
    /// per 60 s, headers on), batches up to 100 (rosterd's default batch size).
    fn default() -> Self {
        FakeHeshOptions {
            api_key: DEFAULT_API_KEY.into(),
            tenant_id: DEFAULT_TENANT_ID.into(),
            limit: 1000,
            window: Duration::from_secs(60),
            send_rate_headers: true,
            max_batch: 100,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum HeshStatus {
    Active,
    Inactive,
    Pending,
}

impl HeshStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            HeshStatus::Active => "Active",
            HeshStatus::Inactive => "Inactive",
            HeshStatus::Pending => "Pending",
        }
    }

    pub fn parse(s: &str) -> Option<HeshStatus> {
        match s {
            "Active" => Some(HeshStatus::Active),
            "Inactive" => Some(HeshStatus::Inactive),
            "Pending" => Some(HeshStatus::Pending),
            _ => None,
        }
    }
}

/// A user as the fake holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeshUser {
    pub id: Uuid,
    pub email: String,
    pub first_name: String,
    pub last_name: String,
    pub external_user_id: Option<String>,
    pub phone: Option<String>,
    pub status: HeshStatus,
    pub created_at: DateTime<Utc>,
}

impl HeshUser {
    /// An Active user with a fresh id, no phone and no external_user_id (for `seed`).
    pub fn new(email: &str, first_name: &str, last_name: &str) -> HeshUser {
        HeshUser {
            id: Uuid::new_v4(),
            email: email.into(),
            first_name: first_name.into(),
            last_name: last_name.into(),
            external_user_id: None,
            phone: None,
            status: HeshStatus::Active,
            created_at: Utc::now(),
        }
    }

    pub fn with_phone(mut self, phone: &str) -> HeshUser {
        self.phone = non_empty(phone);
        self
    }

    pub fn with_external_id(mut self, external_user_id: &str) -> HeshUser {
        self.external_user_id = Some(external_user_id.into());
        self
    }

    pub fn with_status(mut self, status: HeshStatus) -> HeshUser {
        self.status = status;
        self
    }

    pub fn full_name(&self) -> String {
        format!("{} {}", self.first_name, self.last_name)
    }

    /// The `PublicUserResponseDto` hesh answers with.
    pub fn to_json(&self) -> Value {
        json!({
            "id": self.id.to_string(),
            "email": self.email,
            "avatar_id": null,
            "first_name": self.first_name,
            "last_name": self.last_name,
            "external_user_id": self.external_user_id,
            "full_name": self.full_name(),
            "phone": self.phone,
            "status": self.status.as_str(),
            "created_at": self.created_at.to_rfc3339_opts(SecondsFormat::Millis, true),
            "userVacations": [],
        })
    }
}

/// A fault injected into a request's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// `drop_next`: connection closed on arrival, nothing applied.
    Dropped,
    /// `fail_next`: answered with the injected status, nothing applied.
    Failed,
    /// `fail_after_apply_next`: applied, then answered 500.
    FailedAfterApply,
    /// `drop_after_apply_next`: applied, then the connection closed.
    DroppedAfterApply,
}

/// One request the fake received, in arrival order.
#[derive(Debug, Clone)]
pub struct RequestRecord {
    /// Arrival (before any `delay`).
    pub at: Instant,
    pub method: String,
    /// The path without the query string.
    pub path: String,
    /// The status answered; `None` when the connection was dropped instead.
    pub status: Option<u16>,
    /// The body as JSON; a JSON string holding the raw text when it is not JSON;
    /// null when empty.
    pub body: Value,
    /// For the batch endpoint: how many items `users` held.
    pub batch_len: Option<usize>,
    pub fault: Option<Fault>,
}

// ---------------------------------------------------------------------------------
// The server handle
// ---------------------------------------------------------------------------------

pub struct FakeHesh {
    shared: Arc<Shared>,
    server: FakeServer,
}

fake_server::impl_fake_vendor!(FakeHesh, RequestRecord);

impl FakeHesh {
    /// Starts the fake on 127.0.0.1 (random port). It answers until dropped.
    pub async fn start(opts: FakeHeshOptions) -> FakeHesh {
        FakeHesh::start_blocking(opts)
    }

    /// [`FakeHesh::start`] for a test without an async runtime (the server brings its
    /// own).
    pub fn start_blocking(opts: FakeHeshOptions) -> FakeHesh {
        let shared = Arc::new(Shared::new(opts));
        let app = Router::new()
            .fallback(handle)
            .with_state(Arc::clone(&shared));
        let server = FakeServer::start_with("hesh", move |listener| async move {
            let listener = FakeListener { inner: listener };
            let app = app.into_make_service_with_connect_info::<ConnHandle>();
            let _ = axum::serve(listener, app).await;
        });
        FakeHesh { shared, server }
    }

    pub fn api_key(&self) -> &str {
        &self.shared.opts.api_key
    }

    pub fn tenant_id(&self) -> &str {
        &self.shared.opts.tenant_id
    }

    /// A request to `path` with the right `x-api-key` and `x-tenant-id`.
    pub fn authed(
        &self,
        client: &reqwest::Client,
        method: reqwest::Method,
        path: &str,
    ) -> reqwest::RequestBuilder {
        client
            .request(method, format!("{}{path}", self.base_url()))
            .header("x-api-key", self.api_key())
            .header("x-tenant-id", self.tenant_id())
    }

    // -- fault injection (takes effect for requests arriving from now on) ----------

    /// The next `n` requests get their connection closed without an answer; nothing
    /// is applied. (Failing after the change is applied, and clearing every fault,
    /// are `FakeVendor`'s `fail_after_apply_next` and `clear_faults`.)
    pub fn drop_next(&self, n: usize) {
        self.shared.lock().faults.drop_next += n;
    }

    /// The next `n` requests that reach the apply step are applied as usual, then their
    /// connection is closed without an answer.
    pub fn drop_after_apply_next(&self, n: usize) {
        self.shared.lock().faults.drop_after_apply += n;
    }

    // -- state ----------------------------------------------------------------------

    /// Users that exist before rosterd's first run. Panics when one shares an email
    /// or phone with another: hesh could not hold that.
    pub fn seed(&self, users: impl IntoIterator<Item = HeshUser>) {
        let mut st = self.shared.lock();
        for u in users {
            assert!(
                st.find_email(&u.email).is_none(),
                "seed: email {} is already taken",
                u.email
            );
            assert!(
                st.find_phone(u.phone.as_deref()).is_none(),
                "seed: phone {:?} is already taken",
                u.phone
            );
            st.users.push(u);
        }
    }

    /// Every user, sorted by email (case-insensitively).
    pub fn users(&self) -> Vec<HeshUser> {
        let mut users = self.shared.lock().users.clone();
        users.sort_by_key(|u| u.email.to_ascii_lowercase());
        users
    }

    pub fn user_by_email(&self, email: &str) -> Option<HeshUser> {
        let st = self.shared.lock();
        st.find_email(email).map(|i| st.users[i].clone())
    }

    pub fn user_by_phone(&self, phone: &str) -> Option<HeshUser> {
        let st = self.shared.lock();
        st.find_phone(Some(phone)).map(|i| st.users[i].clone())
    }

    pub fn users_by_external_id(&self, external_user_id: &str) -> Vec<HeshUser> {
        self.users()
            .into_iter()
            .filter(|u| u.external_user_id.as_deref() == Some(external_user_id))
            .collect()
    }

    /// Emails and phones more than one user holds. hesh's rules make this empty by
    /// construction; a non-empty answer is a bug in the fake.
    pub fn duplicates(&self) -> Vec<String> {
        let st = self.shared.lock();
        let mut by_key: BTreeMap<String, usize> = BTreeMap::new();
        for u in &st.users {
            *by_key
                .entry(format!("email {}", u.email.to_ascii_lowercase()))
                .or_default() += 1;
            if let Some(p) = &u.phone {
                *by_key.entry(format!("phone {p}")).or_default() += 1;
            }
        }
        by_key
            .into_iter()
            .filter(|(_, n)| *n > 1)
            .map(|(k, n)| format!("{k} ({n} users)"))
            .collect()
    }

    /// external_user_ids more than one account carries (the same person created
    /// twice: under another email, or a recreate that left the old account).
    pub fn created_twice(&self) -> Vec<String> {
        let st = self.shared.lock();
        let mut by_id: BTreeMap<&str, usize> = BTreeMap::new();
        for u in &st.users {
            if let Some(id) = &u.external_user_id {
                *by_id.entry(id.as_str()).or_default() += 1;
            }
        }
        by_id
            .into_iter()
            .filter(|(_, n)| *n > 1)
            .map(|(id, _)| id.to_string())
            .collect()
    }

    /// Panics when two users share an email or a phone.
    pub fn assert_no_duplicates(&self) {
        let d = self.duplicates();
        assert!(d.is_empty(), "fake hesh holds duplicates: {d:?}");
    }

    // -- request log ------------------------------------------------------------------

    /// How many requests arrived for `method path` (whatever their answer).
    pub fn count(&self, method: &str, path: &str) -> usize {
        self.shared.lock().log.count(method, |p| p == path)
    }
}

// ---------------------------------------------------------------------------------
// Shared state
// ---------------------------------------------------------------------------------

struct Shared {
    opts: FakeHeshOptions,
    /// Request-body validators by (method, path), from the OpenAPI document.
    validators: RequestValidators,
    state: Mutex<HeshState>,
}

struct HeshState {
    rate: FixedWindow,
    users: Vec<HeshUser>,
    log: RequestLog<RequestRecord>,
    faults: Faults,
}

impl Shared {
    fn new(opts: FakeHeshOptions) -> Shared {
        let state = HeshState {
            rate: FixedWindow::new(opts.limit, opts.window),
            users: Vec::new(),
            log: RequestLog::default(),
            faults: Faults::default(),
        };
        Shared {
            validators: RequestValidators::from_openapi("hesh", &openapi()),
            opts,
            state: Mutex::new(state),
        }
    }

    fn lock(&self) -> MutexGuard<'_, HeshState> {
        fake_server::lock(&self.state)
    }
}

/// hesh's OpenAPI document with the one documented fix (see
/// tests/fixtures/openapi/README.md): the batch's `users` items are
/// `PublicUserRequestDto` objects, as hesh's guide shows, not strings.
pub fn openapi() -> Value {
    let mut doc: Value = serde_json::from_str(OPENAPI).expect("hesh.openapi.json is JSON");
    let items =
        &mut doc["components"]["schemas"]["UsersExchangeDto"]["properties"]["users"]["items"];
    assert!(
        !items.is_null(),
        "hesh.openapi.json: UsersExchangeDto.users.items is missing"
    );
    *items = json!({ "$ref": "#/components/schemas/PublicUserRequestDto" });
    doc
}

fn non_empty(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_string())
}

fn str_field(body: &Value, name: &str) -> Option<String> {
    body.get(name).and_then(Value::as_str).map(str::to_string)
}

impl HeshState {
    fn find_email(&self, email: &str) -> Option<usize> {
        self.users
            .iter()
            .position(|u| u.email.eq_ignore_ascii_case(email))
    }

    /// An empty or absent phone matches nobody.
    fn find_phone(&self, phone: Option<&str>) -> Option<usize> {
        let phone = phone.filter(|p| !p.is_empty())?;
        self.users
            .iter()
            .position(|u| u.phone.as_deref() == Some(phone))
    }

    /// A new user from a validated `PublicUserRequestDto`, unless its email or phone
    /// is taken.
    fn create(&mut self, body: &Value) -> Option<HeshUser> {
        let email = str_field(body, "email").unwrap_or_default();
        let phone = str_field(body, "phone").and_then(|p| non_empty(&p));
        if self.find_email(&email).is_some() || self.find_phone(phone.as_deref()).is_some() {
            return None;
        }
        let user = HeshUser {
            id: Uuid::new_v4(),
            email,
            first_name: str_field(body, "first_name").unwrap_or_default(),
            last_name: str_field(body, "last_name").unwrap_or_default(),
            external_user_id: str_field(body, "external_user_id"),
            phone,
            status: str_field(body, "status")
                .and_then(|s| HeshStatus::parse(&s))
                .unwrap_or(HeshStatus::Active),
            created_at: Utc::now(),
        };
        self.users.push(user.clone());
        Some(user)
    }

    fn update(&mut self, body: &Value) -> (StatusCode, Value) {
        let email = str_field(body, "email").unwrap_or_default();
        let phone = str_field(body, "phone");
        let Some(i) = self
            .find_email(&email)
            .or_else(|| self.find_phone(phone.as_deref()))
        else {
            return error(StatusCode::NOT_FOUND, "User not found");
        };
        if let Some(j) = self.find_phone(phone.as_deref()) {
            if j != i {
                return error(
                    StatusCode::CONFLICT,
                    "Phone number is already used by another user",
                );
            }
        }
        let u = &mut self.users[i];
        if !u.email.eq_ignore_ascii_case(&email) {
            // Matched by phone: this is how an email changes at hesh. Nobody else has
            // the new email, or the email match would have won.
            u.email = email;
        }
        if let Some(v) = str_field(body, "first_name") {
            u.first_name = v;
        }
        if let Some(v) = str_field(body, "last_name") {
            u.last_name = v;
        }
        if let Some(v) = str_field(body, "external_user_id") {
            u.external_user_id = Some(v);
        }
        if let Some(p) = phone {
            u.phone = non_empty(&p);
        }
        if let Some(s) = str_field(body, "status").and_then(|s| HeshStatus::parse(&s)) {
            u.status = s;
        }
        (StatusCode::OK, u.to_json())
    }

    fn disable(&mut self, body: &Value) -> (StatusCode, Value) {
        let id = str_field(body, "external_user_id").unwrap_or_default();
        let mut found = false;
        for u in &mut self.users {
            if u.external_user_id.as_deref() == Some(id.as_str()) {
                u.status = HeshStatus::Inactive;
                found = true;
            }
        }
        if found {
            (
                StatusCode::OK,
                json!({ "message": "User disabled successfully" }),
            )
        } else {
            error(StatusCode::NOT_FOUND, "User not found")
        }
    }
}

/// Records a schema violation; the 400 answer, with every error as the message.
fn violation(
    st: &mut HeshState,
    method: &Method,
    path: &str,
    body: &Value,
    errors: Vec<String>,
) -> (StatusCode, Value) {
    st.log.violation(method, path, body, &errors);
    let messages: Vec<Value> = errors.into_iter().map(Value::String).collect();
    error(StatusCode::BAD_REQUEST, messages)
}

/// A NestJS-style error body: `{statusCode, message, error}`.
fn error(status: StatusCode, message: impl Into<Value>) -> (StatusCode, Value) {
    (
        status,
        json!({
            "statusCode": status.as_u16(),
            "message": message.into(),
            "error": status.canonical_reason().unwrap_or("Error"),
        }),
    )
}

// ---------------------------------------------------------------------------------
// The handler
// ---------------------------------------------------------------------------------

enum Answer {
    Respond {
        status: StatusCode,
        body: Value,
        rate: Option<(u32, u32, u64)>,
    },
    Drop,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Op {
    Create,
    Batch,
    Update,
    Disable,
}

fn route(method: &Method, path: &str) -> Option<Op> {
    match (method.as_str(), path) {
        ("POST", USERS_PATH) => Some(Op::Create),
        ("POST", BATCH_PATH) => Some(Op::Batch),
        ("PUT", USERS_PATH) => Some(Op::Update),
        ("PATCH", DISABLE_PATH) => Some(Op::Disable),
        _ => None,
    }
}

async fn handle(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(conn): ConnectInfo<ConnHandle>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    // Processed and recorded at once, with no await in between: a client that gives up
    // cannot cancel a half-applied request.
    let (answer, delay) = {
        let mut st = shared.lock();
        let answer = process(&shared, &mut st, &method, uri.path(), &headers, &body);
        (answer, st.faults.delay())
    };
    fake_server::hold(delay).await;
    match answer {
        Answer::Drop => {
            conn.kill();
            // Never written: the connection's IO fails from now on.
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
        Answer::Respond { status, body, rate } => {
            let mut resp = (status, Json(body)).into_response();
            if let (Some((limit, remaining, reset)), true) = (rate, shared.opts.send_rate_headers) {
                fake_server::insert_rate_headers(&mut resp, limit, remaining, reset);
            }
            resp
        }
    }
}

fn process(
    shared: &Shared,
    st: &mut HeshState,
    method: &Method,
    path: &str,
    headers: &HeaderMap,
    raw: &Bytes,
) -> Answer {
    let at = Instant::now();
    let (parsed, logged_body) = fake_server::read_body(raw);
    let batch_len = match (&parsed, path) {
        (Ok(v), BATCH_PATH) => v.get("users").and_then(Value::as_array).map(Vec::len),
        _ => None,
    };
    let mut record = RequestRecord {
        at,
        method: method.as_str().to_string(),
        path: path.to_string(),
        status: None,
        body: logged_body.clone(),
        batch_len,
        fault: None,
    };

    let (answer, fault) = decide(shared, st, method, path, headers, parsed, &logged_body);
    record.fault = fault;
    if let Answer::Respond { status, .. } = &answer {
        record.status = Some(status.as_u16());
    }
    st.log.push(record);
    answer
}

fn decide(
    shared: &Shared,
    st: &mut HeshState,
    method: &Method,
    path: &str,
    headers: &HeaderMap,
    parsed: Result<Value, String>,
    logged_body: &Value,
) -> (Answer, Option<Fault>) {
    let opts = &shared.opts;
    if st.faults.drop_next > 0 {
        st.faults.drop_next -= 1;
        return (Answer::Drop, Some(Fault::Dropped));
    }
    if let Some(status) = st.faults.take_failure() {
        let (status, body) = error(status, "Injected failure");
        return (
            Answer::Respond {
                status,
                body,
                rate: None,
            },
            Some(Fault::Failed),
        );
    }
    let check = st.rate.check(Instant::now());
    let rate = Some((check.limit, check.remaining, check.reset_secs()));
    let respond = |(status, body): (StatusCode, Value)| Answer::Respond { status, body, rate };
    if !check.allowed {
        let answer = respond(error(
            StatusCode::TOO_MANY_REQUESTS,
            "ThrottlerException: Too Many Requests",
        ));
        return (answer, None);
    }

    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if header("x-api-key") != Some(opts.api_key.as_str()) {
        return (
            respond(error(
                StatusCode::UNAUTHORIZED,
                "Missing or invalid x-api-key",
            )),
            None,
        );
    }
    let tenant_ok =
        header("x-tenant-id").is_some_and(|t| t.trim().eq_ignore_ascii_case(opts.tenant_id.trim()));
    if !tenant_ok {
        return (
            respond(error(
                StatusCode::UNAUTHORIZED,
                "Missing or incorrect x-tenant-id",
            )),
            None,
        );
    }

    let Some(op) = route(method, path) else {
        let message = format!("Cannot {method} {path}");
        return (respond(error(StatusCode::NOT_FOUND, message)), None);
    };

    let body = match parsed {
        Ok(body) => body,
        Err(e) => {
            return (
                respond(violation(st, method, path, logged_body, vec![e])),
                None,
            )
        }
    };
    let errors: Vec<String> = match shared.validators.get(method, path) {
        Some(v) => openapi::errors(v, &body, ""),
        None => vec![format!("no request schema for {method} {path}")],
    };
    if !errors.is_empty() {
        return (
            respond(violation(st, method, path, logged_body, errors)),
            None,
        );
    }

    let (status, answer_body) = match op {
        Op::Create => match st.create(&body) {
            Some(u) => (StatusCode::CREATED, u.to_json()),
            None => error(StatusCode::CONFLICT, "User already exists"),
        },
        Op::Batch => {
            let items = body["users"].as_array().cloned().unwrap_or_default();
            if items.len() > opts.max_batch {
                let message = format!(
                    "users must contain no more than {} elements",
                    opts.max_batch
                );
                return (respond(error(StatusCode::BAD_REQUEST, message)), None);
            }
            let created: Vec<Value> = items
                .iter()
                .filter_map(|item| st.create(item))
                .map(|u| u.to_json())
                .collect();
            (StatusCode::CREATED, Value::Array(created))
        }
        Op::Update => st.update(&body),
        Op::Disable => st.disable(&body),
    };

    if st.faults.fails_after_apply(method, status) {
        return (
            respond(error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Internal server error",
            )),
            Some(Fault::FailedAfterApply),
        );
    }
    if st.faults.drop_after_apply > 0 {
        st.faults.drop_after_apply -= 1;
        return (Answer::Drop, Some(Fault::DroppedAfterApply));
    }
    (respond((status, answer_body)), None)
}

// ---------------------------------------------------------------------------------
// A listener whose connections a handler can kill
// ---------------------------------------------------------------------------------

struct FakeListener {
    inner: TcpListener,
}

/// Per connection: set to make the connection's IO fail, so hyper closes it
/// without answering.
#[derive(Clone, Debug)]
struct ConnHandle {
    killed: Arc<AtomicBool>,
}

impl ConnHandle {
    fn new() -> ConnHandle {
        ConnHandle {
            killed: Arc::new(AtomicBool::new(false)),
        }
    }

    fn kill(&self) {
        self.killed.store(true, Ordering::SeqCst);
    }
}

impl Connected<IncomingStream<'_, FakeListener>> for ConnHandle {
    fn connect_info(stream: IncomingStream<'_, FakeListener>) -> Self {
        stream.remote_addr().clone()
    }
}

impl Listener for FakeListener {
    type Io = KillableStream;
    type Addr = ConnHandle;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            match self.inner.accept().await {
                Ok((stream, _)) => {
                    let _ = stream.set_nodelay(true);
                    let handle = ConnHandle::new();
                    let io = KillableStream {
                        inner: stream,
                        killed: Arc::clone(&handle.killed),
                    };
                    return (io, handle);
                }
                // Out of file descriptors and the like: wait, as axum does.
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            }
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.inner.local_addr().map(|_| ConnHandle::new())
    }
}

struct KillableStream {
    inner: TcpStream,
    killed: Arc<AtomicBool>,
}

impl KillableStream {
    fn dead(&self) -> Option<io::Error> {
        self.killed.load(Ordering::SeqCst).then(|| {
            io::Error::new(
                io::ErrorKind::ConnectionReset,
                "fake hesh dropped the connection",
            )
        })
    }
}

impl AsyncRead for KillableStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if let Some(e) = self.dead() {
            return Poll::Ready(Err(e));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for KillableStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if let Some(e) = self.dead() {
            return Poll::Ready(Err(e));
        }
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if let Some(e) = self.dead() {
            return Poll::Ready(Err(e));
        }
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if let Some(e) = self.dead() {
            return Poll::Ready(Err(e));
        }
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        if let Some(e) = self.dead() {
            return Poll::Ready(Err(e));
        }
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}
