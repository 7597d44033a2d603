//! Order events: every change the engine makes to an order, numbered per account and
//! kept for replay. The engine publishes while it holds its lock, so the numbering is
//! the order in which the changes happened, and a stream that subscribes under the same
//! lock sees neither a gap nor a duplicate between what it replays and what follows live.

use std::collections::VecDeque;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use tokio::sync::broadcast;
use uuid::Uuid;

use crate::orders::Order;

/// Events kept per account for `since` replays: enough to bridge a reconnect, bounded so
/// a long-running sim does not grow.
pub(crate) const HISTORY: usize = 1000;

/// How far a live stream may fall behind before it is cut off. Larger than the history,
/// so a stream that lags has also lost what a replay could give it back.
const LIVE_BUFFER: usize = 4096;

/// What happened to the order. The names are the generic stream's; the Alpaca stream
/// renames where Alpaca's words differ.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum EventKind {
    /// The order was created (REST status `accepted`, or `pending` where orders are
    /// accepted asynchronously).
    New,
    /// A pending order reached the market (asynchronous acceptance only).
    Accepted,
    PartialFill,
    Fill,
    Canceled,
    Expired,
    /// The order was replaced; its successor's `new` follows.
    Replaced,
}

impl EventKind {
    pub(crate) fn name(self) -> &'static str {
        match self {
            EventKind::New => "new",
            EventKind::Accepted => "accepted",
            EventKind::PartialFill => "partial_fill",
            EventKind::Fill => "fill",
            EventKind::Canceled => "canceled",
            EventKind::Expired => "expired",
            EventKind::Replaced => "replaced",
        }
    }
}

/// One execution, as the fill events report it.
#[derive(Clone, Debug)]
pub(crate) struct Execution {
    pub id: Uuid,
    pub price: Decimal,
    pub qty: Decimal,
}

/// An event with the order as it is right after the change, so a consumer never needs a
/// REST read to know the order's state.
#[derive(Clone, Debug)]
pub(crate) struct OrderEvent {
    /// Per account, from 1, without gaps.
    pub seq: u64,
    pub kind: EventKind,
    pub order: Order,
    /// Rendered at publish time: it depends on the instrument's tick size.
    pub average_fill_price: Option<Decimal>,
    pub execution: Option<Execution>,
    /// The account's position in the order's symbol after the event.
    pub position_qty: Decimal,
    pub at: DateTime<Utc>,
}

/// What a replay request gets back.
#[derive(Debug)]
pub(crate) enum Replay {
    Events(Vec<Arc<OrderEvent>>),
    /// The first event after `since` is no longer held (or `since` lies in the future:
    /// the client saw a sim that has since been reset).
    Unavailable,
}

/// A live subscription taken together with the position it starts from.
pub(crate) struct Subscription {
    pub live: broadcast::Receiver<Arc<OrderEvent>>,
    /// The newest seq published before the subscription; live events follow it.
    pub latest: u64,
    pub replay: Option<Replay>,
}

struct AccountLog {
    next_seq: u64,
    history: VecDeque<Arc<OrderEvent>>,
    live: broadcast::Sender<Arc<OrderEvent>>,
}

/// The events of every account. Lives inside the engine, so it shares the engine's lock
/// and is rebuilt with it on reset (live subscribers of the old one see the end).
pub(crate) struct EventLog {
    accounts: Vec<AccountLog>,
}

impl EventLog {
    pub(crate) fn new(accounts: usize) -> EventLog {
        EventLog {
            accounts: (0..accounts)
                .map(|_| AccountLog {
                    next_seq: 1,
                    history: VecDeque::with_capacity(HISTORY),
                    live: broadcast::channel(LIVE_BUFFER).0,
                })
                .collect(),
        }
    }

