//! Quotes: the `Quote` type, the DataLoader behind `quote(symbol)` and
//! `Instrument.quote`, and the checks a `quotes` subscription passes before
//! anything is subscribed upstream.
//!
//! A page of instruments asking for their quotes costs one broker call: the
//! loader batches the page's symbols into one snapshot (cached `cache.quote_ttl_ms`
//! by the cache below), and serves a symbol that is streamed live from the
//! `streams::QuoteHub` instead, at no broker cost.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_graphql::dataloader::{DataLoader, Loader};
use async_graphql::{Context, Object};
use chrono::{DateTime, Utc};
use futures::{Stream, StreamExt};

use super::error::{GatewayError, GqlResult};
use super::scalars::Decimal;
use super::InstrumentLoader;
use crate::broker::Broker;
use crate::domain;
use crate::request::RequestScope;
use crate::streams::{QuoteHub, QuotesRefused, Tick};

/// What every request's quote loader and the `quotes` subscription share.
#[derive(Clone)]
pub struct Quotes {
    pub(crate) hub: QuoteHub,
    /// How long a quote is fresh: a stored response built on a live quote is
    /// reused no longer than on a REST snapshot.
    pub(crate) ttl: Duration,
    /// `subscriptions.max_symbols`: the most symbols in one `quotes` subscription.
    pub(crate) max_symbols: usize,
}

impl Quotes {
    pub(super) fn loader<S, R>(
        &self,
        broker: Arc<dyn Broker>,
        spawner: S,
    ) -> DataLoader<QuoteLoader>
    where
        S: Fn(futures::future::BoxFuture<'static, ()>) -> R + Send + Sync + 'static,
    {
        let loader = QuoteLoader {
            broker,
            quotes: self.clone(),
        };
        DataLoader::new(loader, spawner)
    }

    /// The quotes of `symbols` as they change, after checking them: none, more
    /// than `max_symbols`, unknown ones, or beyond the broker's limit are refused
    /// before anything is subscribed.
    pub(super) async fn watch(
        &self,
        ctx: &Context<'_>,
        symbols: Vec<String>,
    ) -> GqlResult<impl Stream<Item = GqlResult<Quote>>> {
        if symbols.is_empty() {
            return Err(GatewayError::BadUserInput(
                "`symbols` must name at least one symbol".into(),
            ));
        }
        if symbols.len() > self.max_symbols {
            return Err(GatewayError::TooComplex(format!(
                "a `quotes` subscription may name at most {} symbols (subscriptions.max_symbols); \
                 this one names {}",
                self.max_symbols,
                symbols.len()
            )));
        }
        let mut distinct: Vec<String> = Vec::with_capacity(symbols.len());
        for symbol in symbols {
            if !distinct.contains(&symbol) {
                distinct.push(symbol);
            }
        }
        let instruments = ctx.data::<DataLoader<InstrumentLoader>>()?;
        let known = instruments.load_many(distinct.iter().cloned()).await?;
        let unknown: Vec<&str> = distinct
            .iter()
            .filter(|s| !known.contains_key(*s))
            .map(String::as_str)
            .collect();
        if !unknown.is_empty() {
            return Err(GatewayError::BadUserInput(format!(
                "unknown symbols: {}",
                unknown.join(", ")
            )));
        }
        let ticks = self
            .hub
            .subscribe(distinct)
            .map_err(|refused| match refused {
                QuotesRefused::SymbolLimit { .. } => GatewayError::TooComplex(refused.to_string()),
            })?;
        // A refusal by the broker ends the subscription after its error.
        Ok(ticks.scan(false, |refused, tick| {
            let item = match (*refused, tick) {
                (true, _) => return futures::future::ready(None),
                (false, Tick::Quote(quote)) => Ok(Quote(quote)),
                (false, Tick::Refused(why)) => {
                    *refused = true;
                    Err(GatewayError::TooComplex(why.to_string()))
                }
            };
            futures::future::ready(Some(item))
        }))
    }
}

/// Batches the quotes asked for within one request (or one subscription event).
pub(crate) struct QuoteLoader {
    broker: Arc<dyn Broker>,
    quotes: Quotes,
}

impl Loader<String> for QuoteLoader {
    type Value = Arc<domain::Quote>;
    type Error = GatewayError;

    async fn load(
        &self,
        symbols: &[String],
    ) -> Result<HashMap<String, Arc<domain::Quote>>, GatewayError> {
        let mut found = HashMap::with_capacity(symbols.len());
        let mut snapshot = Vec::new();
        for symbol in symbols {
            match self.quotes.hub.latest(symbol, self.quotes.ttl) {
                Some(live) => {
                    let age = (Utc::now() - live.as_of).to_std().unwrap_or_default();
                    RequestScope::record_fresh(
                        Instant::now() + self.quotes.ttl.saturating_sub(age),
                    );
                    found.insert(symbol.clone(), live);
                }
                None => snapshot.push(symbol.clone()),
            }
        }
        if !snapshot.is_empty() {
            for quote in self.broker.quotes(&snapshot).await? {
                found.insert(quote.symbol.clone(), Arc::new(quote));
            }
        }
        Ok(found)
    }
}

/// Reads the quotes of a whole page in one batch before its objects resolve, so the
/// page costs one snapshot however the objects' `quote` fields happen to be
/// scheduled: each of those then finds its quote cached by symbol.
pub(super) async fn prefetch_quotes(
    ctx: &Context<'_>,
    symbols: impl Iterator<Item = String>,
) -> GqlResult<()> {
    let loader = ctx.data::<DataLoader<QuoteLoader>>()?;
    // Best effort: a failed snapshot is each `quote` field's error, not the page's.
    let _ = loader.load_many(symbols).await;
    Ok(())
}

pub(super) async fn load_quote(ctx: &Context<'_>, symbol: &str) -> GqlResult<Option<Quote>> {
    let loader = ctx.data::<DataLoader<QuoteLoader>>()?;
    Ok(loader.load_one(symbol.to_owned()).await?.map(Quote))
}

pub(super) struct Quote(pub Arc<domain::Quote>);

/// The best bid and ask in a symbol, and its last trade where the broker reports
/// it (Alpaca's quotes do not: `last` is null there).
#[Object]
impl Quote {
    async fn symbol(&self) -> &str {
        &self.0.symbol
    }
    async fn bid(&self) -> Option<Decimal> {
        self.0.bid.map(Decimal)
    }
    async fn bid_size(&self) -> Option<Decimal> {
        self.0.bid_size.map(Decimal)
    }
    async fn ask(&self) -> Option<Decimal> {
        self.0.ask.map(Decimal)
    }
    async fn ask_size(&self) -> Option<Decimal> {
        self.0.ask_size.map(Decimal)
    }
    async fn last(&self) -> Option<Decimal> {
        self.0.last.map(Decimal)
    }
    /// When the broker stamped the quote.
    async fn at(&self) -> DateTime<Utc> {
        self.0.at
    }
    /// When the gateway received it, over REST or the stream.
    async fn as_of(&self) -> DateTime<Utc> {
        self.0.as_of
    }
}
