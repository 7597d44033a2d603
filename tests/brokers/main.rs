//! The broker side of the gateway: each adapter against a scripted broker (wiremock)
//! for what goes on the wire, every broker failure as the code a client sees,
//! retries and the circuit breaker.
//!
//! One binary rather than one per file: each test binary links the whole crate, and
//! on two cores the links were most of the build.

mod alpaca;
mod error_codes;
mod generic;
mod resilience;
