//! RFC 8288 `Link` header values: `<url>; rel="next", <url>; rel="last"`.
//!
//! A small parser rather than a crate: the crates that parse Link headers pull in
//! `regex`, and the grammar is short. It is strict on purpose: a header it cannot
//! read is an error, never "no next page", because missing the next link would end
//! the user list early and read as "everyone after this left".
//!
//! Grammar (RFC 8288 §3, RFC 9110 lists and quoted strings):
//! `Link = #( "<" URI-Reference ">" *( OWS ";" OWS link-param ) )`,
//! `link-param = token BWS [ "=" BWS ( token / quoted-string ) ]`.

/// One link: its target (as written, still to be resolved) and its relation types
/// (lower-cased).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub target: String,
    pub rels: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} at character {at}")]
pub struct LinkError {
    what: &'static str,
    at: usize,
}

/// Every link of one header value, in order.
pub fn parse(value: &str) -> Result<Vec<Link>, LinkError> {
    let mut p = Parser {
        s: value.as_bytes(),
        i: 0,
    };
    let mut links = Vec::new();
    loop {
        // Empty list elements (`, ,`) are allowed by the list rule.
        while p.peek().is_some_and(|c| c == b',' || is_ows(c)) {
            p.i += 1;
        }
        if p.peek().is_none() {
            return Ok(links);
        }
        links.push(p.link()?);
    }
}

