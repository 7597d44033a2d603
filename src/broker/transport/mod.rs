//! HTTP to a broker, the same for every dialect: the client every adapter builds
//! from the same settings (timeouts, no redirects, the roots it trusts), one round
//! trip read whole (`response`), and URLs that ids cannot escape (`url`). The
//! dialects (`generic`, `alpaca`) add only their routes, JSON and error envelopes.

mod bearer;
pub(crate) mod link;
mod response;
mod socket;
mod url;

pub(crate) use bearer::header as bearer_header;
pub use bearer::BearerSource;
pub(crate) use response::{decode_error, exchange, log_body, retry_after, Exchange};
pub(crate) use socket::{ws_url, Socket};
pub(crate) use url::{check_base_url, object_url, versioned_url};

use std::time::Duration;

use reqwest::header::HeaderMap;

/// How an adapter reaches its broker: the same for every dialect.
#[derive(Clone, Debug)]
pub struct Transport {
    /// Bound on establishing a TCP (and TLS) connection.
    pub connect_timeout: Duration,
    /// Bound on a whole call, from sending to the last byte of the body.
    pub request_timeout: Duration,
    /// Trusted besides the built-in roots: a broker (or a proxy before it) whose
    /// certificate comes from a private CA (`broker.ca_file`).
    pub extra_roots: Vec<reqwest::Certificate>,
}

/// The HTTP client of an adapter: its credentials as default headers, and no
/// redirects (a redirect would carry them to a URL nobody configured).
pub(crate) fn client(
    headers: HeaderMap,
    transport: &Transport,
) -> reqwest::Result<reqwest::Client> {
    let mut builder = reqwest::Client::builder()
        .default_headers(headers)
        .user_agent(concat!("brokergraph/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(transport.connect_timeout)
        .timeout(transport.request_timeout)
        .redirect(reqwest::redirect::Policy::none());
    for root in &transport.extra_roots {
        builder = builder.add_root_certificate(root.clone());
    }
    builder.build()
}

/// The certificates of a PEM file (`broker.ca_file`); an error says what is wrong
/// with it, never its content.
pub fn load_roots(path: &std::path::Path) -> Result<Vec<reqwest::Certificate>, String> {
    let pem = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    match reqwest::Certificate::from_pem_bundle(&pem) {
        Ok(roots) if !roots.is_empty() => Ok(roots),
        Ok(_) => Err(format!("{} holds no PEM certificate", path.display())),
        Err(e) => Err(format!(
            "{} is not a PEM certificate bundle: {e}",
            path.display()
        )),
    }
}
