//! `replica`: what a replica pays for sharing state through Redis on the hot path
//! (one `GET` of the account's epoch per request), measured as the
//! dashboard's req/s with `redis.url` set ÷ the same gateway without, in rounds
//! interleaved in one run. Starts its own `redis-server` on a free port.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use brokergraph::secret::Secret;

use super::load::graphql_errors;
use super::scenarios::{dashboard_load, median, run, ROUNDS};
use super::setup::{self, Stack};
use super::{Args, Row};

struct RedisProcess(Child);

impl Drop for RedisProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `GET` calls Redis has served, from `INFO commandstats` over a plain socket.
fn redis_gets(url: &str) -> u64 {
    use std::io::{Read, Write};
    let addr = url.trim_start_matches("redis://");
    let Ok(mut s) = std::net::TcpStream::connect(addr) else {
        return 0;
    };
    let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
    let _ = s.write_all(b"INFO commandstats\r\n");
    let mut buf = vec![0u8; 64 * 1024];
    let n = s.read(&mut buf).unwrap_or(0);
    let text = String::from_utf8_lossy(&buf[..n]);
    text.lines()
        .find_map(|l| l.strip_prefix("cmdstat_get:calls="))
        .and_then(|rest| rest.split(',').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

fn start_redis() -> Option<(RedisProcess, String)> {
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .ok()?
        .port();
    let child = Command::new("redis-server")
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
        ])
        .args(["--maxmemory-policy", "noeviction"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    for _ in 0..200 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Some((RedisProcess(child), format!("redis://127.0.0.1:{port}")));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    None
}

pub async fn replica(args: &Args) -> Vec<Row> {
    let Some((_redis, url)) = start_redis() else {
        return vec![Row::new(
            "replica/alone",
            "ratio",
            "n/a".into(),
            "redis-server could not be started (apt-get install redis-server)".into(),
        )];
    };
    let alone = Stack::start(|_| {}, |_| {}).await;
    let shared = Stack::start(|_| {}, |c| c.redis.url = Some(Secret::new(url.clone()))).await;
    for stack in [&alone, &shared] {
        stack.seed_dashboard().await;
        let body = stack.graphql(setup::dashboard_body()).await;
        assert!(!graphql_errors(&body), "dashboard failed: {body:?}");
    }
    let c = args.connections;
    let warm = Duration::from_secs(1);
    let each = (args.duration() / 2).max(Duration::from_secs(1));
    run(dashboard_load(alone.gateway, c, warm)).await;
    run(dashboard_load(shared.gateway, c, warm)).await;
    let (mut ratios, mut alone_rps, mut shared_rps) = (Vec::new(), Vec::new(), Vec::new());
    let (mut requests, gets_before) = (0, redis_gets(&url));
    for _ in 0..ROUNDS {
        let a = run(dashboard_load(alone.gateway, c, each)).await;
        let s = run(dashboard_load(shared.gateway, c, each)).await;
        requests += s.requests;
        ratios.push(s.rps() / a.rps());
        alone_rps.push(a.rps());
        shared_rps.push(s.rps());
    }
    let gets = redis_gets(&url).saturating_sub(gets_before);
    alone.stop().await;
    shared.stop().await;
    let list = |xs: &[f64], digits: usize| {
        xs.iter()
            .map(|x| format!("{x:.digits$}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    vec![Row::new(
        "replica/alone",
        "ratio",
        format!("{:.2}", median(ratios.clone())),
        format!(
            "hot dashboard req/s with redis.url set ÷ without, median of {ROUNDS} interleaved rounds \
             (all: {}); req/s alone {}, with Redis {}; {:.3} Redis GETs per request; {c} connections, Redis on loopback",
            list(&ratios, 2),
            list(&alone_rps, 0),
            list(&shared_rps, 0),
            gets as f64 / requests.max(1) as f64
        ),
    )]
}
