//! Child processes: spawning them so that they die with the test process, and
//! measuring their peak memory and CPU time.

use std::fs::{self, File};
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::OnceLock;
use std::time::Duration;

use crate::error::{HarnessError, Result};

type SpawnJob = (Command, mpsc::Sender<io::Result<Child>>);

/// Spawns `cmd` so that the kernel SIGKILLs it when the test process dies,
/// however it dies (panic, SIGKILL, CI timeout): no stray 500 MB JVMs.
///
/// `PR_SET_PDEATHSIG` fires when the *thread* that forked the child exits,
/// not the process. Test harnesses run each test on its own short-lived
/// thread, so every child is forked by one dedicated thread that lives as
/// long as the process.
pub fn spawn_tied(mut cmd: Command) -> io::Result<Child> {
    let parent = std::process::id();
    // SAFETY: the closure runs between fork and exec and only calls the
    // async-signal-safe prctl and getppid; it allocates nothing.
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(io::Error::last_os_error());
            }
            // The parent may have died between fork and prctl; then the
            // signal will never come, so give up instead of running orphaned.
            if libc::getppid() as u32 != parent {
                return Err(io::Error::from_raw_os_error(libc::ESRCH));
            }
            Ok(())
        });
    }
    let spawner = spawner()?;
    let (reply_tx, reply_rx) = mpsc::channel();
    spawner
        .send((cmd, reply_tx))
        .map_err(|_| io::Error::other("the ferry-testkit spawner thread is gone"))?;
    reply_rx
        .recv()
        .map_err(|_| io::Error::other("the ferry-testkit spawner thread dropped a request"))?
}

fn spawner() -> io::Result<&'static mpsc::Sender<SpawnJob>> {
    static SPAWNER: OnceLock<Result<mpsc::Sender<SpawnJob>, String>> = OnceLock::new();
    SPAWNER
        .get_or_init(|| {
            let (tx, rx) = mpsc::channel::<SpawnJob>();
            std::thread::Builder::new()
                .name("ferry-testkit-spawner".into())
                // The sender lives in a static and is never dropped, so this
                // loop (and the thread) lasts until the process exits.
                .spawn(move || {
                    for (mut cmd, reply) in rx {
                        let _ = reply.send(cmd.spawn());
                    }
                })
                .map(|_| tx)
                .map_err(|e| format!("cannot start the ferry-testkit spawner thread: {e}"))
        })
        .as_ref()
        .map_err(|e| io::Error::other(e.clone()))
}

/// Runs a short-lived helper tool to completion (tied like [`spawn_tied`]),
/// failing with its output when it exits unsuccessfully.
pub(crate) fn run_tool(mut cmd: Command, what: &str) -> Result<()> {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let output = spawn_tied(cmd)
        .and_then(Child::wait_with_output)
        .map_err(|e| HarnessError::io(format!("cannot run {what}"), e))?;
    if output.status.success() {
        return Ok(());
    }
    Err(HarnessError::Command {
        what: what.to_string(),
        status: output.status.to_string(),
        output: format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ),
    })
}

/// Peak memory and CPU time of a process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProcStats {
    /// Peak resident set size ("high water mark"), in bytes.
    pub peak_rss_bytes: u64,
    /// User plus system CPU time.
    pub cpu_time: Duration,
}

