//! The `Broker` trait over Alpaca's v2 routes. Each call's span carries its
//! `route` (the one name of the operation, as for every dialect) and the
//! `http.route` template it sends, never a URL full of ids.

use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use chrono::{Days, Utc};
use tracing::field::Empty;

use super::market_data::{latest_quotes_url, LatestQuotesDto};
use super::paging::{self, OrdersCursor};
use super::response::Expect;
use super::wire::{AccountDto, AssetDto, CalendarDayDto, OrderDto, PositionDto};
use super::{AlpacaBroker, Reply, ASSETS_TTL};
use crate::broker::{Broker, BrokerError, RateLimitSnapshot, Route};
use crate::domain::{
    Account, CanceledOrders, Instrument, NewOrder, Order, OrderQuery, OrderReplacement,
    OrderStatusFilter, Page, PageRequest, Position, PositionClose, Quote, Replaced, Submitted,
    TradingHours,
};

#[async_trait]
impl Broker for AlpacaBroker {
    #[tracing::instrument(skip_all, fields(route = %Route::Account, http.route = "GET /v2/account", status = Empty, latency_ms = Empty))]
    async fn account(&self) -> Result<Account, BrokerError> {
        let request = self.client.get(self.url(&["account"]));
        let reply = self.call::<AccountDto>(request, Expect::List).await?;
        Ok(reply.body.into_domain(reply.received_at))
    }

    #[tracing::instrument(skip_all, fields(route = %Route::Instrument, http.route = "GET /v2/assets/{symbol}", symbol = symbol, status = Empty, latency_ms = Empty))]
    async fn instrument(&self, symbol: &str) -> Result<Instrument, BrokerError> {
        let request = self.client.get(self.object_url("assets", symbol)?);
        let asset = self.call::<AssetDto>(request, Expect::Lookup).await?.body;
        let hours = self.trading_hours().await;
        Ok(asset.into_domain(hours.as_ref()))
    }

    async fn instruments(&self, page: &PageRequest) -> Result<Page<Instrument>, BrokerError> {
        let all = self.assets().await?;
        Ok(paging::by_symbol(
            all.as_ref().clone(),
            |i| i.symbol.as_str(),
            page.limit,
            page.cursor.as_deref(),
        ))
    }

    #[tracing::instrument(skip_all, fields(route = %Route::Positions, http.route = "GET /v2/positions", limit = page.limit, status = Empty, latency_ms = Empty))]
    async fn positions(&self, page: &PageRequest) -> Result<Page<Position>, BrokerError> {
        let request = self.client.get(self.url(&["positions"]));
        let reply = self.call::<Vec<PositionDto>>(request, Expect::List).await?;
        let as_of = reply.received_at;
        let page = paging::by_symbol(
            reply.body,
            |p| p.symbol.as_str(),
            page.limit,
            page.cursor.as_deref(),
        );
        Ok(Page {
            items: page
                .items
                .into_iter()
                .map(|p| p.into_domain(as_of))
                .collect(),
            next_cursor: page.next_cursor,
        })
    }

    #[tracing::instrument(skip_all, fields(route = %Route::Order, http.route = "GET /v2/orders/{id}", order_id = id, status = Empty, latency_ms = Empty))]
    async fn order(&self, id: &str) -> Result<Order, BrokerError> {
        // Alpaca order ids are UUIDs; anything else names no order (and Alpaca would
        // answer it with a validation error, not a 404).
        if uuid::Uuid::try_parse(id).is_err() {
            return Err(BrokerError::NotFound);
        }
        let request = self.client.get(self.object_url("orders", id)?);
        let reply = self.call::<OrderDto>(request, Expect::Lookup).await?;
        Ok(reply.body.into_domain(reply.received_at))
    }

    #[tracing::instrument(skip_all, fields(route = %Route::Orders, http.route = "GET /v2/orders", limit = page.limit, status = Empty, latency_ms = Empty))]
    async fn orders(
        &self,
        query: &OrderQuery,
        page: &PageRequest,
    ) -> Result<Page<Order>, BrokerError> {
        let cursor = page
            .cursor
            .as_deref()
            .map(OrdersCursor::decode)
            .transpose()?;
        let mut requested = paging::orders_request_limit(page.limit, cursor.as_ref());
        let reply = loop {
            let reply = self.list_orders(query, requested, cursor.as_ref()).await?;
            if !paging::orders_need_more(&reply.body, requested, cursor.as_ref()) {
                break reply;
            }
            requested = requested.saturating_mul(4).min(paging::MAX_ORDERS_LIMIT);
        };
        let as_of = reply.received_at;
        let (items, next_cursor) =
            paging::orders_page(reply.body, page.limit, requested, cursor.as_ref());
        Ok(Page {
            items: items.into_iter().map(|o| o.into_domain(as_of)).collect(),
            next_cursor,
        })
    }

    #[tracing::instrument(skip_all, fields(route = %Route::SubmitOrder, http.route = "POST /v2/orders", idempotency_key = %order.idempotency_key, status = Empty, latency_ms = Empty))]
    async fn submit_order(&self, order: &NewOrder) -> Result<Submitted, BrokerError> {
        self.submit(order).await
    }

    /// Alpaca accepts a cancel with 204 and completes it later, so the order is read
    /// back: the payload then shows `PENDING_CANCEL` or `CANCELED`, as it stands.
    async fn cancel_order(&self, id: &str) -> Result<Order, BrokerError> {
        if uuid::Uuid::try_parse(id).is_err() {
            return Err(BrokerError::NotFound);
        }
        self.request_cancel(id).await?;
        self.order(id).await
    }

