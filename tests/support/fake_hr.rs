//! A fake HR system's JSON API (`GET /users`), for the HTTP source: the user list in
//! one of the paging styles rosterd supports, with auth and fault injection.
//!
//! # Behaviour
//! - Paging ([`Paging`]): `None` answers the whole list as a top-level array; every
//!   other style answers `{"data": {"users": [...]}, "meta": {...}}`:
//!   - `Page`: `?page=N` (1-based) and `?per_page=S` (default and cap `page_size`);
//!     past the end an empty `users` array.
//!   - `Offset`: `?offset=O&limit=L`, L capped at `page_size` (so a client asking for
//!     more gets less, as real APIs do); past the end an empty array.
//!   - `Cursor`: `?cursor=C` (opaque, absent for the first page);
//!     `meta.next_cursor` holds the next one, `null` on the last page.
//!   - `Link`: `?page=N`; a relative `Link: </users?page=N+1>; rel="next"` (beside
//!     `first` and `last` links) on every page but the last.
//! - `ignore_paging`: every request gets the first page, with a next link / cursor /
//!   records: a server that never ends.
//! - Auth ([`Auth`]): a wrong or missing credential → 401
//!   `{"message": "invalid credentials: <what was sent>"}` — the fake echoes the
//!   credential back, as careless servers do, so tests can check rosterd scrubs it.
//! - Faults, per data page (0-based, as the request's parameters select it):
//!   [`Fault::Status`] (answer that status), [`Fault::BadJson`] (200 with a broken
//!   body), [`Fault::Drop`] (the connection dies mid-body), [`Fault::Delay`] (the
//!   answer comes late: a client timeout). Each fault is served `times` times.
//!
//! The server runs on its own thread and runtime, on 127.0.0.1 (random port), and
//! stops when the [`FakeHr`] is dropped.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};
use tokio::sync::oneshot;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Paging {
    None,
    Page,
    Offset,
    Cursor,
    Link,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Auth {
    None,
    Bearer(String),
    Basic(String, String),
    Header(String, String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    Status(u16),
    BadJson,
    /// 200 with exactly this body (JSON a `Value` cannot hold, such as a repeated key).
    Body(String),
    Drop,
    Delay(Duration),
}

#[derive(Debug, Clone)]
pub struct FakeHrOptions {
    pub paging: Paging,
    /// Default page size and the most one page holds.
    pub page_size: usize,
    pub auth: Auth,
    pub ignore_paging: bool,
}

impl Default for FakeHrOptions {
    fn default() -> Self {
        FakeHrOptions {
            paging: Paging::Page,
            page_size: 10,
            auth: Auth::None,
            ignore_paging: false,
        }
    }
}

/// One request as the fake saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    /// Path and query, e.g. `/users?page=2&per_page=10`.
    pub target: String,
    /// The data page it selected (0-based).
    pub page: usize,
    /// Every header, lower-cased names.
    pub headers: Vec<(String, String)>,
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

struct Shared {
    opts: FakeHrOptions,
    state: Mutex<HrState>,
}

#[derive(Default)]
struct HrState {
    users: Vec<Value>,
    seen: Vec<Seen>,
    /// Data page → (fault, times left).
    faults: HashMap<usize, (Fault, usize)>,
}

pub struct FakeHr {
    shared: Arc<Shared>,
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FakeHr {
    pub fn start(opts: FakeHrOptions) -> FakeHr {
        let shared = Arc::new(Shared {
            opts,
            state: Mutex::new(HrState::default()),
        });
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        std_listener.set_nonblocking(true).unwrap();
        let addr = std_listener.local_addr().unwrap();
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let state = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name(format!("fake-hr-{}", addr.port()))
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                rt.block_on(async move {
                    let listener = tokio::net::TcpListener::from_std(std_listener).unwrap();
                    let app = Router::new().route("/users", get(users)).with_state(state);
                    tokio::select! {
                        _ = std::future::IntoFuture::into_future(axum::serve(listener, app)) => {}
                        _ = stop_rx => {}
                    }
                });
                drop(rt);
            })
            .unwrap();
        FakeHr {
            shared,
            addr,
            stop: Some(stop_tx),
            thread: Some(thread),
        }
    }

    /// `http://127.0.0.1:PORT/users`.
    pub fn url(&self) -> String {
        format!("http://{}/users", self.addr)
    }

    pub fn set_users(&self, users: Vec<Value>) {
        self.shared.state.lock().unwrap().users = users;
    }

    /// Serves `fault` for the next `times` requests of data page `page` (0-based).
    pub fn fault(&self, page: usize, fault: Fault, times: usize) {
        self.shared
            .state
            .lock()
            .unwrap()
            .faults
            .insert(page, (fault, times));
    }

    pub fn clear_faults(&self) {
        self.shared.state.lock().unwrap().faults.clear();
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.shared.state.lock().unwrap().seen.clone()
    }

    pub fn targets(&self) -> Vec<String> {
        self.seen().into_iter().map(|s| s.target).collect()
    }

    pub fn clear_seen(&self) {
        self.shared.state.lock().unwrap().seen.clear();
    }
}

impl Drop for FakeHr {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A source user as the fake HR system lists it; the email is nested (`work.email`).
pub fn hr_user(i: usize) -> Value {
    json!({
        "id": format!("E{i:05}"),
        "work": {"email": format!("user{i}@corp.example")},
        "first": format!("Fn{}", i % 1000),
        "last": format!("Last{i}"),
        "phone": format!("+1555{i:07}"),
        "status": "active",
        "department": if i.is_multiple_of(2) { "Sales" } else { "Ops" },
    })
}

fn param(q: &HashMap<String, String>, name: &str) -> Option<usize> {
    q.get(name).and_then(|v| v.parse().ok())
}

async fn users(
    State(shared): State<Arc<Shared>>,
    uri: Uri,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let opts = &shared.opts;
    let size = opts.page_size;
    // The slice this request asks for: (data page, first index, count).
    let (page, start, count) = if opts.ignore_paging {
        (0, 0, size)
    } else {
        match opts.paging {
            Paging::None => (0, 0, usize::MAX),
            Paging::Page | Paging::Link => {
                let per = param(&q, "per_page").unwrap_or(size).min(size).max(1);
                let n = param(&q, "page").unwrap_or(1).max(1) - 1;
                (n, n * per, per)
            }
            Paging::Offset => {
                let limit = param(&q, "limit").unwrap_or(size).min(size).max(1);
                let offset = param(&q, "offset").unwrap_or(0);
                (offset / limit, offset, limit)
            }
            Paging::Cursor => {
                let offset = q
                    .get("cursor")
                    .and_then(|c| c.strip_prefix("after-"))
                    .and_then(|c| c.parse().ok())
                    .unwrap_or(0);
                (offset / size, offset, size)
            }
        }
    };
    let target = uri
        .path_and_query()
        .map(|p| p.to_string())
        .unwrap_or_default();
    let (users, total, fault) = {
        let mut st = shared.state.lock().unwrap();
        st.seen.push(Seen {
            target,
            page,
            headers: headers
                .iter()
                .map(|(n, v)| {
                    (
                        n.as_str().to_string(),
                        String::from_utf8_lossy(v.as_bytes()).into_owned(),
                    )
                })
                .collect(),
        });
        let total = st.users.len();
        let users: Vec<Value> = st.users.iter().skip(start).take(count).cloned().collect();
        let fault = match st.faults.get_mut(&page) {
            Some((fault, left)) if *left > 0 => {
                *left -= 1;
                Some(fault.clone())
            }
            _ => None,
        };
        (users, total, fault)
    };

    if let Some(problem) = check_auth(&opts.auth, &headers) {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"message": format!("invalid credentials: {problem}")})),
        )
            .into_response();
    }

    let end = start.saturating_add(users.len());
    let more = opts.ignore_paging || end < total;
    let body = match opts.paging {
        Paging::None => Value::Array(users),
        _ => {
            let next_cursor = match (opts.paging, more) {
                (Paging::Cursor, true) => json!(format!("after-{end}")),
                _ => Value::Null,
            };
            json!({"data": {"users": users}, "meta": {"total": total, "next_cursor": next_cursor}})
        }
    };
    let mut response = match fault {
        Some(Fault::Status(code)) => {
            let status = StatusCode::from_u16(code).unwrap();
            return (status, Json(json!({"message": format!("injected {code}")}))).into_response();
        }
        Some(Fault::BadJson) => (
            StatusCode::OK,
            [("content-type", "application/json")],
            "{\"data\": {\"users\": [ {\"id\": \"E1\",, } ] }",
        )
            .into_response(),
        Some(Fault::Body(ref text)) => (
            StatusCode::OK,
            [("content-type", "application/json")],
            text.clone(),
        )
            .into_response(),
        Some(Fault::Drop) => {
            // Half a body, then an error: hyper aborts the connection.
            let text = body.to_string();
            let half = Bytes::from(text[..text.len() / 2].to_string());
            let chunks: Vec<Result<Bytes, std::io::Error>> = vec![
                Ok(half),
                Err(std::io::Error::new(
                    std::io::ErrorKind::ConnectionReset,
                    "dropped",
                )),
            ];
            let stream = futures_util::stream::iter(chunks);
            (
                StatusCode::OK,
                [("content-type", "application/json")],
                Body::from_stream(stream),
            )
                .into_response()
        }
        Some(Fault::Delay(d)) => {
            tokio::time::sleep(d).await;
            Json(body).into_response()
        }
        None => Json(body).into_response(),
    };
    if opts.paging == Paging::Link && !matches!(fault, Some(Fault::BadJson | Fault::Body(_))) {
        let n = page + 1;
        let last = total.div_ceil(size.max(1)).max(1);
        let mut link = format!(r#"</users?page=1>; rel="first", </users?page={last}>; rel="last""#);
        if more {
            link = format!(r#"</users?page={}>; rel="next", {link}"#, n + 1);
        }
        response.headers_mut().insert("link", link.parse().unwrap());
    }
    response
}

/// `None` when the request carries the right credential, else what it carried.
fn check_auth(auth: &Auth, headers: &HeaderMap) -> Option<String> {
    let get = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let (name, expected) = match auth {
        Auth::None => return None,
        Auth::Bearer(t) => ("authorization", format!("Bearer {t}")),
        Auth::Basic(u, p) => (
            "authorization",
            format!("Basic {}", base64(&format!("{u}:{p}"))),
        ),
        Auth::Header(n, v) => (n.as_str(), v.clone()),
    };
    match get(&name.to_ascii_lowercase()) {
        Some(v) if v == expected => None,
        Some(v) => Some(v),
        None => Some(format!("no {name} header")),
    }
}

/// Standard base64 with padding (for `Authorization: Basic`).
pub fn base64(text: &str) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let bytes = text.as_bytes();
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}
