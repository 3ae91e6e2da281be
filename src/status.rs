//! `rosterd status`: what the state file says — the last passes, the accounts per
//! provider and state, and the users needing a person (accounts in manual action, the
//! manual actions the last pass planned, failing operations, quarantine) — and the
//! verdict `status --exit-code` exits on ([`Status::problems`]).

use std::fmt::Write as _;

use comfy_table::{presets::UTF8_FULL_CONDENSED, Table};
use serde::Serialize;
use serde_json::Value;

use crate::store::{AccountState, Attention, PassOutcome, RunMode, RunRecord, Store, StoreError};

#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Status {
    pub state: String,
    pub runs: Vec<RunStatus>,
    pub accounts: Vec<AccountCounts>,
    pub attention: Vec<Attention>,
    /// Failing operations at or past this count are quarantined.
    pub quarantine_after: u32,
    /// What SCIM services turned out not to do, and the fallback rosterd uses.
    pub scim_quirks: Vec<crate::store::QuirkRow>,
    /// Why `status --exit-code` exits 1; empty when it exits 0. See [`problems`].
    pub problems: Vec<String>,
}

#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct RunStatus {
    pub run_id: String,
    pub started_at: String,
    pub finished_at: Option<String>,
    pub duration_seconds: Option<f64>,
    pub mode: String,
    /// How the run ended (`ok`, `blocked`, `failed`, `stopped`, `timeout`, `error`);
    /// for one that has not: `running` (the newest, while a process holds the run
    /// lock: see `pid`) or `interrupted` (it never finished: killed, or the machine
    /// stopped).
    pub outcome: String,
    /// The process running it, for a `running` run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    /// Why a run ended in `error` (could not read the source, the state, …).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub providers: Vec<RunProvider>,
}

#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct RunProvider {
    pub name: String,
    pub applied: u64,
    pub failed: u64,
    pub manual: u64,
    pub blocked: bool,
    /// Why the provider stopped for the pass (unreachable, credentials rejected),
    /// once for the provider instead of once per operation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, schemars::JsonSchema)]
pub struct AccountCounts {
    pub provider: String,
    pub active: u64,
    pub disabled: u64,
    pub manual: u64,
}

/// Reads the status; `None` store means there is no state file yet.
pub async fn read(
    store: Option<&Store>,
    state: &crate::store::StateLocation,
    runs: u32,
    quarantine_after: u32,
) -> Result<Status, StoreError> {
    let mut status = Status {
        state: state.display().to_string(),
        runs: Vec::new(),
        accounts: Vec::new(),
        attention: Vec::new(),
        quarantine_after,
        scim_quirks: Vec::new(),
        problems: Vec::new(),
    };
    let Some(store) = store else {
        return Ok(status);
    };
    status.runs = store
        .recent_runs(runs)
        .await?
        .iter()
        .map(run_status)
        .collect();
    // One run at a time: while a process holds the run lock, the newest run, if it
    // has not finished, is that process's; older unfinished runs were interrupted.
    let holder = crate::store::RunLock::holder(state).await;
    if let Some(pid) = holder {
        if let Some(newest) = status.runs.first_mut().filter(|r| r.finished_at.is_none()) {
            newest.outcome = "running".into();
            newest.pid = Some(pid);
        }
    }
    for (provider, state, n) in store.snapshot_counts().await? {
        if status.accounts.last().map(|a| &a.provider) != Some(&provider) {
            status.accounts.push(AccountCounts {
                provider,
                ..AccountCounts::default()
            });
        }
        if let Some(a) = status.accounts.last_mut() {
            match state {
                AccountState::Active => a.active = n,
                AccountState::Disabled => a.disabled = n,
                AccountState::Manual => a.manual = n,
            }
        }
    }
    status.attention = store.attention().await?;
    status.scim_quirks = store.quirks(None).await?;
    // What the last finished pass planned as manual action (vyte leavers, saleschat
    // renames, …) has no snapshot row of its own to say so: it lives in that pass's
    // stored report, and is planned again every pass until resolved.
    let recent = store.recent_runs(LOOK_BACK_RUNS).await?;
    let last = recent
        .iter()
        .find(|r| r.finished_at.is_some() && r.mode == RunMode::Apply);
    if let Some(summary) = last.and_then(|r| r.summary.as_deref()) {
        add_planned_manual(&mut status.attention, summary);
    }
    status.problems = problems(
        &recent,
        holder.is_some(),
        &status.attention,
        quarantine_after,
    );
    Ok(status)
}

