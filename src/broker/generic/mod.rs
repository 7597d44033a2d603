//! The `generic` adapter: the generic v1 REST dialect (broker-sim/README.md) behind the
//! `Broker` trait.
//!
//! This is the only place that holds the broker API key in a request, builds broker
//! URLs, or sees broker JSON. It does no retries and no caching: those are layers
//! above, which need the unvarnished outcome of each single call to decide.

mod errors;
mod routes;
mod stream;
mod wire;

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use chrono::{DateTime, Utc};
use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION};
use reqwest::{Client, RequestBuilder, Url};
use serde::de::DeserializeOwned;

use self::errors::On404;
use crate::broker::transport::{self, BearerSource, Transport};
use crate::broker::{BrokerError, RateLimitSnapshot};
use crate::domain::PageRequest;
use crate::secret::Secret;
pub use stream::GenericStream;

/// How to reach one broker account over the generic dialect.
#[derive(Clone, Debug)]
pub struct GenericBrokerConfig {
    /// The broker's base URL without `/v1`, e.g. `http://127.0.0.1:9100`. A path
    /// prefix (`https://gw.example/broker`) is kept.
    pub base_url: String,
    pub api_key: Secret,
    pub transport: Transport,
}

/// Why a `GenericBroker` could not be built: always an operator's configuration.
#[derive(Debug, thiserror::Error)]
pub enum GenericBrokerConfigError {
    #[error("broker URL {url:?} is not usable: {reason}")]
    BaseUrl { url: String, reason: String },
    #[error("the broker API key is empty")]
    EmptyApiKey,
    #[error("the broker API key contains characters that cannot go in an HTTP header")]
    ApiKeyNotHeaderSafe,
    #[error("could not build the HTTP client: {0}")]
    Client(String),
}

/// A broker account reached over the generic v1 dialect, with one pooled HTTP client.
pub struct GenericBroker {
    client: Client,
    base: Url,
    auth: Auth,
    rate_limit: Mutex<Option<RateLimitSnapshot>>,
}

impl fmt::Debug for GenericBroker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GenericBroker")
            .field("base", &self.base.as_str())
            .finish_non_exhaustive()
    }
}

/// How requests authenticate.
#[derive(Clone)]
enum Auth {
    /// Kept only to redact it from logged broker bodies; the request header is
    /// built once, marked sensitive, in `new`.
    ApiKey(Secret),
    /// A token asked for at each call; a 401 invalidates it and the call is sent
    /// once more with the next (`GenericBroker::call`).
    Bearer(Arc<dyn BearerSource>),
}

/// A successful answer: the decoded body, whether the broker said it replayed an
/// idempotent request, and when it arrived (the domain objects' `as_of`).
struct Reply<T> {
    body: T,
    replayed: bool,
    received_at: DateTime<Utc>,
}

