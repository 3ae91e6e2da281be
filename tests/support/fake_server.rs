//! What the four stateful fake vendors share: the server on its own thread and tokio
//! runtime (real time, independent of the test's runtime, so a test may block on
//! `std::process::Command` while it answers) that stops and is joined on drop; the
//! request log with its schema violations; the faults every fake can inject
//! (`fail_next`, `delay`); reading a request body; and the `X-RateLimit-*` headers.
//! What a vendor answers, and in which order it checks, stays in its own fake.

// Test code may block and read the real clock: clippy.toml's disallowed-methods
// are for the library.
#![allow(clippy::disallowed_methods)]

use std::collections::VecDeque;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::http::{HeaderName, HeaderValue, Method, StatusCode};
use axum::response::Response;
use axum::Router;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// A server on 127.0.0.1 (random port) that answers until dropped. Dropping it stops
/// its runtime and waits for it: the port is closed and every connection is gone when
/// `drop` returns.
pub struct FakeServer {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FakeServer {
    /// Serves `app` (`name` names the thread and the panics: `fake-<name>-PORT`).
    pub fn start(name: &str, app: Router) -> FakeServer {
        FakeServer::start_with(name, move |listener| async move {
            let _ = axum::serve(listener, app).await;
        })
    }

    /// Runs `serve` on the bound listener, for a fake that needs its own listener
    /// around it (hesh's, whose connections a handler can kill).
    pub fn start_with<F, Fut>(name: &str, serve: F) -> FakeServer
    where
        F: FnOnce(TcpListener) -> Fut + Send + 'static,
        Fut: Future<Output = ()>,
    {
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap_or_else(|e| panic!("fake {name}: bind 127.0.0.1:0: {e}"));
        std_listener
            .set_nonblocking(true)
            .unwrap_or_else(|e| panic!("fake {name}: non-blocking listener: {e}"));
        let addr = std_listener
            .local_addr()
            .unwrap_or_else(|e| panic!("fake {name}: local address: {e}"));
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let thread_name = format!("fake-{name}-{}", addr.port());
        let what = name.to_string();
        let thread = std::thread::Builder::new()
            .name(thread_name)
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap_or_else(|e| panic!("fake {what}: runtime: {e}"));
                rt.block_on(async move {
                    let listener = TcpListener::from_std(std_listener)
                        .unwrap_or_else(|e| panic!("fake {what}: tokio listener: {e}"));
                    tokio::select! {
                        _ = serve(listener) => {}
                        _ = stop_rx => {}
                    }
                });
                // Dropping the runtime drops the listener and every connection task.
                drop(rt);
            })
            .unwrap_or_else(|e| panic!("fake {name}: spawn server thread: {e}"));
        FakeServer {
            addr,
            stop: Some(stop_tx),
            thread: Some(thread),
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT` (no trailing slash): the `base_url` for rosterd.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// What every fake answers to: its address, its request log and the common faults.
/// A fake implements the two required methods; tests bring the trait into scope
/// (`use support::fake_server::FakeVendor;`) and call the rest.
pub trait FakeVendor {
    /// The fake's own request log entry.
    type Record: Logged + Clone;

    fn server(&self) -> &FakeServer;

    /// Runs `f` on the request log and the faults, under the fake's state lock.
    fn with_log<T>(&self, f: impl FnOnce(&mut RequestLog<Self::Record>, &mut Faults) -> T) -> T;

    /// `http://127.0.0.1:PORT` (no trailing slash): the `base_url` for rosterd.
    fn base_url(&self) -> String {
        self.server().base_url()
    }

    fn addr(&self) -> SocketAddr {
        self.server().addr()
    }

    /// Every request received, in arrival order.
    fn requests(&self) -> Vec<Self::Record> {
        self.with_log(|log, _| log.requests())
    }

    /// Requests that change something (everything but GET).
    fn writes(&self) -> Vec<Self::Record> {
        self.with_log(|log, _| log.writes())
    }

    /// Bodies that broke the vendor's request schema, in arrival order.
    fn schema_violations(&self) -> Vec<SchemaViolation> {
        self.with_log(|log, _| log.violations())
    }

    /// Forgets the request log and the schema violations (not the vendor's state).
    fn clear_requests(&self) {
        self.with_log(|log, _| log.clear());
    }

    /// The next `n` requests are answered `status` (e.g. 500, 503) with nothing
    /// applied and not counted against the rate limit. Adds to any queued failures.
    fn fail_next(&self, n: usize, status: u16) {
        self.with_log(|_, faults| faults.fail_next(n, status));
    }

    /// Every answer is held back this long (the request is processed and recorded on
    /// arrival, so a client that times out leaves the change applied);
    /// `Duration::ZERO` turns it off.
    fn delay(&self, delay: Duration) {
        self.with_log(|_, faults| faults.set_delay(delay));
    }

    /// The next `n` writes that succeed are applied, then answered 500.
    fn fail_after_apply_next(&self, n: usize) {
        self.with_log(|_, faults| faults.fail_after_apply_next(n));
    }

    /// Clears every queued fault and the delay.
    fn clear_faults(&self) {
        self.with_log(|_, faults| faults.clear());
    }
}

/// Implements [`FakeVendor`] for a fake handle `$fake` with fields `server:
/// FakeServer` and `shared` (whose `lock()` gives the state, with `log` and `faults`),
/// and [`Logged`] for its log entry `$record` (with `method` and `path` fields): the
/// four fakes are built alike, so the impls are the same. Used in a fake's module,
/// beside `fake_server` (`super::fake_server` is this module).
macro_rules! impl_fake_vendor {
    ($fake:ty, $record:ty) => {
        impl super::fake_server::Logged for $record {
            fn method_path(&self) -> (&str, &str) {
                (&self.method, &self.path)
            }
        }

        impl super::fake_server::FakeVendor for $fake {
            type Record = $record;

            fn server(&self) -> &super::fake_server::FakeServer {
                &self.server
            }

            fn with_log<T>(
                &self,
                f: impl FnOnce(
                    &mut super::fake_server::RequestLog<$record>,
                    &mut super::fake_server::Faults,
                ) -> T,
            ) -> T {
                let mut st = self.shared.lock();
                let st = &mut *st;
                f(&mut st.log, &mut st.faults)
            }
        }
    };
}
pub(crate) use impl_fake_vendor;

/// The fake's state behind its mutex; a test that panicked while holding it must not
/// hide the fake from the next assertion.
pub fn lock<T>(state: &Mutex<T>) -> MutexGuard<'_, T> {
    state.lock().unwrap_or_else(|e| e.into_inner())
}

