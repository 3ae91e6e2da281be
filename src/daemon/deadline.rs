//! The bound on one daemon pass (`daemon.pass_timeout_seconds`). Per-request timeouts,
//! retry counts and the rate-limit wait cap each bound one request, not a pass: a
//! large plan against a slow vendor could run for hours and every tick in between is
//! skipped. At the deadline the pass is stopped the way SIGTERM stops it (operations
//! in flight finish and are journaled, nothing new starts) and recorded as `timeout`;
//! if it is still not done `grace` later, it is abandoned, and its journal resolves
//! what was in flight at the start of the next pass, as after a crash.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tracing::warn;

/// How often the watcher looks at the stop flag and the clock: small next to any
/// deadline, and a SIGTERM reaches the pass this late at most.
const POLL: Duration = Duration::from_millis(50);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PassDeadline {
    /// Soft: stop starting operations.
    pub limit: Duration,
    /// Hard, after `limit`: stop waiting for the operations in flight.
    pub grace: Duration,
}

/// Flags one pass reads and writes while it runs.
#[derive(Debug, Default)]
pub struct PassFlags {
    /// Units not yet started are left for the next pass (set by the signal or the
    /// deadline).
    pub stop: AtomicBool,
    /// The deadline was reached.
    pub timed_out: AtomicBool,
}

/// Mirrors `requested` (the process-wide stop on SIGTERM) into `flags.stop` and, with
/// a deadline, sets `flags.timed_out` and `flags.stop` when it passes. Returns only
/// when the deadline's grace has run out too (never without a deadline): the caller
/// races it against the pass and abandons the pass if this wins.
pub async fn watch(requested: &AtomicBool, flags: &PassFlags, deadline: Option<PassDeadline>) {
    let started = tokio::time::Instant::now();
    loop {
        tokio::time::sleep(POLL).await;
        if requested.load(Ordering::SeqCst) {
            flags.stop.store(true, Ordering::SeqCst);
        }
        let Some(d) = deadline else { continue };
        let elapsed = started.elapsed();
        if elapsed >= d.limit && !flags.timed_out.swap(true, Ordering::SeqCst) {
            flags.stop.store(true, Ordering::SeqCst);
            warn!(
                seconds = d.limit.as_secs(),
                "The pass ran past daemon.pass_timeout_seconds: operations in flight finish, no new ones start."
            );
        }
        if elapsed >= d.limit + d.grace {
            warn!(
                seconds = d.grace.as_secs(),
                "The timed-out pass did not finish its operations in flight in time: abandoned; its journal resolves them next pass."
            );
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn the_signal_is_mirrored_and_no_deadline_never_returns() {
        let requested = AtomicBool::new(false);
        let flags = PassFlags::default();
        let watcher = watch(&requested, &flags, None);
        tokio::pin!(watcher);
        let r = tokio::time::timeout(Duration::from_secs(5), &mut watcher).await;
        assert!(r.is_err(), "without a deadline the watcher never returns");
        assert!(!flags.stop.load(Ordering::SeqCst));
        requested.store(true, Ordering::SeqCst);
        let r = tokio::time::timeout(Duration::from_secs(3600), &mut watcher).await;
        assert!(r.is_err());
        assert!(flags.stop.load(Ordering::SeqCst));
        assert!(!flags.timed_out.load(Ordering::SeqCst));
    }

    #[tokio::test(start_paused = true)]
    async fn the_deadline_stops_the_pass_then_gives_up_after_the_grace() {
        let requested = AtomicBool::new(false);
        let flags = PassFlags::default();
        let deadline = PassDeadline {
            limit: Duration::from_secs(10),
            grace: Duration::from_secs(5),
        };
        let watcher = watch(&requested, &flags, Some(deadline));
        tokio::pin!(watcher);
        let r = tokio::time::timeout(Duration::from_secs(9), &mut watcher).await;
        assert!(r.is_err());
        assert!(
            !flags.stop.load(Ordering::SeqCst),
            "stopped before the deadline"
        );
        let r = tokio::time::timeout(Duration::from_secs(2), &mut watcher).await;
        assert!(r.is_err(), "returned before the grace ran out");
        assert!(flags.stop.load(Ordering::SeqCst) && flags.timed_out.load(Ordering::SeqCst));
        let r = tokio::time::timeout(Duration::from_secs(5), &mut watcher).await;
        assert!(r.is_ok(), "still waiting after limit + grace");
    }
}
