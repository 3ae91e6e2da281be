//! One sync pass: source → snapshot → plan per provider → guards → report.
//!
//! Scheduled, one-shot and dry-run passes all go through [`plan_pass`]; only whether
//! the plan is then executed differs.

use std::collections::BTreeSet;

use chrono::NaiveDate;
use tracing::{info, warn, Instrument};

use std::sync::atomic::Ordering;

use crate::config::{Config, ProviderConfig};
use crate::daemon::deadline::{self, PassDeadline, PassFlags};
use crate::executor::apply::{self, ApplyContext, Clock};
use crate::executor::http::HttpTransport;
use crate::executor::lookup::Lookups;
use crate::plan::{self, PlanContext};
use crate::progress::{Bars, Progress, Silent};
use crate::providers;
use crate::providers::request::RequestsPreview;
use crate::report::{PlanReport, RemovedProvider, SourceSummary};
use crate::source::{self, SourceError, SourceLoad};
use crate::store::{PassOutcome, RunLock, RunMode, Store, StoreError};

/// Plans one provider against its snapshot in `store`: the snapshot is read lean, and
/// the details of the rows the plan touches are loaded before planning again.
pub async fn plan_provider(
    provider: &dyn providers::Provider,
    config: &ProviderConfig,
    users: &[crate::user::User],
    store: Option<&Store>,
    ctx: &PlanContext,
) -> Result<plan::ProviderPlan, SyncError> {
    let mut snapshot = match store {
        Some(s) => s.snapshot(&config.name).await?,
        None => Vec::new(),
    };
    match plan::plan_provider(provider, config, users, &snapshot, ctx) {
        Ok(p) => return Ok(p),
        Err(plan::NeedDetails(rows)) => {
            if let Some(s) = store {
                s.fill_details(&config.name, &mut snapshot, &rows).await?;
            }
        }
    }
    plan::plan_provider(provider, config, users, &snapshot, ctx).map_err(|need| {
        SyncError::DetailsMissing {
            provider: config.name.clone(),
            rows: need.0.len(),
        }
    })
}

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("{0}")]
    Lock(#[from] crate::store::LockError),
    #[error("{0}")]
    Apply(#[from] crate::executor::apply::ApplyError),
    #[error("{0}")]
    Transport(#[from] crate::executor::http::TransportError),
    #[error(
        "provider {provider}: {rows} snapshot row(s) still lack their details after loading them"
    )]
    DetailsMissing { provider: String, rows: usize },
    #[error("cannot read the source: {0}")]
    Source(#[from] SourceError),
    #[error(
        "the config names attributes the source does not have (nothing was planned or \
         sent):\n  - {}",
        .0.join("\n  - ")
    )]
    UnknownAttributes(Vec<String>),
    #[error(
        "the pass ran past daemon.pass_timeout_seconds and its operations in flight were \
         not done {seconds} s after it started: abandoned; the next pass resolves them"
    )]
    PassAbandoned { seconds: u64 },
    #[error("{0}")]
    SavedPlan(#[from] crate::saved_plan::SavedPlanError),
    #[error("cannot list {provider}'s accounts, so its orphans are unknown (nothing was sent): {message}")]
    Orphans { provider: String, message: String },
    /// A state-file error before the pass says which file (see [`SyncError::State`]).
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("{}", state_message(state, source))]
    State {
        /// The state as messages name it (never a password).
        state: String,
        #[source]
        source: StoreError,
    },
}

impl SyncError {
    /// How a pass that ended in this error is recorded: `timeout` when it was
    /// abandoned past its deadline, else `error`.
    pub fn outcome(&self) -> PassOutcome {
        if matches!(self, SyncError::PassAbandoned { .. }) {
            PassOutcome::Timeout
        } else {
            PassOutcome::Error
        }
    }

    /// Names the state file in a state-file error, so the operator knows which file.
    /// The run lock is held by another run (or replica).
    pub fn is_lock_busy(&self) -> bool {
        matches!(self, SyncError::Lock(crate::store::LockError::Busy { .. }))
    }

