use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};

use super::*;

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 3, 1, 12, 0, 0).unwrap()
}

fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        map.insert(
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(value).unwrap(),
        );
    }
    map
}

fn parse(pairs: &[(&str, &str)]) -> RateLimitHeaders {
    RateLimitHeaders::parse(&headers(pairs), now())
}

#[test]
fn success_statuses_are_success() {
    for status in [200, 201, 204, 299] {
        let outcome = classify_response(status, &RateLimitHeaders::default(), None);
        assert_eq!(outcome, Outcome::Success, "status {status}");
    }
}

#[test]
fn too_many_requests_is_retried_after_retry_after() {
    let h = parse(&[("Retry-After", "7"), ("X-RateLimit-Reset", "30")]);
    let outcome = classify_response(429, &h, None);
    assert!(outcome.is_throttled());
    assert_eq!(
        outcome,
        Outcome::Retry {
            status: Some(429),
            reason: "HTTP 429".into(),
            not_before: Some(Duration::from_secs(7)),
            maybe_applied: false,
        }
    );
}

#[test]
fn too_many_requests_without_retry_after_uses_the_window_reset() {
    let h = parse(&[("X-RateLimit-Reset", "12")]);
    match classify_response(429, &h, None) {
        Outcome::Retry { not_before, .. } => assert_eq!(not_before, Some(Duration::from_secs(12))),
        other => panic!("expected a retry, got {other:?}"),
    }
}

#[test]
fn request_timeout_and_server_errors_are_retried() {
    for status in [408, 500, 502, 503, 504, 599] {
        let outcome = classify_response(status, &RateLimitHeaders::default(), None);
        assert!(
            matches!(outcome, Outcome::Retry { status: Some(s), not_before: None, .. } if s == status),
            "status {status}: {outcome:?}"
        );
        assert!(!outcome.is_throttled());
    }
}

#[test]
fn server_error_keeps_its_retry_after_but_not_the_window_reset() {
    let h = parse(&[("Retry-After", "4"), ("X-RateLimit-Reset", "30")]);
    match classify_response(503, &h, Some("down for maintenance".into())) {
        Outcome::Retry {
            reason, not_before, ..
        } => {
            assert_eq!(reason, "HTTP 503: down for maintenance");
            assert_eq!(not_before, Some(Duration::from_secs(4)));
        }
        other => panic!("expected a retry, got {other:?}"),
    }
}

#[test]
fn client_errors_are_not_retried_and_keep_the_vendor_message() {
    let outcome = classify_response(
        422,
        &RateLimitHeaders::default(),
        Some("email is invalid".into()),
    );
    assert_eq!(
        outcome,
        Outcome::DontRetry {
            status: Some(422),
            message: "email is invalid".into(),
            maybe_applied: false,
        }
    );
    for status in [400, 401, 403, 404, 409, 410] {
        let outcome = classify_response(status, &RateLimitHeaders::default(), None);
        assert_eq!(
            outcome,
            Outcome::DontRetry {
                status: Some(status),
                message: format!("HTTP {status}"),
                maybe_applied: false,
            }
        );
    }
}

#[test]
fn blank_or_long_vendor_messages_are_tidied() {
    let blank = classify_response(400, &RateLimitHeaders::default(), Some("  \n ".into()));
    assert_eq!(
        blank,
        Outcome::DontRetry {
            status: Some(400),
            message: "HTTP 400".into(),
            maybe_applied: false,
        }
    );
    let long = "x".repeat(1000);
    match classify_response(400, &RateLimitHeaders::default(), Some(long)) {
        Outcome::DontRetry { message, .. } => assert!(message.chars().count() <= 301),
        other => panic!("expected no retry, got {other:?}"),
    }
}

#[test]
fn rate_limit_counts_are_read_case_insensitively() {
    let h = parse(&[
        ("x-ratelimit-limit", "100"),
        ("X-RATELIMIT-REMAINING", "42"),
    ]);
    assert_eq!(h.limit, Some(100));
    assert_eq!(h.remaining, Some(42));
    assert_eq!(h.reset_after, None);
    assert_eq!(
        parse(&[("X-RateLimit-Limit", "100, 100;w=60")]).limit,
        Some(100)
    );
}

#[test]
fn reset_is_seconds_until_the_window_resets() {
    let h = parse(&[("X-RateLimit-Reset", "30")]);
    assert_eq!(h.reset_after, Some(Duration::from_secs(30)));
}

