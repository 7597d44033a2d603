//! `/metrics` as an operator reads it: every metric docs/operations.md lists is
//! served, with the type and labels the table gives, and nothing else is.

use std::collections::{BTreeMap, BTreeSet};

use brokergraph::config::{Config, Scope};
use serde_json::json;

use crate::common::{spawn_app_with, AppOptions};

/// A metric as the table names it (the name to query) with its type and labels.
type Described = BTreeMap<String, (String, BTreeSet<String>)>;

/// Rows whose meaning says this are served only with that setting.
const ONLY_WITH_REDIS: &str = "only with `redis.url`";
const ONLY_WITH_OAUTH: &str = "only with OAuth accounts";

#[tokio::test]
async fn the_metric_table_of_operations_md_is_what_metrics_serves() {
    let app = spawn_app_with(AppOptions {
        keys: vec![("bot", "bot-key", vec![Scope::Read, Scope::Trade])],
        tweak: |c: &mut Config| {
            c.rate_limit.burst = 2;
            c.rate_limit.per_key.insert("bot".into(), 1);
        },
        ..AppOptions::default()
    })
    .await;
    // A query, a mutation and a refusal, so every labelled family has a series.
    for (body, status) in [
        (json!({ "query": "{ account { cash } }" }), 200),
        (
            json!({ "query": "mutation($k: UUID!) { cancelAllOrders(input: { idempotencyKey: $k }) { canceled { id } } }",
                    "variables": { "k": uuid::Uuid::new_v4() } }),
            200,
        ),
        (json!({ "query": "{ account { cash } }" }), 429),
    ] {
        let resp = app
            .http
            .post(app.url("/graphql"))
            .bearer_auth("bot-key")
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), status, "{body}");
    }
    let resp = app
        .http
        .get(app.url("/metrics"))
        .header(
            "accept",
            "application/openmetrics-text;version=1.0.0,text/plain;q=0.5",
        )
        .send()
        .await
        .unwrap();
    assert!(resp.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/openmetrics-text; version=1.0.0"));
    let served = served(&resp.text().await.unwrap());

    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/operations.md"))
        .unwrap();
    let (mut documented, optional) = documented(&doc);
    for name in optional {
        if !served.contains_key(&name) {
            documented.remove(&name);
        }
    }
    let names = |m: &Described| m.keys().cloned().collect::<BTreeSet<_>>();
    assert_eq!(
        names(&served)
            .difference(&names(&documented))
            .collect::<Vec<_>>(),
        Vec::<&String>::new(),
        "served but not in docs/operations.md"
    );
    assert_eq!(
        names(&documented)
            .difference(&names(&served))
            .collect::<Vec<_>>(),
        Vec::<&String>::new(),
        "in docs/operations.md but not served"
    );
    for (name, described) in &documented {
        assert_eq!(
            &served[name], described,
            "{name}: (type, labels) served vs documented"
        );
    }
}

/// The value of one series in Prometheus text, 0 when it is not there yet.
fn value(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .map_or(0.0, |v| v.parse().unwrap())
}

#[tokio::test]
async fn every_graphql_answer_is_counted_cache_hits_and_refusals_included() {
    let app = spawn_app_with(AppOptions {
        keys: vec![("bot", "bot-key", vec![Scope::Read])],
        tweak: |c: &mut Config| c.server.body_limit_bytes = 1024,
        ..AppOptions::default()
    })
    .await;
    let post = |key: &str, content_type: &str, body: String| {
        app.http
            .post(app.url("/graphql"))
            .bearer_auth(key)
            .header("content-type", content_type)
            .body(body)
            .send()
    };
    let dashboard = json!({ "query": "query Dash { account { cash } }" }).to_string();
    let requests = |outcome: &str, operation: &str| {
        format!(
            "brokergraph_graphql_requests_total{{operation=\"{operation}\",outcome=\"{outcome}\"}}"
        )
    };
    let answers = "brokergraph_graphql_request_duration_seconds_count";
    let hits = "brokergraph_cache_hits_total";

    // Until one is answered from the response cache: the schema does not run, so
    // no resource cache is read, yet it counts. (The first answer fills the
    // resource caches, whose puts move the generation, so it is not stored.)
    let mut answered = 0.0;
    let mut hit = false;
    for _ in 0..10 {
        let before = app.metrics().await;
        let status = post("bot-key", "application/json", dashboard.clone())
            .await
            .unwrap()
            .status();
        assert_eq!(status, 200);
        answered += 1.0;
        let after = app.metrics().await;
        assert_eq!(value(&after, &requests("ok", "Dash")), answered, "{after}");
        assert_eq!(value(&after, answers), answered);
        if answered > 1.0 && value(&after, hits) == value(&before, hits) {
            hit = true;
            break;
        }
    }
    assert!(hit, "no answer came from the response cache");

    let named = json!({ "query": "query Dash { account { cash } }", "operationName": "Dash" });
    let refusals = [
        (
            post("wrong-key", "application/json", named.to_string()),
            401,
            "UNAUTHENTICATED",
            "Dash",
        ),
        (
            post("bot-key", "application/json", "x".repeat(2048)),
            413,
            "BAD_USER_INPUT",
            "anonymous",
        ),
        (
            post("bot-key", "text/plain", dashboard.clone()),
            415,
            "BAD_USER_INPUT",
            "anonymous",
        ),
    ];
    let mut counted = answered;
    for (send, status, outcome, operation) in refusals {
        let series = requests(outcome, operation);
        let was = value(&app.metrics().await, &series);
        assert_eq!(send.await.unwrap().status(), status);
        counted += 1.0;
        let now = app.metrics().await;
        assert_eq!(
            value(&now, &series),
            was + 1.0,
            "{status}: {series} in {now}"
        );
        assert_eq!(value(&now, answers), counted, "{status} timed");
    }
}

