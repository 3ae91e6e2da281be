//! `type: http`: users from a JSON API, page after page.
//!
//! Each page is one GET (auth, timeout, retries: `fetch.rs`); its records array is
//! found by a JSON pointer (`source.records`), each element flattened and validated
//! exactly as a JSON file's (`json::push_element`, then the shared builder), and the
//! next page is chosen by `pager.rs` (none, page number, offset, cursor, `Link`).
//!
//! All or nothing: a page that cannot be fetched or read, a broken `Link` header, or
//! more pages than `max_pages` fail the whole load with a [`SourceError`]; the pages
//! read so far are dropped, because a partial list would read as "everyone else
//! left". Records are located as `page 3 record 7` (page 1-based in the order read,
//! record the 0-based index in that page's array).

mod error;
mod fetch;
mod link;
mod pager;
mod query;

use std::future::Future;
use std::pin::Pin;

use chrono::{DateTime, Utc};

use super::build::Builder;
use super::walk::{pointer_segments, Shape, Walker};
use super::{json, Source, SourceError, SourceLoad};
use crate::config::{HttpSourceConfig, Pagination, SourceConfig};

pub use error::HttpSourceError;
use fetch::Fetcher;
use pager::{Next, PageSeen, Pager};
use query::redact;

const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// A JSON API holding the user list.
#[derive(Debug, Clone)]
pub struct HttpSource {
    config: SourceConfig,
    http: HttpSourceConfig,
    /// Reads `Retry-After` dates (and epoch `X-RateLimit-Reset`s) in answers.
    clock: fn() -> DateTime<Utc>,
}

impl HttpSource {
    pub fn new(config: SourceConfig, http: HttpSourceConfig) -> Self {
        HttpSource {
            config,
            http,
            clock: crate::clock::now,
        }
    }

    async fn load_pages(&self) -> Result<SourceLoad, HttpSourceError> {
        let http = &self.http;
        let fetcher =
            Fetcher::new(http, self.clock).map_err(|message| HttpSourceError::Client {
                url: redact(&http.url),
                message,
            })?;
        let mut builder = Builder::new(&self.config);
        let mut pager = Pager::new(&http.pagination, &http.url);
        let mut url = pager.first();
        let records_path = pointer_segments(&http.records);
        let mut page: u32 = 0;
        let mut read = 0usize;
        loop {
            page += 1;
            let shown = redact(&url);
            let fetched = fetcher
                .get(&url)
                .await
                .map_err(|failure| HttpSourceError::Request {
                    page,
                    url: shown.clone(),
                    status: failure.status,
                    message: failure.message,
                })?;
            let body = fetched.body.strip_prefix(UTF8_BOM).unwrap_or(&fetched.body);
            let mut count = 0usize;
            let mut walker = Walker {
                segments: &records_path,
                keep_rest: true,
                mark: None,
                sink: |element| {
                    let location = format!("page {page} record {count}");
                    count += 1;
                    json::push_element(&mut builder, location, element);
                    Ok(())
                },
                shape: None,
            };
            let walked = walker.walk(&mut serde_json::Deserializer::from_slice(body));
            let shape = walker.shape.take();
            drop(walker);
            let doc = walked.map_err(|e| match shape {
                Some(Shape::Missing { .. }) | Some(Shape::NotArray { .. }) => {
                    HttpSourceError::Records {
                        page,
                        url: shown.clone(),
                        pointer: http.records.clone(),
                        found: match shape {
                            Some(Shape::NotArray { found }) => Some(found),
                            _ => None,
                        },
                    }
                }
                _ => HttpSourceError::Json {
                    page,
                    url: shown.clone(),
                    line: e.line(),
                    column: e.column(),
                    message: e.to_string(),
                },
            })?;
            read += count;
            if read > http.max_users {
                return Err(HttpSourceError::TooManyUsers {
                    max_users: http.max_users,
                    page,
                    url: shown,
                });
            }
            let page_url = fetched.url.unwrap_or(url);
            let next = pager
                .next(PageSeen {
                    url: &page_url,
                    records: count,
                    body: &doc,
                    links: &fetched.links,
                })
                .map_err(|source| HttpSourceError::Paging {
                    page,
                    url: shown.clone(),
                    source,
                })?;
            tracing::debug!(page, url = %shown, records = count, "Source page read.");
            let Next::Fetch(next_url) = next else { break };
            if page >= http.max_pages {
                return Err(HttpSourceError::TooManyPages {
                    max_pages: http.max_pages,
                    next: redact(&next_url),
                });
            }
            url = next_url;
        }
        let load = builder.finish();
        tracing::debug!(
            pages = page,
            records = load.records,
            users = load.users.len(),
            rejected = load.rejected.len(),
            "HTTP source read."
        );
        Ok(load)
    }
}

fn pagination_name(p: &Pagination) -> &'static str {
    match p {
        Pagination::None {} => "no pagination",
        Pagination::Page { .. } => "page-number pagination",
        Pagination::Offset { .. } => "offset pagination",
        Pagination::Cursor { .. } => "cursor pagination",
        Pagination::Link {} => "Link-header pagination",
    }
}

impl Source for HttpSource {
    fn describe(&self) -> String {
        let at = if self.http.records.is_empty() {
            String::new()
        } else {
            format!("users at `{}`, ", self.http.records)
        };
        format!(
            "HTTP source {} ({at}{})",
            redact(&self.http.url),
            pagination_name(&self.http.pagination)
        )
    }

    fn load(&self) -> Pin<Box<dyn Future<Output = Result<SourceLoad, SourceError>> + Send + '_>> {
        Box::pin(async move { Ok(self.load_pages().await?) })
    }
}
