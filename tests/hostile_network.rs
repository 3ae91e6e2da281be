//! Hostile network corpus: vendor and source servers on 127.0.0.1 that redirect to
//! another origin, answer without end, or report an endless list; configs with
//! credentials in URLs or plain http to the internet; a FIFO as config file. Each
//! case runs the real binary and checks that nothing reaches the other origin, that
//! the run fails with a message naming the rule, and that no secret is printed.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
// Test code may block and read the real clock: clippy.toml's disallowed-methods
// are for the library.
#![allow(clippy::disallowed_methods)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const TENANT: &str = "0b6f1c4e-2a43-4d8e-9d55-0e1f4c7a9b21";

/// A request as the server saw it: its number, first line and body.
type Seen = (usize, String, Vec<u8>);

/// A one-answer HTTP server on 127.0.0.1: `answer(n)` gives the raw response to the
/// n-th request (0-based); every request is counted.
struct Server {
    port: u16,
    hits: Arc<AtomicUsize>,
    /// Each request's number (as `answer` was given it), first line and body.
    seen: Arc<std::sync::Mutex<Vec<Seen>>>,
}

impl Server {
    fn start(answer: impl Fn(usize) -> Vec<u8> + Send + Sync + 'static) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let hits = Arc::new(AtomicUsize::new(0));
        let counted = hits.clone();
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let recorded = seen.clone();
        let answer = Arc::new(answer);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let answer = answer.clone();
                let recorded = recorded.clone();
                let n = counted.fetch_add(1, Ordering::SeqCst);
                std::thread::spawn(move || {
                    let mut reader = BufReader::new(stream.try_clone().unwrap());
                    let mut length = 0usize;
                    let mut first = String::new();
                    loop {
                        let mut line = String::new();
                        if reader.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        let lower = line.to_ascii_lowercase();
                        if let Some(v) = lower.strip_prefix("content-length:") {
                            length = v.trim().parse().unwrap_or(0);
                        }
                        if line == "\r\n" {
                            break;
                        }
                        if first.is_empty() {
                            first = line.trim_end().to_string();
                        }
                    }
                    let mut body = vec![0; length];
                    let _ = reader.read_exact(&mut body);
                    recorded.lock().unwrap().push((n, first, body));
                    let _ = stream.write_all(&answer(n));
                    let _ = stream.flush();
                });
            }
        });
        Server { port, hits, seen }
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

fn redirect_to(status: &'static str, location: String) -> impl Fn(usize) -> Vec<u8> {
    move |_| {
        format!(
            "HTTP/1.1 {status}\r\nLocation: {location}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        )
        .into_bytes()
    }
}

fn json_answer(body: String) -> Vec<u8> {
    format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

const CSV: &str =
    "id,email,first,last\nEMP001,ada@corp.example,Ada,Lovelace\nEMP002,bob@corp.example,Bob,Stone\n";
const CSV_SOURCE: &str = "source:\n  type: csv\n  path: users.csv\n  fields: { external_id: id, email: email, first_name: first, last_name: last }\n";

/// The provider entry of each vendor type at `base_url` (secrets from files).
fn provider(kind: &str, base_url: &str, extra: &str) -> String {
    let keys = match kind {
        "hesh" => format!("    api_key_file: key.txt\n    tenant_id: {TENANT}\n"),
        "saleschat" => "    token_file: key.txt\n    org_id: org-1\n".to_string(),
        "vyte" => "    api_key_file: key.txt\n".to_string(),
        "zaia" => {
            "    api_key_file: key.txt\n    channel_id: 8d1c2b3a-4e5f-4a6b-8c7d-9e0f1a2b3c4d\n"
                .to_string()
        }
        "scim" => "    bearer_token_file: key.txt\n".to_string(),
        other => panic!("{other}"),
    };
    format!("  - name: target\n    type: {kind}\n    base_url: {base_url}\n{keys}{extra}    rate_limit: {{ max_attempts: 1 }}\n")
}

fn workspace(source: &str, providers: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("users.csv"), CSV).unwrap();
    std::fs::write(dir.path().join("key.txt"), "sekrit-key-value\n").unwrap();
    let yaml = format!("state: state.db\n{source}providers:\n{providers}");
    std::fs::write(dir.path().join("rosterd.yaml"), yaml).unwrap();
    dir
}

/// Runs the binary with a deadline, so that a blocking case fails instead of hanging.
fn rosterd(dir: &Path, config: &Path, args: &[&str]) -> (Output, Duration) {
    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_rosterd"))
        .current_dir(dir)
        .arg("-c")
        .arg(config)
        .args(args)
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if started.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            panic!("rosterd {args:?} did not finish within 60 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    (child.wait_with_output().unwrap(), started.elapsed())
}

fn run(dir: &tempfile::TempDir, args: &[&str]) -> (i32, String) {
    let (out, _) = rosterd(dir.path(), &dir.path().join("rosterd.yaml"), args);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !text.contains("sekrit-key-value"),
        "a secret was printed: {text}"
    );
    (out.status.code().unwrap_or(-1), text)
}

#[test]
fn a_vendor_redirect_to_another_origin_is_never_followed() {
    for kind in ["hesh", "saleschat", "vyte", "zaia", "scim"] {
        for status in ["307 Temporary Redirect", "302 Found"] {
            let other = Server::start(|_| json_answer("{}".into()));
            let redirector = Server::start(redirect_to(status, other.url("/steal")));
            let dir = workspace(CSV_SOURCE, &provider(kind, &redirector.url("/"), ""));
            let (code, text) = run(&dir, &["sync"]);
            assert_eq!(
                other.hits(),
                0,
                "{kind} {status}: the other origin was reached"
            );
            assert!(
                redirector.hits() > 0,
                "{kind}: nothing was sent at all: {text}"
            );
            assert!(
                code == 1 || code == 2,
                "{kind} {status}: exit {code}: {text}"
            );
            assert!(text.contains("another origin"), "{kind} {status}: {text}");
            assert!(
                text.contains(&format!("127.0.0.1:{}", other.port)),
                "{kind}: the target origin is named: {text}"
            );
        }
    }
}

/// The snapshot rows rosterd holds for the provider `target`.
fn snapshot(dir: &tempfile::TempDir) -> Vec<rosterd::store::SnapshotRow> {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let Some(store) = rosterd::store::Store::open_read_only(&dir.path().join("state.db"))
            .await
            .unwrap()
        else {
            return Vec::new();
        };
        let rows = store.snapshot("target").await.unwrap();
        store.close().await;
        rows
    })
}

