//! Quotes across replicas. The broker streams a credential's quotes on one
//! connection, which the replica holding the credential's stream lease owns
//! (`streams::relay`); every replica's hub still counts its own watchers, lingers
//! and conflates as in one process, but its "broker" is Redis:
//! - `SharedQuoteStream` is the hub's `QuoteStream`: subscribing a symbol adds it
//!   to this replica's set in Redis (refused when the union across replicas would
//!   pass the broker's limit), and quotes arrive on the channel the holder
//!   publishes on. While it is open the replica contends for the lease, so some
//!   replica with watchers always holds the upstream.
//! - `QuotePump` runs in the holder: it keeps the broker's subscription equal to
//!   the union of every replica's set and publishes each quote to all of them.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt;

use crate::broker::{QuoteSession, QuoteStream, QuoteSymbols, StreamError};
use crate::cluster::symbols::SharedSymbols;
use crate::domain::Quote;
use crate::resilience::Schedule;
use crate::streams::{Demand, OrderFeed};

/// From 1 s up to 30 s between attempts, as for the broker's own streams.
const RECONNECT: Schedule = Schedule {
    base: Duration::from_secs(1),
    cap: Duration::from_secs(30),
};

/// A replica hub's quote source with replicas.
pub(crate) struct SharedQuoteStream {
    symbols: Arc<SharedSymbols>,
    /// The broker's limit, counted across replicas.
    limit: usize,
    /// Whose lease holder runs the upstream (one lease per credential).
    feed: OrderFeed,
}

impl SharedQuoteStream {
    pub(crate) fn new(symbols: Arc<SharedSymbols>, limit: usize, feed: OrderFeed) -> Self {
        SharedQuoteStream {
            symbols,
            limit,
            feed,
        }
    }
}

#[async_trait]
impl QuoteStream for SharedQuoteStream {
    async fn open(&self) -> Result<QuoteSession, StreamError> {
        let unreachable = |e: crate::cluster::RedisError| StreamError::Connect(e.to_string());
        let quotes = self.symbols.quotes().await.map_err(unreachable)?;
        let symbols = self.symbols.clone();
        let refresh = tokio::spawn(async move {
            loop {
                tokio::time::sleep(symbols.refresh_every()).await;
                if let Err(e) = symbols.refresh().await {
                    tracing::debug!(error = %e, "could not refresh this replica's quote symbols");
                }
            }
        });
        let watching = Watching {
            symbols: self.symbols.clone(),
            limit: self.limit,
            refresh,
            _demand: self.feed.demand(),
        };
        let quotes = quotes
            .filter_map(|payload| async move { serde_json::from_str::<Quote>(&payload).ok() })
            .map(|mut quote| {
                quote.as_of = chrono::Utc::now();
                Ok(quote)
            })
            .chain(futures::stream::once(async {
                Err(StreamError::Closed(
                    "the replicas' quote channel closed".into(),
                ))
            }))
            .boxed();
        Ok(QuoteSession {
            symbols: Box::new(watching),
            quotes,
        })
    }

    fn symbol_limit(&self) -> usize {
        self.limit
    }
}

/// This replica's symbols in Redis for one session; leaves the union when dropped.
struct Watching {
    symbols: Arc<SharedSymbols>,
    limit: usize,
    refresh: tokio::task::JoinHandle<()>,
    _demand: Demand,
}

#[async_trait]
impl QuoteSymbols for Watching {
    async fn subscribe(&self, symbols: &[String]) -> Result<(), StreamError> {
        match self.symbols.add(symbols, self.limit).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(union)) => Err(StreamError::Refused {
                code: "symbol_limit_exceeded".into(),
                message: format!(
                    "the broker streams at most {} symbols at once for this account, counted \
                     across replicas; {union} would be watched",
                    self.limit
                ),
            }),
            Err(e) => Err(StreamError::Closed(e.to_string())),
        }
    }

    async fn unsubscribe(&self, symbols: &[String]) -> Result<(), StreamError> {
        self.symbols
            .remove(symbols)
            .await
            .map_err(|e| StreamError::Closed(e.to_string()))
    }
}

impl Drop for Watching {
    fn drop(&mut self) {
        self.refresh.abort();
        let symbols = self.symbols.clone();
        tokio::spawn(async move {
            if let Err(e) = symbols.leave().await {
                tracing::debug!(error = %e, "could not leave the quote union; it lapses on its own");
            }
        });
    }
}

