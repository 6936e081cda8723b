//! The Confluent Schema Registry REST API of one registry. Blocking (ureq):
//! callers run it on a blocking thread, never on an async worker. Every
//! request is bounded by the registry's `timeout`.

use std::sync::Arc;

use base64::Engine as _;
use ferry_config::Registry;
use serde::{Deserialize, Serialize};

const CONTENT_TYPE: &str = "application/vnd.schemaregistry.v1+json";
/// Registry answers are schemas and lists of them: a few MiB at most.
const MAX_BODY: u64 = 16 << 20;

/// Why a registry request failed. Messages name the registry (as the
/// topology names it) and the request; never a credential.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// No HTTP answer: connection refused, DNS, TLS, timeout.
    #[error("schema registry {registry} ({url}) cannot be reached: {reason}")]
    Unreachable {
        /// The registry's name.
        registry: String,
        /// The URL asked.
        url: String,
        /// The transport's error.
        reason: String,
    },
    /// An HTTP error status.
    #[error("schema registry {registry} refused {method} {path}: HTTP {status}{}: {message}",
        code.map(|c| format!(" (error code {c})")).unwrap_or_default())]
    Status {
        /// The registry's name.
        registry: String,
        /// `GET`, `POST`, …
        method: &'static str,
        /// The path below the registry's URL.
        path: String,
        /// The HTTP status.
        status: u16,
        /// The registry's `error_code`, when it sent one.
        code: Option<i64>,
        /// The registry's `message`, or the body's start.
        message: String,
    },
    /// An answer that is not what the API documents.
    #[error("schema registry {registry}: unexpected answer to {method} {path}: {reason}")]
    Decode {
        /// The registry's name.
        registry: String,
        /// `GET`, `POST`, …
        method: &'static str,
        /// The path below the registry's URL.
        path: String,
        /// What was wrong with it.
        reason: String,
    },
    /// The TLS files could not be used.
    #[error("schema registry {registry}: cannot set up TLS: {reason}")]
    Tls {
        /// The registry's name.
        registry: String,
        /// Why.
        reason: String,
    },
}

impl RegistryError {
    /// True when the registry could not be reached at all (as opposed to
    /// answering with an error).
    pub fn is_unreachable(&self) -> bool {
        matches!(self, RegistryError::Unreachable { .. })
    }
}

/// A schema reference: `name` as the schema text uses it, pointing at one
/// version of a subject.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Reference {
    /// The name the referring schema uses (an Avro full name, a .proto
    /// import path, a JSON Schema URL).
    pub name: String,
    /// The subject holding the referenced schema.
    pub subject: String,
    /// Its version.
    pub version: i32,
}

/// A schema as the registry stores it under an ID.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SchemaBody {
    /// The schema text.
    pub schema: String,
    /// `AVRO` (when absent), `PROTOBUF` or `JSON`.
    #[serde(
        rename = "schemaType",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub schema_type: Option<String>,
    /// The schemas it uses.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub references: Vec<Reference>,
}

impl SchemaBody {
    /// The schema type, `AVRO` when the registry left it out.
    pub fn kind(&self) -> &str {
        self.schema_type.as_deref().unwrap_or("AVRO")
    }

    /// Whether two schemas have the same text and type, and references by
    /// the same names to the same subjects, whatever the referenced version
    /// numbers (which differ between registries under translate-ids).
    pub fn same_content(&self, other: &SchemaBody) -> bool {
        let unversioned = |b: &SchemaBody| {
            let mut c = b.clone();
            for r in &mut c.references {
                r.version = 0;
            }
            c
        };
        unversioned(self).same_as(&unversioned(other))
    }

    /// Whether two registries hold the same schema: the same type and
    /// references, and the same text, compared as JSON values for Avro and
    /// JSON Schema (registries reformat what they store).
    pub fn same_as(&self, other: &SchemaBody) -> bool {
        if self.kind() != other.kind() {
            return false;
        }
        let mut mine = self.references.clone();
        let mut theirs = other.references.clone();
        mine.sort();
        theirs.sort();
        if mine != theirs {
            return false;
        }
        if self.schema == other.schema {
            return true;
        }
        if self.kind() == "PROTOBUF" {
            return false;
        }
        match (
            serde_json::from_str::<serde_json::Value>(&self.schema),
            serde_json::from_str::<serde_json::Value>(&other.schema),
        ) {
            (Ok(a), Ok(b)) => a == b,
            _ => false,
        }
    }
}

/// One version of one subject.
#[derive(Debug, Clone, Deserialize)]
pub struct SubjectVersion {
    /// The subject.
    pub subject: String,
    /// The version number within the subject.
    pub version: i32,
    /// The schema's registry-wide ID.
    pub id: u32,
    /// The schema itself.
    #[serde(flatten)]
    pub body: SchemaBody,
}

/// A client for one registry.
pub struct RegistryClient {
    name: String,
    base: String,
    agent: ureq::Agent,
    /// `Basic …`: built once; never logged.
    authorization: Option<String>,
}

