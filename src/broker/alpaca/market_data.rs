//! Alpaca's market data, which lives on its own host (`broker.data_url`, by default
//! `https://data.alpaca.markets`) beside the Trading API: latest quotes over REST,
//! and the quote shape its real-time stream shares (`data_stream`).
//!
//! Prices and sizes are JSON numbers here, unlike the Trading API's strings: they
//! are read through their decimal text, so `187.45` is exactly 187.45 and never a
//! rounded float. Alpaca's quotes carry no last trade, so `last` is unset.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use reqwest::Url;
use rust_decimal::Decimal;
use serde::{Deserialize, Deserializer};

use crate::domain::Quote;

/// Alpaca's market-data REST host.
pub const DATA_URL: &str = "https://data.alpaca.markets";
/// Alpaca's market-data stream host; the feed is the path (`/v2/iex`).
pub const DATA_STREAM_URL: &str = "wss://stream.data.alpaca.markets";

/// Which of Alpaca's equity feeds: IEX (every plan) or SIP (all exchanges, paid).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Feed {
    #[default]
    Iex,
    Sip,
}

impl Feed {
    pub fn as_str(self) -> &'static str {
        match self {
            Feed::Iex => "iex",
            Feed::Sip => "sip",
        }
    }
}

/// Where the account's market data is, when it is not Alpaca's own hosts: a paper
/// broker or a proxy serves it at the Trading API's base URL.
pub fn default_data_urls(trading_url: &str) -> (String, String) {
    let alpaca = [super::PAPER_URL, super::LIVE_URL]
        .iter()
        .any(|u| trading_url.trim_end_matches('/') == *u);
    if alpaca {
        (DATA_URL.to_owned(), DATA_STREAM_URL.to_owned())
    } else {
        (trading_url.to_owned(), trading_url.to_owned())
    }
}

/// One quote as both the REST snapshot and the stream send it.
#[derive(Deserialize)]
pub(super) struct QuoteDto {
    #[serde(default, deserialize_with = "number")]
    bp: Option<Decimal>,
    #[serde(default, deserialize_with = "number")]
    bs: Option<Decimal>,
    #[serde(default, deserialize_with = "number")]
    ap: Option<Decimal>,
    #[serde(default, deserialize_with = "number", rename = "as")]
    ask_size: Option<Decimal>,
    t: DateTime<Utc>,
}

impl QuoteDto {
    pub(super) fn into_domain(self, symbol: String, as_of: DateTime<Utc>) -> Quote {
        // Alpaca sends a side without an order as price 0.
        let price = |p: Option<Decimal>| p.filter(|p| !p.is_zero());
        Quote {
            symbol,
            bid: price(self.bp),
            bid_size: self.bs,
            ask: price(self.ap),
            ask_size: self.ask_size,
            last: None,
            at: self.t,
            as_of,
        }
    }
}

/// `GET /v2/stocks/quotes/latest`: unknown symbols are absent from the map.
#[derive(Deserialize)]
pub(super) struct LatestQuotesDto {
    pub quotes: BTreeMap<String, QuoteDto>,
}

/// A JSON number read through its decimal text.
fn number<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Decimal>, D::Error> {
    let n: Option<serde_json::Number> = Option::deserialize(d)?;
    n.map(|n| {
        let text = n.to_string();
        text.parse::<Decimal>()
            .or_else(|_| Decimal::from_scientific(&text))
            .map_err(serde::de::Error::custom)
    })
    .transpose()
}

/// `base/v2/stocks/quotes/latest?symbols=…&feed=…`.
pub(super) fn latest_quotes_url(data: &Url, symbols: &[String], feed: Feed) -> Url {
    let mut url =
        crate::broker::transport::versioned_url(data, "v2", &["stocks", "quotes", "latest"]);
    url.query_pairs_mut()
        .append_pair("symbols", &symbols.join(","))
        .append_pair("feed", feed.as_str());
    url
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prices_are_read_exactly_and_an_empty_side_is_none() {
        let dto: QuoteDto = serde_json::from_str(
            r#"{"ap":187.45,"as":3,"bp":0,"bs":0,"t":"2026-12-01T14:30:00.123456789Z"}"#,
        )
        .unwrap();
        let q = dto.into_domain("AA".into(), Utc::now());
        assert_eq!(q.ask, Some("187.45".parse().unwrap()));
        assert_eq!(q.ask_size, Some(Decimal::from(3)));
        assert_eq!(q.bid, None);
        assert_eq!(q.last, None);
    }

    #[test]
    fn alpaca_hosts_get_alpacas_data_hosts_and_others_their_own() {
        assert_eq!(default_data_urls(super::super::PAPER_URL).0, DATA_URL);
        let sim = "http://127.0.0.1:9000";
        assert_eq!(default_data_urls(sim), (sim.to_owned(), sim.to_owned()));
    }
}
