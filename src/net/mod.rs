//! The one outbound HTTP policy, and the one request path under every client: the
//! classifier ([`classify`]: each answer is retry / don't retry / success, and whether
//! it may have been applied), the per-endpoint [`pacer`] (concurrency and the server's
//! rate limits) and [`retry::send_with_retry`] tying them together for one call. The
//! vendor transport (`executor::http`) and the HTTP and SCIM sources sit on top, so
//! sources never import the executor.
//!
//! Every reqwest client rosterd has (vendors, the HTTP and SCIM sources, anything
//! later) is built by [`client`], so that what may leave the process is decided here
//! and nowhere else:
//!
//! - **No userinfo** (`user:pass@`) in any URL: [`check_url`] refuses it, and its
//!   message never repeats the URL (it holds a password).
//! - **https for every non-loopback host** (`127.0.0.0/8`, `::1`, `localhost`), unless
//!   the endpoint's config says `allow_insecure_http: true`.
//! - **Redirects only within the endpoint's origin** (scheme, host, port), and only to
//!   a URL that passes the same rules; any other redirect is an error naming both
//!   origins and is never followed, so neither the credentials (headers reqwest does
//!   not know are secret, such as `x-api-key`) nor the body go there. A 307/308 within
//!   the origin keeps its method and body, as RFC 9110 says.
//! - **Loopback never through a proxy**: plain http to loopback is allowed only
//!   because it stays on the machine, so `HTTP_PROXY` and friends are ignored for it;
//!   other hosts use the environment's proxy settings, as reqwest reads them.

pub mod classify;
pub mod deliver;
pub mod pacer;
pub mod retry;

pub use classify::{classify_response, classify_transport, Outcome, RateLimitHeaders};
pub use pacer::{Pacer, PacerError, Permit};
pub use retry::{send_with_retry, Attempt, Failure, RetryPolicy};

use std::net::IpAddr;
use std::time::Duration;

use url::{Host, Url};

/// A body as JSON when it is JSON, as a JSON string when it is not (an HTML error
/// page), and null when empty: a vendor's or a source's odd answer must not fail the
/// parse.
pub fn lenient_json(text: &str) -> serde_json::Value {
    if text.trim().is_empty() {
        return serde_json::Value::Null;
    }
    serde_json::from_str(text)
        .unwrap_or_else(|_| serde_json::Value::String(text.chars().take(500).collect()))
}

/// Most redirects followed for one request (all within the origin).
pub const MAX_REDIRECTS: usize = 10;

/// A configured URL that passed [`check_url`], with the `allow_insecure_http` it was
/// checked under. Every URL-typed key of the config is one of these, so a URL that
/// was not checked cannot reach a client. `"…".parse()` checks strictly (no
/// insecure http).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointUrl {
    url: Url,
    allow_insecure_http: bool,
}

impl EndpointUrl {
    /// Parses and checks `text`; the error never repeats a URL with userinfo.
    pub fn parse(text: &str, allow_insecure_http: bool) -> Result<Self, String> {
        let url = parse_url(text, allow_insecure_http)?;
        Ok(EndpointUrl {
            url,
            allow_insecure_http,
        })
    }

    /// Checks an already parsed URL.
    pub fn new(url: Url, allow_insecure_http: bool) -> Result<Self, UrlProblem> {
        check_url(&url, allow_insecure_http)?;
        Ok(EndpointUrl {
            url,
            allow_insecure_http,
        })
    }

    pub fn url(&self) -> &Url {
        &self.url
    }

    /// Whether plain http to a non-loopback host was allowed for this endpoint.
    pub fn allow_insecure_http(&self) -> bool {
        self.allow_insecure_http
    }

    /// True when this endpoint really is plain http to a non-loopback host (which
    /// only `allow_insecure_http: true` lets through): `check` and the plan say so.
    pub fn is_insecure(&self) -> bool {
        is_insecure(&self.url)
    }
}

impl std::ops::Deref for EndpointUrl {
    type Target = Url;
    fn deref(&self) -> &Url {
        &self.url
    }
}

impl std::fmt::Display for EndpointUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.url.fmt(f)
    }
}

impl std::str::FromStr for EndpointUrl {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        EndpointUrl::parse(s, false)
    }
}

/// What a client is built for: the checked URL it talks to (its origin is the only
/// one redirects may lead to) and the per-request timeout (the connect timeout is at
/// most 10 s of it).
#[derive(Debug, Clone)]
pub struct Endpoint<'a> {
    pub url: &'a EndpointUrl,
    pub timeout: Duration,
}

