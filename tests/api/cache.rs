//! The cache and the throttle end to end (docs/cache.md): GraphQL over the gateway
//! over broker-sim. Assertions are on counts (broker-sim's stats, the gateway's
//! cache counters), never on how long something took.

mod bench;
mod coalescing;
mod stale;
mod storm;
mod support;

// The tests that matter most, also against broker-sim's Alpaca dialect.
use coalescing::five_hundred_cold_dashboards_make_one_broker_call_per_resource;
use stale::broker_down_serves_stale_with_the_extension_then_broker_unavailable;
use storm::a_polling_storm_never_reaches_the_brokers_rate_limit;
crate::in_both_dialects!(
    five_hundred_cold_dashboards_make_one_broker_call_per_resource,
    broker_down_serves_stale_with_the_extension_then_broker_unavailable,
    a_polling_storm_never_reaches_the_brokers_rate_limit,
);
