//! The plan (and later the run's result) for people and for programs: a summary table
//! with each operation's changed fields, or one JSON document with a stable shape.

use crate::store::PassOutcome;

use chrono::NaiveDate;
use comfy_table::{presets::UTF8_FULL_CONDENSED, Table};
use serde::Serialize;

use crate::executor::apply::ProviderResult;
use crate::plan::{ChangeRef, OpKind, ProviderPlan};
use crate::source::SourceRejection;

/// One provider's plan and, for a real run, what applying it did: the report joins
/// the two, so that the plan knows nothing of the executor. In JSON, one object (the
/// plan's keys, then `result`).
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct ProviderReport {
    #[serde(flatten)]
    pub plan: ProviderPlan,
    /// What happened when the plan was applied (real runs only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<ProviderResult>,
}

impl From<ProviderPlan> for ProviderReport {
    fn from(plan: ProviderPlan) -> Self {
        ProviderReport { plan, result: None }
    }
}

/// The plan of one pass, across providers: what `sync --dry-run` prints.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct PlanReport {
    pub today: NaiveDate,
    pub dry_run: bool,
    pub source: SourceSummary,
    pub providers: Vec<ProviderReport>,
    /// The pass ran past `daemon.pass_timeout_seconds` and was stopped: what was not
    /// started is planned again next pass. Absent from the JSON when false.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub timed_out: bool,
    /// Endpoints reached over plain http to a non-loopback host because their config
    /// says `allow_insecure_http: true` (see [`insecure_endpoints`]). Absent when none.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub insecure_http: Vec<InsecureEndpoint>,
    /// Providers the state file holds accounts for that the config no longer has:
    /// the pass writes nothing until each is restored to the config or forgotten
    /// (`rosterd forget-provider NAME`). Absent when none.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub removed_providers: Vec<RemovedProvider>,
    /// A saved plan a guard blocked, applied with `--approve`: who and when.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approved: Option<crate::saved_plan::Approval>,
}

/// A provider gone from the config whose accounts the state file still holds: they
/// would never be disabled again, silently.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct RemovedProvider {
    pub name: String,
    /// Accounts held as active or in manual state (a leaver among them would keep
    /// access).
    pub accounts: u64,
}

impl RemovedProvider {
    /// Why every plan of the pass is blocked.
    pub fn reason(removed: &[RemovedProvider]) -> String {
        let names: Vec<String> = removed
            .iter()
            .map(|r| format!("{} ({} account(s))", r.name, r.accounts))
            .collect();
        format!(
            "the state file holds accounts of provider(s) no longer in the config: {}; \
             nothing is written until each is put back in the config or forgotten with \
             `rosterd forget-provider NAME`",
            names.join(", ")
        )
    }
}

/// One endpoint that `allow_insecure_http` lets talk plain http to a non-loopback
/// host: credentials and personal data travel in clear.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, schemars::JsonSchema)]
pub struct InsecureEndpoint {
    /// The config key, e.g. `providers[0].base_url` or `source.url`.
    pub key: String,
    /// `http://host[:port]`.
    pub origin: String,
}

/// The endpoints of `config` that are plain http to a non-loopback host.
pub fn insecure_endpoints(config: &crate::config::Config) -> Vec<InsecureEndpoint> {
    let mut out = Vec::new();
    if let Some(url) = config.source.format.endpoint().filter(|u| u.is_insecure()) {
        out.push(InsecureEndpoint {
            key: "source.url".into(),
            origin: crate::net::origin(url),
        });
    }
    for (i, p) in config.providers.iter().enumerate() {
        if p.base_url.is_insecure() {
            out.push(InsecureEndpoint {
                key: format!("providers[{i}].base_url ({})", p.name),
                origin: crate::net::origin(&p.base_url),
            });
        }
    }
    out
}

#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct SourceSummary {
    /// Records read from the source.
    pub records: usize,
    /// Valid users among them.
    pub users: usize,
    pub rejected: Vec<SourceRejection>,
}

