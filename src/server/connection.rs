//! One connection's timeouts and its place in the connection gauges.
//!
//! hyper's own `header_read_timeout` is not used: it is HTTP/1 only, and it also
//! runs while a keep-alive connection waits for its next request, so an idle
//! connection would be closed at the header timeout and a keep-alive timeout
//! longer than it could not exist. Instead each connection shares a [`Watch`]
//! between its socket ([`WatchedStream`]) and its requests ([`Serve`]), which
//! knows which phase the connection is in and so which deadline applies:
//!
//! - *head*, from accept, and on HTTP/1 from the first byte of a later request,
//!   until a request's headers are parsed: `server.header_read_timeout_ms`;
//! - *busy*, while any request is in flight or its response body is being sent
//!   (an SSE stream included): no deadline; the request timeout, the body read
//!   timeout and the write-stall check bound it instead;
//! - *idle*, from the end of the last response: `server.keep_alive_timeout_ms`
//!   (over HTTP/2, frames without a request do not end idleness: a client's pings
//!   keep no connection open forever);
//! - *upgraded*, after `101 Switching Protocols`: no deadline ever again; the
//!   WebSocket has its own life.
//!
//! A deadline is enforced where hyper waits, in the socket's `poll_read`: the read
//! fails with `TimedOut`, and hyper drops the connection without an answer (a
//! client stalled in its headers would not read one).

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use axum::body::Body;
use axum::http::{header, HeaderValue, Request, Response, StatusCode, Version};
use axum::Router;
use hyper::body::{Body as HttpBody, Frame, Incoming, SizeHint};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::OwnedSemaphorePermit;
use tokio::time::{Instant, Sleep};
use tower::ServiceExt;

use super::graphql_http::error_response_with;
use crate::graphql::ErrorCode;
use crate::metrics::{ConnectionGuard, ConnectionKind, Connections, Refusal, TimeoutKind};

/// The two per-connection timeouts.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Timeouts {
    pub(crate) header: Duration,
    pub(crate) keep_alive: Duration,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Head,
    Busy,
    Idle,
    Upgraded,
}

/// What a connection's socket and its requests share.
pub(crate) struct Watch {
    timeouts: Timeouts,
    connections: Arc<Connections>,
    state: Mutex<State>,
}

struct State {
    phase: Phase,
    /// When the current phase's timeout fires; `None` while busy or upgraded.
    deadline: Option<Instant>,
    in_flight: usize,
    http2: bool,
    /// The task waiting in `poll_read`, woken when a request on another task (an
    /// HTTP/2 stream) ends and the idle deadline starts.
    reader: Option<Waker>,
    /// This connection in the gauge; moved between kinds on upgrade and SSE.
    gauge: ConnectionGuard,
    /// Closed to make room for a newer connection (`listener`'s overflow slots).
    displaced: bool,
}

/// Why a waiting read ends the connection.
#[derive(Clone, Copy, Debug)]
enum Closing {
    Timeout(TimeoutKind),
    Displaced,
}

