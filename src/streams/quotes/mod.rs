//! Live quotes: one upstream quote stream per broker credential, carrying the
//! union of what every subscriber watches.
//!
//! Brokers stream a limited number of symbols per credential (30 on broker-sim's
//! and Alpaca's free plans), so a `QuoteHub`:
//! - counts watchers per symbol and subscribes upstream exactly the symbols
//!   someone watches; a symbol nobody watches any more stays subscribed for
//!   `linger` (a page reload should not unsubscribe and resubscribe), then goes;
//! - refuses a subscription that would take the union beyond the broker's limit,
//!   naming the limit, instead of letting the broker drop symbols silently (a
//!   lingering symbol makes room first);
//! - keeps only the latest quote per symbol, in a `watch` slot every subscriber
//!   reads: a slow subscriber skips to the newest quote instead of queueing, so
//!   its memory stays one slot per symbol and it never holds up the others;
//! - answers `latest(symbol)` from the live value, so `quote(symbol)` costs no
//!   broker call while the symbol is streamed.

mod shared;
mod upstream;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::time::Instant;

use futures::stream::{self, BoxStream};
use futures::StreamExt;
use tokio::sync::{watch, Notify};

use crate::broker::QuoteStream;
use crate::domain::Quote;
use crate::metrics::QuoteMetrics;
pub(crate) use shared::{QuotePump, SharedQuoteStream};

/// What a symbol's slot holds.
#[derive(Clone, Debug)]
pub(crate) enum Tick {
    Quote(Arc<Quote>),
    /// The broker refused to stream the symbol (its limit is lower than
    /// `broker.quote_symbol_limit` says): the subscription ends with this error.
    Refused(Arc<str>),
}

/// Why a `quotes` subscription was refused before anything was subscribed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub(crate) enum QuotesRefused {
    #[error(
        "the broker streams at most {limit} symbols at once for this account, and \
         {watched} are watched; this subscription would need {needed} more"
    )]
    SymbolLimit {
        limit: usize,
        watched: usize,
        needed: usize,
    },
}

/// The live quotes of one broker credential.
#[derive(Clone)]
pub(crate) struct QuoteHub {
    shared: Arc<Shared>,
}

struct Shared {
    source: Arc<dyn QuoteStream>,
    linger: Duration,
    metrics: Arc<QuoteMetrics>,
    state: Mutex<State>,
    /// Told when the watched set changes.
    wake: Notify,
}

#[derive(Default)]
struct State {
    symbols: HashMap<String, Watched>,
    /// `quotes` subscriptions open now.
    subscriptions: usize,
    /// Whether the upstream task exists.
    running: bool,
}

struct Watched {
    watchers: usize,
    /// When the last watcher left; `None` while watched.
    idle_since: Option<Instant>,
    /// Whether the broker confirmed the symbol on the current connection: only
    /// then is the slot's quote live.
    streaming: bool,
    slot: watch::Sender<Option<Tick>>,
}

impl Watched {
    fn new() -> Watched {
        Watched {
            watchers: 0,
            idle_since: None,
            streaming: false,
            slot: watch::Sender::new(None),
        }
    }

    /// Watched now, or within the linger: to be subscribed upstream.
    fn wanted(&self, now: Instant, linger: Duration) -> bool {
        self.idle_since
            .is_none_or(|idle| now.saturating_duration_since(idle) < linger)
    }
}

impl QuoteHub {
    pub(crate) fn new(
        source: Arc<dyn QuoteStream>,
        linger: Duration,
        metrics: Arc<QuoteMetrics>,
    ) -> QuoteHub {
        QuoteHub {
            shared: Arc::new(Shared {
                source,
                linger,
                metrics,
                state: Mutex::new(State::default()),
                wake: Notify::new(),
            }),
        }
    }

    /// The most symbols watched at once across all subscribers.
    pub(crate) fn symbol_limit(&self) -> usize {
        self.shared.source.symbol_limit()
    }

    /// The streamed quote of `symbol`, while the broker streams it.
    pub(crate) fn latest(&self, symbol: &str) -> Option<Arc<Quote>> {
        let state = self.shared.lock();
        let watched = state.symbols.get(symbol).filter(|w| w.streaming)?;
        let tick = watched.slot.borrow().clone();
        match tick {
            Some(Tick::Quote(quote)) => Some(quote),
            _ => None,
        }
    }

