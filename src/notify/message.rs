//! What a webhook is told, made purely from how the pass ended (its report, or the
//! error that stopped it): which [`Event`]s happened, a summary per provider, and the
//! first [`MAX_ITEMS`] things a person may want to look at — as a JSON document
//! (`format: json`) or a Slack message (`format: slack`).
//!
//! Keys and emails are in it (an operator needs them to act); secrets are not: every
//! text is scrubbed here, and the whole body once more before it is sent.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use serde::Serialize;

use super::config::Event;
use crate::plan::{OpKind, Operation};
use crate::report::{PlanReport, ProviderReport};
use crate::store::PassOutcome;

/// Items listed in one message; the rest are counted (`items_total`).
pub const MAX_ITEMS: usize = 10;

/// The version of the JSON document's shape.
pub const FORMAT_VERSION: u32 = 1;

/// How a pass ended, as the webhooks see it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PassSummary {
    pub run_id: String,
    pub outcome: &'static str,
    /// What stopped the pass before it had a report (`outcome` `error` or `timeout`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// `--force` took the pass past its safety guards.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub forced: bool,
    #[serde(skip)]
    pub events: BTreeSet<Event>,
    pub providers: Vec<ProviderSummary>,
    pub items: Vec<Item>,
    /// Items there were in all (`items` holds the first [`MAX_ITEMS`]).
    pub items_total: usize,
}

/// One provider's part of the pass.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProviderSummary {
    pub name: String,
    #[serde(rename = "type")]
    pub provider_type: &'static str,
    /// Why a safety guard stopped its plan.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blocked: Option<String>,
    /// Operations the vendor confirmed, by kind.
    pub applied: BTreeMap<String, usize>,
    pub failed: usize,
    /// Manual actions planned, plus those the vendor left for a person.
    pub manual: usize,
    pub quarantined: usize,
    /// Leavers' pre-existing accounts confirmed disabled (see [`leaver_disables`]).
    pub leavers_disabled: usize,
    #[serde(skip_serializing_if = "is_zero")]
    pub not_started: usize,
    /// Why the provider stopped for the pass (unreachable, credentials rejected).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider_error: Option<String>,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// Something a person may want to look at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Item {
    pub kind: &'static str,
    pub provider: String,
    pub op: &'static str,
    pub external_id: String,
    pub email: String,
    pub message: String,
}

/// Scrubbed text: nothing registered as a secret leaves in a webhook.
fn clean(text: &str) -> String {
    crate::redact::scrub(text).into_owned()
}

/// The summary of a pass that made a report. `force`: guards were overridden.
pub fn from_report(run_id: &str, report: &PlanReport, force: bool) -> PassSummary {
    let outcome = report.outcome(force);
    let forced = force && report.removed_providers.is_empty() && report.any_blocked();
    let mut events = BTreeSet::new();
    if is_failure(outcome) {
        events.insert(Event::Failed);
    }
    if !report.removed_providers.is_empty() || (report.any_blocked() && !force) {
        events.insert(Event::Blocked);
    }
    let mut providers = Vec::new();
    // By kind, in the order they are listed: failures first.
    let mut lists: [Vec<Item>; 4] = Default::default();
    let mut total = 0;
    for p in &report.providers {
        let summary = provider_summary(p);
        if summary.manual > 0 {
            events.insert(Event::Manual);
        }
        if summary.quarantined > 0 {
            events.insert(Event::Quarantined);
        }
        if summary.leavers_disabled > 0 {
            events.insert(Event::LeaverDisabled);
        }
        total += summary.failed + summary.manual + summary.quarantined + summary.leavers_disabled;
        let [failed, quarantined, manual, leavers] = &mut lists;
        items_of(p, failed, quarantined, manual, leavers);
        providers.push(summary);
    }
    let items: Vec<Item> = lists.into_iter().flatten().take(MAX_ITEMS).collect();
    PassSummary {
        run_id: run_id.to_string(),
        outcome: outcome.as_str(),
        error: None,
        forced,
        events,
        providers,
        items_total: total.max(items.len()),
        items,
    }
}

