//! The Alpaca adapter against a scripted Alpaca (wiremock), with JSON shaped like
//! Alpaca's documented examples: what goes on the wire and how each answer maps.

mod common;

#[path = "broker_alpaca/config.rs"]
mod config;
#[path = "broker_alpaca/embedded.rs"]
mod embedded;
#[path = "broker_alpaca/orders.rs"]
mod orders;
#[path = "broker_alpaca/paging.rs"]
mod paging;
#[path = "broker_alpaca/reads.rs"]
mod reads;
#[path = "broker_alpaca/restart.rs"]
mod restart;
#[path = "broker_alpaca/support.rs"]
mod support;
