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
//!
//! With replicas (Redis configured), one replica holds the upstream and the
//! others follow what it appends to the account's stream in Redis (`relay`).

mod known;
mod quotes;
mod relay;
mod upstream;

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use futures::stream::BoxStream;
use futures::StreamExt;
use tokio::sync::{broadcast, watch, Notify};

use crate::broker::{Broker, OrderStream};
use crate::cache::CachedBroker;
use crate::domain::{OrderEvent, OrderEventKind};
use crate::metrics::StreamMetrics;
use known::Known;
pub(crate) use quotes::{QuoteHub, QuotePump, QuotesRefused, SharedQuoteStream, Tick};
pub(crate) use relay::Replication;

/// How far back `after` can resume, whatever `history` says: older events describe
/// orders a client should rather read again.
pub(crate) const HISTORY_AGE: Duration = Duration::from_secs(15 * 60);

/// Events a subscriber may be behind before it loses the oldest (and is told with
/// `resync`). Shared: the ring holds each event once for all subscribers.
const BUFFER: usize = 512;

#[derive(Clone, Copy, Debug)]
pub(crate) struct FeedSettings {
    pub linger: Duration,
    pub history: usize,
}

/// How long a subscriber resuming with a cursor waits for the shared history to
/// be read from Redis before it starts live, told with `resync`.
const LOAD_WAIT: Duration = Duration::from_secs(5);

/// Where an event sits in a feed: what a client's cursor carries. `epoch` names
/// the feed (it changes when the process restarts and the history is gone; with
/// replicas it is the shared stream's generation). In one process `n` counts the
/// events; with replicas `(n, s)` is the entry id of the shared stream (`<ms>-<seq>`),
/// the same on every replica.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub(crate) struct Position {
    #[serde(rename = "e")]
    pub epoch: u64,
    #[serde(rename = "n")]
    pub n: u64,
    #[serde(rename = "s", default, skip_serializing_if = "is_zero")]
    pub s: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
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
    tx: broadcast::Sender<Arc<Entry>>,
    state: Mutex<State>,
    /// Told when the number of subscribers changes.
    wake: Notify,
    /// With replicas: the shared stream and the lease on the upstream.
    replication: Option<Replication>,
    /// Whether the history is there to resume from: at once in one process; with
    /// replicas once it was read from Redis.
    loaded: watch::Sender<bool>,
}

#[derive(Default)]
struct State {
    /// Names the feed in positions (see `Position`).
    epoch: u64,
    subscribers: usize,
    /// With replicas, holds on the upstream that are not `orderUpdates`
    /// subscribers: this replica's quote watchers (`Demand`).
    demand: usize,
    /// Whether the upstream task exists (connected, connecting or lingering).
    running: bool,
    /// Whether the upstream was ever connected: the first REST read is what
    /// subscribers start from, not a change to announce.
    connected_before: bool,
    history: VecDeque<Arc<Entry>>,
    next_n: u64,
    known: Known,
    /// The next entry delivered must carry `resync`: a reconcile failed (or, with
    /// replicas, the shared stream could not be read).
    owe_resync: bool,
    /// With replicas, the holder's: the next entry appended to the shared stream
    /// must carry `resync` (a reconcile failed, or an append did).
    append_owes_resync: bool,
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
        replication: Option<Replication>,
    ) -> OrderFeed {
        let (tx, _) = broadcast::channel(BUFFER);
        OrderFeed {
            shared: Arc::new(Shared {
                source,
                broker,
                cache,
                settings,
                metrics,
                tx,
                state: Mutex::new(State {
                    epoch: rand::random::<u64>() >> 11,
                    next_n: 1,
                    ..State::default()
                }),
                wake: Notify::new(),
                loaded: watch::Sender::new(replication.is_none()),
                replication,
            }),
        }
    }

    /// The events after `after` (all of them while it is in the history), then
    /// live ones. A cursor older than the history, or from before a restart,
    /// starts with `resync`. Starts the upstream if nobody was listening.
    pub(crate) fn subscribe(&self, after: Option<Position>) -> BoxStream<'static, Delivery> {
        let shared = self.shared.clone();
        let mut state = shared.lock();
        state.subscribers += 1;
        shared.metrics.set_subscribers(state.subscribers);
        if !state.connected_before && state.waiting_since.is_none() {
            state.waiting_since = Some(chrono::Utc::now());
        }
        // Before the history is read: what is published from now on reaches this
        // subscriber either way, and what both hold is skipped below.
        let rx = shared.tx.subscribe();
        shared.start(&mut state);
        drop(state);
        shared.wake.notify_waiters();
        let guard = Subscribed(shared.clone());
        let start = async move {
            let (replay, resync, seen) = match after {
                None => (VecDeque::new(), false, None),
                Some(after) => guard.0.resume(after).await,
            };
            Follow {
                replay,
                rx,
                owe: resync,
                seen,
                _guard: guard,
            }
            .into_stream()
        };
        futures::stream::once(start).flatten().boxed()
    }
}

