//! Carrying out one provider's plan: units of work (a batch create, or one operation)
//! run with bounded concurrency; each operation is journaled before it is sent, and
//! its snapshot row changes in the same transaction that marks it done, only once the
//! vendor confirmed it. A failed operation keeps its old row (with the error counted)
//! and is planned again next pass.

use chrono::{DateTime, Utc};
use futures_util::stream::{self, StreamExt};
use serde::{Deserialize, Serialize};
use tracing::{debug, info, warn};

use super::references::{References, Resolved};
use crate::plan::{OpKind, Operation, ProviderPlan};
use crate::providers::call::{Applied, CallError, OpResult, ProviderFault, Transport};
use crate::providers::{Fingerprint, Provider, Record, StoredRecord};
use crate::store::{
    AccountState, Begun, LeaverOutcome, SnapshotChange, SnapshotUpsert, Store, StoreError,
};

/// The clock, injected: library code never reads the time itself.
pub type Clock = dyn Fn() -> DateTime<Utc> + Send + Sync;

/// What was written to the journal before sending: enough to resend it after a crash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JournalPayload {
    pub op: OpKind,
    pub external_id: String,
    pub email: String,
    #[serde(default)]
    pub vendor_id: Option<String>,
    #[serde(default)]
    pub record: Option<StoredRecord>,
    #[serde(default)]
    pub fingerprint: Option<String>,
    /// A disable adopting an account rosterd held no row for (a leaver's, an orphan's).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub adopt: bool,
}

impl JournalPayload {
    pub fn of(op: &Operation) -> Self {
        JournalPayload {
            op: op.op,
            external_id: op.external_id.clone(),
            email: op.email.clone(),
            vendor_id: op.vendor_id.clone(),
            record: op.record.as_ref().map(Record::to_stored),
            fingerprint: op.fingerprint.map(|f| f.to_string()),
            adopt: op.adopt,
        }
    }

    /// The operation again, to resend it.
    pub fn operation(&self) -> Operation {
        Operation {
            op: self.op,
            external_id: self.external_id.clone(),
            email: self.email.clone(),
            vendor_id: self.vendor_id.clone(),
            reason: "resent after an interrupted run".into(),
            changes: Vec::new(),
            record: self.record.as_ref().map(Record::from_stored),
            fingerprint: self
                .fingerprint
                .as_deref()
                .and_then(|f| f.parse::<Fingerprint>().ok()),
            adopt: self.adopt,
        }
    }
}

/// One failed operation, as the summary shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct OpFailure {
    pub op: OpKind,
    pub external_id: String,
    pub email: String,
    pub error: String,
}

/// What happened to one provider's plan.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct ProviderResult {
    /// Operations the vendor confirmed, by kind.
    pub applied: std::collections::BTreeMap<String, usize>,
    pub failed: usize,
    /// Operations the vendor carried out but that need a person now.
    pub manual: usize,
    /// Interrupted operations from an earlier run, resolved before planning.
    pub resolved: usize,
    /// Operations not started because rosterd was asked to stop; planned again next pass.
    pub not_started: usize,
    /// Operations left for the next pass because the provider failed as a whole
    /// ([`provider_error`](Self::provider_error)): not counted as failures of their
    /// users, and not moving quarantine counters.
    #[serde(skip_serializing_if = "is_zero")]
    pub deferred: usize,
    /// Leavers' blind disables (by key, where the vendor cannot look up) that the
    /// vendor answered with "no such account": recorded, never sent again.
    #[serde(skip_serializing_if = "is_zero")]
    pub absent: usize,
    /// Why the provider stopped for this pass (unreachable, credentials rejected),
    /// said once instead of once per operation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider_error: Option<String>,
    /// HTTP requests rosterd meant to send (a batch is one), resends not counted.
    pub requests: u64,
    /// Resends after a 5xx, a timeout or a dropped connection.
    pub retries: u64,
    /// Answers 429 (each waited out, then resent).
    pub rate_limited: u64,
    /// Milliseconds spent waiting for the vendor's rate-limit windows.
    pub rate_limit_wait_ms: u64,
    /// The first failures (at most [`MAX_FAILURES_KEPT`]), with the vendor's message.
    pub failures: Vec<OpFailure>,
    /// Group changes that failed (SCIM `groups:`), each counted in `failed`; planned
    /// again next pass.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub group_failures: Vec<super::groups::GroupFailure>,
}