/// A request log entry: each fake records its own fields, these two are common.
pub trait Logged {
    /// The method and the path without the query string.
    fn method_path(&self) -> (&str, &str);
}

/// A request body that broke the vendor's request schema (or was not JSON).
#[derive(Debug, Clone)]
pub struct SchemaViolation {
    pub method: String,
    pub path: String,
    pub body: Value,
    pub errors: Vec<String>,
}

/// Fails the test, listing them, when any request body broke the vendor's schema.
pub fn assert_no_violations(violations: &[SchemaViolation]) {
    assert!(violations.is_empty(), "schema violations: {violations:#?}");
}

/// For a test that spent the fake's rate-limit window before rosterd ran: `requests`
/// as (arrival, answered 429) in arrival order. Returns the index of the first 429,
/// failing the test when there is none or when a later request arrived before
/// `reset_at` (the end of the window the 429 stood for).
pub fn first_429_then_waited(
    requests: impl IntoIterator<Item = (Instant, bool)>,
    reset_at: Instant,
) -> usize {
    let requests: Vec<(Instant, bool)> = requests.into_iter().collect();
    let first = requests
        .iter()
        .position(|(_, throttled)| *throttled)
        .expect("rosterd's first request was throttled");
    for (i, (at, _)) in requests.iter().enumerate().skip(first + 1) {
        assert!(
            *at >= reset_at,
            "request {i} was sent before the window reset"
        );
    }
    first
}

/// Every request a fake received, in arrival order, and the bodies that broke its
/// schema.
pub struct RequestLog<R> {
    requests: Vec<R>,
    violations: Vec<SchemaViolation>,
}

impl<R> Default for RequestLog<R> {
    fn default() -> Self {
        RequestLog {
            requests: Vec::new(),
            violations: Vec::new(),
        }
    }
}

impl<R: Logged + Clone> RequestLog<R> {
    pub fn push(&mut self, record: R) {
        self.requests.push(record);
    }

    pub fn requests(&self) -> Vec<R> {
        self.requests.clone()
    }

    /// Requests for `method` (any case) whose path `path_matches`, whatever their answer.
    pub fn count(&self, method: &str, path_matches: impl Fn(&str) -> bool) -> usize {
        self.requests
            .iter()
            .filter(|r| {
                let (m, p) = r.method_path();
                m.eq_ignore_ascii_case(method) && path_matches(p)
            })
            .count()
    }

