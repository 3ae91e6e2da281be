use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use super::*;

fn config(max_concurrency: usize, rps: Option<f64>, max_wait_seconds: u64) -> RateLimitConfig {
    RateLimitConfig {
        max_concurrency,
        requests_per_second: rps,
        max_wait_seconds,
        ..RateLimitConfig::default()
    }
}

fn window(limit: u64, remaining: u64, reset_after: Duration) -> RateLimitHeaders {
    RateLimitHeaders {
        limit: Some(limit),
        remaining: Some(remaining),
        reset_after: Some(reset_after),
        retry_after: None,
    }
}

/// A vendor allowing `limit` requests per fixed window of `period`, counting each
/// request when it arrives and answering after `latency` with the real headers.
struct FakeVendor {
    start: Instant,
    limit: u64,
    period: Duration,
    latency: Duration,
    /// Requests counted per window index.
    counts: Mutex<Vec<u64>>,
    /// Tells the reset in whole seconds, rounded up (as hesh and saleschat do).
    whole_seconds: bool,
}

impl FakeVendor {
    fn new(limit: u64, period: Duration, latency: Duration) -> Self {
        FakeVendor {
            start: Instant::now(),
            limit,
            period,
            latency,
            counts: Mutex::new(Vec::new()),
            whole_seconds: false,
        }
    }

    fn whole_seconds(mut self) -> Self {
        self.whole_seconds = true;
        self
    }

    async fn call(&self) -> RateLimitHeaders {
        let since = Instant::now() - self.start;
        let index = (since.as_nanos() / self.period.as_nanos()) as usize;
        let used = {
            let mut counts = self.counts.lock().unwrap();
            if counts.len() <= index {
                counts.resize(index + 1, 0);
            }
            counts[index] += 1;
            counts[index]
        };
        let mut reset_after = self.period * (index as u32 + 1) - since;
        if self.whole_seconds {
            reset_after =
                Duration::from_secs(reset_after.as_nanos().div_ceil(1_000_000_000) as u64);
        }
        tokio::time::sleep(self.latency).await;
        window(
            self.limit,
            self.limit.saturating_sub(used),
            reset_after.max(Duration::ZERO),
        )
    }

    fn max_per_window(&self) -> u64 {
        self.counts
            .lock()
            .unwrap()
            .iter()
            .copied()
            .max()
            .unwrap_or(0)
    }
}

#[tokio::test(start_paused = true)]
async fn spent_window_holds_requests_until_the_reset() {
    let pacer = Arc::new(Pacer::new(&config(16, None, 600)));
    let vendor = Arc::new(FakeVendor::new(
        5,
        Duration::from_secs(1),
        Duration::from_millis(50),
    ));
    pacer.observe(&window(5, 5, Duration::from_secs(1)));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..12 {
        let (pacer, vendor) = (pacer.clone(), vendor.clone());
        tasks.push(tokio::spawn(async move {
            let permit = pacer.acquire().await.unwrap();
            let sent = Instant::now() - start;
            let headers = vendor.call().await;
            permit.complete(&headers);
            sent
        }));
    }
    let mut sent = Vec::new();
    for task in tasks {
        sent.push(task.await.unwrap());
    }
    sent.sort();
    assert!(sent[..5].iter().all(|t| *t == Duration::ZERO), "{sent:?}");
    assert!(sent[5] >= Duration::from_secs(1), "{sent:?}");
    assert!(sent[10] >= Duration::from_secs(2), "{sent:?}");
    assert_eq!(
        vendor.max_per_window(),
        5,
        "the vendor would have refused some"
    );
    // Two resets waited for (less the answer round-trips, which are not limit waits).
    assert!(
        pacer.waited() >= Duration::from_millis(1500),
        "{:?}",
        pacer.waited()
    );
}

