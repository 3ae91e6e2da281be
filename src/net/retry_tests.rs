use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use super::*;
use crate::providers::call::CallError;

fn config(max_attempts: u32, max_wait_seconds: u64) -> RateLimitConfig {
    RateLimitConfig {
        max_attempts,
        max_wait_seconds,
        ..RateLimitConfig::default()
    }
}

fn retry_after(secs: u64) -> RateLimitHeaders {
    RateLimitHeaders {
        retry_after: Some(Duration::from_secs(secs)),
        ..RateLimitHeaders::default()
    }
}

/// A fake vendor answering from a script, remembering when each request arrived.
struct Script {
    start: Instant,
    answers: Mutex<VecDeque<Attempt<&'static str>>>,
    sent_at: Mutex<Vec<Duration>>,
}

impl Script {
    fn new(answers: Vec<Attempt<&'static str>>) -> Self {
        Script {
            start: Instant::now(),
            answers: Mutex::new(answers.into()),
            sent_at: Mutex::new(Vec::new()),
        }
    }

    async fn send(&self) -> Attempt<&'static str> {
        self.sent_at
            .lock()
            .unwrap()
            .push(Instant::now() - self.start);
        self.answers
            .lock()
            .unwrap()
            .pop_front()
            .unwrap_or_else(|| answer(503, RateLimitHeaders::default(), None))
    }

    fn sent_at(&self) -> Vec<Duration> {
        self.sent_at.lock().unwrap().clone()
    }
}

fn answer(status: u16, headers: RateLimitHeaders, message: Option<&str>) -> Attempt<&'static str> {
    Attempt::answered(status, headers, message.map(String::from), "body")
}

fn ok() -> Attempt<&'static str> {
    answer(200, RateLimitHeaders::default(), None)
}

async fn run(cfg: &RateLimitConfig, script: &Script) -> Result<&'static str, Failure> {
    let pacer = Pacer::new(cfg);
    let policy = RetryPolicy::from(cfg).for_vendor("hesh");
    send_with_retry(&pacer, &policy, || script.send()).await
}

#[tokio::test(start_paused = true)]
async fn server_errors_are_retried_with_growing_backoff() {
    let unavailable = || answer(503, RateLimitHeaders::default(), None);
    let script = Script::new(vec![unavailable(), unavailable(), ok()]);
    assert_eq!(run(&config(5, 600), &script).await, Ok("body"));
    let sent = script.sent_at();
    assert_eq!(sent.len(), 3);
    assert!(sent[1] - sent[0] >= Duration::from_millis(200), "{sent:?}");
    assert!(sent[2] - sent[1] >= Duration::from_millis(400), "{sent:?}");
}

#[tokio::test(start_paused = true)]
async fn timeouts_are_retried() {
    let timed_out = Attempt::no_answer(Outcome::Retry {
        status: None,
        reason: "timed out".into(),
        not_before: None,
        maybe_applied: true,
    });
    let script = Script::new(vec![timed_out, ok()]);
    assert_eq!(run(&config(2, 600), &script).await, Ok("body"));
    assert_eq!(script.sent_at().len(), 2);
}

#[tokio::test(start_paused = true)]
async fn throttled_request_waits_for_retry_after_and_is_not_a_failed_attempt() {
    let script = Script::new(vec![answer(429, retry_after(3), None), ok()]);
    // One attempt only: the 429 must not use it up.
    assert_eq!(run(&config(1, 600), &script).await, Ok("body"));
    let sent = script.sent_at();
    assert_eq!(sent.len(), 2);
    assert!(sent[1] >= Duration::from_secs(3), "{sent:?}");
}

#[tokio::test(start_paused = true)]
async fn throttled_without_a_hint_backs_off_and_stops_at_the_wait_cap() {
    // 429 with `Retry-After: 0` forever: must not spin, must end.
    let script = Script::new(
        (0..1000)
            .map(|_| answer(429, retry_after(0), None))
            .collect(),
    );
    let failure = run(&config(5, 60), &script).await.unwrap_err();
    assert!(failure.message.contains("max_wait_seconds"), "{failure}");
    assert_eq!(failure.status, Some(429));
    assert_eq!(failure.attempts, 0);
    assert!(script.sent_at().len() < 30, "{}", script.sent_at().len());
}

#[tokio::test(start_paused = true)]
async fn client_error_fails_at_once_with_the_vendor_message() {
    let script = Script::new(vec![answer(
        422,
        RateLimitHeaders::default(),
        Some("email is invalid"),
    )]);
    let failure = run(&config(5, 600), &script).await.unwrap_err();
    assert_eq!(failure.to_string(), "hesh answered 422: email is invalid");
    assert_eq!(failure.status, Some(422));
    assert_eq!(failure.attempts, 1);
    assert_eq!(script.sent_at().len(), 1);
    let call: CallError = failure.into();
    assert_eq!(call.status, Some(422));
}

