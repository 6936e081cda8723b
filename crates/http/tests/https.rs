//! HTTPS on the listener, checked with curl against the served certificate:
//! served and trusted through it, refused without it, replaced in place by
//! a reload, and bad files refused with the key named and nothing quoted.

mod util;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::thread::JoinHandle;

use ferry_http::{
    Access, HttpError, HttpServer, Metrics, MetricsOptions, Readiness, TlsError, TlsIdentity,
};
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

/// A server over HTTPS with `identity`, on a free loopback port.
fn serve_https(
    access: Access,
    identity: Arc<TlsIdentity>,
) -> (
    SocketAddr,
    CancellationToken,
    JoinHandle<Result<(), HttpError>>,
) {
    let cancel = CancellationToken::new();
    let server = HttpServer::bind(
        "127.0.0.1:0".parse().unwrap(),
        Arc::new(Metrics::new(MetricsOptions::default())),
        util::FakeEngine::new(),
        Readiness::new(),
    )
    .expect("bind")
    .with_access(access)
    .with_tls(identity);
    let addr = server.local_addr();
    (addr, cancel.clone(), server.serve(cancel).expect("serve"))
}

#[test]
fn https_serves_the_configured_certificate_and_a_reload_replaces_it_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let (first_cert, first_key, _) = self_signed(dir.path(), "first");
    let (live_cert, live_key) = (dir.path().join("tls.crt"), dir.path().join("tls.key"));
    std::fs::copy(&first_cert, &live_cert).unwrap();
    std::fs::copy(&first_key, &live_key).unwrap();
    let identity = TlsIdentity::load(&live_cert, &live_key).expect("load the certificate");

    let (addr, cancel, handle) = serve_https(Access::new(None, true), Arc::clone(&identity));
    let url = format!("https://{addr}/health/live");
    let plain = format!("http://{addr}/health/live");

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

/// The client the commands use: over HTTPS it trusts exactly the given
/// certificates, sends the token, and reads `/status` as a typed document.
#[test]
fn the_client_reads_status_over_https_with_the_token_and_trusting_only_the_given_certificate() {
    use ferry_http::client::{self, ClientError, Endpoint};

    let dir = tempfile::tempdir().unwrap();
    let (cert, key, _) = self_signed(dir.path(), "served");
    let (other_cert, _, _) = self_signed(dir.path(), "other");
    let (addr, cancel, handle) = serve_https(
        Access::new(Some("s3cret"), false),
        TlsIdentity::load(&cert, &key).expect("load the certificate"),
    );

    let trusted = Endpoint::https(addr, &std::fs::read(&cert).unwrap()).expect("a certificate");
    let doc = client::status(&trusted, Some("s3cret")).expect("/status over HTTPS");
    assert_eq!(doc.flow("primary->backup").map(|f| f.running), Some(true));
    assert!(doc.ready);

    match client::status(&trusted, Some("wrong")) {
        Err(ClientError::Refused { code: 401, .. }) => {}
        other => panic!("a wrong token is refused with 401: {other:?}"),
    }
    let untrusted =
        Endpoint::https(addr, &std::fs::read(&other_cert).unwrap()).expect("a certificate");
    match client::status(&untrusted, Some("s3cret")) {
        Err(ClientError::NoAnswer(_)) => {}
        other => panic!("an untrusted certificate gets no answer: {other:?}"),
    }
    assert!(Endpoint::https(addr, b"no certificate here").is_none());

    cancel.cancel();
    handle.join().unwrap().expect("the server stops cleanly");
}
