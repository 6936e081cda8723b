//! Translates a MirrorMaker 2 properties file (`connect-mirror-maker.properties`)
//! into a Ferry topology (TOML): clusters, their client and security
//! settings, flows and their topic and group filters, naming, checkpoints,
//! heartbeats and group offset sync.
//!
//! What has no Ferry equivalent (custom classes, `tasks.max`, Kafka Connect
//! worker settings, JKS stores, unknown keys) becomes a [`Warning`] naming
//! the property and its line. Secrets never reach the output or a message:
//! they become `${env:…}` references, listed at the top of the output.
//!
//! # Layout
//! - `properties`: Java `.properties` syntax.
//! - `jaas`: `sasl.jaas.config` values.
//! - `client`: Java client property → librdkafka property.
//! - `security`: one cluster's effective client settings → `[clusters.X.client]`
//!   and `aws_msk_iam`.
//! - `translate`: the whole file → clusters and flows, and every warning.
//! - `emit`: clusters and flows → TOML text with a comment per value.

#![warn(missing_docs)]

mod client;
mod emit;
mod jaas;
mod properties;
mod security;
mod translate;

use std::fmt;
use std::path::{Path, PathBuf};

/// A translated file.
#[derive(Debug, Clone)]
pub struct Translation {
    /// The Ferry topology, TOML with comments.
    pub toml: String,
    /// What was not translated, in line order.
    pub warnings: Vec<Warning>,
    /// The environment variables the topology reads (secrets, and values
    /// the file did not give), each with what to put in it.
    pub env_vars: Vec<EnvVar>,
}

/// An environment variable the translated topology reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvVar {
    /// The variable's name.
    pub name: String,
    /// What it must hold, and where MirrorMaker 2 had it.
    pub holds: String,
}

/// Something in the MirrorMaker 2 file that was not translated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// The file, as named to the translator.
    pub origin: String,
    /// The 1-based line, when the property is in the file.
    pub line: Option<usize>,
    /// The property as written.
    pub property: String,
    /// Why it was not (or only partly) translated. Never holds a value of
    /// the file.
    pub message: String,
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_located(f, &self.origin, self.line, &self.property, &self.message)
    }
}

/// A problem that stops the translation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The file, as named to the translator.
    pub origin: String,
    /// The 1-based line, when the problem is on one.
    pub line: Option<usize>,
    /// The property as written.
    pub property: String,
    /// What is wrong. Never holds a secret of the file.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_located(f, &self.origin, self.line, &self.property, &self.message)
    }
}

fn write_located(
    f: &mut fmt::Formatter<'_>,
    origin: &str,
    line: Option<usize>,
    property: &str,
    message: &str,
) -> fmt::Result {
    match line {
        Some(line) => write!(f, "{origin}:{line}: {property}: {message}"),
        None => write!(f, "{origin}: {property}: {message}"),
    }
}

/// Why a file could not be translated.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why reading it failed.
        #[source]
        source: std::io::Error,
    },
    /// The file is not a usable MirrorMaker 2 configuration: every problem
    /// found.
    #[error("{}", problems.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
    Invalid {
        /// Each problem, in line order.
        problems: Vec<Problem>,
    },
}

/// Reads and translates a MirrorMaker 2 properties file. Messages name it as
/// given; comments in the output name only its file name.
pub fn import_file(path: &Path) -> Result<Translation, ImportError> {
    let bytes = std::fs::read(path).map_err(|source| ImportError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    // Kafka reads properties files as ISO-8859-1; UTF-8 is what editors
    // write today. Every ISO-8859-1 byte is the code point of its value.
    let text = String::from_utf8(bytes)
        .unwrap_or_else(|e| e.into_bytes().iter().map(|&b| char::from(b)).collect());
    translate(&text, &path.display().to_string())
}

/// Translates MirrorMaker 2 properties text; `origin` names it in messages
/// and (its last path component) in the output's comments.
pub fn translate(text: &str, origin: &str) -> Result<Translation, ImportError> {
    translate::run(text, origin)
}
