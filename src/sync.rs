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
use crate::plan::{self, PlanContext};
use crate::progress::{Bars, Progress, Silent};
use crate::providers;
use crate::providers::request::RequestsPreview;
use crate::report::{PlanReport, SourceSummary};
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
        "the pass ran past daemon.pass_timeout_seconds and its operations in flight were \
         not done {seconds} s after it started: abandoned; the next pass resolves them"
    )]
    PassAbandoned { seconds: u64 },
    /// A state-file error before the pass says which file (see [`SyncError::State`]).
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("{}", state_message(path, source))]
    State {
        path: std::path::PathBuf,
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
    fn in_state_file(self, path: &std::path::Path) -> SyncError {
        match self {
            SyncError::Store(source) => SyncError::State {
                path: path.to_path_buf(),
                source,
            },
            other => other,
        }
    }
}

fn state_message(path: &std::path::Path, source: &StoreError) -> String {
    let inner = source.to_string();
    let shown = path.display().to_string();
    if inner.contains(&shown) {
        inner
    } else {
        format!("state file {shown}: {inner}")
    }
}

/// Applies one pass for real: takes the run lock, opens (or creates) the state file,
/// resends what an interrupted run left in flight, plans, and applies every selected
/// provider's plan concurrently — except plans a safety guard blocked, unless `force`.
/// The run is recorded in the run history. Returns the report with each result.
/// With a `deadline`, a pass running past it stops like on `stop` and is recorded as
/// `timeout` (see [`crate::daemon::deadline`]).
#[allow(clippy::too_many_arguments)]
pub async fn apply_pass(
    config: &Config,
    selected: &[&ProviderConfig],
    today: NaiveDate,
    force: bool,
    clock: &Clock,
    show_progress: bool,
    stop: &std::sync::atomic::AtomicBool,
    deadline: Option<PassDeadline>,
) -> Result<PlanReport, SyncError> {
    apply_pass_inner(
        config,
        selected,
        today,
        force,
        clock,
        show_progress,
        stop,
        deadline,
    )
    .await
    .map_err(|e| e.in_state_file(&config.state))
}

#[allow(clippy::too_many_arguments)]
async fn apply_pass_inner(
    config: &Config,
    selected: &[&ProviderConfig],
    today: NaiveDate,
    force: bool,
    clock: &Clock,
    show_progress: bool,
    requested_stop: &std::sync::atomic::AtomicBool,
    deadline: Option<PassDeadline>,
) -> Result<PlanReport, SyncError> {
    // The pass reads its own stop flag, set by the caller's (a signal) or the deadline.
    let flags = PassFlags::default();
    let stop = &flags.stop;
    let _lock = RunLock::acquire(&config.state)?;
    let store = Store::open(&config.state).await?;
    let run_id = uuid::Uuid::new_v4().to_string();
    store.run_start(&run_id, RunMode::Apply, clock()).await?;
    // Every event of the pass carries its run id (and, below, its provider).
    let span = tracing::info_span!("pass", run_id = %run_id);
    let work = async {
        info!("Run started.");
        let adapters: Vec<Box<dyn providers::Provider>> =
            selected.iter().map(|pc| providers::build(pc)).collect();
        let mut transports = Vec::with_capacity(selected.len());
        for (pc, adapter) in selected.iter().zip(&adapters) {
            transports.push(HttpTransport::new(pc, adapter.as_ref(), clock)?);
        }
        let silent = Silent;
        let contexts: Vec<ApplyContext<'_>> = selected
            .iter()
            .zip(&adapters)
            .zip(&transports)
            .map(|((pc, adapter), transport)| ApplyContext {
                store: &store,
                provider: adapter.as_ref(),
                transport,
                run_id: &run_id,
                clock,
                concurrency: pc.rate_limit.max_concurrency,
                progress: &silent,
                stop,
            })
            .collect();
        let mut resolved = Vec::with_capacity(contexts.len());
        for ctx in &contexts {
            resolved.push(apply::resolve_in_flight(ctx).await?);
        }
        let options = PassOptions {
            dry_run: false,
            show_requests: false,
        };
        let mut report = plan_pass(config, selected, Some(&store), today, options).await?;
        // One bar per provider with something to send, on a terminal only.
        let bars = if show_progress {
            Bars::on_terminal()
        } else {
            None
        };
        let progress: Vec<Box<dyn Progress>> = report
            .providers
            .iter()
            .map(|r| &r.plan)
            .map(|p| match &bars {
                Some(b) if !p.operations.is_empty() && (p.blocked.is_none() || force) => {
                    b.provider(&p.name, p.operations.len() as u64)
                }
                _ => Box::new(Silent) as Box<dyn Progress>,
            })
            .collect();
        let contexts: Vec<ApplyContext<'_>> = contexts
            .into_iter()
            .zip(&progress)
            .map(|(ctx, bar)| ApplyContext {
                progress: bar.as_ref(),
                ..ctx
            })
            .collect();
        let runs = report.providers.iter().zip(&contexts).map(|(r, ctx)| async move {
            let plan = &r.plan;
            if plan.blocked.is_some() && !force {
                return Ok(None);
            }
            if let Some(reason) = &plan.blocked {
                warn!(provider = %plan.name, reason = %reason, "Safety guard overridden by --force.");
            }
            let span = tracing::info_span!("provider", provider = %plan.name);
            apply::apply_plan(ctx, plan).instrument(span).await.map(Some)
        });
        let results = futures_util::future::join_all(runs).await;
        for ((provider, result), earlier) in report.providers.iter_mut().zip(results).zip(resolved) {
            // What the resends did counts as this pass's work: a create confirmed on
            // resend is an applied create, a resend that failed is a failure.
            provider.result = result?.map(|mut r| {
                r.merge(earlier);
                r
            });
        }
        report.timed_out = flags.timed_out.load(Ordering::SeqCst);
        let outcome = report.outcome(force);
        store
            .run_finish(&run_id, clock(), outcome, &report.to_json())
            .await?;
        info!(outcome = outcome.as_str(), "Run finished.");
        Ok(report)
    }
    .instrument(span.clone());
    let result: Result<PlanReport, SyncError> = tokio::select! {
        r = work => r,
        () = deadline::watch(requested_stop, &flags, deadline).instrument(span) => {
            Err(SyncError::PassAbandoned {
                seconds: deadline.map_or(0, |d| (d.limit + d.grace).as_secs()),
            })
        }
    };
    if let Err(e) = &result {
        // The run history says why this pass did nothing (or stopped part way).
        let summary = serde_json::json!({ "error": e.to_string() }).to_string();
        if let Err(store_err) = store
            .run_finish(&run_id, clock(), e.outcome(), &summary)
            .await
        {
            warn!(error = %store_err, "Cannot record the failed run in the run history.");
        }
    }
    result
}

