//! rosterd's binary: parse the command line, read the clock once, hand over to the library.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    rosterd::files::private_umask();
    rosterd::redact::scrub_panics();
    // Usage errors exit 1 ("could not run"), not clap's 2, which means "some
    // operations failed" here.
    let cli = match rosterd::cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(rosterd::cli::EXIT_CANNOT_RUN)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(rosterd::cli::EXIT_CANNOT_RUN);
        }
    };
    // The only place the library's notion of "today" comes from the clock.
    let today = rosterd::clock::now().date_naive();
    runtime.block_on(rosterd::cli::run(cli, today))
}
