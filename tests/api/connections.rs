//! Slow and idle connections over real sockets: the header, body and keep-alive
//! timeouts, the connection cap with its quick refusals (and the probes still
//! served past it), the gateway's memory under a flood of stalled connections,
//! HTTP/2 with prior knowledge, and the connection metrics.
//!
//! Timeouts are configured small; the only durations asserted are those
//! configured ones (as lower bounds) and generous upper bounds on waiting for a
//! close, so a loaded machine slows these tests down without failing them.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use axum::body::Body;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::common::{self, AppOptions};

/// The longest any test waits for the gateway to close a connection it should.
const CLOSE_BOUND: Duration = Duration::from_secs(10);

/// A request that stops half-way through a header, as a slowloris client does.
const STALLED_HEAD: &[u8] = b"POST /graphql HTTP/1.1\r\nHost: gateway\r\nX-Half: abc";

/// Reads until the gateway closes the connection (EOF or reset); the bytes it
/// sent before. Panics if it is still open after [`CLOSE_BOUND`].
async fn read_until_closed(stream: &mut TcpStream) -> Vec<u8> {
    let mut received = Vec::new();
    let mut buf = [0u8; 4096];
    let outcome = tokio::time::timeout(CLOSE_BOUND, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => received.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    assert!(
        outcome.is_ok(),
        "still open after {CLOSE_BOUND:?}; received {:?}",
        String::from_utf8_lossy(&received)
    );
    received
}

/// Reads one HTTP/1.1 response with a `Content-Length` body: `(head, body)`.
async fn read_response(stream: &mut TcpStream) -> (String, String) {
    let mut data = Vec::new();
    let mut buf = [0u8; 4096];
    let read = async {
        loop {
            if let Some(end) = data.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&data[..end]).to_string();
                let length: usize = head
                    .lines()
                    .find_map(|l| {
                        let (name, value) = l.split_once(':')?;
                        name.eq_ignore_ascii_case("content-length")
                            .then(|| value.trim().parse().ok())?
                    })
                    .expect("a Content-Length");
                if data.len() >= end + 4 + length {
                    let body = String::from_utf8_lossy(&data[end + 4..end + 4 + length]);
                    return (head, body.to_string());
                }
            }
            let n = stream
                .read(&mut buf)
                .await
                .expect("the response is readable");
            assert!(n > 0, "closed before a whole response: {data:?}");
            data.extend_from_slice(&buf[..n]);
        }
    };
    tokio::time::timeout(CLOSE_BOUND, read)
        .await
        .expect("a response in time")
}

fn get(path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: gateway\r\n\r\n").into_bytes()
}

/// The value of the exposition line that starts with `series` (name and labels).
fn metric(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {series} in\n{text}"))
}

/// A client that opens a new connection per request, so each request tests how
/// a new connection is treated.
fn fresh_client() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap()
}

#[tokio::test]
async fn a_connection_stalled_in_its_headers_is_closed_after_the_header_timeout() {
    let app = common::spawn_app_with(AppOptions {
        tweak: |c| {
            c.server.header_read_timeout = Duration::from_millis(300);
            c.server.keep_alive_timeout = Duration::from_secs(30);
        },
        ..AppOptions::default()
    })
    .await;
    // Before the connects, so before the gateway's accepts.
    let started = Instant::now();
    let mut silent = TcpStream::connect(app.addr).await.unwrap();
    let mut stalled = TcpStream::connect(app.addr).await.unwrap();
    stalled.write_all(STALLED_HEAD).await.unwrap();

    for stream in [&mut stalled, &mut silent] {
        let received = read_until_closed(stream).await;
        assert!(
            received.is_empty(),
            "{:?}",
            String::from_utf8_lossy(&received)
        );
    }
    assert!(started.elapsed() >= Duration::from_millis(300));
    let metrics = app.metrics().await;
    let header = "brokergraph_connection_timeouts_total{kind=\"header\"}";
    assert!(metric(&metrics, header) >= 2.0, "{metrics}");
}

