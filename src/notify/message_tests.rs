#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use chrono::NaiveDate;
use serde_json::Value;

use super::*;
use crate::executor::apply::{OpFailure, ProviderResult};
use crate::notify::config::DEFAULT_EVENTS;
use crate::plan::LEAVER_REASON;
use crate::plan::{ManualAction, ProviderPlan, Quarantined, Summary};
use crate::providers::ProviderType;
use crate::report::{PlanReport, RemovedProvider, SourceSummary};

fn op(kind: OpKind, id: &str, reason: &str, adopt: bool) -> Operation {
    Operation {
        op: kind,
        external_id: id.into(),
        email: format!("{}@corp.example", id.to_lowercase()),
        vendor_id: None,
        reason: reason.into(),
        changes: Vec::new(),
        record: None,
        fingerprint: None,
        adopt,
    }
}

fn plan(name: &str, operations: Vec<Operation>) -> ProviderPlan {
    let mut p = ProviderPlan {
        name: name.into(),
        provider_type: ProviderType::Hesh,
        summary: Summary::default(),
        operations,
        rejected: Vec::new(),
        manual: Vec::new(),
        held: Vec::new(),
        quarantined: Vec::new(),
        blocked: None,
        leaver_checks: Vec::new(),
        requests: None,
        disableable_before: 0,
        groups: Vec::new(),
        memberships_before: 0,
    };
    p.summarise();
    p
}

fn report(providers: Vec<ProviderReport>) -> PlanReport {
    PlanReport {
        today: NaiveDate::from_ymd_opt(2026, 12, 3).unwrap(),
        dry_run: false,
        source: SourceSummary {
            records: 3,
            users: 3,
            rejected: Vec::new(),
        },
        providers,
        timed_out: false,
        insecure_http: Vec::new(),
        removed_providers: Vec::new(),
        approved: None,
    }
}

fn applied(kinds: &[(&str, usize)]) -> ProviderResult {
    ProviderResult {
        applied: kinds.iter().map(|(k, n)| (k.to_string(), *n)).collect(),
        ..ProviderResult::default()
    }
}

fn json(summary: &PassSummary, on: &[Event]) -> Value {
    serde_json::from_str(&summary.json_body(&summary.triggered(on))).unwrap()
}

#[test]
fn a_clean_pass_has_no_events() {
    let r = report(vec![ProviderReport {
        plan: plan("hesh", vec![op(OpKind::Create, "E1", "new", false)]),
        result: Some(applied(&[("create", 1)])),
    }]);
    let s = from_report("run-1", &r, false);
    assert_eq!(s.outcome, "ok");
    assert!(s.events.is_empty());
    assert!(s.triggered(&Event::ALL).is_empty());
}

#[test]
fn a_blocked_plan_is_the_blocked_event_unless_forced() {
    let mut p = plan("hesh", vec![op(OpKind::Disable, "E1", "gone", false)]);
    p.blocked = Some("would disable 1 of 1 accounts (100%)".into());
    let r = report(vec![ProviderReport {
        plan: p,
        result: None,
    }]);
    let s = from_report("run-2", &r, false);
    assert_eq!(s.outcome, "blocked");
    assert_eq!(s.triggered(&DEFAULT_EVENTS), vec![Event::Blocked]);
    let doc = json(&s, &DEFAULT_EVENTS);
    assert_eq!(doc["format_version"], 1);
    assert_eq!(doc["event"], "blocked");
    assert_eq!(doc["events"], serde_json::json!(["blocked"]));
    assert_eq!(doc["run_id"], "run-2");
    assert_eq!(doc["outcome"], "blocked");
    assert_eq!(
        doc["providers"][0]["blocked"],
        "would disable 1 of 1 accounts (100%)"
    );
    assert!(doc.get("forced").is_none(), "{doc}");

    let forced = from_report("run-3", &r, true);
    assert!(!forced.events.contains(&Event::Blocked));
    assert!(forced.forced);
    // A removed provider blocks even with --force.
    let mut removed = r.clone();
    removed.removed_providers = vec![RemovedProvider {
        name: "old".into(),
        accounts: 2,
    }];
    assert!(from_report("run-4", &removed, true)
        .events
        .contains(&Event::Blocked));
}

#[test]
fn failures_are_listed_first_with_their_scrubbed_messages() {
    crate::redact::register("unit-notify-echoed-key");
    let mut result = applied(&[("create", 1)]);
    result.failed = 2;
    result.failures = vec![OpFailure {
        op: OpKind::Update,
        external_id: "E2".into(),
        email: "e2@corp.example".into(),
        error: "hesh answered 400: bad key unit-notify-echoed-key <!channel>".into(),
    }];
    let mut p = plan("hesh", vec![op(OpKind::Update, "E2", "changed", false)]);
    p.manual = vec![ManualAction {
        external_id: "E3".into(),
        email: "e3@corp.example".into(),
        needed: OpKind::Update,
        reason: "the email cannot change".into(),
    }];
    let r = report(vec![ProviderReport {
        plan: p,
        result: Some(result),
    }]);
    let s = from_report("run-5", &r, false);
    assert_eq!(s.outcome, "failed");
    assert_eq!(
        s.triggered(&[Event::Manual, Event::Failed]),
        vec![Event::Failed, Event::Manual]
    );
    // Two failed (one listed) and one manual action.
    assert_eq!(s.items_total, 3);
    assert_eq!(s.items.len(), 2);
    assert_eq!(s.items[0].kind, "failed");
    assert_eq!(s.items[0].external_id, "E2");
    assert!(!s.items[0].message.contains("unit-notify"), "{:?}", s.items);
    assert_eq!(s.items[1].kind, "manual");
    assert_eq!(s.providers[0].failed, 2);
    assert_eq!(s.providers[0].manual, 1);

    let slack: Value = serde_json::from_str(&s.slack_body(&[Event::Failed])).unwrap();
    let text = slack["text"].as_str().unwrap();
    assert!(
        text.starts_with("*rosterd pass failed* (failed) — run `run-5`"),
        "{text}"
    );
    assert!(
        text.contains("failed update `E2` e2@corp.example at hesh: hesh answered 400"),
        "{text}"
    );
    assert!(
        text.contains("&lt;!channel&gt;"),
        "no ping from a vendor's text: {text}"
    );
    assert!(!text.contains("unit-notify-echoed-key"), "{text}");
    assert!(
        text.contains("\n• *hesh* (hesh): applied 1 (create 1), failed 2, manual 1\n"),
        "zero counts left out: {text}"
    );
    assert_eq!(slack.as_object().unwrap().len(), 1, "only text: {slack}");
}

