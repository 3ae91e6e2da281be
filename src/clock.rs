//! The one source of wall-clock time. Everything else takes the time it is given
//! (an injected `fn() -> DateTime<Utc>` or [`crate::executor::apply::Clock`]), so
//! tests can run at any moment; clippy.toml disallows `Utc::now` elsewhere.

use chrono::{DateTime, Utc};

/// Now, from the system clock: what the binary injects as the clock.
// The allowed place: the only call of the real clock (clippy.toml's disallowed-methods).
#[allow(clippy::disallowed_methods)]
pub fn now() -> DateTime<Utc> {
    Utc::now()
}