/// What makes `status --exit-code` exit 1, one sentence each:
/// - the last pass (the newest in apply mode; while one runs, the one before it)
///   ended `failed`, `error`, `timeout` or `blocked`, or was `interrupted` (it never
///   finished: killed, or the machine stopped). `ok` and `stopped` (asked to stop
///   part way by a signal; the rest is planned next pass) are not problems;
/// - an account needs manual action (in the snapshot, or planned by the last pass);
/// - an operation is quarantined (failed `safety.quarantine_after` runs in a row).
///
/// An operation that failed fewer times shows in the last pass's outcome. No state
/// file, or no pass yet, is no problem.
pub fn problems(
    recent: &[RunRecord],
    running: bool,
    attention: &[Attention],
    quarantine_after: u32,
) -> Vec<String> {
    let mut problems = Vec::new();
    let mut passes = recent.iter().filter(|r| r.mode == RunMode::Apply);
    let last = match passes.next() {
        Some(newest) if running && newest.finished_at.is_none() => passes.next(),
        newest => newest,
    };
    if let Some(r) = last {
        let started = r
            .started_at
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        match r.outcome {
            None => problems.push(format!(
                "the last pass (started {started}) was interrupted: it never finished"
            )),
            Some(
                o @ (PassOutcome::Failed
                | PassOutcome::Error
                | PassOutcome::Timeout
                | PassOutcome::Blocked),
            ) => problems.push(format!(
                "the last pass (started {started}) ended {}",
                o.as_str()
            )),
            Some(PassOutcome::Ok | PassOutcome::Stopped) => {}
        }
    }
    let manual = attention.iter().filter(|a| a.what == "manual").count();
    if manual > 0 {
        problems.push(format!("{manual} account(s) need manual action"));
    }
    let quarantined = attention
        .iter()
        .filter(|a| a.what != "manual" && quarantine_after > 0 && a.failures >= quarantine_after)
        .count();
    if quarantined > 0 {
        problems.push(format!("{quarantined} operation(s) quarantined"));
    }
    problems
}

/// Runs looked at for the last finished pass (the newest few can be unfinished ones).
const LOOK_BACK_RUNS: u32 = 20;

/// Adds the `manual` entries of each provider's plan in a stored pass report, except
/// accounts already listed as manual from the snapshot; keeps the list by provider
/// and key.
fn add_planned_manual(attention: &mut Vec<Attention>, summary: &str) {
    let Ok(doc) = serde_json::from_str::<Value>(summary) else {
        return;
    };
    let Some(providers) = doc["providers"].as_array() else {
        return;
    };
    for p in providers {
        let provider = p["name"].as_str().unwrap_or_default();
        for m in p["manual"].as_array().map_or(&[][..], Vec::as_slice) {
            let external_id = m["external_id"].as_str().unwrap_or_default();
            let listed = attention.iter().any(|a| {
                a.provider == provider && a.external_id == external_id && a.what == "manual"
            });
            if external_id.is_empty() || listed {
                continue;
            }
            attention.push(Attention {
                provider: provider.to_string(),
                external_id: external_id.to_string(),
                what: "manual".into(),
                failures: 0,
                message: format!(
                    "{} needs {}: {}",
                    m["email"].as_str().unwrap_or_default(),
                    m["needed"].as_str().unwrap_or("a person"),
                    m["reason"].as_str().unwrap_or_default()
                ),
            });
        }
    }
    attention.sort_by(|a, b| (&a.provider, &a.external_id).cmp(&(&b.provider, &b.external_id)));
}

