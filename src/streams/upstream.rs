//! The task that holds one account's upstream connection: connect, subscribe,
//! reconcile over REST, then publish events until the connection ends; reconnect
//! with full-jitter backoff; stop `linger` after the last subscriber left.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::StreamExt;

use super::known::Verdict;
use super::{Lost, Shared};
use crate::broker::{StreamItem, StreamSession, MAX_BROKER_PAGE};
use crate::domain::{
    Order, OrderEvent, OrderEventKind, OrderQuery, OrderStatusFilter, PageRequest,
};
use crate::resilience::Schedule;

/// From 1 s up to 30 s between attempts: a broker that refuses or drops the
/// stream is not hammered, and a blip costs a subscriber about a second.
const RECONNECT: Schedule = Schedule {
    base: Duration::from_secs(1),
    cap: Duration::from_secs(30),
};

/// Bounds on one reconcile's REST reads, so a huge account cannot turn a
/// reconnect into a rate-limit storm: open orders beyond this many pages, and
/// orders created during a gap beyond this many, are left to `resync`.
const MAX_OPEN_PAGES: usize = 20;
const MAX_RECENT_PAGES: usize = 5;

/// In one process: the account's upstream for as long as anyone subscribes.
pub(super) async fn run(shared: Arc<Shared>) {
    let mut since: Option<u64> = None;
    loop {
        tokio::select! {
            _ = shared.lingered() => {
                // The connection is closed either way (dropped with its future).
                shared.set_up(false);
                let mut state = shared.lock();
                if !state.wanted() {
                    state.running = false;
                    tracing::info!("no subscriber left: closing the broker stream");
                    return;
                }
            }
            _ = follow(&shared, &mut since) => {}
        }
    }
}

/// Connects and reconnects until publishing fails (with replicas: this replica
/// lost the lease, or Redis failed), which only a replica's holder sees.
/// `since`: the broker's sequence number to resume after.
pub(super) async fn follow(shared: &Shared, since: &mut Option<u64>) {
    let mut attempt = 0u32;
    while connection(shared, since, &mut attempt).await.is_ok() {}
    shared.set_up(false);
}

/// One connection, from opening to its end, then the wait before the next.
async fn connection(
    shared: &Shared,
    since: &mut Option<u64>,
    attempt: &mut u32,
) -> Result<(), Lost> {
    match shared.source.open(*since).await {
        Err(e) => {
            tracing::warn!(error = %e, attempt = *attempt, "could not open the broker stream");
        }
        Ok(session) => {
            *attempt = 0;
            shared.metrics.connected();
            tracing::info!(seq = ?session.seq, since = ?*since, "broker stream subscribed");
            let end = session_events(shared, session, since).await;
            shared.set_up(false);
            let reason = end?;
            tracing::warn!(reason = %reason, "broker stream ended; reconnecting");
        }
    }
    tokio::time::sleep(RECONNECT.draw(*attempt)).await;
    *attempt = attempt.saturating_add(1);
    Ok(())
}

/// Reconciles, then publishes the session's events until it ends. `since` follows
/// the broker's sequence numbers, so the next connection resumes after them.
async fn session_events(
    shared: &Shared,
    session: StreamSession,
    since: &mut Option<u64>,
) -> Result<String, Lost> {
    let StreamSession { seq, mut items } = session;
    let replaying = since.is_some();
    if !replaying {
        *since = seq;
    }
    reconcile(shared).await?;
    shared.set_up(true);
    while let Some(item) = items.next().await {
        match item {
            Err(e) => return Ok(e.to_string()),
            Ok(StreamItem::ReplayUnavailable) => {
                // The reconcile above covered what the broker could not replay.
                *since = seq;
            }
            Ok(StreamItem::Unreadable { seq }) => {
                // What it said is lost; the broker's REST state says it again.
                reconcile(shared).await?;
                if seq.is_some() {
                    *since = seq;
                }
            }
            Ok(StreamItem::Order { seq, event }) => {
                if let (Some(seq), Some(last)) = (seq, *since) {
                    if seq <= last {
                        continue;
                    }
                    if seq > last + 1 {
                        tracing::warn!(expected = last + 1, got = seq, "gap in the broker stream");
                        reconcile(shared).await?;
                    }
                }
                if seq.is_some() {
                    *since = seq;
                }
                deliver(shared, *event, seq).await?;
            }
        }
    }
    Ok("closed by the broker".to_string())
}

