//! The JSON of the Alpaca dialect, shaped like Alpaca's documented examples:
//! decimals as strings, `null` for what does not apply, timestamps with microseconds.

use chrono::{DateTime, SecondsFormat, Utc};
use rust_decimal::Decimal;
use serde::{Serialize, Serializer};
use uuid::Uuid;

use crate::accounts::{cents, Account, Position};
use crate::events::{EventKind, OrderEvent};
use crate::market::{Instrument, Market};
use crate::orders::{Order, OrderStatus, OrderType, Side, TimeInForce};

fn micros<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&t.to_rfc3339_opts(SecondsFormat::Micros, true))
}

fn micros_opt<S: Serializer>(t: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => micros(t, s),
        None => s.serialize_none(),
    }
}

/// A stable id per symbol, as Alpaca gives every asset one.
pub(super) fn asset_id(symbol: &str) -> Uuid {
    // FNV-1a, 128 bits: deterministic without another dependency.
    let mut h: u128 = 0x6c62272e07bb014262b821756295c58d;
    for b in symbol.bytes() {
        h ^= u128::from(b);
        h = h.wrapping_mul(0x0000000001000000000000000000013B);
    }
    uuid::Builder::from_random_bytes(h.to_be_bytes()).into_uuid()
}

#[derive(Serialize)]
pub(super) struct AccountJson {
    id: String,
    account_number: String,
    status: &'static str,
    crypto_status: &'static str,
    currency: &'static str,
    cash: Decimal,
    buying_power: Decimal,
    equity: Decimal,
    portfolio_value: Decimal,
    pattern_day_trader: bool,
    trading_blocked: bool,
    transfers_blocked: bool,
    account_blocked: bool,
    shorting_enabled: bool,
    multiplier: &'static str,
    #[serde(serialize_with = "micros")]
    created_at: DateTime<Utc>,
}

impl AccountJson {
    pub(super) fn new(a: &Account, market: &Market) -> Self {
        let equity = a.equity(market);
        AccountJson {
            id: a.id.to_string(),
            account_number: a.number.clone(),
            status: "ACTIVE",
            crypto_status: "INACTIVE",
            currency: "USD",
            cash: cents(a.cash),
            buying_power: a.buying_power(),
            equity,
            portfolio_value: equity,
            pattern_day_trader: false,
            trading_blocked: false,
            transfers_blocked: false,
            account_blocked: false,
            shorting_enabled: false,
            multiplier: "1",
            created_at: a.created_at,
        }
    }
}

#[derive(Serialize)]
pub(super) struct AssetJson {
    id: String,
    pub(super) class: &'static str,
    pub(super) exchange: &'static str,
    symbol: String,
    name: String,
    pub(super) status: &'static str,
    tradable: bool,
    marginable: bool,
    shortable: bool,
    easy_to_borrow: bool,
    fractionable: bool,
    min_order_size: Decimal,
    min_trade_increment: Decimal,
    attributes: Vec<&'static str>,
}

/// The exchanges assets are listed on, spread over the universe by symbol so a filter
/// on one has something to keep and something to drop.
const EXCHANGES: [&str; 5] = ["NASDAQ", "NYSE", "ARCA", "AMEX", "BATS"];

impl AssetJson {
    /// No `price_increment`: Alpaca sends none for equities, whose prices follow the
    /// sub-penny rule (which this dialect applies), whatever the synthetic tick.
    pub(super) fn new(i: &Instrument, shortable: bool) -> Self {
        let id = asset_id(&i.symbol);
        AssetJson {
            id: id.to_string(),
            class: "us_equity",
            exchange: EXCHANGES[id.as_bytes()[0] as usize % EXCHANGES.len()],
            symbol: i.symbol.clone(),
            name: i.name.clone(),
            status: "active",
            tradable: i.tradable,
            marginable: false,
            shortable,
            easy_to_borrow: shortable,
            fractionable: false,
            min_order_size: Decimal::from(i.lot_size),
            min_trade_increment: Decimal::from(i.lot_size),
            attributes: Vec::new(),
        }
    }

    /// The exchange a position or order in `symbol` shows, the asset's.
    pub(super) fn exchange_of(symbol: &str) -> &'static str {
        EXCHANGES[asset_id(symbol).as_bytes()[0] as usize % EXCHANGES.len()]
    }
}

