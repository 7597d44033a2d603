//! The cache and the throttle end to end (DESIGN.md §7): GraphQL over the gateway
//! over broker-sim. Assertions are on counts (broker-sim's stats, the gateway's
//! cache counters), never on how long something took.

mod common;

#[path = "cache/coalescing.rs"]
mod coalescing;
#[path = "cache/stale.rs"]
mod stale;
#[path = "cache/storm.rs"]
mod storm;
#[path = "cache/support.rs"]
mod support;
