//! A stateful fake of zaia's external-users API, as `providers/NOTES.md`, the seed
//! document and `tests/fixtures/openapi/zaia.openapi.json` describe it, for
//! integration tests that assert on the vendor's final state and on the requests it
//! received.
//!
//! # Behaviour
//! - Auth: the `authorization` header must be the API key → else 401.
//! - `POST /api/v1/external-users`: the body must carry all six fields (nullable ones
//!   as `null`; checked by the OpenAPI schema → 400); a channelId the fake does not
//!   know → 404 "Channel not found"; else 200 with the new user (and an
//!   `accessToken`). zaia documents no uniqueness rule: duplicates are accepted, and
//!   [`FakeZaia::duplicates`] shows them.
//! - `GET /api/v1/external-users?search=&channelIds=&pageNumber=&pageSize=`: users in
//!   creation order, filtered by channel (`channelIds`, repeated or single) and by
//!   `search` (partial, case-insensitive over externalId, identifier and name), one
//!   page (`pageNumber` ≥ 1, default 1; `pageSize` 1 to 100, default 10; else 400).
//! - `GET /api/v1/external-users/{id}`: the user, or 404.
//! - `PATCH /api/v1/external-users/{id}`: sets every field sent (`null` empties a
//!   nullable field) and `blocked`; unknown id → 404.
//! - Every other method or path → 404.
//!
//! Errors are zaia's `{code, message, name, feedback, cta}`. Users in answers carry an
//! extra field zaia does not document (`avatarUrl`), as a real API grows fields.
//!
//! Rate limit: zaia documents none. The fake enforces a fixed window
//! ([`FakeZaiaOptions::limit`] requests per [`FakeZaiaOptions::window`], opened by the
//! first counted request); every counted answer carries `X-RateLimit-Limit`,
//! `X-RateLimit-Remaining` and `X-RateLimit-Reset` as a **Unix time** (whole seconds,
//! rounded up: the other common form, unlike hesh's seconds-to-wait), and a request
//! over the limit is answered 429 `TOO_MANY_REQUESTS`, nothing applied.
//!
//! # Order of checks
//! 1. `fail_next` (the injected status, nothing applied, not counted), 2. rate limit,
//!    3. auth, 4. route, 5. the body against the OpenAPI request schema (400, recorded
//!    as a violation), 6. apply, then `fail_after_apply_next` (a successful write
//!    answered 500 instead).
//!
//! `delay` holds every answer back; the request is processed and recorded on arrival.
//! The server runs on its own thread and tokio runtime; dropping the [`FakeZaia`]
//! stops it and waits for it ([`FakeServer`]).

// Test code may block and read the real clock: clippy.toml's disallowed-methods
// are for the library.
#![allow(clippy::disallowed_methods)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Map, Value};
use uuid::Uuid;

use super::fake_server::{self, FakeServer, Faults, RequestLog};
use super::openapi::{self, RequestValidators};

pub const USERS_PATH: &str = "/api/v1/external-users";

pub const DEFAULT_API_KEY: &str = "test-zaia-api-key";
pub const DEFAULT_CHANNEL_ID: &str = "6f1d2c3b-4a59-4e6d-8f70-91a2b3c4d5e6";
pub const WORKSPACE_ID: &str = "0d4b7c2e-9a1f-4c3d-b5e6-7f8091a2b3c4";

const OPENAPI: &str = include_str!("../fixtures/openapi/zaia.openapi.json");

use super::rate_window::{FixedWindow, RateCheck};

/// The six fields a create must carry.
pub const CREATE_FIELDS: [&str; 6] = [
    "channelId",
    "externalId",
    "externalUserGroupId",
    "identifier",
    "name",
    "tierId",
];

#[derive(Debug, Clone)]
pub struct FakeZaiaOptions {
    /// Expected `authorization` header (the bare key).
    pub api_key: String,
    /// Channels that exist; a create into another one → 404.
    pub channel_ids: Vec<String>,
    /// Requests allowed per fixed window.
    pub limit: u32,
    pub window: Duration,
}

