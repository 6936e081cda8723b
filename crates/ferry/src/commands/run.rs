//! `ferry run`: the daemon (or a bounded catch-up run).

use std::path::Path;
use std::sync::Arc;

use ferry_http::{
    control_channel, Access, ControlError, ControlReceiver, ControlRequest, HttpServer, Metrics,
    MetricsOptions, Readiness, ReloadResult, Resumed, Stopped, TlsIdentity,
};
use ferry_supervisor::view::StatusView;
use ferry_supervisor::{RunMode, Supervisor};
use futures::StreamExt;
use signal_hook::consts::SIGHUP;
use signal_hook_tokio::Signals;
use tokio_util::sync::CancellationToken;

use crate::cli::Until;
use crate::{exit, logging, shutdown};

/// What `ferry run` takes besides the topology file.
#[derive(Debug, Clone, Copy)]
pub struct RunOptions {
    /// `--until`.
    pub until: Option<Until>,
    /// `--http-listen`: replaces the file's `http.listen`, at start and at
    /// every reload.
    pub http_listen: Option<std::net::SocketAddr>,
    /// `--allow-reslot`.
    pub allow_reslot: bool,
}

impl RunOptions {
    fn apply(&self, topology: &mut ferry_config::Topology) {
        if let Some(listen) = self.http_listen {
            topology.http.listen = listen;
        }
    }
}

pub fn run(path: &Path, options: RunOptions) -> u8 {
    let RunOptions { until, .. } = options;
    let loaded = match super::load_topology(path) {
        Ok(l) => l,
        Err(code) => return code,
    };
    let mut topology = loaded.topology;
    options.apply(&mut topology);
    // The certificate files are bad input like the rest of the file:
    // reported before anything starts.
    let tls = match topology
        .http
        .tls
        .as_ref()
        .map(|t| TlsIdentity::load(&t.cert, &t.key))
    {
        None => None,
        Some(Ok(identity)) => Some(identity),
        Some(Err(e)) => {
            eprintln!("error: {}: {e}", path.display());
            return exit::BAD_INPUT;
        }
    };
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
        let metrics = Arc::new(Metrics::new(MetricsOptions {
            partition_lag: topology.http.partition_metrics,
            ..MetricsOptions::default()
        }));
        if !options.allow_reslot {
            let changed = ferry_supervisor::changed_slots(&topology).await;
            for c in &changed {
                eprintln!(
                    "error: {}: flows[{}].slots: {}",
                    path.display(),
                    c.index,
                    c.message
                );
            }
            if !changed.is_empty() {
                return exit::BAD_INPUT;
            }
        }
        let mut supervisor = Supervisor::new(topology.clone(), mode, metrics.clone())
            .allow_reslot(options.allow_reslot);
        let readiness = Readiness::new();
        let (control_tx, control_rx) = control_channel();
        // Bind before any flow starts: a taken port is reported at once.
        let server = match HttpServer::bind(
            topology.http.listen,
            metrics.clone(),
            Arc::new(StatusView(supervisor.status())),
            readiness.clone(),
        ) {
            // Only a daemon answers control requests: a bounded run ends
            // by itself.
            Ok(s) if mode == RunMode::Continuous => s.with_control(control_tx),
            Ok(s) => s,
            Err(e) => {
                eprintln!("error: {e}");
                return exit::FAILURE;
            }
        };
        let server = match &tls {
            Some(identity) => server.with_tls(identity.clone()),
            None => server,
        };
        let server = server.with_access(Access::new(
            topology.http.control_token.as_ref().map(|t| t.expose()),
            topology.http.status_public,
        ));
        let http_addr = server.local_addr();
        let http_cancel = CancellationToken::new();
        let http = match server.serve(http_cancel.clone()) {
            Ok(h) => h,
            Err(e) => {
                eprintln!("error: {e}");
                return exit::FAILURE;
            }
        };
        tokio::spawn({
            let (cancel, readiness) = (cancel.clone(), readiness.clone());
            async move {
                cancel.cancelled().await;
                readiness.mark_draining();
            }
        });
        tracing::info!(
            version = env!("CARGO_PKG_VERSION"),
            flows = topology.flows.len(),
            digest = %topology.digest,
            http = %http_addr,
            "ferry starting"
        );
        // Topics cut over earlier stay stopped: their state is read from
        // the targets before any flow starts.
        let restored = supervisor.restore_cut_over(&cancel).await;
        if restored.is_err() || cancel.is_cancelled() {
            http_cancel.cancel();
            let _ = tokio::task::spawn_blocking(move || http.join()).await;
            return match restored {
                Err(e) => {
                    eprintln!("error: {e}");
                    exit::FAILURE
                }
                Ok(()) => {
                    tracing::info!("ferry stopped before starting its flows");
                    exit::OK
                }
            };
        }
        if let Err(e) = supervisor.start(&cancel) {
            eprintln!("error: {e}");
            return exit::FAILURE;
        }
        if mode == RunMode::Continuous {
            reload_until_cancelled(
                &mut supervisor,
                (path, options),
                &metrics,
                tls.as_deref(),
                control_rx,
                &cancel,
            )
            .await;
        }
        let reporting = (mode == RunMode::UntilCaughtUp).then(|| {
            let stop = CancellationToken::new();
            let task = tokio::spawn(crate::meter::report(supervisor.status(), stop.clone()));
            (stop, task)
        });
        let result = supervisor.wait().await;
        if let Some((stop, task)) = reporting {
            stop.cancel();
            let _ = task.await;
        }
        readiness.mark_draining();
        http_cancel.cancel();
        let _ = tokio::task::spawn_blocking(move || http.join()).await;
        match result {
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

/// Applies the topology file again on every SIGHUP, as a transaction: an
/// invalid file or a change that needs a restart leaves the running
/// topology as it is, and both outcomes are logged and counted. Also
/// answers control requests (`ferry cutover`), which change the running
/// flows too and so take turns with reloads.
async fn reload_until_cancelled(
    supervisor: &mut Supervisor,
    (path, options): (&Path, RunOptions),
    metrics: &Metrics,
    tls: Option<&TlsIdentity>,
    mut control: ControlReceiver,
    cancel: &CancellationToken,
) {
    let mut hups = match Signals::new([SIGHUP]) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "cannot listen for SIGHUP; reload disabled");
            cancel.cancelled().await;
            return;
        }
    };
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            Some(request) = control.recv() => answer_control(supervisor, request, cancel).await,
            Some(_) = hups.next() => {
                let result = match ferry_config::load(path) {
                    Err(e) => {
                        tracing::error!(error = %e, "reload rejected: the topology file is invalid; keeping the running topology");
                        ReloadResult::Rejected
                    }
                    Ok(mut loaded) => {
                        options.apply(&mut loaded.topology);
                        for w in &loaded.warnings {
                            tracing::warn!("{w}");
                        }
                        // A renewed certificate is read before anything
                        // changes, and installed only with the topology.
                        let certificate = match (tls, &loaded.topology.http.tls) {
                            (Some(_), Some(files)) => Some(TlsIdentity::read(&files.cert, &files.key)),
                            _ => None,
                        };
                        match certificate {
                            Some(Err(e)) => {
                                tracing::error!(error = %e, "reload rejected: keeping the running topology and certificate");
                                ReloadResult::Rejected
                            }
                            certificate => match supervisor.reload(loaded.topology, cancel).await {
                                Ok(summary) => {
                                    if let (Some(identity), Some(Ok(fresh))) = (tls, certificate) {
                                        identity.install(fresh);
                                        tracing::info!("HTTPS certificate reloaded");
                                    }
                                    tracing::info!(?summary, "reload applied");
                                    ReloadResult::Applied
                                }
                                Err(e) => {
                                    tracing::error!(error = %e, "reload rejected");
                                    ReloadResult::Rejected
                                }
                            },
                        }
                    }
                };
                metrics.config_reload(result);
            }
        }
    }
}

