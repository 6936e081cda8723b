//! The results: the JSON summary's types (documented field by field in
//! `SCHEMA.md`, which a unit test keeps in step) and the human-readable
//! tables.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Context, Result};
use crate::measure::ThreadCpu;

/// Bumped when a field changes meaning or disappears (not when one is added).
pub const SCHEMA_VERSION: u32 = 1;

/// The whole file: the latest report of each workload, by name (`w1`, ...).
/// Running a workload replaces its entry and keeps the others.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Summary {
    pub schema_version: u32,
    pub workloads: BTreeMap<String, WorkloadReport>,
}

/// One run of one workload.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct WorkloadReport {
    pub workload: String,
    pub started_at_unix_ms: i64,
    pub finished_at_unix_ms: i64,
    /// The command line that produced it.
    pub command: String,
    pub quick: bool,
    pub host: Host,
    pub kafka_version: String,
    /// Where both brokers kept their data (`--broker-dir`).
    #[serde(default)]
    pub broker_data_dir: String,
    /// `ferry --version` of the binary under test.
    pub ferry_version: Option<String>,
    pub cases: Vec<CaseReport>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Host {
    pub cpus: usize,
    pub memory_bytes: u64,
    pub kernel: String,
}

/// One data set (or traffic pattern) and every contender's result on it.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct CaseReport {
    pub name: String,
    pub description: String,
    pub topics: u64,
    pub partitions_per_topic: i32,
    pub value_size: usize,
    /// Records the target must end up with (per contender).
    pub records: u64,
    /// Their bytes: key + value + header names and values.
    pub bytes: u64,
    /// W2: the fixed produce rate and how long it lasted.
    pub rate_per_sec: Option<f64>,
    pub duration_seconds: Option<f64>,
    pub results: Vec<ContenderResult>,
    /// Named ratios, e.g. `ferry/limit records_per_sec`.
    pub ratios: BTreeMap<String, f64>,
    pub targets: Vec<TargetCheck>,
}

/// One contender on one case. Fields that do not apply to the workload, or
/// could not be measured, are `null`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ContenderResult {
    /// `ferry`, `limit`, `limit-consume`, `limit-produce`, `mm2`, `python`.
    pub contender: String,
    pub version: Option<String>,
    /// Ran to the end and copied every record.
    pub ok: bool,
    pub error: Option<String>,
    pub records_expected: u64,
    pub records_copied: u64,
    /// Every target partition ended with exactly the source's record count.
    pub copied_all: bool,
    /// The content of the last record of every target partition matched.
    pub spot_check_ok: Option<bool>,
    /// Process start until the target held every record.
    pub wall_seconds: Option<f64>,
    /// Process start until the first record was on the target.
    pub first_record_seconds: Option<f64>,
    /// Process start until it exited (contenders that exit by themselves).
    pub exit_seconds: Option<f64>,
    pub records_per_sec: Option<f64>,
    /// 10^6 bytes per second.
    pub mb_per_sec: Option<f64>,
    /// Records over the time from the first record on the target to the last.
    pub records_per_sec_after_first: Option<f64>,
    /// User + system CPU of the contender's process.
    pub cpu_seconds: Option<f64>,
    /// `cpu_seconds` per 10^9 bytes copied.
    pub cpu_seconds_per_gb: Option<f64>,
    pub peak_rss_bytes: Option<u64>,
    pub latency_ms: Option<Latency>,
    /// W2: the same latency read from the *source* topic by a second
    /// consumer while the contender runs: the floor under the same load.
    /// What the contender adds is the difference.
    pub source_latency_ms: Option<Latency>,
    pub breadth: Option<Breadth>,
    /// W4 on the brokers: the contender's checkpoints against the truth.
    pub checkpointing: Option<Checkpointing>,
    /// W4 in process: Ferry's offset maps at scale.
    pub offset_map: Option<OffsetMapScale>,
    /// `limit` only: its consume-only and produce-only runs. W5: one
    /// entry per ferry process of the row.
    pub parts: Vec<ContenderResult>,
    /// W5 `w5-scale`: process start until the processes had shared out
    /// every slot, each owning some (their `/status`).
    pub settled_seconds: Option<f64>,
    /// W5 `w5-scale`: records copied after that over the time they took.
    pub records_per_sec_settled: Option<f64>,
    /// W5, per process: the slots it owned when it was last asked.
    pub slots: Option<Vec<u16>>,
    /// W5 `w5-rebalance`: copy gaps while a member joins and leaves.
    pub rebalance: Option<Rebalance>,
    /// The target topic read back by a `read_committed` consumer (W1:
    /// exactly-once contenders; `crash`: every contender).
    pub delivered: Option<Delivered>,
    /// `crash`: the SIGKILL mid-copy and the restart.
    pub crash: Option<Crash>,
    /// CPU seconds by thread name (digits shown as `#`), biggest first.
    pub threads: Vec<ThreadCpu>,
    /// The contender's output.
    pub log: Option<String>,
    /// The machine's 1-minute load average when the contender finished: the
    /// machine is shared, and a high value flags a noisy measurement.
    pub host_load_1m: Option<f64>,
    /// W1: CPU seconds the source and target brokers used while the
    /// contender ran (they share the machine's cores with it).
    pub source_broker_cpu_seconds: Option<f64>,
    pub target_broker_cpu_seconds: Option<f64>,
}