impl std::fmt::Debug for RegistryClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryClient")
            .field("name", &self.name)
            .field("url", &self.base)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct ErrorBody {
    error_code: Option<i64>,
    message: Option<String>,
}

#[derive(Deserialize)]
struct IdAnswer {
    id: u32,
}

#[derive(Deserialize)]
struct ModeAnswer {
    mode: String,
}

impl RegistryClient {
    /// A client for `registry`, with its credentials and TLS files.
    pub fn new(registry: &Registry) -> Result<Self, RegistryError> {
        let tls_error = |reason: String| RegistryError::Tls {
            registry: registry.name.clone(),
            reason,
        };
        let mut tls = native_tls::TlsConnector::builder();
        if let Some(ca) = &registry.tls_ca {
            let pem = std::fs::read(ca)
                .map_err(|e| tls_error(format!("cannot read {}: {e}", ca.display())))?;
            for block in pem_blocks(&pem, "CERTIFICATE") {
                let cert = native_tls::Certificate::from_pem(&block).map_err(|e| {
                    tls_error(format!(
                        "{} holds an unusable certificate: {e}",
                        ca.display()
                    ))
                })?;
                tls.add_root_certificate(cert);
            }
        }
        if let Some((cert, key)) = &registry.tls_client {
            let read = |p: &std::path::PathBuf| {
                std::fs::read(p).map_err(|e| tls_error(format!("cannot read {}: {e}", p.display())))
            };
            // The key's contents are never quoted.
            let identity = native_tls::Identity::from_pkcs8(&read(cert)?, &read(key)?)
                .map_err(|e| tls_error(format!("client certificate or key unusable: {e}")))?;
            tls.identity(identity);
        }
        let tls = tls.build().map_err(|e| tls_error(e.to_string()))?;
        let agent = ureq::AgentBuilder::new()
            .timeout_connect(registry.timeout)
            .timeout(registry.timeout)
            .tls_connector(Arc::new(tls))
            // A redirect could carry the credentials elsewhere.
            .redirects(0)
            .build();
        let authorization = registry.basic_auth.as_ref().map(|a| {
            let pair = format!("{}:{}", a.username, a.password.expose());
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(pair)
            )
        });
        Ok(Self {
            name: registry.name.clone(),
            base: registry.url.clone(),
            agent,
            authorization,
        })
    }

    /// The registry's name in the topology.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Sends one request; `Ok(None)` for a 404 (the subject, version, ID or
    /// mode does not exist), the decoded body otherwise.
    fn call<T: serde::de::DeserializeOwned>(
        &self,
        method: &'static str,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<Option<T>, RegistryError> {
        let url = format!("{}{path}", self.base);
        let mut request = self.agent.request(method, &url).set("Accept", CONTENT_TYPE);
        if let Some(auth) = &self.authorization {
            request = request.set("Authorization", auth);
        }
        let result = match body {
            Some(b) => request
                .set("Content-Type", CONTENT_TYPE)
                .send_string(&b.to_string()),
            None => request.call(),
        };
        let (status, response) = match result {
            Ok(r) => (r.status(), r),
            Err(ureq::Error::Status(s, r)) => (s, r),
            Err(ureq::Error::Transport(t)) => {
                return Err(RegistryError::Unreachable {
                    registry: self.name.clone(),
                    url,
                    reason: t.to_string(),
                })
            }
        };
        let mut text = String::new();
        std::io::Read::read_to_string(
            &mut std::io::Read::take(response.into_reader(), MAX_BODY),
            &mut text,
        )
        .map_err(|e| RegistryError::Unreachable {
            registry: self.name.clone(),
            url: url.clone(),
            reason: format!("reading the answer: {e}"),
        })?;
        if status == 404 {
            return Ok(None);
        }
        if !(200..300).contains(&status) {
            let parsed = serde_json::from_str::<ErrorBody>(&text).ok();
            let code = parsed.as_ref().and_then(|p| p.error_code);
            let message = parsed
                .and_then(|p| p.message)
                .unwrap_or_else(|| text.chars().take(200).collect());
            return Err(RegistryError::Status {
                registry: self.name.clone(),
                method,
                path: path.to_string(),
                status,
                code,
                message,
            });
        }
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| RegistryError::Decode {
                registry: self.name.clone(),
                method,
                path: path.to_string(),
                reason: e.to_string(),
            })
    }

    fn missing(&self, method: &'static str, path: &str) -> RegistryError {
        RegistryError::Decode {
            registry: self.name.clone(),
            method,
            path: path.to_string(),
            reason: "HTTP 404".into(),
        }
    }

    /// Every subject (deleted ones left out).
    pub fn subjects(&self) -> Result<Vec<String>, RegistryError> {
        Ok(self.call("GET", "/subjects", None)?.unwrap_or_default())
    }

    /// The version numbers of `subject`; empty when it does not exist.
    pub fn versions(&self, subject: &str) -> Result<Vec<i32>, RegistryError> {
        let path = format!("/subjects/{}/versions", segment(subject));
        Ok(self.call("GET", &path, None)?.unwrap_or_default())
    }

    /// One version of `subject`, if it exists.
    pub fn version(
        &self,
        subject: &str,
        version: i32,
    ) -> Result<Option<SubjectVersion>, RegistryError> {
        let path = format!("/subjects/{}/versions/{version}", segment(subject));
        self.call("GET", &path, None)
    }

    /// The schema registered under `id`, if any.
    pub fn schema(&self, id: u32) -> Result<Option<SchemaBody>, RegistryError> {
        self.call("GET", &format!("/schemas/ids/{id}"), None)
    }

    /// Registers `body` under `subject` and returns its ID. With `explicit`
    /// (ID, version), the registry must be in IMPORT mode for the subject;
    /// the answer is checked, since some registries ignore both fields.
    pub fn register(
        &self,
        subject: &str,
        body: &SchemaBody,
        explicit: Option<(u32, i32)>,
    ) -> Result<u32, RegistryError> {
        let path = format!("/subjects/{}/versions", segment(subject));
        let mut request = serde_json::to_value(body).map_err(|e| RegistryError::Decode {
            registry: self.name.clone(),
            method: "POST",
            path: path.clone(),
            reason: e.to_string(),
        })?;
        if let Some((id, version)) = explicit {
            request["id"] = id.into();
            request["version"] = version.into();
        }
        let answer: IdAnswer = self
            .call("POST", &path, Some(&request))?
            .ok_or_else(|| self.missing("POST", &path))?;
        Ok(answer.id)
    }

    /// The version of `subject` that holds `body`, if any.
    pub fn lookup(
        &self,
        subject: &str,
        body: &SchemaBody,
    ) -> Result<Option<SubjectVersion>, RegistryError> {
        let path = format!("/subjects/{}", segment(subject));
        let request = serde_json::to_value(body).map_err(|e| RegistryError::Decode {
            registry: self.name.clone(),
            method: "POST",
            path: path.clone(),
            reason: e.to_string(),
        })?;
        self.call("POST", &path, Some(&request))
    }

    /// The mode set on `subject` itself (`None` when it follows the global
    /// mode, or when `subject` is `None`, the global mode is unset).
    pub fn mode(&self, subject: Option<&str>) -> Result<Option<String>, RegistryError> {
        let path = match subject {
            Some(s) => format!("/mode/{}?defaultToGlobal=false", segment(s)),
            None => "/mode".to_string(),
        };
        Ok(self.call::<ModeAnswer>("GET", &path, None)?.map(|m| m.mode))
    }

    /// Sets the mode of `subject` (`force`: even when it has versions).
    pub fn set_mode(&self, subject: &str, mode: &str) -> Result<(), RegistryError> {
        let path = format!("/mode/{}?force=true", segment(subject));
        self.call::<serde_json::Value>("PUT", &path, Some(&serde_json::json!({ "mode": mode })))?
            .ok_or_else(|| self.missing("PUT", &path))?;
        Ok(())
    }

    /// Makes `subject` follow the global mode again.
    pub fn clear_mode(&self, subject: &str) -> Result<(), RegistryError> {
        let path = format!("/mode/{}", segment(subject));
        self.call::<serde_json::Value>("DELETE", &path, None)?;
        Ok(())
    }
}

