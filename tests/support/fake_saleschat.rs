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
//!    body sent where the API takes none is a violation too), 7. apply.
//!
//! The server runs on its own thread and tokio runtime; dropping the [`FakeSaleschat`]
//! stops it and waits for it.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use serde_json::{json, Value};
use tokio::sync::oneshot;
use uuid::Uuid;

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

#[derive(Debug, Clone)]
pub struct SchemaViolation {
    pub method: String,
    pub path: String,
    pub body: Value,
    pub errors: Vec<String>,
}

pub struct FakeSaleschat {
    shared: Arc<Shared>,
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FakeSaleschat {
    pub async fn start(opts: FakeSaleschatOptions) -> FakeSaleschat {
        FakeSaleschat::start_blocking(opts)
    }

    pub fn start_blocking(opts: FakeSaleschatOptions) -> FakeSaleschat {
        let shared = Arc::new(Shared::new(opts));
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        std_listener.set_nonblocking(true).unwrap();
        let addr = std_listener.local_addr().unwrap();
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let state = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name(format!("fake-saleschat-{}", addr.port()))
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                rt.block_on(async move {
                    let listener = tokio::net::TcpListener::from_std(std_listener).unwrap();
                    let app = Router::new().fallback(handle).with_state(state);
                    let serve = axum::serve(listener, app);
                    tokio::select! {
                        _ = std::future::IntoFuture::into_future(serve) => {}
                        _ = stop_rx => {}
                    }
                });
                drop(rt);
            })
            .unwrap();
        FakeSaleschat {
            shared,
            addr,
            stop: Some(stop_tx),
            thread: Some(thread),
        }
    }

    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
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

    /// The next `n` requests are answered `status` with an `ErrorRespDto`, nothing applied.
    pub fn fail_next(&self, n: usize, status: u16) {
        self.shared
            .lock()
            .fail_next
            .extend(std::iter::repeat_n(status, n));
    }

    /// The next `n` creates make a user that is not a member of the org.
    pub fn create_without_org_next(&self, n: usize) {
        self.shared.lock().without_org_next += n;
    }

    /// Every answer is held back this long (the request is applied on arrival).
    pub fn delay(&self, delay: Duration) {
        self.shared.lock().delay = delay;
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

    pub fn requests(&self) -> Vec<RequestRecord> {
        self.shared.lock().requests.clone()
    }

    /// Requests whose method matches and whose path ends with `suffix`.
    pub fn count(&self, method: &str, suffix: &str) -> usize {
        self.requests()
            .iter()
            .filter(|r| r.method.eq_ignore_ascii_case(method) && r.path.ends_with(suffix))
            .count()
    }

    /// Every password received in a create body, in arrival order.
    pub fn passwords(&self) -> Vec<String> {
        self.requests()
            .into_iter()
            .filter_map(|r| r.password)
            .collect()
    }

    pub fn schema_violations(&self) -> Vec<SchemaViolation> {
        self.shared.lock().violations.clone()
    }

    pub fn clear_requests(&self) {
        let mut st = self.shared.lock();
        st.requests.clear();
        st.violations.clear();
    }
}

impl Drop for FakeSaleschat {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

struct Shared {
    opts: FakeSaleschatOptions,
    create_validator: jsonschema::Validator,
    state: Mutex<ScState>,
}

#[derive(Default)]
struct ScState {
    users: Vec<ScUser>,
    requests: Vec<RequestRecord>,
    violations: Vec<SchemaViolation>,
    fail_next: VecDeque<u16>,
    without_org_next: usize,
    delay: Duration,
    window_start: Option<Instant>,
    window_used: u32,
}

impl Shared {
    fn new(opts: FakeSaleschatOptions) -> Shared {
        let doc: Value = serde_json::from_str(OPENAPI).unwrap();
        let schema = &doc["paths"]["/v1/org/{orgId}/user"]["post"]["requestBody"]["content"]
            ["application/json"]["schema"];
        assert!(
            !schema.is_null(),
            "saleschat.openapi.json: no create schema"
        );
        let root = json!({ "allOf": [schema.clone()], "components": doc["components"].clone() });
        Shared {
            opts,
            create_validator: jsonschema::options().build(&root).unwrap(),
            state: Mutex::new(ScState::default()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, ScState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
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

    fn rate_check(&mut self, now: Instant, limit: u32, window: Duration) -> (bool, u32, u64) {
        let start = match self.window_start {
            Some(s) if now < s + window => s,
            _ => {
                self.window_start = Some(now);
                self.window_used = 0;
                now
            }
        };
        let allowed = self.window_used < limit;
        if allowed {
            self.window_used += 1;
        }
        let left = (start + window).saturating_duration_since(now).as_nanos();
        let reset = u64::try_from(left.div_ceil(1_000_000_000).max(1)).unwrap_or(u64::MAX);
        (allowed, limit.saturating_sub(self.window_used), reset)
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
        let (status, answer, rate, record_body, password) =
            decide(&shared, &mut st, &method, &uri, &headers, &body);
        st.requests.push(RequestRecord {
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
        (status, answer, rate, st.delay)
    };
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let mut resp = match answer {
        Some(body) => (status, Json(body)).into_response(),
        None => status.into_response(),
    };
    if let (Some((limit, remaining, reset)), true) = (rate, shared.opts.send_rate_headers) {
        let h = resp.headers_mut();
        for (name, value) in [
            ("x-ratelimit-limit", u64::from(limit)),
            ("x-ratelimit-remaining", u64::from(remaining)),
            ("x-ratelimit-reset", reset),
        ] {
            h.insert(HeaderName::from_static(name), HeaderValue::from(value));
        }
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
    let parsed: Option<Value> = if raw.is_empty() {
        None
    } else {
        Some(
            serde_json::from_slice(raw)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(raw).into_owned())),
        )
    };
    let logged = parsed.clone().unwrap_or(Value::Null);
    let password = logged
        .get("password")
        .and_then(Value::as_str)
        .map(str::to_string);
    let done = |(status, body): (StatusCode, Value), rate| {
        (status, Some(body), rate, logged.clone(), password.clone())
    };
    if let Some(code) = st.fail_next.pop_front() {
        let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
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
    let (allowed, remaining, reset) = st.rate_check(Instant::now(), opts.limit, opts.window);
    let rate = Some((opts.limit, remaining, reset));
    if !allowed {
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
            .create_validator
            .iter_errors(body)
            .map(|e| format!("{}: {e}", e.instance_path()))
            .collect(),
        (Route::Create, None) => vec!["the request body is required".into()],
        (_, Some(_)) => vec!["this operation takes no request body".into()],
        (_, None) => Vec::new(),
    };
    if !errors.is_empty() {
        st.violations.push(SchemaViolation {
            method: method.as_str().to_string(),
            path: uri.path().to_string(),
            body: logged.clone(),
            errors: errors.clone(),
        });
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
