//! The order streams' plumbing, shared by both dialects: one connection per API key,
//! the stream faults, pings, the counters of `/sim/stats`, and the ways a connection
//! ends. What is said over the socket is up to the dialect (`v1` here, Alpaca's trade
//! updates in `alpaca::stream`).

pub(crate) mod v1;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::ws::{CloseFrame, Message, WebSocket};
use tokio::sync::broadcast::{self, error::RecvError};
use tokio::sync::watch;
use tokio::time::{Instant, Interval};

use crate::events::OrderEvent;
use crate::state::{lock, stopped, AppState};

/// Why every connection is being closed at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CloseAll {
    /// `POST /sim/stream/drop`: as a network failure, without a closing handshake.
    Drop,
    /// `POST /sim/reset`: sequence numbers restart, so clients must reconnect.
    Restart,
}

/// Which per-key connection limit a connection counts against: Alpaca's market data
/// stream is a separate endpoint with its own one connection per key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// `GET /v1/stream`, or Alpaca's trade updates at `GET /stream`.
    Orders,
    /// Alpaca's market data stream at `/v2/iex` or `/v2/sip`.
    Data,
}

/// The registry of open connections and the switch that closes them all.
pub(crate) struct Streams {
    /// Accounts holding a connection: brokers allow one stream per key.
    open: Mutex<HashSet<usize>>,
    /// Accounts holding an Alpaca market data connection.
    data_open: Mutex<HashSet<usize>>,
    /// Each open connection's quote symbols, so that `/sim/stats` can show what a
    /// gateway has subscribed upstream.
    quotes: Mutex<HashMap<u64, BTreeSet<String>>>,
    next_id: std::sync::atomic::AtomicU64,
    closing: watch::Sender<(u64, CloseAll)>,
}

impl Streams {
    pub(crate) fn new() -> Streams {
        Streams {
            open: Mutex::new(HashSet::new()),
            data_open: Mutex::new(HashSet::new()),
            quotes: Mutex::new(HashMap::new()),
            next_id: std::sync::atomic::AtomicU64::new(0),
            closing: watch::channel((0, CloseAll::Drop)).0,
        }
    }

    pub(crate) fn open_count(&self) -> u64 {
        lock(&self.open).len() as u64
    }

    pub(crate) fn data_open_count(&self) -> u64 {
        lock(&self.data_open).len() as u64
    }

    /// The union of the quote symbols of every open connection, sorted.
    pub(crate) fn quote_symbols(&self) -> Vec<String> {
        let sets = lock(&self.quotes);
        let union: BTreeSet<&String> = sets.values().flatten().collect();
        union.into_iter().cloned().collect()
    }

    fn registry(&self, kind: Kind) -> &Mutex<HashSet<usize>> {
        match kind {
            Kind::Orders => &self.open,
            Kind::Data => &self.data_open,
        }
    }

    /// Closes every open connection; returns how many there were.
    pub(crate) fn close_all(&self, how: CloseAll) -> u64 {
        let open = self.open_count();
        self.closing
            .send_modify(|(generation, why)| (*generation, *why) = (*generation + 1, how));
        open
    }
}

/// Holds the account's one connection; released on drop, before the socket closes, so a
/// client that reconnects as soon as it sees the close is not refused.
struct Slot {
    app: Arc<AppState>,
    acct: usize,
    kind: Kind,
}

impl Drop for Slot {
    fn drop(&mut self) {
        lock(self.app.streams.registry(self.kind)).remove(&self.acct);
    }
}

/// A connection's quote symbols, as the registry shows them; unregistered on drop, so
/// a closed connection never counts as subscribed.
struct QuoteSet {
    app: Arc<AppState>,
    id: u64,
    symbols: BTreeSet<String>,
}

impl QuoteSet {
    fn publish(&self) {
        let mut sets = lock(&self.app.streams.quotes);
        if self.symbols.is_empty() {
            sets.remove(&self.id);
        } else {
            sets.insert(self.id, self.symbols.clone());
        }
    }
}

impl Drop for QuoteSet {
    fn drop(&mut self) {
        lock(&self.app.streams.quotes).remove(&self.id);
    }
}

/// Why a subscription to more quote symbols was refused.
#[derive(Debug)]
pub(crate) struct SymbolLimit {
    pub limit: usize,
}

/// How a connection ended, which decides how its socket is closed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Ended {
    /// The client closed, or the socket failed.
    Client,
    /// A `stream_drop` fault or `POST /sim/stream/drop`: no closing handshake.
    Dropped,
    /// `POST /sim/reset`.
    Reset,
    Shutdown,
    /// The connection fell further behind the live events than the sim buffers.
    Lagged,
    /// The dialect refused the connection (limit, credentials) after saying why.
    Refused,
}

/// What a connection waits for next.
pub(crate) enum Next {
    Client(Bytes),
    Event(Arc<OrderEvent>),
    /// Time to send a quote for every subscribed symbol.
    Quotes,
    Ended(Ended),
}