pub const MAX_FAILURES_KEPT: usize = 20;

impl ProviderResult {
    fn confirmed(&mut self, kind: OpKind) {
        *self.applied.entry(kind.as_str().to_string()).or_default() += 1;
    }

    fn failed(&mut self, op: &Operation, error: &CallError) {
        self.failed += 1;
        if self.failures.len() < MAX_FAILURES_KEPT {
            self.failures.push(OpFailure {
                op: op.op,
                external_id: op.external_id.clone(),
                email: op.email.clone(),
                error: error.message.clone(),
            });
        }
    }

    /// Counts a failed group change, keeping its message.
    pub fn group_failed(&mut self, group: &str, error: &str) {
        self.failed += 1;
        if self.group_failures.len() < MAX_FAILURES_KEPT {
            self.group_failures.push(super::groups::GroupFailure {
                group: group.to_string(),
                error: error.to_string(),
            });
        }
    }

    /// Adds `other`'s counts and failures (e.g. what resending interrupted operations
    /// did, before the plan).
    pub fn merge(&mut self, other: ProviderResult) {
        for (k, n) in other.applied {
            *self.applied.entry(k).or_default() += n;
        }
        self.failed += other.failed;
        self.manual += other.manual;
        self.resolved += other.resolved;
        self.not_started += other.not_started;
        self.deferred += other.deferred;
        self.absent += other.absent;
        if self.provider_error.is_none() {
            self.provider_error = other.provider_error;
        }
        let room = MAX_FAILURES_KEPT.saturating_sub(self.failures.len());
        self.failures.extend(other.failures.into_iter().take(room));
        let room = MAX_FAILURES_KEPT.saturating_sub(self.group_failures.len());
        self.group_failures
            .extend(other.group_failures.into_iter().take(room));
    }

    pub fn applied_total(&self) -> usize {
        self.applied.values().sum()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error("cannot record progress in the state file: {0}")]
    Store(#[from] StoreError),
    #[error("journal entry {id} cannot be read back: {message}")]
    Journal { id: i64, message: String },
}

/// Everything an apply needs besides the plan.
pub struct ApplyContext<'a> {
    pub store: &'a Store,
    pub provider: &'a dyn Provider,
    pub transport: &'a dyn Transport,
    pub run_id: &'a str,
    pub clock: &'a Clock,
    /// Units of work in flight at once.
    pub concurrency: usize,
    pub progress: &'a dyn crate::progress::Progress,
    /// Set on shutdown: units not yet started are left for the next pass; those in
    /// flight finish and are journaled.
    pub stop: &'a std::sync::atomic::AtomicBool,
    /// `rate_limit.fail_fast_after`: see [`Breaker`].
    pub fail_fast_after: u32,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// Stops a provider for the pass once it has failed as a whole: after
/// `fail_fast_after` operations in a row that could not connect, or at the first
/// 401/403. Otherwise a dead vendor or a wrong key would cost every user its
/// retries (3,000 users × 5 attempts) and list the same error 3,000 times.
struct Breaker {
    after: u32,
    in_a_row: std::sync::atomic::AtomicU32,
    tripped: std::sync::Mutex<Option<String>>,
    /// The last connection failure, for a pass whose unreachable operations were
    /// too few to trip the breaker: they are the provider's failure all the same.
    unreachable: std::sync::Mutex<Option<(u32, String)>>,
}

impl Breaker {
    fn new(after: u32) -> Self {
        Breaker {
            after: after.max(1),
            in_a_row: std::sync::atomic::AtomicU32::new(0),
            tripped: std::sync::Mutex::new(None),
            unreachable: std::sync::Mutex::new(None),
        }
    }

    /// The provider-level error of the pass: why it stopped, or, when it did not,
    /// the connection failures it saw (never a user's own failure).
    fn provider_error(&self, provider: &str) -> Option<String> {
        self.tripped().or_else(|| {
            self.unreachable
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .as_ref()
                .map(|(n, message)| {
                    format!(
                        "{provider}: unreachable: {n} operation(s) could not connect; they \
                         are left for the next pass ({message})"
                    )
                })
        })
    }