async fn deliver(shared: &Shared, event: OrderEvent, seq: Option<u64>) -> Result<(), Lost> {
    let verdict = shared.lock().known.event(&event);
    match verdict {
        Verdict::Deliver => shared.publish(event, seq).await,
        Verdict::Drop => {
            shared.metrics.dropped();
            Ok(())
        }
    }
}

/// Reads what may have changed unseen and publishes `RECONCILED` for each order
/// that differs from what subscribers last saw: the open orders, the orders they
/// saw open that are no longer, and the newest orders (created during the gap).
pub(super) async fn reconcile(shared: &Shared) -> Result<(), Lost> {
    let started = chrono::Utc::now();
    let (baseline, watched, since) = {
        let state = shared.lock();
        // Before the first connection, subscribers were told nothing: orders that
        // changed since the first of them arrived are news, older ones are where
        // they start from.
        let baseline = match state.connected_before {
            true => None,
            false => state.waiting_since,
        };
        (
            baseline,
            state.known.open_orders(),
            state.told_until.or(state.waiting_since),
        )
    };
    let orders = match read(shared, &watched, since).await {
        Ok(orders) => orders,
        Err(e) => {
            tracing::warn!(error = %e, "could not reconcile over REST; subscribers get resync");
            shared.owe_resync();
            return Ok(());
        }
    };
    let mut changed = Vec::new();
    {
        let mut state = shared.lock();
        state.connected_before = true;
        state.told_until = state.told_until.max(Some(started));
        for order in orders {
            let news = baseline.is_none_or(|since| order.updated_at >= since);
            if state.known.read(&order) == Verdict::Deliver && news {
                changed.push(order);
            }
        }
    }
    changed.sort_by_key(|o| o.updated_at);
    for order in changed {
        let event = OrderEvent {
            kind: OrderEventKind::Reconciled,
            broker_event: "reconciled".into(),
            at: order.updated_at,
            order,
            fill: None,
            position_quantity: None,
        };
        shared.publish(event, None).await?;
    }
    Ok(())
}

/// `since`: orders created before it were either open (read with the open ones)
/// or watched; `None` (never connected) reads the open orders only.
async fn read(
    shared: &Shared,
    watched: &[String],
    since: Option<DateTime<Utc>>,
) -> Result<Vec<Order>, crate::broker::BrokerError> {
    let broker = &shared.broker;
    let mut orders = Vec::new();
    let open = OrderQuery {
        status: OrderStatusFilter::Open,
        symbol: None,
    };
    let recent = OrderQuery {
        status: OrderStatusFilter::All,
        symbol: None,
    };
    // Broker clocks and ours differ: look back a little further than `since`.
    let cutoff = since.map(|t| t - chrono::Duration::seconds(60));
    let recent_pages = if cutoff.is_some() {
        MAX_RECENT_PAGES
    } else {
        0
    };
    for (query, pages) in [(&open, MAX_OPEN_PAGES), (&recent, recent_pages)] {
        let mut page = PageRequest {
            cursor: None,
            limit: MAX_BROKER_PAGE,
        };
        for _ in 0..pages {
            let got = broker.orders(query, &page).await?;
            let older = query.status == OrderStatusFilter::All
                && got
                    .items
                    .last()
                    .is_some_and(|o| cutoff.is_some_and(|c| o.created_at < c));
            orders.extend(got.items);
            if older {
                break;
            }
            match got.next_cursor {
                Some(cursor) => page.cursor = Some(cursor),
                None => break,
            }
        }
    }
    for id in watched {
        if !orders.iter().any(|o| &o.id == id) {
            match broker.order(id).await {
                Ok(order) => orders.push(order),
                Err(crate::broker::BrokerError::NotFound) => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok(orders)
}
