//! Notifications: after each real pass (`sync`, a daemon pass, `orphans --disable`),
//! every webhook of `notify:` whose events happened is sent a summary of the pass.
//!
//! [`config`] reads and checks the section, [`message`] makes the summary and its
//! bodies from the pass alone (pure, unit-tested), [`sender`] posts them. A webhook
//! never changes how the pass ended: all are sent at once, each within its own
//! `timeout_seconds`, and one that cannot be reached is a warning naming it by its key
//! (`notify[0]`) and origin — never by its URL, which is a secret.

pub mod config;
pub mod message;
pub mod sender;

use tracing::{info, warn};

pub use config::{Event, Format, Webhook};
pub use message::PassSummary;

use crate::executor::apply::Clock;
use crate::report::PlanReport;

/// Tells the webhooks of `hooks` that care how the pass `run_id` ended: with its
/// report, or the error that stopped it. Returns once each is delivered, refused or
/// out of time; never fails.
pub async fn after_pass(
    hooks: &[Webhook],
    run_id: &str,
    result: &Result<PlanReport, crate::sync::SyncError>,
    force: bool,
    clock: &Clock,
) {
    if hooks.is_empty() {
        return;
    }
    let summary = match result {
        Ok(report) => message::from_report(run_id, report, force),
        Err(e) => message::from_error(run_id, e.outcome(), &e.to_string()),
    };
    let sends = hooks.iter().filter_map(|hook| {
        let triggered = summary.triggered(&hook.on);
        let event = triggered.first()?.as_str();
        let body = match hook.format {
            Format::Json => summary.json_body(&triggered),
            Format::Slack => summary.slack_body(&triggered),
        };
        Some(async move {
            match sender::send(hook, &body, clock).await {
                Ok(()) => info!(
                    webhook = %hook.key,
                    origin = %hook.url.origin(),
                    event,
                    format = hook.format.as_str(),
                    "Notification sent."
                ),
                Err(e) => warn!(
                    webhook = %hook.key,
                    origin = %hook.url.origin(),
                    event,
                    error = %crate::redact::scrub(&e.to_string()),
                    "Notification not sent; the pass is not affected."
                ),
            }
        })
    });
    futures_util::future::join_all(sends).await;
}
