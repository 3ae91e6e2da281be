//! Command line: clap definitions, the commands, and the exit codes.
//!
//! Exit codes (DESIGN.md): 0 done or nothing to do, 1 could not run (config, source,
//! state), 2 ran but some operations failed (or it was stopped, by a signal or its
//! deadline, before everything was done), 3 stopped by a safety guard; with
//! `sync --dry-run --detailed-exitcode`, 4 changes pending.

use std::path::PathBuf;
use std::process::ExitCode;

use chrono::NaiveDate;
use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::config::Config;
use crate::source;
use crate::store::{PassOutcome, Store};
use crate::sync;

/// Writes a line (or text) to stdout. When the reader has gone (`rosterd … | head`)
/// the rest of the output is dropped quietly: the exit code still tells the outcome,
/// and a closed pipe must never turn a finished sync into a panic.
macro_rules! outln {
    ($($arg:tt)*) => { write_stdout(&format!("{}\n", format_args!($($arg)*))) };
}
macro_rules! out {
    ($($arg:tt)*) => { write_stdout(&format!($($arg)*)) };
}

fn write_stdout(text: &str) {
    use std::io::Write;
    // Plans and reports carry vendor messages: no secret a vendor echoed gets out.
    let text = crate::redact::scrub(text);
    let mut stdout = std::io::stdout().lock();
    if let Err(e) = stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        if e.kind() != std::io::ErrorKind::BrokenPipe {
            print_error(&format!("cannot write the output: {e}"));
        }
    }
}

/// Streams a long document to stdout as `write` makes it, scrubbed on the way
/// ([`crate::redact::StreamScrubber`]): a million-operation plan is never one string.
/// A closed pipe ends it quietly, as in [`write_stdout`].
fn stream_stdout(write: impl FnOnce(&mut dyn std::io::Write) -> std::io::Result<()>) {
    let mut out = crate::redact::StreamScrubber::new(std::io::stdout().lock());
    let written = write(&mut out);
    let finished = out.finish();
    if let Err(e) = written.and(finished) {
        if e.kind() != std::io::ErrorKind::BrokenPipe {
            print_error(&format!("cannot write the output: {e}"));
        }
    }
}

pub const EXIT_OK: u8 = 0;
pub const EXIT_CANNOT_RUN: u8 = 1;
pub const EXIT_SOME_FAILED: u8 = 2;
pub const EXIT_BLOCKED: u8 = 3;
/// `sync --dry-run --detailed-exitcode`: the plan would send something.
pub const EXIT_CHANGES_PENDING: u8 = 4;

#[derive(Debug, Parser)]
#[command(
    name = "rosterd",
    version,
    about = "Keeps SaaS vendor accounts in step with an HR system's user list."
)]
pub struct Cli {
    /// Config file (YAML).
    #[arg(
        short,
        long,
        env = "ROSTERD_CONFIG",
        default_value = "rosterd.yaml",
        global = true
    )]
    pub config: PathBuf,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Plan (and, without --dry-run, apply) one sync pass.
    Sync(SyncArgs),
    /// Validate the config and the source, and print counts.
    Check(CheckArgs),
    /// Show the last passes, accounts per provider and state, and who needs attention.
    Status(StatusArgs),
    /// Run passes on the config's schedule, with /healthz, /readyz and /metrics.
    Daemon(DaemonArgs),
    /// Forget a provider removed from the config: its accounts, journal and failures
    /// leave the state file (the accounts stay at the vendor, no longer managed).
    ForgetProvider(ForgetArgs),
    /// List the active accounts at each vendor that can list them that no source
    /// person matches (by key, else email) and rosterd does not hold. Read-only;
    /// with --disable, a guarded, journaled pass that adopts and disables them.
    Orphans(OrphansArgs),
    /// What rosterd did, oldest first: each operation with its pass, provider, user
    /// key, changed field names, outcome, vendor id and error (from the state file).
    History(HistoryArgs),
    /// The state itself (needs no config): `state copy` moves it between an SQLite
    /// file and a PostgreSQL database.
    #[command(subcommand)]
    State(StateCommand),
    /// Print the shell completion script for SHELL (needs no config).
    Completions(CompletionsArgs),
    /// Print the man page (roff) of rosterd, or of one of its commands (needs no
    /// config): `rosterd man > rosterd.1`, `rosterd man sync > rosterd-sync.1`.
    Man(ManArgs),
}

