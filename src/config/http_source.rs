//! The keys of `source:` that only `type: http` has: the URL, auth, where the records
//! are in each page (a JSON pointer), pagination, and the request limits.
//!
//! Auth (and its secrets) is parsed in `http_auth.rs`. The URL may carry no userinfo:
//! a password in a URL is a literal secret, and URLs end up in messages.

use std::path::Path;

use serde::Deserialize;
use serde_json::{Map, Value};

use super::http_auth::parse_auth;
pub use super::http_auth::HttpAuth;
use super::Issue;

/// Default `max_pages`: a runaway paginator (a server that ignores the page
/// parameter) fails after this many requests instead of looping for ever.
pub const DEFAULT_MAX_PAGES: u32 = 1000;
const DEFAULT_TIMEOUT_SECONDS: u64 = 30;
const DEFAULT_MAX_ATTEMPTS: u32 = 5;
const MAX_PAGE_SIZE: u32 = 100_000;
/// Default `source.max_page_bytes` (http and scim): 64 MiB per page.
pub const DEFAULT_MAX_PAGE_BYTES: usize = 64 * 1024 * 1024;
/// Default `source.max_users` (http and scim).
pub const DEFAULT_MAX_USERS: usize = 1_000_000;

/// The validated HTTP source settings (`source.type: http`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpSourceConfig {
    /// The first page's URL (checked by the outbound policy: no userinfo, https
    /// unless `source.allow_insecure_http`).
    pub url: crate::net::EndpointUrl,
    pub auth: HttpAuth,
    /// RFC 6901 JSON pointer to the records array in each page; `""` is the whole body.
    pub records: String,
    pub pagination: Pagination,
    /// Most pages (requests) one load may fetch; more is an error, never a partial list.
    pub max_pages: u32,
    /// Largest page body read (`source.max_page_bytes`); a larger one fails the load.
    pub max_page_bytes: usize,
    /// Most records one load may read (`source.max_users`); more fails the load.
    pub max_users: usize,
    /// Per-request timeout.
    pub timeout_seconds: u64,
    /// Attempts per page on 5xx, 408, timeouts and dropped connections (1 = no retry).
    pub max_attempts: u32,
}

/// `source.pagination`: how the next page is asked for, and when the list ends.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum Pagination {
    /// One request. (Variants without keys are written `{}`: serde checks unknown
    /// keys only for struct variants of a tagged enum.)
    None {},
    /// `?page=N` from `start`, +1 each page, until a page has no records.
    Page {
        #[serde(default = "default_page_param")]
        param: String,
        #[serde(default = "default_page_start")]
        start: u64,
        /// Page-size parameter; sent with `size` when set.
        #[serde(default)]
        size_param: Option<String>,
        #[serde(default)]
        size: Option<u32>,
    },
    /// `?offset=O&limit=L`: the offset grows by the records received, until a page has
    /// none (a server that caps the page below `limit` loses nobody).
    Offset {
        #[serde(default = "default_offset_param")]
        offset_param: String,
        #[serde(default = "default_limit_param")]
        limit_param: String,
        #[serde(default = "default_limit")]
        limit: u32,
    },
    /// The body names the next cursor (at the JSON pointer `next`), sent back as the
    /// query parameter `param`; a missing, null or empty cursor ends the list.
    Cursor {
        next: String,
        #[serde(default = "default_cursor_param")]
        param: String,
    },
    /// RFC 8288 `Link: <…>; rel="next"` headers, followed until there is none.
    Link {},
}

fn default_page_param() -> String {
    "page".into()
}
fn default_page_start() -> u64 {
    1
}
fn default_offset_param() -> String {
    "offset".into()
}
fn default_limit_param() -> String {
    "limit".into()
}
fn default_limit() -> u32 {
    100
}
fn default_cursor_param() -> String {
    "cursor".into()
}

/// The HTTP keys of `source:` as written; `None` when absent.
#[derive(Debug, Clone, Default)]
pub(crate) struct RawHttp {
    /// `url` and the bounds of one read, shared with the SCIM source.
    pub network: super::source::NetworkKeys,
    pub auth: Option<Map<String, Value>>,
    pub records: Option<String>,
    pub pagination: Option<Pagination>,
    pub timeout_seconds: Option<u64>,
    pub max_attempts: Option<u32>,
}

