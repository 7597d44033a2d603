//! `GET /v2/orders` paging: cursors synthesized over Alpaca's time-based paging.

use std::collections::HashSet;

use brokergraph::broker::{Broker, BrokerError};
use brokergraph::domain::*;
use chrono::{DateTime, Utc};
use serde_json::Value;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use super::support::*;

const T0: &str = "2026-03-02T15:30:00.123456Z";

/// Alpaca's paging: newest first, `until` exclusive, `limit` — and equal timestamps
/// in whatever order it likes (here: ascending id, the worst case for a desc walk).
struct ScriptedOrders(Vec<(DateTime<Utc>, String)>);

impl Respond for ScriptedOrders {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let q: std::collections::HashMap<_, _> = req.url.query_pairs().into_owned().collect();
        let limit: usize = q["limit"].parse().unwrap();
        assert!(limit <= 500);
        assert_eq!(q["direction"], "desc");
        let until = q.get("until").map(|u| u.parse::<DateTime<Utc>>().unwrap());
        let mut rows: Vec<_> = self
            .0
            .iter()
            .filter(|(t, _)| until.is_none_or(|u| *t < u))
            .cloned()
            .collect();
        rows.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        rows.truncate(limit);
        let body: Vec<Value> = rows
            .iter()
            .map(|(t, id)| order_json(id, "filled", &t.to_rfc3339()))
            .collect();
        ResponseTemplate::new(200).set_body_json(body)
    }
}

#[tokio::test]
async fn walking_orders_with_equal_timestamps_skips_and_repeats_nothing() {
    let base: DateTime<Utc> = T0.parse().unwrap();
    let mut rows = Vec::new();
    for i in 0..23u32 {
        // Runs of up to 4 orders share one timestamp.
        let t = base + chrono::Duration::microseconds(i64::from(i / 4));
        rows.push((t, format!("00000000-0000-4000-8000-{i:012}")));
    }
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v2/orders"))
        .respond_with(ScriptedOrders(rows.clone()))
        .mount(&server)
        .await;
    let broker = broker(&server);
    for limit in [1, 2, 3, 5, 100] {
        let (mut seen, mut cursor, mut pages) = (Vec::new(), None::<String>, 0);
        loop {
            let p = broker
                .orders(&OrderQuery::default(), &page(limit, cursor.as_deref()))
                .await
                .unwrap();
            assert!(p.items.len() <= limit as usize);
            seen.extend(p.items.into_iter().map(|o| (o.created_at, o.id)));
            pages += 1;
            assert!(pages < 100, "the walk does not end");
            match p.next_cursor {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
        let unique: HashSet<_> = seen.iter().map(|(_, id)| id.clone()).collect();
        assert_eq!(
            unique.len(),
            seen.len(),
            "an order repeated at limit {limit}"
        );
        assert_eq!(seen.len(), rows.len(), "an order skipped at limit {limit}");
        assert!(seen.windows(2).all(|w| w[0].0 >= w[1].0), "newest first");
    }
}

#[tokio::test]
async fn a_foreign_cursor_is_refused_without_asking() {
    let server = MockServer::start().await;
    let err = broker(&server)
        .orders(&OrderQuery::default(), &page(10, Some("garbage")))
        .await
        .unwrap_err();
    assert!(
        matches!(err, BrokerError::Rejected { status: 400, .. }),
        "{err:?}"
    );
    assert!(server.received_requests().await.unwrap().is_empty());
}
