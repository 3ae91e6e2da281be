//! The one retry decision: every vendor answer (or transport error) becomes
//! [`Outcome::Success`], [`Outcome::Retry`] (with the reason and, when the server said,
//! the earliest time to try again) or [`Outcome::DontRetry`] (with the vendor's message).
//!
//! Also reads the rate-limit headers every answer may carry ([`RateLimitHeaders`]), for
//! the classifier and for the pacer. Header values that make no sense are ignored
//! (`None`), never an error: a vendor's odd header must not fail a sync.

use std::error::Error as _;
use std::time::Duration;

use chrono::{DateTime, NaiveDateTime, Utc};
use reqwest::header::{HeaderMap, RETRY_AFTER};

/// What to do with one answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// 2xx: done.
    Success,
    /// Worth sending again: 408, 429, 5xx, timeouts and dropped connections.
    Retry {
        /// The HTTP status when the vendor answered (`Some(429)` means throttled),
        /// `None` for transport errors.
        status: Option<u16>,
        /// Why, for logs and for the message when retries run out (e.g. `HTTP 503`).
        reason: String,
        /// The server's hint (`Retry-After`, or `X-RateLimit-Reset` on a 429).
        not_before: Option<Duration>,
        /// The vendor may have carried the request out all the same (see
        /// [`Outcome::maybe_applied`]).
        maybe_applied: bool,
    },
    /// Sending it again would fail the same way: fail this operation with `message`.
    DontRetry {
        status: Option<u16>,
        /// The vendor's message (or `HTTP <code>`), as the operator should read it.
        message: String,
        maybe_applied: bool,
    },
}

impl Outcome {
    /// Whether the vendor may have carried out the request all the same: decided here,
    /// with the rest of the classification, and carried as data. A 5xx (hesh applies
    /// some requests and still answers 500), a 2xx whose body was refused, or no
    /// answer after the request may have left: yes. A 4xx, a 429, a 408 or a refused
    /// connection say it was not.
    /// No connection could be made (refused, DNS, TLS): the endpoint as a whole is
    /// unreachable, not this one request. The one transport outcome that is not
    /// `maybe_applied` (see [`classify_transport`]).
    pub fn unreachable(&self) -> bool {
        matches!(
            self,
            Outcome::Retry {
                status: None,
                maybe_applied: false,
                ..
            }
        )
    }

    pub fn maybe_applied(&self) -> bool {
        match self {
            Outcome::Success => false,
            Outcome::Retry { maybe_applied, .. } | Outcome::DontRetry { maybe_applied, .. } => {
                *maybe_applied
            }
        }
    }

    /// A 429: the vendor says we are too fast.
    pub fn is_throttled(&self) -> bool {
        matches!(
            self,
            Outcome::Retry {
                status: Some(429),
                ..
            }
        )
    }
}

/// The rate-limit headers of one answer. `reset_after` and `retry_after` are relative
/// to when the answer was read, so the pacer can turn them into instants on its clock.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RateLimitHeaders {
    /// `X-RateLimit-Limit`: requests allowed per window.
    pub limit: Option<u64>,
    /// `X-RateLimit-Remaining`: requests left in the current window.
    pub remaining: Option<u64>,
    /// `X-RateLimit-Reset`: time until the window resets.
    pub reset_after: Option<Duration>,
    /// `Retry-After`: time to wait before sending again.
    pub retry_after: Option<Duration>,
}

/// Above this, `X-RateLimit-Reset` is a Unix timestamp rather than a number of seconds
/// (hesh documents seconds; other vendors send epoch seconds, which are ~1.7e9 now).
const EPOCH_THRESHOLD: f64 = 1e9;

/// Longest vendor message kept, in characters: an HTML error page is not a message.
const MAX_MESSAGE_CHARS: usize = 300;

impl RateLimitHeaders {
    /// Reads the headers of one answer received at `now`.
    pub fn parse(headers: &HeaderMap, now: DateTime<Utc>) -> Self {
        let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        RateLimitHeaders {
            limit: text("x-ratelimit-limit").and_then(parse_count),
            remaining: text("x-ratelimit-remaining").and_then(parse_count),
            reset_after: text("x-ratelimit-reset").and_then(|v| parse_reset(v, now)),
            retry_after: headers
                .get(RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| parse_retry_after(v, now)),
        }
    }

    /// True when the answer carried none of the headers.
    pub fn is_empty(&self) -> bool {
        *self == RateLimitHeaders::default()
    }
}

/// A count such as `100`; also the first number of `100, 100;w=60` (IETF draft form).
fn parse_count(value: &str) -> Option<u64> {
    let first = value.split([',', ';']).next()?.trim();
    first.parse().ok()
}

fn parse_seconds(value: &str) -> Option<f64> {
    let secs: f64 = value.trim().parse().ok()?;
    (secs.is_finite() && secs >= 0.0).then_some(secs)
}