#[test]
fn only_the_first_items_are_listed() {
    let mut p = plan("hesh", Vec::new());
    p.quarantined = (0..15)
        .map(|i| Quarantined {
            external_id: format!("E{i}"),
            email: format!("e{i}@corp.example"),
            op: OpKind::Create,
            failures: 5,
            last_error: "hesh answered 422: first_name too long".into(),
        })
        .collect();
    let r = report(vec![ProviderReport {
        plan: p,
        result: Some(ProviderResult::default()),
    }]);
    let s = from_report("run-6", &r, false);
    assert_eq!(s.triggered(&Event::ALL), vec![Event::Quarantined]);
    assert_eq!(s.items.len(), MAX_ITEMS);
    assert_eq!(s.items_total, 15);
    let doc = json(&s, &[Event::Quarantined]);
    assert_eq!(doc["items"][0]["kind"], "quarantined");
    assert_eq!(
        doc["items"][0]["message"],
        "failed 5 passes in a row: hesh answered 422: first_name too long"
    );
}

#[test]
fn a_confirmed_leaver_disable_is_named_and_a_failed_one_is_not() {
    let ops = vec![
        op(OpKind::Disable, "L1", LEAVER_REASON, true),
        op(OpKind::Disable, "L2", LEAVER_REASON, true),
        op(OpKind::Disable, "E9", "no longer in the source", false),
        op(OpKind::Disable, "O1", crate::orphans::ORPHAN_REASON, true),
    ];
    let mut result = applied(&[("disable", 3)]);
    result.failed = 1;
    result.failures = vec![OpFailure {
        op: OpKind::Disable,
        external_id: "L2".into(),
        email: "l2@corp.example".into(),
        error: "hesh answered 400: no".into(),
    }];
    let r = report(vec![ProviderReport {
        plan: plan("hesh", ops.clone()),
        result: Some(result),
    }]);
    let s = from_report("run-7", &r, false);
    assert!(s.events.contains(&Event::LeaverDisabled));
    assert_eq!(s.providers[0].leavers_disabled, 1);
    let leavers: Vec<&str> = s
        .items
        .iter()
        .filter(|i| i.kind == "leaver_disabled")
        .map(|i| i.external_id.as_str())
        .collect();
    assert_eq!(leavers, ["L1"]);

    // Not applied (blocked, or a dry run's plan): nothing was disabled.
    let r = report(vec![ProviderReport {
        plan: plan("hesh", ops.clone()),
        result: None,
    }]);
    assert!(!from_report("run-8", &r, false)
        .events
        .contains(&Event::LeaverDisabled));
}

#[test]
fn leaver_disables_the_vendor_did_not_itemise_are_counted_at_the_least() {
    // hesh, which cannot look up, answered "no such account" for one of two blind
    // disables: which one is not in the result, so one is counted, none named.
    let ops = vec![
        op(OpKind::Disable, "L1", LEAVER_REASON, true),
        op(OpKind::Disable, "L2", LEAVER_REASON, true),
    ];
    let mut result = applied(&[("disable", 1)]);
    result.absent = 1;
    let r = report(vec![ProviderReport {
        plan: plan("hesh", ops.clone()),
        result: Some(result),
    }]);
    let tally = leaver_disables(&r.providers[0]);
    assert_eq!((tally.confirmed, tally.exact), (1, false));
    let s = from_report("run-9", &r, false);
    assert!(s.events.contains(&Event::LeaverDisabled));
    assert!(s.items.iter().all(|i| i.kind != "leaver_disabled"));

    // Both absent: none disabled.
    let mut result = applied(&[]);
    result.absent = 2;
    let r = report(vec![ProviderReport {
        plan: plan("hesh", ops),
        result: Some(result),
    }]);
    assert!(!from_report("run-10", &r, false)
        .events
        .contains(&Event::LeaverDisabled));
}

#[test]
fn a_pass_stopped_by_an_error_is_failed_with_the_scrubbed_error() {
    crate::redact::register("unit-notify-error-secret");
    let s = from_error(
        "run-11",
        PassOutcome::Error,
        "cannot read the source: 401 for token unit-notify-error-secret",
    );
    assert_eq!(s.triggered(&DEFAULT_EVENTS), vec![Event::Failed]);
    let doc = json(&s, &DEFAULT_EVENTS);
    assert_eq!(doc["outcome"], "error");
    assert_eq!(doc["event"], "failed");
    let error = doc["error"].as_str().unwrap();
    assert!(error.starts_with("cannot read the source"), "{error}");
    assert!(!error.contains("unit-notify-error-secret"), "{error}");
    assert_eq!(
        from_error("run-12", PassOutcome::Timeout, "ran too long").triggered(&DEFAULT_EVENTS),
        vec![Event::Failed]
    );
}