/// Why a URL may not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlProblem {
    #[error("not an http(s) URL with a host (scheme {scheme})")]
    NotHttp { scheme: String },
    /// Carries nothing of the URL: it holds a credential.
    #[error(
        "credentials in the URL are refused (user:password@ would be printed and logged \
         with it); give them as a secret (${{ENV_VAR}} or *_file) in the auth keys"
    )]
    Userinfo,
    #[error(
        "plain http to {origin} would send credentials and personal data in clear: use \
         https, or set allow_insecure_http: true for this endpoint if the network is trusted"
    )]
    InsecureHttp { origin: String },
}

/// Why a client could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("{0}")]
    Url(#[from] UrlProblem),
    #[error("cannot build the HTTP client: {0}")]
    Build(#[source] reqwest::Error),
}

/// A redirect the policy refused; reqwest reports it as a redirect error whose
/// source is this (so it shows in `classify_transport`'s cause chain).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RedirectRefused {
    #[error(
        "redirect from {from} to another origin {to} refused: credentials and data are \
         sent only to the configured origin"
    )]
    OtherOrigin { from: String, to: String },
    #[error("redirect within {origin} refused: {problem}")]
    Unsafe { origin: String, problem: UrlProblem },
    #[error("more than {MAX_REDIRECTS} redirects within {origin}")]
    TooMany { origin: String },
}

/// True for hosts that never leave the machine: `127.0.0.0/8`, `::1` (and
/// IPv4-mapped loopback), and `localhost`.
pub fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(Host::Ipv4(ip)) => ip.is_loopback(),
        Some(Host::Ipv6(ip)) => {
            ip.is_loopback() || ip.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
        Some(Host::Domain(d)) => {
            let d = d.trim_end_matches('.');
            d.eq_ignore_ascii_case("localhost")
                || d.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
        }
        None => false,
    }
}

/// `scheme://host[:port]` of `url` (the port only when not the scheme's default).
pub fn origin(url: &Url) -> String {
    url.origin().ascii_serialization()
}

/// True when `a` and `b` have the same scheme, host and port.
pub fn same_origin(a: &Url, b: &Url) -> bool {
    a.origin() == b.origin()
}

/// Whether `url` may be used by an endpoint: http(s) with a host, no userinfo, and
/// https unless the host is loopback or `allow_insecure_http` is set.
pub fn check_url(url: &Url, allow_insecure_http: bool) -> Result<(), UrlProblem> {
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(UrlProblem::NotHttp {
            scheme: url.scheme().to_string(),
        });
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(UrlProblem::Userinfo);
    }
    if url.scheme() == "http" && !allow_insecure_http && !is_loopback(url) {
        return Err(UrlProblem::InsecureHttp {
            origin: origin(url),
        });
    }
    Ok(())
}

/// True when `url` is plain http to a non-loopback host (allowed only by
/// `allow_insecure_http`): `check` and the plan say so.
pub fn is_insecure(url: &Url) -> bool {
    url.scheme() == "http" && !is_loopback(url)
}

/// Parses a configured URL and checks it. The error never includes the text when it
/// has userinfo (the password would be printed).
pub fn parse_url(text: &str, allow_insecure_http: bool) -> Result<Url, String> {
    let url = Url::parse(text.trim()).map_err(|e| {
        if text.contains('@') {
            format!("not a valid URL: {e}")
        } else {
            format!("{text:?} is not a valid URL: {e}")
        }
    })?;
    check_url(&url, allow_insecure_http).map_err(|p| p.to_string())?;
    Ok(url)
}

/// Whether a redirect from a request to `endpoint` may go to `to`, after `hops`
/// redirects already followed.
pub fn check_redirect(
    endpoint: &Url,
    to: &Url,
    allow_insecure_http: bool,
    hops: usize,
) -> Result<(), RedirectRefused> {
    if !same_origin(endpoint, to) {
        let mut shown = to.clone();
        // Only the origin is named; userinfo is dropped so it cannot print.
        let _ = shown.set_username("");
        let _ = shown.set_password(None);
        return Err(RedirectRefused::OtherOrigin {
            from: origin(endpoint),
            to: origin(&shown),
        });
    }
    check_url(to, allow_insecure_http).map_err(|problem| RedirectRefused::Unsafe {
        origin: origin(endpoint),
        problem,
    })?;
    if hops >= MAX_REDIRECTS {
        return Err(RedirectRefused::TooMany {
            origin: origin(endpoint),
        });
    }
    Ok(())
}

