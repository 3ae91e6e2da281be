//! What an adapter needs to carry out operations: a [`Transport`] that sends one
//! request (the executor's, with pacing and retries), and the result of each
//! operation as the vendor confirmed it.

use std::future::Future;
use std::pin::Pin;

use serde_json::Value;

use super::Request;

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A vendor's answer: status and body (parsed leniently: a body that is not JSON is
/// kept as a JSON string, an empty one as null).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub body: Value,
}

impl Response {
    /// The string field `key` of the body, if any.
    pub fn str_field(&self, key: &str) -> Option<&str> {
        self.body.get(key).and_then(Value::as_str)
    }
}

/// Why a request (or an operation) failed, as the operator should read it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct CallError {
    /// The vendor's HTTP status, when it answered.
    pub status: Option<u16>,
    pub message: String,
    /// The vendor may have carried the request out all the same (see
    /// `net::retry::Failure::maybe_applied`): a failed create may have made the
    /// account.
    pub maybe_applied: bool,
    /// The failure is the provider's as a whole, not this operation's: see
    /// [`ProviderFault`].
    pub fault: Option<ProviderFault>,
}

/// A failure that says nothing about the operation and everything about the
/// provider: every other operation would fail the same way, so the provider stops for
/// the pass (`rate_limit.fail_fast_after`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProviderFault {
    /// No connection could be made (refused, DNS, TLS), after the request's retries.
    Unreachable,
    /// 401 or 403 to an authenticated call: the credentials are wrong or revoked.
    CredentialsRejected(u16),
}

impl CallError {
    pub fn new(status: Option<u16>, message: impl Into<String>) -> Self {
        CallError {
            status,
            message: message.into(),
            maybe_applied: false,
            fault: None,
        }
    }

    /// This error, noting that the vendor may have applied the request.
    pub fn maybe_applied(mut self) -> Self {
        self.maybe_applied = true;
        self
    }
}

/// Sends one request below the provider's base URL, with its auth headers. 2xx is
/// `Ok`; any other answer that will not be retried is `Err` with the vendor's status
/// and message.
pub trait Transport: Send + Sync {
    fn send<'a>(&'a self, request: &'a Request) -> BoxFuture<'a, Result<Response, CallError>>;

    /// What it took so far (for the run summary and the metrics).
    fn stats(&self) -> TransportStats {
        TransportStats::default()
    }
}

/// Requests sent through a transport, and what the vendor's limits cost.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TransportStats {
    /// Calls of `send` (one per request rosterd meant to make).
    pub requests: u64,
    /// Resends after a 5xx, a timeout or a dropped connection.
    pub retries: u64,
    /// Answers 429.
    pub throttled: u64,
    /// Time spent waiting for rate-limit windows.
    pub waited: std::time::Duration,
}

/// What the vendor confirmed for one operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    /// Done. `vendor_id` is the vendor's id for the account when it told us one.
    /// `record` replaces the planned record when what was confirmed differs (e.g. an
    /// adopted account updated without its phone); `None` means as planned.
    Done {
        vendor_id: Option<String>,
        record: Option<super::Record>,
        /// The account existed already and was taken over (a create that adopted),
        /// as the audit trail says it.
        adopted: bool,
    },
    /// The vendor has no such account (a leaver's disable sent by key, blind, where
    /// the vendor cannot look accounts up): nothing was changed, nothing is owed.
    Absent,
    /// The vendor did something that needs a person (e.g. created but not in the org).
    Manual {
        vendor_id: Option<String>,
        reason: String,
    },
}

impl Applied {
    pub fn done(vendor_id: Option<String>) -> Self {
        Applied::Done {
            vendor_id,
            record: None,
            adopted: false,
        }
    }

    /// This result, saying the account existed already and was taken over.
    pub fn as_adopted(self) -> Self {
        match self {
            Applied::Done {
                vendor_id, record, ..
            } => Applied::Done {
                vendor_id,
                record,
                adopted: true,
            },
            other => other,
        }
    }

