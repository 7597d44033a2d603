//! The `alpaca` adapter: Alpaca's Trading API v2 behind the `Broker` trait.
//!
//! Alpaca differs from the generic dialect in ways the layers above must not see:
//! its idempotency is a `client_order_id` that refuses a duplicate (422) instead of
//! replaying it, its lists have no cursors, its cancel answers 204 before the order
//! is cancelled, and its assets carry no tick size or trading hours. This module
//! closes each gap (see `routes` and `paging`), so the cache, the throttle, Relay and
//! idempotency work over Alpaca unchanged. Like the generic adapter it does no
//! retries and no caching of its own beyond the slow-changing asset list and calendar.

mod client_id;
mod data_stream;
mod mapping;
mod market_data;
mod paging;
mod response;
mod routes;
mod stream;
mod submit;
mod trading;
mod wire;

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, NaiveDate, Utc};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::{Client, RequestBuilder, Url};
use serde::de::DeserializeOwned;

use self::response::Expect;
use crate::broker::transport;
pub use crate::broker::transport::Transport;
use crate::broker::{BrokerError, RateLimitSnapshot};
use crate::domain::{Instrument, TradingHours};
use crate::secret::Secret;
pub use data_stream::AlpacaDataStream;
pub use market_data::{default_data_urls, Feed, DATA_STREAM_URL, DATA_URL};
pub use stream::AlpacaStream;

/// Alpaca's paper-trading endpoint: the default for `--broker alpaca`.
pub const PAPER_URL: &str = "https://paper-api.alpaca.markets";
/// Alpaca's live endpoint: real money, only when configured explicitly.
pub const LIVE_URL: &str = "https://api.alpaca.markets";

/// How long the whole asset list is reused between pages: Alpaca sends all assets
/// (tens of thousands) in one answer, and a walk over them asks for many pages.
const ASSETS_TTL: Duration = Duration::from_secs(60);

/// How to reach one Alpaca account.
#[derive(Clone, Debug)]
pub struct AlpacaBrokerConfig {
    /// Base URL without `/v2`, e.g. [`PAPER_URL`].
    pub base_url: String,
    pub key_id: Secret,
    pub secret: Secret,
    pub transport: Transport,
    /// The market-data REST host (see [`default_data_urls`]).
    pub data_url: String,
    pub feed: Feed,
}

/// Why an `AlpacaBroker` could not be built: always an operator's configuration.
#[derive(Debug, thiserror::Error)]
pub enum AlpacaBrokerConfigError {
    #[error("Alpaca URL {url:?} is not usable: {reason}")]
    BaseUrl { url: String, reason: String },
    #[error("the Alpaca key id or secret is empty or cannot go in an HTTP header")]
    Credentials,
    #[error("could not build the HTTP client: {0}")]
    Client(String),
}

/// One Alpaca account over the Trading API v2, with one pooled HTTP client.
pub struct AlpacaBroker {
    client: Client,
    base: Url,
    /// The market-data host, for quotes.
    data: Url,
    feed: Feed,
    /// For the trade-updates stream, which authenticates in a message.
    key_id: Secret,
    /// Kept to redact it from logged bodies, and for the stream.
    secret: Secret,
    rate_limit: Mutex<Option<RateLimitSnapshot>>,
    /// Alpaca's whole asset list, as the last `GET /v2/assets` gave it. Kept in the
    /// adapter, not in `cache/`, because it exists only to turn Alpaca's one
    /// unpaged answer into the cursor pages every other dialect serves: the cache
    /// above still caches those pages like any broker's, with the same TTLs and
    /// invalidation, and never sees this list.
    assets: Mutex<Option<(Instant, Arc<Vec<Instrument>>)>>,
    /// The regular session from `/v2/calendar`, per New York date it was read on.
    hours: Mutex<Option<(NaiveDate, Option<TradingHours>)>>,
}

impl fmt::Debug for AlpacaBroker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AlpacaBroker")
            .field("base", &self.base.as_str())
            .finish_non_exhaustive()
    }
}

/// A decoded 2xx answer and when it arrived (the domain objects' `as_of`).
struct Reply<T> {
    body: T,
    received_at: DateTime<Utc>,
}

