//! `ferry`: the process shell. Parses the command line and hands off to a
//! command; all logic lives in the library crates.

mod cli;
mod commands;
mod logging;
mod progress;
mod shutdown;

use std::process::ExitCode;

use clap::Parser;

/// Exit codes are part of Ferry's interface: scripts depend on them.
pub mod exit {
    pub const OK: u8 = 0;
    /// A runtime failure (or, for verify-style commands, a mismatch).
    pub const FAILURE: u8 = 1;
    /// Bad input: configuration or arguments.
    pub const BAD_INPUT: u8 = 2;
}

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    ExitCode::from(commands::dispatch(cli))
}
