//! The gateway end to end: GraphQL over real HTTP, the gateway in front of broker-sim,
//! both on port 0 in this process (`common::spawn_app`). Everything a client of the
//! API can see: reads and Relay walks, orders, limits, persisted queries, keys and
//! audit, the operator's surface, the caches, hostile input, GraphiQL over HTTP, the
//! subscription transports (WebSocket and SSE).
//!
//! One binary rather than one per file: each test binary links the whole crate, and
//! on two cores the links were most of the build.

#[path = "../common/mod.rs"]
mod common;

mod accounts;
mod admin;
mod audit;
mod auth;
mod cache;
mod connections;
mod graphiql;
mod graphql_over_http;
mod graphql_read;
mod hostile;
mod hostile_load;
mod jwt;
mod limits;
mod metrics;
mod oauth;
mod operations;
mod orders;
mod partial_results;
mod persisted;
mod properties;
mod quotes;
mod readme;
mod relay_orders;
mod response_cache;
mod restart;
mod subscriptions;
mod subscriptions_transport;
mod trace_context;
mod trading;
