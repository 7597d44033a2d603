//! One broker WebSocket shared by the order feed and the quote hub.
//!
//! A broker allows one stream connection per credential, and the generic dialect
//! carries order events and quotes on that one connection: whichever side opens
//! first connects, the other joins, and the connection closes when both have
//! left. A task owns the socket, so either side can send while the other reads.
//! The broker answers every request in the order it was sent (an acknowledgement
//! or an error), which is how an answer finds its request without ids.

use std::collections::VecDeque;
use std::pin::Pin;
use std::task::{Context, Poll};

use async_trait::async_trait;
use futures::{Stream, StreamExt};
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};

use super::Socket;
use crate::broker::quote_stream::{QuoteSession, QuoteSymbols};
use crate::broker::stream::{StreamError, StreamItem};
use crate::domain::Quote;

/// Pushes waiting for a slow reader before the link stops reading the socket.
const OUTLET: usize = 256;

/// What one message from the broker means to the link.
pub(crate) enum Inbound {
    /// The answer to the oldest unanswered request, with the broker's sequence
    /// number at that moment where it has one.
    Answer(Result<Option<u64>, StreamError>),
    Order(StreamItem),
    Quote(Quote),
    /// The connection cannot go on (refused credentials, a second connection).
    Fatal(StreamError),
}

/// How one dialect's messages read, and what it sends when a side leaves.
pub(crate) trait Protocol: Send + 'static {
    fn read(&mut self, data: &[u8]) -> Result<Vec<Inbound>, StreamError>;
    /// The request that stops `side`'s pushes while the other side stays, if any.
    fn leave(&self, side: Side) -> Option<Value>;
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Side {
    Orders,
    Quotes,
}

type Answer = oneshot::Sender<Result<Option<u64>, StreamError>>;

enum Command {
    Request { message: Value, answer: Answer },
    Attach(Outlet),
    Leave(Side),
}

enum Outlet {
    Orders(mpsc::Sender<Result<StreamItem, StreamError>>),
    Quotes(mpsc::Sender<Result<Quote, StreamError>>),
}

/// A handle on the connection's task; cheap to clone.
#[derive(Clone)]
pub(crate) struct Link {
    commands: mpsc::UnboundedSender<Command>,
}

impl Link {
    pub(crate) fn start(socket: Socket, protocol: impl Protocol) -> Link {
        let (commands, rx) = mpsc::unbounded_channel();
        tokio::spawn(run(socket, protocol, rx));
        Link { commands }
    }

    /// The connection ended: the next side to open connects anew.
    pub(crate) fn is_closed(&self) -> bool {
        self.commands.is_closed()
    }

    /// Sends `message` and waits for the broker's answer to it.
    pub(crate) async fn request(&self, message: Value) -> Result<Option<u64>, StreamError> {
        let (answer, reply) = oneshot::channel();
        self.commands
            .send(Command::Request { message, answer })
            .map_err(|_| ended())?;
        reply.await.map_err(|_| ended())?
    }

    /// The order events from now on; dropping the stream leaves.
    pub(crate) fn orders(&self) -> Result<Pushes<StreamItem>, StreamError> {
        let (tx, rx) = mpsc::channel(OUTLET);
        self.attach(Outlet::Orders(tx), Side::Orders, rx)
    }

    /// The quotes from now on, and the symbols they are for; dropping the session
    /// leaves.
    pub(crate) fn quote_session(&self) -> Result<QuoteSession, StreamError> {
        let (tx, rx) = mpsc::channel(OUTLET);
        let quotes = self.attach(Outlet::Quotes(tx), Side::Quotes, rx)?;
        Ok(QuoteSession {
            symbols: Box::new(self.clone()),
            quotes: quotes.boxed(),
        })
    }

    fn attach<T>(
        &self,
        outlet: Outlet,
        side: Side,
        rx: mpsc::Receiver<Result<T, StreamError>>,
    ) -> Result<Pushes<T>, StreamError> {
        self.commands
            .send(Command::Attach(outlet))
            .map_err(|_| ended())?;
        Ok(Pushes {
            rx,
            leave: Some((self.commands.clone(), side)),
        })
    }
}

/// Both dialects name quote symbols alike: `{"action": "subscribe", "quotes": [...]}`
/// (Alpaca's data stream took the shape the generic v1 stream copies).
#[async_trait]
impl QuoteSymbols for Link {
    async fn subscribe(&self, symbols: &[String]) -> Result<(), StreamError> {
        let message = serde_json::json!({ "action": "subscribe", "quotes": symbols });
        self.request(message).await.map(drop)
    }