/// A subject name as one URL path segment.
fn segment(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The PEM blocks of one kind in a file, each with its armour.
fn pem_blocks(pem: &[u8], kind: &str) -> Vec<Vec<u8>> {
    let text = String::from_utf8_lossy(pem);
    let (begin, end) = (
        format!("-----BEGIN {kind}-----"),
        format!("-----END {kind}-----"),
    );
    let mut out = Vec::new();
    let mut rest = text.as_ref();
    while let Some(start) = rest.find(&begin) {
        let Some(stop) = rest[start..].find(&end) else {
            break;
        };
        let block_end = start + stop + end.len();
        out.push(rest.as_bytes()[start..block_end].to_vec());
        rest = &rest[block_end..];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_are_escaped_as_one_segment() {
        assert_eq!(segment("orders-value"), "orders-value");
        assert_eq!(segment("a/b c:d"), "a%2Fb%20c%3Ad");
    }

    #[test]
    fn same_schema_ignores_formatting_but_not_content() {
        let a = SchemaBody {
            schema: r#"{"type":"record","name":"A","fields":[]}"#.into(),
            schema_type: None,
            references: vec![],
        };
        let mut b = a.clone();
        b.schema = r#"{ "type": "record", "name": "A", "fields": [] }"#.into();
        b.schema_type = Some("AVRO".into());
        assert!(a.same_as(&b));
        b.schema = r#"{"type":"record","name":"B","fields":[]}"#.into();
        assert!(!a.same_as(&b));
    }
}