/// The summary of a pass stopped by an error before it had a report.
pub fn from_error(run_id: &str, outcome: PassOutcome, error: &str) -> PassSummary {
    let mut events = BTreeSet::new();
    if is_failure(outcome) {
        events.insert(Event::Failed);
    }
    PassSummary {
        run_id: run_id.to_string(),
        outcome: outcome.as_str(),
        error: Some(clean(error)),
        forced: false,
        events,
        providers: Vec::new(),
        items: Vec::new(),
        items_total: 0,
    }
}

fn is_failure(outcome: PassOutcome) -> bool {
    matches!(
        outcome,
        PassOutcome::Failed | PassOutcome::Error | PassOutcome::Timeout
    )
}

fn provider_summary(p: &ProviderReport) -> ProviderSummary {
    let plan = &p.plan;
    let result = p.result.as_ref();
    ProviderSummary {
        name: plan.name.clone(),
        provider_type: plan.provider_type.as_str(),
        blocked: plan.blocked.as_deref().map(clean),
        applied: result.map(|r| r.applied.clone()).unwrap_or_default(),
        failed: result.map_or(0, |r| r.failed),
        manual: plan.manual.len() + result.map_or(0, |r| r.manual),
        quarantined: plan.quarantined.len(),
        leavers_disabled: leaver_disables(p).confirmed,
        not_started: result.map_or(0, |r| r.not_started),
        provider_error: result.and_then(|r| r.provider_error.as_deref()).map(clean),
    }
}

fn items_of(
    p: &ProviderReport,
    failed: &mut Vec<Item>,
    quarantined: &mut Vec<Item>,
    manual: &mut Vec<Item>,
    leavers: &mut Vec<Item>,
) {
    let plan = &p.plan;
    let item = |kind, op: OpKind, external_id: &str, email: &str, message: &str| Item {
        kind,
        provider: plan.name.clone(),
        op: op.as_str(),
        external_id: external_id.to_string(),
        email: email.to_string(),
        message: clean(message),
    };
    if let Some(r) = &p.result {
        for f in &r.failures {
            failed.push(item("failed", f.op, &f.external_id, &f.email, &f.error));
        }
    }
    for q in &plan.quarantined {
        let message = format!("failed {} passes in a row: {}", q.failures, q.last_error);
        quarantined.push(item(
            "quarantined",
            q.op,
            &q.external_id,
            &q.email,
            &message,
        ));
    }
    for m in &plan.manual {
        manual.push(item(
            "manual",
            m.needed,
            &m.external_id,
            &m.email,
            &m.reason,
        ));
    }
    let tally = leaver_disables(p);
    if tally.exact {
        for op in tally.disabled {
            leavers.push(item(
                "leaver_disabled",
                op.op,
                &op.external_id,
                &op.email,
                "a leaver's existing account was disabled (and is now held by rosterd)",
            ));
        }
    }
}

/// The leavers' pre-existing accounts a pass disabled.
pub struct LeaverTally<'r> {
    /// Disables of adopted leaver accounts that did not fail.
    pub disabled: Vec<&'r Operation>,
    /// How many of them the vendor surely confirmed.
    pub confirmed: usize,
    /// Each of `disabled` was confirmed. Not so when the result holds outcomes it
    /// does not say per account (the vendor had no such account, a person must act,
    /// not started, failures past those listed): then `confirmed` is the least it can
    /// be, and no account is named.
    pub exact: bool,
}

/// A disable that adopts an account rosterd held no row for, and is not an orphan's:
/// a leaver's, found by lookup ([`crate::plan::LEAVER_REASON`]) or sent blind by key where the
/// vendor cannot look up (hesh). Those are the only two kinds of adopting disable.
fn is_leaver_disable(o: &Operation) -> bool {
    o.op == OpKind::Disable && o.adopt && !o.reason.starts_with(crate::orphans::ORPHAN_REASON)
}

/// Which leaver disables were carried out, from the plan and its result alone.
pub fn leaver_disables(p: &ProviderReport) -> LeaverTally<'_> {
    let Some(result) = &p.result else {
        return LeaverTally {
            disabled: Vec::new(),
            confirmed: 0,
            exact: true,
        };
    };
    let disabled: Vec<&Operation> = p
        .plan
        .operations
        .iter()
        .filter(|o| is_leaver_disable(o))
        .filter(|o| {
            !result
                .failures
                .iter()
                .any(|f| f.op == o.op && f.external_id == o.external_id)
        })
        .collect();
    let unattributed = result.absent
        + result.manual
        + result.deferred
        + result.not_started
        + result.failed.saturating_sub(result.failures.len());
    let applied = result
        .applied
        .get(OpKind::Disable.as_str())
        .copied()
        .unwrap_or(0);
    let confirmed = disabled.len().saturating_sub(unattributed).min(applied);
    LeaverTally {
        exact: confirmed == disabled.len(),
        confirmed,
        disabled,
    }
}

