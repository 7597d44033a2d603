//! The generic HTTP adapter against a scripted broker (wiremock): what goes on the
//! wire, and how every kind of answer reaches the layers above.

mod failures;
mod requests;
mod support;
mod tls;
mod trading;
