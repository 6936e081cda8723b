//! Running one contender process and measuring it from the outside.
//!
//! CPU and memory are those of the contender's own process, never the
//! harness's: for a process that exits on its own they come from the
//! `rusage` that `wait4` hands back when the harness reaps it (exact); for a
//! daemon, from `/proc/<pid>` sampled right before it is sent SIGTERM.
//! Per-thread CPU (`/proc/<pid>/task/*/stat`) is sampled along the way, to
//! show which thread a contender spends its time in.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use ferry_testkit::proc::{sample, spawn_tied, ProcStats};
use serde::Serialize;

use crate::bail;
use crate::error::{Context, Result};

/// How long a SIGTERMed contender may take to stop before SIGKILL.
pub const STOP_GRACE: Duration = Duration::from_secs(40);

/// A contender process, tied to the harness (it dies if the harness dies).
pub struct Tracked {
    pub name: String,
    child: Option<Child>,
    pid: u32,
    pub started: Instant,
    log: PathBuf,
    /// Set once reaped: exit status and exact rusage.
    exited: Option<(ExitStatus, ProcStats, Duration)>,
    /// Latest CPU seconds of every thread seen, by thread id (with its
    /// name): threads that exit keep their last value.
    threads: BTreeMap<u32, (String, f64)>,
    /// Highest `VmHWM` seen in `/proc/<pid>/status`. Peak RSS comes from
    /// here rather than from wait4's `ru_maxrss`, which on Linux also counts
    /// the high-water mark of the harness's own memory that the child
    /// inherited at fork, before exec: every contender would then report
    /// at least the harness's size (it holds the preloaded records).
    hwm_bytes: u64,
}

