//! Sending one request until it succeeds, fails for good, or runs out of attempts.
//!
//! Each attempt takes a pacer permit, sends, gives the answer's rate-limit headers back
//! to the pacer, and lets the classifier decide (kube-rs's client retry, with the
//! pacer in front):
//! - 429: the whole provider pauses until the server's hint ([`Pacer::on_throttled`])
//!   and the request is sent again. A 429 is not a failed attempt: throttling is
//!   bounded by the run's wait cap (`max_wait_seconds`) instead.
//! - 408, 5xx, timeouts, dropped connections: exponential backoff with jitter, up to
//!   `max_attempts` in all; a server's `Retry-After` wins when it is longer.
//! - any other 4xx: fails at once with the vendor's message.
//!
//! The caller decides what one call is (one operation, or one batch request), so
//! the executor can use this per operation or per batch.

use std::future::Future;
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBackoff, ExponentialBuilder};
use tracing::debug;

use super::classify::{Outcome, RateLimitHeaders};
use super::pacer::{Pacer, PacerError};
use crate::config::RateLimitConfig;

/// How one request is retried.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Attempts in all (1 = no retry). 429s do not count.
    pub max_attempts: u32,
    pub min_delay: Duration,
    pub max_delay: Duration,
    pub factor: f32,
    /// Names the vendor in failure messages (`hesh answered 422: …`).
    pub vendor: Option<String>,
    /// Off for a request that must not be carried out twice
    /// ([`crate::providers::Request::send_once`]): a failure after which the vendor
    /// may have applied it is final (`maybe_applied`), not retried. Resends that
    /// cannot have been applied (a 429, a refused connection) still go.
    pub resend_maybe_applied: bool,
}

impl From<&RateLimitConfig> for RetryPolicy {
    fn from(cfg: &RateLimitConfig) -> Self {
        RetryPolicy {
            max_attempts: cfg.max_attempts.max(1),
            min_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(30),
            factor: 2.0,
            vendor: None,
            resend_maybe_applied: true,
        }
    }
}

impl RetryPolicy {
    /// The same policy, naming `vendor` in its failure messages.
    pub fn for_vendor(mut self, vendor: impl Into<String>) -> Self {
        self.vendor = Some(vendor.into());
        self
    }

    /// Delays between attempts: min, ×factor each time, capped at max, each plus a
    /// random part of up to itself (backon's jitter).
    fn backoff(&self) -> ExponentialBackoff {
        ExponentialBuilder::default()
            .with_min_delay(self.min_delay)
            .with_max_delay(self.max_delay)
            .with_factor(self.factor)
            .with_jitter()
            .without_max_times()
            .build()
    }
}

/// One attempt's result, as the caller's closure reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct Attempt<T> {
    pub outcome: Outcome,
    pub headers: RateLimitHeaders,
    /// The parsed answer; needed for [`Outcome::Success`], ignored otherwise.
    pub value: Option<T>,
}

impl<T> Attempt<T> {
    /// An answer: classified from its status, headers and the vendor's message.
    pub fn answered(
        status: u16,
        headers: RateLimitHeaders,
        vendor_message: Option<String>,
        value: T,
    ) -> Self {
        Attempt {
            outcome: super::classify::classify_response(status, &headers, vendor_message),
            headers,
            value: Some(value),
        }
    }

    /// No answer (see [`super::classify::classify_transport`]).
    pub fn no_answer(outcome: Outcome) -> Self {
        Attempt {
            outcome,
            headers: RateLimitHeaders::default(),
            value: None,
        }
    }
}

/// A request that did not succeed; its Display is the operator-facing message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Failure {
    /// E.g. `hesh answered 422: email is invalid`, `gave up after 5 attempts: HTTP 503`.
    pub message: String,
    /// The last HTTP status, when the vendor answered.
    pub status: Option<u16>,
    /// Attempts counted against `max_attempts` (429s are not).
    pub attempts: u32,
    /// Some attempt may have been applied by the vendor although it did not say so
    /// (a 5xx, a timeout or a dropped connection after the request left, an unreadable
    /// 2xx): for a create, the account may exist.
    pub maybe_applied: bool,
    /// The last attempt could not connect at all (see [`Outcome::unreachable`]).
    pub unreachable: bool,
}

