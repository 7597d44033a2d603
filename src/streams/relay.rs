//! An account's order feed across replicas. The broker allows one stream
//! connection per credential, so one replica holds it (a Redis lease) and appends
//! each event to the account's stream in Redis; every replica with subscribers
//! reads that stream and delivers to its own, invalidating its caches first.
//!
//! - Every replica with subscribers contends for the lease; the holder renews it.
//!   When the holder dies or hangs, the lease runs out and another takes over
//!   within `subscriptions.lease_ms`. A holder whose own subscribers are gone
//!   for `linger` gives the lease up, and a replica that still has subscribers
//!   takes it.
//! - A new holder first learns what was appended before it (so its reconcile
//!   compares against what subscribers were told), resumes the broker stream
//!   after the last broker sequence number appended, and reconciles over REST
//!   before it appends anything.
//! - Appends are fenced by the lease: a holder that lost it stops its upstream at
//!   its next event instead of writing beside the new holder.
//! - The entry id is the cursor, on every replica. A replica that could not read
//!   the stream (Redis down or hung) tells its subscribers with `resync` on the
//!   next event; a stream that Redis lost starts a new generation, and cursors of
//!   the old one are told to resync.

use std::time::{Duration, Instant};

use super::known::Known;
use super::{upstream, Lost, Position, QuotePump, Shared};
use crate::cluster::event_log::{EntryId, EventLog, LogEntry};
use crate::cluster::lease::Lease;
use crate::domain::{OrderEvent, OrderEventKind};

/// How long one read of the shared stream waits for an entry.
const BLOCK: Duration = Duration::from_secs(2);

/// Between attempts to read a Redis that failed.
const RETRY: Duration = Duration::from_millis(500);

/// The shared stream and the lease on the upstream of one broker credential.
pub(crate) struct Replication {
    log: EventLog,
    lease: Lease,
    /// The credential's quotes for every replica, run by the holder.
    quotes: Option<QuotePump>,
}

impl Replication {
    pub(crate) fn new(log: EventLog, lease: Lease, quotes: Option<QuotePump>) -> Replication {
        Replication { log, lease, quotes }
    }

    /// The holder's publish: appends the event while the lease is still ours.
    pub(super) async fn append(
        &self,
        shared: &Shared,
        event: &OrderEvent,
        broker_seq: Option<u64>,
    ) -> Result<(), Lost> {
        let payload = match serde_json::to_string(event) {
            Ok(payload) => payload,
            Err(e) => {
                tracing::error!(error = %e, "could not serialize an order event; subscribers get resync");
                shared.lock().append_owes_resync = true;
                return Ok(());
            }
        };
        shared.cache.order_event_ahead().await;
        let resync = std::mem::take(&mut shared.lock().append_owes_resync);
        let appended = self
            .log
            .append(&self.lease, &payload, resync, broker_seq)
            .await;
        match appended {
            Ok(Some(_)) => Ok(()),
            Ok(None) => {
                tracing::warn!("another replica holds the broker stream now: stopping ours");
                shared.lock().append_owes_resync |= resync;
                Err(Lost)
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not append to the shared stream: stopping the upstream");
                shared.lock().append_owes_resync = true;
                Err(Lost)
            }
        }
    }
}

/// Runs while this replica has subscribers (and `linger` after): reads the shared
/// stream, and holds the upstream whenever the lease is free.
pub(super) async fn run(shared: std::sync::Arc<Shared>) {
    let Some(replication) = shared.replication.as_ref() else {
        return;
    };
    loop {
        tokio::select! {
            _ = shared.lingered() => {
                if let Err(e) = replication.lease.release().await {
                    tracing::warn!(error = %e, "could not release the stream lease; it runs out on its own");
                }
                shared.set_up(false);
                let mut state = shared.lock();
                if !state.wanted() {
                    state.running = false;
                    shared.loaded.send_replace(false);
                    tracing::info!("no subscriber left: no longer following the shared stream");
                    return;
                }
            }
            _ = read(&shared, replication) => {}
            _ = contend(&shared, replication) => {}
        }
    }
}

/// Delivers the shared stream's entries to this replica's subscribers, for ever.
async fn read(shared: &Shared, replication: &Replication) {
    let mut reader = None;
    let mut failing = false;
    loop {
        let Some(next) = reader.as_mut() else {
            match load(shared, replication).await {
                Ok(after) => {
                    reader = Some(replication.log.reader(after));
                    shared.loaded.send_replace(true);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "could not read the shared stream; retrying");
                    shared.lock().owe_resync = true;
                    tokio::time::sleep(RETRY).await;
                }
            }
            continue;
        };
        match next.next(BLOCK).await {
            Ok(entries) => {
                if std::mem::take(&mut failing) {
                    tracing::info!("reading the shared stream again");
                    generation_check(shared, replication).await;
                }
                for entry in entries {
                    deliver(shared, entry).await;
                }
            }
            Err(e) => {
                if !failing {
                    tracing::warn!(error = %e, "could not read the shared stream; subscribers get resync");
                }
                failing = true;
                shared.lock().owe_resync = true;
                tokio::time::sleep(RETRY).await;
            }
        }
    }
}