fn parse_reset(value: &str, now: DateTime<Utc>) -> Option<Duration> {
    let secs = parse_seconds(value)?;
    if secs > EPOCH_THRESHOLD {
        let now_secs = now.timestamp() as f64 + f64::from(now.timestamp_subsec_millis()) / 1e3;
        return Duration::try_from_secs_f64((secs - now_secs).max(0.0)).ok();
    }
    Duration::try_from_secs_f64(secs).ok()
}

/// `Retry-After`: delta-seconds, or an HTTP-date (a date in the past means now).
fn parse_retry_after(value: &str, now: DateTime<Utc>) -> Option<Duration> {
    let value = value.trim();
    if let Some(secs) = parse_seconds(value) {
        return Duration::try_from_secs_f64(secs).ok();
    }
    let at = parse_http_date(value)?;
    Some((at - now).to_std().unwrap_or_default())
}

/// IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`) and the two obsolete forms RFC 9110
/// still asks recipients to accept.
fn parse_http_date(value: &str) -> Option<DateTime<Utc>> {
    if let Ok(dt) = DateTime::parse_from_rfc2822(value) {
        return Some(dt.with_timezone(&Utc));
    }
    ["%A, %d-%b-%y %H:%M:%S GMT", "%a %b %e %H:%M:%S %Y"]
        .iter()
        .find_map(|fmt| NaiveDateTime::parse_from_str(value, fmt).ok())
        .map(|naive| naive.and_utc())
}

/// Classifies an answer. `vendor_message` is what the vendor's error body says (the
/// adapter's parser extracts it); it is kept for the operator, shortened to one line.
pub fn classify_response(
    status: u16,
    headers: &RateLimitHeaders,
    vendor_message: Option<String>,
) -> Outcome {
    let message = vendor_message
        .map(|m| one_line(&m))
        .filter(|m| !m.is_empty());
    let reason = match &message {
        Some(m) => format!("HTTP {status}: {m}"),
        None => format!("HTTP {status}"),
    };
    match status {
        200..=299 => Outcome::Success,
        429 => Outcome::Retry {
            status: Some(status),
            reason,
            not_before: headers.retry_after.or(headers.reset_after),
            maybe_applied: false,
        },
        // Not implemented: the server will never do this, and did not do it now.
        501 => Outcome::DontRetry {
            status: Some(status),
            message: message.unwrap_or_else(|| format!("HTTP {status}")),
            maybe_applied: false,
        },
        408 | 500..=599 => Outcome::Retry {
            status: Some(status),
            reason,
            not_before: headers.retry_after,
            maybe_applied: status >= 500,
        },
        _ => Outcome::DontRetry {
            status: Some(status),
            message: message.unwrap_or_else(|| format!("HTTP {status}")),
            maybe_applied: false,
        },
    }
}

/// Classifies a request that got no answer. The message names the kind of failure and
/// its causes, never the URL (it could carry a token in a query string).
pub fn classify_transport(err: &reqwest::Error) -> Outcome {
    // `left`: the request may have reached the vendor.
    let retry = |what: &str, left: bool| Outcome::Retry {
        status: None,
        reason: describe(what, err),
        not_before: None,
        maybe_applied: left,
    };
    let dont = |what: &str| Outcome::DontRetry {
        status: None,
        message: describe(what, err),
        maybe_applied: false,
    };
    if err.is_builder() {
        dont("the request could not be built")
    } else if err.is_redirect() {
        dont("too many or invalid redirects")
    } else if err.is_decode() {
        dont("the answer could not be decoded")
    } else if let Some(status) = err.status() {
        classify_response(status.as_u16(), &RateLimitHeaders::default(), None)
    } else if err.is_timeout() {
        retry("timed out", true)
    } else if err.is_connect() {
        // No connection was made: the request never left.
        retry("could not connect", false)
    } else if err.is_body() {
        retry(
            "the connection dropped while the body was sent or read",
            true,
        )
    } else {
        // Anything else (a reset connection, a closed stream) is most likely transient.
        retry("the request failed", true)
    }
}

/// `what: cause: cause…` from the error's source chain (reqwest's own Display would
/// include the URL).
fn describe(what: &str, err: &reqwest::Error) -> String {
    let mut out = what.to_string();
    let mut cause = err.source();
    while let Some(c) = cause {
        let text = one_line(&c.to_string());
        if !text.is_empty() && !out.ends_with(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        cause = c.source();
    }
    out
}

/// Whitespace collapsed to single spaces, at most [`MAX_MESSAGE_CHARS`] characters.
fn one_line(text: &str) -> String {
    let joined = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if joined.chars().count() <= MAX_MESSAGE_CHARS {
        return joined;
    }
    let mut cut: String = joined.chars().take(MAX_MESSAGE_CHARS).collect();
    cut.push('…');
    cut
}

#[cfg(test)]
#[path = "classify_tests.rs"]
mod tests;
