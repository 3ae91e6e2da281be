//! The HTTP transport an adapter sends through: one reqwest client per provider, its
//! base URL and auth headers (marked sensitive, so they never print), the vendor's
//! error-body parser, and — through `send_with_retry` — the pacer and retry policy.

use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use secrecy::ExposeSecret;
use serde_json::Value;
use url::Url;

use crate::config::ProviderConfig;
use crate::providers::call::{BoxFuture, CallError, Response, Transport};
use crate::providers::{Provider, Request};

pub struct HttpTransport<'p> {
    client: reqwest::Client,
    base: Url,
    headers: HeaderMap,
    provider: &'p dyn Provider,
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
        source: reqwest::Error,
    },
}

impl<'p> HttpTransport<'p> {
    pub fn new(
        config: &ProviderConfig,
        provider: &'p dyn Provider,
    ) -> Result<Self, TransportError> {
        let mut headers = HeaderMap::new();
        for (name, value) in provider.auth_headers() {
            let header_err = |message: String| TransportError::Header {
                provider: config.name.clone(),
                name,
                message,
            };
            let mut v = HeaderValue::from_str(value.expose_secret())
                // The value is a secret: say what is wrong, never what it is.
                .map_err(|_| header_err("the value has characters a header cannot carry".into()))?;
            v.set_sensitive(true);
            headers.insert(HeaderName::from_static(name_lower(name)), v);
        }
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(config.rate_limit.timeout_seconds))
            .connect_timeout(Duration::from_secs(
                config.rate_limit.timeout_seconds.min(10),
            ))
            .user_agent(concat!("rosterd/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|source| TransportError::Client {
                provider: config.name.clone(),
                source,
            })?;
        Ok(HttpTransport {
            client,
            base: config.base_url.clone(),
            headers,
            provider,
        })
    }

    fn url(&self, path: &str) -> String {
        format!("{}{}", self.base.as_str().trim_end_matches('/'), path)
    }

    /// One attempt: the answer, or the transport error.
    async fn attempt(
        &self,
        request: &Request,
    ) -> Result<(reqwest::StatusCode, HeaderMap, Value), reqwest::Error> {
        let method =
            reqwest::Method::from_bytes(request.method.as_bytes()).unwrap_or(reqwest::Method::GET);
        let mut builder = self
            .client
            .request(method, self.url(&request.path))
            .headers(self.headers.clone());
        if let Some(body) = &request.body {
            builder = builder.json(body);
        }
        let response = builder.send().await?;
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await?;
        Ok((status, headers, lenient_json(&text)))
    }
}

/// A body as JSON when it is JSON, as a JSON string when it is not (an HTML error
/// page), and null when empty: a vendor's odd answer must not fail the parse.
pub fn lenient_json(text: &str) -> Value {
    if text.trim().is_empty() {
        return Value::Null;
    }
    serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.chars().take(500).collect()))
}

/// HeaderName::from_static needs lower case; our names are static and ASCII.
fn name_lower(name: &'static str) -> &'static str {
    match name {
        "Authorization" => "authorization",
        other => other,
    }
}

impl Transport for HttpTransport<'_> {
    fn send<'a>(&'a self, request: &'a Request) -> BoxFuture<'a, Result<Response, CallError>> {
        Box::pin(async move {
            match self.attempt(request).await {
                Ok((status, _headers, body)) if status.is_success() => Ok(Response {
                    status: status.as_u16(),
                    body,
                }),
                Ok((status, _headers, body)) => {
                    let message = self
                        .provider
                        .error_message(&body)
                        .unwrap_or_else(|| format!("HTTP {}", status.as_u16()));
                    Err(CallError::new(
                        Some(status.as_u16()),
                        format!(
                            "{} answered {}: {message}",
                            self.provider.provider_type(),
                            status.as_u16()
                        ),
                    ))
                }
                Err(e) => Err(CallError::new(
                    None,
                    format!(
                        "{} request failed: {}",
                        self.provider.provider_type(),
                        e.without_url()
                    ),
                )),
            }
        })
    }
}
