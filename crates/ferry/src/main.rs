//! `ferry`: the process shell. Parses the command line and hands off to a
//! command; all logic lives in the library crates.

mod cli;
mod commands;
mod logging;
mod meter;
mod shutdown;

use std::process::ExitCode;

use clap::Parser;

/// jemalloc for Rust and, through its unprefixed `malloc`/`free`, for the
/// statically linked librdkafka too. librdkafka allocates and frees several
/// buffers per record (the message, its header list, fetch and produce
/// buffers) from its broker threads and ours at once; glibc's arenas made
/// those threads wait on each other (figures in crates/bench/README.md).
#[cfg(target_os = "linux")]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// Exit codes are part of Ferry's interface: scripts depend on them.
pub mod exit {
    pub const OK: u8 = 0;
    /// A runtime failure (or, for verify-style commands, a mismatch).
    pub const FAILURE: u8 = 1;
    /// Bad input: configuration or arguments.
    pub const BAD_INPUT: u8 = 2;
    /// `verify`: not everything could be compared (records not yet on the
    /// target, a range that could not be read); never a match.
    pub const INCOMPLETE: u8 = 3;
}

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    ExitCode::from(commands::dispatch(cli))
}
