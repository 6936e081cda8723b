//! The HTTP server: `/metrics`, `/health/live`, `/health/ready`, `/status`,
//! `POST /control/stop-topics`, `POST /control/resume-topics`; who may call
//! which is in `access.rs`.
//!
//! It runs on its own OS thread with its own current-thread tokio runtime.
//! When the data path saturates the main runtime (every worker busy moving
//! records, or a worker stuck in a blocking call by mistake), a server living
//! on that runtime would stop answering, and Kubernetes would restart a
//! process that is working hard, while Prometheus loses exactly the scrapes
//! that explain the overload. A separate thread costs one thread.

use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use tokio_util::sync::CancellationToken;

use crate::access::{Access, ControlAllowed, HasAccess, StatusAllowed};
use crate::control::{ControlError, ControlRequest, ControlSender, ResumeTopics, StopTopics};
use crate::error::HttpError;
use crate::tls::{TlsIdentity, TlsListener};
use crate::{EngineCollector, EngineView, Metrics, Readiness, StatusDocument};

/// The content type of the Prometheus text exposition format 0.0.4.
pub const METRICS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// How long open connections may take to finish after cancellation before
/// the server thread closes them. Well under Ferry's 30 s drain, so the HTTP
/// server never holds up the exit.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// A bound, not yet serving, HTTP server.
///
/// Binding and serving are two steps so that a port already in use fails the
/// start of `ferry run` with a clear message, before any flow starts, and so
/// that tests can bind port 0 and read the chosen port.
pub struct HttpServer {
    /// Bound in [`HttpServer::bind`]; handed to the server thread's runtime.
    listener: std::net::TcpListener,
    /// The actual address, with the port the OS chose for port 0.
    local_addr: SocketAddr,
    /// Shared by every request handler.
    state: Arc<AppState>,
    /// Serve HTTPS with this certificate; `None`: plain HTTP.
    tls: Option<Arc<TlsIdentity>>,
}

impl std::fmt::Debug for HttpServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpServer")
            .field("local_addr", &self.local_addr)
            .finish_non_exhaustive()
    }
}

struct AppState {
    /// Event families, and the encoder.
    metrics: Arc<Metrics>,
    /// Scrape-time families from the engine.
    collector: EngineCollector,
    /// For `/status` and `/health/ready`.
    view: Arc<dyn EngineView>,
    /// The draining latch.
    readiness: Readiness,
    /// Where control requests go; `None`: refused with 404.
    control: Option<ControlSender>,
    /// The control token and whether `/status` is public.
    access: Access,
}

impl HasAccess for Arc<AppState> {
    fn access(&self) -> &Access {
        &self.access
    }
}

impl HttpServer {
    /// Binds `addr` now. Fails with the address in the message when it is in
    /// use or cannot be bound.
    pub fn bind(
        addr: SocketAddr,
        metrics: Arc<Metrics>,
        view: Arc<dyn EngineView>,
        readiness: Readiness,
    ) -> Result<HttpServer, HttpError> {
        let bind_error = |source| HttpError::Bind { addr, source };
        let listener = std::net::TcpListener::bind(addr).map_err(bind_error)?;
        // tokio requires a non-blocking socket; setting it here keeps every
        // socket error in `bind`.
        listener.set_nonblocking(true).map_err(bind_error)?;
        let local_addr = listener.local_addr().map_err(bind_error)?;
        let collector =
            EngineCollector::new(metrics.options(), Arc::clone(&view), readiness.clone());
        Ok(HttpServer {
            listener,
            local_addr,
            state: Arc::new(AppState {
                metrics,
                collector,
                view,
                readiness,
                control: None,
                access: Access::default(),
            }),
            tls: None,
        })
    }

    /// Accepts `POST /control/stop-topics` and `POST /control/resume-topics`
    /// and hands each request to `control` (the daemon's supervisor loop
    /// answers it).
    pub fn with_control(mut self, control: ControlSender) -> Self {
        if let Some(state) = Arc::get_mut(&mut self.state) {
            state.control = Some(control);
        }
        self
    }

    /// Who may make control requests and read `/status` (the default:
    /// nobody, since no token is set).
    pub fn with_access(mut self, access: Access) -> Self {
        if let Some(state) = Arc::get_mut(&mut self.state) {
            state.access = access;
        }
        self
    }

    /// Serves HTTPS with `identity` (which a reload may replace while
    /// serving) instead of plain HTTP.
    pub fn with_tls(mut self, identity: Arc<TlsIdentity>) -> Self {
        self.tls = Some(identity);
        self
    }

    /// The bound address (with the real port when bound to port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Serves on a dedicated OS thread named `ferry-http` until `cancel` is
    /// cancelled, then shuts down gracefully: stops accepting, lets requests
    /// in progress finish for up to 5 s, and returns.
    ///
    /// Callable from inside or outside a tokio runtime; the thread never
    /// touches the caller's runtime. Join the handle to wait for the stop.
    pub fn serve(
        self,
        cancel: CancellationToken,
    ) -> Result<JoinHandle<Result<(), HttpError>>, HttpError> {
        let addr = self.local_addr;
        std::thread::Builder::new()
            .name("ferry-http".into())
            .spawn(move || self.run(cancel))
            .map_err(|source| HttpError::Start { addr, source })
    }

