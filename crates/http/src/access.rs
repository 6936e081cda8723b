//! Who may use which endpoint: `/metrics` and the health probes are open
//! (Prometheus and kubelets carry no credentials), control requests need
//! the bearer token, and `/status`, which shows the topology's structure,
//! needs it too unless the operator made it public.
//!
//! The token is kept only as its SHA-256 digest, and a presented token is
//! hashed and compared digest to digest without an early exit, so the time
//! an answer takes says nothing about how much of a guess was right.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

/// The access rules of one server (`http.control_token`,
/// `http.status_public`). The default has no token: control requests are
/// refused with 404 and `/status` with 401.
#[derive(Clone, Default)]
pub struct Access {
    /// SHA-256 of the control token; `None`: control is disabled.
    token_digest: Option<[u8; 32]>,
    /// `/status` answers without the token.
    status_public: bool,
}

impl std::fmt::Debug for Access {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Access")
            .field("control_token", &self.token_digest.map(|_| "***"))
            .field("status_public", &self.status_public)
            .finish()
    }
}

impl Access {
    /// `control_token`: the token control requests must present as
    /// `Authorization: Bearer <token>`; `None` disables control.
    pub fn new(control_token: Option<&str>, status_public: bool) -> Self {
        Access {
            token_digest: control_token.map(digest),
            status_public,
        }
    }

    /// Whether control requests are accepted at all.
    pub fn control_enabled(&self) -> bool {
        self.token_digest.is_some()
    }

    /// Whether the request's `Authorization` header carries the token.
    fn presents_token(&self, authorization: Option<&HeaderValue>) -> bool {
        let (Some(expected), Some(presented)) =
            (&self.token_digest, authorization.and_then(bearer))
        else {
            return false;
        };
        let got = digest_bytes(presented);
        let difference = expected
            .iter()
            .zip(got.iter())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b));
        std::hint::black_box(difference) == 0
    }
}

fn digest(token: &str) -> [u8; 32] {
    digest_bytes(token.as_bytes())
}

fn digest_bytes(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// The credentials of `Bearer <credentials>` (the scheme is
/// case-insensitive, RFC 7235).
fn bearer(value: &HeaderValue) -> Option<&[u8]> {
    let bytes = value.as_bytes();
    let scheme = bytes.get(..7)?;
    scheme
        .eq_ignore_ascii_case(b"bearer ")
        .then(|| bytes[7..].trim_ascii())
}

/// Something that holds the server's [`Access`].
pub(crate) trait HasAccess {
    fn access(&self) -> &Access;
}

/// A request allowed to make control requests.
pub(crate) struct ControlAllowed;

/// A request allowed to read `/status`.
pub(crate) struct StatusAllowed;

impl<S: HasAccess + Send + Sync> FromRequestParts<S> for ControlAllowed {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Response> {
        let access = state.access();
        if !access.control_enabled() {
            return Err((
                StatusCode::NOT_FOUND,
                "the control endpoint is disabled: set http.control_token in the topology to enable it",
            )
                .into_response());
        }
        if access.presents_token(parts.headers.get(header::AUTHORIZATION)) {
            Ok(ControlAllowed)
        } else {
            tracing::warn!(path = %parts.uri.path(), "control request refused: missing or wrong bearer token");
            Err(unauthorized(
                "control requests need \"Authorization: Bearer <http.control_token>\"",
            ))
        }
    }
}

impl<S: HasAccess + Send + Sync> FromRequestParts<S> for StatusAllowed {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Response> {
        let access = state.access();
        if access.status_public || access.presents_token(parts.headers.get(header::AUTHORIZATION)) {
            Ok(StatusAllowed)
        } else {
            Err(unauthorized(
                "/status needs \"Authorization: Bearer <http.control_token>\" unless http.status_public = true",
            ))
        }
    }
}

fn unauthorized(why: &'static str) -> Response {
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, "Bearer realm=\"ferry\"")],
        why,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(v: &str) -> HeaderValue {
        HeaderValue::from_str(v).unwrap()
    }

    #[test]
    fn only_the_exact_bearer_token_is_accepted() {
        let access = Access::new(Some("s3cret-token"), false);
        assert!(access.presents_token(Some(&header("Bearer s3cret-token"))));
        assert!(access.presents_token(Some(&header("bearer  s3cret-token "))));
        for wrong in [
            "Bearer s3cret-toke",
            "Bearer s3cret-token2",
            "Bearer ",
            "Basic s3cret-token",
            "s3cret-token",
        ] {
            assert!(!access.presents_token(Some(&header(wrong))), "{wrong}");
        }
        assert!(!access.presents_token(None));
    }

    #[test]
    fn without_a_token_nothing_is_accepted_and_debug_hides_it() {
        let none = Access::new(None, false);
        assert!(!none.control_enabled());
        assert!(!none.presents_token(Some(&header("Bearer "))));
        let shown = format!("{:?}", Access::new(Some("s3cret-token"), true));
        assert!(
            !shown.contains("s3cret") && shown.contains("***"),
            "{shown}"
        );
    }
}