/// Text frames for the generic stream, binary frames (JSON bytes) for Alpaca's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Framing {
    Text,
    Binary,
}

/// One stream connection.
pub(crate) struct Connection {
    app: Arc<AppState>,
    socket: WebSocket,
    route: &'static str,
    framing: Framing,
    slot: Option<Slot>,
    closing: watch::Receiver<(u64, CloseAll)>,
    shutdown: watch::Receiver<bool>,
    ping: Option<Interval>,
    quotes: QuoteSet,
    /// Runs while `quotes` has symbols, `quote_hz` times a second.
    quote_timer: Option<Interval>,
}

impl Connection {
    pub(crate) fn new(
        app: Arc<AppState>,
        socket: WebSocket,
        route: &'static str,
        framing: Framing,
    ) -> Connection {
        let ping = (app.config.stream_ping_ms > 0).then(|| {
            let period = Duration::from_millis(app.config.stream_ping_ms);
            let mut interval = tokio::time::interval_at(Instant::now() + period, period);
            // A busy connection owes no burst of pings afterwards.
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            interval
        });
        let quotes = QuoteSet {
            app: app.clone(),
            id: app
                .streams
                .next_id
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            symbols: BTreeSet::new(),
        };
        Connection {
            quotes,
            quote_timer: None,
            closing: app.streams.closing.subscribe(),
            shutdown: app.shutdown.clone(),
            app,
            socket,
            route,
            framing,
            slot: None,
            ping,
        }
    }

    /// Takes the account's one connection, or counts a refusal.
    pub(crate) fn claim(&mut self, acct: usize) -> bool {
        self.claim_kind(acct, Kind::Orders)
    }

    /// As [`Connection::claim`], against the limit of `kind`.
    pub(crate) fn claim_kind(&mut self, acct: usize, kind: Kind) -> bool {
        let claimed = lock(self.app.streams.registry(kind)).insert(acct);
        let mut stats = lock(&self.app.stats);
        let streams = &mut stats.stats.streams;
        match (kind, claimed) {
            (Kind::Orders, true) => streams.opened += 1,
            (Kind::Orders, false) => streams.refused += 1,
            (Kind::Data, true) => streams.data_opened += 1,
            (Kind::Data, false) => streams.data_refused += 1,
        }
        if claimed {
            self.slot = Some(Slot {
                app: self.app.clone(),
                acct,
                kind,
            });
        }
        claimed
    }

    /// Whether this connection holds its account's slot (has authenticated, for a
    /// dialect that authenticates in a message).
    pub(crate) fn is_claimed(&self) -> bool {
        self.slot.is_some()
    }

    /// The quote symbols subscribed on this connection, sorted.
    pub(crate) fn quote_symbols(&self) -> Vec<String> {
        self.quotes.symbols.iter().cloned().collect()
    }

    /// Adds `symbols` (the caller has dropped unknown ones), all or nothing: beyond
    /// `--stream-symbol-limit` nothing is added.
    pub(crate) fn add_quotes(&mut self, symbols: &[String]) -> Result<(), SymbolLimit> {
        let limit = self.app.config.stream_symbol_limit;
        let new = symbols
            .iter()
            .filter(|s| !self.quotes.symbols.contains(*s))
            .collect::<BTreeSet<_>>();
        if self.quotes.symbols.len() + new.len() > limit {
            return Err(SymbolLimit { limit });
        }
        self.quotes.symbols.extend(new.into_iter().cloned());
        self.quotes_changed();
        Ok(())
    }

    pub(crate) fn remove_quotes(&mut self, symbols: &[String]) {
        for s in symbols {
            self.quotes.symbols.remove(s);
        }
        self.quotes_changed();
    }

    fn quotes_changed(&mut self) {
        self.quotes.publish();
        let hz = self.app.config.quote_hz;
        if self.quotes.symbols.is_empty() || hz == 0 {
            self.quote_timer = None;
        } else if self.quote_timer.is_none() {
            let period = Duration::from_secs_f64(1.0 / f64::from(hz));
            // The first quotes go out at once: a new subscriber sees prices without
            // waiting a period.
            let mut interval = tokio::time::interval(period);
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            self.quote_timer = Some(interval);
        }
    }

