//! The fixed-window request limit every fake vendor enforces (hesh and saleschat as
//! their documents describe it, vyte and zaia, which document none, as the common
//! convention): the window opens with the first counted request, allows `limit`
//! requests, and a request over the limit is refused (429) until the window ends. Each
//! fake turns a [`RateCheck`] into its own headers.

// Test code may block and read the real clock: clippy.toml's disallowed-methods
// are for the library.
#![allow(clippy::disallowed_methods)]

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

#[derive(Debug, Clone)]
pub struct FixedWindow {
    limit: u32,
    window: Duration,
    start: Option<Instant>,
    used: u32,
}

/// The outcome of counting one request.
#[derive(Debug, Clone, Copy)]
pub struct RateCheck {
    pub allowed: bool,
    pub limit: u32,
    pub remaining: u32,
    /// Time left in the current window.
    pub reset_in: Duration,
}

impl RateCheck {
    /// Whole seconds until the window ends, rounded up, at least 1 (what a
    /// `Retry-After` or a seconds `X-RateLimit-Reset` says).
    pub fn reset_secs(&self) -> u64 {
        u64::try_from(self.reset_in.as_nanos().div_ceil(1_000_000_000).max(1)).unwrap_or(u64::MAX)
    }

    /// The Unix time (whole seconds, rounded up) at which the window ends.
    pub fn reset_epoch(&self) -> u64 {
        let end = SystemTime::now() + self.reset_in;
        let since = end.duration_since(UNIX_EPOCH).unwrap_or_default();
        since.as_secs() + u64::from(since.subsec_nanos() > 0)
    }
}

impl FixedWindow {
    pub fn new(limit: u32, window: Duration) -> FixedWindow {
        FixedWindow {
            limit,
            window,
            start: None,
            used: 0,
        }
    }

    /// Counts one request arriving at `now`.
    pub fn check(&mut self, now: Instant) -> RateCheck {
        let start = match self.start {
            Some(s) if now < s + self.window => s,
            _ => {
                self.start = Some(now);
                self.used = 0;
                now
            }
        };
        let allowed = self.used < self.limit;
        if allowed {
            self.used += 1;
        }
        RateCheck {
            allowed,
            limit: self.limit,
            remaining: self.limit.saturating_sub(self.used),
            reset_in: (start + self.window).saturating_duration_since(now),
        }
    }
}