    fn in_state_file(self, state: &crate::store::StateLocation) -> SyncError {
        match self {
            SyncError::Store(source) => SyncError::State {
                state: state.display().to_string(),
                source,
            },
            other => other,
        }
    }
}

fn state_message(shown: &str, source: &StoreError) -> String {
    let inner = source.to_string();
    if inner.contains(shown) {
        inner
    } else {
        format!("state file {shown}: {inner}")
    }
}

/// What a real pass is asked to do.
#[derive(Clone, Copy)]
pub struct ApplyRequest<'a> {
    pub config: &'a Config,
    /// The providers to sync (all, or those named on the command line).
    pub selected: &'a [&'a ProviderConfig],
    pub today: NaiveDate,
    /// Apply plans a safety guard blocked.
    pub force: bool,
    /// Progress bars on a terminal.
    pub show_progress: bool,
    /// A pass running past it stops like on a stop request and is recorded as
    /// `timeout` (see [`crate::daemon::deadline`]).
    pub deadline: Option<PassDeadline>,
    /// `rosterd orphans --disable`: the plan is the orphans' disables, nothing else.
    pub orphans: bool,
    /// `sync --plan FILE`: apply these saved operations instead of planning.
    pub saved: Option<SavedApply<'a>>,
    /// Asked with the plan before anything is sent (a `sync` on a terminal): `false`
    /// sends nothing.
    pub confirm: Option<&'a (dyn Fn(&PlanReport) -> bool + Sync)>,
    /// Told of each operation as it ends (the daemon's metrics).
    pub observer: Option<&'a dyn crate::progress::OpObserver>,
    /// One of several daemon replicas on a shared (PostgreSQL) state: a run lock held
    /// elsewhere is another replica's turn, not a pass that failed to start, so no
    /// webhook is told of it.
    pub replica: bool,
}

/// A saved plan to apply exactly (see [`crate::saved_plan`]).
#[derive(Clone, Copy)]
pub struct SavedApply<'a> {
    pub plan: &'a crate::saved_plan::SavedPlan,
    pub path: &'a std::path::Path,
    /// Apply it although a guard blocked it (recorded in the run history).
    pub approve: bool,
}

impl ApplyRequest<'_> {
    /// Whether blocked plans are applied: `--force`, or an approved saved plan.
    pub fn overrides_guards(&self) -> bool {
        self.force || self.saved.is_some_and(|s| s.approve)
    }
}