impl Tracked {
    /// Starts `cmd` with stdout and stderr appended to `log`.
    pub fn spawn(name: &str, mut cmd: Command, log: &Path) -> Result<Tracked> {
        let out = File::create(log).context(|| format!("cannot create {}", log.display()))?;
        let err = out.try_clone()?;
        cmd.stdin(Stdio::null()).stdout(out).stderr(err);
        let started = Instant::now();
        let child = spawn_tied(cmd).context(|| format!("cannot start {name}"))?;
        Ok(Tracked {
            name: name.to_string(),
            pid: child.id(),
            child: Some(child),
            started,
            log: log.to_path_buf(),
            exited: None,
            threads: BTreeMap::new(),
            hwm_bytes: 0,
        })
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// Reaps the process if it has exited, keeping its rusage.
    pub fn poll_exit(&mut self) -> Result<Option<(ExitStatus, ProcStats, Duration)>> {
        if self.exited.is_none() {
            self.sample_threads();
            if let Some(mut done) = wait4(self.pid, false)? {
                if self.hwm_bytes > 0 {
                    done.1.peak_rss_bytes = self.hwm_bytes;
                }
                self.exited = Some((done.0, done.1, self.started.elapsed()));
                // Reaped: dropping the handle neither waits nor kills.
                self.child.take();
            }
        }
        Ok(self.exited)
    }

    /// Waits up to `limit` for the process to exit on its own.
    pub fn wait_exit(
        &mut self,
        limit: Duration,
    ) -> Result<Option<(ExitStatus, ProcStats, Duration)>> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(done) = self.poll_exit()? {
                return Ok(Some(done));
            }
            if Instant::now() > deadline {
                return Ok(None);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Peak RSS and CPU so far, from `/proc` (for a running process).
    pub fn sample(&mut self) -> Result<ProcStats> {
        self.sample_threads();
        sample(self.pid).context(|| format!("cannot sample {} (pid {})", self.name, self.pid))
    }

    /// Current (not peak) resident set size in bytes.
    pub fn current_rss(&self) -> Result<u64> {
        let status = fs::read_to_string(format!("/proc/{}/status", self.pid))?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map(|kib| kib * 1024)
            .ok_or_else(|| crate::error::BenchError::new(format!("no VmRSS for pid {}", self.pid)))
    }

    /// SIGTERMs the process (a graceful stop for every contender) and reaps
    /// it, SIGKILLing it after [`STOP_GRACE`]. Returns the exit status.
    pub fn stop(&mut self) -> Result<ExitStatus> {
        if let Some((status, ..)) = self.poll_exit()? {
            return Ok(status);
        }
        self.terminate();
        if let Some((status, ..)) = self.wait_exit(STOP_GRACE)? {
            return Ok(status);
        }
        self.kill();
        match self.wait_exit(Duration::from_secs(10))? {
            Some((status, ..)) => Ok(status),
            None => bail!("{} (pid {}) survived SIGKILL", self.name, self.pid),
        }
    }

    /// SIGKILLs the process, as a crash would end it (nothing flushed,
    /// nothing committed), and reaps it.
    pub fn crash(&mut self) -> Result<()> {
        self.kill();
        match self.wait_exit(Duration::from_secs(10))? {
            Some(_) => Ok(()),
            None => bail!("{} (pid {}) survived SIGKILL", self.name, self.pid),
        }
    }

    /// Sends SIGTERM without waiting (W5 watches what happens meanwhile);
    /// [`stop`](Self::stop) then reaps the process.
    pub fn terminate(&self) {
        if self.exited.is_none() {
            // SAFETY: the pid is our unreaped child.
            unsafe { libc::kill(self.pid as libc::pid_t, libc::SIGTERM) };
        }
    }

    fn kill(&self) {
        if self.exited.is_none() {
            // SAFETY: the pid is our unreaped child.
            unsafe { libc::kill(self.pid as libc::pid_t, libc::SIGKILL) };
        }
    }

    /// The last `lines` lines of the contender's output.
    pub fn log_tail(&self, lines: usize) -> String {
        tail(&self.log, lines)
    }

    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// CPU seconds per thread name (digits folded, so that a pool's threads
    /// add up under one name), biggest first.
    pub fn thread_cpu(&self) -> Vec<ThreadCpu> {
        let mut by_name: BTreeMap<&str, f64> = BTreeMap::new();
        for (name, cpu) in self.threads.values() {
            *by_name.entry(name).or_insert(0.0) += cpu;
        }
        let mut v: Vec<ThreadCpu> = by_name
            .into_iter()
            .map(|(name, cpu_seconds)| ThreadCpu {
                name: name.to_string(),
                cpu_seconds,
            })
            .collect();
        v.sort_by(|a, b| b.cpu_seconds.total_cmp(&a.cpu_seconds));
        v.truncate(12);
        v
    }

    fn sample_threads(&mut self) {
        if let Ok(stats) = sample(self.pid) {
            self.hwm_bytes = self.hwm_bytes.max(stats.peak_rss_bytes);
        }
        for (tid, name, cpu) in read_threads(self.pid) {
            self.threads.insert(tid, (name, cpu));
        }
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        if self.exited.is_none() {
            self.kill();
            let _ = wait4(self.pid, true);
        }
    }
}

/// CPU time of the threads sharing one name.
#[derive(Clone, Debug, Serialize, serde::Deserialize, PartialEq)]
pub struct ThreadCpu {
    pub name: String,
    pub cpu_seconds: f64,
}

/// `(thread id, name with digits as '#', CPU seconds)` of every thread.
fn read_threads(pid: u32) -> Vec<(u32, String, f64)> {
    let mut out = Vec::new();
    let Ok(dir) = fs::read_dir(format!("/proc/{pid}/task")) else {
        return out;
    };
    for entry in dir.flatten() {
        let Some(tid) = entry
            .file_name()
            .to_str()
            .and_then(|t| t.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let name: String = stat[open + 1..close]
            .chars()
            .map(|c| if c.is_ascii_digit() { '#' } else { c })
            .collect();
        let fields: Vec<&str> = stat[close + 1..].split_whitespace().collect();
        let ticks: u64 = [11, 12]
            .iter()
            .filter_map(|&i| fields.get(i).and_then(|f| f.parse::<u64>().ok()))
            .sum();
        out.push((tid, name, ticks as f64 / clock_ticks()));
    }
    out
}

fn clock_ticks() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as f64
    } else {
        100.0
    }
}

/// `wait4` with rusage; `None` while the child runs (unless `block`).
fn wait4(pid: u32, block: bool) -> Result<Option<(ExitStatus, ProcStats)>> {
    use std::os::unix::process::ExitStatusExt;
    let mut status: libc::c_int = 0;
    // SAFETY: rusage is plain data that wait4 fills in.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let flags = if block { 0 } else { libc::WNOHANG };
    loop {
        // SAFETY: valid pointers to locals; the pid is our child.
        let rc = unsafe { libc::wait4(pid as libc::pid_t, &mut status, flags, &mut usage) };
        if rc == 0 {
            return Ok(None);
        }
        if rc == pid as libc::pid_t {
            break;
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err).context(|| format!("cannot wait for pid {pid}"));
        }
    }
    let tv = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
    };
    Ok(Some((
        ExitStatus::from_raw(status),
        ProcStats {
            // Linux reports ru_maxrss in KiB.
            peak_rss_bytes: usage.ru_maxrss as u64 * 1024,
            cpu_time: tv(usage.ru_utime) + tv(usage.ru_stime),
        },
    )))
}

pub use ferry_testkit::proc::tail;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn measures_a_process_that_exits_and_one_that_is_stopped() {
        let dir = std::env::temp_dir().join(format!("ferry-bench-measure-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let mut cmd = Command::new("sh");
        cmd.args([
            "-c",
            "echo hello; i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; exit 3",
        ]);
        let mut run = Tracked::spawn("sh", cmd, &dir.join("a.log")).unwrap();
        let (status, stats, _) = run.wait_exit(Duration::from_secs(30)).unwrap().unwrap();
        assert_eq!(status.code(), Some(3));
        assert!(stats.peak_rss_bytes > 0);
        assert_eq!(run.log_tail(5), "hello");

        let mut cmd = Command::new("sleep");
        cmd.arg("30");
        let mut daemon = Tracked::spawn("sleep", cmd, &dir.join("b.log")).unwrap();
        assert!(daemon.sample().unwrap().peak_rss_bytes > 0);
        assert!(!daemon.thread_cpu().is_empty());
        let status = daemon.stop().unwrap();
        assert!(!status.success());
        fs::remove_dir_all(&dir).unwrap();
    }
}
