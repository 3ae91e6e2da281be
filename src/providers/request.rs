//! The HTTP requests an adapter sends, as values: built once from the plan's
//! operations, shown by `sync --dry-run --show-requests`, and sent by the executor.

use serde::Serialize;
use serde_json::Value;

/// One request as rosterd would send it. Headers carrying secrets are never part of
/// it: [`Provider::headers`](super::Provider::headers) lists them with redacted values.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Request {
    pub method: &'static str,
    /// Path and query below the provider's `base_url`.
    pub path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<Value>,
    /// The operations (by `external_id`) this request carries.
    pub external_ids: Vec<String>,
    /// A step that follows from the vendor's answer (e.g. "find by email to confirm").
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// Headers of this request only, never secrets (e.g. SCIM's content type and
    /// `If-Match`); names in lower case. Sent after the provider's auth headers.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<(&'static str, String)>,
    /// Sending it twice could make a second account (a create the vendor does not
    /// refuse when the account exists): after an answer that may mean it was carried
    /// out (a 5xx, a timeout, a dropped connection) it is not resent within the pass.
    /// The operation stays in flight, and the next pass looks for the account before
    /// it creates again. Not shown: it is how rosterd sends, not what.
    #[serde(skip)]
    pub send_once: bool,
}

impl Request {
    pub fn new(
        method: &'static str,
        path: impl Into<String>,
        body: Option<Value>,
        external_id: &str,
    ) -> Self {
        Request {
            method,
            path: path.into(),
            body,
            external_ids: vec![external_id.to_string()],
            note: None,
            headers: Vec::new(),
            send_once: false,
        }
    }

    /// Marks it [`Request::send_once`].
    pub fn send_once(mut self) -> Self {
        self.send_once = true;
        self
    }

    pub fn with_note(mut self, note: impl Into<String>) -> Self {
        self.note = Some(note.into());
        self
    }

    /// Adds a request header (lower-case name; never a secret: it is shown by
    /// `--show-requests`).
    pub fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }
}

/// A header as shown to an operator: secrets replaced by this marker.
pub const REDACTED: &str = "<redacted>";

/// Path segment for a vendor id the plan does not know yet (found at send time).
pub const ID_FOUND_AT_SEND_TIME: &str = "{id}";

/// Encodes one path segment (ids come from vendors and sources: never trust them raw).
pub fn segment(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

/// What `--show-requests` adds to a provider's plan: every request, with the URL root
/// and the headers (secrets redacted).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RequestsPreview {
    pub base_url: String,
    pub headers: std::collections::BTreeMap<String, String>,
    pub requests: Vec<Request>,
}
