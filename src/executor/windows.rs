//! Rate-limit windows kept across processes: a pass loads each provider's saved
//! window before its first request ([`load`]) and keeps it saved while it runs
//! ([`keep_saved`]), so that a restart, the next CronJob run or a rerun after a crash
//! starts from what the vendor last said instead of bursting into a spent window.
//!
//! Saving is cheap by design: a change that decides what the next process may send
//! (the first window this run, a new window, a changed limit, the budget spent, a
//! 429) is written at once; a budget merely going down is written at most once per
//! second per provider; whatever is newer is written when the pass ends. Writing
//! never fails or holds up a pass: a failure is logged and the pass goes on.

use std::future::Future;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures_util::future::select_all;
use tokio::time::Instant;
use tracing::warn;

use super::http::HttpTransport;
use crate::config::ProviderConfig;
use crate::net::pacer::WindowView;
use crate::store::{RateWindow, Store};

/// Least time between two writes of a provider's window when only its budget went
/// down.
const ROUTINE_GAP: Duration = Duration::from_secs(1);

/// A reset this much earlier or later is a new window, not the same one told again
/// (vendors give resets in whole seconds, rounded up).
const SAME_RESET: chrono::TimeDelta = chrono::TimeDelta::seconds(1);

/// A saved reset further away than this is not a window worth holding a run for: a
/// vendor's odd header must not stop every later run from sending anything.
const MAX_SAVED_RESET: chrono::TimeDelta = chrono::TimeDelta::days(1);

/// The key a provider's window is saved under: its name and base URL (a changed URL
/// forgets the window).
fn base_url(pc: &ProviderConfig) -> &str {
    pc.base_url.url().as_str()
}

/// The saved window as the pacer takes it up at `now`, if it still applies: its
/// reset is still to come (within [`MAX_SAVED_RESET`]) and it was not observed in
/// the future (a clock set back makes its times meaningless).
pub fn usable(saved: &RateWindow, now: DateTime<Utc>) -> Option<WindowView> {
    let reset_in = saved.reset_at - now;
    if reset_in <= chrono::TimeDelta::zero()
        || reset_in > MAX_SAVED_RESET
        || saved.observed_at > now
    {
        return None;
    }
    Some(WindowView {
        limit: saved.limit,
        remaining: saved.remaining,
        reset_in: reset_in.to_std().ok()?,
    })
}

/// Each selected provider's saved window (`None` where there is none, or it cannot
/// be read: a pass never fails for want of it).
pub async fn load(store: &Store, selected: &[&ProviderConfig]) -> Vec<Option<RateWindow>> {
    let mut windows = Vec::with_capacity(selected.len());
    for pc in selected {
        windows.push(match store.rate_window(&pc.name, base_url(pc)).await {
            Ok(w) => w,
            Err(e) => {
                warn!(provider = %pc.name, error = %e, "Cannot read the saved rate-limit window; starting without it.");
                None
            }
        });
    }
    windows
}

/// Each selected provider's transport, its pacer starting from the window an earlier
/// process left in `store` (none without a state file).
pub async fn transports<'a>(
    store: Option<&Store>,
    selected: &[&ProviderConfig],
    adapters: &'a [Box<dyn crate::providers::Provider>],
    clock: &'a crate::executor::apply::Clock,
) -> Result<Vec<HttpTransport<'a>>, crate::executor::http::TransportError> {
    let saved = match store {
        Some(s) => load(s, selected).await,
        None => vec![None; selected.len()],
    };
    selected
        .iter()
        .zip(adapters)
        .zip(saved)
        .map(|((pc, adapter), saved)| {
            HttpTransport::with_saved_window(pc, adapter.as_ref(), clock, saved)
        })
        .collect()
}

/// Runs `work` while keeping each provider's window saved in `store`, then saves
/// whatever is newer than what was written.
pub async fn keep_saved<F: Future>(
    store: &Store,
    selected: &[&ProviderConfig],
    transports: &[HttpTransport<'_>],
    work: F,
) -> F::Output {
    let mut saver = Saver {
        store,
        selected,
        transports,
        written: vec![None; transports.len()],
        warned: false,
    };
    let out = {
        tokio::pin!(work);
        tokio::select! {
            biased;
            out = &mut work => out,
            never = saver.watch() => match never {},
        }
    };
    saver.flush().await;
    out
}

/// What was last written for one provider, and when.
#[derive(Debug, Clone, Copy)]
struct Written {
    window: RateWindow,
    at: Instant,
}

/// Whether to write a provider's window now, later, or not at all.
#[derive(Debug, PartialEq, Eq)]
enum Save {
    Now,
    At(Instant),
    No,
}

/// The one decision on writing a window (see the module docs).
fn decide(last: Option<&Written>, new: &RateWindow, now: Instant) -> Save {
    let Some(last) = last else {
        return Save::Now;
    };
    let old = &last.window;
    let new_window = (new.reset_at - old.reset_at).abs() >= SAME_RESET;
    let spent = new.remaining == 0 && old.remaining != 0;
    if new_window || spent || new.limit != old.limit {
        return Save::Now;
    }
    if new.remaining == old.remaining {
        return Save::No;
    }
    let due = last.at + ROUTINE_GAP;
    if due <= now {
        Save::Now
    } else {
        Save::At(due)
    }
}

struct Saver<'s, 't> {
    store: &'s Store,
    selected: &'s [&'s ProviderConfig],
    transports: &'s [HttpTransport<'t>],
    written: Vec<Option<Written>>,
    warned: bool,
}