#[derive(Debug, Subcommand)]
pub enum StateCommand {
    /// Copy every table of a state to another, exactly (ids included): an SQLite
    /// file to PostgreSQL or back. A target holding a state is refused unless
    /// --force, which replaces it. Give a database password by PGPASSWORD, not in
    /// the URL (a command line is visible to other users).
    Copy(StateCopyArgs),
}

#[derive(Debug, Args)]
pub struct StateCopyArgs {
    /// The state to copy: a file path or a postgres:// URL.
    #[arg(long, value_name = "PATH|URL")]
    pub from: String,
    /// Where to copy it: a file path or a postgres:// URL (the database must exist).
    #[arg(long, value_name = "PATH|URL")]
    pub to: String,
    /// Replace a state the target already holds.
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct OrphansArgs {
    /// Only these providers (by name; repeatable).
    #[arg(long = "provider", value_name = "NAME")]
    pub providers: Vec<String>,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Disable them (each adopted: a snapshot row, disabled). Run with --dry-run
    /// first to see the plan; guarded like any pass.
    #[arg(long)]
    pub disable: bool,
    /// With --disable: print the plan and stop (the vendors are listed, nothing is
    /// changed or written).
    #[arg(long, requires = "disable")]
    pub dry_run: bool,
    /// With --disable: apply even when a safety guard blocks the plan.
    #[arg(long, requires = "disable")]
    pub force: bool,
    /// Plan as if today were this date (YYYY-MM-DD).
    #[arg(long, value_name = "DATE")]
    pub today: Option<NaiveDate>,
}

#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// Only this user (the source's key, e.g. the employee id).
    #[arg(long, value_name = "KEY")]
    pub user: Option<String>,
    /// Only the user key(s) that ever had this email (now or in any recorded
    /// operation), compared without case.
    #[arg(long, value_name = "ADDR")]
    pub email: Option<String>,
    /// Only this provider (by name).
    #[arg(long, value_name = "NAME")]
    pub provider: Option<String>,
    /// From this day (YYYY-MM-DD, UTC) or time (RFC 3339) on.
    #[arg(long, value_name = "DATE", value_parser = crate::history::TimeBound::parse)]
    pub since: Option<crate::history::TimeBound>,
    /// Up to this day (included whole) or before this time (RFC 3339).
    #[arg(long, value_name = "DATE", value_parser = crate::history::TimeBound::parse)]
    pub until: Option<crate::history::TimeBound>,
    #[arg(long, value_enum, default_value_t = crate::history::HistoryFormat::Text)]
    pub format: crate::history::HistoryFormat,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Args)]
pub struct ManArgs {
    /// A command's own page instead of rosterd's.
    pub command: Option<String>,
}

#[derive(Debug, Args)]
pub struct ForgetArgs {
    /// The provider's name, as it was in the config.
    pub name: String,
}

#[derive(Debug, Args)]
pub struct DaemonArgs {
    /// Run a pass at once, then follow the schedule.
    #[arg(long)]
    pub run_now: bool,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// How many passes to show.
    #[arg(long, default_value_t = 10)]
    pub runs: u32,
    /// Exit 1 when the last pass failed, errored, timed out, was blocked or
    /// interrupted, or when an account needs manual action or an operation is
    /// quarantined (the `verdict` line and `problems` say which); 0 otherwise.
    #[arg(long)]
    pub exit_code: bool,
}

