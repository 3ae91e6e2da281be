//! One GET of one page, with auth, a timeout, and the request path every client
//! shares (`net`): every answer goes through the one classifier (`net::classify`) and
//! `send_with_retry`, so 5xx, 408, timeouts and dropped connections back off and are
//! retried, a 429 waits for the server's hint, and any other 4xx fails at once.
//!
//! Secrets travel only in headers (marked sensitive), never in URLs; a server's error
//! message is scrubbed of them before it can reach a log line or an error.

use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, ACCEPT, AUTHORIZATION, LINK};
use secrecy::ExposeSecret;
use serde_json::Value;
use url::Url;

use crate::config::{HttpAuth, HttpSourceConfig, RateLimitConfig};
use crate::net::{
    classify_transport, send_with_retry, Attempt, Failure, Pacer, RateLimitHeaders, RetryPolicy,
};

/// Most time one load may spend waiting out the server's 429s.
const MAX_THROTTLE_WAIT_SECONDS: u64 = 300;

/// A page as it arrived.
#[derive(Debug, Default)]
pub struct Fetched {
    /// The URL after redirects.
    pub url: Option<Url>,
    /// Every `Link` header value.
    pub links: Vec<String>,
    pub body: Vec<u8>,
}

pub struct Fetcher {
    client: reqwest::Client,
    auth: HttpAuth,
    /// Bearer or named-header auth, built once, marked sensitive (never printed).
    auth_headers: HeaderMap,
    pacer: Pacer,
    policy: RetryPolicy,
    clock: fn() -> DateTime<Utc>,
    max_page_bytes: usize,
}

impl Fetcher {
    pub fn new(config: &HttpSourceConfig, clock: fn() -> DateTime<Utc>) -> Result<Self, String> {
        let auth_headers = auth_headers(&config.auth)?;
        let timeout = Duration::from_secs(config.timeout_seconds);
        // The one outbound policy: redirects stay on the origin of source.url (reqwest
        // drops Authorization on a cross-origin redirect, but not a named API-key
        // header), https unless allowed.
        let client = crate::net::client(&crate::net::Endpoint {
            url: &config.url,
            timeout,
        })
        .map_err(|e| e.to_string())?;
        let limits = RateLimitConfig {
            max_concurrency: 1,
            requests_per_second: None,
            max_wait_seconds: MAX_THROTTLE_WAIT_SECONDS,
            max_attempts: config.max_attempts,
            timeout_seconds: config.timeout_seconds,
            ..RateLimitConfig::default()
        };
        Ok(Fetcher {
            client,
            auth: config.auth.clone(),
            auth_headers,
            pacer: Pacer::new(&limits),
            policy: RetryPolicy::from(&limits).for_vendor("the server"),
            clock,
            max_page_bytes: config.max_page_bytes,
        })
    }

    /// GETs `url` until it succeeds or fails for good.
    pub async fn get(&self, url: &Url) -> Result<Fetched, Failure> {
        send_with_retry(&self.pacer, &self.policy, || async {
            match self.attempt(url).await {
                Ok((status, limits, fetched)) => {
                    let message = (!(200..300).contains(&status))
                        .then(|| self.error_message(&fetched.body))
                        .flatten();
                    Attempt::answered(status, limits, message, fetched)
                }
                Err(FetchError::Http(e)) => Attempt::no_answer(classify_transport(&e)),
                // Asking again would bring the same flood.
                Err(FetchError::TooLarge(status)) => {
                    Attempt::no_answer(crate::net::Outcome::DontRetry {
                        // A read: nothing to apply.
                        maybe_applied: false,
                        status: Some(status),
                        message: crate::net::too_large(
                            status,
                            &format!(
                                "source.max_page_bytes ({})",
                                crate::net::show_bytes(self.max_page_bytes)
                            ),
                        ),
                    })
                }
            }
        })
        .await
        .map_err(|mut failure| {
            failure.message = crate::redact::scrub(&failure.message).into_owned();
            failure
        })
    }

