//! Logging setup: human lines on a terminal, JSON lines otherwise (or as configured),
//! always on stderr so that stdout carries only the plan or report.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::config::{LogConfig, LogFormat};

/// Starts the global subscriber. `RUST_LOG` wins over `log.level`; default `info`.
/// Safe to call more than once (later calls do nothing).
pub fn init(log: Option<&LogConfig>) {
    let level = log.and_then(|l| l.level.clone());
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(level.as_deref().unwrap_or("info")))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let format = log.map(|l| l.format).unwrap_or_default();
    let terminal = std::io::stderr().is_terminal();
    let json = match format {
        LogFormat::Json => true,
        LogFormat::Text => false,
        LogFormat::Auto => !terminal,
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false);
    let _ = if json {
        builder.json().flatten_event(true).try_init()
    } else {
        builder.with_ansi(terminal).try_init()
    };
}
