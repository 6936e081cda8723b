//! Step 2 of a cutover: lag settled at 0, with the source no longer
//! written to.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use ferry_admin::{Admin, Watermarks};
use ferry_config::{Cluster, Flow};
use ferry_supervisor::progress;

use super::{refused, CutoverError, CutoverOptions, Log, POLL, READ_TIMEOUT};
use crate::client_err;

/// How often a waiting step says where it stands.
const REPORT_EVERY: Duration = Duration::from_secs(5);
/// Partitions named in a refusal, at most.
const NAMED_PARTITIONS: usize = 10;

/// Lag of one partition: the source end offset and the saved progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct PartitionLag {
    end: i64,
    progress: Option<i64>,
    low: i64,
}

impl PartitionLag {
    fn records(&self) -> i64 {
        (self.end - self.progress.unwrap_or(self.low)).max(0)
    }
}

async fn lag_snapshot(
    source_admin: &Admin,
    source: &Cluster,
    target: &Cluster,
    flow: &Flow,
    partitions: &BTreeMap<String, i32>,
) -> Result<BTreeMap<(String, i32), PartitionLag>, CutoverError> {
    let saved = progress::load(target, &flow.source, READ_TIMEOUT).await?;
    let lag = watermarks(source_admin, source, partitions)
        .await?
        .into_iter()
        .map(|(key, w)| {
            let progress = saved.get(&key).copied();
            (
                key,
                PartitionLag {
                    end: w.high,
                    progress,
                    low: w.low,
                },
            )
        })
        .collect();
    Ok(lag)
}

/// Low and high watermark of every chosen source partition.
async fn watermarks(
    source_admin: &Admin,
    source: &Cluster,
    partitions: &BTreeMap<String, i32>,
) -> Result<BTreeMap<(String, i32), Watermarks>, CutoverError> {
    let mut marks = BTreeMap::new();
    for (topic, count) in partitions {
        for p in 0..*count {
            let w = source_admin.watermarks(topic, p).await.map_err(client_err(
                source,
                &format!("cannot read the end of {topic}[{p}]"),
            ))?;
            marks.insert((topic.clone(), p), w);
        }
    }
    Ok(marks)
}

/// Step 2: lag 0 on every partition, and no source partition growing, for
/// `settle` in a row; refuses after `wait`, naming who still lags and
/// which partitions are still written to. Returns the settled source end
/// offsets.
pub(super) async fn wait_for_settled_lag(
    source_admin: &Admin,
    source: &Cluster,
    target: &Cluster,
    flow: &Flow,
    partitions: &BTreeMap<String, i32>,
    options: &CutoverOptions,
    log: Log<'_>,
) -> Result<HashMap<(String, i32), i64>, CutoverError> {
    let started = Instant::now();
    let mut last_report = started;
    let mut previous: Option<BTreeMap<(String, i32), PartitionLag>> = None;
    let mut settled_since: Option<Instant> = None;
    // Records added to each source partition since the step started.
    let mut written: BTreeMap<(String, i32), i64> = BTreeMap::new();
    loop {
        let now = lag_snapshot(source_admin, source, target, flow, partitions).await?;
        let mut grew = false;
        if let Some(prev) = &previous {
            for (key, l) in &now {
                let before = prev.get(key).map_or(l.end, |p| p.end);
                if l.end > before {
                    grew = true;
                    *written.entry(key.clone()).or_default() += l.end - before;
                }
            }
        }
        let lagging: Vec<(&(String, i32), i64)> = now
            .iter()
            .map(|(k, l)| (k, l.records()))
            .filter(|(_, r)| *r > 0)
            .collect();
        let total: i64 = lagging.iter().map(|(_, r)| r).sum();
        if lagging.is_empty() && !grew {
            let since = *settled_since.get_or_insert_with(Instant::now);
            if since.elapsed() >= options.settle {
                log(&format!(
                    "[2/6] lag: 0 on every partition, and no source partition written to, for {:?}",
                    options.settle
                ));
                return Ok(now.into_iter().map(|(key, l)| (key, l.end)).collect());
            }
        } else {
            settled_since = None;
        }
        if started.elapsed() >= options.wait {
            let mut reasons = Vec::new();
            if total > 0 {
                reasons.push(format!(
                    "{total} record(s) not yet copied on {} partition(s): {}",
                    lagging.len(),
                    name_partitions(lagging.iter().map(|(k, r)| (*k, *r)))
                ));
            }
            let recent: Vec<(&(String, i32), i64)> = written.iter().map(|(k, n)| (k, *n)).collect();
            if !recent.is_empty() {
                reasons.push(format!(
                    "producers still write to the source: {} partition(s) grew during the last {:?}: {}; stop every producer of these topics on cluster {}, then run cutover again",
                    recent.len(),
                    started.elapsed().min(options.wait),
                    name_partitions(recent.into_iter()),
                    source.name
                ));
            }
            if reasons.is_empty() {
                reasons.push(format!(
                    "lag did not stay 0 for the settle period ({:?}) within {:?}",
                    options.settle, options.wait
                ));
            }
            return Err(refused("lag", reasons.join("; ")));
        }
        if last_report.elapsed() >= REPORT_EVERY {
            last_report = Instant::now();
            let writes = written.values().filter(|n| **n > 0).count();
            log(&format!(
                "      lag: {total} record(s) on {} partition(s); {writes} partition(s) written to since the start",
                lagging.len()
            ));
        }
        previous = Some(now);
        tokio::time::sleep(POLL).await;
    }
}

/// `topic[p] (+n)` for the first few partitions, then how many more.
pub(super) fn name_partitions<'a>(items: impl Iterator<Item = (&'a (String, i32), i64)>) -> String {
    let items: Vec<_> = items.collect();
    let mut named: Vec<String> = items
        .iter()
        .take(NAMED_PARTITIONS)
        .map(|((t, p), n)| format!("{t}[{p}] ({n})"))
        .collect();
    if items.len() > NAMED_PARTITIONS {
        named.push(format!("and {} more", items.len() - NAMED_PARTITIONS));
    }
    named.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lag_counts_from_progress_or_the_log_start() {
        let l = PartitionLag {
            end: 100,
            progress: Some(90),
            low: 0,
        };
        assert_eq!(l.records(), 10);
        let fresh = PartitionLag {
            end: 100,
            progress: None,
            low: 40,
        };
        assert_eq!(
            fresh.records(),
            60,
            "nothing saved yet: all that is in the log"
        );
        let empty = PartitionLag {
            end: 5,
            progress: None,
            low: 5,
        };
        assert_eq!(empty.records(), 0);
    }

    #[test]
    fn partitions_are_named_up_to_a_limit() {
        let keys: Vec<(String, i32)> = (0..12).map(|p| ("t".to_string(), p)).collect();
        let text = name_partitions(keys.iter().map(|k| (k, 3)));
        assert!(text.starts_with("t[0] (3), t[1] (3)"), "{text}");
        assert!(text.ends_with("and 2 more"), "{text}");
    }
}
