//! GraphQL enums, mirrored from the domain enums so the schema's names are fixed
//! here and the domain stays free of GraphQL derives.

use async_graphql::Enum;

use crate::domain;

macro_rules! mirror_enum {
    ($name:ident, $domain:path, [$($variant:ident),+ $(,)?]) => {
        #[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
        #[graphql(rename_items = "SCREAMING_SNAKE_CASE")]
        pub enum $name { $($variant),+ }

        impl From<$domain> for $name {
            fn from(value: $domain) -> Self {
                use $domain as D;
                match value { $(D::$variant => $name::$variant),+ }
            }
        }

        impl From<$name> for $domain {
            fn from(value: $name) -> Self {
                use $domain as D;
                match value { $($name::$variant => D::$variant),+ }
            }
        }
    };
}

mirror_enum!(OrderSide, domain::OrderSide, [Buy, Sell]);
mirror_enum!(
    OrderType,
    domain::OrderType,
    [Market, Limit, Stop, StopLimit]
);
mirror_enum!(
    TimeInForce,
    domain::TimeInForce,
    [Day, Gtc, Ioc, Fok, Opg, Cls]
);
mirror_enum!(
    OrderStatus,
    domain::OrderStatus,
    [
        Pending,
        Accepted,
        PartiallyFilled,
        Filled,
        Canceled,
        PendingCancel,
        Rejected,
        Expired
    ]
);
mirror_enum!(
    AccountStatus,
    domain::AccountStatus,
    [Active, Restricted, Closed]
);
mirror_enum!(
    OrderStatusFilter,
    domain::OrderStatusFilter,
    [Open, Closed, All]
);
mirror_enum!(
    OrderEvent,
    domain::OrderEventKind,
    [
        New,
        Accepted,
        PartialFill,
        Fill,
        Canceled,
        PendingCancel,
        Expired,
        Rejected,
        Replaced,
        Reconciled,
        Other
    ]
);
