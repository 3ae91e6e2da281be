//! The per-provider pacer: how many requests may be in flight, and when the next one
//! may go, so that rosterd uses the vendor's allowed rate without being refused.
//!
//! Every request takes a [`Permit`] from [`Pacer::acquire`] and hands the answer's
//! rate-limit headers back through [`Permit::complete`]. The pacer then knows the
//! vendor's window (`remaining` requests until `reset`) and:
//! - sends at full speed while the window has budget: the goal is the vendor's rate,
//!   so requests are spread evenly only when `requests_per_second` asks for it;
//! - never sends a request the headers say will be refused: requests sent since the
//!   observation that the server may not have counted yet (see [`Permit::complete`])
//!   are subtracted from `remaining`, so concurrent tasks do not all spend the same
//!   budget; when it is spent, everyone waits for the reset (plus 0–100 ms jitter) —
//!   the earliest reset any answer of the same window allows, since vendors round
//!   it up to whole seconds;
//! - after a 429 ([`Pacer::on_throttled`]) holds every request until the hint.
//!
//! Rate-limit waits (windows and 429s, not the `requests_per_second` spacing) are
//! added up as wall-clock time — concurrent tasks waiting for the same reset count
//! once — and capped by `max_wait_seconds`: a wait that would go over fails with
//! [`PacerError::WaitCapExceeded`], and the operation is retried next run.
//!
//! The window survives the process: [`Pacer::window`] reads it back (for the state
//! file) and [`Pacer::seed`] starts a new pacer from a saved one, so a restart does
//! not send into a window an earlier run spent; [`Pacer::changed`] says when to look.
//!
//! Time is `tokio::time::Instant`, so tests drive it with `tokio::time::pause()`.

use std::collections::BTreeSet;
use std::hash::{BuildHasher, Hasher};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::sync::{Notify, Semaphore, SemaphorePermit};
use tokio::time::Instant;

use super::classify::RateLimitHeaders;
use crate::config::RateLimitConfig;

/// Most jitter added to a wait for a window reset or a 429 hint, so that waiting
/// requests (and other clients of the vendor) do not all fire at the same instant.
const MAX_JITTER: Duration = Duration::from_millis(100);

/// How much later than the true end of a window a vendor may tell it: resets come in
/// whole seconds, rounded up.
const RESET_ROUNDING: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PacerError {
    #[error(
        "waiting for the vendor's rate limit would exceed max_wait_seconds \
         ({}s waited of {}s allowed this run); the rest is retried next run",
        waited.as_secs(),
        cap.as_secs()
    )]
    WaitCapExceeded { waited: Duration, cap: Duration },
    #[error("the run is stopping: no new requests are sent")]
    Closed,
}

pub struct Pacer {
    slots: Semaphore,
    /// `1 / requests_per_second`, when set.
    interval: Option<Duration>,
    cap: Duration,
    state: Mutex<State>,
    /// Wakes tasks waiting for an answer (see [`Wait::Answer`]).
    answered: Notify,
    /// Wakes whoever keeps the window saved ([`Pacer::changed`]): one waiter, and a
    /// change while it is busy is kept for its next wait (`notify_one`).
    window_changed: Notify,
}

/// The vendor's window as the pacer knows it, in a form another process can take up:
/// what the vendor allows, what is left (less what was sent and may not be counted
/// yet), and how long until the reset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowView {
    pub limit: Option<u64>,
    pub remaining: u64,
    pub reset_in: Duration,
}

/// Leave to send one request; give the answer's headers back with
/// [`Permit::complete`]. Dropping it without (a transport error) frees the slot, and
/// the request stays counted against the window until the next answer says otherwise.
pub struct Permit<'a> {
    pacer: &'a Pacer,
    seq: u64,
    _slot: SemaphorePermit<'a>,
}

