//! Ferry's metrics, health and status over HTTP.
//!
//! This crate depends on no other Ferry crate: the engine implements
//! [`EngineView`], the process shell builds a [`Metrics`] and a [`Readiness`]
//! and starts an [`HttpServer`]:
//!
//! ```no_run
//! # use std::sync::Arc;
//! # use ferry_http::*;
//! # fn run(view: Arc<dyn EngineView>) -> Result<(), HttpError> {
//! let metrics = Arc::new(Metrics::new(MetricsOptions::default()));
//! // `view`: the engine's EngineView, which reads its atomics at scrape time.
//! let readiness = Readiness::new();
//! let cancel = tokio_util::sync::CancellationToken::new();
//! let server = HttpServer::bind("127.0.0.1:9644".parse().unwrap(), metrics, view, readiness.clone())?
//!     .with_access(Access::new(Some("the control token"), false));
//! let handle = server.serve(cancel.clone())?;
//! // ... on SIGTERM: not ready first, then drain, then stop the server.
//! readiness.mark_draining();
//! cancel.cancel();
//! handle.join().expect("the HTTP thread does not panic")?;
//! # Ok(()) }
//! ```
//!
//! # Layout
//!
//! - `view.rs`: [`EngineView`], the trait the engine implements, and the
//!   samples it returns. The only thing this crate knows about the engine.
//! - `status.rs`: [`StatusDocument`], the `/status` document as types, built
//!   by the engine ([`EngineDocument`]) and read back by `ferry status` and
//!   `ferry cutover`.
//! - `catalog.rs`: the [`METRICS`] table (names, types, labels, help: the
//!   interface dashboards and alerts use) and [`MetricsOptions`]; a leaf that
//!   the two modules below read.
//! - `collector.rs`: [`EngineCollector`], a prometheus `Collector` that reads
//!   the per-(flow, topic) numbers from the view at scrape time, so the record
//!   path never touches prometheus.
//! - `metrics.rs`: the [`Metrics`] registry value and its event families
//!   (checkpoints, group offset syncs, latency, errors, reloads), with cached
//!   per-flow handles ([`FlowMetrics`]); a scrape merges in the collector's.
//! - `readiness.rs`: the [`Readiness`] draining latch.
//! - `access.rs`: [`Access`], the bearer token and who needs it.
//! - `control.rs`: the control requests (`/control/...`) that Ferry's own
//!   commands send a running daemon, carried to the process shell over a
//!   bounded channel.
//! - `tls.rs`: HTTPS on the listener, and reading a renewed certificate on
//!   `SIGHUP`.
//! - `server.rs`: [`HttpServer`], axum on its own OS thread and
//!   current-thread runtime, so it answers when the data path saturates the
//!   main runtime.
//! - `client.rs`: [`client`], the blocking HTTP(S) client that `ferry status`,
//!   `ferry cutover` and the tests use to talk to a running daemon.
//! - `error.rs`: [`HttpError`].
//! - `lock.rs`: lock guards that ignore poisoning, and why that is safe here.
//! - `docs/metrics.md`: the metric reference below, checked against
//!   [`METRICS`] by a test.
//! - `tests/http.rs`: the server against a fake engine; `tests/deploy.rs`:
//!   the `deploy/` dashboards and alerts only use exported metrics, and
//!   `promtool` accepts the rules.
//!
//! # Endpoints
//!
//! | path | answer |
//! | --- | --- |
//! | `GET /metrics` | Prometheus text format 0.0.4 |
//! | `GET /health/live` | `200 ok` while the process runs |
//! | `GET /health/ready` | `200 ready`, or `503 not ready: <reason>` when draining or a flow is not running |
//! | `GET /status` | the engine's status document plus `"ready"` and `"version"`; needs the token unless `http.status_public = true`, else `401` |
//! | `POST /control/stop-topics` | `ferry cutover`'s last step: `{"flow": "a->b", "topics": [..]}`; `200` with the topics stopped once the stop is persisted on the target, `409` with the reason, `503` when it could not be persisted (nothing stopped), `401` without the right token, `404` where the process takes no control requests or no token is configured |
//! | `POST /control/resume-topics` | `ferry resume-topics`: same body; the cut-over topics replicate again from their saved progress; `200` with the topics resumed, other codes as for stop-topics |
//!
//! # Access
//!
//! `/metrics` and the health probes are open: Prometheus and kubelets carry
//! no credentials, and they reveal no topology. Control requests change what
//! the daemon replicates, so they need `Authorization: Bearer <token>`
//! carrying `http.control_token` ([`Access`]); without a configured token
//! the control endpoint is disabled (`404`). `/status` shows the topology's
//! structure (clusters, flows, topics), so it needs the same token unless
//! `http.status_public = true`. A missing or wrong token gets `401` with
//! `WWW-Authenticate: Bearer`. Tokens are compared in constant time and
//! never logged. The listener is plain HTTP: keep `http.listen` on
//! loopback or a network only operators reach (the default is
//! `127.0.0.1`), since the token crosses it in clear.
//!
#![doc = include_str!("../docs/metrics.md")]

mod access;
mod catalog;
pub mod client;
mod collector;
mod control;
mod error;
mod lock;
mod metrics;
mod readiness;
mod server;
mod status;
mod tls;
mod view;

pub use access::Access;
pub use catalog::{
    metrics_markdown, MetricDoc, MetricKind, MetricsOptions, Updated, LATENCY_BUCKETS, METRICS,
    VERSION,
};
pub use collector::EngineCollector;
pub use control::{
    control_channel, ControlError, ControlReceiver, ControlRequest, ControlSender, ResumeTopics,
    Resumed, StopTopics, Stopped, CONTROL_QUEUE,
};
pub use error::HttpError;
pub use metrics::{
    AclSyncResult, FlowMetrics, MembershipMetrics, Metrics, ReloadResult, SyncResult,
    TransactionMetrics, TransactionResult,
};
pub use readiness::{NotReady, Readiness};
pub use server::{HttpServer, METRICS_CONTENT_TYPE};
pub use status::{
    CutOverDocument, DeliveryDocument, EngineDocument, FlowDocument, MemberDocument,
    MembershipDocument, PartitionDocument, SlotDocument, StatusDocument, TopicDocument,
    WarningDocument,
};
pub use tls::{LoadedIdentity, TlsError, TlsIdentity};
pub use view::{EngineView, PartitionSample, TopicSample};
