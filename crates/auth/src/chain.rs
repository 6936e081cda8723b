//! The standard AWS credential chain, in the SDKs' order: environment
//! variables, the shared profile files, web identity (IRSA), the container
//! endpoint (ECS, EKS Pod Identity) and EC2 instance metadata (IMDSv2).
//!
//! A source that is not configured passes to the next; a source that is
//! configured but fails stops the chain with its cause, as AWS's SDKs do,
//! so a broken IRSA set-up is not silently replaced by the node's role.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::credentials::Credentials;
use crate::env::Env;
use crate::http::Http;
use crate::sigv4::uri_encode;
use crate::AuthError;

const DEFAULT_IMDS_ENDPOINT: &str = "http://169.254.169.254";
const ECS_CONTAINER_HOST: &str = "http://169.254.170.2";
const DEFAULT_SESSION_NAME: &str = "ferry";

/// Resolves credentials for one region and (optional) profile.
pub struct CredentialChain {
    env: Env,
    /// Used for the STS endpoint when web identity is used.
    region: String,
    /// `aws_msk_iam.profile`; otherwise `AWS_PROFILE`, then `default`.
    profile: Option<String>,
    http: Http,
    metadata_http: Http,
}

impl CredentialChain {
    pub fn new(env: Env, region: &str, profile: Option<&str>) -> Result<Self, AuthError> {
        Ok(Self {
            env,
            region: region.to_string(),
            profile: profile.map(str::to_string),
            http: Http::new(Duration::from_secs(5), Duration::from_secs(10))?,
            // The link-local endpoints answer at once or not at all.
            metadata_http: Http::new(Duration::from_secs(1), Duration::from_secs(5))?,
        })
    }

    pub fn resolve(&self) -> Result<Credentials, AuthError> {
        if let Some(c) = self.environment()? {
            return Ok(c);
        }
        if let Some(c) = self.shared_profile()? {
            return Ok(c);
        }
        if let Some(c) = self.web_identity_from_env()? {
            return Ok(c);
        }
        if let Some(c) = self.container()? {
            return Ok(c);
        }
        self.instance_metadata()
    }

    fn environment(&self) -> Result<Option<Credentials>, AuthError> {
        let id = self.env.var("AWS_ACCESS_KEY_ID");
        let secret = self.env.var("AWS_SECRET_ACCESS_KEY");
        match (id, secret) {
            (None, None) => Ok(None),
            (Some(id), Some(secret)) => Ok(Some(Credentials::new(
                id,
                secret,
                self.env.var("AWS_SESSION_TOKEN"),
                None,
                "environment",
            ))),
            (Some(_), None) => Err(AuthError::Incomplete {
                source_name: "environment",
                detail: "AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not".into(),
            }),
            (None, Some(_)) => Err(AuthError::Incomplete {
                source_name: "environment",
                detail: "AWS_SECRET_ACCESS_KEY is set but AWS_ACCESS_KEY_ID is not".into(),
            }),
        }
    }