impl OrderFeed {
    /// Keeps the upstream's lease contended for while it lives, for what else
    /// this replica streams on the same credential (its quotes).
    pub(crate) fn demand(&self) -> Demand {
        let shared = self.shared.clone();
        let mut state = shared.lock();
        state.demand += 1;
        shared.start(&mut state);
        drop(state);
        shared.wake.notify_waiters();
        Demand(shared)
    }
}

/// A hold on the upstream that is not a subscriber; dropping it may start the
/// linger.
pub(crate) struct Demand(Arc<Shared>);

impl Drop for Demand {
    fn drop(&mut self) {
        self.0.lock().demand -= 1;
        self.0.wake.notify_waiters();
    }
}

/// One subscriber's stream: the replayed history, then the live events.
struct Follow {
    replay: VecDeque<Arc<Entry>>,
    rx: broadcast::Receiver<Arc<Entry>>,
    owe: bool,
    /// The last position already delivered from the history: live events up to
    /// it are skipped.
    seen: Option<Position>,
    _guard: Subscribed,
}

impl Follow {
    fn into_stream(self) -> BoxStream<'static, Delivery> {
        futures::stream::unfold(self, |mut f| async move {
            if let Some(entry) = f.replay.pop_front() {
                let resync = std::mem::take(&mut f.owe);
                return Some((Delivery { entry, resync }, f));
            }
            loop {
                match f.rx.recv().await {
                    Ok(entry) if f.seen.is_some_and(|seen| entry.position <= seen) => {}
                    Ok(entry) => {
                        let resync = std::mem::take(&mut f.owe);
                        return Some((Delivery { entry, resync }, f));
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => f.owe = true,
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            }
        })
        .boxed()
    }
}

impl State {
    fn wanted(&self) -> bool {
        self.subscribers > 0 || self.demand > 0
    }

