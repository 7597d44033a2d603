//! broker-sim over real HTTP on port 0: the v1 REST surface and the Alpaca dialect,
//! idempotency, the simulated market, rate limits, faults, the OpenAPI document
//! checked against real responses, the order streams over WebSockets, and (ignored)
//! memory under a long run.
//!
//! One binary rather than one per file: each test binary links the whole crate.

mod alpaca;
mod api;
mod faults;
mod helpers;
mod idempotency;
mod market;
mod memory;
mod oauth;
mod openapi;
mod quotes;
mod ratelimit;
mod stream;
mod trading;
