//! Posting one message to one webhook, through the one outbound HTTP policy
//! ([`crate::net::client`]: same-origin redirects only, https unless loopback or
//! allowed) and the one retry decision ([`crate::net::send_with_retry`]: 5xx, 408,
//! timeouts and dropped connections back off and go again, 429 waits for the hint,
//! other 4xx fail at once) — all of it within the webhook's `timeout_seconds`.

use std::time::Duration;

use reqwest::header::CONTENT_TYPE;

use super::config::Webhook;
use crate::config::RateLimitConfig;
use crate::executor::apply::Clock;
use crate::net::{classify_transport, send_with_retry, Attempt, Pacer, RateLimitHeaders};

/// Attempts per message (429s are not counted; the timeout bounds them).
pub const MAX_ATTEMPTS: u32 = 4;

/// Most of an answer read: a receiver says "ok" or why not; only its start is kept.
const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// Why a message was not delivered. Messages never hold the URL.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("cannot build the HTTP client: {0}")]
    Client(#[from] crate::net::ClientError),
    #[error("{0}")]
    Failed(#[from] crate::net::Failure),
    #[error("not delivered within timeout_seconds ({} s)", .0.as_secs())]
    TimedOut(Duration),
}

/// Posts `body` to `hook` until it is taken (2xx), refused for good, or the hook's
/// timeout has passed — which bounds every attempt and every wait between them.
pub async fn send(hook: &Webhook, body: &str, clock: &Clock) -> Result<(), SendError> {
    let total = hook.timeout;
    // Each attempt gets half the budget (at least a second), so that one that hangs
    // leaves time for another.
    let per_attempt = (total / 2).max(Duration::from_secs(1)).min(total);
    let client = crate::net::client(&crate::net::Endpoint {
        url: hook.url.endpoint(),
        timeout: per_attempt,
    })?;
    let limits = RateLimitConfig {
        max_concurrency: 1,
        requests_per_second: None,
        max_wait_seconds: total.as_secs(),
        max_attempts: MAX_ATTEMPTS,
        timeout_seconds: per_attempt.as_secs(),
        fail_fast_after: 1,
    };
    let pacer = Pacer::new(&limits);
    let policy = crate::net::RetryPolicy::from(&limits).for_vendor("the webhook");
    let url = hook.url.endpoint().url().clone();
    let attempts = send_with_retry(&pacer, &policy, || {
        let request = client
            .post(url.clone())
            .header(CONTENT_TYPE, "application/json")
            .body(body.to_string());
        async move {
            match request.send().await {
                Ok(mut response) => {
                    let status = response.status().as_u16();
                    let headers = RateLimitHeaders::parse(response.headers(), clock());
                    let answer = crate::net::read_capped(&mut response, MAX_ANSWER_BYTES)
                        .await
                        .ok()
                        .flatten()
                        .unwrap_or_default();
                    Attempt::answered(status, headers, receiver_message(&answer), ())
                }
                // Without the URL: reqwest's Display would carry it (the secret).
                Err(e) => Attempt::no_answer(classify_transport(&e.without_url())),
            }
        }
    });
    match tokio::time::timeout(total, attempts).await {
        Ok(result) => Ok(result?),
        Err(_) => Err(SendError::TimedOut(total)),
    }
}

/// The start of what the receiver said (Slack answers `invalid_token`,
/// `channel_not_found`, …), scrubbed, on one line.
fn receiver_message(answer: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(answer);
    let line: String = text
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .take(200)
        .collect();
    (!line.is_empty()).then(|| crate::redact::scrub(&line).into_owned())
}