#[tokio::test]
async fn metrics_speak_prometheus_text_to_a_client_that_asks_for_nothing_else() {
    let app = spawn_app_with(AppOptions::default()).await;
    let resp = app.http.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(
        resp.headers()["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    let text = resp.text().await.unwrap();
    assert!(
        text.contains("# TYPE brokergraph_cache_hits_total counter\n"),
        "{text}"
    );
    assert!(!text.contains("# EOF"), "{text}");
}

/// The metric table of operations.md: the name in backticks, the type, and the
/// label names in backticks; plus the names served only with some setting.
fn documented(doc: &str) -> (Described, Vec<String>) {
    let mut rows = doc
        .lines()
        .skip_while(|l| !l.starts_with("| metric | type | labels | meaning |"))
        .skip(2)
        .take_while(|l| l.starts_with('|'));
    let mut out = Described::new();
    let mut optional = Vec::new();
    for row in rows.by_ref() {
        let cells: Vec<&str> = row.trim_matches('|').split('|').map(str::trim).collect();
        let [name, kind, labels, meaning] = cells[..] else {
            panic!("a row of four cells: {row}");
        };
        let name = name.trim_matches('`').to_string();
        let labels = labels
            .split(',')
            .map(|l| l.trim().trim_matches('`').to_string())
            .filter(|l| !l.is_empty())
            .collect();
        if meaning.contains(ONLY_WITH_REDIS) || meaning.contains(ONLY_WITH_OAUTH) {
            optional.push(name.clone());
        }
        out.insert(name, (kind.to_string(), labels));
    }
    assert!(out.len() > 20, "the table was found: {out:?}");
    (out, optional)
}

/// OpenMetrics text by the name a query uses: a counter's family name with
/// `_total`, an info's with `_info`; labels from its samples (`le` aside).
fn served(text: &str) -> Described {
    let mut out = Described::new();
    let mut current = String::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (family, kind) = rest.split_once(' ').unwrap();
            current = match kind {
                "counter" => format!("{family}_total"),
                "info" => format!("{family}_info"),
                _ => family.to_string(),
            };
            out.insert(current.clone(), (kind.to_string(), BTreeSet::new()));
        } else if !line.starts_with('#') && !line.is_empty() {
            let labels = line
                .split_once('{')
                .map(|(_, rest)| label_names(rest))
                .unwrap_or_default();
            let entry = &mut out.get_mut(&current).expect("a sample after its TYPE").1;
            entry.extend(labels.into_iter().filter(|l| l != "le"));
        }
    }
    out
}

/// The names of `a="x",b="y\"z"} 1`.
fn label_names(text: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut chars = text.chars();
    loop {
        let name: String = chars.by_ref().take_while(|c| *c != '=').collect();
        if name.is_empty() || name.starts_with('}') {
            return names;
        }
        names.push(name.trim_start_matches(',').to_string());
        assert_eq!(chars.next(), Some('"'));
        while let Some(c) = chars.next() {
            match c {
                '\\' => {
                    chars.next();
                }
                '"' => break,
                _ => {}
            }
        }
    }
}