#[derive(Serialize)]
pub(super) struct PositionJson {
    asset_id: String,
    symbol: String,
    exchange: &'static str,
    asset_class: &'static str,
    avg_entry_price: Decimal,
    qty: Decimal,
    qty_available: Decimal,
    side: &'static str,
    market_value: Decimal,
    cost_basis: Decimal,
    unrealized_pl: Decimal,
    unrealized_plpc: Decimal,
    unrealized_intraday_pl: Decimal,
    unrealized_intraday_plpc: Decimal,
    current_price: Decimal,
    lastday_price: Decimal,
    change_today: Decimal,
    asset_marginable: bool,
}

impl PositionJson {
    /// `qty_available` is what open orders leave: a long's shares not promised to
    /// open sells (a short shows its whole quantity).
    pub(super) fn new(symbol: &str, p: &Position, account: &Account, market: &Market) -> Self {
        let inst = market.get(symbol);
        let short = p.quantity < Decimal::ZERO;
        let available = if short {
            p.quantity
        } else {
            account.sellable(symbol).max(Decimal::ZERO)
        };
        let price = market.price(symbol).unwrap_or_default();
        let last_close = inst.map_or(price, |i| i.last_close);
        let market_value = Account::market_value(market, symbol, p);
        let cost_basis = cents(p.cost);
        let ratio = |part: Decimal, whole: Decimal| {
            if whole.is_zero() {
                Decimal::ZERO
            } else {
                (part / whole.abs()).round_dp(6).normalize()
            }
        };
        let unrealized_pl = cents(market_value - cost_basis);
        let intraday_pl = cents(p.quantity * (price - last_close));
        PositionJson {
            asset_id: asset_id(symbol).to_string(),
            symbol: symbol.to_owned(),
            exchange: AssetJson::exchange_of(symbol),
            asset_class: "us_equity",
            avg_entry_price: crate::orders::display_price(p.cost / p.quantity, inst),
            qty: p.quantity.normalize(),
            qty_available: available.normalize(),
            side: if short { "short" } else { "long" },
            market_value,
            cost_basis,
            unrealized_pl,
            unrealized_plpc: ratio(unrealized_pl, cost_basis),
            unrealized_intraday_pl: intraday_pl,
            unrealized_intraday_plpc: ratio(intraday_pl, p.quantity * last_close),
            current_price: price,
            lastday_price: last_close,
            change_today: ratio(price - last_close, last_close),
            asset_marginable: false,
        }
    }
}

#[derive(Serialize)]
pub(super) struct OrderJson {
    id: String,
    client_order_id: String,
    #[serde(serialize_with = "micros")]
    created_at: DateTime<Utc>,
    #[serde(serialize_with = "micros")]
    updated_at: DateTime<Utc>,
    #[serde(serialize_with = "micros")]
    submitted_at: DateTime<Utc>,
    #[serde(serialize_with = "micros_opt")]
    filled_at: Option<DateTime<Utc>>,
    #[serde(serialize_with = "micros_opt")]
    expired_at: Option<DateTime<Utc>>,
    #[serde(serialize_with = "micros_opt")]
    canceled_at: Option<DateTime<Utc>>,
    failed_at: Option<String>,
    #[serde(serialize_with = "micros_opt")]
    replaced_at: Option<DateTime<Utc>>,
    replaced_by: Option<String>,
    replaces: Option<String>,
    asset_id: String,
    symbol: String,
    asset_class: &'static str,
    notional: Option<Decimal>,
    qty: Decimal,
    filled_qty: Decimal,
    filled_avg_price: Option<Decimal>,
    order_class: &'static str,
    order_type: &'static str,
    #[serde(rename = "type")]
    kind: &'static str,
    side: &'static str,
    time_in_force: &'static str,
    limit_price: Option<Decimal>,
    stop_price: Option<Decimal>,
    status: &'static str,
    extended_hours: bool,
    legs: Option<Vec<()>>,
    trail_percent: Option<Decimal>,
    trail_price: Option<Decimal>,
    hwm: Option<Decimal>,
}

impl OrderJson {
    pub(super) fn new(o: &Order, market: &Market) -> Self {
        Self::with_average(o, o.average_fill_price(market.get(&o.symbol)))
    }

