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
}

impl CallError {
    pub fn new(status: Option<u16>, message: impl Into<String>) -> Self {
        CallError {
            status,
            message: message.into(),
        }
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
    },
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
        }
    }

    /// The vendor's id for the account, when it told us one.
    pub fn vendor_id(&self) -> Option<&str> {
        match self {
            Applied::Done { vendor_id, .. } | Applied::Manual { vendor_id, .. } => {
                vendor_id.as_deref()
            }
        }
    }
}

pub type OpResult = Result<Applied, CallError>;