impl PassSummary {
    /// The events of this pass that `on` listens for, most urgent first.
    pub fn triggered(&self, on: &[Event]) -> Vec<Event> {
        Event::ALL
            .into_iter()
            .filter(|e| self.events.contains(e) && on.contains(e))
            .collect()
    }

    /// `format: json`: `{"format_version": 1, "event": the most urgent, "events": […],
    /// …}` on one line.
    pub fn json_body(&self, triggered: &[Event]) -> String {
        #[derive(Serialize)]
        struct Body<'a> {
            format_version: u32,
            event: &'static str,
            events: Vec<&'static str>,
            #[serde(flatten)]
            summary: &'a PassSummary,
        }
        let body = Body {
            format_version: FORMAT_VERSION,
            event: triggered.first().map_or("none", |e| e.as_str()),
            events: triggered.iter().map(|e| e.as_str()).collect(),
            summary: self,
        };
        // Plain data with string keys: serialisation cannot fail.
        clean(&serde_json::to_string(&body).unwrap_or_default())
    }

    /// `format: slack`: `{"text": "…"}`, a short mrkdwn message.
    pub fn slack_body(&self, triggered: &[Event]) -> String {
        let text = self.slack_text(triggered);
        clean(&serde_json::json!({ "text": text }).to_string())
    }

    fn slack_text(&self, triggered: &[Event]) -> String {
        let names: Vec<&str> = triggered.iter().map(|e| e.as_str()).collect();
        let mut out = format!(
            "*rosterd pass {}* ({}) — run `{}`",
            esc(self.outcome),
            esc(&names.join(", ")),
            esc(&self.run_id)
        );
        if self.forced {
            out.push_str("\nforced past the safety guards (--force)");
        }
        if let Some(e) = &self.error {
            let _ = write!(out, "\n*error:* {}", esc(e));
        }
        for p in &self.providers {
            let _ = write!(
                out,
                "\n• *{}* ({}): {}",
                esc(&p.name),
                p.provider_type,
                counts(p)
            );
            if let Some(reason) = &p.blocked {
                let _ = write!(out, "\n    blocked: {}", esc(reason));
            }
            if let Some(e) = &p.provider_error {
                let _ = write!(out, "\n    stopped: {}", esc(e));
            }
        }
        if !self.items.is_empty() {
            let _ = write!(
                out,
                "\n*First {} of {}:*",
                self.items.len(),
                self.items_total
            );
            for i in &self.items {
                let _ = write!(
                    out,
                    "\n• {} {} `{}` {} at {}: {}",
                    i.kind,
                    i.op,
                    esc(&i.external_id),
                    esc(&i.email),
                    esc(&i.provider),
                    esc(&i.message)
                );
            }
        }
        out
    }
}

/// `applied 3 (create 2, update 1), failed 1, manual 2` for one provider (counts
/// that are zero left out).
fn counts(p: &ProviderSummary) -> String {
    let applied: usize = p.applied.values().sum();
    let kinds: Vec<String> = p.applied.iter().map(|(k, n)| format!("{k} {n}")).collect();
    let mut out = if kinds.is_empty() {
        format!("applied {applied}")
    } else {
        format!("applied {applied} ({})", kinds.join(", "))
    };
    // Only what happened: a line of zeros hides the one count that matters.
    for (what, n) in [
        ("failed", p.failed),
        ("manual", p.manual),
        ("quarantined", p.quarantined),
        ("leavers disabled", p.leavers_disabled),
        ("not started", p.not_started),
    ] {
        if n > 0 {
            let _ = write!(out, ", {what} {n}");
        }
    }
    out
}

/// Text as Slack's mrkdwn reads it literally: `&`, `<` and `>` are its control
/// characters (a `<http://…|link>` or `<!channel>` in a vendor's message must not
/// become a link or a ping).
fn esc(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
#[path = "message_tests.rs"]
mod tests;
