//! Shared by the HTTP tests: a fake engine, a running server, and requests
//! through the crate's own blocking client (it needs no tokio runtime, so
//! the tests can make a request while every runtime they own is blocked).

#![allow(dead_code)] // not every test file uses every helper

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use ferry_http::client::{ClientError, Endpoint};
use ferry_http::{
    Access, EngineDocument, EngineView, FlowDocument, HttpError, HttpServer, Metrics,
    MetricsOptions, PartitionSample, Readiness, TopicSample,
};
use tokio_util::sync::CancellationToken;

/// An engine whose numbers the test sets.
#[derive(Default)]
pub struct FakeEngine {
    pub topics: Mutex<Vec<TopicSample>>,
    pub partitions: Mutex<Vec<PartitionSample>>,
    pub ready: AtomicBool,
    pub status: Mutex<EngineDocument>,
    /// How often `partitions` was asked, to check the opt-in is honoured.
    pub partition_calls: AtomicUsize,
}

impl FakeEngine {
    /// Ready, with two topics on one flow and one on another.
    pub fn new() -> Arc<Self> {
        let engine = FakeEngine::default();
        engine.ready.store(true, Ordering::SeqCst);
        *engine.topics.lock().unwrap() = vec![
            topic("primary->backup", "orders", 10, 1_000, 3, 0.5, 0),
            topic("primary->backup", "payments", 20, 2_000, 0, 0.0, 1),
            TopicSample {
                records_skipped_total: [("too_large", 3)].into(),
                ..topic("backup->dr", "orders", 5, 500, 7, 12.25, 2)
            },
        ];
        *engine.partitions.lock().unwrap() = vec![
            PartitionSample {
                flow: "primary->backup".into(),
                topic: "orders".into(),
                partition: 0,
                lag_records: 1,
            },
            PartitionSample {
                flow: "primary->backup".into(),
                topic: "orders".into(),
                partition: 1,
                lag_records: 2,
            },
        ];
        *engine.status.lock().unwrap() = EngineDocument {
            config_digest: "3f1c".into(),
            flows: vec![FlowDocument {
                flow: "primary->backup".into(),
                state: "running".into(),
                running: true,
                ..FlowDocument::default()
            }],
        };
        Arc::new(engine)
    }
}

pub fn topic(
    flow: &str,
    topic: &str,
    records: u64,
    bytes: u64,
    lag: u64,
    lag_seconds: f64,
    restarts: u64,
) -> TopicSample {
    TopicSample {
        flow: flow.into(),
        topic: topic.into(),
        records_replicated_total: records,
        bytes_replicated_total: bytes,
        lag_records: lag,
        lag_seconds,
        task_restarts_total: restarts,
        records_skipped_total: Default::default(),
    }
}

impl EngineView for FakeEngine {
    fn topics(&self) -> Vec<TopicSample> {
        self.topics.lock().unwrap().clone()
    }
    fn partitions(&self) -> Vec<PartitionSample> {
        self.partition_calls.fetch_add(1, Ordering::SeqCst);
        self.partitions.lock().unwrap().clone()
    }
    fn ready(&self) -> bool {
        self.ready.load(Ordering::SeqCst)
    }
    fn status(&self) -> EngineDocument {
        self.status.lock().unwrap().clone()
    }
}

/// A running server on a free loopback port, and what the test needs to
/// poke it.
pub struct Running {
    pub addr: SocketAddr,
    pub engine: Arc<FakeEngine>,
    pub metrics: Arc<Metrics>,
    pub readiness: Readiness,
    pub cancel: CancellationToken,
    pub handle: Option<JoinHandle<Result<(), HttpError>>>,
}

impl Running {
    pub fn start(options: MetricsOptions) -> Running {
        let engine = FakeEngine::new();
        let metrics = Arc::new(Metrics::new(options));
        let readiness = Readiness::new();
        let cancel = CancellationToken::new();
        let server = HttpServer::bind(
            "127.0.0.1:0".parse().unwrap(),
            Arc::clone(&metrics),
            engine.clone(),
            readiness.clone(),
        )
        .expect("bind a free port")
        // No token: these tests read `/status` as a public document.
        .with_access(Access::new(None, true));
        let addr = server.local_addr();
        let handle = server.serve(cancel.clone()).expect("start the server");
        Running {
            addr,
            engine,
            metrics,
            readiness,
            cancel,
            handle: Some(handle),
        }
    }

    pub fn get(&self, path: &str) -> Reply {
        get(self.addr, path).unwrap_or_else(|e| panic!("GET {path}: {e}"))
    }

    /// Cancels and waits for the server thread.
    pub fn stop(&mut self) -> Result<(), HttpError> {
        self.cancel.cancel();
        match self.handle.take() {
            Some(handle) => handle.join().expect("the server thread does not panic"),
            None => Ok(()),
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        // Never leave a server thread behind a failed assertion.
        self.cancel.cancel();
    }
}

pub use ferry_http::client::Reply;

/// One `GET` over HTTP/1.1, bounded in time.
pub fn get(addr: SocketAddr, path: &str) -> Result<Reply, ClientError> {
    ferry_http::client::request(
        &Endpoint::plain(addr),
        "GET",
        path,
        None,
        None,
        Duration::from_secs(5),
    )
}

/// One sample line of the text format, split up.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: Vec<(String, String)>,
    pub value: f64,
}

/// Parses the sample lines of a scrape (label values without `,` or `"`,
/// which is all these tests use).
pub fn samples(text: &str) -> Vec<Sample> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|line| {
            let (series, value) = line.rsplit_once(' ').expect("a value");
            let (name, labels) = match series.split_once('{') {
                Some((name, rest)) => (name, rest.trim_end_matches('}')),
                None => (series, ""),
            };
            let labels = labels
                .split(',')
                .filter(|p| !p.is_empty())
                .map(|pair| {
                    let (k, v) = pair.split_once('=').expect("label=value");
                    (k.to_string(), v.trim_matches('"').to_string())
                })
                .collect();
            Sample {
                name: name.to_string(),
                labels,
                value: value.parse().expect("a number"),
            }
        })
        .collect()
}

/// The value of the one sample with exactly these labels.
pub fn value(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    samples(text)
        .into_iter()
        .find(|s| {
            s.name == name
                && s.labels.len() == labels.len()
                && labels
                    .iter()
                    .all(|(k, v)| s.labels.iter().any(|(sk, sv)| sk == k && sv == v))
        })
        .map(|s| s.value)
}
