//! The SCIM source: `/Users` of a SCIM 2.0 service (RFC 7644 §3.4.2), read page by
//! page (`startIndex`, `count`) until `totalResults`, optionally filtered, with a
//! bearer token.
//!
//! Each User becomes a [`RawRecord`] keyed by SCIM attribute names — `id`,
//! `userName`, `externalId`, `email` (the primary one), `givenName`, `familyName`,
//! `displayName`, `title`, `phone` (the primary one), `active`, and the enterprise
//! extension's `employeeNumber`, `department`, `manager` (its `value`), `organization`,
//! `division` and `costCenter` — and goes through the same [`build_users`] as the
//! files, so `fields:`, status rules and validation are shared. A page that fails or
//! makes no sense fails the whole load: a partial list would disable the rest.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use secrecy::ExposeSecret;
use serde_json::Value;

use super::{build_users, RawRecord, Source, SourceError, SourceLoad};
use crate::config::{ScimSource as Settings, SourceConfig};
use crate::providers::scim::list::{check_paging, parse_page, primary, Page};

const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

pub struct ScimSource {
    config: SourceConfig,
    settings: Settings,
}

impl ScimSource {
    pub fn new(config: SourceConfig, settings: Settings) -> Self {
        ScimSource { config, settings }
    }

    /// `<url>/Users`, never with a secret in it (the token goes in a header).
    fn users_url(&self) -> String {
        format!("{}/Users", self.settings.url.as_str().trim_end_matches('/'))
    }

    async fn read_all(&self) -> Result<Vec<Value>, SourceError> {
        let url = self.users_url();
        // The one outbound policy: redirects stay on the origin of source.url.
        let client = crate::net::client(&crate::net::Endpoint {
            url: &self.settings.url,
            timeout: Duration::from_secs(self.settings.timeout_seconds),
        })
        .map_err(|e| SourceError::ScimRequest {
            url: url.clone(),
            start: 1,
            message: e.to_string(),
        })?;
        let max_users = self.settings.max_users;
        let too_many = |start: usize, what: String| SourceError::ScimResponse {
            url: url.clone(),
            start,
            message: format!(
                "{what}: more than source.max_users ({max_users}); a partial list is never \
                 used, so raise max_users if the directory really is this large"
            ),
        };
        let mut pages: u32 = 0;
        let mut users: Vec<Value> = Vec::new();
        let mut start = 1usize;
        let mut previous: Option<(usize, Vec<Value>)> = None;
        loop {
            if pages >= self.settings.max_pages {
                return Err(SourceError::ScimResponse {
                    url,
                    start,
                    message: format!(
                        "more than source.max_pages ({}) pages: a partial list is never \
                         used, so raise max_pages if the directory really is this large",
                        self.settings.max_pages
                    ),
                });
            }
            pages += 1;
            let page = self.page(&client, &url, start).await?;
            let total = page.total;
            if total > max_users {
                return Err(too_many(start, format!("totalResults is {total}")));
            }
            check_paging(
                &page,
                start,
                self.settings.page_size,
                previous.as_ref(),
                users.len(),
            )
            .map_err(|message| SourceError::ScimResponse {
                url: url.clone(),
                start,
                message: format!(
                    "{message}; the list cannot be trusted to be whole, so nobody is \
                         disabled"
                ),
            })?;
            let got = page.resources.len();
            users.extend(page.resources.iter().cloned());
            previous = Some((total, page.resources));
            if users.len() >= total {
                break;
            }
            if got == 0 {
                return Err(SourceError::ScimResponse {
                    url,
                    start,
                    message: format!(
                        "the page is empty, but totalResults is {total} and only {} user(s) were read",
                        users.len()
                    ),
                });
            }
            if users.len() > max_users {
                return Err(too_many(start, format!("{} users read", users.len())));
            }
            start += got;
        }
        Ok(users)
    }