    fn tripped(&self) -> Option<String> {
        self.tripped
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    fn trip(&self, why: String) {
        let mut tripped = self
            .tripped
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if tripped.is_none() {
            warn!(error = %why, "Provider stopped for this pass.");
            *tripped = Some(why);
        }
    }

    /// Takes one operation's outcome into account.
    fn observe(&self, provider: &str, outcome: &OpResult) {
        use std::sync::atomic::Ordering::SeqCst;
        match outcome {
            Err(CallError {
                fault: Some(ProviderFault::CredentialsRejected(status)),
                message,
                ..
            }) => self.trip(format!(
                "{provider}: credentials rejected (HTTP {status}): check the provider's key \
                 or token; its operations are left for the next pass ({message})"
            )),
            Err(CallError {
                fault: Some(ProviderFault::Unreachable),
                message,
                ..
            }) => {
                let n = self.in_a_row.fetch_add(1, SeqCst) + 1;
                {
                    let mut seen = self
                        .unreachable
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                    let total = seen.as_ref().map_or(0, |(t, _)| *t) + 1;
                    *seen = Some((total, message.clone()));
                }
                if n >= self.after {
                    self.trip(format!(
                        "{provider}: unreachable: {n} operation(s) in a row could not connect; \
                         the rest are left for the next pass ({message})"
                    ));
                }
            }
            _ => self.in_a_row.store(0, SeqCst),
        }
    }
}

/// Carries out `plan`'s operations. Store errors stop the apply (progress could not be
/// recorded); vendor errors fail only their operation.
pub async fn apply_plan(
    ctx: &ApplyContext<'_>,
    plan: &ProviderPlan,
) -> Result<ProviderResult, ApplyError> {
    // What earlier passes learned about the vendor (SCIM quirks) decides the
    // requests from the start; what this pass learns is remembered below.
    ctx.provider
        .remember_quirks(&ctx.store.quirks(Some(ctx.provider.name())).await?);
    let breaker = &Breaker::new(ctx.fail_fast_after);
    let refs = References::load(ctx.store, ctx.provider, &plan.operations).await?;
    let mut parts = Vec::new();
    match &refs {
        None => parts.extend(run_ops(ctx, &plan.operations, None, breaker).await),
        // People are created before the operations that name them.
        Some(r) => {
            for wave in r.waves(&plan.operations) {
                let ops: Vec<Operation> = wave
                    .iter()
                    .filter_map(|&i| plan.operations.get(i).cloned())
                    .collect();
                parts.extend(run_ops(ctx, &ops, Some(r), breaker).await);
            }
        }
    }
    ctx.progress.finish();
    let mut result = ProviderResult::default();
    for part in parts {
        result.merge(part?);
    }
    result.provider_error = breaker.provider_error(ctx.provider.name());
    // After the users' operations: a member's value is its id there.
    super::groups::apply_groups(ctx, plan, &mut result).await?;
    for (quirk, digest, detail) in ctx.provider.learned_quirks() {
        let name = ctx.provider.name();
        ctx.store
            .record_quirk(name, quirk, &digest, &detail, (ctx.clock)())
            .await?;
    }
    let stats = ctx.transport.stats();
    result.requests = stats.requests;
    result.retries = stats.retries;
    result.rate_limited = stats.throttled;
    result.rate_limit_wait_ms = u64::try_from(stats.waited.as_millis()).unwrap_or(u64::MAX);
    info!(
        provider = %ctx.provider.name(),
        applied = result.applied_total(),
        failed = result.failed,
        manual = result.manual,
        "Plan applied."
    );
    Ok(result)
}

/// Runs `ops` in the adapter's units, with bounded concurrency. Each unit records its
/// operations as soon as the vendor answers, so a crash loses at most the units in
/// flight. With `refs`, each operation is journaled and recorded with its references
/// as keys and sent with them as the vendor's ids.
async fn run_ops(
    ctx: &ApplyContext<'_>,
    ops: &[Operation],
    refs: Option<&References>,
    breaker: &Breaker,
) -> Vec<Result<ProviderResult, ApplyError>> {
    let units = ctx.provider.units(ops);
    stream::iter(units)
        .map(|unit| async move {
            let mut part = ProviderResult::default();
            if ctx.stop.load(std::sync::atomic::Ordering::SeqCst) {
                part.not_started = unit.len();
                return Ok(part);
            }
            if breaker.tripped().is_some() {
                part.deferred = unit.len();
                for op in unit.iter().filter_map(|&i| ops.get(i)) {
                    let deferred = crate::progress::OpOutcome::Deferred;
                    ctx.progress.op_done(ctx.provider.name(), op.op, deferred);
                }
                return Ok(part);
            }
            let unit_ops: Vec<&Operation> = unit.iter().filter_map(|&i| ops.get(i)).collect();
            let resolved = resolve(refs, &unit_ops);
            let recorded: Vec<&Operation> = resolved.iter().map(|r| r.recorded.as_ref()).collect();
            let sent: Vec<&Operation> = resolved.iter().map(|r| r.sent.as_ref()).collect();
            let ids = begin(ctx, &recorded).await?;
            crate::failpoint::reach("journaled");
            let outcomes = ctx.provider.apply(ctx.transport, &sent).await;
            crate::failpoint::reach("applied");
            for ((op, begun), outcome) in recorded.iter().zip(ids).zip(outcomes) {
                breaker.observe(ctx.provider.name(), &outcome);
                let outcome = settle(refs, op, outcome);
                let before = crate::progress::Tally::of(&part);
                finish(ctx, op, begun, outcome, &mut part).await?;
                crate::failpoint::reach("recorded");
                ctx.progress
                    .op_done(ctx.provider.name(), op.op, before.outcome_in(&part));
            }
            Ok(part)
        })
        .buffer_unordered(ctx.concurrency.max(1))
        .collect()
        .await
}

/// Each operation as recorded and as sent (the same, without references).
fn resolve<'o>(refs: Option<&References>, ops: &[&'o Operation]) -> Vec<Resolved<'o>> {
    ops.iter()
        .map(|&op| match refs {
            Some(r) => r.resolve(op),
            None => Resolved {
                recorded: std::borrow::Cow::Borrowed(op),
                sent: std::borrow::Cow::Borrowed(op),
            },
        })
        .collect()
}

