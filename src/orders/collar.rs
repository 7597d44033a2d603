//! The price collar: a limit order priced far through the market is refused before
//! it leaves the gateway (a fat-fingered `1000` for `10.00`, a sell limit at a
//! tenth of the bid). Off unless `orders.price_collar_pct` is set.
//!
//! It reads the quote through the cache (1 s), so a burst of orders costs one
//! quote call. When no quote can be read the order goes on unchecked: the collar
//! guards against a typo, it must not stop trading when market data is down (the
//! broker's own checks still apply).

use rust_decimal::Decimal;

use super::{OrderService, UserError, UserErrorCode};
use crate::domain::{NewOrder, OrderSide, OrderType};

impl OrderService {
    /// `Some` when the order's limit is beyond the collar around the quote: a buy
    /// more than the collar above the ask, a sell more than it below the bid.
    pub(super) async fn outside_collar(&self, order: &NewOrder) -> Option<UserError> {
        let collar = self.settings.collar?;
        let limit = order.limit_price?;
        if !matches!(order.order_type, OrderType::Limit | OrderType::StopLimit) {
            return None;
        }
        let symbols = [order.symbol.clone()];
        let read = crate::request::RequestScope::for_mutation(self.broker.quotes(&symbols));
        let quote = match read.await {
            Ok(quotes) => quotes.into_iter().find(|q| q.symbol == order.symbol)?,
            Err(e) => {
                tracing::warn!(error = %e, symbol = %order.symbol, "no quote for the price collar; the order goes on unchecked");
                return None;
            }
        };
        let pct = collar * Decimal::ONE_HUNDRED;
        match order.side {
            OrderSide::Buy => {
                let ask = quote.ask?;
                let bound = ask * (Decimal::ONE + collar);
                (limit > bound).then(|| {
                    UserError::new(
                        "limitPrice",
                        UserErrorCode::PriceOutsideCollar,
                        format!(
                            "a buy limit of {limit} is more than {}% above the ask of {ask} \
                             (orders.price_collar_pct)",
                            pct.normalize()
                        ),
                    )
                })
            }
            OrderSide::Sell => {
                let bid = quote.bid?;
                let bound = bid * (Decimal::ONE - collar);
                (limit < bound).then(|| {
                    UserError::new(
                        "limitPrice",
                        UserErrorCode::PriceOutsideCollar,
                        format!(
                            "a sell limit of {limit} is more than {}% below the bid of {bid} \
                             (orders.price_collar_pct)",
                            pct.normalize()
                        ),
                    )
                })
            }
        }
    }
}
