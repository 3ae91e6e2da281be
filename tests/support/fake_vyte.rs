//! A stateful fake of vyte's users API (`/v2/users`), as
//! `shared/seeds/vyte-users-api.md` describes it, for integration tests that assert
//! on the vendor's final state and on the requests it received.
//!
//! # Behaviour
//! - Every request needs `Authorization: <apiKey>` (the key alone, no scheme word);
//!   otherwise 401 `{"message": "Unauthorized"}`.
//! - `GET /v2/users` → 200, an array of every user (vyte's user object: `_id`,
//!   `emails[]`, names, language, timezone, picture_url, `account.organization`
//!   with `extid`, plus fields rosterd does not read).
//! - `POST /v2/users` `{organization?, user: {...}}` creates one user → 201 with the
//!   user object, or `{}` (vyte's own sample) when `empty_create_response(true)`. An
//!   email another user has (case-insensitive) → 409 `{"message": ...}`.
//! - `PUT /v2/users/:id` updates the user's email, names, and language / timezone /
//!   picture_url / extid when sent → 200 `{}`. Unknown id → 404; an email another user
//!   has → 409.
//! - `POST /v2/users/batch` (shape undocumented; assumed an array of create bodies)
//!   creates each new user in order and skips the emails that exist → 201 with the
//!   array of created users, or `{}` with `empty_create_response(true)`.
//! - Every POST/PUT body (each batch item) is validated against
//!   `tests/fixtures/openapi/vyte.schema.json`; a violation → 400, recorded, nothing
//!   applied.
//! - Anything else → 404.
//!
//! - Rate limit: vyte documents none. The fake enforces a fixed window
//!   ([`FakeVyteOptions::limit`] requests per [`FakeVyteOptions::window`], opened by the
//!   first counted request) and answers a request over it 429
//!   `{"message": "Too many requests"}` with `Retry-After` (whole seconds until the
//!   window ends, rounded up) and no other rate-limit header: the common convention,
//!   and the one rosterd must honour when a vendor tells nothing in advance.
//!
//! Order of checks: `fail_next` (the given status, `{"message": "Injected failure"}`,
//! nothing applied, not counted), `fail_writes` (the same for POST/PUT only), rate
//! limit, auth, route, body schema, apply, then `fail_after_apply_next` (a successful
//! write answered 500 instead). `delay` holds every answer back (the request
//! is applied on arrival).
//!
//! The server runs on its own thread and tokio runtime; dropping the [`FakeVyte`]
//! stops it and waits for it ([`FakeServer`]).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use serde_json::{json, Value};

use super::fake_server::{self, FakeServer, Faults, RequestLog};
use super::openapi;

pub const USERS_PATH: &str = "/v2/users";
pub const BATCH_PATH: &str = "/v2/users/batch";
pub const DEFAULT_API_KEY: &str = "test-vyte-api-key";

const SCHEMA: &str = include_str!("../fixtures/openapi/vyte.schema.json");

use super::rate_window::FixedWindow;

#[derive(Debug, Clone)]
pub struct FakeVyteOptions {
    /// Expected `Authorization` header (the bare key).
    pub api_key: String,
    /// Requests allowed per fixed window.
    pub limit: u32,
    pub window: Duration,
}

impl Default for FakeVyteOptions {
    /// The default key and a limit tests do not hit by accident.
    fn default() -> Self {
        FakeVyteOptions {
            api_key: DEFAULT_API_KEY.into(),
            limit: 10_000,
            window: Duration::from_secs(60),
        }
    }
}

/// A user as the fake holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VyteUser {
    pub id: String,
    pub emails: Vec<String>,
    pub first_name: String,
    pub last_name: String,
    pub language: Option<String>,
    pub timezone: Option<String>,
    pub picture_url: Option<String>,
    pub extid: Option<String>,
}

impl VyteUser {
    /// A user with a fresh id and no extid (for `seed`).
    pub fn new(email: &str, first_name: &str, last_name: &str) -> VyteUser {
        VyteUser {
            id: new_id(),
            emails: vec![email.into()],
            first_name: first_name.into(),
            last_name: last_name.into(),
            language: None,
            timezone: None,
            picture_url: None,
            extid: None,
        }
    }

    pub fn email(&self) -> &str {
        self.emails.first().map_or("", String::as_str)
    }

    fn has_email(&self, email: &str) -> bool {
        self.emails.iter().any(|e| e.eq_ignore_ascii_case(email))
    }