/// W2: end-to-end latency (target consumer's wall clock minus the source
/// record's CreateTime, both on this machine), in milliseconds.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Latency {
    pub count: u64,
    pub missing: u64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
    pub mean: f64,
}

/// W3: many topics with little traffic.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Breadth {
    pub topics_expected: u64,
    /// Target topics holding at least one record at the end.
    pub topics_replicated: u64,
    /// Process start until every topic had at least one record on the target.
    pub all_topics_seconds: Option<f64>,
    pub idle_seconds: f64,
    /// CPU use over the idle window after catch-up, in percent of one core.
    pub idle_cpu_percent: Option<f64>,
    /// Resident set size at the end of the idle window.
    pub idle_rss_bytes: Option<u64>,
    /// Sample lines (not comments) of `GET /metrics`; `null` = n/a.
    pub prometheus_series: Option<u64>,
    pub prometheus_note: Option<String>,
}

/// W4: translated downstream offsets against the true downstream position
/// (the target offset of the first copied record whose source offset is at
/// or after the committed one), over committed (group, partition) offsets.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TranslationError {
    /// Committed offsets checked.
    pub offsets: u64,
    /// Of them, those with a translation (a checkpoint, or an answer of the
    /// rule); the rest were refused.
    pub translated: u64,
    pub exact: u64,
    /// Translated before the truth: a consumer failing over re-reads.
    pub behind: u64,
    /// Translated past the truth: a consumer failing over skips records.
    pub ahead: u64,
    /// Smallest and largest translated − true.
    pub error_min: Option<i64>,
    pub error_max: Option<i64>,
    /// Re-read distance (true − translated, 0 when exact or ahead), summed,
    /// averaged over translated offsets, and the largest.
    pub reread_total: u64,
    pub reread_mean: Option<f64>,
    pub reread_max: u64,
}

impl TranslationError {
    /// Counts one committed offset: its translation (`None`: refused) and
    /// the true downstream position.
    pub fn add(&mut self, translated: Option<i64>, truth: i64) {
        self.offsets += 1;
        let Some(translated) = translated else {
            return;
        };
        self.translated += 1;
        let error = translated - truth;
        self.error_min = Some(self.error_min.map_or(error, |m| m.min(error)));
        self.error_max = Some(self.error_max.map_or(error, |m| m.max(error)));
        match error {
            0 => self.exact += 1,
            e if e > 0 => self.ahead += 1,
            e => {
                self.behind += 1;
                self.reread_total += e.unsigned_abs();
                self.reread_max = self.reread_max.max(e.unsigned_abs());
            }
        }
        self.reread_mean = Some(self.reread_total as f64 / self.translated as f64);
    }
}

/// Durations of repeated cycles.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct CycleTimes {
    pub cycles: u64,
    pub median_seconds: Option<f64>,
    pub max_seconds: Option<f64>,
}

impl CycleTimes {
    pub fn of(mut seconds: Vec<f64>) -> CycleTimes {
        seconds.sort_by(f64::total_cmp);
        CycleTimes {
            cycles: seconds.len() as u64,
            median_seconds: seconds.get(seconds.len() / 2).copied(),
            max_seconds: seconds.last().copied(),
        }
    }
}