/// The vendor's answer as it is recorded: references back to keys, and a create's
/// id noted for the operations that name its person.
fn settle(refs: Option<&References>, recorded: &Operation, outcome: OpResult) -> OpResult {
    match refs {
        Some(r) => {
            r.learn(recorded, &outcome);
            r.restore(outcome, recorded)
        }
        None => outcome,
    }
}

/// Resends the creates an interrupted run (or an unknown answer) left in flight for
/// this provider, before a new plan is made: a create that reached the vendor must be
/// in the snapshot, or rosterd would never disable it. Every resend goes through
/// adoption, so never makes a second account. Other operations left in flight are not
/// resent: the plan sets those accounts as the source says (`PlanContext::uncertain`). They go as the plan's operations do —
/// in the adapter's units (hesh batches them), with the provider's concurrency — so a
/// vendor that left many creates unsettled does not make the pass crawl.
pub async fn resolve_in_flight(ctx: &ApplyContext<'_>) -> Result<ProviderResult, ApplyError> {
    let mut ops = Vec::new();
    let mut ids = Vec::new();
    for entry in ctx.store.in_flight().await? {
        if entry.provider != ctx.provider.name() {
            continue;
        }
        let payload: JournalPayload =
            serde_json::from_str(&entry.payload).map_err(|e| ApplyError::Journal {
                id: entry.id,
                message: e.to_string(),
            })?;
        let op = payload.operation();
        if !op.op.creates() {
            // Not resent: by now it may be stale (a disable of someone rehired since).
            // The plan sets the account as the source says instead, and that
            // operation takes this one's place (`PlanContext::uncertain`).
            continue;
        }
        warn!(
            provider = %entry.provider,
            external_id = %entry.external_id,
            op = op.op.as_str(),
            "Resending an operation an interrupted run left in flight."
        );
        ops.push(op);
        ids.push(entry.id);
    }
    let refs = References::load(ctx.store, ctx.provider, &ops).await?;
    let (ops, ids, refs) = (&ops, &ids, refs.as_ref());
    let parts: Vec<Result<ProviderResult, ApplyError>> = stream::iter(ctx.provider.units(ops))
        .map(|unit| async move {
            let mut part = ProviderResult::default();
            if ctx.stop.load(std::sync::atomic::Ordering::SeqCst) {
                return Ok(part);
            }
            let unit_ops: Vec<&Operation> = unit.iter().filter_map(|&i| ops.get(i)).collect();
            let resolved = resolve(refs, &unit_ops);
            let sent: Vec<&Operation> = resolved.iter().map(|r| r.sent.as_ref()).collect();
            let mut outcomes = ctx.provider.apply(ctx.transport, &sent).await.into_iter();
            for (&i, r) in unit.iter().zip(&resolved) {
                let (Some(_), Some(&id)) = (ops.get(i), ids.get(i)) else {
                    continue;
                };
                let op = r.recorded.as_ref();
                let outcome = outcomes
                    .next()
                    .unwrap_or_else(|| Err(CallError::new(None, "the adapter returned no result")));
                let outcome = settle(refs, op, outcome);
                // The resend carries whatever the interrupted attempt may have done.
                let begun = Begun {
                    id,
                    carries_unknown: true,
                };
                let before = crate::progress::Tally::of(&part);
                finish(ctx, op, begun, outcome, &mut part).await?;
                ctx.progress
                    .op_done(ctx.provider.name(), op.op, before.outcome_in(&part));
                part.resolved += 1;
            }
            Ok(part)
        })
        .buffer_unordered(ctx.concurrency.max(1))
        .collect()
        .await;
    let mut result = ProviderResult::default();
    for part in parts {
        result.merge(part?);
    }
    Ok(result)
}