#[tokio::test(start_paused = true)]
async fn bad_request_without_a_message_names_the_status() {
    let script = Script::new(vec![answer(400, RateLimitHeaders::default(), None)]);
    let cfg = config(5, 600);
    let failure = send_with_retry(&Pacer::new(&cfg), &RetryPolicy::from(&cfg), || {
        script.send()
    })
    .await
    .unwrap_err();
    assert_eq!(failure.to_string(), "the vendor answered 400: HTTP 400");
}

#[tokio::test(start_paused = true)]
async fn exhausted_attempts_say_how_many() {
    let script = Script::new(Vec::new()); // 503 forever
    let failure = run(&config(5, 600), &script).await.unwrap_err();
    assert_eq!(
        failure.to_string(),
        "hesh: gave up after 5 attempts: HTTP 503"
    );
    assert_eq!(failure.attempts, 5);
    assert_eq!(failure.status, Some(503));
    assert_eq!(script.sent_at().len(), 5);
}

#[tokio::test(start_paused = true)]
async fn retry_after_longer_than_the_backoff_wins() {
    let script = Script::new(vec![answer(503, retry_after(10), None), ok()]);
    assert_eq!(run(&config(3, 600), &script).await, Ok("body"));
    let sent = script.sent_at();
    assert!(sent[1] >= Duration::from_secs(10), "{sent:?}");
}

#[tokio::test(start_paused = true)]
async fn retry_after_shorter_than_the_backoff_loses() {
    let mut cfg = config(3, 600);
    cfg.max_concurrency = 1;
    let pacer = Pacer::new(&cfg);
    let policy = RetryPolicy {
        min_delay: Duration::from_secs(5),
        ..RetryPolicy::from(&cfg)
    };
    let script = Script::new(vec![answer(503, retry_after(1), None), ok()]);
    let result = send_with_retry(&pacer, &policy, || script.send()).await;
    assert_eq!(result, Ok("body"));
    assert!(script.sent_at()[1] >= Duration::from_secs(5));
}

#[tokio::test(start_paused = true)]
async fn server_hint_over_the_wait_cap_fails_instead_of_hanging() {
    let script = Script::new(vec![answer(503, retry_after(86_400), None), ok()]);
    let failure = run(&config(3, 600), &script).await.unwrap_err();
    assert!(failure.message.starts_with("hesh: "), "{failure}");
    assert!(failure.message.contains("max_wait_seconds"), "{failure}");
    assert_eq!(script.sent_at().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn answers_feed_the_pacer() {
    let cfg = config(3, 600);
    let pacer = Pacer::new(&cfg);
    let policy = RetryPolicy::from(&cfg);
    let spent = RateLimitHeaders {
        limit: Some(10),
        remaining: Some(0),
        reset_after: Some(Duration::from_secs(4)),
        retry_after: None,
    };
    let script = Script::new(vec![answer(201, spent, None), ok()]);
    send_with_retry(&pacer, &policy, || script.send())
        .await
        .unwrap();
    // The window is spent: the next request waits for its reset.
    send_with_retry(&pacer, &policy, || script.send())
        .await
        .unwrap();
    assert!(script.sent_at()[1] >= Duration::from_secs(4));
}

#[test]
fn retrying_future_is_send_so_a_transport_can_box_it() {
    fn assert_send<T: Send>(_: &T) {}
    let cfg = config(3, 600);
    let pacer = Pacer::new(&cfg);
    let policy = RetryPolicy::from(&cfg);
    let script = Script::new(vec![ok()]);
    let future = send_with_retry(&pacer, &policy, || script.send());
    assert_send(&future);
}

/// A request sent once (a create the vendor would carry out twice): a 5xx or a
/// timeout ends it as "may have been applied", without a resend; a refused
/// connection and a 429 cannot have been applied, so those are still resent.
#[tokio::test(start_paused = true)]
async fn send_once_is_not_resent_after_it_may_have_been_applied() {
    let cfg = config(5, 600);
    let policy = RetryPolicy {
        resend_maybe_applied: false,
        ..RetryPolicy::from(&cfg).for_vendor("zaia")
    };
    let pacer = Pacer::new(&cfg);
    let no_answer = |reason: &str, maybe_applied: bool| {
        Attempt::no_answer(Outcome::Retry {
            status: None,
            reason: reason.into(),
            not_before: None,
            maybe_applied,
        })
    };

    for maybe in [
        answer(500, RateLimitHeaders::default(), Some("oops")),
        no_answer("timed out", true),
    ] {
        let script = Script::new(vec![maybe, ok()]);
        let failure = send_with_retry(&pacer, &policy, || script.send())
            .await
            .unwrap_err();
        assert!(failure.maybe_applied, "{failure:?}");
        assert!(
            failure.message.contains("not sent again"),
            "{}",
            failure.message
        );
        assert_eq!(script.sent_at().len(), 1);
    }

    let refused = no_answer("could not connect: refused", false);
    let script = Script::new(vec![refused, answer(429, retry_after(1), None), ok()]);
    assert_eq!(
        send_with_retry(&pacer, &policy, || script.send()).await,
        Ok("body")
    );
    assert_eq!(script.sent_at().len(), 3);
}