/// W4 on the brokers: one replicator's checkpoints of the committed offsets.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Checkpointing {
    pub groups: u64,
    pub checkpoint_interval_seconds: f64,
    /// Its checkpoints (the last one per group and partition).
    pub checkpoints: TranslationError,
    /// MirrorMaker 2's rule (newest sync with upstream ≤ U, then +1 unless
    /// equal) on this contender's own offset-sync stream, every sync kept.
    pub mm2_rule_on_syncs: Option<TranslationError>,
    /// Offset syncs it wrote for the source topic.
    pub offset_syncs: Option<u64>,
    /// Process start until its checkpoints reached their final values.
    pub checkpoints_final_seconds: Option<f64>,
    /// Ferry: its cycles that saw every group, as it logged them.
    pub cycle: Option<CycleTimes>,
    /// Ferry: those of them that wrote at least one checkpoint.
    pub writing_cycle: Option<CycleTimes>,
}

/// W4 in process: Ferry's offset maps for many partitions, and checkpoint
/// cycles over them without the I/O.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct OffsetMapScale {
    pub partitions: u64,
    pub records_per_partition: u64,
    /// Records per transaction (a marker after each), `null` = contiguous.
    pub gap_every: Option<u64>,
    pub segments: u64,
    /// `OffsetMap::approx_bytes` summed: Ferry's own accounting.
    pub map_bytes: u64,
    /// Heap in use (glibc `mallinfo2`) after building the maps and sync
    /// emitters minus before.
    pub heap_bytes: Option<u64>,
    pub build_seconds: f64,
    pub groups: u64,
    pub offsets_per_cycle: u64,
    pub checkpoints_per_cycle: u64,
    pub cycle: CycleTimes,
    /// Heap the checkpoint ledger held after the cycles.
    pub ledger_heap_bytes: Option<u64>,
    /// Ferry's translations (the offset maps).
    pub translation: TranslationError,
    /// MirrorMaker 2's rule on the syncs Ferry's emitters wrote.
    pub mm2_rule_on_syncs: TranslationError,
    pub offset_syncs: u64,
}

/// W5: the longest copy gaps of a steady stream while a second process
/// joins the first and while it is SIGTERMed again.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Rebalance {
    /// The producer's fixed rate over all source partitions.
    pub rate_per_sec: f64,
    /// How often every target partition's end offset was read.
    pub sample_interval_seconds: f64,
    /// The flow's slot count.
    pub slots_total: u16,
    /// The longest gap of any partition while one process ran alone,
    /// before the join: the floor of what sampling and batching show.
    pub steady_gap_max_seconds: Option<f64>,
    pub steady_seconds: f64,
    /// `join` (the second process starts) and `leave` (it is SIGTERMed).
    pub phases: Vec<RebalancePhase>,
    /// Records missing from (source − target) and duplicated on
    /// (target − source) the target once the producer stopped, summed over
    /// partitions.
    pub missing: u64,
    pub duplicates: u64,
}

/// A target topic as a `read_committed` consumer reads it, every record
/// counted by its source sequence number.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Delivered {
    /// Records read.
    pub records: u64,
    /// Reads of a source record read before (records − distinct).
    pub duplicates: u64,
    /// Source records never read.
    pub missing: u64,
    /// Records that are no source record of their partition.
    pub unexpected: u64,
    /// The partitions' high watermarks, summed.
    pub end_offsets: u64,
    /// `end_offsets − records`: transaction markers and aborted records, which
    /// a `read_committed` reader skips. Zero for a writer without
    /// transactions.
    pub hidden_offsets: u64,
    /// Offsets above the last stable offset (a transaction still open),
    /// summed; not read.
    pub open_transaction_offsets: u64,
}

/// `crash`: a contender SIGKILLed mid-copy, then started again on the same
/// topology, target topic and state, until it copied everything.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Crash {
    /// From the first start until the SIGKILL.
    pub killed_after_seconds: f64,
    /// The target's high watermarks at the SIGKILL, summed.
    pub target_offsets_at_kill: u64,
    /// From the restart until the last record of every partition was
    /// visible to a `read_committed` reader.
    pub recovered_seconds: Option<f64>,
}

