//! Which page comes next: pure logic over what the last page said, so that every
//! pagination style is tested without a server.
//!
//! Page-number and offset paging end at the first page without records, never at a
//! "short" page: a server that caps the page size below what was asked would
//! otherwise end the list after the first page, silently, and everyone after it
//! would look gone. The last (empty) request is the price of that.

use serde_json::Value;
use url::Url;

use super::link::{self, LinkError};
use super::query::{redact, same_origin, with_params};
use crate::config::Pagination;

/// What the page just read said.
#[derive(Debug, Clone, Copy)]
pub struct PageSeen<'a> {
    /// The page's URL after redirects: relative links resolve against it.
    pub url: &'a Url,
    /// Records in the page's records array.
    pub records: usize,
    pub body: &'a Value,
    /// The answer's `Link` header values.
    pub links: &'a [String],
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    Done,
    Fetch(Url),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PageError {
    #[error("the next cursor at `{pointer}` is {found}, not a string or a number")]
    CursorType {
        pointer: String,
        found: &'static str,
    },
    #[error(
        "the body gives the same next cursor as the page before; stopping rather than \
         reading the same page for ever"
    )]
    CursorRepeated,
    #[error("the Link header cannot be read: {0}")]
    Link(#[from] LinkError),
    #[error("the next link {target:?} is not a valid URL reference: {message}")]
    LinkTarget { target: String, message: String },
    #[error(
        "the next link points to another origin ({next}); credentials are only sent to \
         the origin of source.url, so the list cannot be read to the end"
    )]
    CrossOrigin { next: String },
    #[error("the next link is the page just read; stopping rather than reading it for ever")]
    LinkRepeated,
}

/// Walks the pages of one load.
#[derive(Debug)]
pub struct Pager<'c> {
    pagination: &'c Pagination,
    base: &'c Url,
    /// Page style: the number of the page just requested.
    page: u64,
    /// Offset style: records received so far.
    offset: u64,
    /// Cursor style: the cursor sent for the page just requested.
    cursor: Option<String>,
}

impl<'c> Pager<'c> {
    pub fn new(pagination: &'c Pagination, base: &'c Url) -> Self {
        let page = match pagination {
            Pagination::Page { start, .. } => *start,
            _ => 0,
        };
        Pager {
            pagination,
            base,
            page,
            offset: 0,
            cursor: None,
        }
    }

    /// The first page's URL.
    pub fn first(&self) -> Url {
        match self.pagination {
            Pagination::Page { .. } => self.page_url(),
            Pagination::Offset { .. } => self.offset_url(),
            Pagination::None {} | Pagination::Cursor { .. } | Pagination::Link {} => {
                self.base.clone()
            }
        }
    }

    /// After a page was read: the next page to fetch, or the end of the list.
    pub fn next(&mut self, seen: PageSeen<'_>) -> Result<Next, PageError> {
        match self.pagination {
            Pagination::None {} => Ok(Next::Done),
            Pagination::Page { .. } => {
                if seen.records == 0 {
                    return Ok(Next::Done);
                }
                self.page += 1;
                Ok(Next::Fetch(self.page_url()))
            }
            Pagination::Offset { .. } => {
                if seen.records == 0 {
                    return Ok(Next::Done);
                }
                self.offset += seen.records as u64;
                Ok(Next::Fetch(self.offset_url()))
            }
            Pagination::Cursor { next, param } => {
                let cursor = match seen.body.pointer(next) {
                    None | Some(Value::Null) => return Ok(Next::Done),
                    Some(Value::String(s)) if s.is_empty() => return Ok(Next::Done),
                    Some(Value::String(s)) => s.clone(),
                    Some(Value::Number(n)) => n.to_string(),
                    Some(other) => {
                        return Err(PageError::CursorType {
                            pointer: next.clone(),
                            found: crate::source::json::kind(other),
                        })
                    }
                };
                if self.cursor.as_deref() == Some(cursor.as_str()) {
                    return Err(PageError::CursorRepeated);
                }
                let url = with_params(self.base, &[(param.as_str(), cursor.clone())]);
                self.cursor = Some(cursor);
                Ok(Next::Fetch(url))
            }
            Pagination::Link {} => {
                let Some(target) = link::find_rel(seen.links, "next")? else {
                    return Ok(Next::Done);
                };
                let url = seen.url.join(&target).map_err(|e| PageError::LinkTarget {
                    target: target.clone(),
                    message: e.to_string(),
                })?;
                if !same_origin(self.base, &url) {
                    return Err(PageError::CrossOrigin { next: redact(&url) });
                }
                if url == *seen.url {
                    return Err(PageError::LinkRepeated);
                }
                Ok(Next::Fetch(url))
            }
        }
    }

