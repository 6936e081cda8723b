use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::error::{HarnessError, Result};

/// The Apache Kafka version that `tests/brokers/pom.xml` pins (a unit test
/// keeps the two in step). It names the default install directory.
pub const KAFKA_VERSION: &str = "4.3.1";

/// Environment variable naming the Kafka install directory.
pub const KAFKA_HOME_ENV: &str = "FERRY_KAFKA_HOME";

/// An installed set of Kafka jars, as `tests/brokers/install.sh` lays it out:
/// `libs/*.jar`, `log4j2.properties` and the `.installed` marker.
#[derive(Clone, Debug)]
pub struct KafkaHome {
    root: PathBuf,
}

impl KafkaHome {
    /// Finds the install named by `FERRY_KAFKA_HOME`, or
    /// `$HOME/.cache/ferry/kafka-<version>`, and checks that it is complete.
    pub fn locate() -> Result<KafkaHome> {
        let root = match std::env::var_os(KAFKA_HOME_ENV) {
            Some(dir) if !dir.is_empty() => PathBuf::from(dir),
            _ => {
                let home = std::env::var_os("HOME").ok_or_else(|| {
                    HarnessError::Usage(format!("neither {KAFKA_HOME_ENV} nor HOME is set"))
                })?;
                Path::new(&home)
                    .join(".cache/ferry")
                    .join(format!("kafka-{KAFKA_VERSION}"))
            }
        };
        Self::at(root)
    }

    /// Uses the install at `root`, checking that it is complete.
    pub fn at(root: impl Into<PathBuf>) -> Result<KafkaHome> {
        let home = KafkaHome { root: root.into() };
        // install.sh writes the marker last, after the jars are in place.
        let required = [
            (home.root.join(".installed"), "no .installed marker"),
            (home.log4j_config(), "no log4j2.properties"),
            (
                home.libs().join(format!("kafka_2.13-{KAFKA_VERSION}.jar")),
                "no kafka_2.13 jar of the pinned version in libs/",
            ),
        ];
        for (path, detail) in required {
            if !path.is_file() {
                return Err(HarnessError::KafkaNotInstalled {
                    home: home.root,
                    detail: detail.to_string(),
                });
            }
        }
        Ok(home)
    }

    /// The install directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The directory holding every runtime jar.
    pub fn libs(&self) -> PathBuf {
        self.root.join("libs")
    }

    /// The log4j2 configuration that logs WARN and above to stdout.
    pub fn log4j_config(&self) -> PathBuf {
        self.root.join("log4j2.properties")
    }

    /// A `java` command with the Kafka classpath and logging configured, ready
    /// for JVM options and then `main_class` plus its arguments: for example
    /// `org.apache.kafka.connect.mirror.MirrorMaker` for MirrorMaker 2.
    pub fn java(&self, jvm_options: &[&str], main_class: &str) -> Command {
        let mut cmd = Command::new(jdk_tool("java"));
        let mut log4j = OsString::from("-Dlog4j2.configurationFile=");
        log4j.push(self.log4j_config());
        let mut classpath = self.libs().into_os_string();
        // The JVM expands `dir/*` to every jar in dir itself; no shell needed.
        classpath.push("/*");
        cmd.args(jvm_options)
            // Without hsperfdata files a SIGKILLed JVM leaves nothing in /tmp.
            .arg("-XX:-UsePerfData")
            .arg(log4j)
            .arg("-cp")
            .arg(classpath)
            .arg(main_class);
        cmd
    }
}

/// A JDK binary: from `$JAVA_HOME/bin` when set, otherwise from `PATH`.
pub(crate) fn jdk_tool(name: &str) -> PathBuf {
    match std::env::var_os("JAVA_HOME") {
        Some(java_home) if !java_home.is_empty() => Path::new(&java_home).join("bin").join(name),
        _ => PathBuf::from(name),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_matches_the_pom() {
        let pom = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/brokers/pom.xml");
        let pom = std::fs::read_to_string(pom).unwrap();
        let pinned = format!("<kafka.version>{KAFKA_VERSION}</kafka.version>");
        assert!(pom.contains(&pinned), "pom.xml does not pin {pinned}");
    }

    #[test]
    fn incomplete_install_names_the_install_script() {
        let dir = tempfile::tempdir().unwrap();
        let err = KafkaHome::at(dir.path()).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("bash tests/brokers/install.sh"), "{msg}");
        assert!(msg.contains(&dir.path().display().to_string()), "{msg}");
    }
}