/// A vendor telling its 1 s window's reset as "1" until the window ends: the pacer
/// keeps the earliest end the window's answers allow, instead of waiting a whole
/// second from the last answer, and still is never refused.
#[tokio::test(start_paused = true)]
async fn whole_second_resets_are_narrowed_to_the_window_end() {
    let pacer = Pacer::new(&config(1, None, 600));
    let vendor =
        FakeVendor::new(10, Duration::from_secs(1), Duration::from_millis(20)).whole_seconds();
    let start = Instant::now();
    for _ in 0..50 {
        let permit = pacer.acquire().await.unwrap();
        let headers = vendor.call().await;
        permit.complete(&headers);
    }
    let elapsed = Instant::now() - start;
    assert_eq!(
        vendor.max_per_window(),
        10,
        "the vendor would have refused some"
    );
    // Five windows of 1 s; each wait ends at most the 100 ms jitter after the true
    // reset (waiting a full second from each window's last answer would take 5.8 s).
    assert!(elapsed < Duration::from_millis(4700), "{elapsed:?}");
    assert!(elapsed >= Duration::from_secs(4), "{elapsed:?}");
}

/// A reset that moves a second or more later within the same count is followed, not
/// held to the earlier one: the pacer only narrows what rounding can explain.
#[tokio::test(start_paused = true)]
async fn a_reset_moving_later_is_followed() {
    let pacer = Pacer::new(&config(1, None, 600));
    let start = Instant::now();
    pacer
        .acquire()
        .await
        .unwrap()
        .complete(&window(10, 1, Duration::from_secs(1)));
    pacer
        .acquire()
        .await
        .unwrap()
        .complete(&window(10, 0, Duration::from_secs(5)));
    let _next = pacer.acquire().await.unwrap();
    let waited = Instant::now() - start;
    assert!(waited >= Duration::from_secs(5), "{waited:?}");
}

#[tokio::test(start_paused = true)]
async fn requests_answered_without_headers_still_count_against_the_window() {
    let pacer = Pacer::new(&config(4, None, 600));
    pacer.observe(&window(10, 2, Duration::from_secs(5)));
    let start = Instant::now();
    for _ in 0..2 {
        drop(pacer.acquire().await.unwrap()); // e.g. timed out: the server may have counted it
    }
    assert_eq!(Instant::now(), start);
    let _third = pacer.acquire().await.unwrap();
    assert!(Instant::now() - start >= Duration::from_secs(5));
}

#[tokio::test(start_paused = true)]
async fn stale_answers_do_not_restore_spent_budget() {
    let pacer = Pacer::new(&config(4, None, 600));
    let start = Instant::now();
    let older = pacer.acquire().await.unwrap();
    let newer = pacer.acquire().await.unwrap();
    // The newer request's answer arrives first and says the window is spent…
    newer.complete(&window(2, 0, Duration::from_secs(3)));
    // …then the older one's, written before the newer request was counted.
    older.complete(&window(2, 1, Duration::from_secs(3)));
    let _next = pacer.acquire().await.unwrap();
    assert!(Instant::now() - start >= Duration::from_secs(3));
}

#[tokio::test(start_paused = true)]
async fn budget_left_is_spent_at_full_speed() {
    let pacer = Pacer::new(&config(4, None, 600));
    pacer.observe(&window(100, 100, Duration::from_secs(60)));
    let start = Instant::now();
    for remaining in (50..100).rev() {
        let permit = pacer.acquire().await.unwrap();
        permit.complete(&window(100, remaining, Duration::from_secs(60)));
    }
    assert_eq!(Instant::now(), start);
    assert_eq!(pacer.waited(), Duration::ZERO);
}

#[tokio::test(start_paused = true)]
async fn requests_per_second_spaces_requests() {
    let pacer = Pacer::new(&config(4, Some(10.0), 600));
    let start = Instant::now();
    let mut sent = Vec::new();
    for _ in 0..5 {
        let permit = pacer.acquire().await.unwrap();
        sent.push(Instant::now() - start);
        drop(permit);
    }
    assert!(sent[4] >= Duration::from_millis(400), "{sent:?}");
    for pair in sent.windows(2) {
        assert!(pair[1] - pair[0] >= Duration::from_millis(100), "{sent:?}");
    }
    // Spacing is ours, not the vendor's: it is not a rate-limit wait.
    assert_eq!(pacer.waited(), Duration::ZERO);
}

