//! `ferry run`: the daemon (or a bounded catch-up run).

use std::path::Path;

use ferry_supervisor::{RunMode, Supervisor};
use tokio_util::sync::CancellationToken;

use crate::cli::Until;
use crate::{exit, logging, shutdown};

pub fn run(path: &Path, until: Option<Until>) -> u8 {
    let loaded = match super::load_topology(path) {
        Ok(l) => l,
        Err(code) => return code,
    };
    let topology = loaded.topology;
    logging::init(&topology.log);
    let rt = match super::runtime() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return exit::FAILURE;
        }
    };
    let mode = match until {
        Some(Until::CaughtUp) => RunMode::UntilCaughtUp,
        None => RunMode::Continuous,
    };
    rt.block_on(async move {
        let cancel = CancellationToken::new();
        if let Err(e) = shutdown::install(cancel.clone()) {
            eprintln!("error: cannot install signal handlers: {e}");
            return exit::FAILURE;
        }
        tracing::info!(
            version = env!("CARGO_PKG_VERSION"),
            flows = topology.flows.len(),
            digest = %topology.digest,
            "ferry starting"
        );
        let supervisor = Supervisor::new(topology, mode);
        match supervisor.run(cancel).await {
            Ok(()) => {
                tracing::info!("ferry stopped cleanly; progress saved");
                exit::OK
            }
            Err(e) => {
                tracing::error!(error = %e, "ferry stopped on an error");
                eprintln!("error: {e}");
                exit::FAILURE
            }
        }
    })
}
