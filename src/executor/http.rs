//! The HTTP transport an adapter sends through: one reqwest client per provider, its
//! base URL and auth headers (marked sensitive, so they never print), the vendor's
//! error-body parser, and — through `send_with_retry` — the pacer and retry policy.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use secrecy::ExposeSecret;
use serde_json::Value;
use url::Url;

use super::apply::Clock;
use crate::config::ProviderConfig;
use crate::net::{
    classify_transport, send_with_retry, Attempt, Outcome, Pacer, RateLimitHeaders, RetryPolicy,
};
use crate::providers::call::{BoxFuture, CallError, Response, Transport, TransportStats};
use crate::providers::{Provider, Request};
use crate::store::RateWindow;

pub struct HttpTransport<'p> {
    client: reqwest::Client,
    base: Url,
    headers: HeaderMap,
    provider: &'p dyn Provider,
    pacer: Pacer,
    policy: RetryPolicy,
    clock: &'p Clock,
    attempts: AtomicU64,
    requests: AtomicU64,
    throttled: AtomicU64,
}

#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("provider {provider}: header {name} cannot be sent: {message}")]
    Header {
        provider: String,
        name: &'static str,
        message: String,
    },
    #[error("provider {provider}: cannot build the HTTP client: {source}")]
    Client {
        provider: String,
        #[source]
        source: crate::net::ClientError,
    },
}

impl<'p> HttpTransport<'p> {
    pub fn new(
        config: &ProviderConfig,
        provider: &'p dyn Provider,
        clock: &'p Clock,
    ) -> Result<Self, TransportError> {
        HttpTransport::with_saved_window(config, provider, clock, None)
    }

    /// [`HttpTransport::new`], its pacer starting from the window an earlier process
    /// saved (see `executor/windows.rs`): ignored unless its reset is still to come.
    pub fn with_saved_window(
        config: &ProviderConfig,
        provider: &'p dyn Provider,
        clock: &'p Clock,
        saved: Option<RateWindow>,
    ) -> Result<Self, TransportError> {
        let mut headers = HeaderMap::new();
        for (name, value) in provider.auth_headers() {
            let (header, v) =
                auth_header(name, &value).map_err(|message| TransportError::Header {
                    provider: config.name.clone(),
                    name,
                    message,
                })?;
            headers.insert(header, v);
        }
        // The one outbound policy: same-origin redirects, https unless allowed.
        let client = crate::net::client(&crate::net::Endpoint {
            url: &config.base_url,
            timeout: Duration::from_secs(config.rate_limit.timeout_seconds),
        })
        .map_err(|source| TransportError::Client {
            provider: config.name.clone(),
            source,
        })?;
        let pacer = Pacer::new(&config.rate_limit);
        if let Some(view) = saved.and_then(|w| super::windows::usable(&w, clock())) {
            pacer.seed(view);
        }
        Ok(HttpTransport {
            client,
            base: config.base_url.url().clone(),
            headers,
            provider,
            pacer,
            policy: RetryPolicy::from(&config.rate_limit)
                .for_vendor(provider.provider_type().as_str()),
            clock,
            attempts: AtomicU64::new(0),
            requests: AtomicU64::new(0),
            throttled: AtomicU64::new(0),
        })
    }

    /// The vendor's window as this transport knows it now, in absolute time, for the
    /// state file; `None` when no current window is known.
    pub fn rate_window(&self) -> Option<RateWindow> {
        let view = self.pacer.window()?;
        let now = (self.clock)();
        let reset_in = chrono::Duration::from_std(view.reset_in).ok()?;
        Some(RateWindow {
            limit: view.limit,
            remaining: view.remaining,
            reset_at: now.checked_add_signed(reset_in)?,
            observed_at: now,
        })
    }

    /// Returns once the window may have changed (see [`Pacer::changed`]).
    pub async fn window_changed(&self) {
        self.pacer.changed().await;
    }

    fn url(&self, path: &str) -> String {
        format!("{}{}", self.base.as_str().trim_end_matches('/'), path)
    }

    /// One attempt: the answer, or why there is none.
    async fn attempt(
        &self,
        request: &Request,
    ) -> Result<(reqwest::StatusCode, HeaderMap, Value), AttemptError> {
        let method =
            reqwest::Method::from_bytes(request.method.as_bytes()).unwrap_or(reqwest::Method::GET);
        let mut builder = self
            .client
            .request(method, self.url(&request.path))
            .headers(self.headers.clone());
        // The request's own headers (never secrets) come before the body, so that a
        // content type such as SCIM's `application/scim+json` wins over `json()`'s.
        for (name, value) in &request.headers {
            builder = builder.header(*name, value.as_str());
        }
        if let Some(body) = &request.body {
            builder = builder.json(body);
        }
        let mut response = builder.send().await?;
        let status = response.status();
        let headers = response.headers().clone();
        // Read with a cap: a vendor (or something in front of it) answering without
        // end must not take the process's memory with it.
        let body = crate::net::read_capped(&mut response, MAX_BODY_BYTES)
            .await?
            .ok_or(AttemptError::TooLarge(status.as_u16()))?;
        Ok((
            status,
            headers,
            // Scrubbed as it comes in: a secret the vendor echoed is gone before any
            // message is cut, escaped or formatted from it.
            crate::net::lenient_json(&crate::redact::scrub(&String::from_utf8_lossy(&body))),
        ))
    }
}