/// The target of the first link with `rel` among its relation types, across all
/// `Link` header values of one answer.
pub fn find_rel(values: &[String], rel: &str) -> Result<Option<String>, LinkError> {
    for value in values {
        for link in parse(value)? {
            if link.rels.iter().any(|r| r.eq_ignore_ascii_case(rel)) {
                return Ok(Some(link.target));
            }
        }
    }
    Ok(None)
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

fn is_ows(c: u8) -> bool {
    c == b' ' || c == b'\t'
}

/// RFC 9110 `tchar`.
fn is_tchar(c: u8) -> bool {
    c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&c)
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn err(&self, what: &'static str) -> LinkError {
        LinkError { what, at: self.i }
    }

    fn skip_ows(&mut self) {
        while self.peek().is_some_and(is_ows) {
            self.i += 1;
        }
    }

    fn link(&mut self) -> Result<Link, LinkError> {
        if self.peek() != Some(b'<') {
            return Err(self.err("expected `<` to open a link target"));
        }
        self.i += 1;
        let start = self.i;
        while self.peek().is_some_and(|c| c != b'>') {
            self.i += 1;
        }
        if self.peek().is_none() {
            return Err(self.err("the link target has no closing `>`"));
        }
        let target = String::from_utf8_lossy(&self.s[start..self.i])
            .trim()
            .to_string();
        self.i += 1;
        let mut rels: Option<Vec<String>> = None;
        loop {
            self.skip_ows();
            match self.peek() {
                None | Some(b',') => break,
                Some(b';') => {
                    self.i += 1;
                    self.skip_ows();
                    // A trailing `;` before the end or a comma is tolerated.
                    if matches!(self.peek(), None | Some(b',')) {
                        break;
                    }
                    let (name, value) = self.param()?;
                    // Only the first `rel` counts (RFC 8288 §3.3).
                    if rels.is_none() && name.eq_ignore_ascii_case("rel") {
                        rels = Some(
                            value
                                .unwrap_or_default()
                                .split_ascii_whitespace()
                                .map(str::to_ascii_lowercase)
                                .collect(),
                        );
                    }
                }
                Some(_) => return Err(self.err("expected `;` or `,` after a link")),
            }
        }
        Ok(Link {
            target,
            rels: rels.unwrap_or_default(),
        })
    }

    fn param(&mut self) -> Result<(String, Option<String>), LinkError> {
        let name = self
            .token()
            .ok_or_else(|| self.err("expected a parameter name"))?;
        self.skip_ows();
        if self.peek() != Some(b'=') {
            return Ok((name, None));
        }
        self.i += 1;
        self.skip_ows();
        let value = if self.peek() == Some(b'"') {
            self.quoted()?
        } else {
            self.token()
                .ok_or_else(|| self.err("expected a parameter value"))?
        };
        Ok((name, Some(value)))
    }

    fn token(&mut self) -> Option<String> {
        let start = self.i;
        while self.peek().is_some_and(is_tchar) {
            self.i += 1;
        }
        (self.i > start).then(|| String::from_utf8_lossy(&self.s[start..self.i]).into_owned())
    }

    fn quoted(&mut self) -> Result<String, LinkError> {
        self.i += 1;
        let mut out = Vec::new();
        loop {
            match self.peek() {
                None => return Err(self.err("a quoted string is not closed")),
                Some(b'"') => {
                    self.i += 1;
                    return Ok(String::from_utf8_lossy(&out).into_owned());
                }
                Some(b'\\') => {
                    self.i += 1;
                    let c = self
                        .peek()
                        .ok_or_else(|| self.err("a quoted string ends in `\\`"))?;
                    out.push(c);
                    self.i += 1;
                }
                Some(c) => {
                    out.push(c);
                    self.i += 1;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn next(values: &[&str]) -> Result<Option<String>, LinkError> {
        let values: Vec<String> = values.iter().map(|v| v.to_string()).collect();
        find_rel(&values, "next")
    }

    #[test]
    fn finds_next_among_several_links() {
        let header = r#"<https://hr.example/users?page=1>; rel="first", <https://hr.example/users?page=3>; rel="next", <https://hr.example/users?page=9>; rel="last""#;
        assert_eq!(
            next(&[header]).unwrap().as_deref(),
            Some("https://hr.example/users?page=3")
        );
    }

    #[test]
    fn rel_may_be_a_token_a_list_or_in_any_case() {
        assert_eq!(next(&["</p2>; rel=next"]).unwrap().as_deref(), Some("/p2"));
        assert_eq!(
            next(&[r#"</p2>; rel="prefetch NEXT""#]).unwrap().as_deref(),
            Some("/p2")
        );
        assert_eq!(
            next(&[r#"</p2>;REL="Next""#]).unwrap().as_deref(),
            Some("/p2")
        );
    }

    #[test]
    fn commas_and_semicolons_inside_targets_and_quotes_do_not_split() {
        let header = r#"</users?f=a,b;c>; title="a, b; \"c\""; rel="next""#;
        let links = parse(header).unwrap();
        assert_eq!(links.len(), 1);
        assert_eq!(links[0].target, "/users?f=a,b;c");
        assert_eq!(links[0].rels, ["next"]);
    }

    #[test]
    fn only_the_first_rel_counts() {
        assert_eq!(next(&[r#"</a>; rel="prev"; rel="next""#]).unwrap(), None);
    }

    #[test]
    fn no_next_when_only_other_relations_or_no_header() {
        assert_eq!(
            next(&[r#"</a>; rel="prev", </z>; rel="last""#]).unwrap(),
            None
        );
        assert_eq!(next(&[]).unwrap(), None);
        assert_eq!(next(&[""]).unwrap(), None);
    }

    #[test]
    fn several_header_values_are_one_list() {
        assert_eq!(
            next(&[r#"</a>; rel="prev""#, r#"</b>; rel="next""#])
                .unwrap()
                .as_deref(),
            Some("/b")
        );
    }

    #[test]
    fn extension_parameters_and_empty_elements_are_accepted() {
        let header = r##" , </b>; title*=UTF-8'de'n%c3%a4chste; anchor="#x"; rel=next ,"##;
        assert_eq!(next(&[header]).unwrap().as_deref(), Some("/b"));
    }

    #[test]
    fn broken_headers_are_errors_not_a_missing_next() {
        for bad in [
            "https://x/p2; rel=next",
            "<https://x/p2; rel=next",
            r#"<https://x/p2>; rel="next"#,
            "<https://x/p2> rel=next",
            "<https://x/p2>; =next",
        ] {
            assert!(next(&[bad]).is_err(), "{bad} should not parse");
        }
    }
}
