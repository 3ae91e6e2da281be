//! Shared helpers for integration tests, compiled once as the module `support` of the
//! one test binary (`tests/it/main.rs`): a file in `tests/` takes it with
//! `use crate::support;`. Items no test uses are not warnings.
//!
//! - [`fake_hesh`]: a stateful fake of hesh's public users API (real HTTP on
//!   127.0.0.1, rate limits, schema validation of request bodies, fault injection).
//! - [`fake_saleschat`], [`fake_vyte`], [`fake_zaia`]: the other three vendors, alike.
//! - [`fake_server`]: what every fake shares (server thread and runtime, request log,
//!   `fail_next` / `delay`, rate-limit headers); [`openapi`]: request-body validators.
//! - [`rate_window`]: the fixed-window limit the fakes enforce.
//! - [`fake_hr`]: a fake HR system's paged JSON API, for the HTTP source.
//! - [`four_vendors`]: the people and scopes of the four-vendor tests.
//! - [`workspace`]: a folder with a source and a config, and the binary run on it.
//! - [`postgres`]: a real PostgreSQL server (initdb in a temp dir), a database per test.
//! - [`process`]: fixtures, ports, waiting, killing a run midway; [`state`]: the
//!   snapshot rows a run left in the state file.

#![allow(dead_code)]
// Test support code: a broken fixture or a poisoned test setup should fail loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod daemon;
pub mod django_scim;
pub mod fake_hesh;
pub mod fake_hr;
pub mod fake_saleschat;
pub mod fake_server;
pub mod fake_vyte;
pub mod fake_zaia;
pub mod four_fakes;
pub mod four_vendors;
pub mod openapi;
pub mod postgres;
pub mod process;
pub mod rate_window;
pub mod scim_server;
pub mod state;
pub mod venv;
pub mod workspace;

use std::path::PathBuf;

/// A file under `tests/fixtures/`.
pub fn fixture_path(relative: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(relative)
}