    /// Numbers the event, keeps it and hands it to live subscribers. `seq` in `event`
    /// is overwritten.
    pub(crate) fn publish(&mut self, acct: usize, mut event: OrderEvent) {
        let log = &mut self.accounts[acct];
        event.seq = log.next_seq;
        log.next_seq += 1;
        let event = Arc::new(event);
        if log.history.len() == HISTORY {
            log.history.pop_front();
        }
        log.history.push_back(event.clone());
        // No subscriber is not an error: events are kept for replay regardless.
        let _ = log.live.send(event);
    }

    /// The newest seq published for the account (0 before the first event).
    pub(crate) fn latest(&self, acct: usize) -> u64 {
        self.accounts[acct].next_seq - 1
    }

    /// Subscribes to live events and, if `since` is given, collects what followed it,
    /// atomically (the caller holds the engine lock).
    pub(crate) fn subscribe(&self, acct: usize, since: Option<u64>) -> Subscription {
        let log = &self.accounts[acct];
        let latest = log.next_seq - 1;
        let replay = since.map(|since| {
            if since > latest {
                return Replay::Unavailable;
            }
            let first_held = log.history.front().map_or(latest + 1, |e| e.seq);
            if since + 1 < first_held {
                return Replay::Unavailable;
            }
            Replay::Events(
                log.history
                    .iter()
                    .filter(|e| e.seq > since)
                    .cloned()
                    .collect(),
            )
        });
        Subscription {
            live: log.live.subscribe(),
            latest,
            replay,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::orders::{OrderStatus, OrderType, Side, TimeInForce};

    fn event() -> OrderEvent {
        let now = Utc::now();
        OrderEvent {
            seq: 0,
            kind: EventKind::New,
            order: Order {
                id: Uuid::nil(),
                seq: 1,
                idempotency_key: None,
                symbol: "AB".into(),
                side: Side::Buy,
                order_type: OrderType::Market,
                quantity: Decimal::ONE,
                filled_quantity: Decimal::ZERO,
                fill_notional: Decimal::ZERO,
                limit_price: None,
                stop_price: None,
                time_in_force: TimeInForce::Day,
                status: OrderStatus::Accepted,
                triggered: false,
                reserve_price: Decimal::ONE,
                replaces: None,
                replaced_by: None,
                created_at: now,
                updated_at: now,
            },
            average_fill_price: None,
            execution: None,
            position_qty: Decimal::ZERO,
            at: now,
        }
    }

    fn seqs(replay: Option<Replay>) -> Option<Vec<u64>> {
        match replay? {
            Replay::Events(events) => Some(events.iter().map(|e| e.seq).collect()),
            Replay::Unavailable => None,
        }
    }

    #[test]
    fn replay_serves_what_followed_since_while_it_is_held() {
        let mut log = EventLog::new(2);
        assert_eq!(seqs(log.subscribe(0, Some(0)).replay), Some(vec![]));
        for _ in 0..HISTORY + 5 {
            log.publish(0, event());
        }
        log.publish(1, event());
        let sub = log.subscribe(0, Some(HISTORY as u64));
        assert_eq!(sub.latest, HISTORY as u64 + 5);
        assert_eq!(
            seqs(sub.replay),
            Some((HISTORY as u64 + 1..=HISTORY as u64 + 5).collect())
        );
        assert_eq!(
            seqs(log.subscribe(0, Some(5)).replay).unwrap().len(),
            HISTORY
        );
        assert_eq!(
            seqs(log.subscribe(0, Some(4)).replay),
            None,
            "seq 5 is gone"
        );
        assert_eq!(
            seqs(log.subscribe(0, Some(2000)).replay),
            None,
            "the future"
        );
        assert_eq!(log.subscribe(1, None).latest, 1, "seq is per account");
    }

    #[test]
    fn a_subscriber_gets_exactly_what_is_published_after_it() {
        let mut log = EventLog::new(1);
        log.publish(0, event());
        let mut sub = log.subscribe(0, None);
        log.publish(0, event());
        assert_eq!(sub.latest, 1);
        assert_eq!(sub.live.try_recv().unwrap().seq, 2);
        assert!(sub.live.try_recv().is_err());
    }
}
