//! `ferry import-mm2`: a MirrorMaker 2 properties file → a Ferry topology.

use std::path::Path;

use crate::exit;

pub fn import_mm2(file: &Path, output: Option<&Path>) -> u8 {
    let translation = match ferry_mm2_import::import_file(file) {
        Ok(t) => t,
        Err(e) => {
            for line in e.to_string().lines() {
                eprintln!("error: {line}");
            }
            return exit::BAD_INPUT;
        }
    };
    for warning in &translation.warnings {
        eprintln!("warning: {warning}");
    }
    match output {
        None => print!("{}", translation.toml),
        Some(path) => {
            if let Err(e) = std::fs::write(path, &translation.toml) {
                eprintln!("error: cannot write {}: {e}", path.display());
                return exit::FAILURE;
            }
            eprintln!("wrote {}", path.display());
        }
    }
    for secret in &translation.env_vars {
        eprintln!("note: set {} to {}", secret.name, secret.holds);
    }
    exit::OK
}
