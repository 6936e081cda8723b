//! Ferry topology files for the test clusters: clusters `src` and `dst`,
//! flows given as TOML, an HTTP listener on a free port.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use crate::KafkaCluster;

/// Writes a topology with clusters `src` and `dst` and the given flows
/// (TOML `[[flows]]` tables) to `dir/topology.toml`.
pub fn write_topology(
    dir: &Path,
    source: &KafkaCluster,
    target: &KafkaCluster,
    flows: &str,
) -> PathBuf {
    let path = dir.join("topology.toml");
    let text = format!(
        r#"
[clusters.src]
bootstrap_servers = "{}"
[clusters.dst]
bootstrap_servers = "{}"

{flows}

[http]
listen = "127.0.0.1:0"   # tests run daemons side by side
status_public = true     # lock_http() replaces this line with a control token

[log]
level = "info"

{}
"#,
        source.bootstrap_servers(),
        target.bootstrap_servers(),
        own_group(dir)
    );
    std::fs::write(&path, text).expect("write topology");
    path
}

/// An `[engine]` table with a group prefix of its own. Suites run daemons
/// of flows with the same cluster names side by side on shared brokers; in
/// one group they would share the flows' slots (each copying only some
/// partitions of its own topics), so the topologies of each test directory
/// (a fresh temporary one per test) get their own group. Processes meant to
/// share a flow run topologies from the same directory.
pub fn own_group(dir: &Path) -> String {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    dir.hash(&mut hasher);
    format!(
        "[engine]\ngroup_prefix = \"ferry-test-{:016x}\"\n",
        hasher.finish()
    )
}

/// Appends [`own_group`] to a topology file written by hand.
pub fn give_own_group(topology: &Path) {
    let mut text = std::fs::read_to_string(topology).expect("read topology");
    text.push('\n');
    text.push_str(&own_group(topology.parent().unwrap_or(Path::new("."))));
    std::fs::write(topology, text).expect("write topology");
}

/// Gives a topology written by [`write_topology`] a control token, read from
/// the file `control-token` next to it, and makes `/status` need it too.
pub fn lock_http(topology: &Path, token: &str) {
    use std::os::unix::fs::PermissionsExt;
    let token_file = topology.with_file_name("control-token");
    std::fs::write(&token_file, format!("{token}\n")).expect("write the token file");
    // 0600 like a real secret file, so the load warns about nothing.
    std::fs::set_permissions(&token_file, std::fs::Permissions::from_mode(0o600))
        .expect("restrict the token file");
    let text = std::fs::read_to_string(topology).expect("read topology");
    assert!(text.contains("status_public = true"), "{text}");
    let text = text.replacen(
        "status_public = true",
        "control_token = \"${file:control-token}\"",
        1,
    );
    std::fs::write(topology, text).expect("write topology");
}

/// The topology at `topology` with `http.listen` set to the running
/// daemon's address, so commands find it (`ferry status`, `resume-topics`).
pub fn pointing_at(topology: &Path, addr: SocketAddr) -> PathBuf {
    let with_port = topology.with_file_name("with-port.toml");
    let text = std::fs::read_to_string(topology)
        .expect("read topology")
        .replace("127.0.0.1:0", &addr.to_string());
    std::fs::write(&with_port, text).expect("write topology");
    with_port
}

/// One `src -> dst` flow with a fast refresh, plus `extra` keys.
pub fn one_flow(extra: &str) -> String {
    format!("[[flows]]\nsource = \"src\"\ntarget = \"dst\"\nrefresh_interval = \"2s\"\n{extra}\n")
}

/// Renames clusters of a topology written by [`write_topology`] (their
/// tables and the flows naming them). Kafka refuses a topic whose name
/// differs from an existing one only in '.' versus '_' (they collide in
/// metric names), so a test with `topic_separator = "_"` gives its clusters
/// aliases of their own: its `<alias>_checkpoints_internal` would otherwise
/// block the `src.checkpoints.internal` of tests running beside it.
pub fn rename_clusters(topology: &Path, renames: &[(&str, &str)]) {
    let mut text = std::fs::read_to_string(topology).expect("read topology");
    for (old, new) in renames {
        for key in ["[clusters.", "source = \"", "target = \""] {
            let close = if key.starts_with('[') { "]" } else { "\"" };
            text = text.replace(&format!("{key}{old}{close}"), &format!("{key}{new}{close}"));
        }
    }
    std::fs::write(topology, text).expect("write topology");
}