    fn shared_profile(&self) -> Result<Option<Credentials>, AuthError> {
        let explicit = self.profile.clone().or_else(|| self.env.var("AWS_PROFILE"));
        let name = explicit.clone().unwrap_or_else(|| "default".into());
        let home = self.env.home();
        let file = |var: &str, default: &str| {
            self.env
                .var(var)
                .map(PathBuf::from)
                .or_else(|| home.as_ref().map(|h| h.join(".aws").join(default)))
        };
        let mut profile = HashMap::new();
        let mut found = false;
        // Keys in the credentials file win over the config file's.
        if let Some(path) = file("AWS_CONFIG_FILE", "config") {
            let section = if name == "default" {
                "default".to_string()
            } else {
                format!("profile {name}")
            };
            if let Some(p) = read_profile(&path, &section)? {
                found = true;
                profile.extend(p);
            }
        }
        if let Some(path) = file("AWS_SHARED_CREDENTIALS_FILE", "credentials") {
            if let Some(p) = read_profile(&path, &name)? {
                found = true;
                profile.extend(p);
            }
        }
        if !found {
            return match explicit {
                Some(_) => Err(AuthError::Incomplete {
                    source_name: "profile",
                    detail: format!(
                        "profile \"{name}\" is not in the shared config or credentials file"
                    ),
                }),
                None => Ok(None),
            };
        }
        let get = |k: &str| profile.get(k).filter(|v| !v.is_empty()).cloned();
        if let (Some(id), Some(secret)) = (get("aws_access_key_id"), get("aws_secret_access_key")) {
            return Ok(Some(Credentials::new(
                id,
                secret,
                get("aws_session_token"),
                None,
                "profile",
            )));
        }
        if let (Some(role), Some(token_file)) = (get("role_arn"), get("web_identity_token_file")) {
            return self
                .assume_role_with_web_identity(
                    &role,
                    Path::new(&token_file),
                    get("role_session_name").as_deref(),
                )
                .map(Some);
        }
        let unsupported = [
            "source_profile",
            "credential_process",
            "sso_session",
            "sso_start_url",
        ]
        .into_iter()
        .find(|k| profile.contains_key(*k));
        match (unsupported, explicit) {
            (Some(key), _) => Err(AuthError::Incomplete {
                source_name: "profile",
                detail: format!(
                    "profile \"{name}\" uses {key}, which Ferry does not support; \
                     give it aws_access_key_id/aws_secret_access_key or role_arn with web_identity_token_file"
                ),
            }),
            (None, Some(_)) => Err(AuthError::Incomplete {
                source_name: "profile",
                detail: format!("profile \"{name}\" has no credentials (aws_access_key_id and aws_secret_access_key, or role_arn with web_identity_token_file)"),
            }),
            // A default profile holding only settings such as `region`.
            (None, None) => Ok(None),
        }
    }

    fn web_identity_from_env(&self) -> Result<Option<Credentials>, AuthError> {
        let (Some(token_file), Some(role)) = (
            self.env.var("AWS_WEB_IDENTITY_TOKEN_FILE"),
            self.env.var("AWS_ROLE_ARN"),
        ) else {
            return Ok(None);
        };
        self.assume_role_with_web_identity(
            &role,
            Path::new(&token_file),
            self.env.var("AWS_ROLE_SESSION_NAME").as_deref(),
        )
        .map(Some)
    }

    /// STS AssumeRoleWithWebIdentity: an unsigned call that trades the
    /// projected service-account token for temporary credentials. The token
    /// file is re-read each time, since the kubelet rotates it.
    fn assume_role_with_web_identity(
        &self,
        role_arn: &str,
        token_file: &Path,
        session_name: Option<&str>,
    ) -> Result<Credentials, AuthError> {
        let token = std::fs::read_to_string(token_file).map_err(|e| AuthError::Incomplete {
            source_name: "web identity",
            detail: format!("cannot read the token file {}: {e}", token_file.display()),
        })?;
        let endpoint = self
            .env
            .var("AWS_ENDPOINT_URL_STS")
            .or_else(|| self.env.var("AWS_ENDPOINT_URL"))
            .unwrap_or_else(|| format!("https://sts.{}.amazonaws.com", self.region));
        let form = [
            ("Action", "AssumeRoleWithWebIdentity"),
            ("Version", "2011-06-15"),
            ("RoleArn", role_arn),
            (
                "RoleSessionName",
                session_name.unwrap_or(DEFAULT_SESSION_NAME),
            ),
            ("WebIdentityToken", token.trim()),
        ]
        .iter()
        .map(|(k, v)| format!("{k}={}", uri_encode(v)))
        .collect::<Vec<_>>()
        .join("&");
        let url = format!("{}/", endpoint.trim_end_matches('/'));
        let response = self.http.send("POST", &url, &[], Some(&form))?;
        if response.status != 200 {
            // STS's error document names the cause (InvalidIdentityToken,
            // AccessDenied) and never echoes the token.
            let code = xml_text(&response.body, "Code").unwrap_or_default();
            let message = xml_text(&response.body, "Message").unwrap_or_default();
            return Err(AuthError::Endpoint {
                source_name: "web identity",
                url,
                detail: format!(
                    "AssumeRoleWithWebIdentity for {role_arn} answered HTTP {}: {code} {message}",
                    response.status
                )
                .trim()
                .to_string(),
            });
        }
        let field = |name: &str| {
            xml_text(&response.body, name).ok_or_else(|| AuthError::Endpoint {
                source_name: "web identity",
                url: url.clone(),
                detail: format!("the AssumeRoleWithWebIdentity answer has no {name}"),
            })
        };
        let expiration = parse_time("web identity", &url, &field("Expiration")?)?;
        Ok(Credentials::new(
            field("AccessKeyId")?,
            field("SecretAccessKey")?,
            Some(field("SessionToken")?),
            Some(expiration),
            "web identity",
        ))
    }