    /// The vendor's id for the account, when it told us one.
    pub fn vendor_id(&self) -> Option<&str> {
        match self {
            Applied::Done { vendor_id, .. } | Applied::Manual { vendor_id, .. } => {
                vendor_id.as_deref()
            }
            Applied::Absent => None,
        }
    }
}

pub type OpResult = Result<Applied, CallError>;

/// The transport every adapter reads its answers through: a 2xx whose body is not
/// JSON (the lenient parse keeps it as a JSON string: an HTML page, a truncated
/// document) confirms nothing, so it becomes a failure naming the request. Without
/// it a `base_url` pointing at a web app that answers `200 index.html` to every path
/// would have every create, disable and lookup "succeed" while nothing happened.
pub struct JsonAnswers<'a>(pub &'a dyn Transport);

/// Characters of a non-JSON body quoted in the error.
const SNIPPET_CHARS: usize = 100;

impl Transport for JsonAnswers<'_> {
    fn send<'a>(&'a self, request: &'a Request) -> BoxFuture<'a, Result<Response, CallError>> {
        Box::pin(async move {
            let resp = self.0.send(request).await?;
            match &resp.body {
                Value::String(text) => Err(not_json(request, resp.status, text)),
                _ => Ok(resp),
            }
        })
    }

    fn stats(&self) -> TransportStats {
        self.0.stats()
    }
}

fn not_json(request: &Request, status: u16, text: &str) -> CallError {
    let flat: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut snippet: String = flat.chars().take(SNIPPET_CHARS).collect();
    if flat.chars().count() > SNIPPET_CHARS {
        snippet.push('…');
    }
    let path = request.path.split('?').next().unwrap_or_default();
    CallError::new(
        Some(status),
        format!(
            "the answer to {} {path} (HTTP {status}) is not JSON, so it confirms nothing: «{snippet}» (is base_url the vendor's API?)",
            request.method
        ),
    )
    // A 2xx all the same: whatever answered may have carried the request out.
    .maybe_applied()
}

/// A request that failed for good (its retries done) as the adapter sees it.
impl From<crate::net::Failure> for CallError {
    fn from(f: crate::net::Failure) -> Self {
        let mut e = CallError::new(f.status, f.message);
        e.maybe_applied = f.maybe_applied;
        e.fault = match f.status {
            Some(status @ (401 | 403)) => Some(ProviderFault::CredentialsRejected(status)),
            _ if f.unreachable => Some(ProviderFault::Unreachable),
            _ => None,
        };
        e
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use serde_json::json;

    use super::*;
    use crate::providers::scripted::scripted;

    #[tokio::test]
    async fn a_2xx_that_is_not_json_becomes_a_failure_naming_the_request() {
        let page = "<html>\n  <body>Sign in</body></html>";
        let t = scripted(|r| {
            Ok(Response {
                status: 200,
                body: match r.method {
                    "GET" => Value::String(page.into()),
                    "PUT" => Value::Null,
                    _ => json!({"id": 1}),
                },
            })
        });
        let wrapped = JsonAnswers(&t);
        let e = wrapped
            .send(&Request::new("GET", "/users?email=a%40b.co", None, "E1"))
            .await
            .unwrap_err();
        assert_eq!(e.status, Some(200));
        assert_eq!(
            e.message,
            "the answer to GET /users (HTTP 200) is not JSON, so it confirms nothing: «<html> <body>Sign in</body></html>» (is base_url the vendor's API?)"
        );
        // JSON and empty answers pass untouched.
        let put = wrapped.send(&Request::new("PUT", "/u", None, "E1")).await;
        assert_eq!(put.unwrap().body, Value::Null);
        let post = wrapped.send(&Request::new("POST", "/u", None, "E1")).await;
        assert_eq!(post.unwrap().body, json!({"id": 1}));
    }
}