impl Permit<'_> {
    /// Feeds the answer's rate-limit headers to the pacer and frees the slot.
    pub fn complete(self, headers: &RateLimitHeaders) {
        self.pacer.finish(self.seq, Some(headers));
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        self.pacer.finish(self.seq, None);
    }
}

#[derive(Default)]
struct State {
    /// Requests granted so far; each permit's number is the count before it.
    sent: u64,
    /// Permits not yet answered nor dropped.
    in_flight: BTreeSet<u64>,
    /// Answers to requests numbered below this are older than the window we know.
    observed_upto: u64,
    window: Option<Window>,
    /// After a 429: nothing is sent before this.
    paused_until: Option<Instant>,
    /// With `requests_per_second`: the next request may not go before this.
    next_send: Option<Instant>,
    /// Rate-limit time waited this run, and the end of the latest wait counted.
    waited: Duration,
    waited_until: Option<Instant>,
}

/// What the last fresh answer said about the vendor's window.
struct Window {
    limit: Option<u64>,
    remaining: u64,
    /// Requests the server may not have counted in `remaining` yet.
    unaccounted: u64,
    /// `None` once the window we were told about has reset: the new one's end is
    /// unknown until an answer says it.
    reset_at: Option<Instant>,
}

enum Wait {
    /// A rate-limit wait: counted towards the cap.
    Limit(Instant),
    /// `requests_per_second` spacing: not a vendor limit, not counted.
    Spacing(Instant),
    /// The budget is spent and the reset unknown: wait for an answer to tell it.
    Answer,
}

impl Pacer {
    pub fn new(cfg: &RateLimitConfig) -> Self {
        let interval = cfg
            .requests_per_second
            .filter(|rps| *rps > 0.0 && rps.is_finite())
            .and_then(|rps| Duration::try_from_secs_f64(1.0 / rps).ok());
        Pacer {
            slots: Semaphore::new(cfg.max_concurrency.max(1)),
            interval,
            cap: Duration::from_secs(cfg.max_wait_seconds),
            state: Mutex::new(State::default()),
            answered: Notify::new(),
            window_changed: Notify::new(),
        }
    }

    /// Starts from a window saved by an earlier process: until `reset_in` has passed,
    /// at most `remaining` requests go (none when it is 0). Ignored once this pacer has
    /// learned a window of its own, or when the reset is not in the future.
    pub fn seed(&self, saved: WindowView) {
        if saved.reset_in.is_zero() {
            return;
        }
        let mut state = self.lock();
        if state.window.is_some() || state.sent > 0 {
            return;
        }
        state.window = Some(Window {
            limit: saved.limit,
            remaining: saved.remaining,
            unaccounted: 0,
            reset_at: Some(after(Instant::now(), saved.reset_in)),
        });
    }

    /// The window as known now, for saving: `None` when no answer told one or the one
    /// told has reset (its successor's end is unknown until an answer says it). After
    /// a 429, nothing is left until the hint.
    pub fn window(&self) -> Option<WindowView> {
        let now = Instant::now();
        let state = self.lock();
        let known = state.window.as_ref().and_then(|w| {
            let reset = w.reset_at.filter(|&r| r > now)?;
            Some(WindowView {
                limit: w.limit,
                remaining: w.remaining.saturating_sub(w.unaccounted),
                reset_in: reset - now,
            })
        });
        match state.paused_until.filter(|&p| p > now) {
            Some(until) => Some(WindowView {
                limit: known.and_then(|w| w.limit),
                remaining: 0,
                reset_in: known.map_or(until - now, |w| w.reset_in.max(until - now)),
            }),
            None => known,
        }
    }

    /// Returns once the window may have changed since the last call returned (a
    /// request granted, an answer's headers, a 429).
    pub async fn changed(&self) {
        self.window_changed.notified().await;
    }