#[tokio::test(start_paused = true)]
async fn throttled_pauses_every_acquirer() {
    let pacer = Arc::new(Pacer::new(&config(8, None, 600)));
    let start = Instant::now();
    pacer.on_throttled(Duration::from_secs(2));
    let mut tasks = Vec::new();
    for _ in 0..5 {
        let pacer = pacer.clone();
        tasks.push(tokio::spawn(async move {
            let _permit = pacer.acquire().await.unwrap();
            Instant::now() - start
        }));
    }
    for task in tasks {
        let at = task.await.unwrap();
        assert!(at >= Duration::from_secs(2), "{at:?}");
        assert!(at <= Duration::from_secs(2) + MAX_JITTER, "{at:?}");
    }
    // Five tasks waited together: counted once.
    let waited = pacer.waited();
    assert!(waited >= Duration::from_secs(2) && waited <= Duration::from_secs(2) + MAX_JITTER);
}

#[tokio::test(start_paused = true)]
async fn wait_over_the_cap_fails() {
    let pacer = Pacer::new(&config(4, None, 3));
    pacer.on_throttled(Duration::from_secs(2));
    drop(pacer.acquire().await.unwrap());
    pacer.on_throttled(Duration::from_secs(2));
    let err = pacer.acquire().await.err().unwrap();
    match &err {
        PacerError::WaitCapExceeded { waited, cap } => {
            assert!(*waited >= Duration::from_secs(2));
            assert_eq!(*cap, Duration::from_secs(3));
        }
        other => panic!("expected the cap, got {other:?}"),
    }
    assert!(err.to_string().contains("max_wait_seconds"), "{err}");
}

#[tokio::test(start_paused = true)]
async fn hint_waits_count_towards_the_cap() {
    let pacer = Pacer::new(&config(4, None, 10));
    pacer.count_hint(Duration::from_secs(8)).unwrap();
    assert_eq!(pacer.waited(), Duration::from_secs(8));
    assert!(pacer.count_hint(Duration::from_secs(20)).is_err());
}

