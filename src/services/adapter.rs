//! Chooses and builds the broker adapter from `broker.kind`: the generic v1 dialect
//! or Alpaca, at the configured URL, or on the embedded paper broker (serving the
//! chosen dialect) when no broker is configured.

use std::sync::Arc;

use super::StartError;
use crate::broker::alpaca::{default_data_urls, AlpacaBroker, AlpacaBrokerConfig};
use crate::broker::generic::{GenericBroker, GenericBrokerConfig};
use crate::broker::transport::{load_roots, Transport};
use crate::broker::{Broker, OrderStream, QuoteStream};
use crate::config::{BrokerKind, Config};
use crate::secret::Secret;

/// The adapter, and what identifies the account behind it.
pub(super) struct Endpoint {
    pub broker: Arc<dyn Broker>,
    /// The same account's order-event stream.
    pub stream: Arc<dyn OrderStream>,
    /// The same credential's quote stream.
    pub quotes: Arc<dyn QuoteStream>,
    pub url: String,
    /// The credentials, for the account identity (cursor signing, idempotency and
    /// cache scopes): one account is one URL and one set of credentials.
    pub identity: Secret,
    #[cfg(feature = "embedded-sim")]
    pub embedded: Option<crate::embedded::EmbeddedBroker>,
}

/// The credentials a dialect authenticates with.
enum Credentials {
    Bearer(Secret),
    Alpaca { key_id: Secret, secret: Secret },
}

pub(super) async fn connect(config: &Config) -> Result<Endpoint, StartError> {
    let b = &config.broker;
    let configured = match (b.kind, &b.url, &b.api_key, &b.key_id, &b.secret) {
        (BrokerKind::Generic, Some(url), Some(key), _, _) => {
            Some((url.clone(), Credentials::Bearer(key.clone())))
        }
        (BrokerKind::Alpaca, Some(url), _, Some(key_id), Some(secret)) => Some((
            url.clone(),
            Credentials::Alpaca {
                key_id: key_id.clone(),
                secret: secret.clone(),
            },
        )),
        _ => None,
    };
    #[cfg(feature = "embedded-sim")]
    let mut embedded = None;
    let (url, credentials) = match configured {
        Some(endpoint) => endpoint,
        None => {
            #[cfg(feature = "embedded-sim")]
            {
                let sim = crate::embedded::start(&config.paper, b.kind)
                    .await
                    .map_err(StartError::Embedded)?;
                let credentials = match b.kind {
                    BrokerKind::Generic => Credentials::Bearer(sim.api_key.clone()),
                    // The paper broker takes its key as both key id and secret.
                    BrokerKind::Alpaca => Credentials::Alpaca {
                        key_id: sim.api_key.clone(),
                        secret: sim.api_key.clone(),
                    },
                };
                let url = sim.url.clone();
                embedded = Some(sim);
                (url, credentials)
            }
            #[cfg(not(feature = "embedded-sim"))]
            return Err(StartError::NoBroker);
        }
    };
    let transport = Transport {
        connect_timeout: b.connect_timeout,
        request_timeout: b.request_timeout,
        extra_roots: match &b.ca_file {
            Some(path) => load_roots(path).map_err(StartError::CaFile)?,
            None => Vec::new(),
        },
    };
    let limit = b.quote_symbol_limit;
    let endpoint = match credentials {
        Credentials::Bearer(api_key) => {
            let broker = GenericBroker::new(GenericBrokerConfig {
                base_url: url.clone(),
                api_key: api_key.clone(),
                transport: transport.clone(),
            })?;
            // Order events and quotes share the key's one stream connection.
            let stream = Arc::new(broker.stream(&transport, limit));
            Endpoint {
                broker: Arc::new(broker),
                stream: stream.clone(),
                quotes: stream,
                url,
                identity: api_key,
                #[cfg(feature = "embedded-sim")]
                embedded: None,
            }
        }
        Credentials::Alpaca { key_id, secret } => {
            let identity = Secret::new(format!("alpaca\0{}\0{}", key_id.expose(), secret.expose()));
            let (data_url, data_stream_url) = default_data_urls(&url);
            let broker = AlpacaBroker::new(AlpacaBrokerConfig {
                base_url: url.clone(),
                key_id,
                secret,
                transport: transport.clone(),
                data_url: b.data_url.clone().unwrap_or(data_url),
                feed: b.feed,
            })?;
            let stream_url = b.data_stream_url.clone().unwrap_or(data_stream_url);
            Endpoint {
                stream: Arc::new(broker.order_stream(&transport)),
                quotes: Arc::new(broker.data_stream(&transport, &stream_url, limit)?),
                broker: Arc::new(broker),
                url,
                identity,
                #[cfg(feature = "embedded-sim")]
                embedded: None,
            }
        }
    };
    #[cfg(feature = "embedded-sim")]
    let endpoint = Endpoint {
        embedded,
        ..endpoint
    };
    Ok(endpoint)
}