    /// Requests that change something (everything but GET).
    pub fn writes(&self) -> Vec<R> {
        self.requests
            .iter()
            .filter(|r| r.method_path().0 != "GET")
            .cloned()
            .collect()
    }

    pub fn violation(&mut self, method: &Method, path: &str, body: &Value, errors: &[String]) {
        self.violations.push(SchemaViolation {
            method: method.as_str().to_string(),
            path: path.to_string(),
            body: body.clone(),
            errors: errors.to_vec(),
        });
    }

    pub fn violations(&self) -> Vec<SchemaViolation> {
        self.violations.clone()
    }

    /// Forgets the requests and the violations.
    pub fn clear(&mut self) {
        self.requests.clear();
        self.violations.clear();
    }
}

/// The faults every fake can inject; they take effect for requests arriving from now
/// on. A vendor's own faults (failed writes with a message, ...) stay in its fake.
#[derive(Default)]
pub struct Faults {
    fail_next: VecDeque<u16>,
    fail_after_apply: usize,
    /// Connections closed without an answer (before / after applying). Only a fake
    /// whose listener can kill a connection acts on them (hesh), and only it offers
    /// a way to set them; they live here so that one `clear` clears every fault.
    pub drop_next: usize,
    pub drop_after_apply: usize,
    delay: Duration,
}

impl Faults {
    /// The next `n` requests are answered `status`, nothing applied. Adds to any queued.
    pub fn fail_next(&mut self, n: usize, status: u16) {
        self.fail_next.extend(std::iter::repeat_n(status, n));
    }

    /// The next `n` writes that succeed are applied, then answered 500 instead: the
    /// client cannot tell whether the change was made. Adds to any queued.
    pub fn fail_after_apply_next(&mut self, n: usize) {
        self.fail_after_apply += n;
    }

    /// Whether this request's answer — `status`, after the fake applied it — is to be
    /// replaced by a 500 (a queued [`Faults::fail_after_apply_next`], taken by the
    /// first successful write: reads apply nothing).
    pub fn fails_after_apply(&mut self, method: &Method, status: StatusCode) -> bool {
        let take = self.fail_after_apply > 0 && method != Method::GET && status.is_success();
        if take {
            self.fail_after_apply -= 1;
        }
        take
    }

    /// The status to answer this request with instead of processing it, if a failure
    /// is queued (a code that is no status reads as 500).
    pub fn take_failure(&mut self) -> Option<StatusCode> {
        let code = self.fail_next.pop_front()?;
        Some(StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
    }

    /// Every answer is held back this long (the request is applied on arrival);
    /// `Duration::ZERO` turns it off.
    pub fn set_delay(&mut self, delay: Duration) {
        self.delay = delay;
    }

    pub fn delay(&self) -> Duration {
        self.delay
    }

    /// No queued failure or drop, no delay.
    pub fn clear(&mut self) {
        *self = Faults::default();
    }
}

/// Waits out a fault's delay, after the request was processed and its lock released.
pub async fn hold(delay: Duration) {
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
}

/// A request body as the fakes read it: the JSON, or why it is none (empty, not JSON),
/// and what the log keeps (the JSON; a JSON string with the raw text when it is not
/// JSON; null when empty).
pub fn read_body(raw: &[u8]) -> (Result<Value, String>, Value) {
    let parsed: Result<Value, String> = if raw.is_empty() {
        Err("the request body is empty".into())
    } else {
        serde_json::from_slice(raw).map_err(|e| format!("the request body is not JSON: {e}"))
    };
    let logged = match &parsed {
        Ok(v) => v.clone(),
        Err(_) if raw.is_empty() => Value::Null,
        Err(_) => Value::String(String::from_utf8_lossy(raw).into_owned()),
    };
    (parsed, logged)
}

/// `X-RateLimit-Limit`, `X-RateLimit-Remaining` and `X-RateLimit-Reset` (in whatever
/// unit the vendor uses: seconds to wait, or a Unix time).
pub fn insert_rate_headers(resp: &mut Response, limit: u32, remaining: u32, reset: u64) {
    let h = resp.headers_mut();
    for (name, value) in [
        ("x-ratelimit-limit", u64::from(limit)),
        ("x-ratelimit-remaining", u64::from(remaining)),
        ("x-ratelimit-reset", reset),
    ] {
        h.insert(HeaderName::from_static(name), HeaderValue::from(value));
    }
}
