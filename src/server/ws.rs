//! GraphQL over WebSocket on the upgrade of `GET /graphql`: `graphql-transport-ws`
//! (the graphql-ws library's protocol) and the legacy `graphql-ws`
//! (subscriptions-transport-ws), with the rules async-graphql's own handler lacks:
//! authentication by the upgrade's `Authorization` header or the `connection_init`
//! payload, the init timeout (4408), duplicate ids (4409), a second init (4429),
//! connections per key (4429), operations per connection, server pings that close
//! a client that stops answering, and bounded buffers for a client that reads
//! slowly or not at all.
//!
//! One connection is three kinds of task: this module's loop reads the client's
//! frames and answers control messages; each operation runs in a task of its own;
//! one writer owns the socket's sending half. Operations send through a bounded
//! channel and reserve their slot before polling their stream, so a stream is read
//! only when the client is keeping up and each connection buffers at most one
//! message per operation; the writer sends the loop's control messages first.
//!
//! Close codes: 4400 a frame that is none of the protocol's messages (the legacy
//! protocol answers `connection_error` instead and goes on), 4401 `subscribe`
//! before the connection is acknowledged, 4403 refused credentials (and a JWT
//! session whose token expired), 4408 no `connection_init` within
//! `subscriptions.init_timeout_ms`, 4409 an id already running, 4429 a second
//! `connection_init` or too many connections for the key,
//! 3008 no answer to a ping, 1001 the server shutting down.

mod protocol;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Extension, State};
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::Response;
use futures::stream::{BoxStream, SplitSink, StreamExt};
use futures::SinkExt;
use tokio::sync::mpsc;
use tokio::task::AbortHandle;
use tokio::time::{Instant, Interval, MissedTickBehavior};

use super::graphql_http::{self, error_response};
use super::live::{
    self, coded_errors, is_subscription, refused_before_execution, GatewayOperations, KeySlot,
    Live, Operations,
};
use super::AppState;
use crate::auth::Principal;
use crate::graphql::{Answer, ErrorCode};
pub(crate) use protocol::Protocol;
use protocol::{clip, Authorization, BadMessage, ClientMessage};

/// Control messages (acks, pongs, refusals) waiting for the writer.
const CONTROL_BUFFER: usize = 8;
/// The socket's read buffer: frames are small, and a connection should cost
/// kilobytes, not tungstenite's default 128 KiB.
const READ_BUFFER_BYTES: usize = 4 * 1024;
/// Bytes the socket gathers before writing; each message is flushed anyway.
const WRITE_BUFFER_BYTES: usize = 4 * 1024;
/// The longest a closing connection waits for its close frame to go out.
const CLOSE_GRACE: Duration = Duration::from_secs(1);

/// `GET /graphql`: a WebSocket upgrade is served here, anything else by
/// `graphql_http::get_graphql` (GraphiQL, or a query sent as a GET).
pub(crate) async fn get_graphql(
    State(state): State<AppState>,
    Extension(live): Extension<Arc<Live>>,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    match upgrade {
        Ok(upgrade) => serve_upgrade(Arc::new(GatewayOperations(state)), live, &headers, upgrade),
        Err(rejection) if wants_upgrade(&headers) => error_response(
            rejection.status(),
            &format!("bad WebSocket upgrade: {}", rejection.body_text()),
            ErrorCode::BadUserInput,
        ),
        Err(_) => graphql_http::get_graphql(State(state), headers, uri).await,
    }
}

fn wants_upgrade(headers: &HeaderMap) -> bool {
    headers
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("websocket"))
}

/// Checks what can be checked before upgrading (subscriptions on, the origin, the
/// subprotocol), then hands the socket to a [`Connection`].
pub(crate) fn serve_upgrade<O: Operations>(
    ops: Arc<O>,
    live: Arc<Live>,
    headers: &HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
    if !live.settings.enabled {
        return error_response(
            StatusCode::FORBIDDEN,
            "subscriptions are turned off on this gateway (subscriptions.enabled = false)",
            ErrorCode::Forbidden,
        );
    }
    if live.is_shut_down() {
        return error_response(
            StatusCode::SERVICE_UNAVAILABLE,
            "the gateway is shutting down",
            ErrorCode::BrokerUnavailable,
        );
    }
    if !origin_allowed(headers, &live.origins) {
        // A browser opens a WebSocket to any address from any page, without CORS:
        // only the gateway's own pages and `server.cors_origins` may.
        return error_response(
            StatusCode::FORBIDDEN,
            "WebSocket from an origin that is not allowed; add it to server.cors_origins",
            ErrorCode::Forbidden,
        );
    }
    let offered: Vec<String> = upgrade
        .requested_protocols()
        .filter_map(|v| v.to_str().ok().map(str::to_owned))
        .collect();
    let Ok(protocol) = Protocol::negotiate(offered.iter().map(String::as_str)) else {
        return error_response(
            StatusCode::BAD_REQUEST,
            "unsupported WebSocket subprotocol; offer `graphql-transport-ws` (or the legacy `graphql-ws`)",
            ErrorCode::BadUserInput,
        );
    };
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let max_message = live.max_message_bytes;
    upgrade
        .protocols([protocol.name()])
        .read_buffer_size(READ_BUFFER_BYTES)
        .write_buffer_size(WRITE_BUFFER_BYTES)
        .max_message_size(max_message)
        .max_frame_size(max_message)
        .on_upgrade(move |socket| Connection::new(ops, live, protocol, authorization).run(socket))
}

