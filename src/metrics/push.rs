//! One-shot runs (`rosterd sync`, a Kubernetes CronJob) have no `/metrics` to scrape:
//! with `metrics.push_url` the run pushes its metrics to a Prometheus Pushgateway when
//! it ends — the same series the daemon serves, in the classic text format, `PUT` to
//! `<push_url>/metrics/job/<job>` (the group replaced). A push that fails is a warning:
//! it never changes the run's outcome or exit code, and takes at most
//! `metrics.timeout_seconds`.

use std::time::Duration;

use serde::Deserialize;
use tracing::{info, warn};

use super::exposition::Exposition;
use super::Metrics;
use crate::config::{Config, Issue};
use crate::executor::apply::Clock;
use crate::net::deliver::{deliver, Delivery};
use crate::net::EndpointUrl;
use crate::report::PlanReport;
use crate::sync::SyncError;

const DEFAULT_JOB: &str = "rosterd";
const DEFAULT_TIMEOUT_SECONDS: u64 = 10;
const MAX_TIMEOUT_SECONDS: u64 = 60;

/// `metrics:` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPush {
    push_url: String,
    #[serde(default)]
    job: Option<String>,
    #[serde(default)]
    allow_insecure_http: bool,
    #[serde(default)]
    timeout_seconds: Option<u64>,
}

/// `metrics:`, checked.
#[derive(Debug, Clone)]
pub struct PushConfig {
    pub url: EndpointUrl,
    pub job: String,
    pub timeout: Duration,
}

impl RawPush {
    /// The checked config; problems are pushed with their key path.
    pub fn validate(self, issues: &mut Vec<Issue>) -> Option<PushConfig> {
        let url = match EndpointUrl::parse(&self.push_url, self.allow_insecure_http) {
            Ok(u) => Some(u),
            Err(message) => {
                issues.push(Issue::new("metrics.push_url".into(), message));
                None
            }
        };
        let job = self.job.unwrap_or_else(|| DEFAULT_JOB.into());
        let job_ok = !job.is_empty()
            && job
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !job_ok {
            issues.push(Issue::new(
                "metrics.job".into(),
                format!("{job:?}: use letters, digits, '-' and '_' only"),
            ));
        }
        let seconds = self.timeout_seconds.unwrap_or(DEFAULT_TIMEOUT_SECONDS);
        if seconds == 0 || seconds > MAX_TIMEOUT_SECONDS {
            issues.push(Issue::new(
                "metrics.timeout_seconds".into(),
                format!("{seconds} is out of range (1 to {MAX_TIMEOUT_SECONDS})"),
            ));
        }
        Some(PushConfig {
            url: url?,
            job,
            timeout: Duration::from_secs(seconds),
        })
        .filter(|_| job_ok && (1..=MAX_TIMEOUT_SECONDS).contains(&seconds))
    }
}

/// Where the group of `job` is pushed.
fn group_url(push: &PushConfig) -> Result<EndpointUrl, String> {
    let base = push.url.url().as_str().trim_end_matches('/');
    EndpointUrl::parse(
        &format!("{base}/metrics/job/{}", push.job),
        push.url.allow_insecure_http(),
    )
}

/// Records how the run ended in `metrics` (its operations were counted as they
/// ended, through the pass's observer) and pushes them. Never fails the run.
pub async fn push_run(
    config: &Config,
    metrics: &Metrics,
    result: &Result<PlanReport, SyncError>,
    force: bool,
    seconds: f64,
    clock: &Clock,
) {
    let Some(push) = &config.metrics else {
        return;
    };
    if let Some(at) = crate::daemon::last_success(config).await {
        metrics.restore_last_success(at);
    }
    let now = clock().timestamp_millis() as f64 / 1000.0;
    metrics
        .pass_ended(&config.state, result, force, seconds, now)
        .await;
    let url = match group_url(push) {
        Ok(u) => u,
        Err(e) => {
            warn!(error = %e, "Metrics not pushed; the run is not affected.");
            return;
        }
    };
    let body = metrics.encode(Exposition::Classic);
    let delivery = Delivery {
        url: &url,
        method: reqwest::Method::PUT,
        content_type: Exposition::Classic.content_type(),
        body: &body,
        total: push.timeout,
        receiver: "the Pushgateway",
    };
    let origin = crate::net::origin(push.url.url());
    match deliver(&delivery, clock).await {
        Ok(()) => info!(origin = %origin, job = %push.job, "Metrics pushed."),
        Err(e) => warn!(
            origin = %origin,
            error = %crate::redact::scrub(&e.to_string()),
            "Metrics not pushed; the run is not affected."
        ),
    }
}
