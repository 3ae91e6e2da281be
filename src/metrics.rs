//! Prometheus metrics, in one place. Labels are provider, operation and outcome —
//! never user ids or emails (cardinality, privacy). Each event that counts also logs,
//! from the same method, so the two never drift apart.

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use tracing::{info, warn};

use crate::report::PlanReport;
use crate::store::{AccountState, PassOutcome};

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
        }
    }

    /// The Prometheus text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }

    /// The end of the last successful pass, from the run history: set once at start,
    /// so that a restart does not read as "never succeeded" (and fire staleness
    /// alerts) until the next pass.
    pub fn restore_last_success(&self, unix_seconds: f64) {
        self.last_success.set(unix_seconds);
    }

    /// A pass ended with a report: counts it and its operations, and logs it.
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
        if outcome == PassOutcome::Ok {
            self.last_success.set(now_unix);
        }
        for report in &report.providers {
            let Some(r) = &report.result else { continue };
            let p = &report.plan;
            for (op, n) in &r.applied {
                self.op(&p.name, op, "applied", *n);
            }
            let failed_by_op = r.failures.iter().fold(
                std::collections::BTreeMap::<&str, usize>::new(),
                |mut m, f| {
                    *m.entry(f.op.as_str()).or_default() += 1;
                    m
                },
            );
            // Failures beyond the kept list are counted under "unknown" operation.
            let listed: usize = failed_by_op.values().sum();
            for (op, n) in failed_by_op {
                self.op(&p.name, op, "failed", n);
            }
            self.op(
                &p.name,
                "unknown",
                "failed",
                r.failed.saturating_sub(listed),
            );
            self.op(&p.name, "any", "manual", r.manual);
            // Left for the next pass because the provider failed as a whole.
            self.op(&p.name, "any", "deferred", r.deferred);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_prometheus_conventions() {
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
        let text = m.encode();
        for name in [
            "rosterd_passes_total{outcome=\"error\"} 1",
            "rosterd_operations_total{provider=\"hesh\",operation=\"create\",outcome=\"applied\"} 2",
            "rosterd_rate_limited_total{provider=\"hesh\"} 1",
            "rosterd_rate_limit_wait_seconds_total{provider=\"hesh\"} 1.5",
            "rosterd_pass_duration_seconds_count 1",
            "rosterd_snapshot_users{provider=\"hesh\",state=\"active\"} 3",
            "rosterd_last_success_timestamp_seconds",
        ] {
            assert!(text.contains(name), "{name} missing from:\n{text}");
        }
    }
}
