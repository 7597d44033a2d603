//! The accept loop, on hyper directly rather than `axum::serve`, which sets no
//! timeouts and holds every connection it is given: the connection cap, the
//! per-connection deadlines (`server::connection`), HTTP/2 with prior knowledge
//! next to HTTP/1.1, upgrades (WebSocket), and a graceful shutdown bounded in time.
//!
//! Over `server.max_connections`, a connection is still accepted (a client left
//! in the listen backlog would only wait, not learn) and refused quickly: up to
//! [`OVERFLOW_SLOTS`] at a time are answered one `503` with `Retry-After` and
//! closed, except that probes and scrapes (`/healthz`, `/readyz`, `/metrics`) are
//! served there, so that a flood does not take a replica out of rotation or out
//! of sight. When those slots are full, the oldest connection in them that has not
//! sent its request yet is closed to make room (a flood of stalled sockets would
//! otherwise hold them); when none can be, the new connection is closed at once
//! without an answer. The connections already served are untouched either way.

use std::collections::VecDeque;
use std::future::Future;
use std::io;
use std::sync::{Arc, Weak};
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::connection::{Serve, Timeouts, Watch, WatchedStream};
use crate::metrics::{Connections, Refusal};

/// Connections over the cap that are read for their request, to answer it 503
/// (or serve a probe). Few, and each for at most the header timeout: what they
/// cost is bounded whatever the flood.
pub(crate) const OVERFLOW_SLOTS: usize = 64;

/// The most the accept loop waits for displaced overflow connections to close
/// (they close as soon as their task runs; this only bounds a pathological case).
const DISPLACED_CLOSE: Duration = Duration::from_secs(1);

/// Pause after an accept error such as EMFILE (no file descriptor left), which
/// would otherwise repeat at once in a busy loop.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// What the accept loop needs besides the socket and the router.
pub(crate) struct Limits {
    pub(crate) timeouts: Timeouts,
    pub(crate) max_connections: usize,
    /// How long shutdown waits for in-flight requests (the request timeout: none
    /// can legitimately take longer); WebSockets and SSE streams still open then
    /// are cut.
    pub(crate) drain: Duration,
    pub(crate) connections: Arc<Connections>,
}

/// The soft `RLIMIT_NOFILE` of this process; `None` where there is none to read.
/// An unlimited one counts as a million (the kernel's usual `nr_open`).
pub(crate) fn file_limit() -> Option<u64> {
    #[cfg(unix)]
    {
        let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile);
        Some(limit.current.unwrap_or(1 << 20))
    }
    #[cfg(not(unix))]
    {
        None
    }
}

/// `server.max_connections` when unset: 80 % of the file limit, less the overflow
/// slots. The other fifth is for what else holds descriptors: connections to the
/// broker and Redis, the audit log, the embedded paper broker's sockets.
pub(crate) fn default_max_connections(file_limit: Option<u64>) -> usize {
    let soft = file_limit.unwrap_or(1024);
    let max = (soft.saturating_mul(4) / 5).saturating_sub(OVERFLOW_SLOTS as u64);
    usize::try_from(max).unwrap_or(usize::MAX).max(1)
}

/// Serves until `shutdown` completes, then lets in-flight requests finish (for at
/// most `limits.drain`).
pub(crate) async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
) {
    let served = Arc::new(Semaphore::new(limits.max_connections));
    let mut overflow = Overflow::new();
    // No hyper timer: hyper's own header read timeout stays off (see
    // `server::connection` for why the deadlines are kept there instead).
    let builder = auto::Builder::new(TokioExecutor::new());
    let mut refusing = builder.clone();
    refusing.http1().keep_alive(false);
    let overflow_timeouts = Timeouts {
        header: limits.timeouts.header,
        keep_alive: limits.timeouts.keep_alive.min(limits.timeouts.header),
    };
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            biased;
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) if is_per_connection(&e) => continue,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let (permit, watch, builder, over) = match served.clone().try_acquire_owned() {
            Ok(permit) => {
                let watch = Watch::new(limits.timeouts, limits.connections.clone());
                (permit, watch, &builder, false)
            }
            Err(_) => {
                let watch = Watch::new(overflow_timeouts, limits.connections.clone());
                let Some(permit) = overflow.admit(&watch).await else {
                    limits.connections.refused(Refusal::Closed);
                    continue;
                };
                (permit, watch, &refusing, true)
            }
        };
        let conn = connection(builder, stream, permit, watch, router.clone(), over);
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(limits.drain, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("shutdown: some connections were still open after the drain time");
    }
}

/// The connections over the cap, oldest first, in at most [`OVERFLOW_SLOTS`].
struct Overflow {
    slots: VecDeque<Weak<Watch>>,
    /// Bounds the sockets of overflow connections, displaced ones that are still
    /// closing included.
    sockets: Arc<Semaphore>,
}

