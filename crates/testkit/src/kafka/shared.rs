//! Process-wide clusters that every test in a test binary shares.
//!
//! Starting a JVM broker costs seconds and half a gigabyte, so tests share a
//! "source" and a "target" single-node cluster and isolate themselves with
//! unique topic and group names ([`crate::data::unique_name`]).

use std::sync::{Once, OnceLock};

use super::{KafkaCluster, KafkaOptions};
use crate::error::{HarnessError, Result};

/// Bootstrap servers of an already-running source cluster to use instead of
/// starting one (see the `ferry-testkit-brokers` binary).
pub const SOURCE_ENV: &str = "FERRY_TEST_KAFKA_SOURCE";
/// Bootstrap servers of an already-running target cluster.
pub const TARGET_ENV: &str = "FERRY_TEST_KAFKA_TARGET";

/// A failed start is kept as its message, so every later caller fails at
/// once with the same explanation instead of waiting for its own timeout.
type Slot = OnceLock<Result<KafkaCluster, String>>;

static SOURCE: Slot = OnceLock::new();
static TARGET: Slot = OnceLock::new();

/// The shared source cluster, started on first use.
pub fn shared() -> Result<&'static KafkaCluster> {
    get_or_start(&SOURCE, SOURCE_ENV, "source")
}

/// The shared source and target clusters; on first use both start at once.
pub fn shared_pair() -> Result<(&'static KafkaCluster, &'static KafkaCluster)> {
    std::thread::scope(|scope| {
        let target = scope.spawn(|| get_or_start(&TARGET, TARGET_ENV, "target"));
        let source = get_or_start(&SOURCE, SOURCE_ENV, "source");
        let target = target.join().unwrap_or_else(|_| {
            Err(HarnessError::Usage(
                "starting the target cluster panicked".into(),
            ))
        });
        Ok((source?, target?))
    })
}

fn get_or_start(
    slot: &'static Slot,
    env: &str,
    which: &'static str,
) -> Result<&'static KafkaCluster> {
    slot.get_or_init(|| {
        let started = match std::env::var(env) {
            Ok(bootstrap) if !bootstrap.trim().is_empty() => {
                Ok(KafkaCluster::external(bootstrap.trim()))
            }
            _ => KafkaOptions::default().start(),
        };
        if started.is_ok() {
            clean_up_at_exit();
        }
        started.map_err(|e| e.to_string())
    })
    .as_ref()
    .map_err(|message| HarnessError::SharedCluster {
        which,
        message: message.clone(),
    })
}

/// Statics are never dropped. Without this, the JVMs would still die with the
/// process (they are tied to it) but their directories would stay behind.
fn clean_up_at_exit() {
    static REGISTER: Once = Once::new();
    extern "C" fn shut_down_shared() {
        for slot in [&SOURCE, &TARGET] {
            if let Some(Ok(cluster)) = slot.get() {
                cluster.shut_down_in_place();
            }
        }
    }
    REGISTER.call_once(|| {
        // SAFETY: registers a function that lives for the whole program.
        // If registration fails, the stale-directory sweep of a later run
        // removes what is left.
        unsafe {
            libc::atexit(shut_down_shared);
        }
    });
}