    /// For a snapshot taken earlier, whose average was rendered at that time.
    pub(super) fn with_average(o: &Order, filled_avg_price: Option<Decimal>) -> Self {
        let kind = match o.order_type {
            OrderType::Market => "market",
            OrderType::Limit => "limit",
            OrderType::Stop => "stop",
            OrderType::StopLimit => "stop_limit",
        };
        let replaced = o.replaced_by.is_some();
        let at = |s: OrderStatus| (o.status == s && !replaced).then_some(o.updated_at);
        OrderJson {
            id: o.id.to_string(),
            client_order_id: o
                .idempotency_key
                .clone()
                .unwrap_or_else(|| o.id.to_string()),
            created_at: o.created_at,
            updated_at: o.updated_at,
            submitted_at: o.created_at,
            filled_at: at(OrderStatus::Filled),
            expired_at: at(OrderStatus::Expired),
            canceled_at: at(OrderStatus::Canceled),
            failed_at: None,
            replaced_at: replaced.then_some(o.updated_at),
            replaced_by: o.replaced_by.map(|id| id.to_string()),
            replaces: o.replaces.map(|id| id.to_string()),
            asset_id: asset_id(&o.symbol).to_string(),
            symbol: o.symbol.clone(),
            asset_class: "us_equity",
            notional: None,
            qty: o.quantity,
            filled_qty: o.filled_quantity.normalize(),
            filled_avg_price,
            order_class: "",
            order_type: kind,
            kind,
            side: match o.side {
                Side::Buy => "buy",
                Side::Sell => "sell",
            },
            time_in_force: match o.time_in_force {
                TimeInForce::Day => "day",
                TimeInForce::Gtc => "gtc",
                TimeInForce::Ioc => "ioc",
                TimeInForce::Fok => "fok",
                TimeInForce::Opg => "opg",
                TimeInForce::Cls => "cls",
            },
            limit_price: o.limit_price,
            stop_price: o.stop_price,
            status: if replaced {
                "replaced"
            } else {
                status(o.status)
            },
            extended_hours: false,
            legs: None,
            trail_percent: None,
            trail_price: None,
            hwm: None,
        }
    }
}

/// The engine's statuses in Alpaca's words.
pub(super) fn status(s: OrderStatus) -> &'static str {
    match s {
        OrderStatus::Pending => "pending_new",
        OrderStatus::Accepted => "new",
        OrderStatus::PartiallyFilled => "partially_filled",
        OrderStatus::Filled => "filled",
        OrderStatus::Canceled => "canceled",
        OrderStatus::PendingCancel => "pending_cancel",
        OrderStatus::Rejected => "rejected",
        OrderStatus::Expired => "expired",
    }
}

/// A message on the trade updates stream: `{"stream": .., "data": ..}`.
#[derive(Serialize)]
pub(super) struct StreamMessage<T> {
    pub stream: &'static str,
    pub data: T,
}

#[derive(Serialize)]
pub(super) struct Authorization {
    pub status: &'static str,
    pub action: &'static str,
}

#[derive(Serialize)]
pub(super) struct Listening {
    pub streams: Vec<String>,
}

/// Alpaca's in-stream error, `{"action": "error", "data": {"error_message": ..}}`.
#[derive(Serialize)]
pub(super) struct StreamError {
    action: &'static str,
    data: ErrorMessage,
}

#[derive(Serialize)]
struct ErrorMessage {
    error_message: String,
}

impl StreamError {
    pub(super) fn new(message: impl Into<String>) -> Self {
        StreamError {
            action: "error",
            data: ErrorMessage {
                error_message: message.into(),
            },
        }
    }
}

/// The `data` of a `trade_updates` message. As Alpaca: the execution fields and
/// `position_qty` only on fills, `timestamp` on every event.
#[derive(Serialize)]
pub(super) struct TradeUpdate {
    event: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    execution_id: Option<String>,
    order: OrderJson,
    #[serde(serialize_with = "micros")]
    timestamp: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    position_qty: Option<Decimal>,
    #[serde(skip_serializing_if = "Option::is_none")]
    price: Option<Decimal>,
    #[serde(skip_serializing_if = "Option::is_none")]
    qty: Option<Decimal>,
}

impl TradeUpdate {
    pub(super) fn new(e: &OrderEvent) -> Self {
        let event = match e.kind {
            // Alpaca's `new` is the order reaching the market; before that it is
            // `pending_new`, which is what a submit creates here.
            EventKind::New if e.order.status == OrderStatus::Pending => "pending_new",
            EventKind::New | EventKind::Accepted => "new",
            EventKind::Replaced => "replaced",
            EventKind::PartialFill => "partial_fill",
            EventKind::Fill => "fill",
            EventKind::Canceled => "canceled",
            EventKind::Expired => "expired",
        };
        let fill = e.execution.as_ref();
        TradeUpdate {
            event,
            execution_id: fill.map(|x| x.id.to_string()),
            order: OrderJson::with_average(&e.order, e.average_fill_price),
            timestamp: e.at,
            position_qty: fill.map(|_| e.position_qty),
            price: fill.map(|x| x.price),
            qty: fill.map(|x| x.qty),
        }
    }
}
