//! Why an HTTP source load failed. Every variant names the page (1-based, in the
//! order read) and its URL with secrets redacted (see `query::redact`).

use super::pager::PageError;

#[derive(Debug, thiserror::Error)]
pub enum HttpSourceError {
    #[error("HTTP source {url}: cannot build the HTTP client: {message}")]
    Client { url: String, message: String },
    #[error("HTTP source: page {page} ({url}): {message}{}", auth_hint(*status))]
    Request {
        page: u32,
        url: String,
        /// The last HTTP status, when the server answered.
        status: Option<u16>,
        message: String,
    },
    #[error(
        "HTTP source: page {page} ({url}) is not valid JSON at line {line}, column {column}: \
         {message}"
    )]
    Json {
        page: u32,
        url: String,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("HTTP source: page {page} ({url}): {}", records_problem(pointer, *found))]
    Records {
        page: u32,
        url: String,
        /// `source.records`.
        pointer: String,
        /// What is at the pointer instead of an array; `None` when nothing is.
        found: Option<&'static str>,
    },
    #[error("HTTP source: page {page} ({url}): {source}")]
    Paging {
        page: u32,
        url: String,
        #[source]
        source: PageError,
    },
    #[error(
        "HTTP source: the list has more than source.max_pages ({max_pages}) pages (the \
         next would be {next}); a partial list is never used, so raise max_pages if the \
         list really is this long"
    )]
    TooManyPages { max_pages: u32, next: String },
    #[error(
        "HTTP source: page {page} ({url}) brings the list past source.max_users \
         ({max_users}) records; a partial list is never used, so raise max_users if the \
         list really is this long"
    )]
    TooManyUsers {
        max_users: usize,
        page: u32,
        url: String,
    },
}

fn auth_hint(status: Option<u16>) -> &'static str {
    match status {
        Some(401 | 403) => " (check source.auth)",
        Some(300..=399) => {
            " (redirects are followed only within the origin of source.url, where the \
             credentials belong)"
        }
        _ => "",
    }
}

fn records_problem(pointer: &str, found: Option<&str>) -> String {
    match (pointer.is_empty(), found) {
        (_, None) => format!("the body has nothing at `{pointer}` (source.records)"),
        (true, Some("an object")) => "the body is an object, not an array of users; set \
             source.records to the JSON pointer of the array, e.g. /data/users"
            .to_string(),
        (true, Some(found)) => format!("the body is {found}, not an array of users"),
        (false, Some(found)) => {
            format!("`{pointer}` (source.records) is {found}, not an array of users")
        }
    }
}