    fn container(&self) -> Result<Option<Credentials>, AuthError> {
        let url = match (
            self.env.var("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"),
            self.env.var("AWS_CONTAINER_CREDENTIALS_FULL_URI"),
        ) {
            (Some(relative), _) => format!("{ECS_CONTAINER_HOST}{relative}"),
            (None, Some(full)) => full,
            (None, None) => return Ok(None),
        };
        let authorization = match self.env.var("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE") {
            Some(path) => Some(
                std::fs::read_to_string(&path)
                    .map_err(|e| AuthError::Incomplete {
                        source_name: "container",
                        detail: format!(
                            "cannot read AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE {path}: {e}"
                        ),
                    })?
                    .trim()
                    .to_string(),
            ),
            None => self.env.var("AWS_CONTAINER_AUTHORIZATION_TOKEN"),
        };
        let headers: Vec<(&str, &str)> = authorization
            .as_deref()
            .map(|a| vec![("Authorization", a)])
            .unwrap_or_default();
        let response = self.metadata_http.send("GET", &url, &headers, None)?;
        if response.status != 200 {
            return Err(AuthError::Endpoint {
                source_name: "container",
                url,
                detail: format!("HTTP {}", response.status),
            });
        }
        json_credentials("container", &url, &response.body).map(Some)
    }

    /// IMDSv2: a session token first (PUT), then the role name and its
    /// credentials.
    fn instance_metadata(&self) -> Result<Credentials, AuthError> {
        if self
            .env
            .var("AWS_EC2_METADATA_DISABLED")
            .is_some_and(|v| v.eq_ignore_ascii_case("true"))
        {
            return Err(AuthError::NoCredentials {
                reason: "instance metadata is disabled by AWS_EC2_METADATA_DISABLED".into(),
            });
        }
        let base = self
            .env
            .var("AWS_EC2_METADATA_SERVICE_ENDPOINT")
            .unwrap_or_else(|| DEFAULT_IMDS_ENDPOINT.into());
        let base = base.trim_end_matches('/');
        let get = |path: &str, headers: &[(&str, &str)], method: &str| {
            let url = format!("{base}{path}");
            let response = self
                .metadata_http
                .send(method, &url, headers, None)
                .map_err(|e| AuthError::NoCredentials {
                    reason: format!("instance metadata: {e}"),
                })?;
            if response.status != 200 {
                return Err(AuthError::Endpoint {
                    source_name: "instance metadata",
                    url,
                    detail: format!("HTTP {}", response.status),
                });
            }
            Ok((url, response.body))
        };
        let (_, session) = get(
            "/latest/api/token",
            &[("X-aws-ec2-metadata-token-ttl-seconds", "21600")],
            "PUT",
        )?;
        let auth = [("X-aws-ec2-metadata-token", session.trim())];
        let (_, roles) = get("/latest/meta-data/iam/security-credentials/", &auth, "GET")?;
        let role = roles
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty())
            .ok_or_else(|| AuthError::Endpoint {
                source_name: "instance metadata",
                url: format!("{base}/latest/meta-data/iam/security-credentials/"),
                detail: "the instance has no IAM role attached".into(),
            })?;
        let (url, body) = get(
            &format!("/latest/meta-data/iam/security-credentials/{role}"),
            &auth,
            "GET",
        )?;
        json_credentials("instance metadata", &url, &body)
    }
}