    /// Waits for the next client message or live event, answering pings meanwhile.
    pub(crate) async fn next(
        &mut self,
        live: &mut Option<broadcast::Receiver<Arc<OrderEvent>>>,
    ) -> Next {
        loop {
            tokio::select! {
                biased;
                ended = interrupted(&mut self.closing, &self.shutdown) => return Next::Ended(ended),
                message = self.socket.recv() => match message {
                    Some(Ok(Message::Text(text))) => return Next::Client(Bytes::from(text)),
                    Some(Ok(Message::Binary(bytes))) => return Next::Client(bytes),
                    // The WebSocket layer answers pings by itself.
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                    Some(Ok(Message::Close(_)) | Err(_)) | None => return Next::Ended(Ended::Client),
                },
                event = next_live(live) => match event {
                    Ok(event) => return Next::Event(event),
                    Err(RecvError::Lagged(missed)) => {
                        tracing::info!(route = self.route, missed, "stream fell behind; closing it");
                        return Next::Ended(Ended::Lagged);
                    }
                    // The engine was rebuilt by a reset.
                    Err(RecvError::Closed) => return Next::Ended(Ended::Reset),
                },
                _ = tick(&mut self.quote_timer) => return Next::Quotes,
                _ = tick(&mut self.ping) => {
                    if let Err(ended) = self.write(Message::Ping(Bytes::new())).await {
                        return Next::Ended(ended);
                    }
                }
            }
        }
    }

    /// A protocol message (acknowledgement, error): never subject to faults.
    pub(crate) async fn send(&mut self, json: String) -> Result<(), Ended> {
        let message = match self.framing {
            Framing::Text => Message::Text(json.into()),
            Framing::Binary => Message::Binary(json.into()),
        };
        self.write(message).await?;
        lock(&self.app.stats).stats.streams.sent += 1;
        Ok(())
    }

    /// A quote: counted apart, and not subject to the stream faults (they are about the
    /// order events a client must not miss; a lost quote is replaced by the next one).
    pub(crate) async fn send_quote(&mut self, json: String) -> Result<(), Ended> {
        self.send_quotes(json, 1).await
    }

    /// A frame carrying `count` quotes (Alpaca batches them in one array).
    pub(crate) async fn send_quotes(&mut self, json: String, count: u64) -> Result<(), Ended> {
        self.send(json).await?;
        lock(&self.app.stats).stats.streams.quotes_sent += count;
        Ok(())
    }

    /// An order event: the stream faults roll for it first.
    pub(crate) async fn deliver(&mut self, json: String) -> Result<(), Ended> {
        let plan = lock(&self.app.faults).plan_stream(self.route);
        if !plan.delay.is_zero() {
            lock(&self.app.stats).fault("stream_delay");
            tokio::select! {
                biased;
                ended = interrupted(&mut self.closing, &self.shutdown) => return Err(ended),
                _ = tokio::time::sleep(plan.delay) => {}
            }
        }
        if plan.drop {
            lock(&self.app.stats).fault("stream_drop");
            return Err(Ended::Dropped);
        }
        if plan.lose {
            let mut stats = lock(&self.app.stats);
            stats.fault("stream_lose");
            stats.stats.streams.lost += 1;
            return Ok(());
        }
        if plan.duplicate {
            lock(&self.app.stats).fault("stream_duplicate");
            self.send(json.clone()).await?;
        }
        self.send(json).await
    }

    /// Writes one frame, giving up if the connection is being closed meanwhile (a client
    /// that stops reading must not keep it open).
    async fn write(&mut self, message: Message) -> Result<(), Ended> {
        tokio::select! {
            biased;
            ended = interrupted(&mut self.closing, &self.shutdown) => Err(ended),
            sent = self.socket.send(message) => sent.map_err(|_| Ended::Client),
        }
    }

    /// Closes the socket as `ended` says, after releasing the account's slot.
    pub(crate) async fn close(mut self, ended: Ended) {
        drop(self.slot.take());
        let (code, reason) = match ended {
            Ended::Client | Ended::Dropped => return,
            Ended::Reset => (1012, "the broker was reset"),
            Ended::Shutdown => (1001, "the broker is shutting down"),
            Ended::Lagged => (1013, "too far behind; reconnect"),
            Ended::Refused => (1008, "refused"),
        };
        let frame = CloseFrame {
            code,
            reason: reason.into(),
        };
        // Bounded: a client that does not read must not hold the task.
        let _ = tokio::time::timeout(
            Duration::from_secs(1),
            self.socket.send(Message::Close(Some(frame))),
        )
        .await;
    }
}

async fn next_live(
    live: &mut Option<broadcast::Receiver<Arc<OrderEvent>>>,
) -> Result<Arc<OrderEvent>, RecvError> {
    match live {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

async fn tick(ping: &mut Option<Interval>) {
    match ping {
        Some(interval) => {
            interval.tick().await;
        }
        None => std::future::pending().await,
    }
}

/// Resolves when every connection is told to close, or the sim shuts down.
async fn interrupted(
    closing: &mut watch::Receiver<(u64, CloseAll)>,
    shutdown: &watch::Receiver<bool>,
) -> Ended {
    tokio::select! {
        changed = closing.changed() => match changed {
            Ok(()) => match closing.borrow_and_update().1 {
                CloseAll::Drop => Ended::Dropped,
                CloseAll::Restart => Ended::Reset,
            },
            Err(_) => Ended::Shutdown,
        },
        _ = stopped(shutdown.clone()) => Ended::Shutdown,
    }
}
