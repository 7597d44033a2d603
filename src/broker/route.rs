use std::fmt;

/// One operation of the `Broker` trait. Its `as_str()` is the only name a broker
/// call has: the `route` label of the broker metrics, the `route` field of every log
/// line and span about the call, and the key of the cache's per-route counters. It
/// is the same whatever dialect carries the call (the HTTP path an adapter sends is
/// its span's `http.route` field, which differs between `/v1` and Alpaca's `/v2`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Route {
    Account,
    Instrument,
    Instruments,
    Positions,
    Order,
    Orders,
    SubmitOrder,
    CancelOrder,
    ReplaceOrder,
    ClosePosition,
    CancelAllOrders,
    Quotes,
}

impl Route {
    pub const ALL: [Route; 12] = [
        Route::Account,
        Route::Instrument,
        Route::Instruments,
        Route::Positions,
        Route::Order,
        Route::Orders,
        Route::SubmitOrder,
        Route::CancelOrder,
        Route::ReplaceOrder,
        Route::ClosePosition,
        Route::CancelAllOrders,
        Route::Quotes,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Route::Account => "account",
            Route::Instrument => "instrument",
            Route::Instruments => "instruments",
            Route::Positions => "positions",
            Route::Order => "order",
            Route::Orders => "orders",
            Route::SubmitOrder => "submit_order",
            Route::CancelOrder => "cancel_order",
            Route::ReplaceOrder => "replace_order",
            Route::ClosePosition => "close_position",
            Route::CancelAllOrders => "cancel_all_orders",
            Route::Quotes => "quotes",
        }
    }

    /// A mutation sent under an idempotency key that the orders layer resends while its
    /// outcome is unknown: its failures are that route's own, and are not counted
    /// toward opening the circuit (see `resilience`).
    pub fn resends_on_unknown_outcome(self) -> bool {
        matches!(
            self,
            Route::SubmitOrder | Route::ReplaceOrder | Route::ClosePosition
        )
    }

    /// The position of this route in [`Route::ALL`], for per-route counters kept in
    /// a fixed array (one atomic each, no map on the hot path).
    pub fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Route {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_lists_every_route_at_its_index() {
        for (i, route) in Route::ALL.iter().enumerate() {
            assert_eq!(route.index(), i, "{route}");
        }
    }
}