/// The JSON both the container endpoint and IMDS answer with.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct JsonCredentials {
    access_key_id: String,
    secret_access_key: String,
    token: Option<String>,
    expiration: Option<String>,
}

fn json_credentials(
    source_name: &'static str,
    url: &str,
    body: &str,
) -> Result<Credentials, AuthError> {
    // serde's message could quote a value, so only the shape is reported.
    let parsed: JsonCredentials = serde_json::from_str(body).map_err(|_| AuthError::Endpoint {
        source_name,
        url: url.to_string(),
        detail: "the answer is not JSON with AccessKeyId, SecretAccessKey, Token and Expiration"
            .into(),
    })?;
    let expiration = parsed
        .expiration
        .as_deref()
        .map(|e| parse_time(source_name, url, e))
        .transpose()?;
    Ok(Credentials::new(
        parsed.access_key_id,
        parsed.secret_access_key,
        parsed.token,
        expiration,
        source_name,
    ))
}

fn parse_time(
    source_name: &'static str,
    url: &str,
    text: &str,
) -> Result<OffsetDateTime, AuthError> {
    OffsetDateTime::parse(text.trim(), &Rfc3339).map_err(|_| AuthError::Endpoint {
        source_name,
        url: url.to_string(),
        detail: format!("invalid Expiration \"{}\"", text.trim()),
    })
}

/// The text of the first `<name>…</name>` element (STS's answers are flat
/// enough that no XML parser is needed).
fn xml_text(body: &str, name: &str) -> Option<String> {
    let open = format!("<{name}>");
    let close = format!("</{name}>");
    let start = body.find(&open)? + open.len();
    let end = start + body[start..].find(&close)?;
    Some(
        body[start..end]
            .trim()
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&quot;", "\"")
            .replace("&apos;", "'")
            .replace("&amp;", "&"),
    )
}

/// The keys of one `[section]` of an INI-style AWS file; None when the file
/// or the section does not exist.
fn read_profile(path: &Path, section: &str) -> Result<Option<HashMap<String, String>>, AuthError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(AuthError::Incomplete {
                source_name: "profile",
                detail: format!("cannot read {}: {e}", path.display()),
            })
        }
    };
    Ok(parse_section(&text, section))
}

fn parse_section(text: &str, wanted: &str) -> Option<HashMap<String, String>> {
    let mut current: Option<String> = None;
    let mut found: Option<HashMap<String, String>> = None;
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            let name = name.split_whitespace().collect::<Vec<_>>().join(" ");
            if name == wanted {
                found.get_or_insert_with(HashMap::new);
            }
            current = Some(name);
            continue;
        }
        if current.as_deref() != Some(wanted) {
            continue;
        }
        if let (Some(map), Some((k, v))) = (found.as_mut(), line.split_once('=')) {
            map.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profile_sections_are_found_by_exact_name() {
        let text = "[default]\nregion = eu-west-1\n\n[profile  prod ]\n# comment\naws_access_key_id = AKID\nAWS_Secret_Access_Key=abc=def\n[other]\nx=1\n";
        let prod = parse_section(text, "profile prod").unwrap();
        assert_eq!(prod["aws_access_key_id"], "AKID");
        assert_eq!(prod["aws_secret_access_key"], "abc=def");
        assert!(!prod.contains_key("x"));
        assert_eq!(
            parse_section(text, "default").unwrap()["region"],
            "eu-west-1"
        );
        assert!(parse_section(text, "prod").is_none());
    }

    #[test]
    fn xml_text_unescapes_entities() {
        let body = "<R><Credentials><SessionToken>a&amp;b&lt;</SessionToken></Credentials></R>";
        assert_eq!(xml_text(body, "SessionToken").as_deref(), Some("a&b<"));
        assert_eq!(xml_text(body, "Missing"), None);
    }
}