    async fn attempt(&self, url: &Url) -> Result<(u16, RateLimitHeaders, Fetched), FetchError> {
        let mut request = self
            .client
            .get(url.clone())
            .header(ACCEPT, HeaderValue::from_static("application/json"));
        request = match &self.auth {
            // reqwest marks the Authorization header it builds as sensitive.
            HttpAuth::Basic { username, password } => {
                request.basic_auth(username, Some(password.expose_secret()))
            }
            _ => request.headers(self.auth_headers.clone()),
        };
        let mut response = request.send().await?;
        let status = response.status().as_u16();
        let limits = RateLimitHeaders::parse(response.headers(), (self.clock)());
        let links = response
            .headers()
            .get_all(LINK)
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .collect();
        let final_url = response.url().clone();
        let body = crate::net::read_capped(&mut response, self.max_page_bytes)
            .await?
            .ok_or(FetchError::TooLarge(status))?;
        Ok((
            status,
            limits,
            Fetched {
                url: Some(final_url),
                links,
                body,
            },
        ))
    }

    /// What a server's error body says: the usual JSON message keys, else the text.
    fn error_message(&self, body: &[u8]) -> Option<String> {
        // Scrubbed before it is parsed or cut: an echoed credential is gone at once.
        let text = crate::redact::scrub(&String::from_utf8_lossy(body)).into_owned();
        let message = match serde_json::from_str::<Value>(&text) {
            Ok(json) => [
                "/message",
                "/error_description",
                "/detail",
                "/error/message",
                "/error",
                "/title",
            ]
            .iter()
            .find_map(|p| json.pointer(p).and_then(Value::as_str).map(str::to_string))
            .unwrap_or_else(|| text.chars().take(300).collect()),
            Err(_) => text.chars().take(300).collect(),
        };
        (!message.trim().is_empty()).then_some(message)
    }
}

/// Why an attempt has no answer.
enum FetchError {
    Http(reqwest::Error),
    /// The body passed `source.max_page_bytes`; the status it came with.
    TooLarge(u16),
}

impl From<reqwest::Error> for FetchError {
    fn from(e: reqwest::Error) -> Self {
        FetchError::Http(e)
    }
}

/// The headers of bearer and named-header auth (basic is added per request).
fn auth_headers(auth: &HttpAuth) -> Result<HeaderMap, String> {
    let mut headers = HeaderMap::new();
    let (name, value) = match auth {
        HttpAuth::None | HttpAuth::Basic { .. } => return Ok(headers),
        HttpAuth::Bearer(token) => (AUTHORIZATION, format!("Bearer {}", token.expose_secret())),
        HttpAuth::Header { name, value } => (
            HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| format!("source.auth.header.name {name:?} is not a header name"))?,
            value.expose_secret().to_string(),
        ),
    };
    // Say what is wrong, never what the value is.
    let mut value = HeaderValue::from_str(&value)
        .map_err(|_| "the auth secret has characters an HTTP header cannot carry".to_string())?;
    value.set_sensitive(true);
    headers.insert(name, value);
    Ok(headers)
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::SecretString;

    #[test]
    fn auth_headers_are_sensitive_and_never_print() {
        let token = SecretString::from("t0ken".to_string());
        let headers = auth_headers(&HttpAuth::Bearer(token)).unwrap_or_default();
        assert_eq!(headers.len(), 1);
        assert!(headers[AUTHORIZATION].is_sensitive());
        assert!(!format!("{headers:?}").contains("t0ken"));
        let key = HttpAuth::Header {
            name: "X-Api-Key".into(),
            value: SecretString::from("k3y".to_string()),
        };
        let headers = auth_headers(&key).unwrap_or_default();
        assert!(headers["x-api-key"].is_sensitive());
        let bad = HttpAuth::Header {
            name: "X-Api-Key".into(),
            value: SecretString::from("line\nbreak".to_string()),
        };
        let err = auth_headers(&bad).err().unwrap_or_default();
        assert!(
            err.contains("cannot carry") && !err.contains("break"),
            "{err}"
        );
    }
}