/// What a pass is asked to do besides planning.
#[derive(Debug, Clone, Copy, Default)]
pub struct PassOptions {
    /// Nothing is sent and nothing written.
    pub dry_run: bool,
    /// Attach the requests each plan would send.
    pub show_requests: bool,
}

pub async fn plan_pass(
    config: &Config,
    selected: &[&ProviderConfig],
    store: Option<&Store>,
    today: NaiveDate,
    options: PassOptions,
) -> Result<PlanReport, SyncError> {
    let loaded = source::from_config(&config.source).load().await?;
    info!(
        records = loaded.records,
        users = loaded.users.len(),
        rejected = loaded.rejected.len(),
        "Source read."
    );
    plan_loaded(config, selected, store, today, options, loaded)
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
    let held: BTreeSet<String> = loaded.held_identities();
    let mut failures = std::collections::BTreeMap::new();
    let mut unsettled = std::collections::BTreeMap::<String, BTreeSet<String>>::new();
    let mut uncertain = std::collections::BTreeMap::<String, BTreeSet<String>>::new();
    if let Some(s) = store {
        for pc in selected {
            failures.insert(pc.name.clone(), s.op_failures(&pc.name).await?);
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
    let ctx = PlanContext {
        today,
        provision_days_before_start: config.source.provision_days_before_start,
        held,
        quarantine_after: config.safety.quarantine_after,
        failures,
        unsettled,
        uncertain,
    };
    let source_block = plan::check_source_size(loaded.users.len(), &config.safety);
    if let Some(reason) = &source_block {
        warn!(reason = %reason, "Source guard tripped: no provider will be changed.");
    }
    let mut plans = Vec::with_capacity(selected.len());
    for pc in selected {
        let provider = providers::build(pc);
        let mut p = plan_provider(provider.as_ref(), pc, &loaded.users, store, &ctx).await?;
        plan::apply_guards(&mut p, &config.safety, source_block.as_deref());
        if options.show_requests {
            p.requests = Some(RequestsPreview {
                base_url: pc.base_url.as_str().trim_end_matches('/').to_string(),
                headers: provider
                    .headers()
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), v))
                    .collect(),
                requests: provider.requests(&p.operations),
            });
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
    })
}