impl GenericBroker {
    pub fn new(config: GenericBrokerConfig) -> Result<GenericBroker, GenericBrokerConfigError> {
        let base = parse_base_url(&config.base_url)?;
        if config.api_key.expose().is_empty() {
            return Err(GenericBrokerConfigError::EmptyApiKey);
        }
        let mut bearer = HeaderValue::try_from(format!("Bearer {}", config.api_key.expose()))
            .map_err(|_| GenericBrokerConfigError::ApiKeyNotHeaderSafe)?;
        bearer.set_sensitive(true);
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, bearer);
        let client = transport::client(headers, &config.transport)
            .map_err(|e| GenericBrokerConfigError::Client(e.to_string()))?;
        Ok(GenericBroker {
            client,
            base,
            auth: Auth::ApiKey(config.api_key),
            rate_limit: Mutex::new(None),
        })
    }

    /// An account whose bearer tokens change (OAuth 2.0): `source` is asked for
    /// the token of every call.
    pub fn with_bearer(
        base_url: &str,
        source: Arc<dyn BearerSource>,
        transport: &Transport,
    ) -> Result<GenericBroker, GenericBrokerConfigError> {
        let base = parse_base_url(base_url)?;
        let client = transport::client(HeaderMap::new(), transport)
            .map_err(|e| GenericBrokerConfigError::Client(e.to_string()))?;
        Ok(GenericBroker {
            client,
            base,
            auth: Auth::Bearer(source),
            rate_limit: Mutex::new(None),
        })
    }

    /// The stream of the same account (`GET /v1/stream`): its order events and
    /// quotes, on one connection. `symbol_limit`: the most quote symbols the
    /// broker streams at once (broker-sim's `--stream-symbol-limit`).
    pub fn stream(&self, transport: &Transport, symbol_limit: usize) -> GenericStream {
        GenericStream {
            url: self.url(&["stream"]),
            auth: self.auth.clone(),
            connect_timeout: transport.connect_timeout,
            symbol_limit,
            link: tokio::sync::Mutex::new(None),
        }
    }

    /// `base/v1/<segments>` (see `transport::versioned_url`).
    fn url(&self, segments: &[&str]) -> Url {
        transport::versioned_url(&self.base, "v1", segments)
    }

    fn object_url(&self, collection: &str, id: &str) -> Result<Url, BrokerError> {
        transport::object_url(&self.base, "v1", collection, id)
    }

    fn list_url(&self, collection: &str, page: &PageRequest) -> Url {
        let mut url = self.url(&[collection]);
        url.query_pairs_mut()
            .append_pair("limit", &page.limit.to_string());
        if let Some(cursor) = &page.cursor {
            url.query_pairs_mut().append_pair("cursor", cursor);
        }
        url
    }

    /// Sends one request and reads the whole answer. With a bearer source, a 401
    /// is the token's fault (expired early, revoked): the same request goes once
    /// more with the next token. A submit resends with its `Idempotency-Key`, and
    /// the broker acted on neither a 401 nor, by the key, twice.
    async fn call<T: DeserializeOwned>(
        &self,
        request: RequestBuilder,
        on_404: On404,
    ) -> Result<Reply<T>, BrokerError> {
        let source = match &self.auth {
            Auth::ApiKey(key) => return self.call_once(request, on_404, key).await,
            Auth::Bearer(source) => source,
        };
        let again = request.try_clone();
        let token = source.bearer().await?;
        let first = self
            .call_once(authorized(request, &token)?, on_404, &token)
            .await;
        match (first, again) {
            (Err(BrokerError::Unauthorized), Some(again)) => {
                source.invalidate(&token);
                let token = source.bearer().await?;
                self.call_once(authorized(again, &token)?, on_404, &token)
                    .await
            }
            (first, _) => first,
        }
    }

    /// One round trip, recording `status` and `latency_ms` on the caller's span
    /// and the rate-limit headers on `self`; `secret` is cut out of logged bodies.
    async fn call_once<T: DeserializeOwned>(
        &self,
        request: RequestBuilder,
        on_404: On404,
        secret: &Secret,
    ) -> Result<Reply<T>, BrokerError> {
        let span = tracing::Span::current();
        let started = Instant::now();
        let outcome = transport::exchange(request, &self.rate_limit).await;
        span.record("latency_ms", started.elapsed().as_millis() as u64);
        let transport::Exchange {
            status,
            headers,
            body,
            received_at,
        } = outcome?;
        span.record("status", status.as_u16());
        if !status.is_success() {
            let err = errors::status_error(status, &headers, &body, on_404, secret);
            if status.is_server_error() || status.as_u16() == 429 {
                tracing::warn!(error = %err, "broker answered with an error");
            } else {
                tracing::debug!(error = %err, "broker answered with an error");
            }
            return Err(err);
        }
        let replayed = headers
            .get("idempotent-replayed")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"));
        match serde_json::from_slice::<T>(&body) {
            Ok(body) => {
                tracing::debug!("broker answered");
                Ok(Reply {
                    body,
                    replayed,
                    received_at,
                })
            }
            Err(err) => Err(transport::decode_error(&err, &body, secret)),
        }
    }
}

fn authorized(request: RequestBuilder, token: &Secret) -> Result<RequestBuilder, BrokerError> {
    let header = transport::bearer_header(token).ok_or_else(|| {
        BrokerError::TokenUnavailable("the access token cannot go in an HTTP header".into())
    })?;
    Ok(request.header(AUTHORIZATION, header))
}

/// See `check_base_url`; the dialect's version is `/v1`.
fn parse_base_url(raw: &str) -> Result<Url, GenericBrokerConfigError> {
    transport::check_base_url(raw, "/v1").map_err(|reason| GenericBrokerConfigError::BaseUrl {
        url: raw.to_owned(),
        reason,
    })
}