/// Sends with `attempt` until success, a failure that will not get better, or the
/// end of the attempts or of the run's wait budget.
pub async fn send_with_retry<T, F, Fut>(
    pacer: &Pacer,
    policy: &RetryPolicy,
    mut attempt: F,
) -> Result<T, Failure>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Attempt<T>>,
{
    let mut backoff = policy.backoff();
    // Consecutive 429s without a useful hint (or with `Retry-After: 0`) back off too,
    // so they cannot spin; the wait cap ends them.
    let mut throttle_backoff = policy.backoff();
    let mut attempts = 0u32;
    let mut last_status = None;
    let mut maybe_applied = false;
    loop {
        let permit = pacer
            .acquire()
            .await
            .map_err(|e| waited_too_long(policy, e, last_status, attempts, maybe_applied))?;
        let Attempt {
            outcome,
            headers,
            value,
        } = attempt().await;
        permit.complete(&headers);
        maybe_applied |= outcome.maybe_applied();
        let unreachable = outcome.unreachable();
        match outcome {
            Outcome::Success => {
                return value.ok_or_else(|| Failure {
                    message: format!("{} sent an answer that could not be read", vendor(policy)),
                    status: None,
                    attempts: attempts + 1,
                    maybe_applied: true,
                    unreachable: false,
                });
            }
            Outcome::DontRetry {
                status, message, ..
            } => {
                let message = match status {
                    Some(code) => format!("{} answered {code}: {message}", vendor(policy)),
                    None => match &policy.vendor {
                        Some(v) => format!("{v} request failed: {message}"),
                        None => format!("request failed: {message}"),
                    },
                };
                return Err(Failure {
                    message,
                    status,
                    attempts: attempts + 1,
                    maybe_applied,
                    unreachable,
                });
            }
            Outcome::Retry {
                status: Some(429),
                reason,
                not_before,
                ..
            } => {
                last_status = Some(429);
                let backoff = throttle_backoff.next().unwrap_or(policy.max_delay);
                let wait = not_before.map_or(backoff, |hint| hint.max(backoff));
                debug!(reason = %reason, wait_ms = wait.as_millis() as u64, "Throttled; pausing the provider.");
                pacer.on_throttled(wait);
            }
            Outcome::Retry {
                status,
                reason,
                not_before,
                ..
            } => {
                attempts += 1;
                last_status = status;
                if maybe_applied && !policy.resend_maybe_applied {
                    return Err(Failure {
                        message: format!(
                            "{}; not sent again in this pass, as it may have been carried out \
                             (the next pass looks for the account first)",
                            gave_up(policy, attempts, &reason)
                        ),
                        status,
                        attempts,
                        maybe_applied,
                        unreachable,
                    });
                }
                if attempts >= policy.max_attempts {
                    return Err(Failure {
                        message: gave_up(policy, attempts, &reason),
                        status,
                        attempts,
                        maybe_applied,
                        unreachable,
                    });
                }
                let backoff = backoff.next().unwrap_or(policy.max_delay);
                let wait = match not_before {
                    // The server's hint wins when it is longer; it counts towards the cap.
                    Some(hint) if hint > backoff => {
                        pacer.count_hint(hint).map_err(|e| {
                            waited_too_long(policy, e, status, attempts, maybe_applied)
                        })?;
                        hint
                    }
                    _ => backoff,
                };
                debug!(attempt = attempts, reason = %reason, wait_ms = wait.as_millis() as u64, "Retrying.");
                tokio::time::sleep(wait).await;
            }
        }
    }
}

fn vendor(policy: &RetryPolicy) -> &str {
    policy.vendor.as_deref().unwrap_or("the vendor")
}

fn gave_up(policy: &RetryPolicy, attempts: u32, reason: &str) -> String {
    let plural = if attempts == 1 { "" } else { "s" };
    match &policy.vendor {
        Some(v) => format!("{v}: gave up after {attempts} attempt{plural}: {reason}"),
        None => format!("gave up after {attempts} attempt{plural}: {reason}"),
    }
}

fn waited_too_long(
    policy: &RetryPolicy,
    err: PacerError,
    status: Option<u16>,
    attempts: u32,
    maybe_applied: bool,
) -> Failure {
    let message = match &policy.vendor {
        Some(v) => format!("{v}: {err}"),
        None => err.to_string(),
    };
    Failure {
        message,
        status,
        attempts,
        maybe_applied,
        unreachable: false,
    }
}

#[cfg(test)]
#[path = "retry_tests.rs"]
mod tests;