impl PlanReport {
    /// The JSON document (with its `format_version`), compact: for the run
    /// history and pipes. [`crate::output::json`] indents it on a terminal.
    pub fn to_json(&self) -> String {
        crate::output::versioned_json(self, false)
    }

    /// Whether any provider's plan has an operation to send (blocked ones included).
    pub fn any_operations(&self) -> bool {
        self.providers
            .iter()
            .any(|p| !p.plan.operations.is_empty() || !p.plan.groups.is_empty())
    }

    /// Whether any applied operation failed.
    pub fn any_failed(&self) -> bool {
        self.providers.iter().any(|p| {
            p.result
                .as_ref()
                .is_some_and(|r| r.failed > 0 || r.provider_error.is_some())
        })
    }

    /// Whether any provider's plan was stopped by a safety guard.
    pub fn any_blocked(&self) -> bool {
        self.providers.iter().any(|p| p.plan.blocked.is_some())
    }

    /// Whether a stop request left operations of the plan not started.
    pub fn any_not_started(&self) -> bool {
        self.providers
            .iter()
            .any(|p| p.result.as_ref().is_some_and(|r| r.not_started > 0))
    }

    /// How the pass that made this report ended — the one decision, for the run
    /// history, the daemon, metrics and exit codes. `force`: guards were overridden,
    /// so a blocked plan was applied. A dry run ends `ok` or `blocked`.
    pub fn outcome(&self, force: bool) -> PassOutcome {
        if self.timed_out {
            PassOutcome::Timeout
        } else if !self.removed_providers.is_empty() || (self.any_blocked() && !force) {
            PassOutcome::Blocked
        } else if self.any_failed() {
            PassOutcome::Failed
        } else if self.any_not_started() {
            PassOutcome::Stopped
        } else {
            PassOutcome::Ok
        }
    }

    /// The readable form: a summary table, then each provider's operations.
    pub fn to_text(&self) -> String {
        let mut out = Vec::new();
        // Writing to memory cannot fail.
        let _ = self.write_text(&mut out);
        String::from_utf8_lossy(&out).into_owned()
    }

    /// [`PlanReport::to_text`], written to `out` line by line as it is made. Stops at
    /// the first write error and returns it.
    pub fn write_text(&self, out: &mut dyn std::io::Write) -> std::io::Result<()> {
        let mode = if self.dry_run { "Dry run" } else { "Plan" };
        writeln!(
            out,
            "{mode} for {} — source: {} record(s), {} valid user(s), {} rejected",
            self.today,
            self.source.records,
            self.source.users,
            self.source.rejected.len()
        )?;
        for e in &self.insecure_http {
            writeln!(
                out,
                "insecure http: {} is {} (allow_insecure_http: true): credentials and data travel in clear",
                e.key, e.origin
            )?;
        }
        let mut table = Table::new();
        table.load_preset(UTF8_FULL_CONDENSED).set_header(vec![
            "provider",
            "type",
            "create",
            "update",
            "disable",
            "enable",
            "delete",
            "recreate",
            "manual",
            "rejected",
            "held",
            "quarantined",
            "status",
        ]);
        for ProviderReport { plan: p, result } in &self.providers {
            let s = &p.summary;
            let status = match &p.blocked {
                // Applied all the same: the guard was overridden with --force.
                Some(_) if result.is_some() => "FORCED".to_string(),
                Some(_) => "BLOCKED".to_string(),
                None if p.is_empty() => "in sync".to_string(),
                None => "ready".to_string(),
            };
            table.add_row(vec![
                p.name.clone(),
                p.provider_type.to_string(),
                s.create.to_string(),
                s.update.to_string(),
                s.disable.to_string(),
                s.enable.to_string(),
                s.delete.to_string(),
                s.recreate.to_string(),
                s.manual.to_string(),
                s.rejected.to_string(),
                s.held.to_string(),
                s.quarantined.to_string(),
                status,
            ]);
        }
        writeln!(out, "{table}")?;
        for p in &self.providers {
            provider_text(out, p, self.dry_run, self.approved.as_ref())?;
        }
        if !self.source.rejected.is_empty() {
            writeln!(
                out,
                "\nRejected by the source ({}):",
                self.source.rejected.len()
            )?;
            for r in &self.source.rejected {
                let who = r
                    .external_id
                    .as_deref()
                    .or(r.email.as_deref())
                    .unwrap_or("?");
                writeln!(out, "  {}: {who}: {}", r.location, r.reason)?;
            }
        }
        out.flush()
    }
}