async fn begin(ctx: &ApplyContext<'_>, ops: &[&Operation]) -> Result<Vec<Begun>, ApplyError> {
    let mut ids = Vec::with_capacity(ops.len());
    for op in ops {
        let payload =
            serde_json::to_string(&JournalPayload::of(op)).unwrap_or_else(|_| "{}".into());
        let fields = op.changed_fields();
        let id = ctx
            .store
            .journal_begin_fields(
                ctx.run_id,
                ctx.provider.name(),
                op.op,
                &op.external_id,
                &payload,
                Some(&fields),
                (ctx.clock)(),
            )
            .await?;
        ids.push(id);
    }
    Ok(ids)
}

/// A failure that leaves it unknown whether the vendor carried the operation out: a
/// 5xx (hesh, for one, may apply a request and still answer 500), no answer after the
/// request left, an unreadable 2xx. Left in the journal as in flight, the operation
/// settled by the next pass: a create is resent through adoption (so never twice);
/// any other operation makes the plan set that account as the source says.
/// Otherwise rosterd could forget an account the vendor made, and never disable it
/// when the person leaves — or keep a row "active" whose account the vendor did
/// disable, and never enable it when the person comes back.
///
/// A create that carries such an unknown outcome from before (`carries_unknown`) stays
/// in flight after any failure: a resend whose lookup failed settles nothing about
/// what the first attempt made. Only a confirmed answer settles it. Other operations
/// are settled by any answer that says they were not carried out (a 4xx): the plan
/// derives them again from the snapshot.
fn outcome_unknown(op: &Operation, e: &CallError, carries_unknown: bool) -> bool {
    e.maybe_applied || (op.op.creates() && carries_unknown)
}