    /// Waits for a concurrency slot, then until the vendor's limits let a request go.
    pub async fn acquire(&self) -> Result<Permit<'_>, PacerError> {
        let slot = self.slots.acquire().await.map_err(|_| PacerError::Closed)?;
        loop {
            // Registered before the state is read, so an answer in between still wakes us.
            let answered = self.answered.notified();
            tokio::pin!(answered);
            answered.as_mut().enable();
            let wait = {
                let mut state = self.lock();
                match state.next_wait(Instant::now(), self.interval) {
                    None => {
                        let seq = state.grant(Instant::now(), self.interval);
                        drop(state);
                        self.window_changed.notify_one();
                        return Ok(Permit {
                            pacer: self,
                            seq,
                            _slot: slot,
                        });
                    }
                    Some(Wait::Limit(until)) => {
                        state.count_wait(Instant::now(), until, self.cap)?;
                        Some(until)
                    }
                    Some(Wait::Spacing(until)) => Some(until),
                    Some(Wait::Answer) => None,
                }
            };
            match wait {
                Some(until) => tokio::time::sleep_until(until).await,
                None => answered.await,
            }
        }
    }

    /// Takes in rate-limit headers seen outside a permit (e.g. a healthcheck): every
    /// request in flight counts as not yet counted by the server.
    pub fn observe(&self, headers: &RateLimitHeaders) {
        let mut state = self.lock();
        let upto = state.sent;
        state.observe(upto, None, headers, Instant::now());
        drop(state);
        self.answered.notify_waiters();
        self.window_changed.notify_one();
    }

    /// A 429: holds all of this provider's requests for `not_before` (plus jitter).
    pub fn on_throttled(&self, not_before: Duration) {
        let until = after(Instant::now(), not_before.saturating_add(jitter()));
        let mut state = self.lock();
        state.paused_until = Some(state.paused_until.map_or(until, |p| p.max(until)));
        drop(state);
        self.window_changed.notify_one();
    }

    /// Counts a wait the caller makes for a server's hint (e.g. `Retry-After` on a
    /// 503) towards this run's cap; fails when it would go over.
    pub fn count_hint(&self, wait: Duration) -> Result<(), PacerError> {
        let now = Instant::now();
        self.lock().count_wait(now, after(now, wait), self.cap)
    }

    /// Rate-limit time waited so far this run (overlapping waits count once).
    pub fn waited(&self) -> Duration {
        self.lock().waited
    }

    /// Stops handing out permits: tasks waiting for a slot get [`PacerError::Closed`].
    pub fn close(&self) {
        self.slots.close();
    }

    fn finish(&self, seq: u64, headers: Option<&RateLimitHeaders>) {
        let mut state = self.lock();
        if !state.in_flight.remove(&seq) {
            return; // already completed; this is the drop after `complete`
        }
        if let Some(headers) = headers {
            state.observe(seq + 1, Some(seq), headers, Instant::now());
        }
        drop(state);
        self.answered.notify_waiters();
        self.window_changed.notify_one();
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // The state stays consistent even if a holder panicked: every update is whole.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl State {
    /// What stands between now and sending, if anything.
    fn next_wait(&mut self, now: Instant, interval: Option<Duration>) -> Option<Wait> {
        if let Some(until) = self.paused_until.filter(|&p| p > now) {
            return Some(Wait::Limit(until));
        }
        self.roll_window(now);
        if let Some(w) = &self.window {
            if w.remaining <= w.unaccounted {
                match w.reset_at {
                    Some(reset) => return Some(Wait::Limit(reset + jitter())),
                    // Probe: one request at a time until an answer tells the window.
                    None if !self.in_flight.is_empty() => return Some(Wait::Answer),
                    None => {}
                }
            }
        }
        if interval.is_some() {
            if let Some(next) = self.next_send.filter(|&n| n > now) {
                return Some(Wait::Spacing(next));
            }
        }
        None
    }

    /// A window whose reset has passed starts afresh: the full limit when we know
    /// it (less what is still in flight, which may land in the new window), or no
    /// knowledge at all until the next answer.
    fn roll_window(&mut self, now: Instant) {
        let in_flight = self.in_flight.len() as u64;
        let expired = matches!(&self.window, Some(w) if w.reset_at.is_some_and(|r| r <= now));
        if !expired {
            return;
        }
        self.window = self
            .window
            .as_ref()
            .and_then(|w| w.limit)
            .map(|limit| Window {
                limit: Some(limit),
                remaining: limit,
                unaccounted: in_flight,
                reset_at: None,
            });
    }

    fn grant(&mut self, now: Instant, interval: Option<Duration>) -> u64 {
        let seq = self.sent;
        self.sent += 1;
        self.in_flight.insert(seq);
        if let Some(w) = &mut self.window {
            w.unaccounted += 1;
        }
        if let Some(interval) = interval {
            self.next_send = Some(now + interval);
        }
        seq
    }

    /// Applies the headers of the answer to request `answered` (`None`: outside any
    /// request) if it is fresh — sent after the answer the window is based on. Requests
    /// in flight, and sent after it, may not be in the server's count yet.
    fn observe(
        &mut self,
        upto: u64,
        answered: Option<u64>,
        headers: &RateLimitHeaders,
        now: Instant,
    ) {
        let Some(remaining) = headers.remaining else {
            return;
        };
        if answered.is_some_and(|seq| seq < self.observed_upto) {
            return; // an answer older than the one we already know
        }
        let later = self.sent - upto;
        let older_in_flight = self.in_flight.range(..upto).count() as u64;
        let limit = headers
            .limit
            .or_else(|| self.window.as_ref().and_then(|w| w.limit));
        let reset_at = headers.reset_after.map(|d| after(now, d));
        let reset_at = match (&self.window, reset_at) {
            // The same window (its count only goes down) as the one we know: both
            // resets are upper bounds of its end — a server's whole seconds are
            // rounded up, and it wrote them before we read them — so the earlier
            // holds. Without this a 1 s window told as "1" at its end costs nearly
            // a second of idle time per window. Only within that rounding: a reset
            // a second or more later is news (a vendor whose reset moves on as it
            // counts, like a token bucket's "full again at"), and is followed.
            (Some(known), Some(new)) if remaining <= known.remaining => Some(
                known
                    .reset_at
                    .filter(|&old| old > now && new < old + RESET_ROUNDING)
                    .map_or(new, |old| old.min(new)),
            ),
            _ => reset_at,
        };
        self.window = Some(Window {
            limit,
            remaining,
            unaccounted: later + older_in_flight,
            reset_at,
        });
        self.observed_upto = upto;
    }

    /// Counts a rate-limit wait from `now` to `until`, overlapping waits once.
    fn count_wait(
        &mut self,
        now: Instant,
        until: Instant,
        cap: Duration,
    ) -> Result<(), PacerError> {
        let start = self.waited_until.map_or(now, |w| w.max(now));
        let extra = until.saturating_duration_since(start);
        if self.waited + extra > cap {
            return Err(PacerError::WaitCapExceeded {
                waited: self.waited,
                cap,
            });
        }
        self.waited += extra;
        self.waited_until = Some(self.waited_until.map_or(until, |w| w.max(until)));
        Ok(())
    }
}

/// `now + wait`, with absurd hints (a vendor's `Retry-After: 99999999999`) held to a
/// year so the instant cannot overflow; the wait cap refuses them anyway.
fn after(now: Instant, wait: Duration) -> Instant {
    const YEAR: Duration = Duration::from_secs(365 * 24 * 3600);
    now + wait.min(YEAR)
}

/// 0–100 ms, from std's randomly keyed hasher (no RNG crate needed for this).
fn jitter() -> Duration {
    let random = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    MAX_JITTER.mul_f64((random % 1001) as f64 / 1000.0)
}

#[cfg(test)]
#[path = "pacer_tests.rs"]
mod tests;