#[test]
fn reset_above_a_billion_is_an_epoch_timestamp() {
    let at = now().timestamp() + 45;
    let h = parse(&[("X-RateLimit-Reset", &at.to_string())]);
    assert_eq!(h.reset_after, Some(Duration::from_secs(45)));
    let past = now().timestamp() - 10;
    let h = parse(&[("X-RateLimit-Reset", &past.to_string())]);
    assert_eq!(h.reset_after, Some(Duration::ZERO));
}

#[test]
fn retry_after_in_seconds() {
    assert_eq!(
        parse(&[("Retry-After", "120")]).retry_after,
        Some(Duration::from_secs(120))
    );
}

#[test]
fn retry_after_as_an_http_date() {
    let h = parse(&[("Retry-After", "Sat, 01 Mar 2025 12:00:30 GMT")]);
    assert_eq!(h.retry_after, Some(Duration::from_secs(30)));
    let obsolete = parse(&[("Retry-After", "Saturday, 01-Mar-25 12:01:00 GMT")]);
    assert_eq!(obsolete.retry_after, Some(Duration::from_secs(60)));
    let asctime = parse(&[("Retry-After", "Sat Mar  1 12:00:05 2025")]);
    assert_eq!(asctime.retry_after, Some(Duration::from_secs(5)));
}

#[test]
fn retry_after_date_in_the_past_means_now() {
    let h = parse(&[("Retry-After", "Sat, 01 Mar 2025 11:00:00 GMT")]);
    assert_eq!(h.retry_after, Some(Duration::ZERO));
}

#[test]
fn garbage_values_are_ignored() {
    let h = parse(&[
        ("X-RateLimit-Limit", "lots"),
        ("X-RateLimit-Remaining", "-3"),
        ("X-RateLimit-Reset", "soon"),
        ("Retry-After", "tomorrow-ish"),
    ]);
    assert!(h.is_empty(), "{h:?}");
    assert_eq!(parse(&[("Retry-After", "-5")]).retry_after, None);
    assert_eq!(parse(&[("X-RateLimit-Reset", "NaN")]).reset_after, None);
    assert_eq!(parse(&[("Retry-After", "inf")]).retry_after, None);
    assert_eq!(parse(&[("Retry-After", "1e30")]).retry_after, None);
    assert_eq!(parse(&[("X-RateLimit-Reset", "1e30")]).reset_after, None);
}

#[test]
fn builder_errors_are_not_retried() {
    let err = reqwest::Client::new().get("not a url").build().unwrap_err();
    assert!(matches!(
        classify_transport(&err),
        Outcome::DontRetry { status: None, .. }
    ));
}

#[tokio::test]
async fn refused_connections_are_retried_without_naming_the_url() {
    // Bind then drop a listener: the port is (almost certainly) closed now.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let url = format!("http://127.0.0.1:{port}/users?token=secret");
    let err = reqwest::Client::new().get(&url).send().await.unwrap_err();
    match classify_transport(&err) {
        Outcome::Retry {
            status: None,
            reason,
            not_before: None,
            maybe_applied,
        } => {
            assert!(reason.starts_with("could not connect"), "{reason}");
            assert!(!maybe_applied, "a refused connection sent nothing");
            assert!(!reason.contains("secret"), "{reason}");
        }
        other => panic!("expected a retry, got {other:?}"),
    }
}

#[tokio::test]
async fn timeouts_are_retried() {
    // A listener that accepts nothing and never answers.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    let client = reqwest::Client::builder()
        .timeout(Duration::from_millis(50))
        .build()
        .unwrap();
    let err = client.get(&url).send().await.unwrap_err();
    assert!(err.is_timeout());
    match classify_transport(&err) {
        Outcome::Retry { reason, .. } => assert!(reason.starts_with("timed out"), "{reason}"),
        other => panic!("expected a retry, got {other:?}"),
    }
    drop(listener);
}

#[test]
fn whether_the_request_may_have_been_applied_is_part_of_the_answer() {
    let h = RateLimitHeaders::default();
    for (status, maybe) in [
        (500, true),
        (503, true),
        (501, false),
        (405, false),
        (429, false),
        (408, false),
        (400, false),
        (409, false),
        (201, false),
    ] {
        assert_eq!(
            classify_response(status, &h, None).maybe_applied(),
            maybe,
            "{status}"
        );
    }
}

#[test]
fn not_implemented_is_final_not_temporary() {
    let outcome = classify_response(
        501,
        &RateLimitHeaders::default(),
        Some("PATCH not supported".into()),
    );
    assert_eq!(
        outcome,
        Outcome::DontRetry {
            status: Some(501),
            message: "PATCH not supported".into(),
            maybe_applied: false,
        }
    );
}
