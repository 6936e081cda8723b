//! Producers that keep writing in the background, for checks that must
//! see writes going on (cutover's and failback's refusals, live drills).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use rdkafka::config::ClientConfig;

use super::{produce_sequence, SequenceSpec};

/// Batches of sequence-numbered records on every partition of a topic,
/// from `first_seq` on, until stopped.
pub struct Producers {
    stop: Arc<AtomicBool>,
    handle: JoinHandle<u64>,
}

impl Producers {
    /// Starts writing `batch` records to each of `partitions` partitions,
    /// then pausing for `pause`, over and over.
    pub fn start(
        config: ClientConfig,
        topic: &str,
        partitions: i32,
        first_seq: u64,
        (batch, pause): (u64, Duration),
    ) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let (topic, flag) = (topic.to_string(), stop.clone());
        let handle = std::thread::spawn(move || {
            let mut next = first_seq;
            while !flag.load(Ordering::Relaxed) {
                let mut spec = SequenceSpec::new(partitions, batch);
                spec.first_seq = next;
                produce_sequence(&config, &topic, &spec).expect("produce");
                next += batch;
                std::thread::sleep(pause);
            }
            next - first_seq
        });
        Self { stop, handle }
    }

    /// Stops them; returns how many records each partition got.
    pub fn stop(self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        self.handle.join().expect("producer thread")
    }
}