    async fn page(
        &self,
        client: &reqwest::Client,
        url: &str,
        start: usize,
    ) -> Result<Page, SourceError> {
        let fail = |message: String| SourceError::ScimRequest {
            url: url.to_string(),
            start,
            message,
        };
        let mut query = vec![
            ("startIndex", start.to_string()),
            ("count", self.settings.page_size.to_string()),
        ];
        if let Some(f) = &self.settings.filter {
            query.push(("filter", f.clone()));
        }
        let mut request = client
            .get(url)
            .query(&query)
            .header("accept", "application/scim+json");
        if let Some(token) = &self.settings.bearer_token {
            let mut value = reqwest::header::HeaderValue::from_str(&format!(
                "Bearer {}",
                token.0.expose_secret()
            ))
            .map_err(|_| fail("the bearer token has characters a header cannot carry".into()))?;
            value.set_sensitive(true);
            request = request.header(reqwest::header::AUTHORIZATION, value);
        }
        // reqwest's own Display names the URL with its query: only the kind is kept.
        let mut response = request.send().await.map_err(|e| fail(describe(&e)))?;
        let status = response.status();
        let max = self.settings.max_page_bytes;
        let bytes = crate::net::read_capped(&mut response, max)
            .await
            .map_err(|e| fail(describe(&e)))?
            .ok_or_else(|| {
                fail(crate::net::too_large(
                    status.as_u16(),
                    &format!("source.max_page_bytes ({})", crate::net::show_bytes(max)),
                ))
            })?;
        let text = String::from_utf8_lossy(&bytes);
        // Scrubbed as it comes in: an echoed token is gone before any message is made.
        let body = crate::net::lenient_json(&crate::redact::scrub(&text));
        if !status.is_success() {
            return Err(SourceError::ScimStatus {
                url: url.to_string(),
                start,
                status: status.as_u16(),
                message: crate::providers::scim::requests::error_message(&body)
                    .unwrap_or_else(|| "no SCIM error detail".into()),
            });
        }
        parse_page(&body).map_err(|message| SourceError::ScimResponse {
            url: url.to_string(),
            start,
            message,
        })
    }
}

fn describe(e: &reqwest::Error) -> String {
    if e.is_redirect() {
        // The policy's own reason names both origins (never the query).
        let mut cause = std::error::Error::source(e);
        while let Some(c) = cause {
            if let Some(r) = c.downcast_ref::<crate::net::RedirectRefused>() {
                return r.to_string();
            }
            cause = c.source();
        }
        "too many or invalid redirects".into()
    } else if e.is_timeout() {
        "timed out".into()
    } else if e.is_connect() {
        "could not connect".into()
    } else if e.is_body() || e.is_decode() {
        "the answer could not be read".into()
    } else {
        "the request failed".into()
    }
}

/// A SCIM User as a raw record (see the module doc for its keys). `index` is its
/// 0-based position in the whole list.
pub fn to_record(user: &Value, index: usize) -> RawRecord {
    let mut fields: Vec<(String, String)> = Vec::new();
    let mut put = |key: &str, v: Option<&Value>| {
        let text = match v {
            Some(Value::String(s)) => Some(s.clone()),
            Some(Value::Number(n)) => Some(n.to_string()),
            Some(Value::Bool(b)) => Some(b.to_string()),
            _ => None,
        };
        if let Some(t) = text.filter(|t| !t.trim().is_empty()) {
            fields.push((key.to_string(), t));
        }
    };
    for key in ["id", "userName", "externalId", "displayName", "title"] {
        put(key, user.get(key));
    }
    let name = user.get("name");
    put("givenName", name.and_then(|n| n.get("givenName")));
    put("familyName", name.and_then(|n| n.get("familyName")));
    put("email", primary(user.get("emails")));
    put("phone", primary(user.get("phoneNumbers")));
    // RFC 7643 gives `active` no default; a user listed without it is taken as active.
    let active = user.get("active").cloned().unwrap_or(Value::Bool(true));
    put("active", Some(&active));
    let ext = user.get(ENTERPRISE);
    for key in [
        "employeeNumber",
        "department",
        "organization",
        "division",
        "costCenter",
    ] {
        put(key, ext.and_then(|e| e.get(key)));
    }
    put(
        "manager",
        ext.and_then(|e| e.get("manager"))
            .and_then(|m| m.get("value")),
    );
    let id = user.get("id").and_then(Value::as_str).unwrap_or("?");
    RawRecord {
        location: format!("user {index} (id {id})"),
        fields,
    }
}

impl Source for ScimSource {
    fn describe(&self) -> String {
        format!("SCIM service {}", self.users_url())
    }

