//! Running the real `ferry` executable: one-shot commands, and `ferry run`
//! daemons whose log is printed when the test that started them fails.
//!
//! The executable is the one a suite was built against, which only the suite
//! knows (`env!("CARGO_BIN_EXE_ferry")`), so everything starts from a
//! [`Ferry`] the suite names once.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The `ferry` executable under test.
#[derive(Clone, Copy, Debug)]
pub struct Ferry {
    path: &'static str,
}

impl Ferry {
    /// The executable at `path`, typically `env!("CARGO_BIN_EXE_ferry")`.
    pub const fn at(path: &'static str) -> Ferry {
        Ferry { path }
    }

    /// `ferry <args>` with stdout and stderr captured.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(self.path);
        cmd.args(args).stdout(Stdio::piped()).stderr(Stdio::piped());
        cmd
    }

    /// Runs `ferry <args>` to completion: (exit code, stdout, stderr).
    pub fn output(&self, args: &[&str]) -> (Option<i32>, String, String) {
        let out = self.command(args).output().expect("ferry runs");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// Runs `ferry run --until caught-up`, failing the test with the
    /// daemon's log unless it exits 0. Returns the log.
    pub fn run_until_caught_up(&self, topology: &Path) -> String {
        let (code, _, log) = self.output(&[
            "run",
            "-c",
            topology.to_str().expect("UTF-8 path"),
            "--until",
            "caught-up",
        ]);
        assert_eq!(code, Some(0), "ferry run --until caught-up failed:\n{log}");
        log
    }

    /// Starts `ferry run` on `topology`, tied to this test process; its log
    /// goes next to the topology file.
    pub fn start(&self, topology: &Path) -> Daemon {
        self.start_with_env(topology, &[])
    }

    /// [`Ferry::start`] with extra environment (e.g. `RUST_LOG`).
    pub fn start_with_env(&self, topology: &Path, env: &[(&str, &str)]) -> Daemon {
        // Several daemons of one test may share a topology file.
        let log = topology.with_extension(format!("{}.log", std::process::id() ^ nanos()));
        let file = std::fs::File::create(&log).expect("create log file");
        let mut cmd = Command::new(self.path);
        cmd.args(["run", "-c", topology.to_str().expect("UTF-8 path")])
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(file);
        let child = crate::proc::spawn_tied(cmd).expect("start ferry");
        Daemon {
            child: Some(child),
            log,
        }
    }
}

fn nanos() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0)
}

/// A running `ferry run` daemon whose log goes to a file; if the test
/// fails while it runs, the log is printed so the failure explains itself.
pub struct Daemon {
    child: Option<Child>,
    log: PathBuf,
}

impl Daemon {
    /// The daemon's process.
    pub fn child(&self) -> &Child {
        self.child.as_ref().expect("daemon running")
    }

    /// The address the daemon's HTTP server bound (from its start-up line).
    pub fn http_addr(&self) -> std::net::SocketAddr {
        wait_for("the daemon's HTTP address", Duration::from_secs(30), || {
            self.log().lines().find_map(|l| {
                let rest = &l[l.find(" http=")? + 6..];
                rest.split_whitespace().next()?.parse().ok()
            })
        })
    }

    /// The daemon's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking() {
            eprintln!("--- ferry log ({}) ---\n{}", self.log.display(), self.log());
        }
    }
}

/// Sends `sig` and waits for the daemon to exit: its exit code and log.
pub fn stop_daemon_with(daemon: Daemon, sig: i32) -> (Option<i32>, String) {
    signal(daemon.child(), sig);
    stop_daemon_after_signal(daemon)
}

/// Waits for a daemon that was already signalled: exit code and log.
pub fn stop_daemon_after_signal(mut daemon: Daemon) -> (Option<i32>, String) {
    let mut child = daemon.child.take().expect("daemon running");
    let status = child.wait().expect("ferry exits");
    (status.code(), daemon.log())
}

/// SIGTERM, then the exit code and the daemon's log.
pub fn stop_daemon(daemon: Daemon) -> (Option<i32>, String) {
    stop_daemon_with(daemon, libc::SIGTERM)
}

/// Sends `sig` to a child process, failing the test if it is not delivered.
pub fn signal(child: &Child, sig: i32) {
    if let Err(e) = crate::proc::signal(child, sig) {
        panic!("signal {sig} not delivered: {e}");
    }
}

/// Polls `probe` every 200 ms until it returns `Some`, failing the test
/// after `timeout`.
pub fn wait_for<T>(what: &str, timeout: Duration, mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = probe() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}
