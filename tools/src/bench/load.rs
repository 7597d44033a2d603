//! The load generator: N keep-alive HTTP/1.1 connections, each sending one request
//! after another for a fixed time, recording every latency.
//!
//! Raw hyper connections rather than a pooled client, because on a 2-core machine the
//! load generator's own cost is taken from the server: the thinner it is, the closer
//! `floor` comes to what the machine can serve. It runs on a runtime of its own so
//! its tasks never queue behind the gateway's.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::{HeaderValue, CONTENT_TYPE, HOST};
use hyper::Request;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// Makes the body of the `i`-th request of connection `conn`.
pub type BodyFn = Arc<dyn Fn(usize, u64) -> Bytes + Send + Sync>;
/// The `Authorization` value of the `i`-th request of connection `conn`, for a load
/// that rotates callers.
pub type AuthFn = Arc<dyn Fn(usize, u64) -> HeaderValue + Send + Sync>;
/// Says whether a 200 body is an error (e.g. a GraphQL `errors` entry).
pub type CheckFn = fn(&[u8]) -> bool;

/// One load run against one endpoint.
#[derive(Clone)]
pub struct Load {
    pub addr: SocketAddr,
    pub path: &'static str,
    pub connections: usize,
    pub duration: Duration,
    /// `None`: a GET; otherwise a POST of this JSON body.
    pub body: Option<BodyFn>,
    /// Extra headers (e.g. the broker's `Authorization`).
    pub headers: Vec<(&'static str, String)>,
    /// Per-request `Authorization`, besides `headers`.
    pub auth: Option<AuthFn>,
    /// Requests per connection, stopping early (e.g. one request each for a burst).
    pub max_per_connection: Option<u64>,
    pub is_error: CheckFn,
}

/// What a run measured. Latencies are microseconds, sorted.
#[derive(Default)]
pub struct Outcome {
    pub requests: u64,
    pub errors: u64,
    pub elapsed: Duration,
    pub latencies_us: Vec<u32>,
    /// The first error body seen, to show why.
    pub sample_error: Option<String>,
}

impl Outcome {
    pub fn rps(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// The `q` quantile (0..=1) in milliseconds.
    pub fn ms(&self, q: f64) -> f64 {
        if self.latencies_us.is_empty() {
            return 0.0;
        }
        let i = ((self.latencies_us.len() - 1) as f64 * q).round() as usize;
        f64::from(self.latencies_us[i]) / 1000.0
    }
}

/// A GraphQL body with an `"errors"` member is an error.
pub fn graphql_errors(body: &[u8]) -> bool {
    memchr::memmem::find(body, b"\"errors\"").is_some()
}

pub fn never(_: &[u8]) -> bool {
    false
}

/// A POST body function that sends the same bytes every time.
pub fn fixed(body: impl Into<Bytes>) -> Option<BodyFn> {
    let body: Bytes = body.into();
    Some(Arc::new(move |_, _| body.clone()))
}

/// Runs `load` on a fresh 2-thread runtime (separate from the server's) and waits.
pub fn run(load: Load) -> Outcome {
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("loadgen")
            .enable_all()
            .build()
            .expect("load runtime")
            .block_on(drive(load))
    })
    .join()
    .expect("load generator thread")
}

async fn drive(load: Load) -> Outcome {
    let load = Arc::new(load);
    let started = Instant::now();
    let deadline = started + load.duration;
    let tasks: Vec<_> = (0..load.connections)
        .map(|conn| tokio::spawn(connection(load.clone(), conn, deadline)))
        .collect();
    let mut total = Outcome::default();
    for task in tasks {
        let part = task.await.expect("connection task");
        total.requests += part.requests;
        total.errors += part.errors;
        total.latencies_us.extend(part.latencies_us);
        total.sample_error = total.sample_error.or(part.sample_error);
    }
    total.elapsed = started.elapsed();
    total.latencies_us.sort_unstable();
    total
}

async fn connection(load: Arc<Load>, conn: usize, deadline: Instant) -> Outcome {
    let mut out = Outcome {
        latencies_us: Vec::with_capacity(4096),
        ..Outcome::default()
    };
    let mut sender = None;
    let host = HeaderValue::from_str(&load.addr.to_string()).expect("address is a header");
    let mut i = 0u64;
    while Instant::now() < deadline && load.max_per_connection.is_none_or(|max| i < max) {
        if sender.is_none() {
            sender = connect(load.addr).await;
            if sender.is_none() {
                out.errors += 1;
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        }
        let s = sender.as_mut().expect("connected");
        let mut req = Request::builder().uri(load.path).header(HOST, host.clone());
        for (name, value) in &load.headers {
            req = req.header(*name, value);
        }
        if let Some(auth) = &load.auth {
            req = req.header(hyper::header::AUTHORIZATION, auth(conn, i));
        }
        let req = match &load.body {
            Some(body) => req
                .method("POST")
                .header(CONTENT_TYPE, "application/json")
                .body(Full::new(body(conn, i))),
            None => req.method("GET").body(Full::new(Bytes::new())),
        }
        .expect("valid request");
        i += 1;
        let t = Instant::now();
        let result = async {
            s.ready().await?;
            let resp = s.send_request(req).await?;
            let status = resp.status();
            let body = resp.into_body().collect().await?.to_bytes();
            Ok::<_, hyper::Error>((status, body))
        }
        .await;
        let us = t.elapsed().as_micros().min(u32::MAX as u128) as u32;
        out.requests += 1;
        out.latencies_us.push(us);
        match result {
            Ok((status, body)) if status.is_success() && !(load.is_error)(&body) => {}
            Ok((status, body)) => {
                out.errors += 1;
                if out.sample_error.is_none() {
                    let text = String::from_utf8_lossy(&body[..body.len().min(300)]);
                    out.sample_error = Some(format!("{status}: {text}"));
                }
            }
            Err(e) => {
                out.errors += 1;
                out.sample_error.get_or_insert_with(|| e.to_string());
                sender = None;
            }
        }
    }
    out
}

type Sender = hyper::client::conn::http1::SendRequest<Full<Bytes>>;

async fn connect(addr: SocketAddr) -> Option<Sender> {
    let stream = TcpStream::connect(addr).await.ok()?;
    stream.set_nodelay(true).ok()?;
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .ok()?;
    tokio::spawn(conn);
    Some(sender)
}