impl RawHttp {
    pub fn validate(self, base_dir: &Path, issues: &mut Vec<Issue>) -> Option<HttpSourceConfig> {
        let before = issues.len();
        let auth = match self.auth {
            None => Some(HttpAuth::None),
            Some(map) => parse_auth(map, base_dir, issues),
        };
        let records = self.records.unwrap_or_default();
        check_pointer("source.records", &records, issues);
        let pagination = self.pagination.unwrap_or(Pagination::None {});
        check_pagination(&pagination, issues);
        let timeout_seconds = self.timeout_seconds.unwrap_or(DEFAULT_TIMEOUT_SECONDS);
        if timeout_seconds == 0 || timeout_seconds > 3600 {
            issues.push(Issue::new(
                "source.timeout_seconds".into(),
                format!("{timeout_seconds} is out of range (1 to 3600)"),
            ));
        }
        let max_attempts = self.max_attempts.unwrap_or(DEFAULT_MAX_ATTEMPTS);
        if max_attempts == 0 || max_attempts > 20 {
            issues.push(Issue::new(
                "source.max_attempts".into(),
                format!("{max_attempts} is out of range (1 to 20)"),
            ));
        }
        if issues.len() > before {
            return None;
        }
        let network = self.network;
        Some(HttpSourceConfig {
            url: network.url?,
            auth: auth?,
            records,
            pagination,
            max_pages: network.max_pages,
            max_page_bytes: network.max_page_bytes,
            max_users: network.max_users,
            timeout_seconds,
            max_attempts,
        })
    }
}

/// An RFC 6901 JSON pointer: empty, or `/`-separated tokens where `~` is only
/// followed by `0` or `1`.
pub fn check_pointer(at: &str, pointer: &str, issues: &mut Vec<Issue>) {
    if let Some(problem) = pointer_problem(pointer) {
        issues.push(Issue::new(
            at.into(),
            format!("{pointer:?} is not a JSON pointer (RFC 6901): {problem}"),
        ));
    }
}

fn pointer_problem(pointer: &str) -> Option<&'static str> {
    if pointer.is_empty() {
        return None;
    }
    if !pointer.starts_with('/') {
        return Some("it must be empty or start with `/`, e.g. /data/users");
    }
    let mut chars = pointer.chars();
    while let Some(c) = chars.next() {
        if c == '~' && !matches!(chars.next(), Some('0' | '1')) {
            return Some("`~` must be followed by 0 or 1 (`~0` is `~`, `~1` is `/`)");
        }
    }
    None
}

fn check_pagination(pagination: &Pagination, issues: &mut Vec<Issue>) {
    let at = |key: &str| format!("source.pagination.{key}");
    let mut param = |key: &str, name: &str| {
        if name.trim().is_empty() {
            issues.push(Issue::new(at(key), "empty parameter name".into()));
        }
    };
    match pagination {
        Pagination::None {} | Pagination::Link {} => {}
        Pagination::Page {
            param: p,
            size_param,
            size,
            ..
        } => {
            param("param", p);
            match (size_param, size) {
                (Some(sp), Some(n)) => {
                    param("size_param", sp);
                    if *n == 0 || *n > MAX_PAGE_SIZE {
                        issues.push(Issue::new(
                            at("size"),
                            format!("{n} is out of range (1 to {MAX_PAGE_SIZE})"),
                        ));
                    }
                }
                (None, None) => {}
                (Some(_), None) => issues.push(Issue::new(
                    at("size"),
                    "missing: size_param is set, so give the page size too".into(),
                )),
                (None, Some(_)) => issues.push(Issue::new(
                    at("size_param"),
                    "missing: size is set, so name the parameter that carries it".into(),
                )),
            }
        }
        Pagination::Offset {
            offset_param,
            limit_param,
            limit,
        } => {
            param("offset_param", offset_param);
            param("limit_param", limit_param);
            if *limit == 0 || *limit > MAX_PAGE_SIZE {
                issues.push(Issue::new(
                    at("limit"),
                    format!("{limit} is out of range (1 to {MAX_PAGE_SIZE})"),
                ));
            }
        }
        Pagination::Cursor { next, param: p } => {
            param("param", p);
            if next.is_empty() {
                issues.push(Issue::new(
                    at("next"),
                    "empty: give the JSON pointer to the next cursor, e.g. /meta/next_cursor"
                        .into(),
                ));
            } else {
                check_pointer(&at("next"), next, issues);
            }
        }
    }
}

#[cfg(test)]
#[path = "http_source_tests.rs"]
mod tests;