/// No `Origin` (not a browser), one of `allowed` (`*` included), or the gateway's
/// own (the origin's host and port are the request's `Host`).
fn origin_allowed(headers: &HeaderMap, allowed: &[String]) -> bool {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return true;
    };
    let Ok(origin) = origin.to_str() else {
        return false;
    };
    if allowed
        .iter()
        .any(|o| o == "*" || o.eq_ignore_ascii_case(origin))
    {
        return true;
    }
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    match (origin.split_once("://"), host) {
        (Some((_, authority)), Some(host)) => authority.eq_ignore_ascii_case(host),
        _ => false,
    }
}

/// What the read loop does after a frame.
enum Flow {
    Continue,
    /// Close the socket with this code and reason.
    Close(u16, String),
    /// The client is gone (closed, or stopped reading): just drop the socket.
    Gone,
}

/// An operation running on a connection.
struct Running {
    /// Tells this run of an id from an earlier one that just finished.
    generation: u64,
    task: AbortHandle,
}

type RunningOps = Arc<Mutex<HashMap<String, Running>>>;

fn lock(running: &RunningOps) -> std::sync::MutexGuard<'_, HashMap<String, Running>> {
    running.lock().unwrap_or_else(|e| e.into_inner())
}

/// After `connection_init` was accepted.
struct Session {
    principal: Principal,
    _slot: KeySlot,
}

struct Connection<O> {
    ops: Arc<O>,
    live: Arc<Live>,
    protocol: Protocol,
    /// The upgrade's `Authorization`, used when the init payload has none.
    header_authorization: Option<String>,
    running: RunningOps,
    generation: u64,
    init_received: bool,
    session: Option<Session>,
}

impl<O: Operations> Connection<O> {
    fn new(
        ops: Arc<O>,
        live: Arc<Live>,
        protocol: Protocol,
        header_authorization: Option<String>,
    ) -> Self {
        Connection {
            ops,
            live,
            protocol,
            header_authorization,
            running: Arc::default(),
            generation: 0,
            init_received: false,
            session: None,
        }
    }

    async fn run(mut self, socket: WebSocket) {
        let settings = self.live.settings.clone();
        let (sink, mut frames) = socket.split();
        let (control, control_rx) = mpsc::channel(CONTROL_BUFFER);
        // One slot per operation (reserved before its stream is polled), and room
        // for the answers the loop sends beside them.
        let (data, data_rx) = mpsc::channel(settings.max_per_connection + 1);
        let mut writer = tokio::spawn(write(sink, control_rx, data_rx));
        let out = Out {
            control,
            wait: settings.ping,
        };

        let init_deadline = tokio::time::sleep(settings.init_timeout);
        tokio::pin!(init_deadline);
        let shutdown = self.live.shutting_down();
        tokio::pin!(shutdown);
        let mut pings: Option<Interval> = None;
        let mut session_end: Option<SessionEnd> = None;
        // Whether the client sent anything since the last ping, and whether a ping
        // is waiting for that.
        let mut heard = true;
        let mut ping_sent = false;

        let close = loop {
            let flow = tokio::select! {
                biased;
                () = &mut shutdown => Flow::Close(1001, "server shutting down".into()),
                () = &mut init_deadline, if !self.init_received => {
                    Flow::Close(4408, "Connection initialisation timeout".into())
                }
                frame = frames.next() => match frame {
                    Some(Ok(frame)) => {
                        heard = true;
                        self.on_frame(frame, &out, &data).await
                    }
                    // A frame tungstenite could not read (over the size limit,
                    // broken framing), or a connection already gone.
                    Some(Err(_)) => Flow::Close(
                        4400,
                        "Invalid message received: unreadable or too large a frame".into(),
                    ),
                    None => Flow::Gone,
                },
                () = ends(&mut session_end) => {
                    Flow::Close(4403, "Forbidden: the session's token expired".into())
                }
                () = tick(&mut pings) => {
                    if ping_sent && !heard {
                        Flow::Close(3008, "no answer to ping".into())
                    } else {
                        heard = false;
                        ping_sent = true;
                        self.ping(&out).await
                    }
                }
            };
            match flow {
                Flow::Continue => {}
                Flow::Close(code, reason) => break Some((code, reason)),
                Flow::Gone => break None,
            }
            if let (None, Some(session)) = (&session_end, &self.session) {
                session_end = Some(Box::pin(live::session_end(&session.principal)));
            }
            if pings.is_none() && self.session.is_some() {
                let start = Instant::now() + settings.ping;
                let mut interval = tokio::time::interval_at(start, settings.ping);
                // Ticks missed while the loop waited on a slow client are not
                // made up: a ping and its check would come back to back.
                interval.set_missed_tick_behavior(MissedTickBehavior::Delay);
                pings = Some(interval);
            }
        };

        for (_, op) in lock(&self.running).drain() {
            op.task.abort();
        }
        drop(data);
        if let Some((code, reason)) = close {
            let frame = CloseFrame {
                code,
                reason: clip(&reason, 123).into(),
            };
            let _ =
                tokio::time::timeout(CLOSE_GRACE, out.control.send(Message::Close(Some(frame))))
                    .await;
        }
        drop(out);
        if tokio::time::timeout(CLOSE_GRACE, &mut writer)
            .await
            .is_err()
        {
            writer.abort();
        }
    }

