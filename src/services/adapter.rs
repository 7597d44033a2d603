//! Chooses and builds an account's broker adapter from its dialect: the generic v1
//! dialect or Alpaca, at the account's URL, or on the embedded paper broker
//! (serving the chosen dialect) for `default` when no broker is configured.

use std::sync::Arc;

use super::StartError;
use crate::broker::alpaca::{AlpacaBroker, AlpacaBrokerConfig};
use crate::broker::generic::{GenericBroker, GenericBrokerConfig, GenericBrokerConfigError};
use crate::broker::transport::{load_roots, Transport};
use crate::broker::{Broker, OrderStream};
use crate::config::{Account, BrokerKind, Config, Credentials};
use crate::secret::Secret;
use crate::tokens::{TokenSource, TokenStore};

/// The adapter, and what identifies the account behind it.
pub(super) struct Endpoint {
    pub broker: Arc<dyn Broker>,
    /// The same account's order-event stream.
    pub stream: Arc<dyn OrderStream>,
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
    let mut tokens = None;
    let (broker, stream, identity): (Arc<dyn Broker>, Arc<dyn OrderStream>, Secret) =
        match credentials {
            Credentials::ApiKey(api_key) => {
                let broker = GenericBroker::new(GenericBrokerConfig {
                    base_url: url.clone(),
                    api_key: api_key.clone(),
                    transport: transport.clone(),
                })?;
                let stream = broker.order_stream(&transport);
                (Arc::new(broker), Arc::new(stream), api_key)
            }
            Credentials::Alpaca { key_id, secret } => {
                let identity =
                    Secret::new(format!("alpaca\0{}\0{}", key_id.expose(), secret.expose()));
                let broker = AlpacaBroker::new(AlpacaBrokerConfig {
                    base_url: url.clone(),
                    key_id,
                    secret,
                    transport: transport.clone(),
                })?;
                let stream = broker.order_stream(&transport);
                (Arc::new(broker), Arc::new(stream), identity)
            }
            Credentials::OAuth(oauth) => {
                let store = store.ok_or(StartError::NoStoreKey)?;
                let http = crate::broker::transport::client(Default::default(), &transport)
                    .map_err(|e| {
                        StartError::Broker(GenericBrokerConfigError::Client(e.to_string()))
                    })?;
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
                tokens = Some(source.clone());
                let broker = GenericBroker::with_bearer(&url, source, &transport)?;
                let stream = broker.order_stream(&transport);
                // The client, not a token: tokens change, the account does not.
                let identity = Secret::new(format!(
                    "oauth\0{}\0{}\0{}",
                    oauth.token_url.trim(),
                    oauth.client_id,
                    oauth.client_secret.expose()
                ));
                (Arc::new(broker), Arc::new(stream), identity)
            }
        };
    Ok(Endpoint {
        broker,
        stream,
        url,
        identity,
        tokens,
        #[cfg(feature = "embedded-sim")]
        embedded,
    })
}
