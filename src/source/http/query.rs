//! URLs of pages: setting the paging parameters, and showing a URL in a message
//! without what it may carry that is secret.

use url::Url;

/// Query parameter names whose values are hidden in messages: a server's next link
/// (or a configured URL) may carry a signed token there.
const SECRET_PARAMS: &[&str] = &[
    "access_token",
    "api_key",
    "apikey",
    "auth",
    "code",
    "key",
    "password",
    "secret",
    "sig",
    "signature",
    "token",
];

/// `url` with each `(name, value)` set: earlier values of the same names are
/// removed, every other parameter is kept in order.
pub fn with_params(url: &Url, params: &[(&str, String)]) -> Url {
    let kept: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(k, _)| !params.iter().any(|(name, _)| k == name))
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let mut out = url.clone();
    out.set_query(None);
    if kept.is_empty() && params.is_empty() {
        return out;
    }
    {
        let mut pairs = out.query_pairs_mut();
        for (k, v) in &kept {
            pairs.append_pair(k, v);
        }
        for (k, v) in params {
            pairs.append_pair(k, v);
        }
    }
    out
}

/// `url` for messages and logs: userinfo and the values of secret-looking query
/// parameters replaced by `***`.
pub fn redact(url: &Url) -> String {
    let mut out = url.clone();
    if !out.username().is_empty() || out.password().is_some() {
        // Cannot fail on an http(s) URL with a host, which every page URL is.
        let _ = out.set_username("***");
        let _ = out.set_password(None);
    }
    if out.query().is_some() {
        let pairs: Vec<(String, String)> = url
            .query_pairs()
            .map(|(k, v)| {
                let secret = SECRET_PARAMS
                    .iter()
                    .any(|s| k.to_ascii_lowercase().contains(s));
                let v = if secret { "***".into() } else { v.into_owned() };
                (k.into_owned(), v)
            })
            .collect();
        out.set_query(None);
        let mut q = out.query_pairs_mut();
        for (k, v) in &pairs {
            q.append_pair(k, v);
        }
    }
    // `append_pair` escapes `*`; keep the placeholder readable.
    out.as_str().replace("%2A%2A%2A", "***")
}

/// Whether `a` and `b` are the same origin (scheme, host, port): credentials are
/// only ever sent to the origin of the configured URL.
pub fn same_origin(a: &Url, b: &Url) -> bool {
    a.origin() == b.origin()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    #[test]
    fn params_replace_earlier_values_and_keep_the_rest() {
        let u = url("https://hr.example/users?active=true&page=9");
        let next = with_params(&u, &[("page", "2".into()), ("per_page", "50".into())]);
        assert_eq!(
            next.as_str(),
            "https://hr.example/users?active=true&page=2&per_page=50"
        );
    }

    #[test]
    fn param_values_are_escaped() {
        let u = url("https://hr.example/users");
        let next = with_params(&u, &[("cursor", "a b&c=d".into())]);
        assert_eq!(next.as_str(), "https://hr.example/users?cursor=a+b%26c%3Dd");
        assert_eq!(
            next.query_pairs().next().unwrap().1,
            "a b&c=d",
            "the server reads the cursor back as sent"
        );
    }

    #[test]
    fn redact_hides_userinfo_and_token_parameters() {
        let u = url("https://bob:pw@hr.example/u?page=2&access_token=abc&X-Sig=zzz");
        let shown = redact(&u);
        assert!(!shown.contains("pw") && !shown.contains("abc") && !shown.contains("zzz"));
        assert_eq!(
            shown,
            "https://***@hr.example/u?page=2&access_token=***&X-Sig=***"
        );
        assert_eq!(
            redact(&url("https://hr.example/u?page=2")),
            "https://hr.example/u?page=2"
        );
    }

    #[test]
    fn origins_compare_scheme_host_and_port() {
        let a = url("https://hr.example/users");
        assert!(same_origin(&a, &url("https://hr.example/other?page=2")));
        assert!(!same_origin(&a, &url("http://hr.example/users")));
        assert!(!same_origin(&a, &url("https://evil.example/users")));
        assert!(!same_origin(&a, &url("https://hr.example:8443/users")));
    }
}