    async fn on_frame(&mut self, frame: Message, out: &Out, data: &mpsc::Sender<Message>) -> Flow {
        match frame {
            Message::Text(text) => match ClientMessage::parse(self.protocol, text.as_str()) {
                Ok(message) => self.on_message(message, out, data).await,
                Err(BadMessage(reason)) => self.bad_message(reason, out).await,
            },
            Message::Binary(_) => {
                let reason = "Invalid message received: binary frames are not part of the protocol";
                self.bad_message(reason.into(), out).await
            }
            // tungstenite answers pings itself; a pong is the client being alive.
            Message::Ping(_) | Message::Pong(_) => Flow::Continue,
            Message::Close(_) => Flow::Gone,
        }
    }

    async fn bad_message(&self, reason: String, out: &Out) -> Flow {
        match self.protocol {
            Protocol::TransportWs => Flow::Close(4400, reason),
            // The legacy protocol reports a bad message and ignores it.
            Protocol::Legacy => {
                out.send(self.protocol.connection_error(&reason, None))
                    .await
            }
        }
    }

    /// Refuses the connection: the legacy protocol learns why in a
    /// `connection_error` first.
    async fn refuse(&self, code: u16, reason: String, error: ErrorCode, out: &Out) -> Flow {
        if self.protocol == Protocol::Legacy {
            let message = self
                .protocol
                .connection_error(&reason, Some(error.as_str()));
            if let Flow::Gone = out.send(message).await {
                return Flow::Gone;
            }
        }
        Flow::Close(code, reason)
    }

    async fn on_message(
        &mut self,
        message: ClientMessage,
        out: &Out,
        data: &mpsc::Sender<Message>,
    ) -> Flow {
        match message {
            ClientMessage::Init { authorization } => self.init(authorization, out).await,
            ClientMessage::Subscribe { id, request } => {
                self.subscribe(id, *request, out, data).await
            }
            ClientMessage::Complete { id } => {
                let stopped = lock(&self.running).remove(&id);
                match stopped {
                    Some(op) => {
                        op.task.abort();
                        // graphql-transport-ws sends nothing more for the id; the
                        // legacy protocol confirms the stop.
                        match self.protocol {
                            Protocol::TransportWs => Flow::Continue,
                            Protocol::Legacy => out.send(self.protocol.complete(&id)).await,
                        }
                    }
                    None => Flow::Continue,
                }
            }
            ClientMessage::Ping { payload } => out.send(self.protocol.pong(payload)).await,
            ClientMessage::Pong => Flow::Continue,
            ClientMessage::Terminate => Flow::Close(1000, String::new()),
        }
    }

    async fn init(&mut self, authorization: Option<Authorization>, out: &Out) -> Flow {
        if self.init_received {
            return Flow::Close(4429, "Too many initialisation requests".into());
        }
        self.init_received = true;
        let refused = "Forbidden: missing or unknown API key; send `Authorization: Bearer <key>` \
                       in the connection_init payload or with the upgrade request";
        let presented = match authorization {
            Some(Authorization::Value(value)) => Some(value),
            Some(Authorization::NotAString) => {
                return self
                    .refuse(4403, refused.into(), ErrorCode::Unauthenticated, out)
                    .await
            }
            None => self.header_authorization.clone(),
        };
        let Ok(principal) = self.ops.authenticate(presented.as_deref()).await else {
            return self
                .refuse(4403, refused.into(), ErrorCode::Unauthenticated, out)
                .await;
        };
        let Some(slot) = self.live.claim(&principal.key_id) else {
            let reason = format!(
                "Too many connections for gateway key `{}` (subscriptions.max_connections_per_key = {})",
                principal.key_id, self.live.settings.max_connections_per_key
            );
            return self.refuse(4429, reason, ErrorCode::RateLimited, out).await;
        };
        self.session = Some(Session {
            principal,
            _slot: slot,
        });
        if let Flow::Gone = out.send(self.protocol.ack()).await {
            return Flow::Gone;
        }
        match self.protocol {
            Protocol::TransportWs => Flow::Continue,
            Protocol::Legacy => out.send(self.protocol.keep_alive()).await,
        }
    }

    async fn subscribe(
        &mut self,
        id: String,
        request: async_graphql::Request,
        out: &Out,
        data: &mpsc::Sender<Message>,
    ) -> Flow {
        let Some(session) = &self.session else {
            return Flow::Close(4401, "Unauthorized".into());
        };
        let principal = session.principal.clone();
        let max = self.live.settings.max_per_connection;
        let refusal = {
            let running = lock(&self.running);
            if running.contains_key(&id) {
                return Flow::Close(4409, format!("Subscriber for {id} already exists"));
            }
            (running.len() >= max).then(|| {
                coded_errors(
                    &format!(
                        "more than {max} operations at once on one connection \
                         (subscriptions.max_per_connection); complete one first"
                    ),
                    ErrorCode::QueryTooComplex,
                )
            })
        };
        let refusal = refusal.or_else(|| self.ops.admit(&principal).err());
        if let Some(errors) = refusal {
            return out.send(self.protocol.error(&id, &errors)).await;
        }
        self.generation += 1;
        let op = Op {
            id: id.clone(),
            generation: self.generation,
            protocol: self.protocol,
            running: self.running.clone(),
            data: data.clone(),
        };
        let ops = self.ops.clone();
        // Registered under the lock it would remove itself under, so an operation
        // that finishes at once cannot remove itself before it is registered.
        let mut running = lock(&self.running);
        let task = if is_subscription(&request) {
            tokio::spawn(async move {
                let responses = ops.subscribe(request, principal).await;
                op.stream(responses).await;
            })
        } else {
            tokio::spawn(async move {
                let answer = ops.execute(request, principal).await;
                op.single(answer).await;
            })
        };
        running.insert(
            id,
            Running {
                generation: self.generation,
                task: task.abort_handle(),
            },
        );
        Flow::Continue
    }

