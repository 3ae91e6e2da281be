//! Process signals: SIGTERM and SIGINT ask rosterd to stop (finish what is in flight,
//! start nothing new); SIGHUP asks the daemon to reload its config.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tokio::signal::unix::{signal, SignalKind};
use tracing::{info, warn};

/// Sets `stop` on the first SIGTERM or SIGINT. A second one while stopping is left to
/// the default handler only after this task ends, so a stuck run can still be killed.
pub fn stop_on_signal(stop: Arc<AtomicBool>) {
    tokio::spawn(async move {
        let (mut term, mut int) = match (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) {
            (Ok(t), Ok(i)) => (t, i),
            _ => {
                warn!("Cannot listen for SIGTERM/SIGINT; stopping will not be graceful.");
                return;
            }
        };
        let which = tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        };
        info!(
            signal = which,
            "Stopping: operations in flight finish, no new ones start."
        );
        stop.store(true, Ordering::SeqCst);
    });
}
