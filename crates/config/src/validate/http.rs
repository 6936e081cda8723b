//! The `[http]` table's TLS files and control token.

use super::*;

/// `http.tls_cert`, `http.tls_key` and `http.tls_ca`: both of the first two
/// or neither, each a readable PEM file of the right kind. The key file's
/// contents are never quoted; the certificates are parsed in full when the
/// server loads them.
pub(super) fn check_http_tls(
    checker: &mut Checker<'_>,
    cert: &Option<String>,
    key: &Option<String>,
    ca: &Option<String>,
) -> Option<HttpTls> {
    let (cert, key) = match (cert, key) {
        (None, None) => {
            if ca.is_some() {
                checker.issue(
                    "http.tls_ca",
                    "only meaningful with http.tls_cert and http.tls_key",
                );
            }
            return None;
        }
        (Some(cert), Some(key)) => (cert, key),
        (Some(_), None) => {
            checker.issue(
                "http.tls_key",
                "missing: http.tls_cert needs its private key",
            );
            return None;
        }
        (None, Some(_)) => {
            checker.issue(
                "http.tls_cert",
                "missing: http.tls_key needs its certificate",
            );
            return None;
        }
    };
    let cert = check_pem_file(checker, "http.tls_cert", cert, &["CERTIFICATE"]);
    let key = check_pem_file(
        checker,
        "http.tls_key",
        key,
        &["PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY"],
    );
    let ca = ca
        .as_ref()
        .map(|ca| check_pem_file(checker, "http.tls_ca", ca, &["CERTIFICATE"]));
    Some(HttpTls {
        cert: cert?,
        key: key?,
        ca: match ca {
            Some(ca) => Some(ca?),
            None => None,
        },
    })
}

/// A file path (relative to the topology file) that must hold at least one
/// PEM block of one of `kinds`. Messages name the path and the key, never
/// the contents.
pub(super) fn check_pem_file(
    checker: &mut Checker<'_>,
    key: &str,
    raw: &str,
    kinds: &[&str],
) -> Option<PathBuf> {
    let path = checker.base_dir.join(raw);
    let text = match std::fs::read(&path) {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(e) => {
            checker.issue(key, format!("cannot read \"{}\": {e}", path.display()));
            return None;
        }
    };
    let found = kinds
        .iter()
        .any(|kind| text.contains(&format!("-----BEGIN {kind}-----")));
    if !found {
        checker.issue(
            key,
            format!(
                "\"{}\" holds no PEM {} block",
                path.display(),
                kinds.join(" or ")
            ),
        );
        return None;
    }
    Some(path)
}

/// `http.control_token`: usually `${file:…}` or `${env:…}`. It travels as
/// `Authorization: Bearer <token>`, so it must be one non-empty word. No
/// message here quotes the value, nor the raw text, which may be the token
/// written literally.
pub(super) fn check_control_token(checker: &mut Checker<'_>, raw: &str) -> Option<Secret> {
    const KEY: &str = "http.control_token";
    let (value, from_secret_source) = checker.interpolated(KEY, raw)?;
    if value.trim().is_empty() {
        checker.issue(
            KEY,
            "the control token is empty; put a random token in it, e.g. `openssl rand -hex 32`",
        );
        return None;
    }
    if value.chars().any(|c| c.is_whitespace() || c.is_control()) {
        checker.issue(
            KEY,
            "the control token contains spaces or control characters; it is sent as one HTTP header word",
        );
        return None;
    }
    if !from_secret_source {
        checker.warnings.push(format!(
            "{KEY}: written literally in the topology file; prefer \"${{file:PATH}}\" or \"${{env:NAME}}\""
        ));
    }
    Some(Secret::new(value))
}