fn provider_text(
    out: &mut dyn std::io::Write,
    report: &ProviderReport,
    dry_run: bool,
    approved: Option<&crate::saved_plan::Approval>,
) -> std::io::Result<()> {
    let p = &report.plan;
    writeln!(out, "\n{} ({})", p.name, p.provider_type)?;
    match (&p.blocked, &report.result) {
        (Some(reason), Some(_)) if approved.is_some() => {
            let a = approved.map_or_else(String::new, |a| format!("{} at {}", a.by, a.at));
            writeln!(
                out,
                "  a safety guard blocked this plan; applied as saved, approved by {a}: {reason}"
            )?;
        }
        (Some(reason), Some(_)) => {
            writeln!(
                out,
                "  a safety guard would have blocked this plan, and --force overrode it: {reason}"
            )?;
        }
        (Some(reason), None) => {
            writeln!(
                out,
                "  BLOCKED by a safety guard, nothing will be sent: {reason}"
            )?;
            writeln!(
                out,
                "  (rerun with --force to override, after checking the list below)"
            )?;
        }
        (None, _) => {}
    }
    if p.is_empty() && p.held.is_empty() && p.leaver_checks.is_empty() {
        writeln!(out, "  nothing to do")?;
        return Ok(());
    }
    for op in &p.operations {
        let sign = match op.op {
            OpKind::Create => '+',
            OpKind::Update | OpKind::Recreate => '~',
            OpKind::Disable | OpKind::Delete => '-',
            OpKind::Enable => '^',
        };
        writeln!(
            out,
            "  {sign} {:<8} {} <{}>  ({})",
            op.op.as_str(),
            op.external_id,
            op.email,
            op.reason
        )?;
        for c in op.changes() {
            writeln!(out, "        {}", change_text(c))?;
        }
    }
    groups_text(out, p)?;
    for m in &p.manual {
        writeln!(
            out,
            "  ! manual   {} <{}>  needs {}: {}",
            m.external_id,
            m.email,
            m.needed.as_str(),
            m.reason
        )?;
    }
    for r in &p.rejected {
        writeln!(
            out,
            "  x rejected {} <{}>: {}",
            r.external_id, r.email, r.reason
        )?;
    }
    for h in &p.held {
        writeln!(
            out,
            "  = held     {} <{}>: its source record was rejected; account left as it is",
            h.external_id, h.email
        )?;
    }
    for q in &p.quarantined {
        writeln!(
            out,
            "  ? quarantined {} {} <{}>: failed {} runs in a row ({}); retried when the record changes",
            q.op.as_str(),
            q.external_id,
            q.email,
            q.failures,
            q.last_error
        )?;
    }
    for l in &p.leaver_checks {
        match &l.error {
            None => writeln!(
                out,
                "  ? leaver   {} <{}>: left; looked up at {} before a real pass plans, and disabled if an active account is found",
                l.external_id, l.email, p.provider_type
            ),
            Some(e) => writeln!(
                out,
                "  ? leaver   {} <{}>: left; the lookup of an existing account failed ({e}); tried again next pass",
                l.external_id, l.email
            ),
        }?;
    }
    if let Some(r) = &report.result {
        let applied: Vec<String> = r.applied.iter().map(|(k, n)| format!("{k} {n}")).collect();
        writeln!(
            out,
            "  result: applied {} ({}), failed {}, manual {}{}",
            r.applied_total(),
            if applied.is_empty() {
                "none".to_string()
            } else {
                applied.join(", ")
            },
            r.failed,
            r.manual,
            if r.resolved > 0 {
                format!(", {} interrupted operation(s) resent first", r.resolved)
            } else {
                String::new()
            }
        )?;
        if r.requests > 0 {
            writeln!(
                out,
                "    {} request(s), {} retried, {} rate-limited (429), {:.1} s waiting for rate limits",
                r.requests,
                r.retries,
                r.rate_limited,
                r.rate_limit_wait_ms as f64 / 1000.0
            )?;
        }
        if r.absent > 0 {
            writeln!(
                out,
                "    {} leaver(s) without an account there (recorded; not sent again)",
                r.absent
            )?;
        }
        if r.not_started > 0 {
            writeln!(
                out,
                "    {} operation(s) not started: rosterd was asked to stop; planned again next pass",
                r.not_started
            )?;
        }
        if let Some(error) = &r.provider_error {
            writeln!(
                out,
                "    provider stopped: {error} ({} operation(s) left for the next pass)",
                r.deferred
            )?;
        }
        for f in &r.failures {
            writeln!(
                out,
                "    failed {} {} <{}>: {}",
                f.op.as_str(),
                f.external_id,
                f.email,
                f.error
            )?;
        }
        for f in &r.group_failures {
            writeln!(out, "    failed group {}: {}", f.group, f.error)?;
        }
    } else if p.blocked.is_some() && !dry_run {
        writeln!(out, "  result: nothing sent (blocked)")?;
    }
    if let Some(preview) = &p.requests {
        let headers: Vec<String> = preview
            .headers
            .iter()
            .map(|(k, v)| format!("{k}: {v}"))
            .collect();
        writeln!(
            out,
            "  requests ({}), each with headers {}:",
            preview.requests.len(),
            headers.join(", ")
        )?;
        for r in &preview.requests {
            writeln!(out, "    {} {}{}", r.method, preview.base_url, r.path)?;
            if let Some(body) = &r.body {
                writeln!(out, "      {body}")?;
            }
            if let Some(note) = &r.note {
                writeln!(out, "      ({note})")?;
            }
            // Follow-ups sent only when an answer calls for them.
            for then in &r.conditional {
                let when = then.note.as_deref().unwrap_or("depending on the answer");
                writeln!(
                    out,
                    "      then {} {}{} ({when})",
                    then.method, preview.base_url, then.path
                )?;
            }
        }
    }
    Ok(())
}