/// What a refused redirect leaves behind: nothing recorded as applied (no account in
/// the snapshot as active), and the same operations sent again — to the vendor's own
/// origin only — on the next pass.
#[test]
fn a_refused_redirect_records_nothing_as_applied_and_is_retried_next_pass() {
    for kind in ["hesh", "saleschat", "vyte", "zaia", "scim"] {
        let other = Server::start(|_| json_answer("{}".into()));
        let redirector = Server::start(redirect_to("307 Temporary Redirect", other.url("/steal")));
        let dir = workspace(CSV_SOURCE, &provider(kind, &redirector.url("/"), ""));
        let (code, text) = run(&dir, &["sync"]);
        assert!(code == 1 || code == 2, "{kind}: exit {code}: {text}");
        let active: Vec<_> = snapshot(&dir)
            .into_iter()
            .filter(|r| r.state == rosterd::store::AccountState::Active)
            .map(|r| r.external_id)
            .collect();
        assert!(active.is_empty(), "{kind}: recorded as applied: {active:?}");
        let first = redirector.hits();
        let (code, text) = run(&dir, &["sync"]);
        assert!(code == 1 || code == 2, "{kind}: exit {code}: {text}");
        assert!(
            redirector.hits() > first,
            "{kind}: the failed operations were not sent again: {text}"
        );
        assert_eq!(other.hits(), 0, "{kind}: the other origin was reached");
    }
}

/// A 307 within the vendor's own origin is followed with its method and body, as
/// RFC 9110 says: the second request carries exactly the bytes of the first.
#[test]
fn a_same_origin_307_is_followed_with_its_body() {
    // The vendors whose first request carries a body (the others look up first).
    for kind in ["hesh", "saleschat"] {
        let moved: Arc<std::sync::Mutex<String>> = Arc::default();
        let target = moved.clone();
        let server = Server::start(move |n| {
            if n == 0 {
                let location = target.lock().unwrap().clone();
                redirect_to("307 Temporary Redirect", location)(n)
            } else {
                b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                    .to_vec()
            }
        });
        *moved.lock().unwrap() = server.url("/moved/here");
        let dir = workspace(CSV_SOURCE, &provider(kind, &server.url("/"), ""));
        let _ = run(&dir, &["sync"]);
        let seen = server.seen();
        let (_, first_line, first_body) = seen.iter().find(|(n, _, _)| *n == 0).unwrap();
        let (_, second_line, second_body) = seen
            .iter()
            .find(|(_, line, _)| line.contains("/moved/here"))
            .unwrap_or_else(|| panic!("{kind}: the redirect was not followed: {seen:?}"));
        assert!(!first_body.is_empty(), "{kind}: {first_line}");
        let method = |line: &str| line.split(' ').next().unwrap_or("").to_string();
        assert_eq!(method(first_line), method(second_line), "{kind}");
        assert_eq!(first_body, second_body, "{kind}: the body changed");
    }
}

