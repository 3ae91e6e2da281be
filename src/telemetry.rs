//! Logging setup: human lines on a terminal, JSON lines otherwise (or as configured),
//! always on stderr so that stdout carries only the plan or report; and, when
//! `log.dir` is set, JSON lines in daily files there too (the newest `log.keep` kept).

use std::io::IsTerminal;

use tracing_appender::non_blocking::WorkerGuard;
use tracing_appender::rolling::{RollingFileAppender, Rotation};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, Registry};

use crate::config::{LogConfig, LogFormat};
use crate::redact::ScrubWriter;

/// stderr, through the scrubber: a log line never carries a configured secret.
fn stderr() -> ScrubWriter<std::io::Stderr> {
    ScrubWriter(std::io::stderr())
}

/// Keeps the file writer alive; dropping it flushes what is still buffered.
#[must_use = "logs written to files are flushed when this is dropped"]
pub struct TelemetryGuard {
    _file: Option<WorkerGuard>,
}

type BoxedLayer = Box<dyn Layer<Registry> + Send + Sync>;

/// Starts the global subscriber. `RUST_LOG` wins over `log.level`; default `info`.
/// Safe to call more than once (later calls change nothing). A log folder that cannot
/// be used is reported on stderr and logging goes on without it.
pub fn init(log: Option<&LogConfig>) -> TelemetryGuard {
    let level = log.and_then(|l| l.level.clone());
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(level.as_deref().unwrap_or("info")))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let terminal = std::io::stderr().is_terminal();
    let json = match log.map(|l| l.format).unwrap_or_default() {
        LogFormat::Json => true,
        LogFormat::Text => false,
        LogFormat::Auto => !terminal,
    };
    let stderr: BoxedLayer = if json {
        Box::new(
            tracing_subscriber::fmt::layer()
                .json()
                .flatten_event(true)
                .with_target(false)
                .with_writer(stderr),
        )
    } else {
        Box::new(
            tracing_subscriber::fmt::layer()
                .with_ansi(terminal)
                .with_target(false)
                .with_writer(stderr),
        )
    };
    let mut layers: Vec<BoxedLayer> = vec![stderr];
    let mut guard = None;
    if let Some(l) = log.filter(|l| l.dir.is_some()) {
        match file_layer(l) {
            Ok((layer, g)) => {
                layers.push(layer);
                guard = Some(g);
            }
            Err(message) => eprintln!("warning: {message}; logging to stderr only"),
        }
    }
    let _ = tracing_subscriber::registry()
        .with(layers.with_filter(filter))
        .try_init();
    TelemetryGuard { _file: guard }
}

fn file_layer(log: &LogConfig) -> Result<(BoxedLayer, WorkerGuard), String> {
    let dir = log.dir.as_deref().unwrap_or(std::path::Path::new("."));
    // 0700: the logs name the people changed (the files are 0600, see main).
    std::os::unix::fs::DirBuilderExt::mode(std::fs::DirBuilder::new().recursive(true), 0o700)
        .create(dir)
        .map_err(|e| format!("cannot create log.dir {}: {e}", dir.display()))?;
    let appender = RollingFileAppender::builder()
        .rotation(Rotation::DAILY)
        .filename_prefix("rosterd")
        .filename_suffix("log")
        .max_log_files(log.keep.max(1))
        .build(dir)
        .map_err(|e| format!("cannot open log files in {}: {e}", dir.display()))?;
    let (writer, guard) = tracing_appender::non_blocking(appender);
    let layer = tracing_subscriber::fmt::layer()
        .json()
        .flatten_event(true)
        .with_target(false)
        .with_ansi(false)
        .with_writer(move || ScrubWriter(writer.clone()));
    Ok((Box::new(layer), guard))
}
