//! Ferry's topology file: parsing, validation, secret interpolation and
//! diffing for reload.
//!
//! # Layout
//! - `raw`: serde structs mirroring the file as written.
//! - `validate`: raw → typed, collecting *every* problem with its key path.
//! - `model`: the typed `Topology` the rest of Ferry consumes.
//! - `naming`: rename rules and target-topic collisions.
//! - `secret`: `${env:…}` / `${file:…}` expansion and redacting property maps.
//! - `diff`: what a reload would add, remove, change or reject.
//!
//! Nothing starts from a file that has a single problem: `load` returns either
//! a complete `Topology` or all the `Issue`s at once.

#![warn(missing_docs)]

mod diff;
mod model;
mod naming;
mod raw;
mod secret;
mod validate;

use std::fmt;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

pub use diff::{diff, TopologyDiff};
pub use model::*;
pub use naming::{collisions, Collision, RenameRule};
pub use secret::{is_sensitive_name, ClientProperties, PropertyValue, Secret, REDACTED};
pub use validate::{
    DEFAULT_CHECKPOINT_INTERVAL, DEFAULT_LISTEN, DEFAULT_MAX_IN_FLIGHT_BYTES,
    DEFAULT_REFRESH_INTERVAL,
};

/// One problem in a topology file, named by its key path
/// (`flows[1].topics[0]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issue {
    /// Where in the file, e.g. `flows[1].topics[0]` or `clusters.primary`.
    pub path: String,
    /// What is wrong there, and what would be right.
    pub message: String,
}

impl fmt::Display for Issue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// Why a topology file could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read topology file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why reading it failed.
        #[source]
        source: std::io::Error,
    },
    /// The message deliberately leaves out the offending line: it may hold a
    /// literal secret.
    #[error("{origin}:{line}:{column}: TOML syntax error: {message}")]
    Syntax {
        /// The file (or other origin) named in messages.
        origin: String,
        /// 1-based line of the error.
        line: usize,
        /// 1-based column of the error.
        column: usize,
        /// The parser's description.
        message: String,
    },
    /// Valid TOML, but not a valid topology: every problem found.
    #[error("{origin}: {} problem{} found:\n{}", issues.len(), if issues.len() == 1 { "" } else { "s" },
        issues.iter().map(|i| format!("  - {i}")).collect::<Vec<_>>().join("\n"))]
    Invalid {
        /// The file (or other origin) named in messages.
        origin: String,
        /// All problems, in file order.
        issues: Vec<Issue>,
    },
}

impl ConfigError {
    /// The individual problems (empty for read and syntax errors).
    pub fn issues(&self) -> &[Issue] {
        match self {
            ConfigError::Invalid { issues, .. } => issues,
            _ => &[],
        }
    }
}

/// A validated topology plus the warnings found on the way.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The validated topology.
    pub topology: Topology,
    /// Things allowed but probably unintended (a literal secret, ...), one
    /// line each.
    pub warnings: Vec<String>,
}

/// Reads and validates a topology file. `${file:…}` paths are relative to the
/// file's folder.
pub fn load(path: &Path) -> Result<Loaded, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let base = path.parent().unwrap_or_else(|| Path::new("."));
    parse(&text, &path.display().to_string(), base)
}

/// Validates topology text. `origin` names it in messages.
pub fn parse(text: &str, origin: &str, base_dir: &Path) -> Result<Loaded, ConfigError> {
    let doc: toml::Table = text.parse().map_err(|e: toml::de::Error| {
        let (line, column) = e
            .span()
            .map(|span| line_col(text, span.start))
            .unwrap_or((0, 0));
        ConfigError::Syntax {
            origin: origin.to_string(),
            line,
            column,
            message: e.message().trim().to_string(),
        }
    })?;
    let digest = hex::encode(Sha256::digest(text.as_bytes()));
    let mut checker = validate::Checker::new(base_dir);
    match validate::check_document(&mut checker, doc, digest) {
        Some(topology) => Ok(Loaded {
            topology,
            warnings: checker.warnings,
        }),
        None => Err(ConfigError::Invalid {
            origin: origin.to_string(),
            issues: checker.issues,
        }),
    }
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

#[cfg(test)]
mod tests;