/// Plain http is allowed to loopback because it never leaves the machine: a proxy
/// from the environment must not carry it (and its credentials) elsewhere.
#[test]
fn loopback_endpoints_never_go_through_an_environment_proxy() {
    let proxy = Server::start(|_| json_answer("{}".into()));
    let vendor = Server::start(|_| json_answer("{}".into()));
    let dir = workspace(CSV_SOURCE, &provider("hesh", &vendor.url("/"), ""));
    let out = Command::new(env!("CARGO_BIN_EXE_rosterd"))
        .current_dir(dir.path())
        .args(["-c", "rosterd.yaml", "sync"])
        .env_remove("RUST_LOG")
        .env_remove("NO_PROXY")
        .env_remove("no_proxy")
        .env("HTTP_PROXY", proxy.url(""))
        .env("http_proxy", proxy.url(""))
        .env("ALL_PROXY", proxy.url(""))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stderr);
    assert_eq!(proxy.hits(), 0, "the proxy was used: {text}");
    assert!(vendor.hits() > 0, "nothing reached the vendor: {text}");
}

#[test]
fn a_source_redirect_to_another_origin_fails_the_pass() {
    for source_kind in ["http", "scim"] {
        let other = Server::start(|_| json_answer("[]".into()));
        let redirector = Server::start(redirect_to("307 Temporary Redirect", other.url("/x")));
        let vendor = Server::start(|_| json_answer("{}".into()));
        let source = format!(
            "source:\n  type: {source_kind}\n  url: {}\n",
            redirector.url("/users")
        );
        let dir = workspace(&source, &provider("vyte", &vendor.url("/"), ""));
        let (code, text) = run(&dir, &["sync"]);
        assert_eq!(code, 1, "{source_kind}: {text}");
        assert_eq!(
            other.hits(),
            0,
            "{source_kind}: the other origin was reached"
        );
        assert_eq!(vendor.hits(), 0, "{source_kind}: the vendor was written to");
        assert!(text.contains("another origin"), "{source_kind}: {text}");
    }
}

#[test]
fn credentials_in_urls_are_refused_without_printing_them() {
    let bad_provider = workspace(
        CSV_SOURCE,
        &provider("vyte", "https://user:pw-in-url@api.vyte.example/", ""),
    );
    let (code, text) = run(&bad_provider, &["check"]);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("providers[0].base_url"), "{text}");
    assert!(text.contains("credentials in the URL"), "{text}");
    assert!(!text.contains("pw-in-url"), "{text}");
    for kind in ["http", "scim"] {
        let source =
            format!("source:\n  type: {kind}\n  url: https://me:pw-in-url@hr.example/api\n");
        let dir = workspace(&source, &provider("vyte", "https://api.vyte.example/", ""));
        let (code, text) = run(&dir, &["check"]);
        assert_eq!(code, 1, "{text}");
        assert!(text.contains("source.url"), "{text}");
        assert!(!text.contains("pw-in-url"), "{text}");
    }
}

#[test]
fn plain_http_to_the_internet_needs_allow_insecure_http_and_is_then_reported() {
    let refused = workspace(CSV_SOURCE, &provider("vyte", "http://example.com/", ""));
    let (code, text) = run(&refused, &["check"]);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("providers[0].base_url"), "{text}");
    assert!(text.contains("allow_insecure_http"), "{text}");
    let allowed = workspace(
        CSV_SOURCE,
        &provider(
            "vyte",
            "http://example.com/",
            "    allow_insecure_http: true\n",
        ),
    );
    let (code, text) = run(&allowed, &["check"]);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("insecure http"), "{text}");
    let (code, json) = run(&allowed, &["check", "--format", "json"]);
    assert_eq!(code, 0, "{json}");
    let doc: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(doc["providers"][0]["insecure_http"], true, "{json}");
    // The plan says so too (a dry run of a first pass sends nothing; `.invalid`
    // cannot resolve, so nothing could be sent anyway).
    let dry = workspace(
        CSV_SOURCE,
        &provider(
            "vyte",
            "http://vyte.invalid/",
            "    allow_insecure_http: true\n",
        ),
    );
    let (code, text) = run(&dry, &["sync", "--dry-run"]);
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains("insecure http: providers[0].base_url (target) is http://vyte.invalid"),
        "{text}"
    );
    let (code, json) = run(&dry, &["sync", "--dry-run", "--format", "json"]);
    assert_eq!(code, 0, "{json}");
    assert!(json.contains("\"insecure_http\""), "{json}");
    let source = "source:\n  type: http\n  url: http://hr.example/api\n";
    let dir = workspace(source, &provider("vyte", "https://api.vyte.example/", ""));
    let (code, text) = run(&dir, &["check"]);
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("source.url") && text.contains("allow_insecure_http"),
        "{text}"
    );
}

