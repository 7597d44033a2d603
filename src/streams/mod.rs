//! Live order events: one upstream stream per broker account, fanned out to every
//! subscriber of that account. (Live quotes, fanned out the same way but kept as
//! the latest value per symbol, are `quotes`.)
//!
//! Brokers allow one stream connection per credential and no stream is gapless
//! across reconnects, so an `OrderFeed`:
//! - opens the upstream with its first subscriber and closes it `linger` after the
//!   last one left (a page reload should not reconnect);
//! - after every (re)connect subscribes first, then reads the orders over REST and
//!   publishes a `RECONCILED` event for each order that changed unseen
//!   (`upstream`); duplicates and events older than what was published are
//!   dropped (`known`);
//! - invalidates the caches an event makes stale *before* publishing it, so a
//!   query sent after receiving an event never answers older state;
//! - keeps the last `history` events (at most 15 minutes) so a client that
//!   reconnects resumes where it was (`subscribe(after)`);
//! - gives each subscriber a bounded buffer (a broadcast ring shared by all): one
//!   that falls behind loses the oldest events and gets `resync` on its next one,
//!   instead of growing a queue.

mod known;
mod quotes;
mod upstream;

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use futures::stream::BoxStream;
use futures::StreamExt;
use tokio::sync::{broadcast, Notify};

use crate::broker::{Broker, OrderStream};
use crate::cache::CachedBroker;
use crate::domain::{OrderEvent, OrderEventKind};
use crate::metrics::StreamMetrics;
use known::Known;
pub(crate) use quotes::{QuoteHub, QuotesRefused, Tick};

/// How far back `after` can resume, whatever `history` says: older events describe
/// orders a client should rather read again.
const HISTORY_AGE: Duration = Duration::from_secs(15 * 60);

/// Events a subscriber may be behind before it loses the oldest (and is told with
/// `resync`). Shared: the ring holds each event once for all subscribers.
const BUFFER: usize = 512;

#[derive(Clone, Copy, Debug)]
pub(crate) struct FeedSettings {
    pub linger: Duration,
    pub history: usize,
}

/// Where an event sits in a feed: what a client's cursor carries. `epoch` names
/// the feed (it changes when the process restarts and the history is gone).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct Position {
    #[serde(rename = "e")]
    pub epoch: u64,
    #[serde(rename = "n")]
    pub n: u64,
}

/// One published event.
#[derive(Debug)]
pub(crate) struct Entry {
    pub position: Position,
    pub event: OrderEvent,
    /// Events may be missing before this one for every subscriber (the broker
    /// could not be read after a gap).
    pub resync: bool,
    published: Instant,
}

/// An event as one subscriber receives it.
pub(crate) struct Delivery {
    pub entry: Arc<Entry>,
    /// Events may be missing before this one for this subscriber.
    pub resync: bool,
}

/// The order events of one broker account.
#[derive(Clone)]
pub(crate) struct OrderFeed {
    shared: Arc<Shared>,
}

struct Shared {
    source: Arc<dyn OrderStream>,
    /// Beneath the cache: a reconcile must read what the broker has now.
    broker: Arc<dyn Broker>,
    cache: Arc<CachedBroker>,
    settings: FeedSettings,
    metrics: Arc<StreamMetrics>,
    epoch: u64,
    tx: broadcast::Sender<Arc<Entry>>,
    state: Mutex<State>,
    /// Told when the number of subscribers changes.
    wake: Notify,
}

#[derive(Default)]
struct State {
    subscribers: usize,
    /// Whether the upstream task exists (connected, connecting or lingering).
    running: bool,
    /// Whether the upstream was ever connected: the first REST read is what
    /// subscribers start from, not a change to announce.
    connected_before: bool,
    history: VecDeque<Arc<Entry>>,
    next_n: u64,
    known: Known,
    /// The next entry must carry `resync`: a reconcile failed.
    owe_resync: bool,
    /// The broker time up to which subscribers were told everything (the last
    /// event or reconcile): a reconcile reads the orders changed since.
    told_until: Option<chrono::DateTime<chrono::Utc>>,
    /// When the first subscriber arrived, before the upstream ever connected: what
    /// changed after it is news to that subscriber, what changed before is not.
    waiting_since: Option<chrono::DateTime<chrono::Utc>>,
}