/// Sends `signal` to a child that has not been reaped yet (so its pid is
/// still ours): a daemon under test, told to reload or to shut down.
pub fn signal(child: &Child, signal: libc::c_int) -> io::Result<()> {
    let pid = libc::pid_t::try_from(child.id())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "pid out of range"))?;
    // SAFETY: kill(2) takes no pointers; the pid is our unreaped child's.
    if unsafe { libc::kill(pid, signal) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Samples a *running* process from `/proc/<pid>` (`VmHWM` of `status`,
/// `utime + stime` of `stat`), e.g. a Ferry daemon during a benchmark, right
/// before stopping it. Both values only grow, so the last sample is the best.
pub fn sample(pid: u32) -> io::Result<ProcStats> {
    let status = fs::read_to_string(format!("/proc/{pid}/status"))?;
    let peak_kib = status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| {
            rest.trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<u64>()
                .ok()
        })
        // Zombies and kernel threads have no memory lines.
        .ok_or_else(|| io::Error::other(format!("no VmHWM in /proc/{pid}/status")))?;

    let stat = fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // The command name (field 2) may contain spaces and parentheses, so count
    // fields from the last ')': utime and stime are fields 14 and 15.
    let after_comm = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .ok_or_else(|| io::Error::other(format!("unexpected /proc/{pid}/stat format")))?;
    let fields: Vec<&str> = after_comm.split_whitespace().collect();
    let ticks = |i: usize| -> io::Result<u64> {
        fields
            .get(i)
            .and_then(|f| f.parse().ok())
            .ok_or_else(|| io::Error::other(format!("unexpected /proc/{pid}/stat format")))
    };
    let cpu_ticks = ticks(11)? + ticks(12)?;
    Ok(ProcStats {
        peak_rss_bytes: peak_kib * 1024,
        cpu_time: ticks_to_duration(cpu_ticks),
    })
}

fn ticks_to_duration(ticks: u64) -> Duration {
    // SAFETY: sysconf has no preconditions.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    let per_second = u64::try_from(per_second).unwrap_or(100).max(1);
    Duration::from_secs(ticks / per_second)
        + Duration::from_nanos((ticks % per_second) * 1_000_000_000 / per_second)
}

/// Runs `cmd` to completion (tied like [`spawn_tied`]) and returns its exit
/// status and resource usage.
///
/// `/proc/<pid>` loses the memory figures once the process has exited, so
/// this takes them from `wait4`'s `rusage`, which the kernel fills in when it
/// reaps the child: exact, with no sampling gap at the end.
pub fn run_measured(cmd: Command) -> io::Result<(ExitStatus, ProcStats)> {
    let child = spawn_tied(cmd)?;
    let pid = child.id() as libc::pid_t;
    let mut status: libc::c_int = 0;
    // SAFETY: rusage is plain data that wait4 fills in.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: valid pointers to locals; `child` is ours and not yet reaped.
        let rc = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        if rc == pid {
            break;
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
    // Reaped above: dropping the `Child` handle neither waits nor kills.
    drop(child);
    let timeval = |tv: libc::timeval| {
        Duration::from_secs(tv.tv_sec as u64) + Duration::from_micros(tv.tv_usec as u64)
    };
    Ok((
        ExitStatus::from_raw(status),
        ProcStats {
            // Linux reports ru_maxrss in KiB.
            peak_rss_bytes: usage.ru_maxrss as u64 * 1024,
            cpu_time: timeval(usage.ru_utime) + timeval(usage.ru_stime),
        },
    ))
}

/// The last `lines` lines of a log file, for error messages; reads at most
/// its last 64 KiB. Never fails: an unreadable log says so in the text.
pub fn tail(path: &Path, lines: usize) -> String {
    let read = || -> io::Result<String> {
        let mut file = File::open(path)?;
        let len = file.metadata()?.len();
        file.seek(SeekFrom::Start(len.saturating_sub(64 * 1024)))?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    };
    match read() {
        Ok(text) => {
            let all: Vec<&str> = text.lines().collect();
            let tail = &all[all.len().saturating_sub(lines)..];
            if tail.is_empty() {
                "(the log is empty)".to_string()
            } else {
                tail.join("\n")
            }
        }
        Err(e) => format!("(cannot read {}: {e})", path.display()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_this_process() {
        let stats = sample(std::process::id()).unwrap();
        assert!(stats.peak_rss_bytes > 1024 * 1024, "{stats:?}");
    }

    #[test]
    fn measures_a_child_that_allocates_and_spins() {
        // Touch ~64 MiB and burn a little CPU, then exit with a known code.
        let mut cmd = Command::new("sh");
        cmd.args([
            "-c",
            "x=$(head -c 67108864 /dev/zero | tr '\\0' a | wc -c); i=0; \
             while [ $i -lt 20000 ]; do i=$((i+1)); done; exit 3",
        ]);
        let (status, stats) = run_measured(cmd).unwrap();
        assert_eq!(status.code(), Some(3));
        assert!(stats.cpu_time > Duration::ZERO, "{stats:?}");
        assert!(stats.peak_rss_bytes > 0, "{stats:?}");
    }

    #[test]
    fn tied_children_run_and_report_failures() {
        let mut ok = Command::new("true");
        ok.stdout(Stdio::null());
        assert!(spawn_tied(ok).unwrap().wait().unwrap().success());
        let err = run_tool(Command::new("false"), "`false`").unwrap_err();
        assert!(err.to_string().contains("`false` failed"), "{err}");
    }
}
