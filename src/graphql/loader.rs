//! Batches `Position.instrument` / `Order.instrument` lookups within one request,
//! so a page of 100 positions costs one lookup per distinct symbol, not 100.

use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::dataloader::Loader;
use futures::future::join_all;

use super::error::GatewayError;
use crate::broker::{Broker, BrokerError};
use crate::domain::Instrument;

pub struct InstrumentLoader {
    broker: Arc<dyn Broker>,
}

impl InstrumentLoader {
    pub fn new(broker: Arc<dyn Broker>) -> Self {
        InstrumentLoader { broker }
    }
}

impl Loader<String> for InstrumentLoader {
    type Value = Instrument;
    type Error = GatewayError;

    async fn load(&self, symbols: &[String]) -> Result<HashMap<String, Instrument>, GatewayError> {
        let lookups = symbols.iter().map(|s| self.broker.instrument(s));
        let mut found = HashMap::with_capacity(symbols.len());
        for (symbol, result) in symbols.iter().zip(join_all(lookups).await) {
            match result {
                Ok(instrument) => {
                    found.insert(symbol.clone(), instrument);
                }
                Err(BrokerError::NotFound) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(found)
    }
}