impl Overflow {
    fn new() -> Overflow {
        Overflow {
            slots: VecDeque::with_capacity(OVERFLOW_SLOTS),
            sockets: Arc::new(Semaphore::new(2 * OVERFLOW_SLOTS)),
        }
    }

    /// A slot for `watch`'s connection. When all are taken, the oldest connection
    /// that has not sent a whole request head yet is closed to make room: a flood
    /// of stalled sockets would otherwise keep the slots, and the probes they are
    /// kept for, to itself. Waits (for at most [`DISPLACED_CLOSE`]) while too many
    /// displaced ones are still closing, which also slows the accept loop down
    /// during a flood. `None`: every slot is answering a request.
    async fn admit(&mut self, watch: &Arc<Watch>) -> Option<OwnedSemaphorePermit> {
        self.slots.retain(|slot| slot.strong_count() > 0);
        if self.slots.len() >= OVERFLOW_SLOTS {
            let stalled = self.slots.iter().position(|slot| {
                slot.upgrade()
                    .is_some_and(|watch| watch.displace_if_stalled())
            })?;
            self.slots.remove(stalled);
        }
        let permit = tokio::time::timeout(DISPLACED_CLOSE, self.sockets.clone().acquire_owned());
        let permit = permit.await.ok()?.ok()?;
        self.slots.push_back(Arc::downgrade(watch));
        Some(permit)
    }
}

fn connection(
    builder: &auto::Builder<TokioExecutor>,
    stream: TcpStream,
    permit: OwnedSemaphorePermit,
    watch: Arc<Watch>,
    router: Router,
    overflow: bool,
) -> auto::UpgradeableConnection<'static, TokioIo<WatchedStream>, Serve, TokioExecutor> {
    let io = TokioIo::new(WatchedStream::new(stream, watch.clone(), permit));
    let service = Serve {
        router,
        watch,
        overflow,
    };
    builder
        .serve_connection_with_upgrades(io, service)
        .into_owned()
}