    /// The quotes of `symbols` (distinct, known to the broker) as they change,
    /// starting with the current one of each symbol that has one. Refused, with
    /// nothing subscribed, when the union would exceed the broker's limit.
    pub(crate) fn subscribe(
        &self,
        symbols: Vec<String>,
    ) -> Result<BoxStream<'static, Tick>, QuotesRefused> {
        let shared = &self.shared;
        let limit = self.symbol_limit();
        let mut state = shared.lock();
        let needed = symbols
            .iter()
            .filter(|s| !state.symbols.contains_key(*s))
            .count();
        if state.symbols.len() + needed > limit {
            state.evict_idle(needed, limit, &symbols);
        }
        if state.symbols.len() + needed > limit {
            let watched = state.symbols.values().filter(|w| w.watchers > 0).count();
            return Err(QuotesRefused::SymbolLimit {
                limit,
                watched,
                needed,
            });
        }
        let mut slots = Vec::with_capacity(symbols.len());
        for symbol in &symbols {
            let watched = state
                .symbols
                .entry(symbol.clone())
                .or_insert_with(Watched::new);
            watched.watchers += 1;
            watched.idle_since = None;
            let mut rx = watched.slot.subscribe();
            if rx.borrow().is_some() {
                rx.mark_changed();
            }
            slots.push(rx);
        }
        state.subscriptions += 1;
        shared.metrics.set_subscriptions(state.subscriptions);
        if !state.running {
            state.running = true;
            tokio::spawn(upstream::run(shared.clone()));
        }
        drop(state);
        shared.wake.notify_one();
        let guard = Watching {
            shared: shared.clone(),
            symbols,
        };
        let ticks = stream::select_all(slots.into_iter().map(|rx| {
            stream::unfold(rx, |mut rx| async move {
                rx.changed().await.ok()?;
                let tick = rx.borrow_and_update().clone();
                Some((tick, rx))
            })
            .filter_map(|tick| async move { tick })
            .boxed()
        }));
        Ok(
            stream::unfold((ticks, guard), |(mut ticks, guard)| async move {
                let tick = ticks.next().await?;
                Some((tick, (ticks, guard)))
            })
            .boxed(),
        )
    }
}

