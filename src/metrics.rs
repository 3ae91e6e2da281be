//! Prometheus metrics, in one place. Labels are provider, operation and outcome —
//! never user ids or emails (cardinality, privacy). Each event that counts also logs,
//! from the same method, so the two never drift apart.
//!
//! Operations are counted as they end (the executor tells [`Metrics`] through
//! [`OpObserver`]), so `rosterd_operations_total` moves during a long pass; the
//! per-provider request counters (429s, resends, rate-limit waits) come from each
//! provider's transport when its pass ends. `/metrics` answers OpenMetrics or the
//! classic text format, as the scraper asks ([`exposition`]).

pub mod exposition;
pub mod push;

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use tracing::{error, info, warn};

use crate::plan::OpKind;
use crate::progress::{OpObserver, OpOutcome};
use crate::report::PlanReport;
use crate::store::{AccountState, PassOutcome};
use exposition::Exposition;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OperationLabels {
    pub provider: String,
    pub operation: String,
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ProviderLabels {
    pub provider: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StateLabels {
    pub provider: String,
    pub state: String,
}

pub struct Metrics {
    registry: Registry,
    passes: Family<OutcomeLabels, Counter>,
    operations: Family<OperationLabels, Counter>,
    rate_limited: Family<ProviderLabels, Counter>,
    retries: Family<ProviderLabels, Counter>,
    rate_limit_wait: Family<ProviderLabels, Counter<f64, AtomicU64>>,
    pass_duration: Histogram,
    snapshot_users: Family<StateLabels, Gauge>,
    last_success: Gauge<f64, AtomicU64>,
    config_reloads: Family<OutcomeLabels, Counter>,
    last_pass: Family<OutcomeLabels, Gauge>,
    quarantined: Family<ProviderLabels, Gauge>,
    schedule_interval: Gauge<f64, AtomicU64>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("rosterd");
        let passes = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "passes",
            "Sync passes by outcome (ok, blocked, failed, stopped, timeout, error)",
            passes.clone(),
        );
        let operations = Family::<OperationLabels, Counter>::default();
        registry.register(
            "operations",
            "Operations sent to vendors by provider, operation and outcome (applied, failed, manual, deferred)",
            operations.clone(),
        );
        let rate_limited = Family::<ProviderLabels, Counter>::default();
        registry.register(
            "rate_limited",
            "Answers 429 (too many requests) by provider",
            rate_limited.clone(),
        );
        let retries = Family::<ProviderLabels, Counter>::default();
        registry.register(
            "retries",
            "Requests resent after a 5xx, timeout or dropped connection",
            retries.clone(),
        );
        let rate_limit_wait = Family::<ProviderLabels, Counter<f64, AtomicU64>>::default();
        registry.register(
            "rate_limit_wait_seconds",
            "Time spent waiting for vendors' rate-limit windows",
            rate_limit_wait.clone(),
        );
        let pass_duration = Histogram::new([1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0]);
        registry.register(
            "pass_duration_seconds",
            "Duration of sync passes",
            pass_duration.clone(),
        );
        let snapshot_users = Family::<StateLabels, Gauge>::default();
        registry.register(
            "snapshot_users",
            "Accounts in the snapshot by provider and state",
            snapshot_users.clone(),
        );
        let last_success = Gauge::<f64, AtomicU64>::default();
        registry.register(
            "last_success_timestamp_seconds",
            "Unix time of the last pass that ended ok",
            last_success.clone(),
        );
        let config_reloads = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "config_reloads",
            "Config reloads asked for by SIGHUP, by outcome (ok, refused: the old config stays)",
            config_reloads.clone(),
        );
        let last_pass = Family::<OutcomeLabels, Gauge>::default();
        registry.register(
            "last_pass_outcome",
            "1 for how the last pass ended (ok, blocked, failed, stopped, timeout, error), 0 for the others",
            last_pass.clone(),
        );
        let quarantined = Family::<ProviderLabels, Gauge>::default();
        registry.register(
            "quarantined_operations",
            "Operations the last pass held back because they failed safety.quarantine_after runs in a row",
            quarantined.clone(),
        );
        let schedule_interval = Gauge::<f64, AtomicU64>::default();
        registry.register(
            "schedule_interval_seconds",
            "Longest interval between two of the next 64 ticks of the daemon's schedule (for staleness alerts)",
            schedule_interval.clone(),
        );
        // Known label values start at 0, so that the first failed pass or refused
        // reload is an increase a rule can see, not a series appearing at 1.
        for o in PassOutcome::ALL {
            passes
                .get_or_create(&OutcomeLabels {
                    outcome: o.as_str().into(),
                })
                .inc_by(0);
        }
        for outcome in ["ok", "refused"] {
            config_reloads
                .get_or_create(&OutcomeLabels {
                    outcome: outcome.into(),
                })
                .inc_by(0);
        }
        Metrics {
            registry,
            passes,
            operations,
            rate_limited,
            retries,
            rate_limit_wait,
            pass_duration,
            snapshot_users,
            last_success,
            config_reloads,
            last_pass,
            quarantined,
            schedule_interval,
        }
    }

    /// The text exposition, in `format`.
    pub fn encode(&self, format: Exposition) -> String {
        let mut out = String::new();
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        match format {
            Exposition::OpenMetrics => out,
            Exposition::Classic => exposition::to_classic(&out),
        }
    }

    /// The schedule's interval (the longest between its next ticks), at start and
    /// after each reload: alerts compare the last success with it.
    pub fn schedule_interval(&self, seconds: f64) {
        self.schedule_interval.set(seconds);
    }

    /// How the last pass ended, as a gauge per outcome (an alert needs the last
    /// outcome, not a count of them).
    fn last_pass(&self, outcome: PassOutcome) {
        for o in PassOutcome::ALL {
            self.last_pass
                .get_or_create(&OutcomeLabels {
                    outcome: o.as_str().into(),
                })
                .set(i64::from(o == outcome));
        }
    }

    /// SIGHUP brought a new config into use.
    pub fn config_reloaded(&self) {
        self.reload("ok");
        info!("Config reloaded.");
    }

    /// SIGHUP's new config was refused (`why`): the old one stays.
    pub fn config_reload_refused(&self, why: &str) {
        self.reload("refused");
        error!(error = why, "Config reload refused; keeping the old one.");
    }

    fn reload(&self, outcome: &str) {
        self.config_reloads
            .get_or_create(&OutcomeLabels {
                outcome: outcome.into(),
            })
            .inc();
    }

    /// The end of the last successful pass, from the run history: set once at start,
    /// so that a restart does not read as "never succeeded" (and fire staleness
    /// alerts) until the next pass.
    pub fn restore_last_success(&self, unix_seconds: f64) {
        self.last_success.set(unix_seconds);
    }

    /// A pass ended with `result` (the daemon's, or a one-shot run's before its push):
    /// the account counts the state file at `state` holds now, then how the pass
    /// ended ([`Metrics::pass_finished`] / [`Metrics::pass_error`]). Its outcome.
    pub async fn pass_ended(
        &self,
        state: &crate::store::StateLocation,
        result: &Result<PlanReport, crate::sync::SyncError>,
        force: bool,
        seconds: f64,
        now_unix: f64,
    ) -> PassOutcome {
        if let Ok(Some(store)) = crate::store::Store::open_read_only(state).await {
            if let Ok(counts) = store.snapshot_counts().await {
                self.snapshot_counts(&counts);
            }
            store.close().await;
        }
        match result {
            Ok(report) => {
                let outcome = report.outcome(force);
                self.pass_finished(report, outcome, seconds, now_unix);
                outcome
            }
            Err(e) => {
                self.pass_error(e.outcome(), &e.to_string(), seconds);
                e.outcome()
            }
        }
    }

    /// A pass ended with a report: counts it and what its providers' transports saw
    /// (its operations were counted as they ended), and logs it.
    pub fn pass_finished(
        &self,
        report: &PlanReport,
        outcome: PassOutcome,
        seconds: f64,
        now_unix: f64,
    ) {
        self.passes
            .get_or_create(&OutcomeLabels {
                outcome: outcome.as_str().into(),
            })
            .inc();
        self.pass_duration.observe(seconds);
        self.last_pass(outcome);
        if outcome == PassOutcome::Ok {
            self.last_success.set(now_unix);
        }
        self.quarantined.clear();
        for p in &report.providers {
            self.quarantined
                .get_or_create(&ProviderLabels {
                    provider: p.plan.name.clone(),
                })
                .set(i64::try_from(p.plan.quarantined.len()).unwrap_or(i64::MAX));
        }
        // Operations were counted as they ended (`OpObserver`); what the transport
        // saw is counted once per provider here.
        for report in &report.providers {
            let Some(r) = &report.result else { continue };
            let p = &report.plan;
            self.rate_limited
                .get_or_create(&ProviderLabels {
                    provider: p.name.clone(),
                })
                .inc_by(r.rate_limited);
            self.retries
                .get_or_create(&ProviderLabels {
                    provider: p.name.clone(),
                })
                .inc_by(r.retries);
            self.waited(&p.name, r.rate_limit_wait_ms as f64 / 1000.0);
        }
        info!(outcome = outcome.as_str(), seconds, "Pass finished.");
    }

    /// A pass ended without a report: `outcome` is `error`, or `timeout` when it was
    /// abandoned past its deadline.
    pub fn pass_error(&self, outcome: PassOutcome, error: &str, seconds: f64) {
        self.passes
            .get_or_create(&OutcomeLabels {
                outcome: outcome.as_str().into(),
            })
            .inc();
        self.pass_duration.observe(seconds);
        self.last_pass(outcome);
        warn!(error, seconds, "Pass could not run.");
    }

    fn op(&self, provider: &str, operation: &str, outcome: &str, n: usize) {
        if n == 0 {
            return;
        }
        self.operations
            .get_or_create(&OperationLabels {
                provider: provider.into(),
                operation: operation.into(),
                outcome: outcome.into(),
            })
            .inc_by(n as u64);
    }

    /// Time waited for a provider's rate-limit window.
    pub fn waited(&self, provider: &str, seconds: f64) {
        self.rate_limit_wait
            .get_or_create(&ProviderLabels {
                provider: provider.into(),
            })
            .inc_by(seconds);
    }

    /// The snapshot's accounts per provider and state, after a pass.
    pub fn snapshot_counts(&self, counts: &[(String, AccountState, u64)]) {
        self.snapshot_users.clear();
        for (provider, state, n) in counts {
            self.snapshot_users
                .get_or_create(&StateLabels {
                    provider: provider.clone(),
                    state: state.as_str().into(),
                })
                .set(i64::try_from(*n).unwrap_or(i64::MAX));
        }
    }
}

