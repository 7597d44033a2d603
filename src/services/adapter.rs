//! Chooses and builds an account's broker adapter from its dialect: the generic v1
//! dialect or Alpaca, at the account's URL, or on the embedded paper broker
//! (serving the chosen dialect) for `default` when no broker is configured.

use std::sync::Arc;

use super::StartError;
use crate::broker::alpaca::{default_data_urls, AlpacaBroker, AlpacaBrokerConfig};
use crate::broker::generic::{GenericBroker, GenericBrokerConfig, GenericBrokerConfigError};
use crate::broker::transport::{load_roots, Transport};
use crate::broker::{Broker, OrderStream, QuoteStream};
use crate::config::{Account, BrokerKind, Config, Credentials, DEFAULT_ACCOUNT};
use crate::secret::Secret;
use crate::tokens::{TokenSource, TokenStore};

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
    /// The account's OAuth tokens, if it has them (for the expiry gauge).
    pub tokens: Option<Arc<TokenSource>>,
    #[cfg(feature = "embedded-sim")]
    pub embedded: Option<crate::embedded::EmbeddedBroker>,
}

/// The adapter of `account`: its broker at its URL with its credentials, or the
/// embedded paper broker for `default` when no broker is configured.
pub(super) async fn connect(
    config: &Config,
    account: &Account,
    store: Option<&Arc<dyn TokenStore>>,
) -> Result<Endpoint, StartError> {
    let b = &config.broker;
    #[cfg(feature = "embedded-sim")]
    let mut embedded = None;
    let (url, credentials) = match (&account.url, &account.credentials) {
        (Some(url), Some(credentials)) => (url.clone(), credentials.clone()),
        _ => {
            #[cfg(feature = "embedded-sim")]
            {
                let sim = crate::embedded::start(&config.paper, account.kind)
                    .await
                    .map_err(StartError::Embedded)?;
                let credentials = match account.kind {
                    BrokerKind::Generic => Credentials::ApiKey(sim.api_key.clone()),
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
    // `broker.data_url` and `broker.data_stream_url` are the `default` account's.
    let own = |setting: Option<&String>| setting.filter(|_| account.id == DEFAULT_ACCOUNT).cloned();
    let endpoint = match credentials {
        Credentials::ApiKey(api_key) => {
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
                tokens: None,
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
                data_url: own(b.data_url.as_ref()).unwrap_or(data_url),
                feed: b.feed,
            })?;
            let stream_url = own(b.data_stream_url.as_ref()).unwrap_or(data_stream_url);
            Endpoint {
                stream: Arc::new(broker.order_stream(&transport)),
                quotes: Arc::new(broker.data_stream(&transport, &stream_url, limit)?),
                broker: Arc::new(broker),
                url,
                identity,
                tokens: None,
                #[cfg(feature = "embedded-sim")]
                embedded: None,
            }
        }
        Credentials::OAuth(oauth) => {
            let store = store.ok_or(StartError::NoStoreKey)?;
            let http = crate::broker::transport::client(Default::default(), &transport)
                .map_err(|e| StartError::Broker(GenericBrokerConfigError::Client(e.to_string())))?;
            let source = TokenSource::new(
                &account.id,
                &oauth,
                config.oauth.refresh_before,
                store.clone(),
                http,
            )
            .map_err(|reason| StartError::OAuth {
                account: account.id.clone(),
                reason,
            })?;
            let source = Arc::new(source);
            let broker = GenericBroker::with_bearer(&url, source.clone(), &transport)?;
            let stream = Arc::new(broker.stream(&transport, limit));
            // The client, not a token: tokens change, the account does not.
            let identity = Secret::new(format!(
                "oauth\0{}\0{}\0{}",
                oauth.token_url.trim(),
                oauth.client_id,
                oauth.client_secret.expose()
            ));
            Endpoint {
                broker: Arc::new(broker),
                stream: stream.clone(),
                quotes: stream,
                url,
                identity,
                tokens: Some(source),
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