/// One membership change of W5's `w5-rebalance` case.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct RebalancePhase {
    /// `join` or `leave`.
    pub phase: String,
    /// Slots that changed owner.
    pub slots_moved: Vec<u16>,
    /// Target partitions whose slot kept its owner, and those whose slot
    /// moved.
    pub partitions_stayed: u64,
    pub partitions_moved: u64,
    /// The longest time between two end-offset increases of any partition
    /// of each group within the phase's window.
    pub gap_max_stayed_seconds: Option<f64>,
    pub gap_max_moved_seconds: Option<f64>,
    /// The partitions with those gaps (`topic/partition`).
    pub gap_max_stayed_partition: Option<String>,
    pub gap_max_moved_partition: Option<String>,
    /// From the event (start or SIGTERM of the second process) until
    /// `/status` showed the slots with their new owner.
    pub handed_over_seconds: Option<f64>,
    /// From the event until every moved partition advanced again.
    pub resumed_seconds: Option<f64>,
    /// The window the gaps are taken over: from the event until some
    /// seconds after every moved partition advanced again.
    pub window_seconds: f64,
}

/// One of the goals in `benchmarks.md`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TargetCheck {
    /// The ratio's key in `ratios`.
    pub ratio: String,
    /// `>=` or `<=`.
    pub bound: String,
    pub required: f64,
    pub actual: Option<f64>,
    /// `null` when a side of the ratio is missing.
    pub met: Option<bool>,
}

impl Summary {
    /// Reads an existing summary, or starts an empty one when there is none
    /// or it has another schema version.
    pub fn load_or_default(path: &Path) -> Summary {
        std::fs::read_to_string(path)
            .ok()
            .and_then(|text| serde_json::from_str::<Summary>(&text).ok())
            .filter(|s| s.schema_version == SCHEMA_VERSION)
            .unwrap_or(Summary {
                schema_version: SCHEMA_VERSION,
                workloads: BTreeMap::new(),
            })
    }

    pub fn write(&self, path: &Path) -> Result<()> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).context(|| format!("cannot create {}", dir.display()))?;
        }
        let text = serde_json::to_string_pretty(self)?;
        std::fs::write(path, text + "\n").context(|| format!("cannot write {}", path.display()))
    }
}

impl CaseReport {
    pub fn result(&self, contender: &str) -> Option<&ContenderResult> {
        self.results
            .iter()
            .find(|r| r.contender == contender && r.ok)
    }

    /// Adds `a/b` of `field` as `"<a>/<b> <label>"` when both are known.
    pub fn add_ratio(
        &mut self,
        a: &str,
        b: &str,
        label: &str,
        field: impl Fn(&ContenderResult) -> Option<f64>,
    ) {
        let (Some(x), Some(y)) = (
            self.result(a).and_then(&field),
            self.result(b).and_then(&field),
        ) else {
            return;
        };
        if y > 0.0 {
            self.ratios.insert(format!("{a}/{b} {label}"), x / y);
        }
    }

    /// Records a goal on a ratio added by [`add_ratio`](Self::add_ratio).
    pub fn add_target(&mut self, ratio: &str, bound: &str, required: f64) {
        let actual = self.ratios.get(ratio).copied();
        let met = actual.map(|a| {
            if bound == ">=" {
                a >= required
            } else {
                a <= required
            }
        });
        self.targets.push(TargetCheck {
            ratio: ratio.to_string(),
            bound: bound.to_string(),
            required,
            actual,
            met,
        });
    }
}

fn f(v: Option<f64>, decimals: usize) -> String {
    v.map_or_else(|| "-".to_string(), |v| format!("{v:.decimals$}"))
}

fn mb(v: Option<u64>) -> String {
    v.map_or_else(|| "-".to_string(), |v| format!("{:.0}", v as f64 / 1e6))
}

fn status(r: &ContenderResult) -> &'static str {
    if r.ok {
        "ok"
    } else {
        "FAILED"
    }
}

