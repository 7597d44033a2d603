//! The Alpaca adapter against a scripted Alpaca (wiremock), with JSON shaped like
//! Alpaca's documented examples: what goes on the wire and how each answer maps.

mod contract;
mod embedded;
mod orders;
mod paging;
mod reads;
mod support;
mod trading;
