//! Signals: SIGTERM/SIGINT start a graceful drain; a second one exits at once.

use futures::StreamExt;
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook_tokio::Signals;
use tokio_util::sync::CancellationToken;

/// Cancels `token` on the first SIGTERM/SIGINT and exits the process with
/// code 1 on the second.
pub fn install(token: CancellationToken) -> std::io::Result<()> {
    let mut signals = Signals::new([SIGTERM, SIGINT])?;
    tokio::spawn(async move {
        let mut seen = 0;
        while let Some(sig) = signals.next().await {
            seen += 1;
            if seen == 1 {
                tracing::info!(
                    signal = sig,
                    "shutting down: draining in-flight records and saving progress"
                );
                token.cancel();
            } else {
                tracing::warn!(signal = sig, "second signal: exiting now without draining");
                std::process::exit(1);
            }
        }
    });
    Ok(())
}