    /// vyte's user object, with the fields rosterd does not read.
    pub fn to_json(&self) -> Value {
        json!({
            "calendars": { "google": false, "office365": false },
            "modules": { "availabilities": true, "team": false },
            "account": {
                "organization": {
                    "name": "Fake Org",
                    "id": "fake-org-id",
                    "extid": self.extid,
                },
                "plan": "pro",
            },
            "emails": self.emails,
            "_id": self.id,
            "first_name": self.first_name,
            "last_name": self.last_name,
            "language": self.language,
            "timezone": self.timezone,
            "picture_url": self.picture_url,
            "signedup_with": "api",
            "full_name": format!("{} {}", self.first_name, self.last_name),
            "__v": 0,
        })
    }
}

fn new_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..24].to_string()
}

/// One request the fake received, in arrival order.
#[derive(Debug, Clone)]
pub struct RequestRecord {
    pub at: Instant,
    pub method: String,
    pub path: String,
    pub status: u16,
    /// The body as JSON; null when empty; a JSON string when not JSON.
    pub body: Value,
    /// For the batch endpoint: how many items the array held.
    pub batch_len: Option<usize>,
}

struct VyteState {
    rate: FixedWindow,
    users: Vec<VyteUser>,
    log: RequestLog<RequestRecord>,
    faults: Faults,
    fail_writes: VecDeque<(u16, String)>,
    empty_create_response: bool,
    /// Emails created by a POST more than once (should never happen).
    created: Vec<String>,
}

struct Shared {
    api_key: String,
    validator: jsonschema::Validator,
    state: Mutex<VyteState>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, VyteState> {
        fake_server::lock(&self.state)
    }
}

pub struct FakeVyte {
    shared: Arc<Shared>,
    server: FakeServer,
}

fake_server::impl_fake_vendor!(FakeVyte, RequestRecord);

impl FakeVyte {
    /// Starts the fake on 127.0.0.1 (random port), expecting [`DEFAULT_API_KEY`].
    pub async fn start() -> FakeVyte {
        FakeVyte::start_with(FakeVyteOptions::default())
    }

    /// Starts the fake without an async runtime (it brings its own).
    pub fn start_blocking(api_key: &str) -> FakeVyte {
        FakeVyte::start_with(FakeVyteOptions {
            api_key: api_key.into(),
            ..FakeVyteOptions::default()
        })
    }

    /// Starts the fake with these options (it brings its own runtime).
    pub fn start_with(opts: FakeVyteOptions) -> FakeVyte {
        let schema: Value = serde_json::from_str(SCHEMA).expect("vyte.schema.json is JSON");
        let shared = Arc::new(Shared {
            api_key: opts.api_key,
            validator: jsonschema::validator_for(&schema).expect("vyte.schema.json compiles"),
            state: Mutex::new(VyteState {
                rate: FixedWindow::new(opts.limit, opts.window),
                users: Vec::new(),
                log: RequestLog::default(),
                faults: Faults::default(),
                fail_writes: VecDeque::new(),
                empty_create_response: false,
                created: Vec::new(),
            }),
        });
        let app = Router::new()
            .fallback(handle)
            .with_state(Arc::clone(&shared));
        FakeVyte {
            shared,
            server: FakeServer::start("vyte", app),
        }
    }

    pub fn api_key(&self) -> &str {
        &self.shared.api_key
    }

    // -- knobs -------------------------------------------------------------------------

    /// The next `n` writes (POST/PUT; reads pass) are answered `status` with
    /// `{"message": message}`, nothing applied.
    pub fn fail_writes(&self, n: usize, status: u16, message: &str) {
        self.shared
            .lock()
            .fail_writes
            .extend(std::iter::repeat_n((status, message.to_string()), n));
    }

    /// Creates (single and batch) answer `{}`, as vyte's documented sample does.
    pub fn empty_create_response(&self, empty: bool) {
        self.shared.lock().empty_create_response = empty;
    }

    // -- state -------------------------------------------------------------------------

    /// Users that exist before rosterd's first run. Panics on a duplicate email.
    pub fn seed(&self, users: impl IntoIterator<Item = VyteUser>) {
        let mut st = self.shared.lock();
        for u in users {
            assert!(
                st.find_email(u.email()).is_none(),
                "seed: email {} is already taken",
                u.email()
            );
            st.users.push(u);
        }
    }

    /// Every user, sorted by (first) email, case-insensitively.
    pub fn users(&self) -> Vec<VyteUser> {
        let mut users = self.shared.lock().users.clone();
        users.sort_by_key(|u| u.email().to_ascii_lowercase());
        users
    }

    pub fn user_by_email(&self, email: &str) -> Option<VyteUser> {
        let st = self.shared.lock();
        st.find_email(email).map(|i| st.users[i].clone())
    }