fn run_status(r: &RunRecord) -> RunStatus {
    let summary: Value = r
        .summary
        .as_deref()
        .and_then(|s| serde_json::from_str(s).ok())
        .unwrap_or(Value::Null);
    let providers = summary["providers"]
        .as_array()
        .map(|ps| {
            ps.iter()
                .map(|p| {
                    let result = &p["result"];
                    let applied = result["applied"]
                        .as_object()
                        .map(|m| m.values().filter_map(Value::as_u64).sum())
                        .unwrap_or(0);
                    RunProvider {
                        name: p["name"].as_str().unwrap_or_default().to_string(),
                        applied,
                        failed: result["failed"].as_u64().unwrap_or(0),
                        manual: result["manual"].as_u64().unwrap_or(0),
                        blocked: !p["blocked"].is_null(),
                        error: result["provider_error"].as_str().map(str::to_string),
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    RunStatus {
        run_id: r.run_id.clone(),
        started_at: r
            .started_at
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        finished_at: r
            .finished_at
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
        duration_seconds: r
            .finished_at
            .map(|f| (f - r.started_at).num_milliseconds() as f64 / 1000.0),
        mode: r.mode.as_str().to_string(),
        outcome: r
            .outcome
            .map_or_else(|| "interrupted".to_string(), |o| o.as_str().to_string()),
        pid: None,
        error: summary["error"].as_str().map(str::to_string),
        providers,
    }
}

impl Status {
    pub fn to_json(&self) -> String {
        crate::output::json(self)
    }

    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "state file: {}", self.state);
        if self.runs.is_empty() {
            let _ = writeln!(out, "no runs yet");
            return out;
        }
        let mut runs = Table::new();
        runs.load_preset(UTF8_FULL_CONDENSED).set_header(vec![
            "started (UTC)",
            "duration",
            "mode",
            "outcome",
            "per provider: applied / failed / manual",
        ]);
        for r in &self.runs {
            if let Some(e) = &r.error {
                runs.add_row(vec![
                    r.started_at.clone(),
                    r.duration_seconds
                        .map_or("-".into(), |d| format!("{d:.1} s")),
                    r.mode.clone(),
                    "error".into(),
                    e.clone(),
                ]);
                continue;
            }
            let per: Vec<String> = r
                .providers
                .iter()
                .map(|p| {
                    if p.blocked && p.applied == 0 {
                        format!("{}: blocked", p.name)
                    } else if let Some(error) = &p.error {
                        format!(
                            "{}: {} / {} / {}: {error}",
                            p.name, p.applied, p.failed, p.manual
                        )
                    } else {
                        format!("{}: {} / {} / {}", p.name, p.applied, p.failed, p.manual)
                    }
                })
                .collect();
            runs.add_row(vec![
                r.started_at.clone(),
                r.duration_seconds
                    .map_or("-".into(), |d| format!("{d:.1} s")),
                r.mode.clone(),
                match r.pid {
                    Some(pid) => format!("running (pid {pid})"),
                    None => r.outcome.clone(),
                },
                per.join(", "),
            ]);
        }
        let _ = writeln!(out, "last passes:\n{runs}");
        let mut accounts = Table::new();
        accounts
            .load_preset(UTF8_FULL_CONDENSED)
            .set_header(vec!["provider", "active", "disabled", "manual"]);
        for a in &self.accounts {
            accounts.add_row(vec![
                a.provider.clone(),
                a.active.to_string(),
                a.disabled.to_string(),
                a.manual.to_string(),
            ]);
        }
        let _ = writeln!(out, "accounts:\n{accounts}");
        for q in &self.scim_quirks {
            let _ = writeln!(out, "{}", quirk_line(q));
        }
        if self.attention.is_empty() {
            let _ = writeln!(out, "nothing needs attention");
        } else {
            let _ = writeln!(out, "needing attention ({}):", self.attention.len());
            for a in &self.attention {
                let what = if a.what == "manual" {
                    "manual action".to_string()
                } else if self.quarantine_after > 0 && a.failures >= self.quarantine_after {
                    format!("{} quarantined after {} failed runs", a.what, a.failures)
                } else {
                    format!("{} failed {} run(s) in a row", a.what, a.failures)
                };
                let _ = writeln!(
                    out,
                    "  {} {}: {what}: {}",
                    a.provider, a.external_id, a.message
                );
            }
        }
        if self.problems.is_empty() {
            let _ = writeln!(out, "verdict: ok");
        } else {
            let _ = writeln!(
                out,
                "verdict: needs attention: {}",
                self.problems.join("; ")
            );
        }
        out
    }
}

/// One remembered SCIM quirk, for `status` and `check`: the provider, what the
/// service does not do and the fallback, since when, and what showed it.
pub fn quirk_line(q: &crate::store::QuirkRow) -> String {
    let fallback = match q.quirk.as_str() {
        "patch_unusable" => "PATCH unusable: changes are read and PUT",
        "multi_valued_merge" => "PATCH merges emails / phoneNumbers: changes are read and PUT",
        "filter_unusable" => "filtering unusable: users are found in the listed /Users",
        "bulk_unusable" => "/Bulk unusable: operations go one by one",
        other => other,
    };
    format!(
        "scim quirk {}: {fallback} (since {}: {})",
        q.provider, q.detected_at, q.detail
    )
}
