//! rosterd's binary: parse the command line, read the clock once, hand over to the library.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = rosterd::cli::Cli::parse();
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
    let today = chrono::Utc::now().date_naive();
    runtime.block_on(rosterd::cli::run(cli, today))
}