/// Errors of one connection that was gone before it was accepted, as opposed to
/// the listener's (no descriptors left), which call for a pause.
fn is_per_connection(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionAborted | io::ErrorKind::ConnectionReset
    )
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
    use std::time::Instant;

    use axum::body::Body;
    use axum::extract::Request;
    use axum::http::{header, StatusCode};
    use axum::response::Response;
    use axum::routing::get;
    use futures::StreamExt;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;
    use crate::metrics::{ConnectionKind, TimeoutKind};

    #[test]
    fn the_default_cap_leaves_a_fifth_of_the_file_limit_and_the_overflow_slots() {
        assert_eq!(default_max_connections(Some(20_000)), 16_000 - 64);
        assert_eq!(default_max_connections(Some(1024)), 819 - 64);
        assert_eq!(default_max_connections(Some(10)), 1);
        assert_eq!(default_max_connections(None), 819 - 64);
    }

    const TIMEOUT: Duration = Duration::from_millis(150);
    /// A generous bound on anything the tests wait for.
    const BOUND: Duration = Duration::from_secs(10);

    struct Running {
        addr: SocketAddr,
        connections: Arc<Connections>,
        _stop: tokio::sync::oneshot::Sender<()>,
    }

    async fn start(router: Router) -> Running {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let connections = Arc::new(Connections::register(
            &mut prometheus_client::registry::Registry::default(),
        ));
        let limits = Limits {
            timeouts: Timeouts {
                header: TIMEOUT,
                keep_alive: TIMEOUT,
            },
            max_connections: 16,
            drain: Duration::from_secs(1),
            connections: connections.clone(),
        };
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(serve(listener, router, limits, async {
            let _ = stopped.await;
        }));
        Running {
            addr,
            connections,
            _stop: stop,
        }
    }

    async fn eventually(what: &str, check: impl Fn() -> bool) {
        let started = Instant::now();
        while !check() {
            assert!(started.elapsed() < BOUND, "never: {what}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    async fn read_head(stream: &mut TcpStream) -> String {
        let mut head = Vec::new();
        while !head.ends_with(b"\r\n\r\n") {
            let mut byte = [0u8; 1];
            let n = tokio::time::timeout(BOUND, stream.read(&mut byte))
                .await
                .unwrap()
                .unwrap();
            assert_eq!(n, 1, "closed in the head: {head:?}");
            head.push(byte[0]);
        }
        String::from_utf8(head).unwrap()
    }

    /// An upgrade to an echo protocol named `websocket`, as a WebSocket handler does.
    async fn upgrade(mut request: Request) -> Response {
        let on_upgrade = hyper::upgrade::on(&mut request);
        tokio::spawn(async move {
            let mut io = TokioIo::new(on_upgrade.await.expect("upgraded"));
            let mut buf = [0u8; 64];
            while let Ok(n @ 1..) = io.read(&mut buf).await {
                if io.write_all(&buf[..n]).await.is_err() {
                    return;
                }
            }
        });
        Response::builder()
            .status(StatusCode::SWITCHING_PROTOCOLS)
            .header(header::CONNECTION, "upgrade")
            .header(header::UPGRADE, "websocket")
            .body(Body::empty())
            .unwrap()
    }

    #[tokio::test]
    async fn an_upgraded_connection_outlives_every_timeout_and_counts_as_a_websocket() {
        let server = start(Router::new().route("/ws", get(upgrade))).await;
        let mut stream = TcpStream::connect(server.addr).await.unwrap();
        stream
            .write_all(
                b"GET /ws HTTP/1.1\r\nHost: g\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n",
            )
            .await
            .unwrap();
        assert!(read_head(&mut stream).await.starts_with("HTTP/1.1 101"));
        let connections = server.connections.clone();
        eventually("one websocket, no http", || {
            connections.open(ConnectionKind::WebSocket) == 1
                && connections.open(ConnectionKind::Http) == 0
        })
        .await;
        // Silent for several times both timeouts (a lower bound: a slow machine
        // only makes it longer), then still echoed.
        tokio::time::sleep(TIMEOUT * 5).await;
        stream.write_all(b"ping").await.unwrap();
        let mut echo = [0u8; 4];
        tokio::time::timeout(BOUND, stream.read_exact(&mut echo))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(&echo, b"ping");
        drop(stream);
        eventually("the websocket is no longer counted", || {
            connections.open(ConnectionKind::WebSocket) == 0
        })
        .await;
    }

    /// An event every 50 ms for ten times the timeouts: a stream being sent is not
    /// an idle connection.
    async fn events() -> Response {
        let stream = futures::stream::iter(0..30).then(|i| async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            Ok::<_, std::convert::Infallible>(format!("data: {i}\n\n"))
        });
        Response::builder()
            .header(header::CONTENT_TYPE, "text/event-stream")
            .body(Body::from_stream(stream))
            .unwrap()
    }

    #[tokio::test]
    async fn an_sse_stream_outlives_the_timeouts_counts_as_sse_and_its_connection_then_idles_out() {
        let server = start(Router::new().route("/events", get(events))).await;
        let mut stream = TcpStream::connect(server.addr).await.unwrap();
        stream
            .write_all(b"GET /events HTTP/1.1\r\nHost: g\r\n\r\n")
            .await
            .unwrap();
        assert!(read_head(&mut stream).await.starts_with("HTTP/1.1 200"));
        let connections = server.connections.clone();
        assert_eq!(connections.open(ConnectionKind::Sse), 1);
        assert_eq!(connections.open(ConnectionKind::Http), 0);
        let mut received = Vec::new();
        let mut buf = [0u8; 1024];
        let text = loop {
            let n = tokio::time::timeout(BOUND, stream.read(&mut buf))
                .await
                .unwrap()
                .unwrap();
            assert!(n > 0, "cut: {:?}", String::from_utf8_lossy(&received));
            received.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&received).to_string();
            if text.ends_with("0\r\n\r\n") {
                break text;
            }
        };
        assert!(text.contains("data: 29"), "{text}");
        let rest = tokio::time::timeout(BOUND, stream.read(&mut buf)).await;
        assert!(matches!(rest, Ok(Ok(0) | Err(_))), "{rest:?}");
        eventually("nothing counted", || {
            connections.open(ConnectionKind::Sse) == 0
                && connections.open(ConnectionKind::Http) == 0
        })
        .await;
    }

    /// Far more than socket buffers hold, sent to a client that reads nothing.
    async fn endless() -> Body {
        let chunk = bytes::Bytes::from(vec![b'x'; 64 * 1024]);
        Body::from_stream(futures::stream::repeat_with(move || {
            Ok::<_, std::convert::Infallible>(chunk.clone())
        }))
    }

    #[tokio::test]
    async fn a_response_the_client_stops_reading_is_cut_after_the_keep_alive_timeout() {
        let server = start(Router::new().route("/endless", get(endless))).await;
        let mut stream = TcpStream::connect(server.addr).await.unwrap();
        stream
            .write_all(b"GET /endless HTTP/1.1\r\nHost: g\r\n\r\n")
            .await
            .unwrap();
        let connections = server.connections.clone();
        eventually("a write timeout", || {
            connections.timeouts(TimeoutKind::Write) == 1
        })
        .await;
        let connections = server.connections.clone();
        eventually("the connection is gone", || {
            connections.open(ConnectionKind::Http) == 0
        })
        .await;
    }
}
