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
//! let server = HttpServer::bind("127.0.0.1:9644".parse().unwrap(), metrics, view, readiness.clone())?;
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
//! - `metrics.rs`: the [`METRICS`] table (names, types, labels, help: the
//!   interface dashboards and alerts use), the [`Metrics`] registry value and
//!   its event families (checkpoints, group offset syncs, latency, errors,
//!   reloads), with cached per-flow handles ([`FlowMetrics`]).
//! - `collector.rs`: [`EngineCollector`], a prometheus `Collector` that reads
//!   the per-(flow, topic) numbers from the view at scrape time, so the record
//!   path never touches prometheus.
//! - `readiness.rs`: the [`Readiness`] draining latch.
//! - `server.rs`: [`HttpServer`], axum on its own OS thread and
//!   current-thread runtime, so it answers when the data path saturates the
//!   main runtime.
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
//! | `GET /status` | the engine's status document plus `"ready"` and `"version"` |
//! | `POST /control/stop-topics` | `ferry cutover`'s last step: `{"flow": "a->b", "topics": [..]}`; `200` with the topics stopped, `409` with the reason, `404` where the process takes no control requests |
//!
//! The control endpoint changes what the daemon replicates, so `http.listen`
//! should stay on loopback or a network only operators reach (the default is
//! `127.0.0.1`).
//!
#![doc = include_str!("../docs/metrics.md")]

mod collector;
mod control;
mod metrics;
mod readiness;
mod server;
mod view;

pub use collector::EngineCollector;
pub use control::{
    control_channel, ControlReceiver, ControlRequest, ControlSender, StopTopics, Stopped,
    CONTROL_QUEUE,
};
pub use metrics::{
    metrics_markdown, FlowMetrics, MetricDoc, MetricKind, Metrics, MetricsOptions, ReloadResult,
    SyncResult, Updated, LATENCY_BUCKETS, METRICS, VERSION,
};
pub use readiness::{NotReady, Readiness};
pub use server::{HttpError, HttpServer, METRICS_CONTENT_TYPE};
pub use view::{EngineView, PartitionSample, TopicSample};