impl Watch {
    pub(crate) fn new(timeouts: Timeouts, connections: Arc<Connections>) -> Arc<Watch> {
        let gauge = connections.opened(ConnectionKind::Http);
        Arc::new(Watch {
            timeouts,
            connections,
            state: Mutex::new(State {
                phase: Phase::Head,
                deadline: Some(Instant::now() + timeouts.header),
                in_flight: 0,
                http2: false,
                reader: None,
                gauge,
                displaced: false,
            }),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Bytes arrived. On an idle HTTP/1 connection they are the start of the next
    /// request, whose headers now have the header timeout.
    fn bytes_read(&self) {
        let mut s = self.lock();
        if s.phase == Phase::Idle && !s.http2 {
            s.phase = Phase::Head;
            s.deadline = Some(Instant::now() + self.timeouts.header);
        }
    }

    /// The deadline a reader waiting now must honour, and what its firing means;
    /// remembers the reader to wake when the deadline changes.
    fn deadline(&self, waker: &Waker) -> Option<(Instant, Closing)> {
        let mut s = self.lock();
        if !s.reader.as_ref().is_some_and(|w| w.will_wake(waker)) {
            s.reader = Some(waker.clone());
        }
        let kind = match s.phase {
            _ if s.displaced => return Some((Instant::now(), Closing::Displaced)),
            Phase::Head => TimeoutKind::Header,
            Phase::Idle => TimeoutKind::Idle,
            Phase::Busy | Phase::Upgraded => return None,
        };
        s.deadline.map(|d| (d, Closing::Timeout(kind)))
    }

    /// Closes the connection if it has not sent a whole request head yet; whether
    /// it did. A connection being answered is left alone.
    pub(crate) fn displace_if_stalled(&self) -> bool {
        let mut s = self.lock();
        if s.phase != Phase::Head || s.displaced {
            return false;
        }
        s.displaced = true;
        if let Some(reader) = s.reader.take() {
            reader.wake();
        }
        true
    }

    fn upgraded(&self) -> bool {
        self.lock().phase == Phase::Upgraded
    }

    /// A request's headers were parsed: the connection is busy until its response
    /// has been sent.
    fn request_started(self: &Arc<Self>, version: Version) -> InFlight {
        let mut s = self.lock();
        s.in_flight += 1;
        s.http2 |= version == Version::HTTP_2;
        if s.phase != Phase::Upgraded {
            s.phase = Phase::Busy;
            s.deadline = None;
        }
        InFlight {
            watch: self.clone(),
            sse: None,
        }
    }

    fn request_ended(&self, sse: Option<Sse>) {
        let mut s = self.lock();
        s.in_flight -= 1;
        if sse == Some(Sse::Connection) && s.phase != Phase::Upgraded {
            s.gauge.reclassify(ConnectionKind::Http);
        }
        if s.in_flight == 0 && s.phase == Phase::Busy {
            s.phase = Phase::Idle;
            s.deadline = Some(Instant::now() + self.timeouts.keep_alive);
            if let Some(reader) = s.reader.take() {
                reader.wake();
            }
        }
    }
}

/// How an SSE response is counted: over HTTP/1.1 it has its connection to itself,
/// which moves to the `sse` kind; over HTTP/2 it is one stream among others, counted
/// on its own while its connection stays `http`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Sse {
    Connection,
    Stream,
}

/// One request in flight, until its response body is dropped (sent, or abandoned
/// with the connection): hyper drops the body once the last frame is written.
struct InFlight {
    watch: Arc<Watch>,
    sse: Option<Sse>,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.watch.request_ended(self.sse);
    }
}

/// A response body that keeps its request in flight (and its SSE stream counted)
/// for as long as hyper holds it.
pub(crate) struct Tracked {
    inner: Body,
    _in_flight: InFlight,
    _stream: Option<ConnectionGuard>,
}

impl HttpBody for Tracked {
    type Data = bytes::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Paths still served on a connection over `server.max_connections`, so that
/// probes and scrapes see the gateway during a flood instead of its refusals.
const PROBES: [&str; 3] = ["/healthz", "/readyz", "/metrics"];

/// The hyper service of one connection: the router, with the connection's phase
/// kept up to date. `overflow`: the connection is over the cap and answers 503 to
/// anything but [`PROBES`].
#[derive(Clone)]
pub(crate) struct Serve {
    pub(crate) router: Router,
    pub(crate) watch: Arc<Watch>,
    pub(crate) overflow: bool,
}

impl hyper::service::Service<Request<Incoming>> for Serve {
    type Response = Response<Tracked>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn call(&self, request: Request<Incoming>) -> Self::Future {
        let mut in_flight = self.watch.request_started(request.version());
        let watch = self.watch.clone();
        let router = self.router.clone();
        let refuse = self.overflow && !PROBES.contains(&request.uri().path());
        Box::pin(async move {
            let response = if refuse {
                watch.connections.refused(Refusal::Answered);
                over_capacity()
            } else {
                match router.oneshot(request).await {
                    Ok(response) => response,
                    Err(never) => match never {},
                }
            };
            let stream = classify(&watch, &mut in_flight, &response);
            Ok(response.map(|inner| Tracked {
                inner,
                _in_flight: in_flight,
                _stream: stream,
            }))
        })
    }
}

/// Moves the connection to the kind its response makes it: a WebSocket after an
/// upgrade (for good), an SSE stream while the response is sent.
fn classify(
    watch: &Watch,
    in_flight: &mut InFlight,
    response: &Response<Body>,
) -> Option<ConnectionGuard> {
    let mut s = watch.lock();
    if response.status() == StatusCode::SWITCHING_PROTOCOLS {
        s.phase = Phase::Upgraded;
        s.deadline = None;
        let websocket = response
            .headers()
            .get(header::UPGRADE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
        if websocket {
            s.gauge.reclassify(ConnectionKind::WebSocket);
        }
        return None;
    }
    let event_stream = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().starts_with("text/event-stream"));
    if !event_stream {
        return None;
    }
    if s.http2 {
        in_flight.sse = Some(Sse::Stream);
        Some(watch.connections.opened(ConnectionKind::Sse))
    } else {
        in_flight.sse = Some(Sse::Connection);
        s.gauge.reclassify(ConnectionKind::Sse);
        None
    }
}

/// The answer on a connection over the cap: the GraphQL error shape like every
/// refusal, `RATE_LIMITED` because what a client should do is the same (retry
/// after a second, perhaps on another replica).
fn over_capacity() -> Response<Body> {
    let mut response = error_response_with(
        StatusCode::SERVICE_UNAVAILABLE,
        "the gateway is at server.max_connections; retry in 1 s",
        ErrorCode::RateLimited,
        serde_json::Map::from_iter([("retryAfterSeconds".into(), 1.into())]),
    );
    let headers = response.headers_mut();
    headers.insert(header::RETRY_AFTER, HeaderValue::from(1));
    response
}

/// The socket of one connection: enforces the [`Watch`]'s deadlines where hyper
/// waits for bytes, and a write that makes no progress for the keep-alive timeout
/// (a client that stopped reading a response). Holds the connection's place under
/// the cap for as long as the socket is open, after an upgrade too.
pub(crate) struct WatchedStream {
    inner: TcpStream,
    watch: Arc<Watch>,
    read_timer: Pin<Box<Sleep>>,
    read_armed: Option<Instant>,
    write_timer: Pin<Box<Sleep>>,
    /// A write has returned `Pending` since the last one that made progress.
    write_stalled: bool,
    _permit: OwnedSemaphorePermit,
}

impl WatchedStream {
    pub(crate) fn new(
        inner: TcpStream,
        watch: Arc<Watch>,
        permit: OwnedSemaphorePermit,
    ) -> WatchedStream {
        let far = Instant::now() + Duration::from_secs(86_400 * 365);
        WatchedStream {
            inner,
            watch,
            read_timer: Box::pin(tokio::time::sleep_until(far)),
            read_armed: None,
            write_timer: Box::pin(tokio::time::sleep_until(far)),
            write_stalled: false,
            _permit: permit,
        }
    }