impl<'a> ApplyRequest<'a> {
    /// A pass over `selected` for `today`: guards honoured, no progress bars, no
    /// deadline.
    pub fn new(config: &'a Config, selected: &'a [&'a ProviderConfig], today: NaiveDate) -> Self {
        ApplyRequest {
            config,
            selected,
            today,
            force: false,
            show_progress: false,
            deadline: None,
            orphans: false,
            saved: None,
            confirm: None,
            observer: None,
            replica: false,
        }
    }
}

/// Applies one pass for real: takes the run lock, opens (or creates) the state file,
/// resends what an interrupted run left in flight, plans, and applies every selected
/// provider's plan concurrently — except plans a safety guard blocked, unless `force`.
/// The run is recorded in the run history with its [`PassOutcome`]. `stop` (a signal)
/// lets what is in flight finish and starts nothing new. Returns the report with each
/// result.
pub async fn apply_pass(
    request: &ApplyRequest<'_>,
    clock: &Clock,
    stop: &std::sync::atomic::AtomicBool,
) -> Result<PlanReport, SyncError> {
    let config = request.config;
    let pass = match Pass::open(config, clock).await {
        Ok(pass) => pass,
        Err(e) if request.replica && e.is_lock_busy() => return Err(e),
        Err(e) => {
            // A pass that could not start (the state file locked by another run, or
            // unreadable) is told too: no pass ran, and none will until it is fixed.
            let result = Err(e.in_state_file(&config.state));
            crate::notify::after_pass(&config.notify, NOT_STARTED, &result, false, clock).await;
            return result;
        }
    };
    let span = tracing::info_span!("pass", run_id = %pass.run_id);
    let work = pass.run(request).instrument(span.clone());
    let result = tokio::select! {
        r = work => r,
        () = deadline::watch(stop, &pass.flags, request.deadline).instrument(span) => {
            Err(SyncError::PassAbandoned {
                seconds: request.deadline.map_or(0, |d| (d.limit + d.grace).as_secs()),
            })
        }
    };
    let recorded = pass.record(&result, request.overrides_guards()).await;
    if recorded.is_ok() {
        pass.prune(config.state_retention_days).await;
    }
    // A pass that ran but could not be recorded is an error, as before the Pass
    // value: the history would not show it.
    let result = match (result, recorded) {
        (Ok(_), Err(e)) => Err(SyncError::Store(e)),
        (result, _) => result,
    };
    let result = result.map_err(|e| e.in_state_file(&config.state));
    // Told once the pass is in the history and the run lock is released (a slow
    // receiver must not hold the state file); bounded by each webhook's timeout.
    let run_id = pass.run_id.clone();
    drop(pass);
    crate::notify::after_pass(
        &config.notify,
        &run_id,
        &result,
        request.overrides_guards(),
        clock,
    )
    .await;
    result
}

/// The run id a notification names for a pass that could not start (none was
/// recorded).
pub const NOT_STARTED: &str = "not-started";

/// One real pass, from the run lock to the run history: [`Pass::open`] →
/// [`Pass::run`] (resolve what was in flight → plan → guards → apply) →
/// [`Pass::record`].
struct Pass<'c> {
    store: Store,
    run_id: String,
    clock: &'c Clock,
    /// The pass's own stop and deadline flags, set by [`deadline::watch`].
    flags: PassFlags,
    /// Held until the pass is recorded.
    _lock: RunLock,
}

