//! Command line: clap definitions, the commands, and the exit codes.
//!
//! Exit codes (DESIGN.md): 0 done or nothing to do, 1 could not run (config, source,
//! state), 2 ran but some operations failed (or it was stopped, by a signal or its
//! deadline, before everything was done), 3 stopped by a safety guard.

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

pub const EXIT_OK: u8 = 0;
pub const EXIT_CANNOT_RUN: u8 = 1;
pub const EXIT_SOME_FAILED: u8 = 2;
pub const EXIT_BLOCKED: u8 = 3;

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
    /// Print the shell completion script for SHELL (needs no config).
    Completions(CompletionsArgs),
    /// Print the man page (roff) of rosterd, or of one of its commands (needs no
    /// config): `rosterd man > rosterd.1`, `rosterd man sync > rosterd-sync.1`.
    Man(ManArgs),
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
    Json,
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
        // Answered above, before the config is read.
        Command::Completions(_) | Command::Man(_) => ExitCode::from(EXIT_OK),
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
    let _lock = match crate::store::RunLock::acquire(&config.state) {
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
        let request = sync::ApplyRequest {
            force: args.force,
            show_progress: bars,
            ..sync::ApplyRequest::new(config, &selected, today)
        };
        let report = match sync::apply_pass(&request, &clock, &stop).await {
            Ok(r) => r,
            Err(e) => return fail(e),
        };
        print_report(&report, args.format);
        return ExitCode::from(exit_code(report.outcome(args.force)));
    }
    // A dry run writes nothing: no state file is created, none is migrated.
    let store = match Store::open_read_only(&config.state).await {
        Ok(s) => s,
        Err(e) => return fail(e),
    };
    let options = sync::PassOptions {
        dry_run: true,
        show_requests: args.show_requests,
    };
    let report = match sync::plan_pass(config, &selected, store.as_ref(), today, options).await {
        Ok(r) => r,
        Err(e) => return fail(e),
    };
    print_report(&report, args.format);
    ExitCode::from(exit_code(report.outcome(args.force)))
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
    let state = config.state.display().to_string();
    let status = match crate::status::read(
        store.as_ref(),
        &state,
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
        Format::Text => out!("{}", status.to_text()),
    }
    if args.exit_code && !status.problems.is_empty() {
        return ExitCode::from(EXIT_STATUS_NEEDS_ATTENTION);
    }
    ExitCode::from(EXIT_OK)
}

/// `status --exit-code`: the last pass failed or something needs a person.
pub const EXIT_STATUS_NEEDS_ATTENTION: u8 = 1;

fn print_report(report: &crate::report::PlanReport, format: Format) {
    match format {
        Format::Json => outln!("{}", report.to_json()),
        Format::Text => out!("{}", report.to_text()),
    }
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
    let providers: Vec<serde_json::Value> = config
        .providers
        .iter()
        .map(|p| {
            let in_scope = loaded.users.iter().filter(|u| p.scope.matches(u)).count();
            let rules: Vec<serde_json::Value> = p
                .scope
                .rule_matches(&loaded.users)
                .into_iter()
                .map(|(section, key, matched)| serde_json::json!({"rule": section, "key": key, "matched": matched}))
                .collect();
            serde_json::json!({"name": p.name, "type": p.kind(), "base_url": p.base_url.as_str(), "users_in_scope": in_scope, "scope_rules": rules, "insecure_http": p.base_url.is_insecure()})
        })
        .collect();
    let all: Vec<&crate::config::ProviderConfig> = config.providers.iter().collect();
    let unknown = sync::unknown_scope_keys(config, &all, &loaded);
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
        Format::Json => {
            let doc = serde_json::json!({
                "config": config.path.display().to_string(),
                "state": config.state.display().to_string(),
                "source": {"records": loaded.records, "users": loaded.users.len(), "rejected": loaded.rejected, "insecure_http": source_insecure},
                "providers": providers,
                "problems": unknown,
                "connect": connections,
            });
            outln!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
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
                    p["name"].as_str().unwrap_or_default(),
                    p["type"].as_str().unwrap_or_default(),
                    p["users_in_scope"],
                    p["base_url"].as_str().unwrap_or_default()
                );
                for rule in p["scope_rules"].as_array().map_or(&[][..], Vec::as_slice) {
                    outln!(
                        "  scope {} {}: matches {} user(s)",
                        rule["rule"].as_str().unwrap_or_default(),
                        rule["key"].as_str().unwrap_or_default(),
                        rule["matched"]
                    );
                }
                if p["insecure_http"] == true {
                    outln!("  insecure http: base_url is plain http to a non-loopback host (allow_insecure_http: true)");
                }
            }
        }
    }
    if args.format == Format::Text {
        for c in connections.iter().flatten() {
            outln!("{}", c.text());
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
#[derive(Debug, serde::Serialize)]
struct Connection {
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
