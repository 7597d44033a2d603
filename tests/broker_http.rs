//! The generic HTTP adapter against a scripted broker (wiremock): what goes on the
//! wire, and how every kind of answer reaches the layers above.

#[path = "broker_http/failures.rs"]
mod failures;
#[path = "broker_http/requests.rs"]
mod requests;
#[path = "broker_http/support.rs"]
mod support;
#[path = "broker_http/tls.rs"]
mod tls;