impl Saver<'_, '_> {
    /// Writes windows as they change, for as long as the pass runs.
    async fn watch(&mut self) -> std::convert::Infallible {
        loop {
            let mut next: Option<Instant> = None;
            for i in 0..self.transports.len() {
                let Some(window) = self.transports[i].rate_window() else {
                    continue;
                };
                match decide(self.written[i].as_ref(), &window, Instant::now()) {
                    Save::Now => self.write(i, window).await,
                    Save::At(due) => next = Some(next.map_or(due, |n| n.min(due))),
                    Save::No => {}
                }
            }
            if self.transports.is_empty() {
                return std::future::pending().await;
            }
            let changed = select_all(self.transports.iter().map(|t| Box::pin(t.window_changed())));
            match next {
                Some(due) => {
                    tokio::select! {
                        _ = changed => {}
                        () = tokio::time::sleep_until(due) => {}
                    }
                }
                None => {
                    changed.await;
                }
            }
        }
    }

    /// At the end of the pass: every window newer than what was written.
    async fn flush(&mut self) {
        for i in 0..self.transports.len() {
            let Some(window) = self.transports[i].rate_window() else {
                continue;
            };
            let same = self.written[i].is_some_and(|w| {
                (w.window.limit, w.window.remaining, w.window.reset_at)
                    == (window.limit, window.remaining, window.reset_at)
            });
            if !same {
                self.write(i, window).await;
            }
        }
    }

    async fn write(&mut self, i: usize, window: RateWindow) {
        let Some(pc) = self.selected.get(i) else {
            return;
        };
        let saved = self
            .store
            .save_rate_window(&pc.name, base_url(pc), &window)
            .await;
        // Taken as written even when it failed, so that a failing disk is tried again
        // at the pace of the writes (decisive changes, or once a second), not on
        // every request.
        self.written[i] = Some(Written {
            window,
            at: Instant::now(),
        });
        match saved {
            Ok(()) => {}
            Err(e) if !self.warned => {
                self.warned = true;
                warn!(provider = %pc.name, error = %e, "Cannot save the rate-limit window; the next run may meet a spent one.");
            }
            Err(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000 + secs, 0).unwrap()
    }

    fn window(remaining: u64, reset: i64) -> RateWindow {
        RateWindow {
            limit: Some(5),
            remaining,
            reset_at: at(reset),
            observed_at: at(0),
        }
    }

    #[test]
    fn only_a_window_still_to_reset_is_taken_up() {
        let w = window(0, 10);
        let view = usable(&w, at(4)).unwrap();
        assert_eq!(view.remaining, 0);
        assert_eq!(view.reset_in, Duration::from_secs(6));
        assert_eq!(usable(&w, at(10)), None, "reset has passed");
        assert_eq!(usable(&w, at(-1)), None, "observed in the future");
        let far = RateWindow {
            reset_at: at(3 * 86_400),
            ..w
        };
        assert_eq!(
            usable(&far, at(1)),
            None,
            "a reset days away is not a window"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn decisive_changes_are_written_at_once_and_routine_ones_once_a_second() {
        let now = Instant::now();
        let last = Written {
            window: window(4, 10),
            at: now,
        };
        assert_eq!(decide(None, &window(4, 10), now), Save::Now, "first");
        assert_eq!(decide(Some(&last), &window(4, 10), now), Save::No);
        assert_eq!(decide(Some(&last), &window(0, 10), now), Save::Now, "spent");
        assert_eq!(decide(Some(&last), &window(5, 20), now), Save::Now, "new");
        let limit = RateWindow {
            limit: Some(50),
            ..window(4, 10)
        };
        assert_eq!(decide(Some(&last), &limit, now), Save::Now, "limit");
        assert_eq!(
            decide(Some(&last), &window(3, 10), now),
            Save::At(now + ROUTINE_GAP)
        );
        assert_eq!(
            decide(Some(&last), &window(3, 10), now + ROUTINE_GAP),
            Save::Now
        );
    }
}
