//! HTTPS on the listener, checked with curl against the served certificate:
//! served and trusted through it, refused without it, replaced in place by
//! a reload, and bad files refused with the key named and nothing quoted.

mod util;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use ferry_http::{Access, HttpServer, Metrics, MetricsOptions, Readiness, TlsError, TlsIdentity};
use tokio_util::sync::CancellationToken;

/// A self-signed certificate for 127.0.0.1 and localhost: (certificate
/// file, key file, the key's PEM text).
fn self_signed(dir: &Path, name: &str) -> (PathBuf, PathBuf, String) {
    let made = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into(), "localhost".into()])
        .expect("generate a certificate");
    let (cert, key) = (
        dir.join(format!("{name}.crt")),
        dir.join(format!("{name}.key")),
    );
    let key_pem = made.key_pair.serialize_pem();
    std::fs::write(&cert, made.cert.pem()).unwrap();
    std::fs::write(&key, &key_pem).unwrap();
    (cert, key, key_pem)
}

/// `curl -sS` with `args`: its exit code and stdout.
fn curl(args: &[&str]) -> (i32, String) {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "10"])
        .args(args)
        .output()
        .expect("curl runs (Debian package curl)");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn https_serves_the_configured_certificate_and_a_reload_replaces_it_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let (first_cert, first_key, _) = self_signed(dir.path(), "first");
    let (live_cert, live_key) = (dir.path().join("tls.crt"), dir.path().join("tls.key"));
    std::fs::copy(&first_cert, &live_cert).unwrap();
    std::fs::copy(&first_key, &live_key).unwrap();
    let identity = TlsIdentity::load(&live_cert, &live_key).expect("load the certificate");

    let cancel = CancellationToken::new();
    let server = HttpServer::bind(
        "127.0.0.1:0".parse().unwrap(),
        Arc::new(Metrics::new(MetricsOptions::default())),
        util::FakeEngine::new(),
        Readiness::new(),
    )
    .expect("bind")
    .with_access(Access::new(None, true))
    .with_tls(Arc::clone(&identity));
    let url = format!("https://{}/health/live", server.local_addr());
    let plain = format!("http://{}/health/live", server.local_addr());
    let handle = server.serve(cancel.clone()).expect("serve");

    let trust = |cert: &Path| curl(&["--cacert", cert.to_str().unwrap(), &url]);
    assert_eq!(trust(&first_cert), (0, "ok".to_string()));
    // Not trusted without its certificate (curl: 60, peer certificate
    // cannot be authenticated), and no plain HTTP on the port.
    assert_eq!(curl(&[&url]).0, 60);
    assert_ne!(curl(&[&plain]).1, "ok");

    // A renewed certificate written over the same files, then a reload.
    let (second_cert, second_key, _) = self_signed(dir.path(), "second");
    std::fs::copy(&second_cert, &live_cert).unwrap();
    std::fs::copy(&second_key, &live_key).unwrap();
    identity.install(TlsIdentity::read(&live_cert, &live_key).expect("read the new pair"));
    assert_eq!(trust(&second_cert), (0, "ok".to_string()));
    assert_eq!(
        trust(&first_cert).0,
        60,
        "the old certificate is no longer served"
    );

    cancel.cancel();
    handle.join().unwrap().expect("the server stops cleanly");
}

#[test]
fn unusable_certificate_files_are_refused_naming_the_key_and_never_quoting_it() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key, key_pem) = self_signed(dir.path(), "a");
    let (other_cert, _, _) = self_signed(dir.path(), "b");
    // A key line long enough that quoting it would show.
    let key_line = key_pem.lines().nth(1).expect("a base64 line").to_string();

    let mismatch = TlsIdentity::read(&other_cert, &key).unwrap_err();
    assert!(matches!(mismatch, TlsError::Mismatch { .. }), "{mismatch}");
    assert!(
        mismatch.to_string().starts_with("http.tls_key: the key in"),
        "{mismatch}"
    );

    let garbage = dir.path().join("garbage.crt");
    std::fs::write(&garbage, "not a certificate").unwrap();
    let e = TlsIdentity::read(&garbage, &key).unwrap_err();
    assert!(e.to_string().starts_with("http.tls_cert:"), "{e}");

    let not_a_key = dir.path().join("cert-as-key.pem");
    std::fs::copy(&cert, &not_a_key).unwrap();
    let e = TlsIdentity::read(&cert, &not_a_key).unwrap_err();
    assert!(e.to_string().starts_with("http.tls_key:"), "{e}");

    let e = TlsIdentity::read(&cert, &dir.path().join("missing.key")).unwrap_err();
    assert!(
        e.to_string().starts_with("http.tls_key: cannot read"),
        "{e}"
    );

    for e in [mismatch, e] {
        assert!(!e.to_string().contains(&key_line), "{e}");
    }
}