impl OpObserver for Metrics {
    fn op_done(&self, provider: &str, op: OpKind, outcome: OpOutcome) {
        self.op(provider, op.as_str(), outcome.as_str(), 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Metrics with a sample in every family (an empty family is not encoded).
    fn populated() -> Metrics {
        let m = Metrics::new();
        m.rate_limited
            .get_or_create(&ProviderLabels {
                provider: "hesh".into(),
            })
            .inc();
        m.waited("hesh", 1.5);
        m.pass_error(PassOutcome::Error, "cannot read the source", 0.5);
        m.op("hesh", "create", "applied", 2);
        m.snapshot_counts(&[("hesh".into(), AccountState::Active, 3)]);
        m.config_reloaded();
        m.op_done("hesh", OpKind::Disable, OpOutcome::Deferred);
        m.retries
            .get_or_create(&ProviderLabels {
                provider: "hesh".into(),
            })
            .inc();
        m.quarantined
            .get_or_create(&ProviderLabels {
                provider: "hesh".into(),
            })
            .set(1);
        m.schedule_interval(60.0);
        m
    }

    #[test]
    fn names_follow_prometheus_conventions() {
        let text = populated().encode(Exposition::OpenMetrics);
        for name in [
            "rosterd_passes_total{outcome=\"error\"} 1",
            "rosterd_operations_total{provider=\"hesh\",operation=\"create\",outcome=\"applied\"} 2",
            "rosterd_rate_limited_total{provider=\"hesh\"} 1",
            "rosterd_rate_limit_wait_seconds_total{provider=\"hesh\"} 1.5",
            "rosterd_pass_duration_seconds_count 1",
            "rosterd_snapshot_users{provider=\"hesh\",state=\"active\"} 3",
            "rosterd_last_success_timestamp_seconds",
            "rosterd_config_reloads_total{outcome=\"ok\"} 1",
            "rosterd_operations_total{provider=\"hesh\",operation=\"disable\",outcome=\"deferred\"} 1",
        ] {
            assert!(text.contains(name), "{name} missing from:\n{text}");
        }
    }

    /// prometheus_client writes HELP texts as they are; the classic format would read
    /// a backslash or a line break in one as an escape or the end of the line.
    #[test]
    fn help_texts_need_no_escaping() {
        let text = populated().encode(Exposition::Classic);
        let helps: Vec<&str> = text.lines().filter(|l| l.starts_with("# HELP ")).collect();
        assert_eq!(helps.len(), 12, "{text}");
        assert!(helps.iter().all(|l| !l.contains('\\')), "{text}");
    }
}