/// A table with right-aligned columns after the first.
fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let widths: Vec<usize> = (0..header.len())
        .map(|i| {
            rows.iter()
                .map(|r| r.get(i).map_or(0, String::len))
                .chain([header[i].len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cells: Vec<String>| {
        let mut s = String::new();
        for (i, cell) in cells.iter().enumerate().take(widths.len()) {
            if i == 0 {
                let _ = write!(s, "{cell:<w$}", w = widths[i]);
            } else {
                let _ = write!(s, "  {cell:>w$}", w = widths[i]);
            }
        }
        s.trim_end().to_string() + "\n"
    };
    let mut out = line(header.iter().map(|h| h.to_string()).collect());
    out += &line(widths.iter().map(|w| "-".repeat(*w)).collect());
    for row in rows {
        out += &line(row.clone());
    }
    out
}

/// Seconds as milliseconds.
fn ms(v: Option<f64>) -> String {
    f(v.map(|s| s * 1e3), 1)
}

/// One row of a W4 translation table.
fn translation_row(what: String, t: &TranslationError) -> Vec<String> {
    let int = |v: Option<i64>| v.map_or_else(|| "-".to_string(), |v| v.to_string());
    vec![
        what,
        t.offsets.to_string(),
        t.translated.to_string(),
        t.exact.to_string(),
        t.behind.to_string(),
        t.ahead.to_string(),
        int(t.error_min),
        int(t.error_max),
        f(t.reread_mean, 1),
        t.reread_max.to_string(),
    ]
}

const TRANSLATION_HEADER: &[&str] = &[
    "translation",
    "offsets",
    "translated",
    "exact",
    "behind",
    "ahead",
    "err min",
    "err max",
    "mean re-read",
    "max re-read",
];

/// W4: the process table and the translation table (brokers), or the
/// offset-map table (in process).
fn render_w4(case: &CaseReport) -> String {
    let mut out = String::new();
    let mut translations = Vec::new();
    if case.results.iter().any(|r| r.offset_map.is_some()) {
        let mut rows = Vec::new();
        for r in &case.results {
            let Some(m) = &r.offset_map else { continue };
            rows.push(vec![
                r.contender.clone(),
                status(r).into(),
                m.partitions.to_string(),
                m.segments.to_string(),
                format!("{:.1}", m.map_bytes as f64 / 1e6),
                m.heap_bytes
                    .map_or("-".into(), |b| format!("{:.1}", b as f64 / 1e6)),
                f(Some(m.build_seconds), 2),
                m.offsets_per_cycle.to_string(),
                m.checkpoints_per_cycle.to_string(),
                ms(m.cycle.median_seconds),
                ms(m.cycle.max_seconds),
                m.ledger_heap_bytes
                    .map_or("-".into(), |b| format!("{:.0}", b as f64 / 1e6)),
                mb(r.peak_rss_bytes),
            ]);
            translations.push(translation_row(
                format!("{} offset maps", r.contender),
                &m.translation,
            ));
            translations.push(translation_row(
                format!("MM2 rule on {}'s syncs ({})", r.contender, m.offset_syncs),
                &m.mm2_rule_on_syncs,
            ));
        }
        out += &table(
            &[
                "contender",
                "status",
                "partitions",
                "segments",
                "map MB",
                "heap MB",
                "build s",
                "offsets/cycle",
                "checkpoints/cycle",
                "cycle p50 ms",
                "cycle max ms",
                "ledger MB",
                "peak RSS MB",
            ],
            &rows,
        );
    } else {
        let mut rows = Vec::new();
        for r in &case.results {
            let c = r.checkpointing.as_ref();
            rows.push(vec![
                r.contender.clone(),
                status(r).into(),
                f(r.wall_seconds, 1),
                f(c.and_then(|c| c.checkpoints_final_seconds), 1),
                c.and_then(|c| c.cycle.as_ref())
                    .map_or("-".into(), |t| t.cycles.to_string()),
                ms(c.and_then(|c| c.cycle.as_ref())
                    .and_then(|t| t.median_seconds)),
                ms(c.and_then(|c| c.cycle.as_ref()).and_then(|t| t.max_seconds)),
                ms(c.and_then(|c| c.writing_cycle.as_ref())
                    .and_then(|t| t.max_seconds)),
                c.and_then(|c| c.offset_syncs)
                    .map_or("-".into(), |n| n.to_string()),
                f(r.cpu_seconds, 1),
                mb(r.peak_rss_bytes),
                f(r.host_load_1m, 1),
            ]);
            if let Some(c) = c {
                translations.push(translation_row(
                    format!("{} checkpoints", r.contender),
                    &c.checkpoints,
                ));
                if let Some(rule) = &c.mm2_rule_on_syncs {
                    translations.push(translation_row(
                        format!("MM2 rule on {}'s syncs", r.contender),
                        rule,
                    ));
                }
            }
        }
        out += &table(
            &[
                "contender",
                "status",
                "copied s",
                "checkpoints final s",
                "cycles",
                "cycle p50 ms",
                "cycle max ms",
                "writing cycle max ms",
                "syncs",
                "CPU s",
                "peak RSS MB",
                "load 1m",
            ],
            &rows,
        );
    }
    if !translations.is_empty() {
        out += "\n";
        out += &table(TRANSLATION_HEADER, &translations);
    }
    out
}

/// W5: the copy gaps of each membership change, beside the goals
/// (printed, never asserted: the figures depend on the machine's load).
fn render_rebalance(r: &Rebalance) -> String {
    let mut out = format!(
        "\ncopy gaps at {:.0} records/s, end offsets read every {:.0} ms, {} slots; \
         longest gap while one process ran alone ({:.0} s): {} s\n",
        r.rate_per_sec,
        r.sample_interval_seconds * 1e3,
        r.slots_total,
        r.steady_seconds,
        f(r.steady_gap_max_seconds, 2),
    );
    let rows: Vec<Vec<String>> = r
        .phases
        .iter()
        .map(|p| {
            let goal = if p.phase == "leave" { "<= 2" } else { "-" };
            vec![
                p.phase.clone(),
                p.slots_moved.len().to_string(),
                f(p.handed_over_seconds, 2),
                f(p.resumed_seconds, 2),
                p.partitions_stayed.to_string(),
                f(p.gap_max_stayed_seconds, 2),
                "0".into(),
                p.partitions_moved.to_string(),
                f(p.gap_max_moved_seconds, 2),
                goal.into(),
                f(Some(p.window_seconds), 1),
            ]
        })
        .collect();
    out += &table(
        &[
            "phase",
            "slots moved",
            "handed over s",
            "resumed s",
            "stayed",
            "stayed gap s",
            "goal",
            "moved",
            "moved gap s",
            "goal",
            "window s",
        ],
        &rows,
    );
    let _ = writeln!(
        out,
        "after the producer stopped: {} missing, {} duplicates",
        r.missing, r.duplicates
    );
    out
}

/// The human-readable report of one case.
pub fn render_case(workload: &str, case: &CaseReport) -> String {
    let mut out = format!("\n== {} — {}\n", case.name, case.description);
    if workload == "w4" {
        out += &render_w4(case);
        for r in case.results.iter().filter(|r| r.error.is_some()) {
            let _ = writeln!(
                out,
                "  {} FAILED: {}",
                r.contender,
                r.error.as_deref().unwrap_or("")
            );
        }
        return out;
    }
    let rows_of = |r: &ContenderResult, indent: bool| -> Vec<String> {
        let name = if indent {
            format!("  {}", r.contender)
        } else {
            r.contender.clone()
        };
        match workload {
            "w2" => {
                let l = r.latency_ms.as_ref();
                vec![
                    name,
                    status(r).into(),
                    l.map_or("-".into(), |l| {
                        format!("{}/{}", l.count, l.count + l.missing)
                    }),
                    f(l.map(|l| l.p50), 0),
                    f(l.map(|l| l.p99), 0),
                    f(l.map(|l| l.max), 0),
                    f(r.source_latency_ms.as_ref().map(|l| l.p50), 0),
                    f(r.source_latency_ms.as_ref().map(|l| l.p99), 0),
                    f(r.cpu_seconds_per_gb, 1),
                    mb(r.peak_rss_bytes),
                ]
            }
            "w3" => {
                let b = r.breadth.as_ref();
                vec![
                    name,
                    status(r).into(),
                    b.map_or("-".into(), |b| {
                        format!("{}/{}", b.topics_replicated, b.topics_expected)
                    }),
                    f(r.first_record_seconds, 1),
                    f(b.and_then(|b| b.all_topics_seconds), 1),
                    mb(r.peak_rss_bytes),
                    mb(b.and_then(|b| b.idle_rss_bytes)),
                    f(b.and_then(|b| b.idle_cpu_percent), 1),
                    b.and_then(|b| b.prometheus_series)
                        .map_or_else(|| "n/a".into(), |n| n.to_string()),
                ]
            }
            "crash" => {
                let d = r.delivered.as_ref();
                let c = r.crash.as_ref();
                let count = |v: Option<u64>| v.map_or("-".into(), |v| v.to_string());
                vec![
                    name,
                    status(r).into(),
                    f(c.map(|c| c.killed_after_seconds), 2),
                    count(c.map(|c| c.target_offsets_at_kill)),
                    f(c.and_then(|c| c.recovered_seconds), 1),
                    count(d.map(|d| d.records)),
                    count(d.map(|d| d.duplicates)),
                    count(d.map(|d| d.missing)),
                    count(d.map(|d| d.hidden_offsets)),
                    f(r.host_load_1m, 1),
                ]
            }
            "w5" => vec![
                name,
                status(r).into(),
                r.records_copied.to_string(),
                f(r.records_per_sec, 0),
                f(r.wall_seconds, 2),
                f(r.first_record_seconds, 2),
                f(r.settled_seconds, 2),
                f(r.records_per_sec_settled, 0),
                f(r.cpu_seconds, 1),
                f(r.cpu_seconds_per_gb, 1),
                mb(r.peak_rss_bytes),
                r.slots.as_ref().map_or("-".into(), |s| s.len().to_string()),
                f(r.host_load_1m, 1),
            ],
            _ => vec![
                name,
                status(r).into(),
                f(r.records_per_sec, 0),
                f(r.mb_per_sec, 1),
                f(r.wall_seconds, 2),
                f(r.first_record_seconds, 2),
                f(r.records_per_sec_after_first, 0),
                f(r.cpu_seconds, 1),
                f(r.cpu_seconds_per_gb, 1),
                mb(r.peak_rss_bytes),
                f(r.source_broker_cpu_seconds, 1),
                f(r.target_broker_cpu_seconds, 1),
                f(r.host_load_1m, 1),
            ],
        }
    };
    let header: &[&str] = match workload {
        "w2" => &[
            "contender",
            "status",
            "received",
            "p50 ms",
            "p99 ms",
            "max ms",
            "src p50 ms",
            "src p99 ms",
            "CPU-s/GB",
            "peak RSS MB",
        ],
        "w3" => &[
            "contender",
            "status",
            "topics",
            "1st rec s",
            "all topics s",
            "peak RSS MB",
            "idle RSS MB",
            "idle CPU %",
            "series",
        ],
        "crash" => &[
            "contender",
            "status",
            "killed at s",
            "offsets at kill",
            "restart to done s",
            "records read",
            "duplicates",
            "missing",
            "markers+aborted",
            "load 1m",
        ],
        "w5" => &[
            "contender",
            "status",
            "records",
            "records/s",
            "wall s",
            "1st rec s",
            "settled s",
            "rec/s settled",
            "CPU s",
            "CPU-s/GB",
            "peak RSS MB",
            "slots",
            "load 1m",
        ],
        _ => &[
            "contender",
            "status",
            "records/s",
            "MB/s",
            "wall s",
            "1st rec s",
            "rec/s after 1st",
            "CPU s",
            "CPU-s/GB",
            "peak RSS MB",
            "src broker CPU s",
            "dst broker CPU s",
            "load 1m",
        ],
    };
    let mut rows = Vec::new();
    for r in &case.results {
        rows.push(rows_of(r, false));
        for part in &r.parts {
            rows.push(rows_of(part, true));
        }
    }
    out += &table(header, &rows);
    for r in &case.results {
        if let Some(rebalance) = &r.rebalance {
            out += &render_rebalance(rebalance);
        }
    }
    if workload != "crash" {
        for r in &case.results {
            if let Some(d) = &r.delivered {
                let _ = writeln!(
                    out,
                    "{} read back read_committed: {} records, {} duplicates, {} missing, {} offsets of transaction markers or aborted records",
                    r.contender, d.records, d.duplicates, d.missing, d.hidden_offsets
                );
            }
        }
    }
    if !case.ratios.is_empty() {
        out += "ratios:\n";
        for (name, value) in &case.ratios {
            let goal = case.targets.iter().find(|t| &t.ratio == name);
            let goal = goal.map_or(String::new(), |t| {
                format!(
                    "   (goal {} {}: {})",
                    t.bound,
                    t.required,
                    match t.met {
                        Some(true) => "met",
                        Some(false) => "MISSED",
                        None => "n/a",
                    }
                )
            });
            let _ = writeln!(out, "  {name:<40} {value:>8.2}{goal}");
        }
    }
    for t in case.targets.iter().filter(|t| t.actual.is_none()) {
        let _ = writeln!(
            out,
            "  {:<40} {:>8}   (goal {} {}: n/a)",
            t.ratio, "-", t.bound, t.required
        );
    }
    for r in case
        .results
        .iter()
        .chain(case.results.iter().flat_map(|r| r.parts.iter()))
    {
        if let Some(e) = &r.error {
            // An `ok` row's error is a note (e.g. at-least-once duplicates).
            let what = if r.ok { "note" } else { "FAILED" };
            let _ = writeln!(out, "  {} {what}: {e}", r.contender);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every field of the JSON summary is documented in SCHEMA.md.
    #[test]
    fn schema_md_documents_every_field() {
        let schema = include_str!("../SCHEMA.md");
        let mut case = CaseReport {
            results: vec![ContenderResult {
                latency_ms: Some(Latency::default()),
                breadth: Some(Breadth::default()),
                checkpointing: Some(Checkpointing {
                    mm2_rule_on_syncs: Some(TranslationError::default()),
                    cycle: Some(CycleTimes::default()),
                    writing_cycle: Some(CycleTimes::default()),
                    ..Default::default()
                }),
                offset_map: Some(OffsetMapScale::default()),
                slots: Some(vec![0]),
                rebalance: Some(Rebalance {
                    phases: vec![RebalancePhase::default()],
                    ..Default::default()
                }),
                delivered: Some(Delivered::default()),
                crash: Some(Crash::default()),
                threads: vec![ThreadCpu {
                    name: "x".into(),
                    cpu_seconds: 1.0,
                }],
                ..Default::default()
            }],
            ..Default::default()
        };
        case.add_target("x", ">=", 1.0);
        let report = WorkloadReport {
            workload: "w1".into(),
            started_at_unix_ms: 0,
            finished_at_unix_ms: 0,
            command: String::new(),
            quick: true,
            host: Host {
                cpus: 2,
                memory_bytes: 0,
                kernel: String::new(),
            },
            kafka_version: String::new(),
            broker_data_dir: String::new(),
            ferry_version: None,
            cases: vec![case],
        };
        let summary = Summary {
            schema_version: SCHEMA_VERSION,
            workloads: BTreeMap::from([("w1".to_string(), report)]),
        };
        let value = serde_json::to_value(&summary).unwrap();
        let mut missing = Vec::new();
        collect_keys(&value, &mut |key| {
            if key != "w1" && !schema.contains(&format!("`{key}`")) {
                missing.push(key.to_string());
            }
        });
        assert!(
            missing.is_empty(),
            "SCHEMA.md does not document {missing:?}"
        );
    }

    fn collect_keys(value: &serde_json::Value, f: &mut impl FnMut(&str)) {
        match value {
            serde_json::Value::Object(map) => {
                for (k, v) in map {
                    f(k);
                    collect_keys(v, f);
                }
            }
            serde_json::Value::Array(items) => items.iter().for_each(|v| collect_keys(v, f)),
            _ => {}
        }
    }

    #[test]
    fn ratios_and_targets() {
        let result = |name: &str, rps: f64| ContenderResult {
            contender: name.into(),
            ok: true,
            records_per_sec: Some(rps),
            ..Default::default()
        };
        let mut case = CaseReport {
            results: vec![result("ferry", 90.0), result("limit", 100.0)],
            ..Default::default()
        };
        case.add_ratio("ferry", "limit", "records_per_sec", |r| r.records_per_sec);
        case.add_ratio("ferry", "mm2", "records_per_sec", |r| r.records_per_sec);
        case.add_target("ferry/limit records_per_sec", ">=", 0.8);
        case.add_target("ferry/mm2 records_per_sec", ">=", 1.5);
        assert_eq!(case.targets[0].met, Some(true));
        assert_eq!(case.targets[1].met, None);
        for workload in ["w2", "w3", "w4", "w5", "crash"] {
            let mut other = case.clone();
            other.results[0].delivered = Some(Delivered::default());
            other.results[0].crash = Some(Crash::default());
            other.results[0].latency_ms = Some(Latency::default());
            other.results[0].breadth = Some(Breadth::default());
            other.results[0].checkpointing = Some(Checkpointing::default());
            other.results[0].rebalance = Some(Rebalance {
                phases: vec![RebalancePhase {
                    phase: "leave".into(),
                    ..Default::default()
                }],
                ..Default::default()
            });
            assert!(render_case(workload, &other).contains("ferry"));
        }
        case.results[1].parts = vec![result("limit-consume", 1.0)];
        let text = render_case("w1", &case);
        assert!(text.contains("  limit-consume"), "{text}");
        assert!(text.contains("ferry/limit records_per_sec"), "{text}");
        assert!(text.contains("met"), "{text}");
    }
}
