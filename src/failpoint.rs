//! Crash points, for the tests that kill rosterd at exact moments of an apply.
//!
//! `ROSTERD_CRASH_AT=<point>:<n>` makes the process abort — no destructors, no
//! flushing, like a SIGKILL or a power cut — the `n`-th time (from 1) it reaches
//! `<point>`. Unset (always, outside those tests) it costs one atomic load per point.
//! The points, in the order an operation meets them:
//!
//! | point | the moment |
//! | --- | --- |
//! | `journaled` | a unit's operations are in the journal, nothing sent yet |
//! | `answered` | the vendor answered a request; the adapter has not seen it |
//! | `applied` | the adapter has every answer of a unit; nothing recorded yet |
//! | `recorded` | one operation of a unit is recorded (a batch: the rest are not) |
//! | `group_answered` | the server answered a group request (members added or removed, a group deleted); nothing recorded yet |

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

/// The environment variable that arms one crash point.
pub const ENV: &str = "ROSTERD_CRASH_AT";

struct Armed {
    point: String,
    at: u64,
    seen: AtomicU64,
}

fn armed() -> Option<&'static Armed> {
    static ARMED: OnceLock<Option<Armed>> = OnceLock::new();
    ARMED
        .get_or_init(|| {
            let spec = std::env::var(ENV).ok()?;
            let (point, at) = spec.split_once(':')?;
            Some(Armed {
                point: point.trim().to_string(),
                at: at.trim().parse().ok()?,
                seen: AtomicU64::new(0),
            })
        })
        .as_ref()
}

/// Aborts the process when `point` is the armed one and this is its `n`-th visit.
pub fn reach(point: &'static str) {
    if let Some(armed) = armed() {
        if armed.point == point && armed.seen.fetch_add(1, Ordering::SeqCst) + 1 == armed.at {
            eprintln!("{ENV}: aborting at {point} #{}", armed.at);
            std::process::abort();
        }
    }
}