    fn page_url(&self) -> Url {
        let Pagination::Page {
            param,
            size_param,
            size,
            ..
        } = self.pagination
        else {
            return self.base.clone();
        };
        let mut params = vec![(param.as_str(), self.page.to_string())];
        if let (Some(sp), Some(n)) = (size_param, size) {
            params.push((sp.as_str(), n.to_string()));
        }
        with_params(self.base, &params)
    }

    fn offset_url(&self) -> Url {
        let Pagination::Offset {
            offset_param,
            limit_param,
            limit,
        } = self.pagination
        else {
            return self.base.clone();
        };
        with_params(
            self.base,
            &[
                (offset_param.as_str(), self.offset.to_string()),
                (limit_param.as_str(), limit.to_string()),
            ],
        )
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use serde_json::json;

    use super::*;

    fn base() -> Url {
        Url::parse("https://hr.example/api/users?active=true").unwrap()
    }

    fn seen<'a>(
        url: &'a Url,
        records: usize,
        body: &'a Value,
        links: &'a [String],
    ) -> PageSeen<'a> {
        PageSeen {
            url,
            records,
            body,
            links,
        }
    }

    fn fetched(next: Result<Next, PageError>) -> String {
        match next.unwrap() {
            Next::Fetch(u) => u.to_string(),
            Next::Done => panic!("expected another page"),
        }
    }

    #[test]
    fn none_reads_one_page() {
        let (p, b) = (Pagination::None {}, base());
        let mut pager = Pager::new(&p, &b);
        assert_eq!(pager.first(), b);
        let body = json!([{"id": 1}]);
        assert_eq!(pager.next(seen(&b, 1, &body, &[])).unwrap(), Next::Done);
    }

    #[test]
    fn page_numbers_count_up_from_start_and_end_at_an_empty_page() {
        let p = Pagination::Page {
            param: "p".into(),
            start: 0,
            size_param: Some("per_page".into()),
            size: Some(2),
        };
        let b = base();
        let mut pager = Pager::new(&p, &b);
        let first = pager.first();
        assert_eq!(
            first.as_str(),
            "https://hr.example/api/users?active=true&p=0&per_page=2"
        );
        let body = json!({});
        let second = fetched(pager.next(seen(&first, 2, &body, &[])));
        assert_eq!(
            second,
            "https://hr.example/api/users?active=true&p=1&per_page=2"
        );
        // A short page is not the end: the server may cap page sizes.
        let second = Url::parse(&second).unwrap();
        let third = fetched(pager.next(seen(&second, 1, &body, &[])));
        assert!(third.ends_with("p=2&per_page=2"), "{third}");
        let third = Url::parse(&third).unwrap();
        assert_eq!(pager.next(seen(&third, 0, &body, &[])).unwrap(), Next::Done);
    }

    #[test]
    fn page_size_is_only_sent_when_configured() {
        let p = Pagination::Page {
            param: "page".into(),
            start: 1,
            size_param: None,
            size: None,
        };
        let b = Url::parse("https://hr.example/users").unwrap();
        assert_eq!(
            Pager::new(&p, &b).first().as_str(),
            "https://hr.example/users?page=1"
        );
    }

    #[test]
    fn offsets_grow_by_the_records_received() {
        let p = Pagination::Offset {
            offset_param: "offset".into(),
            limit_param: "limit".into(),
            limit: 100,
        };
        let b = Url::parse("https://hr.example/users").unwrap();
        let mut pager = Pager::new(&p, &b);
        let first = pager.first();
        assert_eq!(
            first.as_str(),
            "https://hr.example/users?offset=0&limit=100"
        );
        let body = json!([]);
        // The server capped the page at 40: the next offset is 40, not 100.
        let second = fetched(pager.next(seen(&first, 40, &body, &[])));
        assert_eq!(second, "https://hr.example/users?offset=40&limit=100");
        let second = Url::parse(&second).unwrap();
        let third = fetched(pager.next(seen(&second, 40, &body, &[])));
        assert_eq!(third, "https://hr.example/users?offset=80&limit=100");
        let third = Url::parse(&third).unwrap();
        assert_eq!(pager.next(seen(&third, 0, &body, &[])).unwrap(), Next::Done);
    }

    #[test]
    fn cursor_is_sent_back_until_it_is_missing_null_or_empty() {
        let p = Pagination::Cursor {
            next: "/meta/next".into(),
            param: "after".into(),
        };
        let b = base();
        let mut pager = Pager::new(&p, &b);
        assert_eq!(pager.first(), b);
        let body = json!({"meta": {"next": "c 1"}});
        let second = fetched(pager.next(seen(&b, 5, &body, &[])));
        assert_eq!(second, "https://hr.example/api/users?active=true&after=c+1");
        let body = json!({"meta": {"next": 42}});
        let third = fetched(pager.next(seen(&b, 5, &body, &[])));
        assert!(third.ends_with("&after=42"), "{third}");
        for end in [
            json!({"meta": {"next": null}}),
            json!({"meta": {"next": ""}}),
            json!({}),
        ] {
            let mut pager = Pager::new(&p, &b);
            assert_eq!(pager.next(seen(&b, 5, &end, &[])).unwrap(), Next::Done);
        }
    }

    #[test]
    fn a_repeated_or_odd_cursor_is_an_error() {
        let p = Pagination::Cursor {
            next: "/next".into(),
            param: "cursor".into(),
        };
        let b = base();
        let mut pager = Pager::new(&p, &b);
        let body = json!({"next": "abc"});
        fetched(pager.next(seen(&b, 1, &body, &[])));
        assert_eq!(
            pager.next(seen(&b, 1, &body, &[])),
            Err(PageError::CursorRepeated)
        );
        let body = json!({"next": {"id": 3}});
        let err = Pager::new(&p, &b)
            .next(seen(&b, 1, &body, &[]))
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "the next cursor at `/next` is an object, not a string or a number"
        );
    }

    #[test]
    fn link_next_is_resolved_against_the_page_url() {
        let (p, b) = (Pagination::Link {}, base());
        let mut pager = Pager::new(&p, &b);
        let body = json!([]);
        let page = Url::parse("https://hr.example/api/users?active=true").unwrap();
        let links = vec![r#"<?active=true&page=2>; rel="next""#.to_string()];
        assert_eq!(
            fetched(pager.next(seen(&page, 3, &body, &links))),
            "https://hr.example/api/users?active=true&page=2"
        );
        let links = vec![r#"</v2/people?page=3>; rel="next""#.to_string()];
        assert_eq!(
            fetched(pager.next(seen(&page, 3, &body, &links))),
            "https://hr.example/v2/people?page=3"
        );
        let links = vec![r#"<https://hr.example/x?page=4>; rel=next"#.to_string()];
        assert_eq!(
            fetched(pager.next(seen(&page, 3, &body, &links))),
            "https://hr.example/x?page=4"
        );
        let links = vec![r#"</x?page=1>; rel="prev""#.to_string()];
        assert_eq!(
            pager.next(seen(&page, 3, &body, &links)).unwrap(),
            Next::Done
        );
    }

    #[test]
    fn link_to_another_origin_or_to_the_same_page_is_an_error() {
        let (p, b) = (Pagination::Link {}, base());
        let body = json!([]);
        let links = vec![r#"<https://evil.example/u?page=2&token=abc>; rel="next""#.to_string()];
        let err = Pager::new(&p, &b)
            .next(seen(&b, 1, &body, &links))
            .unwrap_err();
        assert!(matches!(err, PageError::CrossOrigin { .. }), "{err}");
        assert!(!err.to_string().contains("abc"), "{err}");
        let links = vec![format!("<{b}>; rel=\"next\"")];
        assert_eq!(
            Pager::new(&p, &b).next(seen(&b, 1, &body, &links)),
            Err(PageError::LinkRepeated)
        );
        let links = vec!["<https://hr.example/p2; rel=next".to_string()];
        assert!(matches!(
            Pager::new(&p, &b).next(seen(&b, 1, &body, &links)),
            Err(PageError::Link(_))
        ));
    }
}
