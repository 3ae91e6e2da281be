//! Saved plans: review, then apply exactly this.
//!
//! `sync --dry-run --out PLAN.json` writes the plan with what it was made from: a
//! digest of the config file, and for each operation the snapshot row it was planned
//! against (state and fingerprint, or none). `sync --plan PLAN.json` applies those
//! operations — nothing is re-planned — and refuses, saying what moved, when the config
//! or any of those rows changed since, or when an interrupted run left operations in
//! flight. A plan a guard blocked is applied only with `--approve`, which the run
//! history records (who, when, which file).
//!
//! The file also carries a digest of its own operations, so that an accidental edit
//! is refused. It is not a signature: whoever can write the plan file could recompute
//! it (as they could edit the config).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use xxhash_rust::xxh3::xxh3_128;

use crate::config::Config;
use crate::executor::apply::JournalPayload;
use crate::plan::{FieldChange, GroupChange, Operation, ProviderPlan, Summary};
use crate::providers::ProviderType;
use crate::report::{PlanReport, SourceSummary};
use crate::store::{Store, StoreError};

pub const FORMAT_VERSION: u32 = 1;
const KIND: &str = "rosterd-plan";
/// A plan file larger than this is refused (a million operations fit well within).
const MAX_PLAN_BYTES: u64 = 2 << 30;

/// What an operation was planned against: its snapshot row then.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RowBasis {
    pub state: String,
    pub fingerprint: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedOperation {
    /// What is sent: the same fields the journal keeps to resend an operation.
    #[serde(flatten)]
    pub sent: JournalPayload,
    pub reason: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<FieldChange>,
    /// The snapshot row it was planned against; `None`: there was none.
    pub row: Option<RowBasis>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedProvider {
    pub name: String,
    #[serde(rename = "type")]
    pub provider_type: ProviderType,
    /// Why a guard blocked it, when one did: applied only with `--approve`.
    pub blocked: Option<String>,
    pub operations: Vec<SavedOperation>,
    /// Group changes (SCIM `groups:`), as planned.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<GroupChange>,
    /// Digest of the groups and memberships the snapshot held when the group changes
    /// were planned; `None`: the plan has none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_basis: Option<String>,
}

/// The plan file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedPlan {
    pub format_version: u32,
    pub kind: String,
    pub made_at: DateTime<Utc>,
    pub today: NaiveDate,
    pub config: String,
    /// xxh3-128 of the config file's bytes.
    pub config_digest: String,
    pub source_records: usize,
    pub source_users: usize,
    pub providers: Vec<SavedProvider>,
    /// xxh3-128 of `providers` as written: an edited file is refused.
    pub operations_digest: String,
    /// The plan as `sync --dry-run --format json` prints it, for review.
    pub plan: serde_json::Value,
}

#[derive(Debug, thiserror::Error)]
pub enum SavedPlanError {
    #[error("cannot read the config file {path} to take its digest: {source}")]
    Config {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write the plan to {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot read the plan {path}: {message}")]
    Read { path: PathBuf, message: String },
    #[error("the plan {path} is not a rosterd plan: {message}")]
    Invalid { path: PathBuf, message: String },
    #[error(
        "the plan {path} cannot be applied as it was made ({made_at}); make a new one with \
         `sync --dry-run --out`:\n  - {}",
        .moved.join("\n  - ")
    )]
    Stale {
        path: PathBuf,
        made_at: DateTime<Utc>,
        moved: Vec<String>,
    },
    #[error(
        "the plan {path} was blocked by a safety guard ({reasons}): apply it with --approve \
         after reviewing it"
    )]
    NeedsApproval { path: PathBuf, reasons: String },
    #[error("{0}")]
    Store(#[from] StoreError),
}

fn digest(bytes: &[u8]) -> String {
    format!("xxh3-128:{:032x}", xxh3_128(bytes))
}

fn config_digest(config: &Config) -> Result<String, SavedPlanError> {
    let bytes = std::fs::read(&config.path).map_err(|source| SavedPlanError::Config {
        path: config.path.clone(),
        source,
    })?;
    Ok(digest(&bytes))
}

fn operations_digest(providers: &[SavedProvider]) -> String {
    // Plain data with string keys: serialisation cannot fail.
    digest(
        serde_json::to_string(providers)
            .unwrap_or_default()
            .as_bytes(),
    )
}