    async fn unsubscribe(&self, symbols: &[String]) -> Result<(), StreamError> {
        let message = serde_json::json!({ "action": "unsubscribe", "quotes": symbols });
        self.request(message).await.map(drop)
    }
}

fn ended() -> StreamError {
    StreamError::Closed("the broker stream connection ended".into())
}

/// One side's pushes. Leaves the link when dropped.
pub(crate) struct Pushes<T> {
    rx: mpsc::Receiver<Result<T, StreamError>>,
    leave: Option<(mpsc::UnboundedSender<Command>, Side)>,
}

impl<T> Stream for Pushes<T> {
    type Item = Result<T, StreamError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.rx.poll_recv(cx)
    }
}

impl<T> Drop for Pushes<T> {
    fn drop(&mut self) {
        if let Some((commands, side)) = self.leave.take() {
            let _ = commands.send(Command::Leave(side));
        }
    }
}

async fn run(
    mut socket: Socket,
    mut protocol: impl Protocol,
    mut commands: mpsc::UnboundedReceiver<Command>,
) {
    // `None`: an answer nobody waits for (the request a leaving side sent), kept
    // so the answers after it still find their requests.
    let mut pending: VecDeque<Option<Answer>> = VecDeque::new();
    let mut orders = None;
    let mut quotes = None;
    let end = loop {
        tokio::select! {
            command = commands.recv() => match command {
                None => break ended(),
                Some(Command::Request { message, answer }) => {
                    if let Err(e) = socket.send_json(&message).await {
                        let _ = answer.send(Err(e.clone()));
                        break e;
                    }
                    pending.push_back(Some(answer));
                }
                Some(Command::Attach(Outlet::Orders(tx))) => orders = Some(tx),
                Some(Command::Attach(Outlet::Quotes(tx))) => quotes = Some(tx),
                Some(Command::Leave(side)) => {
                    match side {
                        Side::Orders => orders = None,
                        Side::Quotes => quotes = None,
                    }
                    if orders.is_none() && quotes.is_none() {
                        break StreamError::Closed("no one listens any more".into());
                    }
                    if let Some(message) = protocol.leave(side) {
                        if let Err(e) = socket.send_json(&message).await {
                            break e;
                        }
                        pending.push_back(None);
                    }
                }
            },
            data = socket.next_data() => {
                let data = match data {
                    Err(e) => break e,
                    Ok(None) => break StreamError::Closed("the broker closed the stream".into()),
                    Ok(Some(data)) => data,
                };
                let inbound = match protocol.read(&data) {
                    Ok(inbound) => inbound,
                    Err(e) => break e,
                };
                if let Some(e) = deliver(inbound, &mut pending, &mut orders, &mut quotes).await {
                    break e;
                }
            }
        }
    };
    tracing::debug!(reason = %end, "broker stream connection ended");
    for answer in pending.into_iter().flatten() {
        let _ = answer.send(Err(end.clone()));
    }
    if let Some(tx) = orders {
        let _ = tx.try_send(Err(end.clone()));
    }
    if let Some(tx) = quotes {
        let _ = tx.try_send(Err(end));
    }
}

/// Hands each message to whom it is for; a fatal one ends the connection.
async fn deliver(
    inbound: Vec<Inbound>,
    pending: &mut VecDeque<Option<Answer>>,
    orders: &mut Option<mpsc::Sender<Result<StreamItem, StreamError>>>,
    quotes: &mut Option<mpsc::Sender<Result<Quote, StreamError>>>,
) -> Option<StreamError> {
    for message in inbound {
        match message {
            Inbound::Answer(answer) => match pending.pop_front() {
                Some(Some(waiting)) => {
                    let _ = waiting.send(answer);
                }
                Some(None) => {}
                None => {
                    if let Err(e) = answer {
                        tracing::warn!(error = %e, "the broker stream reported an error");
                    }
                }
            },
            Inbound::Order(item) => {
                if let Some(tx) = orders {
                    if tx.send(Ok(item)).await.is_err() {
                        *orders = None;
                    }
                }
            }
            Inbound::Quote(quote) => {
                if let Some(tx) = quotes {
                    if tx.send(Ok(quote)).await.is_err() {
                        *quotes = None;
                    }
                }
            }
            Inbound::Fatal(e) => return Some(e),
        }
    }
    None
}
