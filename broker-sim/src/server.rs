//! The accept loop. Hand-rolled on hyper instead of `axum::serve` for one reason: a
//! fault must be able to drop a connection without any response, which needs the
//! service to fail (hyper then closes the connection) and the socket to close with RST.
//! Connections allow upgrades, for the WebSocket streams; hyper-util's graceful
//! shutdown does not take upgradeable HTTP/1 connections, so the drain is done here.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tower::ServiceExt;

use crate::pipeline::DropConnection;

/// How long shutdown waits for in-flight requests before giving up on them.
const DRAIN_LIMIT: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
#[error("connection dropped by fault injection")]
struct Dropped;

/// A TCP stream that closes with RST instead of FIN when its connection was dropped on
/// purpose, so the client sees "connection reset", as with a crashed load balancer.
struct ResettableStream {
    inner: TcpStream,
    reset: Arc<AtomicBool>,
}

impl Drop for ResettableStream {
    fn drop(&mut self) {
        if self.reset.load(Ordering::SeqCst) {
            let _ = self.inner.set_zero_linger();
        }
    }
}

impl AsyncRead for ResettableStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for ResettableStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

pub(crate) async fn serve(listener: TcpListener, router: Router, shutdown: watch::Receiver<bool>) {
    let http = hyper::server::conn::http1::Builder::new();
    // Every connection task holds a sender; when all are gone, the drain is complete.
    let (alive, mut drained) = mpsc::channel::<()>(1);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = crate::state::stopped(shutdown.clone()) => break,
        };
        let _ = stream.set_nodelay(true);
        let reset = Arc::new(AtomicBool::new(false));
        let io = TokioIo::new(ResettableStream {
            inner: stream,
            reset: reset.clone(),
        });
        let router = router.clone();
        let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
            let router = router.clone();
            let reset = reset.clone();
            async move {
                let response = router
                    .oneshot(req.map(axum::body::Body::new))
                    .await
                    .unwrap_or_else(|never| match never {});
                if response.extensions().get::<DropConnection>().is_some() {
                    reset.store(true, Ordering::SeqCst);
                    return Err(Dropped);
                }
                Ok(response)
            }
        });
        let conn = http.serve_connection(io, service).with_upgrades();
        let (alive, stop) = (alive.clone(), shutdown.clone());
        tokio::spawn(async move {
            let _alive = alive;
            tokio::pin!(conn);
            // An upgraded connection ends here; its WebSocket task watches shutdown itself.
            let ended = tokio::select! {
                ended = conn.as_mut() => ended,
                _ = crate::state::stopped(stop) => {
                    conn.as_mut().graceful_shutdown();
                    conn.await
                }
            };
            if let Err(e) = ended {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    drop(alive);
    if tokio::time::timeout(DRAIN_LIMIT, drained.recv())
        .await
        .is_err()
    {
        tracing::warn!("shutdown: some connections did not finish in time");
    }
}