/// The one way to build an HTTP client: checks the endpoint's URL and installs the
/// redirect policy, the timeouts and the user agent.
pub fn client(endpoint: &Endpoint<'_>) -> Result<reqwest::Client, ClientError> {
    // Checked again: the policy holds even for a URL built without the config.
    check_url(endpoint.url, endpoint.url.allow_insecure_http)?;
    let home = endpoint.url.url.clone();
    let allow = endpoint.url.allow_insecure_http;
    let policy = reqwest::redirect::Policy::custom(move |attempt| {
        match check_redirect(&home, attempt.url(), allow, attempt.previous().len()) {
            Ok(()) => attempt.follow(),
            Err(refused) => attempt.error(refused),
        }
    });
    let mut builder = reqwest::Client::builder();
    if is_loopback(&endpoint.url.url) {
        // Plain http is allowed to loopback only because it never leaves the machine;
        // an `HTTP_PROXY` from the environment would carry it (and its credentials)
        // to the proxy in clear. Other hosts use the environment's proxy, as every
        // tool on the machine does: https goes through it as an opaque tunnel.
        builder = builder.no_proxy();
    }
    builder
        .timeout(endpoint.timeout)
        .connect_timeout(endpoint.timeout.min(Duration::from_secs(10)))
        .user_agent(concat!("rosterd/", env!("CARGO_PKG_VERSION")))
        .redirect(policy)
        .build()
        .map_err(ClientError::Build)
}

