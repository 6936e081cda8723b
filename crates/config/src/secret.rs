//! Secret interpolation (`${env:NAME}`, `${file:/path}`) and the redacting
//! client-property map.
//!
//! Anything that came from an interpolation, and any property whose name says
//! it holds a credential, is *sensitive*: its value is handed to librdkafka and
//! nowhere else. `Debug`, `redacted()` and every error message show `***`.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

/// What replaces a sensitive value in every human-facing output.
pub const REDACTED: &str = "***";

/// Properties whose names contain a credential word but whose values are
/// addresses operators need to see in errors (which endpoint refused).
const NOT_SENSITIVE: &[&str] = &["sasl.oauthbearer.token.endpoint.url"];

/// Property names that hold credentials even when written literally.
pub fn is_sensitive_name(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    if NOT_SENSITIVE.contains(&key.as_str()) {
        return false;
    }
    [
        "password",
        "secret",
        "jaas",
        "ssl.key.pem",
        "token",
        "credential",
    ]
    .iter()
    .any(|needle| key.contains(needle))
        || key == "sasl.oauthbearer.config"
}

/// One librdkafka property value.
#[derive(Clone, PartialEq, Eq)]
pub struct PropertyValue {
    value: String,
    sensitive: bool,
}

impl PropertyValue {
    /// The value to hand to librdkafka. Never log it.
    pub fn expose(&self) -> &str {
        &self.value
    }

    /// True when the value came from a secret source (`${env:…}`,
    /// `${file:…}`) or its key names a secret (`*password*`, …).
    pub fn is_sensitive(&self) -> bool {
        self.sensitive
    }

    /// The value as it may be shown to a person.
    pub fn display(&self) -> &str {
        if self.sensitive {
            REDACTED
        } else {
            &self.value
        }
    }
}

impl fmt::Debug for PropertyValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.display())
    }
}

/// librdkafka properties for one cluster, passed through as-is.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct ClientProperties(BTreeMap<String, PropertyValue>);

impl ClientProperties {
    /// Adds a property; `from_secret_source` marks a value read from
    /// `${env:…}` or `${file:…}` as sensitive whatever its key.
    pub fn insert(&mut self, key: String, value: String, from_secret_source: bool) {
        let sensitive = from_secret_source || is_sensitive_name(&key);
        self.0.insert(key, PropertyValue { value, sensitive });
    }

    /// Key/value pairs for librdkafka. The values include secrets.
    pub fn iter_exposed(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.expose()))
    }

    /// The value of one property.
    pub fn get(&self, key: &str) -> Option<&PropertyValue> {
        self.0.get(key)
    }

    /// Every value that must never be printed; used to scrub broker error
    /// strings that might echo them back.
    pub fn sensitive_values(&self) -> impl Iterator<Item = &str> {
        self.0
            .values()
            .filter(|v| v.sensitive && !v.value.is_empty())
            .map(|v| v.value.as_str())
    }

    /// A copy safe to print, log or serve over HTTP.
    pub fn redacted(&self) -> BTreeMap<String, String> {
        self.0
            .iter()
            .map(|(k, v)| (k.clone(), v.display().to_string()))
            .collect()
    }

    /// The number of properties.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when there are no properties.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for ClientProperties {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.0.iter()).finish()
    }
}

/// A credential Ferry itself checks or sends (the HTTP control token), as
/// opposed to one handed to librdkafka. `Debug` shows `***`; only
/// [`Secret::expose`] gives the value.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub(crate) fn new(value: String) -> Self {
        Secret(value)
    }

    /// The value itself. Never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{REDACTED:?}")
    }
}

/// The result of expanding `${provider:arg}` references in one string.
pub(crate) struct Interpolated {
    pub value: String,
    /// True when any part of the value came from a secret source.
    pub used_secret: bool,
    /// Warnings that do not stop the load (e.g. a secret file readable by others).
    pub warnings: Vec<String>,
}

