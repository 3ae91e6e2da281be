//! rosterd: keeps user accounts in SaaS vendors in step with an HR system's user list.
//!
//! The stages, one module each: [`config`] → [`source`] → [`user`] → [`plan`] (pure) →
//! executor (later) → [`providers`]; [`store`] keeps the snapshot, journal and runs;
//! [`sync`] ties one pass together and [`report`] prints it.

pub mod audit;
pub mod cli;
pub mod clock;
pub mod config;
pub mod daemon;
pub mod executor;
pub mod failpoint;
pub mod files;
pub mod history;
pub mod mapping;
pub mod metrics;
pub mod net;
pub mod notify;
pub mod orphans;
pub mod output;
pub mod packaging;
pub mod plan;
pub mod progress;
pub mod providers;
pub mod redact;
pub mod report;
pub mod saved_plan;
pub mod source;
pub mod status;
pub mod store;
pub mod sync;
pub mod telemetry;
pub mod user;