/// Reads the stream's generation and history into this replica's; returns the
/// id to read on from.
async fn load(
    shared: &Shared,
    replication: &Replication,
) -> Result<EntryId, crate::cluster::RedisError> {
    let generation = replication.log.generation().await?;
    let entries = replication.log.load().await?;
    let mut state = shared.lock();
    if state.epoch != generation.id {
        state.history.clear();
        state.epoch = generation.id;
    }
    // What changed after the stream began is news to its subscribers, what
    // changed before is where they started from (see `upstream::reconcile`).
    state.waiting_since = chrono::DateTime::from_timestamp_millis(generation.started_ms as i64);
    let last = state.history.back().map(|e| e.position);
    let mut after = last.map_or(EntryId::default(), |p| EntryId { ms: p.n, seq: p.s });
    for entry in entries {
        let position = position(state.epoch, entry.id);
        after = after.max(entry.id);
        if last.is_some_and(|last| position <= last) {
            continue;
        }
        let Some(event) = decode(&entry) else {
            continue;
        };
        learn(&mut state, &event);
        let entry = std::sync::Arc::new(super::Entry {
            position,
            event,
            resync: entry.resync,
            published: std::time::Instant::now(),
        });
        state.push(entry, &shared.settings);
    }
    Ok(after)
}

/// After Redis came back: if it lost the stream, what this replica holds belongs
/// to the old generation and cursors into it can no longer resume.
async fn generation_check(shared: &Shared, replication: &Replication) {
    let Ok(generation) = replication.log.generation().await else {
        return;
    };
    let mut state = shared.lock();
    if state.epoch != generation.id {
        tracing::warn!(
            "the shared stream was lost (Redis restarted empty): a new generation starts"
        );
        state.history.clear();
        state.epoch = generation.id;
        state.owe_resync = true;
    }
}

async fn deliver(shared: &Shared, entry: LogEntry) {
    let Some(event) = decode(&entry) else {
        shared.lock().owe_resync = true;
        return;
    };
    let epoch = {
        let mut state = shared.lock();
        learn(&mut state, &event);
        state.epoch
    };
    shared
        .deliver(position(epoch, entry.id), event, entry.resync)
        .await;
}

/// Contends for the lease, and holds the upstream while it has it.
async fn contend(shared: &Shared, replication: &Replication) {
    loop {
        match replication.lease.acquire().await {
            Ok(true) => {
                hold(shared, replication).await;
                if let Err(e) = replication.lease.release().await {
                    tracing::debug!(error = %e, "could not release the stream lease");
                }
            }
            Ok(false) => {}
            Err(e) => tracing::debug!(error = %e, "could not contend for the stream lease"),
        }
        tokio::time::sleep(replication.lease.renew_every()).await;
    }
}

async fn hold(shared: &Shared, replication: &Replication) {
    // What the previous holder appended is what subscribers were told: the
    // reconcile compares against it.
    // Only what was appended counts: events this replica took in but could not
    // append (Redis failed) are forgotten, so the reconcile tells them again.
    match replication.log.load().await {
        Ok(entries) => {
            let mut state = shared.lock();
            state.known = Known::default();
            state.connected_before = false;
            for event in entries.iter().filter_map(decode) {
                learn(&mut state, &event);
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, "could not read the shared stream before holding the upstream");
            return;
        }
    }
    let mut since = replication.log.broker_seq().await.ok().flatten();
    tracing::info!(since = ?since, "holding the broker stream for the replicas");
    tokio::select! {
        _ = renew(replication) => {
            tracing::warn!("the stream lease could not be renewed: stopping the upstream");
        }
        _ = upstream::follow(shared, &mut since) => {}
        _ = pump(replication) => {}
    }
    shared.set_up(false);
}

async fn pump(replication: &Replication) {
    match &replication.quotes {
        Some(quotes) => quotes.run().await,
        None => std::future::pending().await,
    }
}

/// Renews the lease; returns once it is lost, or could not be renewed for as
/// long as it lasts (another replica may hold it by now).
async fn renew(replication: &Replication) {
    let lease = &replication.lease;
    let mut renewed = Instant::now();
    loop {
        tokio::time::sleep(lease.renew_every()).await;
        match lease.renew().await {
            Ok(true) => renewed = Instant::now(),
            Ok(false) => return,
            Err(e) => {
                tracing::warn!(error = %e, "could not renew the stream lease");
                if renewed.elapsed() >= lease.renew_every() * 3 {
                    return;
                }
            }
        }
    }
}

/// Remembers what subscribers were told, as the holder's own events would.
fn learn(state: &mut super::State, event: &OrderEvent) {
    match event.kind {
        OrderEventKind::Reconciled => state.known.read(&event.order),
        _ => state.known.event(event),
    };
    state.told_until = state.told_until.max(Some(event.at));
}

fn decode(entry: &LogEntry) -> Option<OrderEvent> {
    match serde_json::from_str(&entry.payload) {
        Ok(event) => Some(event),
        Err(e) => {
            tracing::warn!(error = %e, id = ?entry.id, "unreadable entry in the shared stream: skipped");
            None
        }
    }
}

fn position(epoch: u64, id: EntryId) -> Position {
    Position {
        epoch,
        n: id.ms,
        s: id.seq,
    }
}