    /// Emails created more than once, or held by more than one user.
    pub fn duplicates(&self) -> Vec<String> {
        let st = self.shared.lock();
        let count = |emails: &mut dyn Iterator<Item = &String>| {
            let mut m = std::collections::BTreeMap::<String, usize>::new();
            for e in emails {
                *m.entry(e.to_ascii_lowercase()).or_default() += 1;
            }
            m
        };
        let created = count(&mut st.created.iter());
        let held = count(&mut st.users.iter().flat_map(|u| u.emails.iter()));
        let mut out: Vec<String> = created
            .into_iter()
            .chain(held)
            .filter(|(_, n)| *n > 1)
            .map(|(e, _)| e)
            .collect();
        out.sort();
        out.dedup();
        out
    }

    // -- request log -------------------------------------------------------------------

    /// Requests that arrived for `method path` (whatever their answer).
    pub fn count(&self, method: &str, path: &str) -> usize {
        self.shared.lock().log.count(method, |p| p == path)
    }

    /// How many times the user list was read.
    pub fn list_count(&self) -> usize {
        self.count("GET", USERS_PATH)
    }
}

impl VyteState {
    fn find_email(&self, email: &str) -> Option<usize> {
        self.users.iter().position(|u| u.has_email(email))
    }

    fn create(&mut self, body: &Value) -> Result<VyteUser, (StatusCode, Value)> {
        let user = &body["user"];
        let email = str_field(user, "email").unwrap_or_default();
        if self.find_email(&email).is_some() {
            return Err(error(
                StatusCode::CONFLICT,
                format!("A user with the email {email} already exists"),
            ));
        }
        let mut u = VyteUser::new(
            &email,
            &str_field(user, "first_name").unwrap_or_default(),
            &str_field(user, "last_name").unwrap_or_default(),
        );
        set_optional(&mut u, user);
        self.created.push(email);
        self.users.push(u.clone());
        Ok(u)
    }

    fn update(&mut self, id: &str, body: &Value) -> Result<(), (StatusCode, Value)> {
        let Some(i) = self.users.iter().position(|u| u.id == id) else {
            return Err(error(StatusCode::NOT_FOUND, "User not found"));
        };
        let user = &body["user"];
        let email = str_field(user, "email").unwrap_or_default();
        if self
            .users
            .iter()
            .enumerate()
            .any(|(j, u)| j != i && u.has_email(&email))
        {
            return Err(error(
                StatusCode::CONFLICT,
                format!("Another user has the email {email}"),
            ));
        }
        let u = &mut self.users[i];
        if !u.has_email(&email) {
            u.emails = vec![email];
        }
        if let Some(v) = str_field(user, "first_name") {
            u.first_name = v;
        }
        if let Some(v) = str_field(user, "last_name") {
            u.last_name = v;
        }
        set_optional(u, user);
        Ok(())
    }
}

fn set_optional(u: &mut VyteUser, user: &Value) {
    if let Some(v) = str_field(user, "language") {
        u.language = Some(v);
    }
    if let Some(v) = str_field(user, "timezone") {
        u.timezone = Some(v);
    }
    if let Some(v) = str_field(user, "picture_url") {
        u.picture_url = Some(v);
    }
    if let Some(v) = user
        .pointer("/account/organization/extid")
        .and_then(Value::as_str)
    {
        u.extid = Some(v.to_string());
    }
}

fn str_field(body: &Value, name: &str) -> Option<String> {
    body.get(name).and_then(Value::as_str).map(str::to_string)
}

fn error(status: StatusCode, message: impl Into<String>) -> (StatusCode, Value) {
    (status, json!({ "message": message.into() }))
}

async fn handle(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (status, answer, retry_after, delay) = {
        let mut st = shared.lock();
        let (status, answer, retry_after) =
            process(&shared, &mut st, &method, uri.path(), &headers, &body);
        (status, answer, retry_after, st.faults.delay())
    };
    fake_server::hold(delay).await;
    let mut resp = (status, Json(answer)).into_response();
    if let Some(secs) = retry_after {
        resp.headers_mut()
            .insert(axum::http::header::RETRY_AFTER, HeaderValue::from(secs));
    }
    resp
}

