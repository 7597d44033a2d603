//! The hostile requests of the load run, one kind per abuse the issue names, built
//! once and cloned (a 10 MB body is not rebuilt 200 times).

use bytes::Bytes;
use serde_json::json;

/// What the gateway must answer to a kind: 200 with a coded GraphQL error, or a 4xx.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    MalformedJson,
    WrongContentType,
    TenMegabytes,
    Deep,
    Wide,
    InvalidUtf8,
    HugeVariables,
    DeepJson,
    Batch,
    GetGarbage,
    RawGarbage,
    /// A real dashboard query, interleaved: it must keep getting data.
    Dashboard,
}

pub const DASHBOARD: &str = r#"query Dashboard {
  account { id accountNumber cash buyingPower equity }
  positions(first: 20) { nodes { symbol quantity instrument { name tickSize } } }
  orders(first: 20) { nodes { id symbol status instrument { symbol } } }
}"#;

pub enum Request {
    Post {
        content_type: &'static str,
        body: Bytes,
    },
    Get(String),
    /// Bytes written straight onto a TCP connection, not HTTP at all.
    Raw(Bytes),
}

pub struct Payloads {
    ten_mb: Bytes,
    deep: Bytes,
    wide: Bytes,
    huge_vars: Bytes,
    deep_json: Bytes,
    batch: Bytes,
    dashboard: Bytes,
}

fn body(v: serde_json::Value) -> Bytes {
    Bytes::from(serde_json::to_vec(&v).unwrap())
}

impl Payloads {
    pub fn new() -> Payloads {
        let deep = format!("{}{}", "{ account ".repeat(1000), "}".repeat(1000));
        let wide: String = (0..10_000)
            .map(|i| format!("a{i}: account {{ cash }} "))
            .collect();
        let query = "query($s: String!) { instrument(symbol: $s) { symbol } }";
        Payloads {
            ten_mb: body(
                json!({ "query": "{ account { cash } }", "variables": { "s": "x".repeat(10 << 20) } }),
            ),
            deep: body(json!({ "query": deep })),
            wide: body(json!({ "query": format!("{{ {wide} }}") })),
            huge_vars: body(json!({ "query": query, "variables": { "s": "x".repeat(900 << 10) } })),
            deep_json: Bytes::from(format!(
                r#"{{"query":"{{ account {{ cash }} }}","variables":{{"v":{}{}}}}}"#,
                "[".repeat(100_000),
                "]".repeat(100_000)
            )),
            batch: body(json!(vec![json!({ "query": DASHBOARD }); 100])),
            dashboard: body(json!({ "query": DASHBOARD })),
        }
    }

    /// The `i`th request of a run: a fixed rotation, so every run sends the same mix
    /// (one in 100 is 10 MB; one in 12 of the rest is the dashboard).
    pub fn nth(&self, i: usize) -> (Kind, Request) {
        let post = |content_type, body: &Bytes| Request::Post {
            content_type,
            body: body.clone(),
        };
        if i % 100 == 50 {
            return (Kind::TenMegabytes, post("application/json", &self.ten_mb));
        }
        let kind = match i % 12 {
            0 => Kind::MalformedJson,
            1 => Kind::WrongContentType,
            2 => Kind::Deep,
            3 => Kind::Wide,
            4 => Kind::InvalidUtf8,
            5 => Kind::HugeVariables,
            6 => Kind::DeepJson,
            7 => Kind::Batch,
            8 => Kind::GetGarbage,
            9 => Kind::RawGarbage,
            _ => Kind::Dashboard,
        };
        let request = match kind {
            Kind::MalformedJson => {
                let cut = i % 40 + 1;
                post("application/json", &self.dashboard.slice(..cut))
            }
            Kind::WrongContentType => {
                let types = [
                    "text/plain",
                    "multipart/form-data",
                    "application/xml",
                    "image/png",
                ];
                post(types[i / 12 % types.len()], &self.dashboard)
            }
            Kind::Deep => post("application/json", &self.deep),
            Kind::Wide => post("application/json", &self.wide),
            Kind::InvalidUtf8 => {
                let mut bytes = br#"{"query":"{ account { cash } }","variables":{"s":""#.to_vec();
                bytes.extend_from_slice(&[0xff, 0xfe, 0xc3, 0x28, 0xed, 0xa0, 0x80]);
                bytes.extend_from_slice(br#""}}"#);
                post("application/json", &Bytes::from(bytes))
            }
            Kind::HugeVariables => post("application/json", &self.huge_vars),
            Kind::DeepJson => post("application/json", &self.deep_json),
            Kind::Batch => post("application/json", &self.batch),
            Kind::GetGarbage => Request::Get(format!(
                "query=%ff%fe%7B{}&variables=%7B%7B&extensions={}",
                "%7B".repeat(i % 500),
                "x".repeat(i % 2000)
            )),
            Kind::RawGarbage => Request::Raw(Bytes::from_static(
                b"P\xffST /graphql HTTP/1.1\r\nHost: \xfe\xff\r\nContent-Length: -1\r\n\r\n{",
            )),
            Kind::TenMegabytes | Kind::Dashboard => post("application/json", &self.dashboard),
        };
        (kind, request)
    }
}