/// The group changes: per group its counts, then a `+ member` / `- member` line per
/// member.
fn groups_text(out: &mut dyn std::io::Write, p: &ProviderPlan) -> std::io::Result<()> {
    for g in &p.groups {
        let what = match (&g.group_id, g.ensure) {
            (None, true) => " (found by displayName and adopted, or created)",
            _ => "",
        };
        writeln!(
            out,
            "  * group    {}{what}: +{} member(s), -{} member(s)",
            g.name,
            g.add.len(),
            g.remove.len()
        )?;
        for (sign, members) in [('+', &g.add), ('-', &g.remove)] {
            for m in members {
                let email = if m.email.is_empty() {
                    String::new()
                } else {
                    format!(" <{}>", m.email)
                };
                writeln!(out, "      {sign} member {}{email}", m.external_id)?;
            }
        }
        if g.delete {
            writeln!(
                out,
                "      - group {}: left empty, and rosterd created it (on_group_empty: delete)",
                g.name
            )?;
        }
    }
    Ok(())
}

fn change_text(c: ChangeRef<'_>) -> String {
    let show = |v: Option<&str>| match v {
        Some(s) => format!("{s:?}"),
        None => "(none)".to_string(),
    };
    match c.old {
        None if c.new.is_some() => format!("{}: {}", c.field, show(c.new)),
        _ => format!("{}: {} → {}", c.field, show(c.old), show(c.new)),
    }
}
