//! The fake hesh for the benchmarks, with the siblings it uses (`super::` inside it is
//! this module): the same files the integration tests use, not copies.

#![allow(dead_code)]

#[path = "../../tests/support/fake_hesh.rs"]
pub mod fake_hesh;
#[path = "../../tests/support/fake_server.rs"]
pub mod fake_server;
#[path = "../../tests/support/openapi.rs"]
pub mod openapi;
#[path = "../../tests/support/rate_window.rs"]
pub mod rate_window;