/// Reads a response body chunk by chunk, refusing it once it passes `max_bytes`
/// (`Ok(None)`), so that a server answering without end cannot take the process's
/// memory with it.
pub async fn read_capped(
    response: &mut reqwest::Response,
    max_bytes: usize,
) -> Result<Option<Vec<u8>>, reqwest::Error> {
    if response
        .content_length()
        .is_some_and(|n| n > max_bytes as u64)
    {
        return Ok(None);
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        if body.len() + chunk.len() > max_bytes {
            return Ok(None);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Some(body))
}

/// Why an answer [`read_capped`] refused was not read: its status and the limit it
/// passed (e.g. `64 MiB`, or `source.max_page_bytes (64 MiB)`).
pub fn too_large(status: u16, limit: &str) -> String {
    format!("the answer (HTTP {status}) is larger than {limit}: not read")
}

/// `bytes` as "64 MiB" when a whole number of MiB, else as bytes.
pub fn show_bytes(bytes: usize) -> String {
    const MIB: usize = 1024 * 1024;
    if bytes >= MIB && bytes.is_multiple_of(MIB) {
        format!("{} MiB", bytes / MIB)
    } else {
        format!("{bytes} bytes")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    #[test]
    fn loopback_is_127_slash_8_ipv6_one_and_localhost() {
        for s in [
            "http://127.0.0.1:8080/",
            "http://127.0.0.2/",
            "http://127.255.255.254/",
            "http://[::1]:9000/",
            "http://localhost/",
            "http://LOCALHOST:1/",
            "http://[::ffff:127.0.0.1]/",
        ] {
            assert!(is_loopback(&url(s)), "{s}");
            assert_eq!(check_url(&url(s), false), Ok(()), "{s}");
        }
        for s in [
            "http://128.0.0.1/",
            "http://10.0.0.1/",
            "http://[::2]/",
            "http://localhost.example.com/",
            "http://example.com/",
            "http://0.0.0.0/",
        ] {
            assert!(!is_loopback(&url(s)), "{s}");
        }
    }

    #[test]
    fn plain_http_to_another_host_needs_allow_insecure_http() {
        let u = url("http://example.com/api");
        let err = check_url(&u, false).unwrap_err();
        assert!(matches!(err, UrlProblem::InsecureHttp { .. }));
        assert!(err.to_string().contains("allow_insecure_http"), "{err}");
        assert!(err.to_string().contains("http://example.com"), "{err}");
        assert_eq!(check_url(&u, true), Ok(()));
        assert!(is_insecure(&u));
        assert_eq!(check_url(&url("https://example.com/"), false), Ok(()));
        assert!(!is_insecure(&url("https://example.com/")));
        assert!(!is_insecure(&url("http://127.0.0.1:1/")));
    }

    #[test]
    fn userinfo_is_refused_without_repeating_it() {
        for s in [
            "https://user:pw@example.com/",
            "https://user@example.com/",
            "http://u:pw@127.0.0.1:1/",
        ] {
            let err = check_url(&url(s), true).unwrap_err();
            assert_eq!(err, UrlProblem::Userinfo);
            let text = parse_url(s, true).unwrap_err();
            assert!(!text.contains("pw") && !text.contains("user@"), "{text}");
        }
        let bad = parse_url("https://u:pw@exa mple.com/", true).unwrap_err();
        assert!(!bad.contains("pw"), "{bad}");
    }

    #[test]
    fn other_schemes_are_refused() {
        for s in [
            "ftp://example.com/",
            "file:///etc/passwd",
            "data:text/plain,x",
        ] {
            assert!(matches!(
                check_url(&url(s), true),
                Err(UrlProblem::NotHttp { .. })
            ));
        }
    }

    #[test]
    fn redirects_stay_within_scheme_host_and_port() {
        let home = url("http://127.0.0.1:8080/api");
        assert_eq!(
            check_redirect(&home, &url("http://127.0.0.1:8080/other?x=1"), false, 0),
            Ok(())
        );
        for to in [
            "http://127.0.0.1:8081/api",
            "https://127.0.0.1:8080/api",
            "http://127.0.0.2:8080/api",
            "http://localhost:8080/api",
            "http://evil.example/api",
        ] {
            let err = check_redirect(&home, &url(to), false, 0).unwrap_err();
            let text = err.to_string();
            assert!(matches!(err, RedirectRefused::OtherOrigin { .. }), "{to}");
            assert!(text.contains("http://127.0.0.1:8080"), "{text}");
        }
        let https = url("https://api.example.com/v1");
        assert!(check_redirect(&https, &url("https://api.example.com/v2"), false, 0).is_ok());
        let down = check_redirect(&https, &url("http://api.example.com/v1"), false, 0);
        assert!(
            matches!(down, Err(RedirectRefused::OtherOrigin { .. })),
            "{down:?}"
        );
        let default_port = check_redirect(&https, &url("https://api.example.com:443/"), false, 0);
        assert_eq!(default_port, Ok(()));
        let other_port = check_redirect(&https, &url("https://api.example.com:8443/"), false, 0);
        assert!(other_port.is_err());
    }

    #[test]
    fn redirect_targets_follow_the_url_rules_and_the_hop_limit() {
        let home = url("https://api.example.com/");
        let err =
            check_redirect(&home, &url("https://u:pw@api.example.com/x"), false, 0).unwrap_err();
        assert!(matches!(
            err,
            RedirectRefused::Unsafe {
                problem: UrlProblem::Userinfo,
                ..
            }
        ));
        assert!(!err.to_string().contains("pw"));
        let cross = check_redirect(&home, &url("https://u:pw@evil.example/"), false, 0)
            .unwrap_err()
            .to_string();
        assert!(!cross.contains("pw"), "{cross}");
        let insecure = url("http://plain.example/");
        assert!(check_redirect(&insecure, &url("http://plain.example/2"), true, 0).is_ok());
        assert!(matches!(
            check_redirect(&insecure, &url("http://plain.example/2"), false, 0),
            Err(RedirectRefused::Unsafe { .. })
        ));
        assert!(matches!(
            check_redirect(
                &home,
                &url("https://api.example.com/"),
                false,
                MAX_REDIRECTS
            ),
            Err(RedirectRefused::TooMany { .. })
        ));
    }

    #[test]
    fn endpoint_urls_are_checked_and_remember_the_allowance() {
        let strict: Result<EndpointUrl, _> = "http://example.com/".parse();
        assert!(strict.unwrap_err().contains("allow_insecure_http"));
        let allowed = EndpointUrl::parse("http://example.com/", true).unwrap();
        assert!(allowed.is_insecure() && allowed.allow_insecure_http());
        assert!(client(&Endpoint {
            url: &allowed,
            timeout: Duration::from_secs(1),
        })
        .is_ok());
        let local: EndpointUrl = "http://127.0.0.1:9/".parse().unwrap();
        assert!(!local.is_insecure());
        assert_eq!(local.as_str(), "http://127.0.0.1:9/");
    }

    #[test]
    fn bytes_show_in_mib_when_whole() {
        assert_eq!(show_bytes(64 * 1024 * 1024), "64 MiB");
        assert_eq!(show_bytes(1000), "1000 bytes");
    }
}