#[test]
fn an_endless_scim_list_stops_at_a_cap() {
    // A total beyond max_users fails at the first page.
    let huge = Server::start(|_| {
        json_answer(r#"{"totalResults": 999999999999, "Resources": [{"id": "x", "userName": "a@b.example"}]}"#.into())
    });
    let source = format!("source:\n  type: scim\n  url: {}\n", huge.url("/scim"));
    let dir = workspace(&source, &provider("vyte", "https://api.vyte.example/", ""));
    let (code, text) = run(&dir, &["sync", "--dry-run"]);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("source.max_users"), "{text}");
    // A total under it, one user per page for ever: max_pages stops it.
    let endless = Server::start(|n| {
        json_answer(format!(
            r#"{{"totalResults": 900000, "Resources": [{{"id": "u{n}", "userName": "u{n}@b.example", "externalId": "E{n}"}}]}}"#
        ))
    });
    let source = format!(
        "source:\n  type: scim\n  url: {}\n  max_pages: 50\n",
        endless.url("/scim")
    );
    let dir = workspace(&source, &provider("vyte", "https://api.vyte.example/", ""));
    let (code, text) = run(&dir, &["sync", "--dry-run"]);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("source.max_pages (50)"), "{text}");
    assert!(endless.hits() <= 51, "{} pages read", endless.hits());
}

/// A SCIM source server that ignores `startIndex` (the same page for ever) or
/// `count` (49 resources for count=3) fails the pass naming what it does, before a
/// duplicate-id rejection or a guard would have to catch it — and nobody is written.
#[test]
fn a_scim_source_that_pages_dishonestly_fails_the_pass_naming_the_cause() {
    // The same answer to every request: `users` users, and `total` as the total.
    let list = |users: usize, total: usize| {
        let resources: Vec<String> = (0..users)
            .map(|i| {
                format!(r#"{{"id": "u{i}", "userName": "u{i}@b.example", "externalId": "E{i}"}}"#)
            })
            .collect();
        let body = format!(
            r#"{{"totalResults": {total}, "Resources": [{}]}}"#,
            resources.join(",")
        );
        Server::start(move |_| json_answer(body.clone()))
    };
    let same_page = list(3, 250);
    let flood = list(49, 49);
    for (server, cause) in [
        (&same_page, "ignores `startIndex`"),
        (&flood, "49 resources for count=3"),
    ] {
        let vendor = Server::start(|_| json_answer("{}".into()));
        let source = format!(
            "source:\n  type: scim\n  url: {}\n  page_size: 3\n",
            server.url("/scim")
        );
        let dir = workspace(&source, &provider("vyte", &vendor.url("/"), ""));
        let (code, text) = run(&dir, &["sync"]);
        assert_eq!(code, 1, "{text}");
        assert!(
            text.contains(cause) && text.contains("nobody is disabled"),
            "{text}"
        );
        assert_eq!(vendor.hits(), 0, "the vendor was written to: {text}");
    }
}

#[test]
fn a_huge_source_page_is_refused_naming_the_limit() {
    // Announced by Content-Length.
    let announced = Server::start(|_| {
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 104857600\r\nConnection: close\r\n\r\n[".to_vec()
    });
    // Streamed without a length, 100 MB of one JSON array.
    let streamed = Server::start(|_| {
        let mut out =
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n["
                .to_vec();
        out.extend(std::iter::repeat_n(b' ', 100 * 1024 * 1024));
        out
    });
    for (server, extra) in [(&announced, ""), (&streamed, "  max_page_bytes: 1048576\n")] {
        for kind in ["http", "scim"] {
            let source = format!(
                "source:\n  type: {kind}\n  url: {}\n{extra}",
                server.url("/users")
            );
            let dir = workspace(&source, &provider("vyte", "https://api.vyte.example/", ""));
            let (code, text) = run(&dir, &["sync", "--dry-run"]);
            assert_eq!(code, 1, "{text}");
            assert!(text.contains("source.max_page_bytes"), "{text}");
        }
    }
}

#[test]
#[cfg(unix)]
fn a_fifo_or_huge_config_file_is_refused_quickly() {
    let dir = workspace(
        CSV_SOURCE,
        &provider("vyte", "https://api.vyte.example/", ""),
    );
    let fifo = dir.path().join("fifo.yaml");
    let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    let (out, took) = rosterd(dir.path(), &fifo, &["check"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("not a regular file"), "{stderr}");
    assert!(took < Duration::from_secs(10));
    let big = dir.path().join("big.yaml");
    std::fs::write(&big, vec![b'#'; 2 * 1024 * 1024]).unwrap();
    let (out, _) = rosterd(dir.path(), &big, &["check"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("1 MiB"), "{stderr}");
}