impl<'c> Pass<'c> {
    /// Takes the run lock, opens the state file and records the start of the run.
    async fn open(config: &Config, clock: &'c Clock) -> Result<Pass<'c>, SyncError> {
        let lock = RunLock::acquire(&config.state).await?;
        let store = Store::open(&config.state).await?;
        let run_id = uuid::Uuid::new_v4().to_string();
        store.run_start(&run_id, RunMode::Apply, clock()).await?;
        Ok(Pass {
            store,
            run_id,
            clock,
            flags: PassFlags::default(),
            _lock: lock,
        })
    }

    /// Resolves what earlier runs left in flight, plans, and applies each provider's
    /// plan (blocked ones only with `force`); what the resends did counts as this
    /// pass's work.
    async fn run(&self, request: &ApplyRequest<'_>) -> Result<PlanReport, SyncError> {
        info!("Run started.");
        let selected = request.selected;
        let adapters: Vec<Box<dyn providers::Provider>> =
            selected.iter().map(|pc| providers::build(pc)).collect();
        // Each pacer starts from the window an earlier process left (issue #16 item 7).
        let transports = crate::executor::windows::transports(
            Some(&self.store),
            selected,
            &adapters,
            self.clock,
        )
        .await?;
        let work = self.run_with(request, &adapters, &transports);
        crate::executor::windows::keep_saved(&self.store, selected, &transports, work).await
    }

    /// [`Pass::run`] once the transports are built.
    async fn run_with(
        &self,
        request: &ApplyRequest<'_>,
        adapters: &[Box<dyn providers::Provider>],
        transports: &[HttpTransport<'_>],
    ) -> Result<PlanReport, SyncError> {
        let selected = request.selected;
        let silent = Silent;
        let resends = crate::progress::Observed {
            bar: &silent,
            observer: request.observer,
        };
        let contexts: Vec<ApplyContext<'_>> = selected
            .iter()
            .zip(adapters)
            .zip(transports)
            .map(|((pc, adapter), transport)| ApplyContext {
                store: &self.store,
                provider: adapter.as_ref(),
                transport,
                run_id: &self.run_id,
                clock: self.clock,
                concurrency: pc.rate_limit.max_concurrency,
                fail_fast_after: pc.rate_limit.fail_fast_after,
                progress: &resends,
                stop: &self.flags.stop,
            })
            .collect();
        if let Some(saved) = request.saved {
            let report = self.saved_report(request, saved).await?;
            return self.apply(request, contexts, Vec::new(), report).await;
        }
        let mut resolved = Vec::with_capacity(contexts.len());
        for ctx in &contexts {
            resolved.push(apply::resolve_in_flight(ctx).await?);
        }
        let options = PassOptions {
            dry_run: false,
            show_requests: false,
            orphans: request.orphans,
        };
        let lookups = Lookups::new(
            Some(&self.store),
            self.clock,
            selected,
            adapters,
            transports,
        );
        let report = plan_source(
            request.config,
            selected,
            Some(&self.store),
            request.today,
            options,
            Some(&lookups),
        )
        .await?;
        if let Some(confirm) = request.confirm {
            if report.any_operations() && !confirm(&report) {
                info!("Plan not confirmed: nothing sent.");
                return Ok(report);
            }
        }
        self.apply(request, contexts, resolved, report).await
    }

    /// The saved plan's operations as this pass's report, once nothing they were
    /// planned against has moved.
    async fn saved_report(
        &self,
        request: &ApplyRequest<'_>,
        saved: SavedApply<'_>,
    ) -> Result<PlanReport, SyncError> {
        use crate::saved_plan;
        saved_plan::check_approval(saved.plan, saved.path, saved.approve)?;
        saved_plan::check_current(saved.plan, saved.path, request.config, &self.store).await?;
        let mut report = saved_plan::report(saved.plan, request.selected);
        if saved.approve && report.any_blocked() {
            let approval = saved_plan::Approval::now(saved.path, (self.clock)());
            warn!(by = %approval.by, plan = %approval.plan, "Blocked plan applied as approved.");
            report.approved = Some(approval);
        }
        info!(plan = %saved.path.display(), "Applying a saved plan.");
        Ok(report)
    }

    /// Applies each provider's plan in `report` concurrently (blocked ones only when
    /// the guards are overridden); `resolved` is what the resends before planning
    /// did, counted as this pass's work.
    async fn apply(
        &self,
        request: &ApplyRequest<'_>,
        contexts: Vec<ApplyContext<'_>>,
        resolved: Vec<apply::ProviderResult>,
        mut report: PlanReport,
    ) -> Result<PlanReport, SyncError> {
        // A provider removed from the config blocks the pass even with --force: its
        // accounts must be dealt with first (restored, or forgotten on purpose).
        let force = request.overrides_guards() && report.removed_providers.is_empty();
        let bars = progress_bars(&report, request.show_progress, force);
        let report_approved = report.approved.is_some();
        let progress: Vec<crate::progress::Observed<'_>> = bars
            .iter()
            .map(|bar| crate::progress::Observed {
                bar: bar.as_ref(),
                observer: request.observer,
            })
            .collect();
        let contexts: Vec<ApplyContext<'_>> = contexts
            .into_iter()
            .zip(&progress)
            .map(|(ctx, bar)| ApplyContext {
                progress: bar,
                ..ctx
            })
            .collect();
        let runs = report.providers.iter().zip(&contexts).map(|(r, ctx)| async move {
            let plan = &r.plan;
            if plan.blocked.is_some() && !force {
                return Ok(None);
            }
            if let Some(reason) = &plan.blocked {
                if report_approved {
                    warn!(provider = %plan.name, reason = %reason, "Safety guard overridden: the saved plan was approved.");
                } else {
                    warn!(provider = %plan.name, reason = %reason, "Safety guard overridden by --force.");
                }
            }
            let span = tracing::info_span!("provider", provider = %plan.name);
            apply::apply_plan(ctx, plan).instrument(span).await.map(Some)
        });
        let results = futures_util::future::join_all(runs).await;
        let mut resolved = resolved.into_iter();
        for (provider, result) in report.providers.iter_mut().zip(results) {
            let earlier = resolved.next().unwrap_or_default();
            // What the resends did counts as this pass's work: a create confirmed on
            // resend is an applied create, a resend that failed is a failure.
            provider.result = result?.map(|mut r| {
                r.merge(earlier);
                r
            });
        }
        report.timed_out = self.flags.timed_out.load(Ordering::SeqCst);
        Ok(report)
    }

    /// Records how the pass ended in the run history: its outcome and report, or the
    /// error that stopped it. A failure to record is logged, and returned for the
    /// caller to decide (a pass that ran but is not in the history fails).
    async fn record(
        &self,
        result: &Result<PlanReport, SyncError>,
        force: bool,
    ) -> Result<(), StoreError> {
        let (outcome, summary) = match result {
            Ok(report) => (report.outcome(force), report.to_json()),
            Err(e) => (
                e.outcome(),
                serde_json::json!({ "error": e.to_string() }).to_string(),
            ),
        };
        let recorded = self
            .store
            .run_finish(&self.run_id, (self.clock)(), outcome, &summary)
            .await;
        match &recorded {
            Ok(()) => info!(run_id = %self.run_id, outcome = outcome.as_str(), "Run finished."),
            Err(e) => warn!(error = %e, "Cannot record the run in the run history."),
        }
        recorded
    }
}

impl Pass<'_> {
    /// `state_retention_days`: once the pass is recorded, journal entries and runs past
    /// the limit go. A failure to prune is logged and changes nothing else: the pass
    /// did its work, and the next one prunes again.
    async fn prune(&self, retention_days: u32) {
        match self
            .store
            .prune_history(retention_days, (self.clock)())
            .await
        {
            Ok(p) if p.journal + p.runs > 0 => info!(
                run_id = %self.run_id,
                journal = p.journal,
                runs = p.runs,
                retention_days,
                "Old history pruned."
            ),
            Ok(_) => {}
            Err(e) => warn!(error = %e, "Cannot prune old history from the state file."),
        }
    }
}

/// One bar per provider with something to send, on a terminal only.
fn progress_bars(report: &PlanReport, show: bool, force: bool) -> Vec<Box<dyn Progress>> {
    let bars = if show { Bars::on_terminal() } else { None };
    report
        .providers
        .iter()
        .map(|r| &r.plan)
        .map(|p| match &bars {
            Some(b) if !p.operations.is_empty() && (p.blocked.is_none() || force) => {
                b.provider(&p.name, p.operations.len() as u64)
            }
            _ => Box::new(Silent) as Box<dyn Progress>,
        })
        .collect()
}

/// The providers the state file holds active or manual-state accounts for that are
/// not in the config.
async fn removed_providers(
    config: &Config,
    store: &Store,
) -> Result<Vec<RemovedProvider>, SyncError> {
    let mut removed: Vec<RemovedProvider> = Vec::new();
    for (name, state, n) in store.snapshot_counts().await? {
        if state == crate::store::AccountState::Disabled
            || n == 0
            || config.providers.iter().any(|p| p.name == name)
        {
            continue;
        }
        match removed.last_mut() {
            Some(last) if last.name == name => last.accounts += n,
            _ => removed.push(RemovedProvider { name, accounts: n }),
        }
    }
    Ok(removed)
}

/// The scope keys and the attributes mapping templates read of `selected` that no
/// record of `loaded` carries, each with its
/// key path (`providers[2].scope.exclude.departmnt: …`). Nothing to say of an empty
/// source (the source guard speaks for it).
pub fn unknown_scope_keys(
    config: &Config,
    selected: &[&ProviderConfig],
    loaded: &SourceLoad,
) -> Vec<String> {
    if loaded.records == 0 {
        return Vec::new();
    }
    config
        .providers
        .iter()
        .enumerate()
        .filter(|(_, p)| selected.iter().any(|s| s.name == p.name))
        .flat_map(|(i, p)| {
            let at = format!("providers[{i}]");
            let mut unknown = p.scope.unknown_keys(&at, &loaded.attribute_columns);
            // A template reading a misspelt column would send it empty to everyone.
            unknown.extend(p.mapping.unknown_attributes(&at, &loaded.attribute_columns));
            unknown
        })
        .collect()
}

/// What a pass is asked to do besides planning.
#[derive(Debug, Clone, Copy, Default)]
pub struct PassOptions {
    /// Nothing is sent and nothing written.
    pub dry_run: bool,
    /// Attach the requests each plan would send.
    pub show_requests: bool,
    /// Plan only the disables of the orphans (see [`crate::orphans`]), listed
    /// through the pass's vendors.
    pub orphans: bool,
}

pub async fn plan_pass(
    config: &Config,
    selected: &[&ProviderConfig],
    store: Option<&Store>,
    today: NaiveDate,
    options: PassOptions,
) -> Result<PlanReport, SyncError> {
    plan_source(config, selected, store, today, options, None).await
}

/// Reads the source and plans; with `lookups` (the vendors: a real pass, or an
/// orphans dry run), leavers' existing accounts are looked up first (real passes
/// only), or the orphans listed.
pub(crate) async fn plan_source(
    config: &Config,
    selected: &[&ProviderConfig],
    store: Option<&Store>,
    today: NaiveDate,
    options: PassOptions,
    lookups: Option<&Lookups<'_>>,
) -> Result<PlanReport, SyncError> {
    let loaded = source::from_config(&config.source).load().await?;
    info!(
        records = loaded.records,
        users = loaded.users.len(),
        rejected = loaded.rejected.len(),
        "Source read."
    );
    plan_with(config, selected, store, today, options, loaded, lookups)
        .await
        .map_err(|e| e.in_state_file(&config.state))
}

/// Plans from an already loaded source.
pub async fn plan_loaded(
    config: &Config,
    selected: &[&ProviderConfig],
    store: Option<&Store>,
    today: NaiveDate,
    options: PassOptions,
    loaded: SourceLoad,
) -> Result<PlanReport, SyncError> {
    plan_with(config, selected, store, today, options, loaded, None).await
}

async fn plan_with(
    config: &Config,
    selected: &[&ProviderConfig],
    store: Option<&Store>,
    today: NaiveDate,
    options: PassOptions,
    loaded: SourceLoad,
    lookups: Option<&Lookups<'_>>,
) -> Result<PlanReport, SyncError> {
    // A misspelt scope key would silently include or exclude nobody.
    let unknown = unknown_scope_keys(config, selected, &loaded);
    if !unknown.is_empty() {
        return Err(SyncError::UnknownAttributes(unknown));
    }
    let held: BTreeSet<String> = loaded.held_identities();
    let mut failures = std::collections::BTreeMap::new();
    let mut unsettled = std::collections::BTreeMap::<String, BTreeSet<String>>::new();
    let mut uncertain = std::collections::BTreeMap::<String, BTreeSet<String>>::new();
    let mut leavers = std::collections::BTreeMap::new();
    if let Some(s) = store {
        for pc in selected {
            failures.insert(pc.name.clone(), s.op_failures(&pc.name).await?);
            let knowledge = plan::LeaverKnowledge {
                checked: s.leaver_checks(&pc.name).await?,
                ..Default::default()
            };
            leavers.insert(pc.name.clone(), knowledge);
        }
        for entry in s.in_flight().await? {
            let keys = if entry.op.creates() {
                &mut unsettled
            } else {
                &mut uncertain
            };
            keys.entry(entry.provider)
                .or_default()
                .insert(entry.external_id);
        }
    }
    let mut ctx = PlanContext {
        today,
        provision_days_before_start: config.source.provision_days_before_start,
        held,
        quarantine_after: config.safety.quarantine_after,
        failures,
        unsettled,
        uncertain,
        leavers,
        groups: std::collections::BTreeMap::new(),
    };
    if let Some(s) = store {
        for pc in selected.iter().filter(|pc| pc.mapping.has_groups()) {
            ctx.groups
                .insert(pc.name.clone(), s.group_snapshot(&pc.name).await?);
        }
    }
    let removed = match store {
        Some(s) => removed_providers(config, s).await?,
        None => Vec::new(),
    };
    let source_block = if removed.is_empty() {
        let block = plan::check_source_size(loaded.users.len(), &config.safety);
        if let Some(reason) = &block {
            warn!(reason = %reason, "Source guard tripped: no provider will be changed.");
        }
        block
    } else {
        let reason = RemovedProvider::reason(&removed);
        warn!(reason = %reason, "Provider removed from the config: no provider will be changed.");
        Some(reason)
    };
    let mut plans = Vec::with_capacity(selected.len());
    for pc in selected {
        let provider = providers::build(pc);
        let mut p = plan_provider(provider.as_ref(), pc, &loaded.users, store, &ctx).await?;
        // Leavers' existing accounts are looked up (reads only) before the guards
        // see the plan, so that what they find counts like any disable. Not when the
        // source is suspect: a broken export must not disable anyone.
        if let (Some(vendors), true) = (lookups, options.orphans) {
            let found =
                crate::orphans::find(vendors, provider.as_ref(), &loaded.users, &ctx.held, store)
                    .await?;
            if let Some(e) = &found.error {
                return Err(SyncError::Orphans {
                    provider: pc.name.clone(),
                    message: e.clone(),
                });
            }
            p = crate::orphans::disable_plan(p, &found, provider.capabilities().disable);
        } else if let (Some(lookups), None, false) = (lookups, &source_block, options.dry_run) {
            if !p.leaver_checks.is_empty() {
                let checks = std::mem::take(&mut p.leaver_checks);
                let knowledge = ctx.leavers.entry(pc.name.clone()).or_default();
                let failed = lookups.run(&pc.name, checks, knowledge).await?;
                p = plan_provider(provider.as_ref(), pc, &loaded.users, store, &ctx).await?;
                p.leaver_checks = failed;
            }
        }
        plan::apply_guards(&mut p, &config.safety, source_block.as_deref());
        if options.show_requests {
            // What the vendor turned out not to do (SCIM quirks) shapes the requests.
            if let Some(s) = store {
                provider.remember_quirks(&s.quirks(Some(&pc.name)).await?);
            }
            p.requests = Some(RequestsPreview {
                base_url: pc.base_url.as_str().trim_end_matches('/').to_string(),
                headers: provider
                    .headers()
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), v))
                    .collect(),
                requests: provider.requests(&p.operations),
            });
            // The group changes go after the users' operations, as they are sent.
            if let (Some(api), Some(preview)) = (provider.groups(), p.requests.as_mut()) {
                preview
                    .requests
                    .extend(p.groups.iter().flat_map(|g| api.preview(g)));
            }
        }
        if let Some(reason) = &p.blocked {
            warn!(provider = %pc.name, reason = %reason, "Plan blocked by a safety guard.");
        }
        info!(
            provider = %pc.name,
            create = p.summary.create,
            update = p.summary.update,
            disable = p.summary.disable,
            enable = p.summary.enable,
            manual = p.summary.manual,
            rejected = p.summary.rejected,
            "Plan made."
        );
        plans.push(p);
    }
    Ok(PlanReport {
        today,
        dry_run: options.dry_run,
        source: SourceSummary {
            records: loaded.records,
            users: loaded.users.len(),
            rejected: loaded.rejected,
        },
        providers: plans.into_iter().map(Into::into).collect(),
        timed_out: false,
        insecure_http: crate::report::insecure_endpoints(config),
        removed_providers: removed,
        approved: None,
    })
}