fn process(
    shared: &Shared,
    st: &mut VyteState,
    method: &Method,
    path: &str,
    headers: &HeaderMap,
    raw: &Bytes,
) -> (StatusCode, Value, Option<u64>) {
    let (parsed, logged) = fake_server::read_body(raw);
    let batch_len = (path == BATCH_PATH)
        .then(|| logged.as_array().map(Vec::len))
        .flatten();
    let mut retry_after = None;
    let (status, answer) = if let Some(status) = st.faults.take_failure() {
        error(status, "Injected failure")
    } else if let Some((code, message)) = (method != Method::GET)
        .then(|| st.fail_writes.pop_front())
        .flatten()
    {
        let status = StatusCode::from_u16(code).unwrap_or(StatusCode::BAD_REQUEST);
        error(status, message)
    } else {
        let rate = st.rate.check(Instant::now());
        if rate.allowed {
            let (status, answer) = decide(shared, st, method, path, headers, parsed, &logged);
            if st.faults.fails_after_apply(method, status) {
                error(StatusCode::INTERNAL_SERVER_ERROR, "Internal server error")
            } else {
                (status, answer)
            }
        } else {
            retry_after = Some(rate.reset_secs());
            error(StatusCode::TOO_MANY_REQUESTS, "Too many requests")
        }
    };
    st.log.push(RequestRecord {
        at: Instant::now(),
        method: method.as_str().to_string(),
        path: path.to_string(),
        status: status.as_u16(),
        body: logged,
        batch_len,
    });
    (status, answer, retry_after)
}

fn decide(
    shared: &Shared,
    st: &mut VyteState,
    method: &Method,
    path: &str,
    headers: &HeaderMap,
    parsed: Result<Value, String>,
    logged: &Value,
) -> (StatusCode, Value) {
    let auth = headers.get("authorization").and_then(|v| v.to_str().ok());
    if auth != Some(shared.api_key.as_str()) {
        return error(StatusCode::UNAUTHORIZED, "Unauthorized");
    }
    let user_id = path
        .strip_prefix("/v2/users/")
        .filter(|id| !id.is_empty() && !id.contains('/') && *id != "batch");
    match (method.as_str(), path, user_id) {
        ("GET", USERS_PATH, _) => {
            let users: Vec<Value> = st.users.iter().map(VyteUser::to_json).collect();
            (StatusCode::OK, Value::Array(users))
        }
        ("POST", USERS_PATH, _) => {
            let body = match checked(shared, st, method, path, parsed, logged) {
                Ok(b) => b,
                Err(e) => return e,
            };
            match st.create(&body) {
                Ok(_) if st.empty_create_response => (StatusCode::CREATED, json!({})),
                Ok(u) => (StatusCode::CREATED, u.to_json()),
                Err(e) => e,
            }
        }
        ("PUT", _, Some(id)) => {
            let body = match checked(shared, st, method, path, parsed, logged) {
                Ok(b) => b,
                Err(e) => return e,
            };
            match st.update(id, &body) {
                Ok(()) => (StatusCode::OK, json!({})),
                Err(e) => e,
            }
        }
        ("POST", BATCH_PATH, _) => {
            let items = match parsed {
                Ok(Value::Array(items)) => items,
                Ok(_) => {
                    return violation(
                        st,
                        method,
                        path,
                        logged,
                        vec!["the batch body is not an array".into()],
                    )
                }
                Err(e) => return violation(st, method, path, logged, vec![e]),
            };
            let errors: Vec<String> = items
                .iter()
                .enumerate()
                .flat_map(|(i, item)| openapi::errors(&shared.validator, item, &format!("/{i}")))
                .collect();
            if !errors.is_empty() {
                return violation(st, method, path, logged, errors);
            }
            let created: Vec<Value> = items
                .iter()
                .filter_map(|item| st.create(item).ok())
                .map(|u| u.to_json())
                .collect();
            if st.empty_create_response {
                (StatusCode::CREATED, json!({}))
            } else {
                (StatusCode::CREATED, Value::Array(created))
            }
        }
        _ => error(StatusCode::NOT_FOUND, format!("Cannot {method} {path}")),
    }
}

/// The body, when it is JSON and matches the schema; else the 400 answer (recorded).
fn checked(
    shared: &Shared,
    st: &mut VyteState,
    method: &Method,
    path: &str,
    parsed: Result<Value, String>,
    logged: &Value,
) -> Result<Value, (StatusCode, Value)> {
    let body = parsed.map_err(|e| violation(st, method, path, logged, vec![e]))?;
    let errors = openapi::errors(&shared.validator, &body, "");
    if errors.is_empty() {
        Ok(body)
    } else {
        Err(violation(st, method, path, logged, errors))
    }
}

fn violation(
    st: &mut VyteState,
    method: &Method,
    path: &str,
    body: &Value,
    errors: Vec<String>,
) -> (StatusCode, Value) {
    st.log.violation(method, path, body, &errors);
    error(StatusCode::BAD_REQUEST, errors.join("; "))
}
