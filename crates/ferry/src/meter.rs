//! The meter of a bounded run (`ferry run --until caught-up`): per flow the
//! records and bytes copied, what is left, and an ETA. A person at a
//! terminal gets bars redrawn in place on stderr; a pipe or a journal gets
//! a log line now and then, so nothing floods a log file.
//!
//! Display only: where copying resumes is the engine's progress store on the
//! target, which this module neither reads nor writes.

use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ferry_migrate::units::{format_bytes, format_duration, format_rate};
use ferry_supervisor::EngineStatus;
use tokio_util::sync::CancellationToken;

const TERMINAL_EVERY: Duration = Duration::from_millis(500);
const LOG_EVERY: Duration = Duration::from_secs(10);
const BAR_WIDTH: usize = 24;

/// One flow's numbers at one moment.
#[derive(Debug, Clone, PartialEq)]
pub struct FlowMeter {
    pub flow: String,
    pub records: u64,
    pub bytes: u64,
    /// Records left to copy, as far as the last end-offset refresh knows.
    pub left: u64,
}

impl FlowMeter {
    fn of(status: &EngineStatus) -> Vec<FlowMeter> {
        status
            .flows()
            .into_iter()
            .map(|(id, flow)| {
                let (records, bytes) = flow
                    .replicated_totals()
                    .values()
                    .fold((0, 0), |(r, b), (tr, tb)| (r + tr, b + tb));
                let left = flow.lag().iter().map(|(_, l)| *l as u64).sum();
                FlowMeter {
                    flow: id.to_string(),
                    records,
                    bytes,
                    left,
                }
            })
            .collect()
    }

    /// `flow  [#####.....]  42%  1,234 records  5.6 MB  12 MB/s  ETA 3s`.
    pub fn line(&self, elapsed: Duration) -> String {
        let total = self.records + self.left;
        let done = if total == 0 {
            1.0
        } else {
            self.records as f64 / total as f64
        };
        let filled = ((done * BAR_WIDTH as f64).round() as usize).min(BAR_WIDTH);
        let secs = elapsed.as_secs_f64().max(0.001);
        let rate = self.records as f64 / secs;
        let eta = if self.left == 0 {
            "caught up".to_string()
        } else if rate > 0.0 {
            format!("ETA {}", format_duration(self.left as f64 / rate))
        } else {
            "ETA unknown".to_string()
        };
        format!(
            "{}  [{}{}] {:>3.0}%  {} records  {}  {}  {} left  {eta}",
            self.flow,
            "#".repeat(filled),
            ".".repeat(BAR_WIDTH - filled),
            done * 100.0,
            self.records,
            format_bytes(self.bytes),
            format_rate(self.bytes as f64 / secs),
            self.left
        )
    }
}

/// Reports until `stop` is cancelled, then prints the final summary to
/// stdout.
pub async fn report(status: Arc<EngineStatus>, stop: CancellationToken) {
    let started = Instant::now();
    let terminal = std::io::stderr().is_terminal();
    let mut ticks = tokio::time::interval(if terminal { TERMINAL_EVERY } else { LOG_EVERY });
    ticks.tick().await;
    let mut drawn = 0;
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = ticks.tick() => {}
        }
        let flows = FlowMeter::of(&status);
        if terminal {
            let mut err = std::io::stderr().lock();
            // Back over the bars drawn last time, then redraw them.
            if drawn > 0 {
                let _ = write!(err, "\x1b[{drawn}A");
            }
            for f in &flows {
                let _ = writeln!(err, "\x1b[2K{}", f.line(started.elapsed()));
            }
            drawn = flows.len();
        } else {
            for f in &flows {
                tracing::info!(flow = %f.flow, records = f.records, bytes = f.bytes, left = f.left, "progress: {}", f.line(started.elapsed()));
            }
        }
    }
    for f in FlowMeter::of(&status) {
        println!(
            "{}: copied {} records ({}) in {}",
            f.flow,
            f.records,
            format_bytes(f.bytes),
            format_duration(started.elapsed().as_secs_f64())
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_shows_bar_share_and_eta() {
        let meter = FlowMeter {
            flow: "a->b".into(),
            records: 750,
            bytes: 750_000,
            left: 250,
        };
        let line = meter.line(Duration::from_secs(3));
        assert!(
            line.starts_with("a->b  [##################......]  75%"),
            "{line}"
        );
        assert!(line.contains("750 records"), "{line}");
        assert!(line.contains("250 left  ETA 1"), "{line}");
        let done = FlowMeter { left: 0, ..meter };
        assert!(done.line(Duration::from_secs(3)).ends_with("caught up"));
        let nothing = FlowMeter {
            flow: "a->b".into(),
            records: 0,
            bytes: 0,
            left: 0,
        };
        assert!(nothing.line(Duration::ZERO).contains("100%"));
    }
}