/// The holder's side: the broker's quote stream for the union of every replica.
pub(crate) struct QuotePump {
    source: Arc<dyn QuoteStream>,
    symbols: Arc<SharedSymbols>,
}

impl QuotePump {
    pub(crate) fn new(source: Arc<dyn QuoteStream>, symbols: Arc<SharedSymbols>) -> QuotePump {
        QuotePump { source, symbols }
    }

    /// Runs while this replica holds the credential's stream.
    pub(crate) async fn run(&self) {
        let mut attempt = 0u32;
        loop {
            self.until_wanted().await;
            match self.source.open().await {
                Err(e) => tracing::warn!(error = %e, attempt, "could not open the quote stream"),
                Ok(session) => {
                    attempt = 0;
                    tracing::info!("quote stream connected for the replicas");
                    match self.follow(session).await {
                        Ok(()) => continue,
                        Err(e) => tracing::warn!(reason = %e, "quote stream ended; reconnecting"),
                    }
                }
            }
            tokio::time::sleep(RECONNECT.draw(attempt)).await;
            attempt = attempt.saturating_add(1);
        }
    }

    /// Returns once some replica watches a symbol.
    async fn until_wanted(&self) {
        let mut changes = self.symbols.changes().await.ok();
        while !self.symbols.union().await.is_ok_and(|u| !u.is_empty()) {
            tokio::select! {
                message = next(&mut changes) => if message.is_none() { changes = None },
                _ = tokio::time::sleep(self.symbols.refresh_every()) => {}
            }
        }
    }

    /// Follows one connection until it ends (`Err`) or nothing is watched (`Ok`).
    async fn follow(&self, session: QuoteSession) -> Result<(), StreamError> {
        let QuoteSession {
            symbols,
            mut quotes,
        } = session;
        let mut changes = self.symbols.changes().await.ok();
        let mut subscribed: HashSet<String> = HashSet::new();
        let mut recompute = true;
        loop {
            if std::mem::take(&mut recompute) {
                // Redis unreadable: keep streaming what is subscribed.
                let wanted: HashSet<String> = match self.symbols.union().await {
                    Ok(union) => union.into_iter().collect(),
                    Err(_) => subscribed.clone(),
                };
                if wanted.is_empty() {
                    return Ok(());
                }
                self.change(&*symbols, &mut subscribed, &wanted).await?;
            }
            let poll = tokio::time::sleep(self.symbols.refresh_every());
            tokio::select! {
                item = quotes.next() => match item {
                    Some(Ok(quote)) => self.publish(&quote).await,
                    Some(Err(e)) => return Err(e),
                    None => return Err(StreamError::Closed("the broker closed the quote stream".into())),
                },
                message = next(&mut changes) => {
                    if message.is_none() {
                        changes = None;
                    }
                    recompute = true;
                }
                _ = poll => recompute = true,
            }
        }
    }

    /// Makes the broker stream exactly `wanted`.
    async fn change(
        &self,
        symbols: &dyn QuoteSymbols,
        subscribed: &mut HashSet<String>,
        wanted: &HashSet<String>,
    ) -> Result<(), StreamError> {
        let remove: Vec<String> = subscribed.difference(wanted).cloned().collect();
        if !remove.is_empty() {
            symbols.unsubscribe(&remove).await?;
            subscribed.retain(|s| wanted.contains(s));
        }
        let add: Vec<String> = wanted.difference(subscribed).cloned().collect();
        if !add.is_empty() {
            match symbols.subscribe(&add).await {
                Ok(()) => subscribed.extend(add),
                Err(StreamError::Refused { code, message }) => {
                    tracing::error!(%code, %message, symbols = add.len(),
                        "the broker refused to stream symbols: broker.quote_symbol_limit is above its limit");
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    async fn publish(&self, quote: &Quote) {
        let Ok(payload) = serde_json::to_string(quote) else {
            return;
        };
        if let Err(e) = self.symbols.publish(&payload).await {
            tracing::debug!(error = %e, "could not publish a quote to the replicas");
        }
    }
}

/// The next change notice; pending for ever without a channel.
async fn next(changes: &mut Option<futures::stream::BoxStream<'static, String>>) -> Option<String> {
    match changes {
        Some(stream) => stream.next().await,
        None => std::future::pending().await,
    }
}
