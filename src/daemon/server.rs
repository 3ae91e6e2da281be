//! /healthz, /readyz and /metrics on the configured address.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;

use crate::metrics::exposition::Exposition;
use crate::metrics::Metrics;

/// What the endpoints report, shared with the scheduler loop.
pub struct Health {
    pub metrics: Metrics,
    /// Failed passes in a row.
    pub failures_in_a_row: AtomicU32,
    pub unhealthy_after: AtomicU32,
    /// Set once the first pass has ended (whatever its outcome).
    pub ready: AtomicBool,
}

impl Health {
    pub fn new(unhealthy_after: u32) -> Self {
        Health {
            metrics: Metrics::new(),
            failures_in_a_row: AtomicU32::new(0),
            unhealthy_after: AtomicU32::new(unhealthy_after),
            ready: AtomicBool::new(false),
        }
    }

    pub fn healthy(&self) -> bool {
        let after = self.unhealthy_after.load(Ordering::SeqCst);
        after == 0 || self.failures_in_a_row.load(Ordering::SeqCst) < after
    }
}

async fn healthz(State(h): State<Arc<Health>>) -> impl IntoResponse {
    if h.healthy() {
        (StatusCode::OK, "ok\n".to_string())
    } else {
        let n = h.failures_in_a_row.load(Ordering::SeqCst);
        (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("unhealthy: {n} failed passes in a row\n"),
        )
    }
}

async fn readyz(State(h): State<Arc<Health>>) -> impl IntoResponse {
    if h.ready.load(Ordering::SeqCst) {
        (StatusCode::OK, "ready\n")
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "no pass has finished yet\n",
        )
    }
}

/// OpenMetrics when the scraper asks for it (a Prometheus server does), else the
/// classic text format (`promtool check metrics`, curl).
async fn metrics(State(h): State<Arc<Health>>, headers: HeaderMap) -> impl IntoResponse {
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
    let format = Exposition::negotiate(accept);
    (
        [
            (header::CONTENT_TYPE, format.content_type()),
            (header::VARY, "Accept"),
        ],
        h.metrics.encode(format),
    )
}

/// Binds `addr` and serves until `shutdown` resolves. Returns the bound address (a
/// port of 0 picks a free one).
pub async fn serve(
    addr: SocketAddr,
    health: Arc<Health>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let app = Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(health);
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await;
    });
    Ok((bound, task))
}