    fn expired(&self, why: Closing) -> io::Error {
        match why {
            Closing::Timeout(kind) => self.watch.connections.timed_out(kind),
            Closing::Displaced => self.watch.connections.refused(Refusal::Closed),
        }
        tracing::debug!(?why, "closing a connection");
        io::Error::new(io::ErrorKind::TimedOut, "connection timed out")
    }

    /// A write returned `Pending`: fails it once it has made no progress for the
    /// keep-alive timeout.
    fn write_pending(&mut self, cx: &mut Context<'_>) -> Poll<io::Error> {
        if self.watch.upgraded() {
            return Poll::Pending;
        }
        if !self.write_stalled {
            let deadline = Instant::now() + self.watch.timeouts.keep_alive;
            self.write_timer.as_mut().reset(deadline);
            self.write_stalled = true;
        }
        match self.write_timer.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(self.expired(Closing::Timeout(TimeoutKind::Write))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn write_result<T>(
        &mut self,
        cx: &mut Context<'_>,
        result: Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        match result {
            Poll::Ready(r) => {
                self.write_stalled = false;
                Poll::Ready(r)
            }
            Poll::Pending => self.write_pending(cx).map(Err),
        }
    }
}

impl AsyncRead for WatchedStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before {
                    this.watch.bytes_read();
                }
                return Poll::Ready(Ok(()));
            }
            Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
            Poll::Pending => {}
        }
        let Some((deadline, why)) = this.watch.deadline(cx.waker()) else {
            return Poll::Pending;
        };
        if matches!(why, Closing::Displaced) {
            return Poll::Ready(Err(this.expired(why)));
        }
        if this.read_armed != Some(deadline) {
            this.read_timer.as_mut().reset(deadline);
            this.read_armed = Some(deadline);
        }
        match this.read_timer.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(this.expired(why))),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl AsyncWrite for WatchedStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let result = Pin::new(&mut this.inner).poll_write(cx, buf);
        this.write_result(cx, result)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let result = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        this.write_result(cx, result)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    /// A flush is not progress (a `TcpStream`'s is a no-op): only written bytes
    /// end a stall.
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}