#[tokio::test(start_paused = true)]
async fn concurrency_never_exceeds_the_limit() {
    let pacer = Arc::new(Pacer::new(&config(3, None, 600)));
    let current = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let (pacer, current, peak) = (pacer.clone(), current.clone(), peak.clone());
        tasks.push(tokio::spawn(async move {
            let permit = pacer.acquire().await.unwrap();
            let now = current.fetch_add(1, Ordering::SeqCst) + 1;
            peak.fetch_max(now, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(10)).await;
            current.fetch_sub(1, Ordering::SeqCst);
            drop(permit);
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(peak.load(Ordering::SeqCst), 3);
}

#[tokio::test(start_paused = true)]
async fn closed_pacer_refuses_new_requests() {
    let pacer = Pacer::new(&config(1, None, 600));
    pacer.close();
    assert_eq!(pacer.acquire().await.err(), Some(PacerError::Closed));
}

#[tokio::test(start_paused = true)]
async fn absurd_hints_fail_on_the_cap_instead_of_overflowing() {
    let pacer = Pacer::new(&config(4, None, 600));
    pacer.on_throttled(Duration::MAX);
    pacer.observe(&window(5, 0, Duration::from_secs(u64::MAX)));
    assert!(matches!(
        pacer.acquire().await.err(),
        Some(PacerError::WaitCapExceeded { .. })
    ));
    assert!(pacer.count_hint(Duration::MAX).is_err());
}

fn saved(limit: u64, remaining: u64, reset_in: Duration) -> WindowView {
    WindowView {
        limit: Some(limit),
        remaining,
        reset_in,
    }
}

/// A window an earlier process spent: the new pacer sends nothing until its reset,
/// and then no more than the limit before an answer tells the new window.
#[tokio::test(start_paused = true)]
async fn a_seeded_spent_window_holds_the_first_request_until_its_reset() {
    let pacer = Pacer::new(&config(8, None, 600));
    pacer.seed(saved(5, 0, Duration::from_secs(7)));
    let start = Instant::now();
    let first = pacer.acquire().await.unwrap();
    let waited = Instant::now() - start;
    assert!(waited >= Duration::from_secs(7), "{waited:?}");
    assert!(waited <= Duration::from_secs(7) + MAX_JITTER, "{waited:?}");
    // The wait for a saved window is a rate-limit wait like any other.
    assert!(pacer.waited() >= Duration::from_secs(7));
    drop(first);
}

/// A saved window with budget left: that many go at once, the next waits for the
/// reset (the vendor counts every one of them in the same window).
#[tokio::test(start_paused = true)]
async fn a_seeded_window_allows_only_its_remaining_requests_before_the_reset() {
    let pacer = Arc::new(Pacer::new(&config(16, None, 600)));
    pacer.seed(saved(5, 2, Duration::from_secs(3)));
    let start = Instant::now();
    let sent = Arc::new(Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let (pacer, sent) = (pacer.clone(), sent.clone());
        tasks.push(tokio::spawn(async move {
            let permit = pacer.acquire().await.unwrap();
            sent.lock().unwrap().push(Instant::now() - start);
            drop(permit);
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let mut sent = sent.lock().unwrap().clone();
    sent.sort();
    assert_eq!(&sent[..2], &[Duration::ZERO; 2], "{sent:?}");
    assert!(sent[2] >= Duration::from_secs(3), "{sent:?}");
}

/// A window whose reset has passed is nothing to respect, and a pacer that already
/// learned its own window keeps it.
#[tokio::test(start_paused = true)]
async fn stale_or_late_seeds_are_ignored() {
    let pacer = Pacer::new(&config(4, None, 600));
    pacer.seed(saved(5, 0, Duration::ZERO));
    let start = Instant::now();
    drop(pacer.acquire().await.unwrap());
    assert_eq!(Instant::now(), start);
    assert_eq!(pacer.window(), None);

    let learned = Pacer::new(&config(4, None, 600));
    learned.observe(&window(5, 5, Duration::from_secs(10)));
    learned.seed(saved(5, 0, Duration::from_secs(10)));
    drop(learned.acquire().await.unwrap());
    assert_eq!(Instant::now(), start);
}

/// What is read back for saving: the budget less what was sent and not yet
/// counted; nothing left after a 429 until its hint; nothing once the window reset.
#[tokio::test(start_paused = true)]
async fn the_window_read_back_counts_requests_in_flight_and_429s() {
    let pacer = Pacer::new(&config(4, None, 600));
    assert_eq!(pacer.window(), None);
    pacer.observe(&window(5, 3, Duration::from_secs(4)));
    let _in_flight = pacer.acquire().await.unwrap();
    assert_eq!(pacer.window(), Some(saved(5, 2, Duration::from_secs(4))));
    pacer.on_throttled(Duration::from_secs(9));
    let view = pacer.window().unwrap();
    assert_eq!(view.remaining, 0);
    assert!(view.reset_in >= Duration::from_secs(9), "{view:?}");
    tokio::time::advance(Duration::from_secs(10)).await;
    assert_eq!(pacer.window(), None);
}

/// Every grant and every answer wakes the one who keeps the window saved, even
/// when it was not waiting at that moment.
#[tokio::test(start_paused = true)]
async fn a_change_is_kept_for_the_next_wait() {
    let pacer = Pacer::new(&config(4, None, 600));
    let permit = pacer.acquire().await.unwrap();
    tokio::time::timeout(Duration::from_millis(1), pacer.changed())
        .await
        .expect("the grant was signalled");
    assert!(
        tokio::time::timeout(Duration::from_millis(1), pacer.changed())
            .await
            .is_err(),
        "nothing changed since"
    );
    permit.complete(&window(5, 4, Duration::from_secs(1)));
    tokio::time::timeout(Duration::from_millis(1), pacer.changed())
        .await
        .expect("the answer was signalled");
}