    /// The history after `after`, and whether the subscriber must be told that
    /// events are missing.
    ///
    /// In one process positions count every event, so a cursor just before the
    /// oldest one kept misses nothing, and one beyond the last is forged or from
    /// another process. The shared stream's ids have gaps: a cursor before the
    /// oldest kept may have missed trimmed events, and one beyond the last this
    /// replica has read may come from a replica that read further: it gets what
    /// follows it.
    fn after(&self, after: Position, shared: bool) -> (VecDeque<Arc<Entry>>, bool) {
        let missed = match (shared, self.history.front()) {
            (_, _) if after.epoch != self.epoch => true,
            (false, front) => {
                let oldest = front.map_or(self.next_n, |e| e.position.n);
                after.n >= self.next_n || after.n + 1 < oldest
            }
            (true, Some(front)) => after < front.position,
            (true, None) => false,
        };
        if missed {
            return (VecDeque::new(), true);
        }
        let replay = self
            .history
            .iter()
            .filter(|e| e.position > after)
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

    /// Starts the upstream task (with replicas: the relay) unless it runs.
    fn start(self: &Arc<Self>, state: &mut State) {
        if state.running {
            return;
        }
        state.running = true;
        match self.replication.is_some() {
            true => tokio::spawn(relay::run(self.clone())),
            false => tokio::spawn(upstream::run(self.clone())),
        };
    }

    /// Returns once nobody has been subscribed for `linger`.
    async fn lingered(&self) {
        loop {
            let notified = self.wake.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.lock().wanted() {
                notified.await;
                continue;
            }
            tokio::select! {
                _ = tokio::time::sleep(self.settings.linger) => return,
                _ = &mut notified => {}
            }
        }
    }

    /// What to replay after `after`, whether the subscriber must be told of a gap,
    /// and the last position replayed (live events up to it are skipped).
    async fn resume(&self, after: Position) -> (VecDeque<Arc<Entry>>, bool, Option<Position>) {
        let mut loaded = self.loaded.subscribe();
        let ready = tokio::time::timeout(LOAD_WAIT, loaded.wait_for(|l| *l)).await;
        if !matches!(ready, Ok(Ok(_))) {
            return (VecDeque::new(), true, None);
        }
        let state = self.lock();
        let (replay, resync) = state.after(after, self.replication.is_some());
        let seen = match resync {
            true => None,
            false => Some(replay.back().map_or(after, |e| e.position)),
        };
        (replay, resync, seen)
    }

    /// Hands an event of the upstream to subscribers, in the broker's order (only
    /// the upstream task calls this). With replicas it goes through the shared
    /// stream, and `Err` says this replica may no longer write there (it lost the
    /// lease, or Redis failed): its upstream must stop.
    async fn publish(&self, event: OrderEvent, broker_seq: Option<u64>) -> Result<(), Lost> {
        match &self.replication {
            Some(replication) => replication.append(self, &event, broker_seq).await,
            None => {
                let (position, resync) = {
                    let mut state = self.lock();
                    let position = Position {
                        epoch: state.epoch,
                        n: state.next_n,
                        s: 0,
                    };
                    state.next_n += 1;
                    (position, std::mem::take(&mut state.owe_resync))
                };
                self.deliver(position, event, resync).await;
                Ok(())
            }
        }
    }

    /// Invalidates what the event makes stale, then delivers it to this process's
    /// subscribers.
    async fn deliver(&self, position: Position, event: OrderEvent, resync: bool) {
        self.cache.order_changed(&event.order).await;
        self.metrics
            .published(event.kind == OrderEventKind::Reconciled);
        let mut state = self.lock();
        state.told_until = state.told_until.max(Some(event.at));
        let entry = Arc::new(Entry {
            position,
            event,
            resync: resync || std::mem::take(&mut state.owe_resync),
            published: Instant::now(),
        });
        state.push(entry.clone(), &self.settings);
        // No receiver is fine: the event is in the history.
        let _ = self.tx.send(entry);
    }

    /// A reconcile could not read the broker: the next event tells subscribers.
    fn owe_resync(&self) {
        let mut state = self.lock();
        match self.replication.is_some() {
            true => state.append_owes_resync = true,
            false => state.owe_resync = true,
        }
    }

    /// The upstream is connected and reconciled, or not. In one process its
    /// invalidations keep the order caches fresh while it is up; with replicas
    /// another replica's events arrive through Redis, so the caches keep their
    /// own TTLs.
    fn set_up(&self, up: bool) {
        self.metrics.set_up(up);
        if self.replication.is_none() {
            self.cache.set_streamed(up);
        }
    }
}

/// This replica may no longer publish to the shared stream: another holds the
/// upstream's lease, or Redis did not take the event.
#[derive(Debug)]
pub(super) struct Lost;

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
            position: Position {
                epoch: EPOCH,
                n,
                s: 0,
            },
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
            epoch: EPOCH,
            next_n: 6,
            ..State::default()
        };
        for n in 1..=5 {
            state.push(entry(n), &settings);
        }
        state
    }

    fn at(n: u64) -> Position {
        Position {
            epoch: EPOCH,
            n,
            s: 0,
        }
    }

    fn numbers(replay: &VecDeque<Arc<Entry>>) -> Vec<u64> {
        replay.iter().map(|e| e.position.n).collect()
    }

    #[test]
    fn a_cursor_in_the_history_replays_exactly_what_followed_it() {
        let state = state();
        let (replay, resync) = state.after(at(3), false);
        assert_eq!((numbers(&replay), resync), (vec![4, 5], false));
        // The event just before the oldest kept one: nothing is missing either.
        let (replay, resync) = state.after(at(2), false);
        assert_eq!((numbers(&replay), resync), (vec![3, 4, 5], false));
        let (replay, resync) = state.after(at(5), false);
        assert_eq!((numbers(&replay), resync), (vec![], false));
    }

    #[test]
    fn a_cursor_older_than_the_history_or_from_another_feed_is_told_to_resync() {
        let state = state();
        for after in [
            at(1),
            Position {
                epoch: EPOCH + 1,
                ..at(4)
            },
            at(9),
        ] {
            let (replay, resync) = state.after(after, false);
            assert_eq!((numbers(&replay), resync), (vec![], true), "{after:?}");
        }
    }

    /// With replicas, positions are stream ids with gaps: a cursor between two kept
    /// entries, or beyond what this replica has read, misses nothing; one before
    /// the oldest kept entry may have.
    #[test]
    fn a_shared_stream_cursor_is_judged_by_order_not_by_count() {
        let state = state();
        let (replay, resync) = state.after(at(4), true);
        assert_eq!((numbers(&replay), resync), (vec![5], false));
        let ahead = Position { s: 3, ..at(5) };
        let (replay, resync) = state.after(ahead, true);
        assert_eq!((numbers(&replay), resync), (vec![], false));
        let (replay, resync) = state.after(at(2), true);
        assert_eq!((numbers(&replay), resync), (vec![], true));
        let other = Position {
            epoch: EPOCH + 1,
            ..at(4)
        };
        assert!(state.after(other, true).1);
    }
}