/// The snapshot rows of `provider`, lean, by key.
async fn rows(
    store: Option<&Store>,
    provider: &str,
) -> Result<BTreeMap<String, RowBasis>, StoreError> {
    let Some(store) = store else {
        return Ok(BTreeMap::new());
    };
    Ok(store
        .snapshot(provider)
        .await?
        .into_iter()
        .map(|r| {
            (
                r.external_id.to_string(),
                RowBasis {
                    state: r.state.as_str().to_string(),
                    fingerprint: r.fingerprint.to_string(),
                },
            )
        })
        .collect())
}

/// A digest of the groups and memberships `store` holds for `provider`.
async fn group_basis(store: Option<&Store>, provider: &str) -> Result<String, StoreError> {
    let snapshot = match store {
        Some(s) => s.group_snapshot(provider).await?,
        None => crate::store::GroupSnapshot::default(),
    };
    Ok(digest(format!("{snapshot:?}").as_bytes()))
}

/// The plan file for `report` (a dry run's), with what it was made from.
pub async fn build(
    report: &PlanReport,
    config: &Config,
    store: Option<&Store>,
    made_at: DateTime<Utc>,
) -> Result<SavedPlan, SavedPlanError> {
    let mut providers = Vec::with_capacity(report.providers.len());
    for p in &report.providers {
        let plan = &p.plan;
        let basis = rows(store, &plan.name).await?;
        let operations = plan
            .operations
            .iter()
            .map(|o| SavedOperation {
                sent: JournalPayload::of(o),
                reason: o.reason.clone(),
                changes: o.changes.clone(),
                row: basis.get(&o.external_id).cloned(),
            })
            .collect();
        let group_basis = if plan.groups.is_empty() {
            None
        } else {
            Some(group_basis(store, &plan.name).await?)
        };
        providers.push(SavedProvider {
            name: plan.name.clone(),
            provider_type: plan.provider_type,
            blocked: plan.blocked.clone(),
            operations,
            groups: plan.groups.clone(),
            group_basis,
        });
    }
    let plan: serde_json::Value =
        serde_json::from_str(&report.to_json()).unwrap_or(serde_json::Value::Null);
    Ok(SavedPlan {
        format_version: FORMAT_VERSION,
        kind: KIND.into(),
        made_at,
        today: report.today,
        config: config.path.display().to_string(),
        config_digest: config_digest(config)?,
        source_records: report.source.records,
        source_users: report.source.users,
        operations_digest: operations_digest(&providers),
        providers,
        plan,
    })
}

/// Writes `plan` to `path` (created private: it names people).
pub fn write(plan: &SavedPlan, path: &Path) -> Result<(), SavedPlanError> {
    let text = serde_json::to_string_pretty(plan).unwrap_or_default();
    let err = |source| SavedPlanError::Write {
        path: path.to_path_buf(),
        source,
    };
    crate::files::create_private(path).map_err(err)?;
    std::fs::write(path, text).map_err(err)
}