    async fn ping(&self, out: &Out) -> Flow {
        if let Flow::Gone = out.send(self.protocol.keep_alive()).await {
            return Flow::Gone;
        }
        match self.protocol {
            Protocol::TransportWs => Flow::Continue,
            // The legacy `ka` has no answer; a WebSocket ping does (every client
            // library and browser answers it).
            Protocol::Legacy => out.frame(Message::Ping(Default::default())).await,
        }
    }
}

type SessionEnd = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;

/// Completes when the session's token expires, never before a session exists.
async fn ends(session_end: &mut Option<SessionEnd>) {
    match session_end {
        Some(end) => end.await,
        None => std::future::pending().await,
    }
}

/// Completes at the next ping, never while pings have not started.
async fn tick(pings: &mut Option<Interval>) {
    match pings {
        Some(pings) => {
            pings.tick().await;
        }
        None => std::future::pending().await,
    }
}

/// The read loop's way to the writer.
struct Out {
    control: mpsc::Sender<Message>,
    /// A client whose socket has not taken a control message within a ping
    /// interval is not reading: it is dropped rather than waited for.
    wait: Duration,
}

impl Out {
    async fn send(&self, text: String) -> Flow {
        self.frame(Message::Text(text.into())).await
    }

    async fn frame(&self, message: Message) -> Flow {
        match tokio::time::timeout(self.wait, self.control.send(message)).await {
            Ok(Ok(())) => Flow::Continue,
            _ => Flow::Gone,
        }
    }
}

/// One operation's task: its results to the writer, then off the running list.
struct Op {
    id: String,
    generation: u64,
    protocol: Protocol,
    running: RunningOps,
    data: mpsc::Sender<Message>,
}

impl Op {
    /// Takes the operation off the running list (unless a newer one has its id),
    /// before its last message goes out: a client may reuse the id as soon as it
    /// reads that message.
    fn finish(&self) {
        let mut running = lock(&self.running);
        if running
            .get(&self.id)
            .is_some_and(|r| r.generation == self.generation)
        {
            running.remove(&self.id);
        }
    }

    async fn single(self, answer: Answer) {
        let payload = match answer {
            Answer::Serialized(body) => String::from_utf8_lossy(&body).into_owned(),
            Answer::Response(response) if refused_before_execution(&response) => {
                self.finish();
                let errors = serde_json::to_value(&response.errors).unwrap_or_default();
                let _ = self
                    .data
                    .send(text(self.protocol.error(&self.id, &errors)))
                    .await;
                return;
            }
            Answer::Response(response) => to_json(&response),
        };
        if self
            .data
            .send(text(self.protocol.next(&self.id, &payload)))
            .await
            .is_err()
        {
            return;
        }
        self.finish();
        let _ = self.data.send(text(self.protocol.complete(&self.id))).await;
    }

    /// Polls `responses` only with a slot reserved for what it yields, so a client
    /// that does not read stops its streams instead of growing a queue.
    async fn stream(self, mut responses: BoxStream<'static, async_graphql::Response>) {
        let mut first = true;
        loop {
            let Ok(slot) = self.data.reserve().await else {
                return;
            };
            let Some(response) = responses.next().await else {
                self.finish();
                slot.send(text(self.protocol.complete(&self.id)));
                return;
            };
            if first && refused_before_execution(&response) {
                self.finish();
                let errors = serde_json::to_value(&response.errors).unwrap_or_default();
                slot.send(text(self.protocol.error(&self.id, &errors)));
                return;
            }
            first = false;
            slot.send(text(self.protocol.next(&self.id, &to_json(&response))));
        }
    }
}

fn text(s: String) -> Message {
    Message::Text(s.into())
}

fn to_json(response: &async_graphql::Response) -> String {
    serde_json::to_string(response).unwrap_or_else(|_| {
        coded_errors("could not serialize the result", ErrorCode::InternalError).to_string()
    })
}

/// The writer: control messages first, then operations' results; stops after a
/// close frame, when the socket fails, or when the read loop is done.
async fn write(
    mut sink: SplitSink<WebSocket, Message>,
    mut control: mpsc::Receiver<Message>,
    mut data: mpsc::Receiver<Message>,
) {
    loop {
        let message = tokio::select! {
            biased;
            message = control.recv() => match message {
                Some(message) => message,
                None => break,
            },
            Some(message) = data.recv() => message,
        };
        let closing = matches!(message, Message::Close(_));
        if sink.send(message).await.is_err() || closing {
            break;
        }
    }
    let _ = sink.close().await;
}

#[cfg(test)]
mod tests {
    //! The protocol against a schema of its own (a ticking subscription, a query
    //! that never answers, one that floods), over real sockets with a
    //! tungstenite client speaking it frame by frame.

    use std::net::SocketAddr;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use async_graphql::{Context, EmptyMutation, Object, Schema, Subscription};
    use axum::routing::get;
    use axum::Router;
    use futures::{stream, Stream};
    use serde_json::{json, Value};
    use tokio::net::TcpStream;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    use tokio_tungstenite::tungstenite::Message as Frame;
    use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

    use super::*;
    use crate::auth::{hash_key, AuthError, Authenticator};
    use crate::config::{Config, GatewayKeyConfig, Scope};

    /// Guards every read, so that a broken server fails a test instead of hanging it.
    const GUARD: Duration = Duration::from_secs(10);

    struct Query;