/// Expands `${env:NAME}` and `${file:/path}`; `$${` stands for a literal `${`.
///
/// Errors never include the expanded value, only the reference that failed.
pub(crate) fn interpolate(raw: &str, base_dir: &Path) -> Result<Interpolated, String> {
    let mut out = String::with_capacity(raw.len());
    let mut used_secret = false;
    let mut warnings = Vec::new();
    let mut rest = raw;
    while let Some(start) = rest.find("${") {
        if rest[..start].ends_with('$') {
            // `$${` escape: keep a literal `${`.
            out.push_str(&rest[..start - 1]);
            out.push_str("${");
            rest = &rest[start + 2..];
            continue;
        }
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find('}')
            .ok_or_else(|| "unterminated \"${\" reference (missing \"}\")".to_string())?;
        let reference = &after[..end];
        let (provider, arg) = reference.split_once(':').ok_or_else(|| {
            format!("reference \"${{{reference}}}\" must look like ${{env:NAME}} or ${{file:PATH}}")
        })?;
        match provider {
            "env" => {
                let value = std::env::var(arg).map_err(|_| {
                    format!("environment variable {arg} (from \"${{env:{arg}}}\") is not set")
                })?;
                out.push_str(&value);
            }
            "file" => {
                let path = base_dir.join(arg);
                let content = std::fs::read_to_string(&path).map_err(|e| {
                    format!(
                        "cannot read secret file {} (from \"${{file:{arg}}}\"): {e}",
                        path.display()
                    )
                })?;
                if let Some(warning) = loose_permissions_warning(&path) {
                    warnings.push(warning);
                }
                // Secret files conventionally end with a newline that is not
                // part of the secret.
                out.push_str(content.trim_end_matches(['\n', '\r']));
            }
            other => {
                return Err(format!(
                    "unknown secret provider \"{other}\" in \"${{{reference}}}\"; use env or file"
                ))
            }
        }
        used_secret = true;
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(Interpolated {
        value: out,
        used_secret,
        warnings,
    })
}

#[cfg(unix)]
fn loose_permissions_warning(path: &Path) -> Option<String> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path).ok()?.permissions().mode();
    (mode & 0o077 != 0).then(|| {
        format!(
            "secret file {} is readable by group or others (mode {:o}); chmod 600 it",
            path.display(),
            mode & 0o777
        )
    })
}

#[cfg(not(unix))]
fn loose_permissions_warning(_path: &Path) -> Option<String> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_and_escape() {
        std::env::set_var("FERRY_TEST_SECRET_A", "s3cr3t");
        let got = interpolate("a-${env:FERRY_TEST_SECRET_A}-$${x}", Path::new(".")).unwrap();
        assert_eq!(got.value, "a-s3cr3t-${x}");
        assert!(got.used_secret);
        let plain = interpolate("plain", Path::new(".")).unwrap();
        assert!(!plain.used_secret);
    }

    #[test]
    fn unset_env_names_the_variable_not_a_value() {
        let err = interpolate("${env:FERRY_SURELY_UNSET_VAR}", Path::new("."))
            .err()
            .expect("unset variable is an error");
        assert!(err.contains("FERRY_SURELY_UNSET_VAR"), "{err}");
    }

    #[test]
    fn file_secret_trims_newline_and_warns_on_loose_mode() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pw");
        std::fs::write(&path, "hunter2\n").unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        }
        let got = interpolate("${file:pw}", dir.path()).unwrap();
        assert_eq!(got.value, "hunter2");
        #[cfg(unix)]
        assert_eq!(got.warnings.len(), 1, "{:?}", got.warnings);
    }

    #[test]
    fn debug_redacts_sensitive_properties() {
        let mut props = ClientProperties::default();
        props.insert("sasl.password".into(), "literal-pw".into(), false);
        props.insert("client.id".into(), "from-env".into(), true);
        props.insert("acks".into(), "all".into(), false);
        let shown = format!("{props:?}");
        assert!(
            !shown.contains("literal-pw") && !shown.contains("from-env"),
            "{shown}"
        );
        assert!(shown.contains("all"));
        assert_eq!(props.sensitive_values().count(), 2);
    }

    #[test]
    fn oidc_client_secret_is_sensitive_and_its_endpoint_is_not() {
        let mut props = ClientProperties::default();
        for key in [
            "sasl.oauthbearer.client.secret",
            "sasl.oauthbearer.client.credentials.client.secret",
        ] {
            props.insert(key.into(), "oidc-secret".into(), false);
            assert!(props.get(key).unwrap().is_sensitive(), "{key}");
        }
        let url = "https://idp.example.com/oauth2/token";
        props.insert(
            "sasl.oauthbearer.token.endpoint.url".into(),
            url.into(),
            false,
        );
        assert_eq!(props.redacted()["sasl.oauthbearer.token.endpoint.url"], url);
        // From a secret source it stays redacted like anything else.
        props.insert(
            "sasl.oauthbearer.token.endpoint.url".into(),
            url.into(),
            true,
        );
        assert_eq!(
            props.redacted()["sasl.oauthbearer.token.endpoint.url"],
            REDACTED
        );
    }
}
