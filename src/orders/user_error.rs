//! The business outcomes of a mutation (`userErrors`, docs/api.md, "Errors") and
//! their codes. A `UserError` is also stored as JSON under an idempotency key and
//! replayed, so the codes' text is a storage format as well as an API.

use serde::de::{value::Error as ParseError, IntoDeserializer};
use serde::Deserialize;

/// A business outcome the client should show next to a form field; returned in the
/// payload's `userErrors`, not as a GraphQL error.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct UserError {
    /// Path to the input field, e.g. `["input", "quantity"]`; empty when no one field is to blame.
    pub field: Vec<String>,
    pub code: UserErrorCode,
    pub message: String,
}

impl UserError {
    pub(crate) fn new(field: &str, code: UserErrorCode, message: impl Into<String>) -> Self {
        UserError {
            field: vec!["input".to_string(), field.to_string()],
            code,
            message: message.into(),
        }
    }
}

/// Serialized as the SCREAMING_SNAKE name: the text records stored while the code
/// was a `String` already hold. The GraphQL field stays the schema's `String!`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub(crate) enum UserErrorCode {
    InsufficientBuyingPower,
    /// Selling more than is held (and available: not promised to open sells), where
    /// the broker does not allow going short.
    InsufficientPosition,
    UnknownSymbol,
    NotTradable,
    InvalidQuantity,
    LotSize,
    TickSize,
    InvalidPrice,
    MissingLimitPrice,
    UnexpectedLimitPrice,
    MissingStopPrice,
    UnexpectedStopPrice,
    InvalidTimeInForce,
    IdempotencyKeyReused,
    OrderNotFound,
    OrderNotCancelable,
    /// The order is over (filled, canceled, expired, or already replaced), or the broker
    /// does not replace it in its state (partially filled, at some brokers).
    OrderNotReplaceable,
    /// A replace that changes nothing.
    NothingToReplace,
    /// A close of a symbol the account holds no position in.
    PositionNotFound,
    /// A limit priced beyond `orders.price_collar_pct` through the quote.
    PriceOutsideCollar,
    /// Also what a record holds that a newer gateway stored with a code this one does
    /// not know (replicas of two versions share Redis during a rolling deploy): it
    /// was a broker refusal, and its message is the broker's. Last: serde wants it so.
    #[serde(other)]
    RejectedByBroker,
}

impl UserErrorCode {
    pub(crate) const fn as_str(self) -> &'static str {
        match self {
            UserErrorCode::InsufficientBuyingPower => "INSUFFICIENT_BUYING_POWER",
            UserErrorCode::InsufficientPosition => "INSUFFICIENT_POSITION",
            UserErrorCode::UnknownSymbol => "UNKNOWN_SYMBOL",
            UserErrorCode::NotTradable => "NOT_TRADABLE",
            UserErrorCode::InvalidQuantity => "INVALID_QUANTITY",
            UserErrorCode::LotSize => "LOT_SIZE",
            UserErrorCode::TickSize => "TICK_SIZE",
            UserErrorCode::InvalidPrice => "INVALID_PRICE",
            UserErrorCode::MissingLimitPrice => "MISSING_LIMIT_PRICE",
            UserErrorCode::UnexpectedLimitPrice => "UNEXPECTED_LIMIT_PRICE",
            UserErrorCode::MissingStopPrice => "MISSING_STOP_PRICE",
            UserErrorCode::UnexpectedStopPrice => "UNEXPECTED_STOP_PRICE",
            UserErrorCode::InvalidTimeInForce => "INVALID_TIME_IN_FORCE",
            UserErrorCode::IdempotencyKeyReused => "IDEMPOTENCY_KEY_REUSED",
            UserErrorCode::OrderNotFound => "ORDER_NOT_FOUND",
            UserErrorCode::OrderNotCancelable => "ORDER_NOT_CANCELABLE",
            UserErrorCode::OrderNotReplaceable => "ORDER_NOT_REPLACEABLE",
            UserErrorCode::NothingToReplace => "NOTHING_TO_REPLACE",
            UserErrorCode::PositionNotFound => "POSITION_NOT_FOUND",
            UserErrorCode::PriceOutsideCollar => "PRICE_OUTSIDE_COLLAR",
            UserErrorCode::RejectedByBroker => "REJECTED_BY_BROKER",
        }
    }

    /// Whether a broker rejection with this code means exactly what ours does, so the
    /// client can act on it (mark the field) as on our own check. No wildcard arm: a
    /// new code is a decision here, or it does not compile.
    const fn shared_with_broker(self) -> bool {
        match self {
            UserErrorCode::InsufficientBuyingPower
            | UserErrorCode::InsufficientPosition
            | UserErrorCode::UnknownSymbol
            | UserErrorCode::NotTradable
            | UserErrorCode::InvalidQuantity
            | UserErrorCode::LotSize
            | UserErrorCode::TickSize
            | UserErrorCode::InvalidPrice
            | UserErrorCode::MissingLimitPrice
            | UserErrorCode::UnexpectedLimitPrice
            | UserErrorCode::MissingStopPrice
            | UserErrorCode::UnexpectedStopPrice
            | UserErrorCode::InvalidTimeInForce
            | UserErrorCode::IdempotencyKeyReused
            | UserErrorCode::OrderNotReplaceable
            | UserErrorCode::PositionNotFound => true,
            // Cancels read the broker's `order_not_cancelable` themselves: an already
            // cancelled order is success there, not this code.
            UserErrorCode::OrderNotFound
            | UserErrorCode::OrderNotCancelable
            | UserErrorCode::NothingToReplace
            | UserErrorCode::PriceOutsideCollar
            | UserErrorCode::RejectedByBroker => false,
        }
    }

    /// The code for a broker rejection: ours when the broker's (any case) is one we
    /// share, else `RejectedByBroker`. Parsed with the same derive that reads stored
    /// records, so a new variant needs no second list here.
    pub(crate) fn from_broker(code: &str) -> UserErrorCode {
        let upper = code.to_ascii_uppercase();
        let parsed: Result<UserErrorCode, ParseError> =
            UserErrorCode::deserialize(upper.as_str().into_deserializer());
        parsed
            .ok()
            .filter(|c| c.shared_with_broker())
            .unwrap_or(UserErrorCode::RejectedByBroker)
    }
}