    fn run(self, cancel: CancellationToken) -> Result<(), HttpError> {
        let addr = self.local_addr;
        // Built on this thread and dropped on it: a runtime must not be
        // dropped from inside another runtime's async context.
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .build()
            .map_err(|source| HttpError::Start { addr, source })?;
        let router = router(self.state);
        let (listener, tls) = (self.listener, self.tls);
        let result = runtime.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener)
                .map_err(|source| HttpError::Start { addr, source })?;
            match tls {
                None => {
                    tracing::info!(%addr, "HTTP server listening");
                    serve_until_cancelled(listener, router, addr, &cancel).await
                }
                Some(identity) => {
                    let listener = TlsListener::start(listener, &identity)
                        .map_err(|source| HttpError::Start { addr, source })?;
                    tracing::info!(%addr, "HTTPS server listening");
                    serve_until_cancelled(listener, router, addr, &cancel).await
                }
            }
        });
        // Dropping the runtime here closes any connection still open.
        drop(runtime);
        tracing::info!(%addr, "HTTP server stopped");
        result
    }
}

/// Serves until `cancel`, then lets requests in progress finish for up to
/// [`SHUTDOWN_GRACE`].
async fn serve_until_cancelled<L>(
    listener: L,
    router: Router,
    addr: SocketAddr,
    cancel: &CancellationToken,
) -> Result<(), HttpError>
where
    L: axum::serve::Listener<Addr = SocketAddr>,
{
    let server =
        axum::serve(listener, router).with_graceful_shutdown(cancel.clone().cancelled_owned());
    let deadline = async {
        cancel.cancelled().await;
        tokio::time::sleep(SHUTDOWN_GRACE).await;
    };
    tokio::select! {
        served = server => served.map_err(|source| HttpError::Serve { addr, source }),
        () = deadline => {
            tracing::warn!(%addr, grace = ?SHUTDOWN_GRACE, "HTTP connections still open after the grace period; closing them");
            Ok(())
        }
    }
}

fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/health/live", get(live))
        .route("/health/ready", get(ready))
        .route("/status", get(status))
        .route("/control/stop-topics", post(stop_topics))
        .route("/control/resume-topics", post(resume_topics))
        .with_state(state)
}

/// How long a control request may wait for the supervisor: stopping topic
/// tasks drains their in-flight records first.
const CONTROL_TIMEOUT: Duration = Duration::from_secs(60);

/// `ControlAllowed` comes before the body: an unauthenticated request is
/// answered 401 whatever it sends.
async fn stop_topics(
    State(state): State<Arc<AppState>>,
    _: ControlAllowed,
    Json(request): Json<StopTopics>,
) -> Response {
    let flow = request.flow.clone();
    control(&state, &flow, |reply| ControlRequest::StopTopics {
        request,
        reply,
    })
    .await
}

/// Same access rule as `stop_topics`.
async fn resume_topics(
    State(state): State<Arc<AppState>>,
    _: ControlAllowed,
    Json(request): Json<ResumeTopics>,
) -> Response {
    let flow = request.flow.clone();
    control(&state, &flow, |reply| ControlRequest::ResumeTopics {
        request,
        reply,
    })
    .await
}

/// Hands a control request to the daemon and turns its answer into a
/// response: `200` with the answer, `409` refused, `503` not recorded.
async fn control<T: serde::Serialize>(
    state: &AppState,
    flow: &str,
    request: impl FnOnce(tokio::sync::oneshot::Sender<Result<T, ControlError>>) -> ControlRequest,
) -> Response {
    let Some(control) = &state.control else {
        return (
            StatusCode::NOT_FOUND,
            "this process takes no control requests",
        )
            .into_response();
    };
    let (reply, answer) = tokio::sync::oneshot::channel();
    if control.send(request(reply)).await.is_err() {
        return (StatusCode::SERVICE_UNAVAILABLE, "the daemon is stopping").into_response();
    }
    match tokio::time::timeout(CONTROL_TIMEOUT, answer).await {
        Ok(Ok(Ok(done))) => Json(done).into_response(),
        Ok(Ok(Err(ControlError::Refused(reason)))) => {
            (StatusCode::CONFLICT, reason).into_response()
        }
        Ok(Ok(Err(ControlError::Unavailable(reason)))) => {
            (StatusCode::SERVICE_UNAVAILABLE, reason).into_response()
        }
        Ok(Err(_)) => (StatusCode::SERVICE_UNAVAILABLE, "the daemon is stopping").into_response(),
        Err(_) => (
            StatusCode::GATEWAY_TIMEOUT,
            format!("flow {flow}: no answer within {CONTROL_TIMEOUT:?}"),
        )
            .into_response(),
    }
}

async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    match state.metrics.encode(&state.collector) {
        Ok(text) => ([(header::CONTENT_TYPE, METRICS_CONTENT_TYPE)], text).into_response(),
        Err(error) => {
            tracing::error!(%error, "cannot encode /metrics");
            (StatusCode::INTERNAL_SERVER_ERROR, error.to_string()).into_response()
        }
    }
}

/// Liveness means only "the process answers": restarting Ferry because a
/// cluster is down would not bring the cluster back.
async fn live() -> &'static str {
    "ok"
}

async fn ready(State(state): State<Arc<AppState>>) -> Response {
    match state.readiness.check(state.view.as_ref()) {
        Ok(()) => (StatusCode::OK, "ready").into_response(),
        Err(reason) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {reason}"),
        )
            .into_response(),
    }
}

async fn status(State(state): State<Arc<AppState>>, _: StatusAllowed) -> Json<StatusDocument> {
    let ready = state.readiness.is_ready(state.view.as_ref());
    Json(StatusDocument::new(state.view.status(), ready))
}