/// Stops or resumes the requested topics in their flow and replies with
/// what changed.
async fn answer_control(
    supervisor: &mut Supervisor,
    request: ControlRequest,
    cancel: &CancellationToken,
) {
    match request {
        ControlRequest::StopTopics { request, reply } => {
            let answer = match parse_flow(&request.flow) {
                Ok(id) => supervisor.stop_topics(&id, &request.topics).await,
                Err(e) => Err(e),
            }
            .map(|stopped| Stopped {
                flow: request.flow.clone(),
                stopped,
            });
            refused(&request.flow, &answer);
            // The requester may have given up; nothing to do then.
            let _ = reply.send(answer);
        }
        ControlRequest::ResumeTopics { request, reply } => {
            let answer = match parse_flow(&request.flow) {
                Ok(id) => supervisor.resume_topics(&id, &request.topics, cancel).await,
                Err(e) => Err(e),
            }
            .map(|resumed| Resumed {
                flow: request.flow.clone(),
                resumed,
            });
            refused(&request.flow, &answer);
            let _ = reply.send(answer);
        }
    }
}

fn parse_flow(flow: &str) -> Result<ferry_config::FlowId, ControlError> {
    flow.parse()
        .map_err(|e| ControlError::Refused(format!("flow \"{flow}\": {e}")))
}

fn refused<T>(flow: &str, answer: &Result<T, ControlError>) {
    if let Err(reason) = answer {
        tracing::warn!(%flow, %reason, "control request refused");
    }
}