impl Default for FakeZaiaOptions {
    /// The default key and channel, and a limit tests do not hit by accident.
    fn default() -> Self {
        FakeZaiaOptions {
            api_key: DEFAULT_API_KEY.into(),
            channel_ids: vec![DEFAULT_CHANNEL_ID.into()],
            limit: 10_000,
            window: Duration::from_secs(60),
        }
    }
}

/// A user as the fake holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZaiaUser {
    pub id: Uuid,
    pub channel_id: String,
    pub external_id: Option<String>,
    pub external_user_group_id: Option<String>,
    pub identifier: Option<String>,
    pub name: Option<String>,
    pub tier_id: Option<String>,
    pub blocked: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl ZaiaUser {
    /// An unblocked user in the default channel with a fresh id (for `seed`).
    pub fn new(external_id: Option<&str>, identifier: Option<&str>, name: &str) -> ZaiaUser {
        ZaiaUser {
            id: Uuid::new_v4(),
            channel_id: DEFAULT_CHANNEL_ID.into(),
            external_id: external_id.map(str::to_string),
            external_user_group_id: None,
            identifier: identifier.map(str::to_string),
            name: Some(name.into()),
            tier_id: None,
            blocked: false,
            created_at: Utc::now(),
            updated_at: Utc::now(),
        }
    }

    pub fn in_channel(mut self, channel_id: &str) -> ZaiaUser {
        self.channel_id = channel_id.into();
        self
    }

    pub fn blocked(mut self, blocked: bool) -> ZaiaUser {
        self.blocked = blocked;
        self
    }

    /// The user as zaia answers with it.
    pub fn to_json(&self) -> Value {
        json!({
            "createdAt": self.created_at.to_rfc3339_opts(SecondsFormat::Millis, true),
            "id": self.id.to_string(),
            "updatedAt": self.updated_at.to_rfc3339_opts(SecondsFormat::Millis, true),
            "blocked": self.blocked,
            "channelId": self.channel_id,
            "externalId": self.external_id,
            "externalUserGroupId": self.external_user_group_id,
            "identifier": self.identifier,
            "name": self.name,
            "superIdentityId": Uuid::from_u128(self.id.as_u128() ^ 0xFFFF).to_string(),
            "tierId": self.tier_id,
            "workspaceId": WORKSPACE_ID,
            "avatarUrl": null,
        })
    }

    fn matches_search(&self, term: &str) -> bool {
        let term = term.to_lowercase();
        [&self.external_id, &self.identifier, &self.name]
            .iter()
            .any(|f| {
                f.as_deref()
                    .is_some_and(|v| v.to_lowercase().contains(&term))
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
    /// The query pairs, decoded.
    pub query: Vec<(String, String)>,
    pub status: u16,
    /// The body as JSON; a JSON string with the raw text when not JSON; null when empty.
    pub body: Value,
    pub injected: bool,
}

impl RequestRecord {
    pub fn param(&self, key: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

pub struct FakeZaia {
    shared: Arc<Shared>,
    server: FakeServer,
}

fake_server::impl_fake_vendor!(FakeZaia, RequestRecord);

impl FakeZaia {
    /// Starts the fake on 127.0.0.1 (random port). It answers until dropped.
    pub fn start(opts: FakeZaiaOptions) -> FakeZaia {
        let state = ZaiaState {
            rate: FixedWindow::new(opts.limit, opts.window),
            users: Vec::new(),
            log: RequestLog::default(),
            faults: Faults::default(),
        };
        let shared = Arc::new(Shared {
            validators: RequestValidators::from_openapi("zaia", &openapi()),
            opts,
            state: Mutex::new(state),
        });
        let app = Router::new()
            .fallback(handle)
            .with_state(Arc::clone(&shared));
        FakeZaia {
            shared,
            server: FakeServer::start("zaia", app),
        }
    }

    pub fn api_key(&self) -> &str {
        &self.shared.opts.api_key
    }

    /// The first configured channel.
    pub fn channel_id(&self) -> &str {
        &self.shared.opts.channel_ids[0]
    }

    // -- faults -------------------------------------------------------------------------

    // -- state --------------------------------------------------------------------------

    /// Users that exist before rosterd's first run (after any already held).
    pub fn seed(&self, users: impl IntoIterator<Item = ZaiaUser>) {
        self.shared.lock().users.extend(users);
    }

    /// Every user, in creation order.
    pub fn users(&self) -> Vec<ZaiaUser> {
        self.shared.lock().users.clone()
    }

    pub fn user(&self, id: Uuid) -> Option<ZaiaUser> {
        self.users().into_iter().find(|u| u.id == id)
    }

    pub fn users_by_external_id(&self, external_id: &str) -> Vec<ZaiaUser> {
        self.users()
            .into_iter()
            .filter(|u| u.external_id.as_deref() == Some(external_id))
            .collect()
    }

    /// The one user with this externalId; panics when there are several.
    pub fn user_by_external_id(&self, external_id: &str) -> Option<ZaiaUser> {
        let mut found = self.users_by_external_id(external_id);
        assert!(
            found.len() <= 1,
            "{external_id} is held {} times",
            found.len()
        );
        found.pop()
    }

    /// externalIds and identifiers (case-insensitive) more than one user holds.
    pub fn duplicates(&self) -> Vec<String> {
        let mut seen: BTreeMap<String, usize> = BTreeMap::new();
        for u in self.users() {
            if let Some(e) = &u.external_id {
                *seen.entry(format!("externalId {e}")).or_default() += 1;
            }
            if let Some(i) = &u.identifier {
                *seen
                    .entry(format!("identifier {}", i.to_lowercase()))
                    .or_default() += 1;
            }
        }
        seen.into_iter()
            .filter(|(_, n)| *n > 1)
            .map(|(k, n)| format!("{k} ({n} users)"))
            .collect()
    }

    pub fn assert_no_duplicates(&self) {
        let d = self.duplicates();
        assert!(d.is_empty(), "fake zaia holds duplicates: {d:?}");
    }

    // -- request log --------------------------------------------------------------------

    /// Requests with this method whose path starts with `path_prefix`.
    pub fn count(&self, method: &str, path_prefix: &str) -> usize {
        self.shared
            .lock()
            .log
            .count(method, |p| p.starts_with(path_prefix))
    }
}

// -------------------------------------------------------------------------------------

struct Shared {
    opts: FakeZaiaOptions,
    /// Request-body validators by (method, path template).
    validators: RequestValidators,
    state: Mutex<ZaiaState>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, ZaiaState> {
        fake_server::lock(&self.state)
    }
}

struct ZaiaState {
    rate: FixedWindow,
    users: Vec<ZaiaUser>,
    log: RequestLog<RequestRecord>,
    faults: Faults,
}

pub fn openapi() -> Value {
    serde_json::from_str(OPENAPI).expect("zaia.openapi.json is JSON")
}

/// zaia's error body.
fn error(status: StatusCode, code: &str, message: impl Into<String>) -> (StatusCode, Value) {
    let message = message.into();
    (
        status,
        json!({
            "code": code,
            "message": message,
            "name": format!("{}Exception", status.canonical_reason().unwrap_or("Error").replace(' ', "")),
            "feedback": { "enUs": message, "esEs": message, "ptBr": message },
            "cta": { "type": "support-contact", "url": "https://zaia.example/support" },
        }),
    )
}

enum Route {
    List,
    Create,
    Get(String),
    Patch(String),
}

fn route(method: &Method, path: &str) -> Option<Route> {
    let rest = path.strip_prefix(USERS_PATH)?;
    match (method.as_str(), rest) {
        ("GET", "" | "/") => Some(Route::List),
        ("POST", "" | "/") => Some(Route::Create),
        ("GET", r) if r.len() > 1 && !r[1..].contains('/') => Some(Route::Get(r[1..].into())),
        ("PATCH", r) if r.len() > 1 && !r[1..].contains('/') => Some(Route::Patch(r[1..].into())),
        _ => None,
    }
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
        let query: Vec<(String, String)> =
            url::form_urlencoded::parse(uri.query().unwrap_or_default().as_bytes())
                .into_owned()
                .collect();
        let (parsed, logged) = fake_server::read_body(&body);
        let parsed = parsed.ok();
        let mut injected = false;
        let mut rate: Option<RateCheck> = None;
        let (status, answer) = match st.faults.take_failure() {
            Some(status) => {
                injected = true;
                error(status, "INJECTED", "Injected failure")
            }
            None => {
                let check = st.rate.check(Instant::now());
                rate = Some(check);
                if check.allowed {
                    let (status, answer) = decide(
                        &shared,
                        &mut st,
                        &method,
                        uri.path(),
                        &query,
                        &headers,
                        parsed,
                        &logged,
                    );
                    if st.faults.fails_after_apply(&method, status) {
                        error(
                            StatusCode::INTERNAL_SERVER_ERROR,
                            "INTERNAL",
                            "Internal server error",
                        )
                    } else {
                        (status, answer)
                    }
                } else {
                    error(
                        StatusCode::TOO_MANY_REQUESTS,
                        "TOO_MANY_REQUESTS",
                        "Too many requests, slow down.",
                    )
                }
            }
        };
        st.log.push(RequestRecord {
            at: Instant::now(),
            method: method.as_str().to_string(),
            path: uri.path().to_string(),
            query,
            status: status.as_u16(),
            body: logged,
            injected,
        });
        // The reset time as of the check, not as of the (maybe delayed) answer.
        let rate = rate.map(|r| (r, r.reset_epoch()));
        (status, answer, rate, st.faults.delay())
    };
    fake_server::hold(delay).await;
    let mut resp = (status, Json(answer)).into_response();
    if let Some((rate, reset_epoch)) = rate {
        fake_server::insert_rate_headers(&mut resp, rate.limit, rate.remaining, reset_epoch);
    }
    resp
}

#[allow(clippy::too_many_arguments)]
fn decide(
    shared: &Shared,
    st: &mut ZaiaState,
    method: &Method,
    path: &str,
    query: &[(String, String)],
    headers: &HeaderMap,
    parsed: Option<Value>,
    logged: &Value,
) -> (StatusCode, Value) {
    let auth = headers.get("authorization").and_then(|v| v.to_str().ok());
    if auth != Some(shared.opts.api_key.as_str()) {
        return error(StatusCode::UNAUTHORIZED, "UNAUTHORIZED", "Unauthorized.");
    }
    let Some(route) = route(method, path) else {
        return error(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            format!("Route {method}:{path} not found"),
        );
    };
    // Bodies of the calls that take one, against the schema.
    let template = match &route {
        Route::Create => Some(USERS_PATH.to_string()),
        Route::Patch(_) => Some(format!("{USERS_PATH}/{{id}}")),
        _ => None,
    };
    let body = match template {
        None => Value::Null,
        Some(template) => {
            let errors: Vec<String> = match (&parsed, shared.validators.get(method, &template)) {
                (None, _) => vec!["the request body is not JSON".into()],
                (Some(_), None) => vec![format!("no request schema for {method} {template}")],
                (Some(body), Some(v)) => openapi::errors(v, body, ""),
            };
            if !errors.is_empty() {
                st.log.violation(method, path, logged, &errors);
                return error(StatusCode::BAD_REQUEST, "INVALID_DATA", errors.join("; "));
            }
            parsed.unwrap_or(Value::Null)
        }
    };
    match route {
        Route::List => list(st, query),
        Route::Create => create(shared, st, &body),
        Route::Get(id) => match find(st, &id) {
            Some(i) => (StatusCode::OK, st.users[i].to_json()),
            None => not_found(),
        },
        Route::Patch(id) => match find(st, &id) {
            Some(i) => {
                let u = &mut st.users[i];
                if let Value::Object(fields) = &body {
                    patch(u, fields);
                }
                u.updated_at = Utc::now();
                (StatusCode::OK, u.to_json())
            }
            None => not_found(),
        },
    }
}

fn not_found() -> (StatusCode, Value) {
    error(
        StatusCode::NOT_FOUND,
        "EXTERNAL_USER_NOT_FOUND",
        "External user not found.",
    )
}

fn find(st: &ZaiaState, id: &str) -> Option<usize> {
    let id = Uuid::parse_str(id).ok()?;
    st.users.iter().position(|u| u.id == id)
}

fn opt_str(v: &Value) -> Option<String> {
    v.as_str().map(str::to_string)
}

fn create(shared: &Shared, st: &mut ZaiaState, body: &Value) -> (StatusCode, Value) {
    // The schema already demands all six fields; say so as zaia would if it did not.
    if let Some(missing) = CREATE_FIELDS.iter().find(|f| body.get(**f).is_none()) {
        return error(
            StatusCode::BAD_REQUEST,
            "INVALID_DATA",
            format!("{missing} is required"),
        );
    }
    let channel = body["channelId"].as_str().unwrap_or_default().to_string();
    if !shared
        .opts
        .channel_ids
        .iter()
        .any(|c| c.eq_ignore_ascii_case(&channel))
    {
        return error(
            StatusCode::NOT_FOUND,
            "CHANNEL_NOT_FOUND",
            "Channel not found.",
        );
    }
    let now = Utc::now();
    let user = ZaiaUser {
        id: Uuid::new_v4(),
        channel_id: channel,
        external_id: opt_str(&body["externalId"]),
        external_user_group_id: opt_str(&body["externalUserGroupId"]),
        identifier: opt_str(&body["identifier"]),
        name: opt_str(&body["name"]),
        tier_id: opt_str(&body["tierId"]),
        blocked: false,
        created_at: now,
        updated_at: now,
    };
    st.users.push(user.clone());
    let mut answer = user.to_json();
    answer["accessToken"] = Value::String(format!("tok-{}", user.id.simple()));
    (StatusCode::OK, answer)
}

fn patch(u: &mut ZaiaUser, fields: &Map<String, Value>) {
    for (k, v) in fields {
        match k.as_str() {
            "externalId" => u.external_id = opt_str(v),
            "externalUserGroupId" => u.external_user_group_id = opt_str(v),
            "identifier" => u.identifier = opt_str(v),
            "name" => u.name = opt_str(v),
            "tierId" => u.tier_id = opt_str(v),
            "blocked" => u.blocked = v.as_bool().unwrap_or(u.blocked),
            _ => {}
        }
    }
}

fn list(st: &ZaiaState, query: &[(String, String)]) -> (StatusCode, Value) {
    let get = |key: &str| {
        query
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    };
    let number = |key: &str, default: usize| -> Result<usize, String> {
        match get(key) {
            None => Ok(default),
            Some(v) => v
                .parse::<usize>()
                .map_err(|_| format!("{key} must be a number")),
        }
    };
    let page = match number("pageNumber", 1) {
        Ok(0) => {
            return error(
                StatusCode::BAD_REQUEST,
                "INVALID_DATA",
                "pageNumber must be >= 1",
            )
        }
        Ok(n) => n,
        Err(e) => return error(StatusCode::BAD_REQUEST, "INVALID_DATA", e),
    };
    let size = match number("pageSize", 10) {
        Ok(n) if (1..=100).contains(&n) => n,
        Ok(_) => {
            return error(
                StatusCode::BAD_REQUEST,
                "INVALID_DATA",
                "pageSize must be between 1 and 100",
            )
        }
        Err(e) => return error(StatusCode::BAD_REQUEST, "INVALID_DATA", e),
    };
    let channels: Vec<&str> = query
        .iter()
        .filter(|(k, _)| k == "channelIds" || k == "channelIds[]")
        .flat_map(|(_, v)| v.split(','))
        .filter(|v| !v.is_empty())
        .collect();
    let search = get("search").filter(|s| !s.is_empty());
    let users: Vec<Value> = st
        .users
        .iter()
        .filter(|u| {
            channels.is_empty()
                || channels
                    .iter()
                    .any(|c| c.eq_ignore_ascii_case(&u.channel_id))
        })
        .filter(|u| search.is_none_or(|s| u.matches_search(s)))
        .skip((page - 1) * size)
        .take(size)
        .map(ZaiaUser::to_json)
        .collect();
    (StatusCode::OK, Value::Array(users))
}