impl OrderFeed {
    pub(crate) fn new(
        source: Arc<dyn OrderStream>,
        broker: Arc<dyn Broker>,
        cache: Arc<CachedBroker>,
        settings: FeedSettings,
        metrics: Arc<StreamMetrics>,
    ) -> OrderFeed {
        let (tx, _) = broadcast::channel(BUFFER);
        OrderFeed {
            shared: Arc::new(Shared {
                source,
                broker,
                cache,
                settings,
                metrics,
                epoch: rand::random::<u64>() >> 11,
                tx,
                state: Mutex::new(State {
                    next_n: 1,
                    ..State::default()
                }),
                wake: Notify::new(),
            }),
        }
    }

    /// The events after `after` (all of them while it is in the history), then
    /// live ones. A cursor older than the history, or from before a restart,
    /// starts with `resync`. Starts the upstream if nobody was listening.
    pub(crate) fn subscribe(&self, after: Option<Position>) -> BoxStream<'static, Delivery> {
        let shared = &self.shared;
        let mut state = shared.lock();
        state.subscribers += 1;
        shared.metrics.set_subscribers(state.subscribers);
        if !state.connected_before && state.waiting_since.is_none() {
            state.waiting_since = Some(chrono::Utc::now());
        }
        let rx = shared.tx.subscribe();
        let (replay, resync) = match after {
            None => (VecDeque::new(), false),
            Some(after) => state.after(shared.epoch, after),
        };
        if !state.running {
            state.running = true;
            tokio::spawn(upstream::run(shared.clone()));
        }
        drop(state);
        shared.wake.notify_waiters();
        let guard = Subscribed(shared.clone());
        futures::stream::unfold(
            (replay, rx, resync, guard),
            |(mut replay, mut rx, mut owe, guard)| async move {
                if let Some(entry) = replay.pop_front() {
                    let delivery = Delivery {
                        entry,
                        resync: std::mem::take(&mut owe),
                    };
                    return Some((delivery, (replay, rx, owe, guard)));
                }
                loop {
                    match rx.recv().await {
                        Ok(entry) => {
                            let delivery = Delivery {
                                entry,
                                resync: std::mem::take(&mut owe),
                            };
                            return Some((delivery, (replay, rx, owe, guard)));
                        }
                        Err(broadcast::error::RecvError::Lagged(_)) => owe = true,
                        Err(broadcast::error::RecvError::Closed) => return None,
                    }
                }
            },
        )
        .boxed()
    }
}

impl State {
    /// The history after `after`, and whether the subscriber must be told that
    /// events are missing.
    fn after(&self, epoch: u64, after: Position) -> (VecDeque<Arc<Entry>>, bool) {
        let oldest = self.history.front().map_or(self.next_n, |e| e.position.n);
        if after.epoch != epoch || after.n >= self.next_n || after.n + 1 < oldest {
            return (VecDeque::new(), true);
        }
        let replay = self
            .history
            .iter()
            .filter(|e| e.position.n > after.n)
            .cloned()
            .collect();
        (replay, false)
    }