#[derive(Debug, Args)]
pub struct SyncArgs {
    /// Print the plan and stop: nothing is sent to any vendor, nothing is written.
    #[arg(long)]
    pub dry_run: bool,
    /// With --dry-run: print every request that would be sent (method, path, body;
    /// secrets redacted), to check before the first real run.
    #[arg(long, requires = "dry_run")]
    pub show_requests: bool,
    /// Only these providers (by name; repeatable).
    #[arg(long = "provider", value_name = "NAME")]
    pub providers: Vec<String>,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Run even when a safety guard blocks a plan (says so in the log).
    #[arg(long)]
    pub force: bool,
    /// Plan as if today were this date (YYYY-MM-DD): see who a dated termination or
    /// start would affect. Defaults to today (UTC).
    #[arg(long, value_name = "DATE")]
    pub today: Option<NaiveDate>,
    /// With --dry-run: also write the plan to FILE, with what it was made from, for
    /// `sync --plan FILE` to apply exactly.
    #[arg(long, value_name = "FILE", requires = "dry_run")]
    pub out: Option<PathBuf>,
    /// Apply the operations saved in FILE (by `sync --dry-run --out`) exactly —
    /// nothing is re-planned — or refuse, saying what moved since it was made.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["dry_run", "today"])]
    pub plan: Option<PathBuf>,
    /// With --plan: apply it although a safety guard blocked it (recorded in the run
    /// history: who, when, which file).
    #[arg(long, requires = "plan")]
    pub approve: bool,
    /// Do not ask before applying (a `sync` on a terminal shows the plan and asks).
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// With --dry-run: exit 4 when the plan would send something, 0 when nothing
    /// would change, 3 when a safety guard blocks (manual actions alone are 0: nothing
    /// is sent for them).
    #[arg(long, requires = "dry_run")]
    pub detailed_exitcode: bool,
    /// With --dry-run: instead of the plan, show how the user with this key (or
    /// email) maps to each provider: every vendor field, its template or "built in",
    /// and the value — or why the user is rejected.
    #[arg(long, value_name = "KEY", requires = "dry_run")]
    pub explain: Option<String>,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Also contact every provider: an authenticated, harmless read each (where the
    /// vendor has one), to see it is reachable and takes the credentials. Exit 1 when
    /// any fails.
    #[arg(long)]
    pub connect: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Text,
    /// One JSON document with its `format_version` (indented on a terminal).
    Json,
    /// `sync`: one compact JSON object a line (the pass, each provider, each
    /// operation and item, each result); other commands: their document on one line.
    Jsonl,
}

/// Runs the parsed command line; `today` is the clock's date, read by the caller.
pub async fn run(cli: Cli, today: NaiveDate) -> ExitCode {
    // Packaging output comes from the command line's definition: no config needed.
    match &cli.command {
        Command::Completions(args) => {
            out!("{}", crate::packaging::completions(args.shell));
            return ExitCode::from(EXIT_OK);
        }
        Command::Man(args) => {
            return match crate::packaging::man_page(args.command.as_deref()) {
                Ok(page) => {
                    out!("{page}");
                    ExitCode::from(EXIT_OK)
                }
                Err(e) => {
                    print_error(&e.to_string());
                    ExitCode::from(EXIT_CANNOT_RUN)
                }
            };
        }
        Command::State(StateCommand::Copy(args)) => {
            let _logs = crate::telemetry::init(None);
            return state_copy_command(args).await;
        }
        _ => {}
    }
    let config = match Config::load(&cli.config) {
        Ok(c) => c,
        Err(e) => {
            let _logs = crate::telemetry::init(None);
            tracing::error!("{e}");
            print_error(&e.to_string());
            return ExitCode::from(EXIT_CANNOT_RUN);
        }
    };
    // Held until the command returns, so buffered file logs are flushed.
    let _logs = crate::telemetry::init(Some(&config.log));
    match cli.command {
        Command::Sync(args) => sync_command(&config, args, today).await,
        Command::Check(args) => check_command(&config, args).await,
        Command::Status(args) => status_command(&config, args).await,
        Command::ForgetProvider(args) => forget_command(&config, &args.name).await,
        Command::Orphans(args) => orphans_command(&config, args, today).await,
        Command::History(args) => history_command(&config, args).await,
        // Answered above, before the config is read.
        Command::Completions(_) | Command::Man(_) | Command::State(_) => ExitCode::from(EXIT_OK),
        Command::Daemon(args) => {
            let options = crate::daemon::DaemonOptions {
                config_path: cli.config.clone(),
                run_now: args.run_now,
            };
            let clock: std::sync::Arc<crate::executor::apply::Clock> =
                std::sync::Arc::new(crate::clock::now);
            match crate::daemon::run(std::sync::Arc::new(config), options, clock).await {
                Ok(()) => ExitCode::from(EXIT_OK),
                Err(e) => fail(e),
            }
        }
    }
}

/// `orphans`: the report (read-only), or with `--disable` a pass that disables them
/// (`--dry-run`: its plan).
async fn orphans_command(config: &Config, args: OrphansArgs, today: NaiveDate) -> ExitCode {
    let selected = match config.select_providers(&args.providers) {
        Ok(s) => s,
        Err(e) => return fail(e),
    };
    let today = args.today.unwrap_or(today);
    let clock = crate::clock::now;
    if args.disable && !args.dry_run {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        crate::daemon::signals::stop_on_signal(std::sync::Arc::clone(&stop));
        let request = sync::ApplyRequest {
            force: args.force,
            orphans: true,
            ..sync::ApplyRequest::new(config, &selected, today)
        };
        let report = match apply_and_push(config, request, &clock, &stop).await {
            Ok(r) => r,
            Err(e) => return fail(e),
        };
        print_report(&report, args.format);
        return ExitCode::from(exit_code(report.outcome(args.force)));
    }
    let store = match Store::open_read_only(&config.state).await {
        Ok(s) => s,
        Err(e) => return fail(e),
    };
    if args.disable {
        let report =
            match crate::orphans::dry_run(config, &selected, store.as_ref(), today, &clock).await {
                Ok(r) => r,
                Err(e) => return fail(e),
            };
        print_report(&report, args.format);
        return ExitCode::from(exit_code(report.outcome(args.force)));
    }
    let report = match crate::orphans::report(config, &selected, store.as_ref(), &clock).await {
        Ok(r) => r,
        Err(e) => return fail(e),
    };
    match args.format {
        Format::Json => outln!("{}", crate::output::json(&report)),
        Format::Jsonl => outln!("{}", crate::output::versioned_json(&report, false)),
        Format::Text => out!("{}", report.to_text()),
    }
    ExitCode::from(if report.any_error() {
        EXIT_CANNOT_RUN
    } else {
        EXIT_OK
    })
}

/// `forget-provider NAME`: refused while NAME is in the config; takes the run lock so
/// no pass runs meanwhile; says what it leaves behind.
async fn forget_command(config: &Config, name: &str) -> ExitCode {
    if config.providers.iter().any(|p| p.name == name) {
        return fail(format!(
            "provider {name} is in the config ({}): remove it from the config first; \
             forgetting a provider rosterd still syncs would recreate its accounts",
            config.path.display()
        ));
    }
    let _lock = match crate::store::RunLock::acquire(&config.state).await {
        Ok(l) => l,
        Err(e) => return fail(e),
    };
    let store = match Store::open_read_only(&config.state).await {
        // There is state to forget: opened again, for writing.
        Ok(Some(read_only)) => {
            read_only.close().await;
            match Store::open(&config.state).await {
                Ok(s) => s,
                Err(e) => return fail(e),
            }
        }
        Ok(None) => {
            return fail(format!(
                "no state file at {}: nothing to forget",
                config.state.display()
            ))
        }
        Err(e) => return fail(e),
    };
    let forgotten = match store.forget_provider(name).await {
        Ok(f) => f,
        Err(e) => return fail(e),
    };
    store.close().await;
    let total = forgotten.active + forgotten.disabled + forgotten.manual;
    if total == 0 && forgotten.in_flight == 0 {
        return fail(format!("the state file holds nothing for provider {name}"));
    }
    tracing::warn!(provider = name, accounts = total, "Provider forgotten.");
    outln!(
        "forgot provider {name}: {total} account(s) ({} active, {} in manual state, {} disabled){}.",
        forgotten.active,
        forgotten.manual,
        forgotten.disabled,
        if forgotten.in_flight > 0 {
            format!(", and {} operation(s) left in flight whose outcome is unknown", forgotten.in_flight)
        } else {
            String::new()
        }
    );
    if forgotten.active + forgotten.manual > 0 {
        outln!(
            "left behind: those {} account(s) still exist at the vendor and rosterd no longer \
             manages them: a leaver among them keeps access until removed there by hand.",
            forgotten.active + forgotten.manual
        );
    }
    ExitCode::from(EXIT_OK)
}

/// `state copy`: says what it copied, and whether it replaced a state.
async fn state_copy_command(args: &StateCopyArgs) -> ExitCode {
    let parse = |flag: &str, text: &str| {
        crate::store::StateLocation::from_arg(text)
            .map_err(|e| format!("{flag}: the PostgreSQL URL {e}"))
    };
    let (from, to) = match (parse("--from", &args.from), parse("--to", &args.to)) {
        (Ok(from), Ok(to)) => (from, to),
        (Err(e), _) | (_, Err(e)) => return fail(e),
    };
    match crate::store::copy::copy(&from, &to, args.force).await {
        Ok(copied) => {
            let rows = |t: &[(&str, u64)]| {
                t.iter()
                    .map(|(table, n)| format!("{table} {n}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            if !copied.replaced.is_empty() {
                outln!(
                    "replaced the state {} held (--force): {}",
                    to.display(),
                    rows(&copied.replaced)
                );
            }
            outln!(
                "copied {} to {}: {}",
                from.display(),
                to.display(),
                rows(&copied.tables)
            );
            ExitCode::from(EXIT_OK)
        }
        Err(e) => fail(e),
    }
}

fn fail(message: impl std::fmt::Display) -> ExitCode {
    tracing::error!("{message}");
    print_error(&message.to_string());
    ExitCode::from(EXIT_CANNOT_RUN)
}

/// `error: …` on stderr, scrubbed like everything else that leaves the process.
fn print_error(message: &str) {
    eprintln!("error: {}", crate::redact::scrub(message));
}

async fn sync_command(config: &Config, args: SyncArgs, today: NaiveDate) -> ExitCode {
    let selected = match config.select_providers(&args.providers) {
        Ok(s) => s,
        Err(e) => return fail(e),
    };
    let today = args.today.unwrap_or(today);
    if !args.dry_run {
        let clock = crate::clock::now;
        let bars = args.format == Format::Text;
        // SIGTERM / SIGINT: finish what is in flight, start nothing new, exit.
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        crate::daemon::signals::stop_on_signal(std::sync::Arc::clone(&stop));
        let saved = match &args.plan {
            Some(path) => match crate::saved_plan::read(path) {
                Ok(p) => Some((p, path.as_path())),
                Err(e) => return fail(e),
            },
            None => None,
        };
        let interactive = saved.is_none() && !args.yes && on_terminal();
        let confirm = |report: &crate::report::PlanReport| confirm_plan(report, args.force);
        let request = sync::ApplyRequest {
            force: args.force,
            show_progress: bars,
            saved: saved.as_ref().map(|(plan, path)| sync::SavedApply {
                plan,
                path,
                approve: args.approve,
            }),
            confirm: interactive
                .then_some(&confirm as &(dyn Fn(&crate::report::PlanReport) -> bool + Sync)),
            ..sync::ApplyRequest::new(config, &selected, today)
        };
        let report = match apply_and_push(config, request, &clock, &stop).await {
            Ok(r) => r,
            Err(e) => return fail(e),
        };
        print_report(&report, args.format);
        return ExitCode::from(exit_code(report.outcome(args.force || args.approve)));
    }
    if let Some(key) = &args.explain {
        return match crate::mapping::explain(config, &selected, key).await {
            Ok(explanation) => {
                match args.format {
                    Format::Text => out!("{}", explanation.text()),
                    Format::Json => outln!("{}", crate::output::json(&explanation)),
                    Format::Jsonl => {
                        outln!("{}", crate::output::versioned_json(&explanation, false))
                    }
                }
                ExitCode::from(EXIT_OK)
            }
            Err(e) => fail(e),
        };
    }
    // A dry run writes nothing: no state file is created, none is migrated.
    let store = match Store::open_read_only(&config.state).await {
        Ok(s) => s,
        Err(e) => return fail(e),
    };
    let options = sync::PassOptions {
        dry_run: true,
        show_requests: args.show_requests,
        ..Default::default()
    };
    let report = match sync::plan_pass(config, &selected, store.as_ref(), today, options).await {
        Ok(r) => r,
        Err(e) => return fail(e),
    };
    if let Some(path) = &args.out {
        let saved =
            match crate::saved_plan::build(&report, config, store.as_ref(), crate::clock::now())
                .await
            {
                Ok(p) => p,
                Err(e) => return fail(e),
            };
        if let Err(e) = crate::saved_plan::write(&saved, path) {
            return fail(e);
        }
        tracing::info!(plan = %path.display(), "Plan saved.");
        eprintln!(
            "plan saved to {0}: review it, then apply exactly it with `rosterd sync --plan {0}`{1}",
            path.display(),
            if report.any_blocked() {
                " --approve (a safety guard blocked it)"
            } else {
                ""
            }
        );
    }
    print_report(&report, args.format);
    let code = exit_code(report.outcome(args.force));
    if args.detailed_exitcode && code == EXIT_OK && report.any_operations() {
        return ExitCode::from(EXIT_CHANGES_PENDING);
    }
    ExitCode::from(code)
}

/// A one-shot real pass; with `metrics.push_url`, its metrics (operations counted
/// as they end) are pushed to the Pushgateway when it ends, whatever the outcome.
async fn apply_and_push(
    config: &Config,
    request: sync::ApplyRequest<'_>,
    clock: &crate::executor::apply::Clock,
    stop: &std::sync::atomic::AtomicBool,
) -> Result<crate::report::PlanReport, sync::SyncError> {
    let metrics = config
        .metrics
        .as_ref()
        .map(|_| crate::metrics::Metrics::new());
    let request = sync::ApplyRequest {
        observer: metrics
            .as_ref()
            .map(|m| m as &dyn crate::progress::OpObserver),
        ..request
    };
    let started = clock();
    let result = sync::apply_pass(&request, clock, stop).await;
    if let Some(m) = &metrics {
        let seconds = (clock() - started).num_milliseconds() as f64 / 1000.0;
        let force = request.overrides_guards();
        crate::metrics::push::push_run(config, m, &result, force, seconds, clock).await;
    }
    result
}

/// Whether a person is at the keyboard: stdin and stdout both terminals.
fn on_terminal() -> bool {
    use std::io::IsTerminal;
    std::io::stdin().is_terminal() && std::io::stdout().is_terminal()
}

/// Shows the plan and asks before anything is sent. A blocked plan (without
/// `--force`) is not asked about: nothing of it would be sent.
fn confirm_plan(report: &crate::report::PlanReport, force: bool) -> bool {
    use std::io::BufRead;
    stream_stdout(|out| report.write_text(out));
    if report.any_blocked() && !force {
        return true;
    }
    let n: usize = report
        .providers
        .iter()
        .filter(|p| p.plan.blocked.is_none() || force)
        .map(|p| p.plan.operations.len())
        .sum();
    out!("\nApply these {n} operation(s)? [y/N] ");
    let mut answer = String::new();
    if std::io::stdin().lock().read_line(&mut answer).is_err() {
        return false;
    }
    let yes = matches!(answer.trim(), "yes" | "y" | "Y" | "YES");
    if !yes {
        outln!("Not applied: nothing was sent.");
    }
    yes
}

/// The exit code of a pass that ran to a report. `stopped` and `timeout` are 2 like
/// `failed`: the pass ran but not everything planned was done, and the rest is
/// planned again next pass.
fn exit_code(outcome: PassOutcome) -> u8 {
    match outcome {
        PassOutcome::Ok => EXIT_OK,
        PassOutcome::Failed | PassOutcome::Stopped | PassOutcome::Timeout => EXIT_SOME_FAILED,
        PassOutcome::Blocked => EXIT_BLOCKED,
        PassOutcome::Error => EXIT_CANNOT_RUN,
    }
}

async fn status_command(config: &Config, args: StatusArgs) -> ExitCode {
    let store = match Store::open_read_only(&config.state).await {
        Ok(s) => s,
        Err(e) => return fail(e),
    };
    let status = match crate::status::read(
        store.as_ref(),
        &config.state,
        args.runs,
        config.safety.quarantine_after,
    )
    .await
    {
        Ok(s) => s,
        Err(e) => return fail(e),
    };
    match args.format {
        Format::Json => outln!("{}", status.to_json()),
        Format::Jsonl => outln!("{}", crate::output::versioned_json(&status, false)),
        Format::Text => out!("{}", status.to_text()),
    }
    if args.exit_code && !status.problems.is_empty() {
        return ExitCode::from(EXIT_STATUS_NEEDS_ATTENTION);
    }
    ExitCode::from(EXIT_OK)
}

/// `status --exit-code`: the last pass failed or something needs a person.
pub const EXIT_STATUS_NEEDS_ATTENTION: u8 = 1;

/// The plan (and result) as it is serialised: JSON indented on a terminal.
fn print_report(report: &crate::report::PlanReport, format: Format) {
    use std::io::IsTerminal;
    let pretty = std::io::stdout().is_terminal();
    stream_stdout(|out| match format {
        Format::Json => crate::output::write_json(report, pretty, out),
        Format::Jsonl => crate::output::write_jsonl(report, out),
        Format::Text => report.write_text(out),
    });
}

async fn check_command(config: &Config, args: CheckArgs) -> ExitCode {
    let source_insecure = config
        .source
        .format
        .endpoint()
        .is_some_and(|u| u.is_insecure());
    let source = source::from_config(&config.source);
    let loaded = match source.load().await {
        Ok(l) => l,
        Err(e) => return fail(format!("cannot read the source: {e}")),
    };
    let providers: Vec<crate::output::CheckProvider> = config
        .providers
        .iter()
        .map(|p| crate::output::CheckProvider {
            name: p.name.clone(),
            provider_type: p.kind(),
            base_url: p.base_url.as_str().to_string(),
            users_in_scope: loaded.users.iter().filter(|u| p.scope.matches(u)).count(),
            scope_rules: p
                .scope
                .rule_matches(&loaded.users)
                .into_iter()
                .map(|(rule, key, matched)| crate::output::ScopeRuleMatch { rule, key, matched })
                .collect(),
            insecure_http: p.base_url.is_insecure(),
        })
        .collect();
    let all: Vec<&crate::config::ProviderConfig> = config.providers.iter().collect();
    let unknown = sync::unknown_scope_keys(config, &all, &loaded);
    // What SCIM services turned out not to do (remembered in the state file).
    let quirks = match Store::open_read_only(&config.state).await {
        Ok(Some(store)) => store.quirks(None).await.unwrap_or_default(),
        _ => Vec::new(),
    };
    let connections = if args.connect {
        let mut out = Vec::with_capacity(config.providers.len());
        for p in &config.providers {
            out.push(connect_check(p).await);
        }
        Some(out)
    } else {
        None
    };
    match args.format {
        Format::Json | Format::Jsonl => {
            let doc = crate::output::CheckReport {
                config: config.path.display().to_string(),
                state: config.state.display().to_string(),
                source: crate::output::CheckSource {
                    records: loaded.records,
                    users: loaded.users.len(),
                    rejected: loaded.rejected.clone(),
                    insecure_http: source_insecure,
                },
                providers,
                problems: unknown.clone(),
                connect: connections.clone(),
                scim_quirks: quirks.clone(),
            };
            outln!("{}", crate::output::json(&doc));
        }
        Format::Text => {
            outln!("config {}: valid", config.path.display());
            outln!(
                "source {}: {} record(s), {} valid user(s), {} rejected",
                source.describe(),
                loaded.records,
                loaded.users.len(),
                loaded.rejected.len()
            );
            if source_insecure {
                outln!("  insecure http: source.url is plain http to a non-loopback host (source.allow_insecure_http: true)");
            }
            for r in &loaded.rejected {
                let who = r
                    .external_id
                    .as_deref()
                    .or(r.email.as_deref())
                    .unwrap_or("?");
                outln!("  {}: {who}: {}", r.location, r.reason);
            }
            for p in &providers {
                outln!(
                    "provider {} ({}): {} user(s) in scope, {}",
                    p.name,
                    p.provider_type,
                    p.users_in_scope,
                    p.base_url
                );
                for rule in &p.scope_rules {
                    outln!(
                        "  scope {} {}: matches {} user(s)",
                        rule.rule,
                        rule.key,
                        rule.matched
                    );
                }
                if p.insecure_http {
                    outln!("  insecure http: base_url is plain http to a non-loopback host (allow_insecure_http: true)");
                }
            }
        }
    }
    if args.format == Format::Text {
        for c in connections.iter().flatten() {
            outln!("{}", c.text());
        }
        for q in &quirks {
            outln!("{}", crate::status::quirk_line(q));
        }
    }
    if !unknown.is_empty() {
        return fail(sync::SyncError::UnknownAttributes(unknown));
    }
    let failed: Vec<&str> = connections
        .iter()
        .flatten()
        .filter(|c| c.error.is_some())
        .map(|c| c.provider.as_str())
        .collect();
    if !failed.is_empty() {
        return fail(format!("cannot reach or sign in to: {}", failed.join(", ")));
    }
    ExitCode::from(EXIT_OK)
}

/// What `check --connect` found at one provider.
#[derive(Debug, Clone, serde::Serialize, schemars::JsonSchema)]
pub struct Connection {
    provider: String,
    /// Each read sent: `GET /path: HTTP 200 in 12 ms`.
    reads: Vec<String>,
    /// Why the vendor cannot be checked without a write (hesh).
    #[serde(skip_serializing_if = "Option::is_none")]
    not_checked: Option<String>,
    /// Unreachable, TLS, credentials rejected, or any other failure, as the vendor
    /// said it.
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

impl Connection {
    fn text(&self) -> String {
        match (&self.error, &self.not_checked) {
            (Some(e), _) => format!("connect {}: FAILED: {e}", self.provider),
            (None, Some(why)) => format!("connect {}: not checked: {why}", self.provider),
            (None, None) => format!(
                "connect {}: reachable, credentials accepted ({})",
                self.provider,
                self.reads.join("; ")
            ),
        }
    }
}

/// Sends the adapter's healthcheck reads through the same transport a pass uses
/// (the outbound policy, auth headers, retries, the classifier).
async fn connect_check(config: &crate::config::ProviderConfig) -> Connection {
    let mut connection = Connection {
        provider: config.name.clone(),
        reads: Vec::new(),
        not_checked: None,
        error: None,
    };
    let adapter = crate::providers::build(config);
    let requests = match adapter.healthcheck() {
        Ok(r) => r,
        Err(why) => {
            connection.not_checked = Some(why.to_string());
            return connection;
        }
    };
    let clock = crate::clock::now;
    let transport =
        match crate::executor::http::HttpTransport::new(config, adapter.as_ref(), &clock) {
            Ok(t) => t,
            Err(e) => {
                connection.error = Some(e.to_string());
                return connection;
            }
        };
    for request in &requests {
        let started = std::time::Instant::now();
        let sent = crate::providers::call::Transport::send(&transport, request).await;
        let ms = started.elapsed().as_millis();
        match sent {
            Ok(response) => connection.reads.push(format!(
                "{} {}: HTTP {} in {ms} ms",
                request.method, request.path, response.status
            )),
            Err(e) => {
                use crate::providers::call::ProviderFault;
                connection.error = Some(match e.fault {
                    Some(ProviderFault::CredentialsRejected(status)) => format!(
                        "credentials rejected (HTTP {status}) on {} {}: check the key or token ({e})",
                        request.method, request.path
                    ),
                    Some(ProviderFault::Unreachable) => format!(
                        "unreachable on {} {}: {e}",
                        request.method, request.path
                    ),
                    None => format!("{} {}: {e}", request.method, request.path),
                });
                break;
            }
        }
    }
    connection
}

/// `history`: read-only; a missing state file is an error (nothing was ever recorded,
/// or the config points elsewhere), not an empty answer.
async fn history_command(config: &Config, args: HistoryArgs) -> ExitCode {
    let store = match Store::open_read_only(&config.state).await {
        Ok(Some(s)) => s,
        Ok(None) => {
            return fail(format!(
                "no state file at {}: rosterd has recorded nothing there yet (is `state:` \
                 in {} the right path?)",
                config.state.display(),
                config.path.display()
            ))
        }
        Err(e) => return fail(e),
    };
    let query = crate::history::HistoryQuery {
        user: args.user,
        email: args.email,
        provider: args.provider,
        since: args.since,
        until: args.until,
    };
    let state = config.state.display().to_string();
    // Each piece is whole entries, scrubbed and written as it comes.
    let mut print = |chunk: &str| out!("{chunk}");
    let written = crate::history::write(&store, &state, &query, args.format, &mut print).await;
    store.close().await;
    if let Err(e) = written {
        return fail(e);
    }
    ExitCode::from(EXIT_OK)
}
