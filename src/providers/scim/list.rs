//! A SCIM ListResponse (RFC 7644 §3.4.2) and the checks that a service pages
//! honestly: shared by the SCIM source (reading a directory) and the SCIM provider
//! (listing a service that cannot filter), so both refuse the same dishonest pages.

use serde_json::Value;

/// One ListResponse page.
#[derive(Debug)]
pub struct Page {
    pub total: usize,
    pub resources: Vec<Value>,
    /// `startIndex` as the server gave it, when it did.
    pub start_index: Option<usize>,
    /// `itemsPerPage` as the server gave it, when it did.
    pub items_per_page: Option<usize>,
}

/// Whether a page is what a server that pages honestly sends for `startIndex =
/// start`, `count = count` (RFC 7644 §3.4.2.4), after `read` resources: a server that
/// ignores `startIndex` sends the same page for ever, one that ignores `count` more
/// than was asked, and either can make the list look longer or shorter than it is.
/// `previous` is the page before (its `totalResults` and resources).
pub fn check_paging(
    page: &Page,
    start: usize,
    count: usize,
    previous: Option<&(usize, Vec<Value>)>,
    read: usize,
) -> Result<(), String> {
    let got = page.resources.len();
    if got > count {
        return Err(format!(
            "the page holds {got} resources for count={count}: the server ignores `count` \
             (RFC 7644 says at most that many)"
        ));
    }
    if let Some((total, resources)) = previous {
        if *total != page.total {
            return Err(format!(
                "totalResults changed from {total} to {} while the list was read",
                page.total
            ));
        }
        if got > 0 && *resources == page.resources {
            return Err(format!(
                "the page at startIndex {start} is the same as the one before: the server \
                 ignores `startIndex`"
            ));
        }
    }
    if read + got > page.total {
        return Err(format!(
            "{} resources read so far, more than totalResults ({})",
            read + got,
            page.total
        ));
    }
    if let Some(given) = page.start_index {
        if given != start {
            return Err(format!(
                "the answer says startIndex {given} for a request of startIndex {start}: the \
                 server does not page as asked"
            ));
        }
    }
    if page.items_per_page == Some(0) && read + got < page.total {
        return Err(format!(
            "itemsPerPage is 0 with {} of totalResults {} read",
            read + got,
            page.total
        ));
    }
    Ok(())
}

/// Reads a ListResponse: `totalResults` is required; `Resources` may be absent when
/// there are none.
pub fn parse_page(body: &Value) -> Result<Page, String> {
    if !body.is_object() {
        return Err("the answer is not a SCIM ListResponse (not a JSON object)".into());
    }
    let total = match body.get("totalResults") {
        Some(Value::Number(n)) => n.as_u64().and_then(|n| usize::try_from(n).ok()),
        Some(Value::String(s)) => s.trim().parse().ok(),
        _ => None,
    }
    .ok_or("the ListResponse has no totalResults")?;
    let resources = match body.get("Resources") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(a)) => a.clone(),
        Some(_) => return Err("`Resources` is not an array".into()),
    };
    let number = |key: &str| match body.get(key) {
        Some(Value::Number(n)) => n.as_u64().and_then(|n| usize::try_from(n).ok()),
        Some(Value::String(s)) => s.trim().parse().ok(),
        _ => None,
    };
    Ok(Page {
        total,
        resources,
        start_index: number("startIndex"),
        items_per_page: number("itemsPerPage"),
    })
}

/// The value of the primary entry of a multi-valued attribute (`emails`,
/// `phoneNumbers`), else of the first.
pub fn primary(list: Option<&Value>) -> Option<&Value> {
    let items = list?.as_array()?;
    items
        .iter()
        .find(|e| e.get("primary").and_then(Value::as_bool) == Some(true))
        .or_else(|| items.first())
        .and_then(|e| e.get("value"))
}