    async fn replace_order(
        &self,
        id: &str,
        replacement: &OrderReplacement,
    ) -> Result<Replaced, BrokerError> {
        self.replace(id, replacement).await
    }

    async fn close_position(&self, close: &PositionClose) -> Result<Submitted, BrokerError> {
        self.close(close).await
    }

    async fn cancel_all_orders(&self, symbol: Option<&str>) -> Result<CanceledOrders, BrokerError> {
        self.cancel_all(symbol).await
    }

    #[tracing::instrument(skip_all, fields(route = %Route::Quotes, http.route = "GET /v2/stocks/quotes/latest", symbols = symbols.len(), status = Empty, latency_ms = Empty))]
    async fn quotes(&self, symbols: &[String]) -> Result<Vec<Quote>, BrokerError> {
        let request = self
            .client
            .get(latest_quotes_url(&self.data, symbols, self.feed));
        let reply = self.call::<LatestQuotesDto>(request, Expect::List).await?;
        let as_of = reply.received_at;
        Ok(reply
            .body
            .quotes
            .into_iter()
            .map(|(symbol, q)| q.into_domain(symbol, as_of))
            .collect())
    }

    fn rate_limit(&self) -> Option<RateLimitSnapshot> {
        *self.rate_limit.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl AlpacaBroker {
    pub(super) async fn list_orders(
        &self,
        query: &OrderQuery,
        limit: u32,
        cursor: Option<&OrdersCursor>,
    ) -> Result<Reply<Vec<OrderDto>>, BrokerError> {
        let mut url = self.url(&["orders"]);
        {
            let mut q = url.query_pairs_mut();
            q.append_pair(
                "status",
                match query.status {
                    OrderStatusFilter::Open => "open",
                    OrderStatusFilter::Closed => "closed",
                    OrderStatusFilter::All => "all",
                },
            );
            q.append_pair("limit", &limit.to_string());
            q.append_pair("direction", "desc");
            q.append_pair("nested", "false");
            if let Some(c) = cursor {
                q.append_pair("until", &c.until());
            }
            if let Some(symbol) = &query.symbol {
                q.append_pair("symbols", symbol);
            }
        }
        self.call::<Vec<OrderDto>>(self.client.get(url), Expect::List)
            .await
    }

    #[tracing::instrument(skip_all, fields(route = %Route::CancelOrder, http.route = "DELETE /v2/orders/{id}", order_id = id, status = Empty, latency_ms = Empty))]
    pub(super) async fn request_cancel(&self, id: &str) -> Result<(), BrokerError> {
        let request = self.client.delete(self.object_url("orders", id)?);
        self.checked(request, Expect::Cancel).await.map(|_| ())
    }

    /// All active assets, kept for `ASSETS_TTL`: Alpaca has no paging on assets.
    async fn assets(&self) -> Result<Arc<Vec<Instrument>>, BrokerError> {
        if let Some((at, all)) = &*self.assets.lock().unwrap_or_else(|p| p.into_inner()) {
            if at.elapsed() < ASSETS_TTL {
                return Ok(all.clone());
            }
        }
        let dtos = self.fetch_assets().await?;
        let hours = self.trading_hours().await;
        let all: Arc<Vec<Instrument>> = Arc::new(
            dtos.into_iter()
                .map(|a| a.into_domain(hours.as_ref()))
                .collect(),
        );
        *self.assets.lock().unwrap_or_else(|p| p.into_inner()) =
            Some((Instant::now(), all.clone()));
        Ok(all)
    }

    #[tracing::instrument(skip_all, fields(http.route = "GET /v2/assets", status = Empty, latency_ms = Empty))]
    async fn fetch_assets(&self) -> Result<Vec<AssetDto>, BrokerError> {
        let mut url = self.url(&["assets"]);
        url.query_pairs_mut().append_pair("status", "active");
        Ok(self
            .call::<Vec<AssetDto>>(self.client.get(url), Expect::List)
            .await?
            .body)
    }

    /// The next regular session's hours from the calendar, read once a day. `None`
    /// (and asked again next time) when the calendar cannot be read: hours are a
    /// nicety and must not fail an instrument lookup.
    async fn trading_hours(&self) -> Option<TradingHours> {
        let today = Utc::now().date_naive();
        if let Some((day, hours)) = &*self.hours.lock().unwrap_or_else(|p| p.into_inner()) {
            if *day == today {
                return hours.clone();
            }
        }
        let days = self.calendar(today).await.ok()?;
        let hours = days
            .into_iter()
            .find(|d| d.date >= today)
            .map(|d| TradingHours {
                timezone: "America/New_York".into(),
                open: d.open,
                close: d.close,
            });
        *self.hours.lock().unwrap_or_else(|p| p.into_inner()) = Some((today, hours.clone()));
        hours
    }

    #[tracing::instrument(skip_all, fields(http.route = "GET /v2/calendar", status = Empty, latency_ms = Empty))]
    async fn calendar(&self, from: chrono::NaiveDate) -> Result<Vec<CalendarDayDto>, BrokerError> {
        let to = from.checked_add_days(Days::new(7)).unwrap_or(from);
        let mut url = self.url(&["calendar"]);
        url.query_pairs_mut()
            .append_pair("start", &from.to_string())
            .append_pair("end", &to.to_string());
        Ok(self
            .call::<Vec<CalendarDayDto>>(self.client.get(url), Expect::List)
            .await?
            .body)
    }
}
