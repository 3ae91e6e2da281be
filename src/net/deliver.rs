//! Delivering one document to one receiver (a webhook, a Pushgateway) through the
//! one outbound HTTP policy ([`super::client`]: same-origin redirects only, https
//! unless loopback or allowed) and the one retry decision ([`super::send_with_retry`]:
//! 5xx, 408, timeouts and dropped connections back off and go again, 429 waits for
//! the hint, other 4xx fail at once) — all of it within one time budget, so that a
//! slow receiver never holds up what sent it.

use std::time::Duration;

use reqwest::header::CONTENT_TYPE;

use super::{classify_transport, send_with_retry, Attempt, EndpointUrl, Pacer, RateLimitHeaders};
use crate::config::RateLimitConfig;
use crate::executor::apply::Clock;

/// Attempts per delivery (429s are not counted; the budget bounds them).
pub const MAX_ATTEMPTS: u32 = 4;

/// Most of an answer read: a receiver says "ok" or why not; only its start is kept.
const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// Why a document was not delivered. Messages never hold the URL (it may be a secret).
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    #[error("cannot build the HTTP client: {0}")]
    Client(#[from] super::ClientError),
    #[error("{0}")]
    Failed(#[from] super::Failure),
    #[error("not delivered within {} s", .0.as_secs())]
    TimedOut(Duration),
}

/// One document to send.
pub struct Delivery<'a> {
    pub url: &'a EndpointUrl,
    pub method: reqwest::Method,
    pub content_type: &'static str,
    pub body: &'a str,
    /// The whole budget: every attempt and every wait between them.
    pub total: Duration,
    /// Who it is, in error messages ("the webhook").
    pub receiver: &'static str,
}

/// Sends `d` until it is taken (2xx), refused for good, or its budget is spent.
pub async fn deliver(d: &Delivery<'_>, clock: &Clock) -> Result<(), DeliveryError> {
    let total = d.total;
    // Each attempt gets half the budget (at least a second), so that one that hangs
    // leaves time for another.
    let per_attempt = (total / 2).max(Duration::from_secs(1)).min(total);
    let client = super::client(&super::Endpoint {
        url: d.url,
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
    let policy = super::RetryPolicy::from(&limits).for_vendor(d.receiver);
    let url = d.url.url().clone();
    let attempts = send_with_retry(&pacer, &policy, || {
        let request = client
            .request(d.method.clone(), url.clone())
            .header(CONTENT_TYPE, d.content_type)
            .body(d.body.to_string());
        async move {
            match request.send().await {
                Ok(mut response) => {
                    let status = response.status().as_u16();
                    let headers = RateLimitHeaders::parse(response.headers(), clock());
                    let answer = super::read_capped(&mut response, MAX_ANSWER_BYTES)
                        .await
                        .ok()
                        .flatten()
                        .unwrap_or_default();
                    Attempt::answered(status, headers, receiver_message(&answer), ())
                }
                // Without the URL: reqwest's Display would carry it (maybe a secret).
                Err(e) => Attempt::no_answer(classify_transport(&e.without_url())),
            }
        }
    });
    match tokio::time::timeout(total, attempts).await {
        Ok(result) => Ok(result?),
        Err(_) => Err(DeliveryError::TimedOut(total)),
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
