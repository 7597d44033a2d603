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

mod upstream;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use futures::stream::{self, BoxStream};
use futures::StreamExt;
use tokio::sync::{watch, Notify};

use crate::broker::QuoteStream;
use crate::domain::Quote;

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
    state: Mutex<State>,
    /// Told when the watched set changes.
    wake: Notify,
}

#[derive(Default)]
struct State {
    symbols: HashMap<String, Watched>,
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
    pub(crate) fn new(source: Arc<dyn QuoteStream>, linger: Duration) -> QuoteHub {
        QuoteHub {
            shared: Arc::new(Shared {
                source,
                linger,
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
