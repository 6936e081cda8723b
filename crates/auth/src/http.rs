//! Blocking HTTP for the credential endpoints. Every call is short and
//! bounded by timeouts: the token callback runs on a librdkafka thread.

use std::sync::Arc;
use std::time::Duration;

use crate::AuthError;

pub(crate) struct Response {
    pub status: u16,
    pub body: String,
}

pub(crate) struct Http {
    agent: ureq::Agent,
}

impl Http {
    pub fn new(connect_timeout: Duration, timeout: Duration) -> Result<Self, AuthError> {
        let tls = native_tls::TlsConnector::new().map_err(|e| AuthError::Http {
            url: "(TLS set-up)".into(),
            reason: e.to_string(),
        })?;
        let agent = ureq::AgentBuilder::new()
            .timeout_connect(connect_timeout)
            .timeout(timeout)
            .tls_connector(Arc::new(tls))
            // Credential endpoints never redirect; following one could send
            // a web identity token elsewhere.
            .redirects(0)
            .build();
        Ok(Self { agent })
    }

    /// Sends the request; any HTTP status is a response, only transport
    /// failures are errors. The body is capped: these answers are small.
    pub fn send(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        form: Option<&str>,
    ) -> Result<Response, AuthError> {
        let mut request = self.agent.request(method, url);
        for (name, value) in headers {
            request = request.set(name, value);
        }
        let result = match form {
            Some(body) => request
                .set("Content-Type", "application/x-www-form-urlencoded")
                .send_string(body),
            None => request.call(),
        };
        let response = match result {
            Ok(r) | Err(ureq::Error::Status(_, r)) => r,
            Err(ureq::Error::Transport(t)) => {
                return Err(AuthError::Http {
                    url: url.to_string(),
                    reason: t.to_string(),
                })
            }
        };
        let status = response.status();
        let mut body = String::new();
        std::io::Read::read_to_string(
            &mut std::io::Read::take(response.into_reader(), 1 << 20),
            &mut body,
        )
        .map_err(|e| AuthError::Http {
            url: url.to_string(),
            reason: format!("reading the response: {e}"),
        })?;
        Ok(Response { status, body })
    }
}
