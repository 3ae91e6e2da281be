//! Applying plans: the transport each adapter sends through, and the apply loop with
//! its journal and snapshot updates.
//!
//! Underneath, one path for every request: [`classify`] turns each answer into
//! retry / don't retry / success, the per-provider [`pacer`] keeps requests within the
//! vendor's concurrency and rate limits, and [`retry::send_with_retry`] ties them
//! together for one call (one operation, or one batch request).

pub mod apply;
pub mod classify;
pub mod http;
pub mod pacer;
pub mod retry;

pub use classify::{classify_response, classify_transport, Outcome, RateLimitHeaders};
pub use pacer::{Pacer, PacerError, Permit};
pub use retry::{send_with_retry, Attempt, Failure, RetryPolicy};
