//! Vendor answers that are not what the documents promise: an HTML error page from a
//! gateway, an empty 200, truncated JSON, a body without end. rosterd must neither
//! panic nor hang nor run out of memory, must tell the operator something readable,
//! and must record as done only what the vendor confirmed.
//!
//! The "vendor" here is a tiny server on 127.0.0.1 that gives every request the same
//! answer; the provider is hesh (a batch create for two users).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::support;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, StatusCode};
use axum::response::Response;
use axum::Router;
use serde_json::Value;
use tokio::net::TcpListener;

use support::workspace::{provider, Person, Workspace};

const TENANT: &str = "0b6f1c4e-2a43-4d8e-9d55-0e1f4c7a9b21";
const KEY: &str = "vendor-answers-key-never-printed";

/// What the server answers to every request.
#[derive(Clone)]
struct Answer {
    status: StatusCode,
    content_type: &'static str,
    body: Arc<Vec<u8>>,
}

/// Serves `answer` on 127.0.0.1 until the test's runtime ends; counts requests.
async fn serve(answer: Answer) -> (SocketAddr, Arc<AtomicUsize>) {
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    let app = Router::new().fallback(move || {
        let answer = answer.clone();
        let counter = counter.clone();
        async move {
            counter.fetch_add(1, Ordering::SeqCst);
            Response::builder()
                .status(answer.status)
                .header(header::CONTENT_TYPE, answer.content_type)
                .body(Body::from(answer.body.as_ref().clone()))
                .unwrap()
        }
    });
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (addr, hits)
}

/// Two people, synced once against `answer`: the exit code, hesh's report, requests.
async fn sync_against(answer: Answer) -> (i32, Value, usize, Workspace) {
    let (addr, hits) = serve(answer).await;
    let ws = Workspace::hesh(
        &format!("http://{addr}/"),
        TENANT,
        KEY,
        "    rate_limit: { max_attempts: 2, timeout_seconds: 20 }\n",
    );
    ws.write_people(&[Person::new(1), Person::new(2)]);
    // The binary blocks; the server needs this runtime's threads meanwhile.
    let ((code, doc), ws) = tokio::task::spawn_blocking(move || (ws.sync(), ws))
        .await
        .unwrap();
    let report = provider(&doc, "hesh").clone();
    (code, report, hits.load(Ordering::SeqCst), ws)
}

/// The failure messages of the run.
fn failures(report: &Value) -> Vec<String> {
    report["result"]["failures"]
        .as_array()
        .map(|f| {
            f.iter()
                .map(|x| x["error"].as_str().unwrap_or_default().to_string())
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_html_error_page_from_a_gateway_is_retried_then_failed_with_a_short_message() {
    let page = format!(
        "<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head><body>{}</body></html>",
        "<p>upstream is down</p>".repeat(200)
    );
    let (code, report, hits, _ws) = sync_against(Answer {
        status: StatusCode::BAD_GATEWAY,
        content_type: "text/html",
        body: Arc::new(page.into_bytes()),
    })
    .await;
    assert_eq!(code, 2, "{report}");
    assert_eq!(hits, 2, "one batch request, tried max_attempts = 2 times");
    let messages = failures(&report);
    assert_eq!(messages.len(), 2, "{report}");
    for m in &messages {
        assert!(m.contains("502"), "{m}");
        assert!(
            m.chars().count() < 400,
            "an HTML page is not a message: {m}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_html_page_with_a_4xx_fails_at_once_without_retry() {
    let (code, report, hits, _ws) = sync_against(Answer {
        status: StatusCode::FORBIDDEN,
        content_type: "text/html",
        body: Arc::new(b"<html><body><h1>Access denied</h1></body></html>".to_vec()),
    })
    .await;
    assert_eq!(code, 2);
    assert_eq!(hits, 1);
    // A 403 stops the provider: one error, the operations left for the next pass.
    let error = report["result"]["provider_error"]
        .as_str()
        .unwrap_or_default();
    assert!(
        error.contains("HTTP 403") && error.chars().count() < 600,
        "{report}"
    );
    assert!(failures(&report).is_empty(), "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_without_end_is_not_read_past_the_cap_and_fails_the_operations() {
    // 65 MiB of JSON-looking text: more than rosterd reads from any answer.
    let mut body = b"[".to_vec();
    body.resize(65 * 1024 * 1024, b' ');
    let (code, report, hits, _ws) = sync_against(Answer {
        status: StatusCode::OK,
        content_type: "application/json",
        body: Arc::new(body),
    })
    .await;
    assert_eq!(code, 2, "{report}");
    assert_eq!(hits, 1, "not retried: the same flood would come again");
    let messages = failures(&report);
    assert_eq!(messages.len(), 2, "{report}");
    assert!(
        messages.iter().all(|m| m.contains("larger than 64 MiB")),
        "{messages:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_and_truncated_2xx_answers_do_not_crash_the_run() {
    for body in [&b""[..], b"[{\"id\": \"u1\", \"email\": \"user1@corp.exa"] {
        let (code, report, _hits, _ws) = sync_against(Answer {
            status: StatusCode::OK,
            content_type: "application/json",
            body: Arc::new(body.to_vec()),
        })
        .await;
        // The vendor said 2xx; what it confirmed is applied, anything it did not is
        // failed with a reason — never a panic, never an operation lost from the report.
        let applied = report["result"]["applied"]["create"].as_u64().unwrap_or(0)
            + report["result"]["applied"]["update"].as_u64().unwrap_or(0);
        let failed = failures(&report).len() as u64;
        assert_eq!(applied + failed, 2, "{report}");
        assert!(code == 0 || code == 2, "{code}: {report}");
    }
}
