//! `rosterd daemon`: passes on the config's cron schedule, never two at once (a tick
//! that comes while a pass runs is skipped and logged), optional jitter, health and
//! metrics endpoints, a clean stop on SIGTERM/SIGINT (the operations in flight finish
//! and are journaled, no new ones start) and config reload on SIGHUP (a bad new config
//! is refused and the old one stays). A pass running past `daemon.pass_timeout_seconds`
//! is stopped the same way and counted as `timeout` (see [`deadline`]).

pub mod deadline;
pub mod server;
pub mod signals;

use crate::store::PassOutcome;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::signal::unix::{signal, SignalKind};
use tokio::task::JoinHandle;
use tracing::{info, warn};

use crate::config::{parse_schedule, Config};
use crate::executor::apply::Clock;
use server::Health;

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("the daemon needs a `schedule:` (a cron expression) in the config")]
    NoSchedule,
    #[error("schedule {0:?} is not a valid cron expression")]
    BadSchedule(String),
    #[error("cannot serve health and metrics on {addr}: {source}")]
    Listen {
        addr: std::net::SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot listen for signals: {0}")]
    Signals(#[source] std::io::Error),
}

pub struct DaemonOptions {
    pub config_path: PathBuf,
    /// Run a pass at once instead of waiting for the first tick.
    pub run_now: bool,
}

/// When the next pass is due after `now`, with up to `jitter` seconds added.
fn next_tick(config: &Config, now: DateTime<Utc>) -> Result<DateTime<Utc>, DaemonError> {
    let expr = config.schedule.as_deref().ok_or(DaemonError::NoSchedule)?;
    let cron = parse_schedule(expr).map_err(|_| DaemonError::BadSchedule(expr.into()))?;
    let next = cron
        .find_next_occurrence(&now, false)
        .map_err(|_| DaemonError::BadSchedule(expr.into()))?;
    let jitter = config.daemon.jitter_seconds;
    let extra = if jitter > 0 {
        fastrand::u64(0..=jitter * 1000)
    } else {
        0
    };
    Ok(next + chrono::Duration::milliseconds(i64::try_from(extra).unwrap_or(0)))
}

fn until(t: DateTime<Utc>, now: DateTime<Utc>) -> Duration {
    (t - now).to_std().unwrap_or(Duration::ZERO)
}

/// The longest interval between two of the schedule's next [`INTERVAL_TICKS`] ticks
/// after `now` (jitter not counted; 0 without a schedule): the longest, so that a
/// weekday schedule's weekend does not read as a missed pass.
fn interval(schedule: Option<&str>, now: DateTime<Utc>) -> f64 {
    let Some(cron) = schedule.and_then(|e| parse_schedule(e).ok()) else {
        return 0.0;
    };
    let mut longest = chrono::Duration::zero();
    let mut last = cron.find_next_occurrence(&now, false).ok();
    for _ in 0..INTERVAL_TICKS {
        let Some(at) = last else { break };
        let next = cron.find_next_occurrence(&at, false).ok();
        if let Some(n) = next {
            longest = longest.max(n - at);
        }
        last = next;
    }
    longest.num_milliseconds() as f64 / 1000.0
}

/// Ticks looked at for the schedule's interval: enough to span a weekend for a
/// weekday schedule run several times a day.
const INTERVAL_TICKS: usize = 64;

/// When the last `ok` pass in the run history finished (Unix seconds), if any.
/// When the last `ok` pass finished (Unix seconds), from the run history.
pub async fn last_success(config: &Config) -> Option<f64> {
    let store = crate::store::Store::open_read_only(&config.state)
        .await
        .ok()??;
    let runs = store.recent_runs(LAST_SUCCESS_LOOK_BACK).await;
    store.close().await;
    runs.ok()?
        .into_iter()
        .find(|r| r.outcome == Some(PassOutcome::Ok))
        .and_then(|r| r.finished_at)
        .map(|t| t.timestamp_millis() as f64 / 1000.0)
}

/// Runs looked at for the last `ok` pass when the daemon starts.
const LAST_SUCCESS_LOOK_BACK: u32 = 1000;

/// Runs until SIGTERM or SIGINT. `clock` is the wall clock (injected for tests).
pub async fn run(
    mut config: Arc<Config>,
    options: DaemonOptions,
    clock: Arc<Clock>,
) -> Result<(), DaemonError> {
    let mut tick_at = if options.run_now {
        clock()
    } else {
        next_tick(&config, clock())?
    };
    let health = Arc::new(Health::new(config.daemon.unhealthy_after));
    if let Some(at) = last_success(&config).await {
        health.metrics.restore_last_success(at);
    }
    health
        .metrics
        .schedule_interval(interval(config.schedule.as_deref(), clock()));
    let (stop_server, server_stopped) = tokio::sync::oneshot::channel::<()>();
    let (addr, server) = server::serve(config.daemon.listen, Arc::clone(&health), async {
        let _ = server_stopped.await;
    })
    .await
    .map_err(|source| DaemonError::Listen {
        addr: config.daemon.listen,
        source,
    })?;
    info!(listen = %addr, schedule = config.schedule.as_deref().unwrap_or(""), "Daemon started.");

    let mut term = signal(SignalKind::terminate()).map_err(DaemonError::Signals)?;
    let mut int = signal(SignalKind::interrupt()).map_err(DaemonError::Signals)?;
    let mut hup = signal(SignalKind::hangup()).map_err(DaemonError::Signals)?;
    let stop = Arc::new(AtomicBool::new(false));
    let mut pass: Option<JoinHandle<()>> = None;

    loop {
        let sleep = tokio::time::sleep(until(tick_at, clock()));
        tokio::select! {
            _ = sleep => {
                if pass.as_ref().is_some_and(|p| !p.is_finished()) {
                    warn!("The previous pass is still running: this tick is skipped.");
                } else {
                    pass = Some(tokio::spawn(one_pass(
                        Arc::clone(&config),
                        Arc::clone(&health),
                        Arc::clone(&clock),
                        Arc::clone(&stop),
                    )));
                }
                tick_at = next_tick(&config, clock())?;
            }
            _ = term.recv() => break,
            _ = int.recv() => break,
            _ = hup.recv() => {
                // Each outcome is logged and counted by the metrics, in one call.
                match Config::load(&options.config_path) {
                    Ok(new) if new.schedule.is_some() => {
                        health.metrics.config_reloaded();
                        health.unhealthy_after.store(new.daemon.unhealthy_after, Ordering::SeqCst);
                        config = Arc::new(new);
                        health.metrics.schedule_interval(interval(config.schedule.as_deref(), clock()));
                        tick_at = next_tick(&config, clock())?;
                    }
                    Ok(_) => health.metrics.config_reload_refused("the new config has no schedule"),
                    Err(e) => health.metrics.config_reload_refused(&e.to_string()),
                }
            }
        }
    }

    info!("Stopping: operations in flight finish, no new ones start.");
    stop.store(true, Ordering::SeqCst);
    if let Some(p) = pass {
        let limit = Duration::from_secs(config.daemon.stop_timeout_seconds);
        if tokio::time::timeout(limit, p).await.is_err() {
            warn!(
                seconds = limit.as_secs(),
                "The pass did not finish in time; its journal resolves it next start."
            );
        }
    }
    let _ = stop_server.send(());
    let _ = server.await;
    info!("Daemon stopped.");
    Ok(())
}

async fn one_pass(
    config: Arc<Config>,
    health: Arc<Health>,
    clock: Arc<Clock>,
    stop: Arc<AtomicBool>,
) {
    let started = clock();
    let selected: Vec<_> = config.providers.iter().collect();
    let request = crate::sync::ApplyRequest {
        deadline: Some(deadline::PassDeadline {
            limit: Duration::from_secs(config.daemon.pass_timeout_seconds),
            grace: Duration::from_secs(config.daemon.stop_timeout_seconds),
        }),
        // Operations are counted as they end, not when the pass does.
        observer: Some(&health.metrics),
        replica: true,
        ..crate::sync::ApplyRequest::new(&config, &selected, started.date_naive())
    };
    let result = crate::sync::apply_pass(&request, clock.as_ref(), &stop).await;
    if let Some(e) = result.as_ref().err().filter(|e| e.is_lock_busy()) {
        // Another replica (sharing a PostgreSQL state) or a one-shot run is passing:
        // this one waits for the next tick, healthy, and takes over once the holder
        // is gone (its lock dies with it).
        info!(reason = %e, "The run lock is held elsewhere; this pass is skipped, the next tick tries again.");
        health.ready.store(true, Ordering::SeqCst);
        return;
    }
    let seconds = (clock() - started).num_milliseconds() as f64 / 1000.0;
    // Metrics first, health last: whoever sees /healthz change sees the metrics of
    // the pass that changed it.
    let now = clock().timestamp_millis() as f64 / 1000.0;
    let outcome = health
        .metrics
        .pass_ended(&config.state, &result, false, seconds, now)
        .await;
    let ok = outcome == PassOutcome::Ok;
    if ok {
        health.failures_in_a_row.store(0, Ordering::SeqCst);
    } else {
        health.failures_in_a_row.fetch_add(1, Ordering::SeqCst);
    }
    health.ready.store(true, Ordering::SeqCst);
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn the_schedule_interval_is_its_longest_gap() {
        let monday = Utc.with_ymd_and_hms(2026, 11, 23, 12, 0, 0).unwrap();
        for (schedule, seconds) in [
            (Some("*/15 * * * *"), 900.0),
            (Some("0 3 * * *"), 86_400.0),
            // Weekdays at 9 and 17: the weekend, Friday 17:00 to Monday 9:00.
            (Some("0 9,17 * * 1-5"), 64.0 * 3600.0),
            (Some("not cron"), 0.0),
            (None, 0.0),
        ] {
            assert_eq!(interval(schedule, monday), seconds, "{schedule:?}");
        }
    }
}
