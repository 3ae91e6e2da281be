//! The HTTP requests an adapter sends, as values. Each vendor builds each kind of
//! request in one function of its `requests.rs`; its preview (`sync --dry-run
//! --show-requests`) and its sending (`client.rs`) both call those functions, so what
//! the dry run shows is what a pass sends.

use serde::Serialize;
use serde_json::Value;

/// One request as rosterd would send it. Headers carrying secrets are never part of
/// it: [`Provider::headers`](super::Provider::headers) lists them with redacted values.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
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
    /// Preview only: the requests that follow this one only when its answer calls
    /// for them (the users a batch skipped, adopted; a lookup after a refused
    /// create), each saying when in its `note`. Kept apart from the list so that the
    /// list is what a pass sends when every answer is the expected one.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub conditional: Vec<Request>,
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
        Request::carrying(method, path, body, vec![external_id.to_string()])
    }

    /// A request carrying the operations `external_ids` (none: a request of the
    /// pass, such as a listing; several: a batch).
    pub fn carrying(
        method: &'static str,
        path: impl Into<String>,
        body: Option<Value>,
        external_ids: Vec<String>,
    ) -> Self {
        Request {
            method,
            path: path.into(),
            body,
            external_ids,
            note: None,
            conditional: Vec::new(),
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

    /// Adds `then` to [`Request::conditional`]: sent after this one only `when` (in
    /// words: "hesh's answer leaves the user out") its answer calls for it.
    pub fn then_if(mut self, when: &str, mut then: Request) -> Self {
        then.note = Some(match then.note.take() {
            Some(n) => format!("only if {when}; {n}"),
            None => format!("only if {when}"),
        });
        self.conditional.push(then);
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
/// The placeholder [`ID_FOUND_AT_SEND_TIME`] is kept readable for the preview (were a
/// vendor's id ever literally `{id}`, the URL parser still encodes the braces).
pub fn segment(s: &str) -> String {
    if s == ID_FOUND_AT_SEND_TIME {
        return s.to_string();
    }
    url::form_urlencoded::byte_serialize(s.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

/// What `--show-requests` adds to a provider's plan: every request, with the URL root
/// and the headers (secrets redacted).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct RequestsPreview {
    pub base_url: String,
    pub headers: std::collections::BTreeMap<String, String>,
    pub requests: Vec<Request>,
}