    #[Object]
    impl Query {
        async fn hello(&self) -> &'static str {
            "world"
        }

        async fn whoami(&self, ctx: &Context<'_>) -> String {
            ctx.data_unchecked::<Principal>().key_id.clone()
        }

        async fn hang(&self) -> i32 {
            std::future::pending().await
        }

        async fn fail(&self) -> async_graphql::Result<i32> {
            Err("boom".into())
        }
    }

    struct Sub;

    #[Subscription]
    impl Sub {
        async fn ticks(&self, count: i32) -> impl Stream<Item = i32> {
            stream::iter(0..count)
        }

        /// One tick every `ms`, for ever.
        async fn every(&self, ms: u64) -> impl Stream<Item = i32> {
            stream::unfold(0, move |n| async move {
                tokio::time::sleep(Duration::from_millis(ms)).await;
                Some((n, n + 1))
            })
        }

        /// `size`-byte strings as fast as they are taken, counting each.
        async fn flood(&self, ctx: &Context<'_>, size: usize) -> impl Stream<Item = String> {
            let pulled = ctx.data_unchecked::<Arc<AtomicUsize>>().clone();
            stream::repeat_with(move || {
                pulled.fetch_add(1, Ordering::SeqCst);
                "x".repeat(size)
            })
        }
    }

    struct TestOperations {
        schema: Schema<Query, EmptyMutation, Sub>,
        auth: Authenticator,
    }

    impl Operations for TestOperations {
        async fn authenticate(&self, authorization: Option<&str>) -> Result<Principal, AuthError> {
            self.auth.authenticate(authorization).await
        }

        fn admit(&self, _: &Principal) -> Result<(), Value> {
            Ok(())
        }

        async fn execute(&self, request: async_graphql::Request, principal: Principal) -> Answer {
            let response = self.schema.execute(request.data(principal)).await;
            Answer::Response(Box::new(response))
        }

        async fn subscribe(
            &self,
            request: async_graphql::Request,
            principal: Principal,
        ) -> BoxStream<'static, async_graphql::Response> {
            self.schema.execute_stream(request.data(principal))
        }
    }

    const KEY: &str = "Bearer key-one";

    struct Server {
        addr: SocketAddr,
        live: Arc<Live>,
        /// What `flood` subscriptions have produced so far.
        pulled: Arc<AtomicUsize>,
    }

    /// The protocol on port 0 with two keys (`one`, `two`) and `tweak`ed settings.
    async fn server(tweak: impl FnOnce(&mut Config)) -> Server {
        let keys = ["one", "two"].map(|id| GatewayKeyConfig {
            id: id.to_string(),
            sha256: hash_key(&format!("key-{id}")),
            scopes: vec![Scope::Read],
            account: "default".to_string(),
        });
        let mut config = Config {
            keys: keys.to_vec(),
            ..Config::default()
        };
        tweak(&mut config);
        let live = Arc::new(Live::new(&config));
        let pulled = Arc::new(AtomicUsize::new(0));
        let ops = Arc::new(TestOperations {
            schema: Schema::build(Query, EmptyMutation, Sub)
                .data(pulled.clone())
                .finish(),
            auth: Authenticator::new(&config.keys),
        });
        let handler_live = live.clone();
        let app = Router::new().route(
            "/graphql",
            get(move |upgrade: WebSocketUpgrade, headers: HeaderMap| {
                let (ops, live) = (ops.clone(), handler_live.clone());
                async move { serve_upgrade(ops, live, &headers, upgrade) }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        Server { addr, live, pulled }
    }

    struct Client {
        ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
        /// Answer the server's `ping` with `pong`, as graphql-ws clients do.
        answer_pings: bool,
    }

    async fn connect(addr: SocketAddr, protocol: Option<&str>, auth: Option<&str>) -> Client {
        let mut request = format!("ws://{addr}/graphql")
            .into_client_request()
            .unwrap();
        if let Some(protocol) = protocol {
            let value = protocol.parse().unwrap();
            request
                .headers_mut()
                .insert("sec-websocket-protocol", value);
        }
        if let Some(auth) = auth {
            request
                .headers_mut()
                .insert("authorization", auth.parse().unwrap());
        }
        let (ws, _) = tokio_tungstenite::connect_async(request).await.unwrap();
        Client {
            ws,
            answer_pings: true,
        }
    }

    /// `graphql-transport-ws`, acknowledged with key `one`.
    async fn ready(addr: SocketAddr) -> Client {
        let mut client = connect(addr, Some("graphql-transport-ws"), None).await;
        client.init(json!({ "Authorization": KEY })).await;
        client
    }

    impl Client {
        async fn send(&mut self, message: Value) {
            self.frame(Frame::Text(message.to_string().into())).await;
        }

        async fn frame(&mut self, frame: Frame) {
            self.ws.send(frame).await.expect("the socket takes a frame");
        }

        async fn init(&mut self, payload: Value) {
            self.send(json!({ "type": "connection_init", "payload": payload }))
                .await;
            assert_eq!(self.recv().await, json!({ "type": "connection_ack" }));
        }

        async fn subscribe(&mut self, id: &str, query: &str) {
            self.send(json!({ "type": "subscribe", "id": id, "payload": { "query": query } }))
                .await;
        }

        /// The next message (pings answered and skipped, unless told not to).
        async fn recv(&mut self) -> Value {
            loop {
                match self.next_frame().await {
                    Frame::Text(text) => {
                        let message: Value = serde_json::from_str(&text).unwrap();
                        if self.answer_pings && message["type"] == "ping" {
                            self.send(json!({ "type": "pong" })).await;
                            continue;
                        }
                        return message;
                    }
                    Frame::Close(frame) => panic!("closed while a message was expected: {frame:?}"),
                    _ => continue,
                }
            }
        }

        /// Reads until the server closes: its code and reason.
        async fn closed(&mut self) -> (u16, String) {
            loop {
                if let Frame::Close(frame) = self.next_frame().await {
                    let frame = frame.expect("a close frame with a code");
                    return (u16::from(frame.code), frame.reason.to_string());
                }
            }
        }

        async fn next_frame(&mut self) -> Frame {
            tokio::time::timeout(GUARD, self.ws.next())
                .await
                .expect("the server answers in time")
                .expect("the socket is open")
                .expect("a frame")
        }
    }

    #[tokio::test]
    async fn a_subscription_sends_each_event_then_complete() {
        let server = server(|_| {}).await;
        let mut client = ready(server.addr).await;
        client
            .subscribe("s1", "subscription { ticks(count: 3) }")
            .await;
        for n in 0..3 {
            assert_eq!(
                client.recv().await,
                json!({ "type": "next", "id": "s1", "payload": { "data": { "ticks": n } } })
            );
        }
        assert_eq!(
            client.recv().await,
            json!({ "type": "complete", "id": "s1" })
        );
        client.subscribe("q1", "{ hello whoami }").await;
        assert_eq!(
            client.recv().await["payload"]["data"],
            json!({ "hello": "world", "whoami": "one" })
        );
        assert_eq!(
            client.recv().await,
            json!({ "type": "complete", "id": "q1" })
        );
    }

    #[tokio::test]
    async fn the_upgrade_header_authenticates_when_the_payload_does_not() {
        let server = server(|_| {}).await;
        let mut client = connect(server.addr, None, Some("Bearer key-two")).await;
        client.init(json!({})).await;
        client.subscribe("q", "{ whoami }").await;
        assert_eq!(client.recv().await["payload"]["data"]["whoami"], "two");
        // The payload's key wins over the header's.
        let mut client = connect(server.addr, None, Some("Bearer key-two")).await;
        client.init(json!({ "authorization": KEY })).await;
        client.subscribe("q", "{ whoami }").await;
        assert_eq!(client.recv().await["payload"]["data"]["whoami"], "one");
    }

    #[tokio::test]
    async fn refused_credentials_close_with_4403() {
        let server = server(|_| {}).await;
        for (header, payload) in [
            (None, json!({})),
            (None, json!({ "Authorization": "Bearer wrong" })),
            (None, json!({ "Authorization": 17 })),
            (Some("Bearer wrong"), json!(null)),
        ] {
            let mut client = connect(server.addr, None, header).await;
            client
                .send(json!({ "type": "connection_init", "payload": payload }))
                .await;
            let (code, reason) = client.closed().await;
            assert_eq!(code, 4403, "{header:?} {payload}");
            assert!(reason.starts_with("Forbidden"), "{reason}");
        }
    }

    #[tokio::test]
    async fn subscribe_before_the_ack_closes_with_4401() {
        let server = server(|_| {}).await;
        let mut client = connect(server.addr, None, Some(KEY)).await;
        client.subscribe("s", "{ hello }").await;
        assert_eq!(client.closed().await, (4401, "Unauthorized".to_string()));
    }

    #[tokio::test]
    async fn no_connection_init_in_time_closes_with_4408() {
        let server = server(|c| c.subscriptions.init_timeout = Duration::from_millis(100)).await;
        let mut client = connect(server.addr, None, Some(KEY)).await;
        assert_eq!(
            client.closed().await,
            (4408, "Connection initialisation timeout".to_string())
        );
    }

    #[tokio::test]
    async fn a_second_connection_init_closes_with_4429() {
        let server = server(|_| {}).await;
        let mut client = ready(server.addr).await;
        client
            .send(json!({ "type": "connection_init", "payload": { "Authorization": KEY } }))
            .await;
        assert_eq!(
            client.closed().await,
            (4429, "Too many initialisation requests".to_string())
        );
    }

    #[tokio::test]
    async fn an_id_still_running_closes_with_4409_and_a_finished_one_is_free() {
        let server = server(|_| {}).await;
        let mut client = ready(server.addr).await;
        client.subscribe("done", "{ hello }").await;
        client.recv().await;
        assert_eq!(
            client.recv().await,
            json!({ "type": "complete", "id": "done" })
        );
        client.subscribe("done", "{ hello }").await;
        assert_eq!(client.recv().await["type"], "next");
        assert_eq!(client.recv().await["type"], "complete");

        client.subscribe("x", "{ hang }").await;
        client.subscribe("x", "{ hello }").await;
        assert_eq!(
            client.closed().await,
            (4409, "Subscriber for x already exists".to_string())
        );
    }

    #[tokio::test]
    async fn frames_outside_the_protocol_close_with_4400_and_the_server_goes_on() {
        let server = server(|_| {}).await;
        for frame in [
            Frame::Text("{not json".into()),
            Frame::Text(r#"{"type":"start","id":"1","payload":{"query":"{ hello }"}}"#.into()),
            Frame::Text(r#"{"type":"subscribe","payload":{"query":"{ hello }"}}"#.into()),
            Frame::Binary(vec![0xff, 0x00, 0x13, 0x37].into()),
        ] {
            let mut client = ready(server.addr).await;
            client.frame(frame.clone()).await;
            let (code, reason) = client.closed().await;
            assert_eq!(code, 4400, "{frame:?}");
            assert!(reason.starts_with("Invalid message received"), "{reason}");
        }
        // Also before connection_init.
        let mut client = connect(server.addr, None, None).await;
        client.frame(Frame::Binary(vec![1, 2, 3].into())).await;
        assert_eq!(client.closed().await.0, 4400);
        let mut client = ready(server.addr).await;
        client.subscribe("q", "{ hello }").await;
        assert_eq!(client.recv().await["payload"]["data"]["hello"], "world");
    }

    #[tokio::test]
    async fn a_message_over_the_size_limit_closes_the_socket() {
        let server = server(|c| c.server.body_limit_bytes = 1024).await;
        let mut client = ready(server.addr).await;
        let query = format!("{{ hello {} }}", " ".repeat(2048));
        client.subscribe("big", &query).await;
        assert_eq!(client.closed().await.0, 4400);
        let mut client = ready(server.addr).await;
        client.subscribe("q", "{ hello }").await;
        assert_eq!(client.recv().await["payload"]["data"]["hello"], "world");
    }

    #[tokio::test]
    async fn a_client_ping_is_answered_with_its_payload() {
        let server = server(|_| {}).await;
        let mut client = ready(server.addr).await;
        client
            .send(json!({ "type": "ping", "payload": { "at": 7 } }))
            .await;
        assert_eq!(
            client.recv().await,
            json!({ "type": "pong", "payload": { "at": 7 } })
        );
        client.send(json!({ "type": "ping" })).await;
        assert_eq!(client.recv().await, json!({ "type": "pong" }));
    }

    #[tokio::test]
    async fn the_server_pings_and_closes_a_client_that_stops_answering() {
        let server = server(|c| c.subscriptions.ping = Duration::from_millis(250)).await;
        let mut alive = ready(server.addr).await;
        alive.answer_pings = false;
        // Pings keep coming while they are answered.
        for _ in 0..4 {
            assert_eq!(alive.recv().await, json!({ "type": "ping" }));
            alive.send(json!({ "type": "pong" })).await;
        }
        alive.subscribe("q", "{ hello }").await;
        let mut next = alive.recv().await;
        while next["type"] == "ping" {
            next = alive.recv().await;
        }
        assert_eq!(next["payload"]["data"]["hello"], "world");

        let mut silent = ready(server.addr).await;
        silent.answer_pings = false;
        assert_eq!(silent.recv().await, json!({ "type": "ping" }));
        assert_eq!(
            silent.closed().await,
            (3008, "no answer to ping".to_string())
        );
    }

    #[tokio::test]
    async fn complete_from_the_client_stops_that_subscription_only() {
        let server = server(|_| {}).await;
        let mut client = ready(server.addr).await;
        client.subscribe("a", "subscription { every(ms: 5) }").await;
        client.subscribe("b", "subscription { every(ms: 5) }").await;
        let mut seen_a = 0;
        while seen_a < 2 {
            if client.recv().await["id"] == "a" {
                seen_a += 1;
            }
        }
        client.send(json!({ "type": "complete", "id": "a" })).await;
        // What was queued before the complete may still arrive; after `c`, started
        // after it, nothing of `a` may.
        client.subscribe("c", "{ hello }").await;
        while client.recv().await != json!({ "type": "complete", "id": "c" }) {}
        for _ in 0..10 {
            let message = client.recv().await;
            assert_eq!(message["id"], "b", "{message}");
        }
        // The id is free again.
        client.subscribe("a", "{ hello }").await;
        loop {
            let message = client.recv().await;
            if message["id"] == "a" {
                assert_eq!(message["payload"]["data"]["hello"], "world");
                break;
            }
        }
    }

    #[tokio::test]
    async fn one_operation_past_the_limit_is_an_error_message_with_query_too_complex() {
        let server = server(|c| c.subscriptions.max_per_connection = 2).await;
        let mut client = ready(server.addr).await;
        client.subscribe("1", "{ hang }").await;
        client
            .subscribe("2", "subscription { every(ms: 1000) }")
            .await;
        client.subscribe("3", "{ hello }").await;
        let error = client.recv().await;
        assert_eq!(error["type"], "error");
        assert_eq!(error["id"], "3");
        assert_eq!(
            error["payload"][0]["extensions"]["code"],
            "QUERY_TOO_COMPLEX"
        );
        // Completing one makes room.
        client.send(json!({ "type": "complete", "id": "1" })).await;
        client.subscribe("3", "{ hello }").await;
        assert_eq!(client.recv().await["payload"]["data"]["hello"], "world");
    }

    #[tokio::test]
    async fn errors_before_execution_are_error_messages_and_after_are_next() {
        let server = server(|_| {}).await;
        let mut client = ready(server.addr).await;
        client.subscribe("v", "{ nope }").await;
        let error = client.recv().await;
        assert_eq!(
            (&error["type"], &error["id"]),
            (&json!("error"), &json!("v"))
        );
        assert!(error["payload"][0]["message"].is_string(), "{error}");
        client.subscribe("s", "subscription { nope }").await;
        assert_eq!(client.recv().await["type"], "error");
        client.subscribe("e", "{ fail }").await;
        let next = client.recv().await;
        assert_eq!(next["type"], "next");
        assert_eq!(next["payload"]["errors"][0]["message"], "boom");
        assert_eq!(
            client.recv().await,
            json!({ "type": "complete", "id": "e" })
        );
    }

    #[tokio::test]
    async fn a_key_past_its_connection_limit_is_closed_with_4429() {
        let server = server(|c| c.subscriptions.max_connections_per_key = 2).await;
        let first = ready(server.addr).await;
        let _second = ready(server.addr).await;
        let mut third = connect(server.addr, None, Some(KEY)).await;
        third.send(json!({ "type": "connection_init" })).await;
        let (code, reason) = third.closed().await;
        assert_eq!(code, 4429);
        assert!(reason.contains("`one`"), "{reason}");
        // Another key is not affected, and a closed connection gives its slot back.
        let mut other = connect(server.addr, None, Some("Bearer key-two")).await;
        other.init(json!({})).await;
        drop(first);
        let mut retry = connect(server.addr, None, Some(KEY)).await;
        loop {
            retry.send(json!({ "type": "connection_init" })).await;
            match retry.next_frame().await {
                Frame::Text(_) => break,
                _ => {
                    // The first connection's close may not have been seen yet.
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    retry = connect(server.addr, None, Some(KEY)).await;
                }
            }
        }
    }

    #[tokio::test]
    async fn a_client_that_never_reads_stops_its_streams_and_slows_no_one_else() {
        let server = server(|_| {}).await;
        let mut stuck = ready(server.addr).await;
        stuck
            .subscribe("f", "subscription { flood(size: 65536) }")
            .await;
        // It never reads again. Its stream is pulled only while the socket and
        // the connection's few slots take more, then not at all.
        let mut last = usize::MAX;
        for _ in 0..100 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let now = server.pulled.load(Ordering::SeqCst);
            if now == last {
                break;
            }
            last = now;
        }
        let pulled = server.pulled.load(Ordering::SeqCst);
        assert_eq!(pulled, last, "the stream was still being pulled");
        assert!(pulled < 1024, "{pulled} messages of 64 KiB were queued");
        let mut other = ready(server.addr).await;
        other
            .subscribe("t", "subscription { ticks(count: 2) }")
            .await;
        assert_eq!(other.recv().await["payload"]["data"]["ticks"], 0);
        assert_eq!(other.recv().await["payload"]["data"]["ticks"], 1);
        assert_eq!(other.recv().await["type"], "complete");
        assert_eq!(server.pulled.load(Ordering::SeqCst), pulled);
        drop(stuck);
    }

    #[tokio::test]
    async fn the_legacy_protocol_speaks_its_own_messages() {
        let server = server(|_| {}).await;
        let mut client = connect(server.addr, Some("graphql-ws"), None).await;
        client
            .send(json!({ "type": "connection_init", "payload": { "Authorization": KEY } }))
            .await;
        assert_eq!(client.recv().await, json!({ "type": "connection_ack" }));
        assert_eq!(client.recv().await, json!({ "type": "ka" }));
        client
            .send(json!({ "type": "start", "id": "1", "payload": { "query": "subscription { ticks(count: 1) }" } }))
            .await;
        assert_eq!(
            client.recv().await,
            json!({ "type": "data", "id": "1", "payload": { "data": { "ticks": 0 } } })
        );
        assert_eq!(
            client.recv().await,
            json!({ "type": "complete", "id": "1" })
        );
        // A bad message is reported, and the connection goes on.
        client.frame(Frame::Text("junk".into())).await;
        assert_eq!(client.recv().await["type"], "connection_error");
        client
            .send(json!({ "type": "start", "id": "2", "payload": { "query": "subscription { every(ms: 1000) }" } }))
            .await;
        client.send(json!({ "type": "stop", "id": "2" })).await;
        assert_eq!(
            client.recv().await,
            json!({ "type": "complete", "id": "2" })
        );
        client.send(json!({ "type": "connection_terminate" })).await;
        assert_eq!(client.closed().await.0, 1000);
    }

    #[tokio::test]
    async fn the_legacy_protocol_learns_why_it_was_refused() {
        let server = server(|_| {}).await;
        let mut client = connect(server.addr, Some("graphql-ws"), None).await;
        client.send(json!({ "type": "connection_init" })).await;
        let error = client.recv().await;
        assert_eq!(error["type"], "connection_error");
        assert_eq!(error["payload"]["extensions"]["code"], "UNAUTHENTICATED");
        assert_eq!(client.closed().await.0, 4403);
    }

    #[tokio::test]
    async fn shutting_down_closes_every_socket_with_1001() {
        let server = server(|_| {}).await;
        let mut client = ready(server.addr).await;
        client
            .subscribe("a", "subscription { every(ms: 1000) }")
            .await;
        server.live.shut_down();
        assert_eq!(client.closed().await.0, 1001);
    }

    #[test]
    fn browsers_may_connect_from_the_gateways_own_origin_and_the_allowed_ones() {
        let headers = |origin: Option<&'static str>| {
            let mut h = HeaderMap::new();
            h.insert(header::HOST, "127.0.0.1:8080".parse().unwrap());
            if let Some(o) = origin {
                h.insert(header::ORIGIN, o.parse().unwrap());
            }
            h
        };
        let allowed = ["https://app.example".to_string()];
        assert!(origin_allowed(&headers(None), &[]));
        assert!(origin_allowed(&headers(Some("http://127.0.0.1:8080")), &[]));
        assert!(origin_allowed(
            &headers(Some("https://app.example")),
            &allowed
        ));
        assert!(!origin_allowed(
            &headers(Some("https://evil.example")),
            &allowed
        ));
        assert!(!origin_allowed(&headers(Some("null")), &[]));
        assert!(origin_allowed(
            &headers(Some("https://evil.example")),
            &["*".into()]
        ));
    }
}
