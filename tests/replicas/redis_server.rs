//! A real `redis-server` for a test, on a free loopback port, killed on drop.
//!
//! Never skipped: if `redis-server` is missing or does not start, the test fails
//! and says so (`scripts/test` installs it). Started with `noeviction`, as
//! docs/operations.md asks of a production Redis, but without persistence: a test
//! needs none.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct RedisServer {
    pub port: u16,
    child: Child,
    /// Extra `redis-server` arguments (`--requirepass`), kept for `restart`.
    extra: Vec<String>,
}

impl RedisServer {
    pub fn start() -> RedisServer {
        RedisServer::start_with(&[])
    }

    /// With extra server arguments, e.g. `["--requirepass", "..."]`.
    pub fn start_with(extra: &[&str]) -> RedisServer {
        let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        for _ in 0..5 {
            let port = free_port();
            let child = spawn(port, &extra);
            let mut server = RedisServer {
                port,
                child,
                extra: extra.clone(),
            };
            if server.wait_ready() {
                return server;
            }
            // Most likely another process took the port between our probe and the bind.
            let _ = server.child.kill();
        }
        panic!("redis-server did not start on any of 5 free ports");
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// One command over a plain socket, the raw RESP reply as text (for tests that
    /// look at what the gateway stored, e.g. `KEYS *`).
    pub fn command(&self, args: &[&str]) -> String {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(("127.0.0.1", self.port)).expect("redis answers");
        let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
        let mut out = format!("*{}\r\n", args.len());
        for a in args {
            out.push_str(&format!("${}\r\n{a}\r\n", a.len()));
        }
        s.write_all(out.as_bytes())
            .expect("redis takes the command");
        let mut buf = vec![0u8; 64 * 1024];
        let n = s.read(&mut buf).unwrap_or(0);
        String::from_utf8_lossy(&buf[..n]).into_owned()
    }

    fn wait_ready(&mut self) -> bool {
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(10) {
            if let Ok(Some(_)) = self.child.try_wait() {
                return false;
            }
            if ping(self.port) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    /// Stops the server (SIGKILL), as a crash or a network partition would look.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts it again on the same port (after `kill`), empty.
    pub fn restart(&mut self) {
        self.kill();
        self.child = spawn(self.port, &self.extra);
        assert!(
            self.wait_ready(),
            "redis-server restarts on port {}",
            self.port
        );
    }

    /// SIGSTOP: the server keeps its connections but answers nothing, as a hung
    /// or partitioned Redis looks to a client. `resume` undoes it.
    pub fn pause(&self) {
        self.signal("-STOP");
    }

    pub fn resume(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill {signal} redis-server");
    }
}

fn spawn(port: u16, extra: &[String]) -> Child {
    Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no"])
        .args(["--maxmemory-policy", "noeviction"])
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("redis-server must be installed (scripts/test installs it with apt-get)")
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// `PING` over a plain socket: no client library needed to know the server is up
/// (one with a password answers `-NOAUTH`, which is up too).
fn ping(port: u16) -> bool {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
    let mut buf = [0u8; 7];
    s.write_all(b"PING\r\n").is_ok()
        && s.read_exact(&mut buf).is_ok()
        && (&buf == b"+PONG\r\n" || &buf == b"-NOAUTH")
}