/// Largest answer read, in bytes. vyte lists every user in one answer (about 300
/// bytes each), so this leaves room for some 200,000 users.
pub const MAX_BODY_BYTES: usize = 64 * 1024 * 1024;

/// Why an attempt has no answer to classify.
#[derive(Debug)]
enum AttemptError {
    Http(reqwest::Error),
    /// The body ran past [`MAX_BODY_BYTES`]; the status it came with.
    TooLarge(u16),
}

impl From<reqwest::Error> for AttemptError {
    fn from(e: reqwest::Error) -> Self {
        AttemptError::Http(e)
    }
}

impl AttemptError {
    fn outcome(&self) -> Outcome {
        match self {
            AttemptError::Http(e) => classify_transport(e),
            // Sending it again would bring the same flood: fail the operation (it is
            // retried next pass, where adoption finds anything the vendor did do).
            // A 2xx too large to read may have been carried out.
            AttemptError::TooLarge(status) => Outcome::DontRetry {
                status: Some(*status),
                message: crate::net::too_large(*status, &crate::net::show_bytes(MAX_BODY_BYTES)),
                maybe_applied: (200..300).contains(status),
            },
        }
    }
}

/// One auth header from a vendor's name for it, in any case (`X-Api-Key` is sent as
/// `x-api-key`): a name or value a header cannot carry is an error, never a panic.
fn auth_header(
    name: &str,
    value: &secrecy::SecretString,
) -> Result<(HeaderName, HeaderValue), String> {
    let header = HeaderName::from_bytes(name.as_bytes())
        .map_err(|_| "the name is not a valid header name".to_string())?;
    let mut v = HeaderValue::from_str(value.expose_secret())
        // The value is a secret: say what is wrong, never what it is.
        .map_err(|_| "the value has characters a header cannot carry".to_string())?;
    v.set_sensitive(true);
    Ok((header, v))
}

impl Transport for HttpTransport<'_> {
    fn send<'a>(&'a self, request: &'a Request) -> BoxFuture<'a, Result<Response, CallError>> {
        Box::pin(async move {
            self.requests.fetch_add(1, Ordering::Relaxed);
            // Every attempt goes through the pacer and the one classifier; 429s wait
            // for the window, 5xx / timeouts / drops back off, other 4xx fail at once.
            let once;
            let policy = if request.send_once {
                once = RetryPolicy {
                    resend_maybe_applied: false,
                    ..self.policy.clone()
                };
                &once
            } else {
                &self.policy
            };
            let result = send_with_retry(&self.pacer, policy, || async {
                self.attempts.fetch_add(1, Ordering::Relaxed);
                match self.attempt(request).await {
                    Ok((status, headers, body)) => {
                        let limits = RateLimitHeaders::parse(&headers, (self.clock)());
                        let message = (!status.is_success())
                            .then(|| self.provider.error_message(&body))
                            .flatten();
                        let attempt = Attempt::answered(
                            status.as_u16(),
                            limits,
                            message,
                            Response {
                                status: status.as_u16(),
                                body,
                            },
                        );
                        if attempt.outcome.is_throttled() {
                            self.throttled.fetch_add(1, Ordering::Relaxed);
                        }
                        attempt
                    }
                    Err(e) => Attempt::no_answer(e.outcome()),
                }
            })
            .await;
            crate::failpoint::reach("answered");
            result.map_err(CallError::from)
        })
    }

    fn stats(&self) -> TransportStats {
        let requests = self.requests.load(Ordering::Relaxed);
        let attempts = self.attempts.load(Ordering::Relaxed);
        let throttled = self.throttled.load(Ordering::Relaxed);
        TransportStats {
            requests,
            // Resends after a 429 are counted as rate-limited, not as retries.
            retries: attempts.saturating_sub(requests).saturating_sub(throttled),
            throttled,
            waited: self.pacer.waited(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auth_header_names_in_any_case_are_sent_lower_case() {
        let secret = secrecy::SecretString::from("k3y".to_string());
        for name in ["X-Api-Key", "Authorization", "x-tenant-id"] {
            let (header, value) = auth_header(name, &secret).unwrap();
            assert_eq!(header.as_str(), name.to_ascii_lowercase());
            assert!(value.is_sensitive());
        }
    }

    #[test]
    fn a_bad_auth_header_is_an_error_that_never_shows_the_secret() {
        let secret = secrecy::SecretString::from("k3y".to_string());
        let err = auth_header("X Api Key", &secret).unwrap_err();
        assert!(err.contains("not a valid header name"), "{err}");
        let bad = secrecy::SecretString::from("k3y\nInjected: 1".to_string());
        let err = auth_header("X-Api-Key", &bad).unwrap_err();
        assert!(!err.contains("k3y"), "{err}");
    }
}
