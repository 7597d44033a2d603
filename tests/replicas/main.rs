//! Three gateway processes on one Redis and one broker-sim behave as one gateway
//! (issue 10): one order per idempotency key whichever replica a retry lands on,
//! one broker budget, and a mutation on one replica seen by a query on another;
//! and the idempotency store's conformance suite against the same real Redis.
//!
//! Everything here needs `redis-server` (`scripts/test` installs it). Each test
//! starts its own on a free port, so the tests run in parallel without sharing state.

mod admin;
mod budget;
mod cluster;
// The cluster starts gateway processes, not in-process apps: a few of the shared
// helpers are used here, all of them by the api binary.
#[allow(dead_code)]
#[path = "../common/mod.rs"]
mod common;
mod failures;
mod helpers;
mod idempotency_redis;
mod oauth;
mod one_gateway;
mod redis_server;
mod shared;
mod streams;