impl std::fmt::Display for UserErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::UserError;
    use super::UserErrorCode::{self, *};

    /// The text clients match on and stored records hold; a changed one breaks both.
    const DOCUMENTED: [(UserErrorCode, &str); 20] = [
        (InsufficientBuyingPower, "INSUFFICIENT_BUYING_POWER"),
        (InsufficientPosition, "INSUFFICIENT_POSITION"),
        (UnknownSymbol, "UNKNOWN_SYMBOL"),
        (NotTradable, "NOT_TRADABLE"),
        (InvalidQuantity, "INVALID_QUANTITY"),
        (LotSize, "LOT_SIZE"),
        (TickSize, "TICK_SIZE"),
        (InvalidPrice, "INVALID_PRICE"),
        (MissingLimitPrice, "MISSING_LIMIT_PRICE"),
        (UnexpectedLimitPrice, "UNEXPECTED_LIMIT_PRICE"),
        (MissingStopPrice, "MISSING_STOP_PRICE"),
        (UnexpectedStopPrice, "UNEXPECTED_STOP_PRICE"),
        (InvalidTimeInForce, "INVALID_TIME_IN_FORCE"),
        (IdempotencyKeyReused, "IDEMPOTENCY_KEY_REUSED"),
        (OrderNotFound, "ORDER_NOT_FOUND"),
        (OrderNotCancelable, "ORDER_NOT_CANCELABLE"),
        (OrderNotReplaceable, "ORDER_NOT_REPLACEABLE"),
        (NothingToReplace, "NOTHING_TO_REPLACE"),
        (PositionNotFound, "POSITION_NOT_FOUND"),
        (RejectedByBroker, "REJECTED_BY_BROKER"),
    ];

    #[test]
    fn every_code_round_trips_through_its_stored_text() {
        for (code, text) in DOCUMENTED {
            assert_eq!(code.as_str(), text);
            assert_eq!(code.to_string(), text);
            let json = serde_json::to_string(&code).unwrap();
            assert_eq!(json, format!("\"{text}\""));
            assert_eq!(serde_json::from_str::<UserErrorCode>(&json).unwrap(), code);
        }
    }

    #[test]
    fn a_record_stored_before_the_enum_still_reads() {
        let stored = r#"{"field":["input","quantity"],"code":"LOT_SIZE","message":"m"}"#;
        let e: UserError = serde_json::from_str(stored).unwrap();
        assert_eq!(e.code, LotSize);
        assert_eq!(serde_json::to_string(&e).unwrap(), stored);
    }

    #[test]
    fn a_code_from_a_newer_gateway_reads_as_a_broker_refusal() {
        let stored = r#"{"field":[],"code":"SOME_FUTURE_CODE","message":"m"}"#;
        let e: UserError = serde_json::from_str(stored).unwrap();
        assert_eq!(e.code, RejectedByBroker);
    }

    #[test]
    fn broker_codes_map_to_shared_codes_in_any_case() {
        assert_eq!(UserErrorCode::from_broker("lot_size"), LotSize);
        assert_eq!(UserErrorCode::from_broker("Tick_Size"), TickSize);
        assert_eq!(
            UserErrorCode::from_broker("INSUFFICIENT_BUYING_POWER"),
            InsufficientBuyingPower
        );
        assert_eq!(
            UserErrorCode::from_broker("idempotency_key_reused"),
            IdempotencyKeyReused
        );
        assert_eq!(
            UserErrorCode::from_broker("market_closed"),
            RejectedByBroker
        );
        assert_eq!(UserErrorCode::from_broker(""), RejectedByBroker);
    }

    #[test]
    fn only_the_shared_codes_are_taken_from_the_broker() {
        for (code, text) in DOCUMENTED {
            let expected = if code.shared_with_broker() {
                code
            } else {
                RejectedByBroker
            };
            assert_eq!(UserErrorCode::from_broker(text), expected, "{text}");
        }
        let ours_only = DOCUMENTED
            .into_iter()
            .filter(|(c, _)| !c.shared_with_broker());
        assert_eq!(
            ours_only.map(|(_, text)| text).collect::<Vec<_>>(),
            [
                "ORDER_NOT_FOUND",
                "ORDER_NOT_CANCELABLE",
                "NOTHING_TO_REPLACE",
                "REJECTED_BY_BROKER"
            ]
        );
    }
}