#[tokio::test]
async fn a_trickling_body_is_answered_408_after_the_body_timeout() {
    let app = common::spawn_app_with(AppOptions {
        tweak: |c| {
            c.server.body_read_timeout = Duration::from_millis(300);
            c.server.header_read_timeout = Duration::from_secs(30);
        },
        ..AppOptions::default()
    })
    .await;
    let body = json!({ "query": "{ account { cash } }" }).to_string();
    let stream = TcpStream::connect(app.addr).await.unwrap();
    let (mut reader, mut writer) = stream.into_split();
    let head = format!(
        "POST /graphql HTTP/1.1\r\nHost: gateway\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n",
        body.len() + 10_000
    );
    let started = Instant::now();
    writer.write_all(head.as_bytes()).await.unwrap();
    // One byte every 50 ms: the body would take over ten minutes.
    let trickle = tokio::spawn(async move {
        for byte in body.bytes().cycle() {
            if writer.write_all(&[byte]).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
    let mut received = Vec::new();
    let mut buf = [0u8; 4096];
    let _ = tokio::time::timeout(CLOSE_BOUND, async {
        loop {
            match reader.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => received.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    trickle.abort();
    let text = String::from_utf8_lossy(&received);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(
        text.to_ascii_lowercase().contains("connection: close"),
        "{text}"
    );
    assert!(text.contains("\"REQUEST_TIMEOUT\""), "{text}");
    assert!(started.elapsed() >= Duration::from_millis(300));
    let metrics = app.metrics().await;
    let body = "brokergraph_connection_timeouts_total{kind=\"body\"}";
    assert_eq!(metric(&metrics, body), 1.0, "{metrics}");
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_after_its_timeout_and_a_busy_one_is_not() {
    let app = common::spawn_app_with(AppOptions {
        tweak: |c| {
            c.server.keep_alive_timeout = Duration::from_millis(1_000);
            c.server.header_read_timeout = Duration::from_secs(30);
        },
        ..AppOptions::default()
    })
    .await;

    // In use: a request every 100 ms for three keep-alive timeouts, all on one
    // connection.
    let mut used = TcpStream::connect(app.addr).await.unwrap();
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(3) {
        used.write_all(&get("/healthz")).await.unwrap();
        let (head, _) = read_response(&mut used).await;
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // In flight: a broker that takes longer than both timeouts does not make
    // the request's connection idle.
    app.sim
        .set_faults(json!({ "rules": [{ "route": "*", "kind": "latency", "ms": 2_500 }] }))
        .await;
    let body = json!({ "query": "{ account { cash } }" }).to_string();
    let request = format!(
        "POST /graphql HTTP/1.1\r\nHost: gateway\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    used.write_all(request.as_bytes()).await.unwrap();
    let (head, answer) = read_response(&mut used).await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}\n{answer}");
    let answer: Value = serde_json::from_str(&answer).unwrap();
    assert!(answer["data"]["account"]["cash"].is_string(), "{answer}");
    app.sim.clear_faults().await;

    // Idle: closed by the keep-alive timeout (the header timeout is 30 s).
    let rest = read_until_closed(&mut used).await;
    assert!(rest.is_empty(), "{:?}", String::from_utf8_lossy(&rest));
    let metrics = app.metrics().await;
    let idle = "brokergraph_connection_timeouts_total{kind=\"idle\"}";
    assert_eq!(metric(&metrics, idle), 1.0, "{metrics}");
    let header = "brokergraph_connection_timeouts_total{kind=\"header\"}";
    assert_eq!(metric(&metrics, header), 0.0, "{metrics}");
}

/// A keep-alive timeout longer than the header timeout holds: the connection
/// idles past the header timeout, and a request it then sends is answered.
#[tokio::test]
async fn an_idle_connection_outlives_the_header_timeout_when_keep_alive_is_longer() {
    let app = common::spawn_app_with(AppOptions {
        tweak: |c| {
            c.server.header_read_timeout = Duration::from_millis(200);
            c.server.keep_alive_timeout = Duration::from_secs(30);
        },
        ..AppOptions::default()
    })
    .await;
    let mut stream = TcpStream::connect(app.addr).await.unwrap();
    stream.write_all(&get("/healthz")).await.unwrap();
    read_response(&mut stream).await;
    // Five header timeouts of idleness (a lower bound only: waiting longer
    // because the machine is slow changes nothing).
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    stream.write_all(&get("/healthz")).await.unwrap();
    let (head, _) = read_response(&mut stream).await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
}

#[tokio::test]
async fn over_the_cap_new_clients_are_refused_quickly_and_served_again_once_stalled_ones_time_out()
{
    const MAX: usize = 8;
    const OVERFLOW_SLOTS: usize = 64;
    let app = common::spawn_app_with(AppOptions {
        tweak: |c| {
            c.server.max_connections = Some(MAX);
            c.server.header_read_timeout = Duration::from_millis(1_500);
        },
        ..AppOptions::default()
    })
    .await;
    let client = fresh_client();
    let mut stalled = Vec::new();
    for _ in 0..MAX {
        let mut stream = TcpStream::connect(app.addr).await.unwrap();
        stream.write_all(STALLED_HEAD).await.unwrap();
        stalled.push(stream);
    }

    // Refused with an answer, not left waiting for the stalled ones to go.
    let refused = client
        .post(app.url("/graphql"))
        .json(&json!({ "query": "{ __typename }" }))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 503);
    assert_eq!(refused.headers()["retry-after"], "1");
    assert_eq!(refused.headers()["connection"], "close");
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["errors"][0]["extensions"]["code"], "RATE_LIMITED");

    // Probes and scrapes are still answered past the cap.
    let ready = client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    let metrics = client.get(app.url("/metrics")).send().await.unwrap();
    let metrics = metrics.text().await.unwrap();
    assert!(
        metric(&metrics, "brokergraph_connections_open{kind=\"http\"}") >= MAX as f64,
        "{metrics}"
    );
    assert_eq!(metric(&metrics, "brokergraph_connections_max"), MAX as f64);
    let answered = "brokergraph_connections_refused_total{answer=\"503\"}";
    assert_eq!(metric(&metrics, answered), 1.0, "{metrics}");

    // With the overflow slots stalled too, a probe still gets in: it takes the
    // slot of the oldest stalled connection there.
    for _ in 0..OVERFLOW_SLOTS {
        let mut stream = TcpStream::connect(app.addr).await.unwrap();
        stream.write_all(STALLED_HEAD).await.unwrap();
        stalled.push(stream);
    }
    let ready = client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    let displaced = read_until_closed(&mut stalled[MAX]).await;
    assert!(displaced.is_empty(), "{displaced:?}");

    // The stalled ones time out, and a normal client is served again.
    for stream in &mut stalled {
        read_until_closed(stream).await;
    }
    let served = client
        .post(app.url("/graphql"))
        .json(&json!({ "query": "{ __typename }" }))
        .send()
        .await
        .unwrap();
    assert_eq!(served.status(), 200);
    let metrics = app.metrics().await;
    let closed = metric(
        &metrics,
        "brokergraph_connections_refused_total{answer=\"closed\"}",
    );
    let header = metric(
        &metrics,
        "brokergraph_connection_timeouts_total{kind=\"header\"}",
    );
    assert!(closed >= 1.0, "{metrics}");
    assert!(header >= MAX as f64, "{metrics}");
    assert!(
        closed + header >= (MAX + OVERFLOW_SLOTS) as f64,
        "every stalled connection timed out or was displaced: {metrics}"
    );
}

#[tokio::test]
async fn an_http2_client_with_prior_knowledge_gets_an_answer() {
    let app = common::spawn_app().await;
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .http2_only(true)
        .build_http::<Body>();
    let request = axum::http::Request::post(app.url("/graphql"))
        .header("content-type", "application/json")
        .body(Body::from(
            json!({ "query": "{ account { cash } }" }).to_string(),
        ))
        .unwrap();
    let response = client.request(request).await.expect("an HTTP/2 answer");
    assert_eq!(response.version(), axum::http::Version::HTTP_2);
    assert_eq!(response.status(), 200);
    let body = axum::body::to_bytes(Body::new(response.into_body()), 1 << 20)
        .await
        .unwrap();
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert!(body["data"]["account"]["cash"].is_string(), "{body}");
}

#[tokio::test]
async fn metrics_show_the_open_connections_the_refusals_and_the_timeouts() {
    let app = common::spawn_app().await;
    let metrics = app.metrics().await;
    // The scrape's own connection is open while it is answered.
    assert!(metric(&metrics, "brokergraph_connections_open{kind=\"http\"}") >= 1.0);
    for series in [
        "brokergraph_connections_open{kind=\"websocket\"}",
        "brokergraph_connections_open{kind=\"sse\"}",
        "brokergraph_connections_refused_total{answer=\"503\"}",
        "brokergraph_connections_refused_total{answer=\"closed\"}",
        "brokergraph_connection_timeouts_total{kind=\"header\"}",
        "brokergraph_connection_timeouts_total{kind=\"body\"}",
        "brokergraph_connection_timeouts_total{kind=\"idle\"}",
        "brokergraph_connection_timeouts_total{kind=\"write\"}",
    ] {
        assert_eq!(metric(&metrics, series), 0.0, "{series}");
    }
    assert!(metric(&metrics, "brokergraph_connections_max") >= 1.0);
}

/// The gateway binary on its own, so that its memory is its own: the test process
/// also holds broker-sim and every client.
struct GatewayProcess {
    child: Child,
    addr: std::net::SocketAddr,
}

impl GatewayProcess {
    async fn start(vars: &[(&str, &str)]) -> GatewayProcess {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let mut command = Command::new(env!("CARGO_BIN_EXE_brokergraph"));
        command
            .env("BROKERGRAPH_LISTEN", addr.to_string())
            .env("BROKERGRAPH_LOG_FILTER", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        for (name, value) in vars {
            command.env(name, value);
        }
        let gateway = GatewayProcess {
            child: command.spawn().expect("the gateway binary starts"),
            addr,
        };
        let client = fresh_client();
        let up = async {
            while client
                .get(format!("http://{addr}/healthz"))
                .send()
                .await
                .is_err()
            {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        };
        tokio::time::timeout(Duration::from_secs(60), up)
            .await
            .expect("the gateway listens");
        gateway
    }

    fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("the gateway is running");
        status
            .lines()
            .find_map(|l| {
                l.strip_prefix("VmRSS:")?
                    .split_whitespace()
                    .next()?
                    .parse()
                    .ok()
            })
            .expect("VmRSS")
    }
}

impl Drop for GatewayProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The attack: thousands of connections that send half a request and then
/// nothing. The gateway holds at most `max_connections` of them (plus the overflow
/// slots) for at most the header timeout, so its memory stays near where it was,
/// and `/readyz` is answered throughout.
#[cfg(target_os = "linux")]
#[tokio::test]
async fn the_gateways_memory_stays_bounded_under_a_flood_of_stalled_connections() {
    const FLOOD: usize = 2_000;
    let gateway = GatewayProcess::start(&[
        ("BROKERGRAPH_SERVER_MAX_CONNECTIONS", "300"),
        ("BROKERGRAPH_SERVER_HEADER_READ_TIMEOUT_MS", "2000"),
    ])
    .await;
    let client = fresh_client();
    let dashboard = json!({ "query": "{ account { cash equity } positions(first: 20) { nodes { quantity } } }" });
    for _ in 0..20 {
        let response = client
            .post(format!("http://{}/graphql", gateway.addr))
            .json(&dashboard)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }
    let before = gateway.rss_kib();

    let mut flood = Vec::with_capacity(FLOOD);
    for _ in 0..FLOOD {
        let mut stream = TcpStream::connect(gateway.addr).await.unwrap();
        let _ = stream.write_all(STALLED_HEAD).await;
        flood.push(stream);
    }
    // Accepted behind all of them, and answered: the flood does not take the
    // gateway out of a load balancer's rotation.
    let ready = client
        .get(format!("http://{}/readyz", gateway.addr))
        .send()
        .await
        .expect("/readyz answers during the flood");
    assert_eq!(ready.status(), 200);
    let during = gateway.rss_kib();

    for stream in &mut flood {
        read_until_closed(stream).await;
    }
    let response = client
        .post(format!("http://{}/graphql", gateway.addr))
        .json(&dashboard)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let after = gateway.rss_kib();
    println!(
        "gateway RSS: {} KiB before, {} KiB with {FLOOD} stalled connections, {} KiB after",
        before, during, after
    );
    let ratio = during as f64 / before as f64;
    assert!(ratio < 2.0, "RSS grew ×{ratio:.2}: {before} → {during} KiB");
    assert!(
        (after as f64) < before as f64 * 2.0,
        "{before} → {after} KiB"
    );
}
