//! One sync pass: source → snapshot → plan per provider → guards → report.
//!
//! Scheduled, one-shot and dry-run passes all go through [`plan_pass`]; only whether
//! the plan is then executed differs.

use std::collections::BTreeSet;

use chrono::NaiveDate;
use tracing::{info, warn};

use crate::config::{Config, ProviderConfig};
use crate::plan::{self, PlanContext};
use crate::providers;
use crate::providers::request::RequestsPreview;
use crate::report::{PlanReport, SourceSummary};
use crate::source::{self, SourceError, SourceLoad};
use crate::store::{Store, StoreError};

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
    #[error(
        "provider {provider}: {rows} snapshot row(s) still lack their details after loading them"
    )]
    DetailsMissing { provider: String, rows: usize },
    #[error("cannot read the source: {0}")]
    Source(#[from] SourceError),
    #[error("cannot read the state file: {0}")]
    Store(#[from] StoreError),
}

/// Reads the source and plans every selected provider against its snapshot.
/// `store` is `None` when there is no state file yet (every snapshot is empty).
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
    plan_loaded(config, selected, store, today, options, loaded).await
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
    let held: BTreeSet<String> = loaded
        .rejected
        .iter()
        .filter_map(|r| r.external_id.clone())
        .collect();
    let ctx = PlanContext {
        today,
        provision_days_before_start: config.source.provision_days_before_start,
        held,
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
        providers: plans,
    })
}