/// Reads and checks a plan file (its kind, version and own digest).
pub fn read(path: &Path) -> Result<SavedPlan, SavedPlanError> {
    let bytes =
        crate::files::read_regular(path, MAX_PLAN_BYTES).map_err(|e| SavedPlanError::Read {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
    let invalid = |message: String| SavedPlanError::Invalid {
        path: path.to_path_buf(),
        message,
    };
    let plan: SavedPlan = serde_json::from_slice(&bytes).map_err(|e| invalid(e.to_string()))?;
    if plan.kind != KIND {
        return Err(invalid(format!("its kind is {:?}", plan.kind)));
    }
    if plan.format_version != FORMAT_VERSION {
        return Err(invalid(format!(
            "format_version {} (this rosterd reads {FORMAT_VERSION})",
            plan.format_version
        )));
    }
    if operations_digest(&plan.providers) != plan.operations_digest {
        return Err(invalid(
            "its operations do not match their digest: the file was edited".into(),
        ));
    }
    Ok(plan)
}

/// What must hold before `plan` is applied: the same config file, no provider gone,
/// and every row it was planned against as it was. `Err` lists what moved.
pub async fn check_current(
    plan: &SavedPlan,
    path: &Path,
    config: &Config,
    store: &Store,
) -> Result<(), SavedPlanError> {
    let mut moved = Vec::new();
    if config_digest(config)? != plan.config_digest {
        moved.push(format!(
            "the config file {} changed since the plan was made",
            config.path.display()
        ));
    }
    let in_flight = store.in_flight().await?;
    for p in &plan.providers {
        if !config.providers.iter().any(|c| c.name == p.name) {
            moved.push(format!("provider {} is no longer in the config", p.name));
            continue;
        }
        let n = in_flight.iter().filter(|e| e.provider == p.name).count();
        if n > 0 {
            moved.push(format!(
                "{}: an interrupted run left {n} operation(s) in flight; a plain sync settles them first",
                p.name
            ));
        }
        if let Some(basis) = &p.group_basis {
            if *basis != group_basis(Some(store), &p.name).await? {
                moved.push(format!(
                    "{}: its groups or memberships in the snapshot changed since the plan was made",
                    p.name
                ));
            }
        }
        let now = rows(Some(store), &p.name).await?;
        for o in &p.operations {
            let current = now.get(&o.sent.external_id);
            if current != o.row.as_ref() {
                let show = |r: Option<&RowBasis>| {
                    r.map_or("no row".to_string(), |r| {
                        format!("{} {}", r.state, r.fingerprint)
                    })
                };
                moved.push(format!(
                    "{}: {}'s snapshot row is {} now; the plan was made against {}",
                    p.name,
                    o.sent.external_id,
                    show(current),
                    show(o.row.as_ref())
                ));
            }
        }
    }
    const SHOWN: usize = 20;
    if moved.len() > SHOWN {
        let more = moved.len() - SHOWN;
        moved.truncate(SHOWN);
        moved.push(format!("and {more} more"));
    }
    if moved.is_empty() {
        Ok(())
    } else {
        Err(SavedPlanError::Stale {
            path: path.to_path_buf(),
            made_at: plan.made_at,
            moved,
        })
    }
}

/// `--approve` is needed when a guard blocked any provider's plan.
pub fn check_approval(plan: &SavedPlan, path: &Path, approve: bool) -> Result<(), SavedPlanError> {
    let reasons: Vec<String> = plan
        .providers
        .iter()
        .filter_map(|p| p.blocked.as_ref().map(|b| format!("{}: {b}", p.name)))
        .collect();
    if reasons.is_empty() || approve {
        Ok(())
    } else {
        Err(SavedPlanError::NeedsApproval {
            path: path.to_path_buf(),
            reasons: reasons.join("; "),
        })
    }
}

/// The report the saved operations are applied as: one provider plan each, only
/// their operations (nothing re-planned), for each of `selected` in its order (a
/// provider the plan does not have gets an empty plan).
pub fn report(plan: &SavedPlan, selected: &[&crate::config::ProviderConfig]) -> PlanReport {
    let providers = selected
        .iter()
        .map(|pc| {
            let saved = plan.providers.iter().find(|p| p.name == pc.name);
            let mut pp = ProviderPlan {
                name: pc.name.clone(),
                provider_type: pc.kind(),
                summary: Summary::default(),
                operations: saved
                    .map(|p| p.operations.iter().map(operation).collect())
                    .unwrap_or_default(),
                rejected: Vec::new(),
                manual: Vec::new(),
                held: Vec::new(),
                quarantined: Vec::new(),
                leaver_checks: Vec::new(),
                blocked: saved.and_then(|p| p.blocked.clone()),
                requests: None,
                disableable_before: 0,
                groups: saved.map(|p| p.groups.clone()).unwrap_or_default(),
                memberships_before: 0,
            };
            pp.summarise();
            pp.into()
        })
        .collect();
    PlanReport {
        today: plan.today,
        dry_run: false,
        source: SourceSummary {
            records: plan.source_records,
            users: plan.source_users,
            rejected: Vec::new(),
        },
        providers,
        timed_out: false,
        insecure_http: Vec::new(),
        removed_providers: Vec::new(),
        approved: None,
    }
}

fn operation(o: &SavedOperation) -> Operation {
    Operation {
        reason: o.reason.clone(),
        changes: o.changes.clone(),
        ..o.sent.operation()
    }
}

/// Who approved a blocked plan, and when: kept in the run history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct Approval {
    pub by: String,
    pub at: DateTime<Utc>,
    pub plan: String,
}

impl Approval {
    /// The approver is the login running the command (`$USER`, else `$LOGNAME`).
    pub fn now(plan: &Path, at: DateTime<Utc>) -> Approval {
        let by = ["USER", "LOGNAME"]
            .iter()
            .find_map(|k| std::env::var(k).ok().filter(|v| !v.trim().is_empty()))
            .unwrap_or_else(|| "unknown".into());
        Approval {
            by,
            at,
            plan: plan.display().to_string(),
        }
    }
}
