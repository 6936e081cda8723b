//! The naive peer: `bench/naive_peer.py` (embedded in the harness and written
//! into the run directory) on `confluent-kafka` from PyPI, in a venv under
//! `$HOME/.cache/ferry/bench-venv` that the harness creates when missing.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use super::{Job, Launched, Topics};
use crate::bail;
use crate::error::{Context, Result};
use crate::measure::Tracked;
use crate::Env;

/// The script, so that the binary works wherever it is run from.
pub const SCRIPT: &str = include_str!("../../../../bench/naive_peer.py");

/// The confluent-kafka release the venv gets.
pub const CONFLUENT_KAFKA: &str = "confluent-kafka==2.16.1";

/// The venv's directory.
pub fn venv_dir() -> Result<PathBuf> {
    let home = std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .ok_or_else(|| {
            crate::error::BenchError::new("HOME is not set: cannot place the Python venv")
        })?;
    Ok(Path::new(&home).join(".cache/ferry/bench-venv"))
}

/// Returns the venv's python, creating the venv and installing
/// confluent-kafka first when it cannot import it.
pub fn ensure_venv() -> Result<PathBuf> {
    let dir = venv_dir()?;
    let python = dir.join("bin/python");
    if imports_confluent_kafka(&python) {
        return Ok(python);
    }
    eprintln!(
        "ferry-bench: creating the Python venv {} with {CONFLUENT_KAFKA}",
        dir.display()
    );
    run_tool(
        Command::new("python3").arg("-m").arg("venv").arg(&dir),
        "python3 -m venv (is python3 with the venv module installed?)",
    )?;
    run_tool(
        Command::new(dir.join("bin/pip")).args([
            "install",
            "--quiet",
            "--disable-pip-version-check",
            CONFLUENT_KAFKA,
        ]),
        &format!("pip install {CONFLUENT_KAFKA} into {}", dir.display()),
    )?;
    if !imports_confluent_kafka(&python) {
        bail!(
            "{} still cannot import confluent_kafka after pip install",
            python.display()
        );
    }
    Ok(python)
}

fn imports_confluent_kafka(python: &Path) -> bool {
    python.is_file()
        && Command::new(python)
            .args(["-c", "import confluent_kafka"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
}

/// Runs a setup tool (tied to the harness, at most 10 minutes), failing with
/// its output.
fn run_tool(cmd: &mut Command, what: &str) -> Result<()> {
    let log = std::env::temp_dir().join(format!("ferry-bench-setup-{}.log", std::process::id()));
    let mut cmd = std::mem::replace(cmd, Command::new("true"));
    cmd.stdin(Stdio::null());
    let mut run = Tracked::spawn("setup", cmd, &log)?;
    let done = run.wait_exit(Duration::from_secs(600))?;
    let output = run.log_tail(30);
    let _ = std::fs::remove_file(&log);
    match done {
        Some((status, ..)) if status.success() => Ok(()),
        Some((status, ..)) => bail!("{what} failed ({status}):\n{output}"),
        None => {
            run.stop()?;
            bail!("{what} did not finish within 10 minutes:\n{output}")
        }
    }
}

pub fn launch(env: &Env, job: &Job, log: &Path) -> Result<Launched> {
    let python = env.python()?;
    let script = env.run_dir.join("naive_peer.py");
    if !script.is_file() {
        std::fs::write(&script, SCRIPT).context(|| format!("cannot write {}", script.display()))?;
    }
    let mut cmd = Command::new(python);
    // Unbuffered, so the log shows progress and errors as they happen.
    cmd.arg("-u")
        .arg(&script)
        .args(["--source", env.source.bootstrap_servers()])
        .args(["--target", env.target.bootstrap_servers()])
        .args(["--prefix", &format!("{}.", job.alias)])
        .args(["--group", &format!("naive-peer-{}", job.alias)]);
    match &job.topics {
        Topics::Names(names) => cmd.args(["--topics", &names.join(",")]),
        Topics::Pattern(p) => cmd.args(["--pattern", p]),
    };
    if !job.catch_up {
        cmd.arg("--follow");
    }
    Ok(Launched {
        process: Tracked::spawn("python", cmd, log)?,
        exits_by_itself: job.catch_up,
        metrics_port: None,
        version: Some(format!("naive_peer.py on {CONFLUENT_KAFKA}")),
    })
}