    fn push(&mut self, entry: Arc<Entry>, settings: &FeedSettings) {
        self.history.push_back(entry);
        while self.history.len() > settings.history.max(1)
            || self
                .history
                .front()
                .is_some_and(|e| e.published.elapsed() > HISTORY_AGE)
        {
            self.history.pop_front();
        }
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Returns once nobody has been subscribed for `linger`.
    async fn lingered(&self) {
        loop {
            let notified = self.wake.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.lock().subscribers > 0 {
                notified.await;
                continue;
            }
            tokio::select! {
                _ = tokio::time::sleep(self.settings.linger) => return,
                _ = &mut notified => {}
            }
        }
    }

    /// Invalidates what the event makes stale, then publishes it. Only the
    /// upstream task calls this, so events are published in the broker's order.
    async fn publish(&self, event: OrderEvent) {
        self.cache.order_changed(&event.order).await;
        self.metrics
            .published(event.kind == OrderEventKind::Reconciled);
        let mut state = self.lock();
        let position = Position {
            epoch: self.epoch,
            n: state.next_n,
        };
        state.next_n += 1;
        state.told_until = state.told_until.max(Some(event.at));
        let entry = Arc::new(Entry {
            position,
            event,
            resync: std::mem::take(&mut state.owe_resync),
            published: Instant::now(),
        });
        state.push(entry.clone(), &self.settings);
        // No receiver is fine: the event is in the history.
        let _ = self.tx.send(entry);
    }
}

/// One subscriber's presence; dropping it (the client went away) may start the
/// upstream's linger.
struct Subscribed(Arc<Shared>);

impl Drop for Subscribed {
    fn drop(&mut self) {
        let mut state = self.0.lock();
        state.subscribers -= 1;
        self.0.metrics.set_subscribers(state.subscribers);
        drop(state);
        self.0.wake.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Order, OrderSide, OrderStatus, OrderType, TimeInForce};

    const EPOCH: u64 = 7;

    fn entry(n: u64) -> Arc<Entry> {
        let t = chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let order = Order {
            id: format!("o{n}"),
            idempotency_key: None,
            symbol: "ABC".into(),
            side: OrderSide::Buy,
            order_type: OrderType::Market,
            quantity: 1.into(),
            filled_quantity: 0.into(),
            limit_price: None,
            stop_price: None,
            average_fill_price: None,
            time_in_force: TimeInForce::Day,
            status: OrderStatus::Accepted,
            created_at: t,
            updated_at: t,
            as_of: t,
            broker_status: None,
        };
        Arc::new(Entry {
            position: Position { epoch: EPOCH, n },
            event: OrderEvent {
                kind: OrderEventKind::New,
                broker_event: "new".into(),
                order,
                fill: None,
                position_quantity: None,
                at: t,
            },
            resync: false,
            published: Instant::now(),
        })
    }

    /// Events 1..=5 published, a history of 3 kept (3, 4, 5).
    fn state() -> State {
        let settings = FeedSettings {
            linger: Duration::ZERO,
            history: 3,
        };
        let mut state = State {
            next_n: 6,
            ..State::default()
        };
        for n in 1..=5 {
            state.push(entry(n), &settings);
        }
        state
    }

    fn numbers(replay: &VecDeque<Arc<Entry>>) -> Vec<u64> {
        replay.iter().map(|e| e.position.n).collect()
    }

    #[test]
    fn a_cursor_in_the_history_replays_exactly_what_followed_it() {
        let state = state();
        let (replay, resync) = state.after(EPOCH, Position { epoch: EPOCH, n: 3 });
        assert_eq!((numbers(&replay), resync), (vec![4, 5], false));
        // The event just before the oldest kept one: nothing is missing either.
        let (replay, resync) = state.after(EPOCH, Position { epoch: EPOCH, n: 2 });
        assert_eq!((numbers(&replay), resync), (vec![3, 4, 5], false));
        let (replay, resync) = state.after(EPOCH, Position { epoch: EPOCH, n: 5 });
        assert_eq!((numbers(&replay), resync), (vec![], false));
    }

    #[test]
    fn a_cursor_older_than_the_history_or_from_another_feed_is_told_to_resync() {
        let state = state();
        for after in [
            Position { epoch: EPOCH, n: 1 },
            Position {
                epoch: EPOCH + 1,
                n: 4,
            },
            Position { epoch: EPOCH, n: 9 },
        ] {
            let (replay, resync) = state.after(EPOCH, after);
            assert_eq!((numbers(&replay), resync), (vec![], true), "{after:?}");
        }
    }
}
