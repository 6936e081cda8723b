use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::home::jdk_tool;
use crate::error::{IoContext, Result};
use crate::proc::run_tool;

/// Certificates made for one cluster at test time: a throw-away CA, and a
/// broker key signed by it whose certificate names 127.0.0.1 and localhost,
/// so clients verify the broker exactly as they would in production.
#[derive(Debug)]
pub(crate) struct TlsMaterial {
    /// PKCS12 keystore with the broker key and its CA-signed chain.
    pub keystore: PathBuf,
    /// PKCS12 truststore with the CA certificate.
    pub truststore: PathBuf,
    /// The CA certificate as PEM, for librdkafka's `ssl.ca.location`.
    pub ca_pem: PathBuf,
    /// Password of both stores and of the key (PKCS12 uses one for all).
    pub password: String,
}

/// Generates [`TlsMaterial`] in `dir` with the JDK's keytool.
pub(crate) fn generate(dir: &Path, password: String) -> Result<TlsMaterial> {
    fs::create_dir_all(dir).context(|| format!("cannot create {}", dir.display()))?;
    // keytool runs in `dir`, so every file below is a plain relative name.
    let keytool = |what: &str, args: &str| -> Result<()> {
        let mut cmd = Command::new(jdk_tool("keytool"));
        cmd.current_dir(dir)
            // keytool is a JVM; these options make each of its eight starts
            // faster and leave no hsperfdata files behind.
            .args([
                "-J-XX:TieredStopAtLevel=1",
                "-J-XX:+UseSerialGC",
                "-J-XX:-UsePerfData",
            ])
            .args(["-storepass", &password])
            .args(args.split_whitespace());
        run_tool(cmd, &format!("keytool (to {what})"))
    };
    // EC keys: generating 2048-bit RSA keys made each TLS cluster start about
    // two seconds slower, and every client here speaks ECDSA.
    let new_key = "-genkeypair -keyalg EC -groupname secp256r1 -validity 7 -storetype PKCS12";
    let san = "-ext SAN=IP:127.0.0.1,DNS:localhost";

    keytool(
        "generate the CA key",
        &format!("{new_key} -alias ca -dname CN=ferry-test-ca -ext bc:c -keystore ca.p12"),
    )?;
    keytool(
        "export the CA certificate",
        "-exportcert -rfc -alias ca -keystore ca.p12 -file ca.pem",
    )?;
    keytool(
        "generate the broker key",
        &format!("{new_key} -alias broker -dname CN=localhost {san} -keystore broker.p12"),
    )?;
    keytool(
        "write the broker certificate request",
        "-certreq -alias broker -keystore broker.p12 -file broker.csr",
    )?;
    keytool(
        "sign the broker certificate",
        &format!(
            "-gencert -alias ca -keystore ca.p12 -rfc -validity 7 {san} \
             -infile broker.csr -outfile broker.pem"
        ),
    )?;
    // The CA goes in first so that keytool can chain the signed reply to it.
    keytool(
        "import the CA into the broker keystore",
        "-importcert -noprompt -alias ca -keystore broker.p12 -file ca.pem",
    )?;
    keytool(
        "import the signed broker certificate",
        "-importcert -alias broker -keystore broker.p12 -file broker.pem",
    )?;
    keytool(
        "write the truststore",
        "-importcert -noprompt -alias ca -storetype PKCS12 -keystore truststore.p12 -file ca.pem",
    )?;
    Ok(TlsMaterial {
        keystore: dir.join("broker.p12"),
        truststore: dir.join("truststore.p12"),
        ca_pem: dir.join("ca.pem"),
        password,
    })
}
