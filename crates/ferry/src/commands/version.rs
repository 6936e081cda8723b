//! `ferry version [--verbose]`: Ferry's version, and with `--verbose` the
//! librdkafka it runs on and that library's built-in features, so an
//! operator can tell whether a security mechanism (OAUTHBEARER over OIDC
//! needs `curl`, Kerberos needs `gssapi`) is available before configuring it.

use rdkafka::config::ClientConfig;

use crate::exit;

pub fn version(verbose: bool) -> u8 {
    println!("ferry {}", env!("CARGO_PKG_VERSION"));
    if !verbose {
        return exit::OK;
    }
    let (hex, text) = rdkafka::util::get_rdkafka_version();
    println!("librdkafka {text} (0x{hex:08x})");
    // The default configuration reports what the library was built with.
    match ClientConfig::new()
        .create_native_config()
        .and_then(|c| c.get("builtin.features"))
    {
        Ok(features) => println!("builtin.features: {features}"),
        Err(e) => {
            eprintln!("error: cannot read librdkafka's builtin.features: {e}");
            return exit::FAILURE;
        }
    }
    exit::OK
}