async fn finish(
    ctx: &ApplyContext<'_>,
    op: &Operation,
    begun: Begun,
    outcome: OpResult,
    result: &mut ProviderResult,
) -> Result<(), ApplyError> {
    let id = begun.id;
    let now = (ctx.clock)();
    let name = ctx.provider.name();
    // The audit event of this outcome; each arm fills in what it knows.
    let audit = |outcome, vendor_id: Option<&str>, http_status| {
        crate::audit::OperationAudit {
            run_id: ctx.run_id,
            provider: name,
            external_id: &op.external_id,
            op: op.op,
            fields: op.changed_fields(),
            outcome,
            vendor_id,
            http_status,
        }
        .emit();
    };
    match outcome {
        Ok(Applied::Done {
            vendor_id,
            record,
            adopted,
        }) => {
            let vendor_id = vendor_id.or_else(|| op.vendor_id.clone());
            let record = record.or_else(|| op.record.clone());
            let json = record.as_ref().map(|r| r.to_stored().to_json());
            let change = match (op.op, &record, &json) {
                // A leaver's account, adopted as it is disabled: its row is new.
                (OpKind::Disable, _, _) if op.adopt => SnapshotChange::Upsert(SnapshotUpsert {
                    provider: name,
                    external_id: &op.external_id,
                    vendor_id: vendor_id.as_deref(),
                    email: &op.email,
                    fingerprint: record.as_ref().map_or(Fingerprint(0), Record::fingerprint),
                    state: AccountState::Disabled,
                    record_json: json.as_deref().unwrap_or("{}"),
                    confirmed_at: now,
                }),
                (OpKind::Disable, _, _) => SnapshotChange::State {
                    provider: name,
                    external_id: &op.external_id,
                    state: AccountState::Disabled,
                    confirmed_at: now,
                },
                (OpKind::Delete, _, _) => SnapshotChange::Remove {
                    provider: name,
                    external_id: &op.external_id,
                },
                (_, Some(r), Some(json)) => SnapshotChange::Upsert(SnapshotUpsert {
                    provider: name,
                    external_id: &op.external_id,
                    vendor_id: vendor_id.as_deref(),
                    email: &op.email,
                    fingerprint: r.fingerprint(),
                    state: AccountState::Active,
                    record_json: json,
                    confirmed_at: now,
                }),
                // Re-enabled as it was (its changes could not be pushed).
                _ => SnapshotChange::State {
                    provider: name,
                    external_id: &op.external_id,
                    state: AccountState::Active,
                    confirmed_at: now,
                },
            };
            ctx.store.journal_finish(id, Some(&change), now).await?;
            ctx.store.clear_op_failure(name, &op.external_id).await?;
            // A create resent to settle an unknown outcome finds the account its first
            // attempt made: that is a creation, not a takeover.
            let outcome = if adopted && !begun.carries_unknown {
                crate::audit::AuditOutcome::Adopted
            } else {
                crate::audit::AuditOutcome::Done
            };
            audit(outcome, vendor_id.as_deref(), None);
            result.confirmed(op.op);
        }
        Ok(Applied::Absent) => {
            // The vendor has no such account: nothing to disable, nothing to send again.
            ctx.store.journal_finish(id, None, now).await?;
            ctx.store.clear_op_failure(name, &op.external_id).await?;
            if op.adopt {
                ctx.store
                    .record_leaver_check(name, &op.external_id, LeaverOutcome::Absent, now)
                    .await?;
            }
            audit(crate::audit::AuditOutcome::Absent, None, None);
            result.absent += 1;
        }
        Ok(Applied::Manual { vendor_id, reason }) => {
            let json = op
                .record
                .as_ref()
                .map(|r| r.to_stored().to_json())
                .unwrap_or_else(|| "{}".into());
            let change = SnapshotChange::Upsert(SnapshotUpsert {
                provider: name,
                external_id: &op.external_id,
                vendor_id: vendor_id.as_deref(),
                email: &op.email,
                fingerprint: op.fingerprint.unwrap_or(Fingerprint(0)),
                state: AccountState::Manual,
                record_json: &json,
                confirmed_at: now,
            });
            ctx.store.journal_finish(id, Some(&change), now).await?;
            ctx.store
                .record_failure(name, &op.external_id, &reason)
                .await?;
            warn!(provider = %name, external_id = %op.external_id, reason = %reason, "Needs manual action.");
            let vendor_id = vendor_id.as_deref().or(op.vendor_id.as_deref());
            audit(crate::audit::AuditOutcome::Manual, vendor_id, None);
            result.manual += 1;
        }
        Err(e) if e.fault.is_some() && !outcome_unknown(op, &e, begun.carries_unknown) => {
            // The provider's failure, not this user's: no failure counted against the
            // user (nor towards quarantine); the plan sends it again next pass.
            ctx.store.journal_defer(id, &e.message, now).await?;
            debug!(provider = %name, external_id = %op.external_id, op = op.op.as_str(), error = %e, "Operation deferred: the provider failed as a whole.");
            let vendor_id = op.vendor_id.as_deref();
            audit(crate::audit::AuditOutcome::Deferred, vendor_id, e.status);
            result.deferred += 1;
        }
        Err(e) => {
            let audited = if outcome_unknown(op, &e, begun.carries_unknown) {
                warn!(provider = %name, external_id = %op.external_id, op = op.op.as_str(), error = %e, "The vendor may have carried this out: it is resent before the next plan.");
                crate::audit::AuditOutcome::Unknown
            } else {
                ctx.store.journal_fail(id, &e.message, now).await?;
                crate::audit::AuditOutcome::Failed
            };
            // Counted per user and record: the planner quarantines an operation that
            // keeps failing the same way.
            let fingerprint = op.fingerprint.map(|f| f.to_string()).unwrap_or_default();
            ctx.store
                .record_op_failure(name, &op.external_id, op.op, &fingerprint, &e.message, now)
                .await?;
            warn!(provider = %name, external_id = %op.external_id, op = op.op.as_str(), error = %e, "Operation failed.");
            audit(audited, op.vendor_id.as_deref(), e.status);
            result.failed(op, &e);
        }
    }
    Ok(())
}
