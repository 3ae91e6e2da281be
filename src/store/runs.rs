//! Run history: one row per sync pass, for `rosterd status` and for the record.

use chrono::{DateTime, Utc};

use super::backend::Cols;
use super::{parse_time, query_err, time_text, Store, StoreError};

/// Whether a run could write to vendors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, schemars::JsonSchema)]
pub enum RunMode {
    DryRun,
    Apply,
}

impl RunMode {
    pub fn as_str(self) -> &'static str {
        match self {
            RunMode::DryRun => "dry_run",
            RunMode::Apply => "apply",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "dry_run" => Some(RunMode::DryRun),
            "apply" => Some(RunMode::Apply),
            _ => None,
        }
    }
}

/// How a pass ended: the one list the run history, the daemon's metrics (the
/// `outcome` label) and health, `rosterd status` and the exit codes all use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum PassOutcome {
    /// Everything planned was done, or there was nothing to do.
    Ok,
    /// A safety guard blocked at least one provider's plan (without `--force`).
    Blocked,
    /// Some operations failed; they are planned again next pass.
    Failed,
    /// Asked to stop (SIGTERM, SIGINT) part way: what was in flight finished, the
    /// operations not started are planned again next pass.
    Stopped,
    /// Ran past `daemon.pass_timeout_seconds`.
    Timeout,
    /// Could not run: the source, the state file, a client could not be set up.
    Error,
}

impl PassOutcome {
    pub const ALL: [PassOutcome; 6] = [
        PassOutcome::Ok,
        PassOutcome::Blocked,
        PassOutcome::Failed,
        PassOutcome::Stopped,
        PassOutcome::Timeout,
        PassOutcome::Error,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            PassOutcome::Ok => "ok",
            PassOutcome::Blocked => "blocked",
            PassOutcome::Failed => "failed",
            PassOutcome::Stopped => "stopped",
            PassOutcome::Timeout => "timeout",
            PassOutcome::Error => "error",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|o| o.as_str() == s)
    }
}

impl std::fmt::Display for PassOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One run, every column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunRecord {
    pub run_id: String,
    pub started_at: DateTime<Utc>,
    /// `None` while running, or when the run was interrupted.
    pub finished_at: Option<DateTime<Utc>>,
    pub mode: RunMode,
    pub outcome: Option<PassOutcome>,
    /// The run's summary as JSON.
    pub summary: Option<String>,
}

impl Store {
    /// Records the start of a run. `run_id` must be new.
    pub async fn run_start(
        &self,
        run_id: &str,
        mode: RunMode,
        started_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        with_pool!(self, |pool| sqlx::query(
            "INSERT INTO runs (run_id, started_at, mode) VALUES ($1, $2, $3)"
        )
        .bind(run_id)
        .bind(time_text(started_at))
        .bind(mode.as_str())
        .execute(pool)
        .await
        .map(|_| ()))
        .map_err(query_err("record the start of a run"))
    }

    /// Records how a run ended. `summary_json` must be valid JSON.
    pub async fn run_finish(
        &self,
        run_id: &str,
        finished_at: DateTime<Utc>,
        outcome: PassOutcome,
        summary_json: &str,
    ) -> Result<(), StoreError> {
        let done = with_pool!(self, |pool| sqlx::query(
            "UPDATE runs SET finished_at = $1, outcome = $2, summary = $3 WHERE run_id = $4",
        )
        .bind(time_text(finished_at))
        .bind(outcome.as_str())
        // Free text a vendor may have echoed a secret into: scrubbed before it is kept.
        .bind(crate::redact::scrub(summary_json).into_owned())
        .bind(run_id)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))
        .map_err(query_err("record the end of a run"))?;
        if done == 0 {
            return Err(StoreError::UnknownRun {
                run_id: run_id.to_owned(),
            });
        }
        Ok(())
    }

    /// The last `limit` runs, newest first.
    pub async fn recent_runs(&self, limit: u32) -> Result<Vec<RunRecord>, StoreError> {
        const ACTION: &str = "read the run history";
        // rowid breaks ties between runs started in the same microsecond (SQLite's
        // own; a column of that name on PostgreSQL).
        with_pool!(self, |pool| {
            let rows = sqlx::query(
                "SELECT run_id, started_at, finished_at, mode, outcome, summary \
                 FROM runs ORDER BY started_at DESC, rowid DESC LIMIT $1",
            )
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await
            .map_err(query_err(ACTION))?;
            rows.iter().map(run_record).collect()
        })
    }
}

fn run_record(row: &impl Cols) -> Result<RunRecord, StoreError> {
    let run_id = row
        .text(0)
        .map_err(query_err("read the run history"))?
        .to_owned();
    let corrupt = |message: String| StoreError::CorruptRow {
        table: "runs",
        key: run_id.clone(),
        message,
    };
    let get_err = |e: sqlx::Error| corrupt(e.to_string());
    let started_at = row.text(1).map_err(get_err)?;
    let finished_at = row.opt_text(2).map_err(get_err)?;
    let mode = row.text(3).map_err(get_err)?;
    let outcome = row.opt_text(4).map_err(get_err)?;
    let outcome = outcome
        .map(|o| PassOutcome::parse(o).ok_or_else(|| corrupt(format!("unknown outcome {o:?}"))))
        .transpose()?;
    Ok(RunRecord {
        started_at: parse_time(started_at).map_err(corrupt)?,
        finished_at: finished_at.map(parse_time).transpose().map_err(corrupt)?,
        mode: RunMode::parse(mode).ok_or_else(|| corrupt(format!("unknown mode {mode:?}")))?,
        outcome,
        summary: row.opt_text(5).map_err(get_err)?.map(str::to_owned),
        run_id,
    })
}