    fn load(&self) -> Pin<Box<dyn Future<Output = Result<SourceLoad, SourceError>> + Send + '_>> {
        Box::pin(async move {
            let users = self.read_all().await?;
            let records = users.iter().enumerate().map(|(i, u)| to_record(u, i));
            let load = build_users(records, &self.config);
            tracing::debug!(
                url = %self.users_url(),
                records = load.records,
                users = load.users.len(),
                rejected = load.rejected.len(),
                "SCIM source read."
            );
            Ok(load)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn get<'a>(r: &'a RawRecord, key: &str) -> Option<&'a str> {
        r.fields
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    #[test]
    fn a_scim_user_becomes_a_record_with_primary_values_and_the_enterprise_extension() {
        let user = json!({
            "id": "u1", "userName": "ada@corp.example", "externalId": "E1",
            "name": {"givenName": "Ada", "familyName": "Lovelace"},
            "emails": [{"value": "home@x.example"}, {"value": "ada@corp.example", "primary": true}],
            "phoneNumbers": [{"value": "+15550001"}],
            "active": false,
            ENTERPRISE: {"department": "R&D", "employeeNumber": 42, "manager": {"value": "u0"}}
        });
        let r = to_record(&user, 3);
        assert_eq!(r.location, "user 3 (id u1)");
        assert_eq!(get(&r, "email"), Some("ada@corp.example"));
        assert_eq!(get(&r, "phone"), Some("+15550001"));
        assert_eq!(get(&r, "givenName"), Some("Ada"));
        assert_eq!(get(&r, "active"), Some("false"));
        assert_eq!(get(&r, "department"), Some("R&D"));
        assert_eq!(get(&r, "employeeNumber"), Some("42"));
        assert_eq!(get(&r, "manager"), Some("u0"));
        let bare = to_record(&json!({"id": "u2", "userName": "b@x.example"}), 0);
        assert_eq!(get(&bare, "active"), Some("true"));
        assert_eq!(get(&bare, "email"), None);
    }

    #[test]
    fn a_list_response_needs_total_results() {
        let p = parse_page(&json!({"totalResults": 0})).unwrap();
        assert_eq!((p.total, p.resources.len()), (0, 0));
        let p = parse_page(&json!({"totalResults": "2", "Resources": [{}, {}]})).unwrap();
        assert_eq!(p.total, 2);
        assert!(parse_page(&json!({"Resources": []}))
            .unwrap_err()
            .contains("totalResults"));
        assert!(parse_page(&json!({"totalResults": 1, "Resources": {}})).is_err());
        assert!(parse_page(&json!("<html>")).is_err());
    }

    /// A page of `n` users `u<from>`…, as a server answers for `startIndex`.
    fn page(body: Value) -> Page {
        parse_page(&body).unwrap()
    }

    fn users(from: usize, n: usize) -> Vec<Value> {
        (from..from + n)
            .map(|i| json!({"id": format!("u{i}")}))
            .collect()
    }

    #[test]
    fn a_server_that_pages_dishonestly_is_named_for_what_it_does() {
        let ok = page(
            json!({"totalResults": 5, "startIndex": 1, "itemsPerPage": 3, "Resources": users(1, 3)}),
        );
        assert_eq!(check_paging(&ok, 1, 3, None, 0), Ok(()));
        let second = page(json!({"totalResults": 5, "startIndex": 4, "Resources": users(4, 2)}));
        let previous = (5, ok.resources.clone());
        assert_eq!(check_paging(&second, 4, 3, Some(&previous), 3), Ok(()));

        // 49 resources for count=3.
        let flood = page(json!({"totalResults": 49, "Resources": users(1, 49)}));
        let err = check_paging(&flood, 1, 3, None, 0).unwrap_err();
        assert!(err.contains("49 resources for count=3"), "{err}");
        // The same page again (startIndex ignored).
        let again = page(json!({"totalResults": 5, "Resources": users(1, 3)}));
        let err = check_paging(&again, 4, 3, Some(&previous), 3).unwrap_err();
        assert!(err.contains("ignores `startIndex`"), "{err}");
        // More than totalResults.
        let over = page(json!({"totalResults": 5, "Resources": users(4, 3)}));
        let err = check_paging(&over, 4, 3, Some(&previous), 3).unwrap_err();
        assert!(
            err.contains("6 resources read so far, more than totalResults (5)"),
            "{err}"
        );
        // A startIndex that does not advance.
        let stuck = page(json!({"totalResults": 5, "startIndex": 1, "Resources": users(4, 2)}));
        let err = check_paging(&stuck, 4, 3, Some(&previous), 3).unwrap_err();
        assert!(
            err.contains("startIndex 1 for a request of startIndex 4"),
            "{err}"
        );
        // itemsPerPage 0 before the total.
        let zero = page(json!({"totalResults": 5, "itemsPerPage": 0, "Resources": []}));
        let err = check_paging(&zero, 4, 3, Some(&previous), 3).unwrap_err();
        assert!(
            err.contains("itemsPerPage is 0 with 3 of totalResults 5"),
            "{err}"
        );
        // A total that moves while reading.
        let moved = page(json!({"totalResults": 6, "Resources": users(4, 2)}));
        let err = check_paging(&moved, 4, 3, Some(&previous), 3).unwrap_err();
        assert!(err.contains("totalResults changed from 5 to 6"), "{err}");
    }
}
