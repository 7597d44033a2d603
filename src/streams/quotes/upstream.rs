//! The task that holds one credential's quote stream: connect, subscribe what is
//! watched, keep the broker's set equal to it as subscribers come and go, publish
//! each quote into its symbol's slot; reconnect with full-jitter backoff; stop
//! when nothing is watched any more (every symbol's linger over).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use futures::StreamExt;

use super::{Shared, Tick};
use crate::broker::{QuoteSession, StreamError};
use crate::domain::Quote;
use crate::resilience::Schedule;

/// From 1 s up to 30 s between attempts, as for order streams.
const RECONNECT: Schedule = Schedule {
    base: Duration::from_secs(1),
    cap: Duration::from_secs(30),
};

pub(super) async fn run(shared: Arc<Shared>) {
    let mut attempt = 0u32;
    loop {
        if shared.stop_if_unwatched() {
            tracing::info!("no quote watched any more: closing the quote stream");
            return;
        }
        match shared.source.open().await {
            Err(e) => {
                tracing::warn!(error = %e, attempt, "could not open the quote stream");
            }
            Ok(session) => {
                attempt = 0;
                tracing::info!("quote stream connected");
                let end = follow(&shared, session).await;
                shared.not_streaming();
                match end {
                    Ok(()) => continue,
                    Err(e) => tracing::warn!(reason = %e, "quote stream ended; reconnecting"),
                }
            }
        }
        tokio::time::sleep(RECONNECT.draw(attempt)).await;
        attempt = attempt.saturating_add(1);
    }
}

/// What the broker must add and drop to stream exactly the wanted symbols, and
/// when the next lingering symbol stops being wanted.
struct Change {
    add: Vec<String>,
    remove: Vec<String>,
    next_expiry: Option<Instant>,
}

/// Follows one connection until it ends (`Err`) or nothing is watched (`Ok`).
async fn follow(shared: &Shared, session: QuoteSession) -> Result<(), StreamError> {
    let QuoteSession {
        symbols,
        mut quotes,
    } = session;
    let mut subscribed: HashSet<String> = HashSet::new();
    loop {
        let change = shared.change(&subscribed);
        if !change.remove.is_empty() {
            symbols.unsubscribe(&change.remove).await?;
            for s in &change.remove {
                subscribed.remove(s);
            }
        }
        if !change.add.is_empty() {
            match symbols.subscribe(&change.add).await {
                Ok(()) => {
                    shared.streaming(&change.add);
                    subscribed.extend(change.add);
                }
                Err(StreamError::Refused { code, message }) => {
                    tracing::error!(%code, %message, symbols = change.add.len(),
                        "the broker refused to stream symbols: broker.quote_symbol_limit is above its limit");
                    shared.refuse(&change.add, &format!("the broker refused: {message}"));
                }
                Err(e) => return Err(e),
            }
        }
        if subscribed.is_empty() && shared.stop_if_unwatched() {
            return Ok(());
        }
        let expiry = change.next_expiry;
        tokio::select! {
            item = quotes.next() => match item {
                Some(Ok(quote)) => shared.publish(quote),
                Some(Err(e)) => return Err(e),
                None => return Err(StreamError::Closed("the broker closed the quote stream".into())),
            },
            _ = shared.wake.notified() => {}
            _ = sleep_until(expiry) => {}
        }
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

impl Shared {
    /// Forgets symbols whose linger is over; with none left, the task stops (under
    /// the lock, so a subscriber arriving now starts a new one).
    fn stop_if_unwatched(&self) -> bool {
        let mut state = self.lock();
        let now = Instant::now();
        let linger = self.linger;
        state.symbols.retain(|_, w| w.wanted(now, linger));
        if state.symbols.is_empty() {
            state.running = false;
            return true;
        }
        false
    }

    fn change(&self, subscribed: &HashSet<String>) -> Change {
        let mut state = self.lock();
        let now = Instant::now();
        let linger = self.linger;
        state.symbols.retain(|_, w| w.wanted(now, linger));
        let add = state
            .symbols
            .keys()
            .filter(|s| !subscribed.contains(*s))
            .cloned()
            .collect();
        let remove = subscribed
            .iter()
            .filter(|s| !state.symbols.contains_key(*s))
            .cloned()
            .collect();
        let next_expiry = state
            .symbols
            .values()
            .filter_map(|w| w.idle_since)
            .min()
            .map(|idle| idle + linger);
        Change {
            add,
            remove,
            next_expiry,
        }
    }

    fn streaming(&self, symbols: &[String]) {
        let mut state = self.lock();
        for s in symbols {
            if let Some(w) = state.symbols.get_mut(s) {
                w.streaming = true;
            }
        }
    }

    fn not_streaming(&self) {
        for w in self.lock().symbols.values_mut() {
            w.streaming = false;
        }
    }

    /// Tells the symbols' subscribers and forgets the symbols, so the next
    /// subscriber of one is refused by the broker again rather than wait forever.
    fn refuse(&self, symbols: &[String], why: &str) {
        let mut state = self.lock();
        let why: Arc<str> = Arc::from(why);
        for s in symbols {
            if let Some(w) = state.symbols.remove(s) {
                w.slot.send_replace(Some(Tick::Refused(why.clone())));
            }
        }
    }

    fn publish(&self, quote: Quote) {
        let state = self.lock();
        if let Some(w) = state.symbols.get(&quote.symbol) {
            w.slot.send_replace(Some(Tick::Quote(Arc::new(quote))));
        }
    }
}