impl State {
    /// Makes room for `needed` new symbols by dropping idle (lingering) ones that
    /// the new subscription does not ask for.
    fn evict_idle(&mut self, needed: usize, limit: usize, keep: &[String]) {
        let mut idle: Vec<(Instant, String)> = self
            .symbols
            .iter()
            .filter(|(s, w)| w.watchers == 0 && !keep.contains(s))
            .filter_map(|(s, w)| Some((w.idle_since?, s.clone())))
            .collect();
        idle.sort();
        for (_, symbol) in idle {
            if self.symbols.len() + needed <= limit {
                break;
            }
            self.symbols.remove(&symbol);
        }
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A subscriber's hold on its symbols: dropping it (the client unsubscribed or
/// went away) starts their linger.
struct Watching {
    shared: Arc<Shared>,
    symbols: Vec<String>,
}

impl Drop for Watching {
    fn drop(&mut self) {
        let now = Instant::now();
        let mut state = self.shared.lock();
        state.subscriptions = state.subscriptions.saturating_sub(1);
        self.shared.metrics.set_subscriptions(state.subscriptions);
        for symbol in &self.symbols {
            if let Some(watched) = state.symbols.get_mut(symbol) {
                watched.watchers = watched.watchers.saturating_sub(1);
                if watched.watchers == 0 {
                    watched.idle_since = Some(now);
                }
            }
        }
        drop(state);
        self.shared.wake.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use async_trait::async_trait;
    use futures::FutureExt;
    use tokio::sync::mpsc;

    use super::*;
    use crate::broker::{QuoteSession, QuoteSymbols, StreamError};

    type Pushed = mpsc::UnboundedReceiver<Result<Quote, StreamError>>;

    /// A broker quote stream in memory: what is subscribed, and a sender of quotes.
    #[derive(Clone, Default)]
    struct Broker {
        subscribed: Arc<Mutex<BTreeSet<String>>>,
        quotes: Arc<Mutex<Option<Pushed>>>,
    }

    impl Broker {
        fn with_sender() -> (Broker, mpsc::UnboundedSender<Result<Quote, StreamError>>) {
            let (tx, rx) = mpsc::unbounded_channel();
            let broker = Broker::default();
            *broker.quotes.lock().unwrap() = Some(rx);
            (broker, tx)
        }

        fn subscribed(&self) -> Vec<String> {
            self.subscribed.lock().unwrap().iter().cloned().collect()
        }
    }

    #[async_trait]
    impl QuoteStream for Broker {
        async fn open(&self) -> Result<QuoteSession, StreamError> {
            let rx = self.quotes.lock().unwrap().take().expect("opened once");
            let quotes =
                futures::stream::unfold(rx, |mut rx| async move { Some((rx.recv().await?, rx)) });
            Ok(QuoteSession {
                symbols: Box::new(self.clone()),
                quotes: quotes.boxed(),
            })
        }

        fn symbol_limit(&self) -> usize {
            3
        }
    }

    #[async_trait]
    impl QuoteSymbols for Broker {
        async fn subscribe(&self, symbols: &[String]) -> Result<(), StreamError> {
            self.subscribed
                .lock()
                .unwrap()
                .extend(symbols.iter().cloned());
            Ok(())
        }

        async fn unsubscribe(&self, symbols: &[String]) -> Result<(), StreamError> {
            let mut subscribed = self.subscribed.lock().unwrap();
            for s in symbols {
                subscribed.remove(s);
            }
            Ok(())
        }
    }

    fn quote(symbol: &str, bid: i64) -> Result<Quote, StreamError> {
        let now = chrono::Utc::now();
        Ok(Quote {
            symbol: symbol.into(),
            bid: Some(bid.into()),
            bid_size: None,
            ask: None,
            ask_size: None,
            last: None,
            at: now,
            as_of: now,
        })
    }

    fn bid(tick: Tick) -> (String, i64) {
        match tick {
            Tick::Quote(q) => (q.symbol.clone(), q.bid.unwrap().try_into().unwrap()),
            Tick::Refused(why) => panic!("refused: {why}"),
        }
    }

    fn metrics() -> Arc<QuoteMetrics> {
        Arc::new(QuoteMetrics::register(&mut Default::default()))
    }

    fn symbols(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    /// Lets the hub's task run until it waits again.
    async fn settle() {
        for _ in 0..20 {
            tokio::task::yield_now().await;
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_subscriber_gets_the_latest_quote_per_symbol_and_holds_up_nobody() {
        let (broker, tx) = Broker::with_sender();
        let hub = QuoteHub::new(Arc::new(broker), Duration::from_secs(30), metrics());
        let mut slow = hub.subscribe(symbols(&["A", "B"])).unwrap();
        let mut fast = hub.subscribe(symbols(&["A"])).unwrap();
        settle().await;
        for i in 1..=1_000 {
            tx.send(quote("A", i)).unwrap();
            tx.send(quote("B", i)).unwrap();
            assert_eq!(bid(fast.next().await.unwrap()), ("A".into(), i));
        }
        let mut latest: Vec<(String, i64)> = vec![
            bid(slow.next().await.unwrap()),
            bid(slow.next().await.unwrap()),
        ];
        latest.sort();
        assert_eq!(latest, [("A".into(), 1_000), ("B".into(), 1_000)]);
        assert!(slow.next().now_or_never().is_none(), "nothing else queued");
        assert_eq!(hub.latest("B").map(|q| q.bid), Some(Some(1_000.into())));
    }

    #[tokio::test(start_paused = true)]
    async fn the_upstream_holds_the_union_and_lets_a_symbol_go_after_the_linger() {
        let (broker, _tx) = Broker::with_sender();
        let hub = QuoteHub::new(Arc::new(broker.clone()), Duration::from_secs(30), metrics());
        let first = hub.subscribe(symbols(&["A", "B"])).unwrap();
        let _second = hub.subscribe(symbols(&["B", "C"])).unwrap();
        settle().await;
        assert_eq!(broker.subscribed(), ["A", "B", "C"]);

        drop(first);
        settle().await;
        tokio::time::advance(Duration::from_secs(29)).await;
        settle().await;
        assert_eq!(broker.subscribed(), ["A", "B", "C"], "within the linger");
        tokio::time::advance(Duration::from_secs(2)).await;
        settle().await;
        assert_eq!(broker.subscribed(), ["B", "C"]);
    }

    #[tokio::test(start_paused = true)]
    async fn beyond_the_limit_is_refused_but_a_lingering_symbol_makes_room() {
        let (broker, _tx) = Broker::with_sender();
        let hub = QuoteHub::new(Arc::new(broker.clone()), Duration::from_secs(30), metrics());
        let lingering = hub.subscribe(symbols(&["A"])).unwrap();
        let _held = hub.subscribe(symbols(&["B", "C"])).unwrap();
        assert_eq!(
            hub.subscribe(symbols(&["D"])).err(),
            Some(QuotesRefused::SymbolLimit {
                limit: 3,
                watched: 3,
                needed: 1
            })
        );
        drop(lingering);
        let _d = hub.subscribe(symbols(&["D"])).unwrap();
        settle().await;
        assert_eq!(broker.subscribed(), ["B", "C", "D"]);
    }
}
