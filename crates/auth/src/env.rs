//! Where the credential chain reads its environment variables: the process
//! environment, or a fixed map (tests, and callers that must not depend on
//! the process state).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

#[derive(Clone, Debug, Default)]
pub enum Env {
    #[default]
    Process,
    Fixed(Arc<HashMap<String, String>>),
}

impl Env {
    pub fn fixed<K: Into<String>, V: Into<String>>(vars: impl IntoIterator<Item = (K, V)>) -> Self {
        Env::Fixed(Arc::new(
            vars.into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        ))
    }

    /// The variable's value; unset and empty are the same, as in AWS's SDKs.
    pub fn var(&self, name: &str) -> Option<String> {
        let value = match self {
            Env::Process => std::env::var(name).ok(),
            Env::Fixed(map) => map.get(name).cloned(),
        };
        value.filter(|v| !v.trim().is_empty())
    }

    pub fn home(&self) -> Option<PathBuf> {
        self.var("HOME").map(PathBuf::from)
    }
}