impl AlpacaBroker {
    pub fn new(config: AlpacaBrokerConfig) -> Result<AlpacaBroker, AlpacaBrokerConfigError> {
        let base = parse_base_url(&config.base_url)?;
        let data = parse_base_url(&config.data_url)?;
        let header = |value: &Secret| {
            if value.expose().trim().is_empty() {
                return Err(AlpacaBrokerConfigError::Credentials);
            }
            let mut v = HeaderValue::try_from(value.expose())
                .map_err(|_| AlpacaBrokerConfigError::Credentials)?;
            v.set_sensitive(true);
            Ok(v)
        };
        let mut headers = HeaderMap::new();
        headers.insert(
            HeaderName::from_static("apca-api-key-id"),
            header(&config.key_id)?,
        );
        headers.insert(
            HeaderName::from_static("apca-api-secret-key"),
            header(&config.secret)?,
        );
        let client = transport::client(headers, &config.transport)
            .map_err(|e| AlpacaBrokerConfigError::Client(e.to_string()))?;
        Ok(AlpacaBroker {
            client,
            base,
            data,
            feed: config.feed,
            key_id: config.key_id,
            secret: config.secret,
            rate_limit: Mutex::new(None),
            assets: Mutex::new(None),
            hours: Mutex::new(None),
        })
    }

    /// The trade-updates stream of the same account: `/stream` beside `/v2`, as
    /// Alpaca serves it (`wss://paper-api.alpaca.markets/stream`).
    pub fn order_stream(&self, transport: &Transport) -> AlpacaStream {
        let mut url = self.base.clone();
        url.path_segments_mut()
            .expect("a checked base URL has path segments")
            .pop_if_empty()
            .push("stream");
        AlpacaStream {
            url,
            key_id: self.key_id.clone(),
            secret: self.secret.clone(),
            connect_timeout: transport.connect_timeout,
        }
    }

    /// The market-data stream of the same key: `stream_url/v2/<feed>`. `symbol_limit`:
    /// the most quote symbols the plan streams (30 on Alpaca's free IEX plan).
    pub fn data_stream(
        &self,
        transport: &Transport,
        stream_url: &str,
        symbol_limit: usize,
    ) -> Result<AlpacaDataStream, AlpacaBrokerConfigError> {
        // Checked as the HTTP URL the upgrade starts from: `wss` is `https`.
        let http = match stream_url.trim().split_once("://") {
            Some(("wss", rest)) => format!("https://{rest}"),
            Some(("ws", rest)) => format!("http://{rest}"),
            _ => stream_url.to_owned(),
        };
        let base = transport::ws_url(parse_base_url(&http)?);
        Ok(AlpacaDataStream {
            url: transport::versioned_url(&base, "v2", &[self.feed.as_str()]),
            key_id: self.key_id.clone(),
            secret: self.secret.clone(),
            connect_timeout: transport.connect_timeout,
            symbol_limit,
        })
    }

    /// `base/v2/<segments>` (see `transport::versioned_url`).
    fn url(&self, segments: &[&str]) -> Url {
        transport::versioned_url(&self.base, "v2", segments)
    }

    fn object_url(&self, collection: &str, id: &str) -> Result<Url, BrokerError> {
        transport::object_url(&self.base, "v2", collection, id)
    }

    /// Sends one request and decodes a 2xx JSON body.
    async fn call<T: DeserializeOwned>(
        &self,
        request: RequestBuilder,
        expect: Expect,
    ) -> Result<Reply<T>, BrokerError> {
        let exchange = self.checked(request, expect).await?;
        match serde_json::from_slice::<T>(&exchange.body) {
            Ok(body) => Ok(Reply {
                body,
                received_at: exchange.received_at,
            }),
            Err(err) => Err(transport::decode_error(&err, &exchange.body, &self.secret)),
        }
    }

    /// Sends one request; any 2xx is success, whatever its body (the 204 of a cancel).
    async fn checked(
        &self,
        request: RequestBuilder,
        expect: Expect,
    ) -> Result<transport::Exchange, BrokerError> {
        let span = tracing::Span::current();
        let started = Instant::now();
        let outcome = transport::exchange(request, &self.rate_limit).await;
        span.record("latency_ms", started.elapsed().as_millis() as u64);
        let exchange = outcome?;
        span.record("status", exchange.status.as_u16());
        if exchange.status.is_success() {
            tracing::debug!("broker answered");
            return Ok(exchange);
        }
        let err = response::status_error(
            exchange.status,
            &exchange.headers,
            &exchange.body,
            expect,
            &self.secret,
        );
        if exchange.status.is_server_error() || exchange.status.as_u16() == 429 {
            tracing::warn!(error = %err, "broker answered with an error");
        } else {
            tracing::debug!(error = %err, "broker answered with an error");
        }
        Err(err)
    }
}

/// See `check_base_url`; the dialect's version is `/v2`.
fn parse_base_url(raw: &str) -> Result<Url, AlpacaBrokerConfigError> {
    transport::check_base_url(raw, "/v2").map_err(|reason| AlpacaBrokerConfigError::BaseUrl {
        url: raw.to_owned(),
        reason,
    })
}
