//! The embedded paper broker: with no `--broker-url`, `brokergraph serve` starts
//! broker-sim in-process on a loopback port and talks to it over real HTTP through
//! the configured adapter (broker-sim serves the generic or the Alpaca dialect), so
//! the demo exercises the whole stack.

use std::str::FromStr;

use crate::config::{BrokerKind, PaperSettings};
use crate::secret::Secret;

pub(crate) struct EmbeddedBroker {
    handle: broker_sim::SimHandle,
    pub url: String,
    pub api_key: Secret,
}

pub(crate) async fn start(
    paper: &PaperSettings,
    kind: BrokerKind,
) -> std::io::Result<EmbeddedBroker> {
    let api_key = format!("paper-{}", uuid::Uuid::new_v4().simple());
    let cash = rust_decimal::Decimal::from_str(&paper.cash).map_err(|e| {
        std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("paper.cash: {e}"))
    })?;
    let config = broker_sim::SimConfig {
        listen: "127.0.0.1:0".parse().expect("a literal address"),
        api_keys: vec![api_key.clone()],
        admin_token: None,
        seed: paper.seed,
        cash,
        instruments: paper.instruments,
        positions: paper.positions,
        dialect: match kind {
            BrokerKind::Generic => broker_sim::Dialect::Generic,
            BrokerKind::Alpaca => broker_sim::Dialect::Alpaca,
        },
        ..broker_sim::SimConfig::default()
    };
    let handle = broker_sim::spawn(config).await?;
    let url = handle.base_url();
    tracing::warn!(
        broker_url = %url,
        dialect = kind.as_str(),
        "trading on the embedded PAPER broker (simulated market, no real money); \
         set --broker-url and --broker-api-key (or BROKERGRAPH_BROKER_URL / BROKERGRAPH_BROKER_API_KEY) to use a real broker"
    );
    Ok(EmbeddedBroker {
        handle,
        url,
        api_key: Secret::new(api_key),
    })
}

impl EmbeddedBroker {
    pub(crate) async fn shutdown(self) {
        self.handle.shutdown().await;
    }
}
