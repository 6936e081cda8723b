//! Starts single-node Kafka clusters once for a whole test run, so that every
//! test binary shares them instead of starting its own.
//!
//! ```text
//! ferry-testkit-brokers [NAME...]        (default NAMEs: source target)
//! ```
//!
//! For each NAME it prints `FERRY_TEST_KAFKA_<NAME>=<bootstrap servers>` on
//! stdout once every cluster is ready, then a final `# ready` line; the
//! output can be sourced by a shell (`set -a; . file; set +a`). The test
//! helpers `shared()` / `shared_pair()` use `FERRY_TEST_KAFKA_SOURCE` and
//! `FERRY_TEST_KAFKA_TARGET` instead of starting clusters of their own.
//!
//! It runs until SIGTERM or SIGINT, or until its stdin reaches end-of-file
//! when stdin is a pipe (so a parent holding the pipe's other end stops it by
//! exiting). A background job in a script gets /dev/null as stdin, which is
//! not a pipe, so that does not stop it. The brokers die with this process
//! even when it is SIGKILLed.

use std::io::{Read, Write};
use std::os::unix::fs::FileTypeExt;
use std::process::ExitCode;

use ferry_testkit::{KafkaCluster, KafkaOptions};
use tokio::signal::unix::{signal, SignalKind};

fn main() -> ExitCode {
    let mut names: Vec<String> = std::env::args().skip(1).collect();
    if names.iter().any(|a| a.starts_with('-')) {
        eprintln!("usage: ferry-testkit-brokers [NAME...]   (default: source target)");
        return ExitCode::from(2);
    }
    if names.is_empty() {
        names = vec!["source".into(), "target".into()];
    }

    // JVM starts are mostly waiting, so starting them together is faster
    // even on two cores.
    let started: Vec<_> = std::thread::scope(|scope| {
        let starts: Vec<_> = names
            .iter()
            .map(|_| scope.spawn(|| KafkaOptions::default().start()))
            .collect();
        starts.into_iter().map(|s| s.join()).collect()
    });
    let mut clusters: Vec<KafkaCluster> = Vec::new();
    for (name, result) in names.iter().zip(started) {
        match result {
            Ok(Ok(cluster)) => clusters.push(cluster),
            Ok(Err(e)) => {
                eprintln!("ferry-testkit-brokers: cannot start cluster {name}: {e}");
                return ExitCode::FAILURE;
            }
            Err(_) => {
                eprintln!("ferry-testkit-brokers: starting cluster {name} panicked");
                return ExitCode::FAILURE;
            }
        }
    }

    let mut out = std::io::stdout().lock();
    for (name, cluster) in names.iter().zip(&clusters) {
        let _ = writeln!(out, "{}={}", env_name(name), cluster.bootstrap_servers());
    }
    let _ = writeln!(out, "# ready");
    let _ = out.flush();
    drop(out);

    let waited = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())
        .and_then(|runtime| runtime.block_on(wait_for_stop()));
    // Dropping the clusters kills the brokers and removes their directories.
    drop(clusters);
    match waited {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ferry-testkit-brokers: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `FERRY_TEST_KAFKA_` plus the name in upper case, other characters as `_`.
fn env_name(name: &str) -> String {
    let suffix: String = name
        .chars()
        .map(|c| match c.is_ascii_alphanumeric() {
            true => c.to_ascii_uppercase(),
            false => '_',
        })
        .collect();
    format!("FERRY_TEST_KAFKA_{suffix}")
}

async fn wait_for_stop() -> Result<(), String> {
    let mut terminate = signal(SignalKind::terminate()).map_err(|e| e.to_string())?;
    let mut interrupt = signal(SignalKind::interrupt()).map_err(|e| e.to_string())?;
    let stdin_closed = async {
        match watch_stdin() {
            Some(eof) => drop(eof.await),
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = terminate.recv() => {}
        _ = interrupt.recv() => {}
        _ = stdin_closed => {}
    }
    Ok(())
}

/// When stdin is a pipe (or socket), a receiver that completes at its EOF.
fn watch_stdin() -> Option<tokio::sync::oneshot::Receiver<()>> {
    let file_type = std::fs::metadata("/dev/stdin").ok()?.file_type();
    if !(file_type.is_fifo() || file_type.is_socket()) {
        return None;
    }
    let (eof_tx, eof_rx) = tokio::sync::oneshot::channel();
    // A blocking read on a thread of its own; the process exits without
    // waiting for it.
    std::thread::spawn(move || {
        let mut sink = [0u8; 4096];
        let mut stdin = std::io::stdin().lock();
        while matches!(stdin.read(&mut sink), Ok(n) if n > 0) {}
        let _ = eof_tx.send(());
    });
    Some(eof_rx)
}
