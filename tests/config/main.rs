//! Configuration and what it must never show: layering and validation, the command
//! line as an operator runs it (the real binary, exit codes, stderr), the Alpaca
//! broker settings, gateway-key authentication, and no configured secret in any log
//! line or response.
//!
//! `secrets` installs the process-wide tracing subscriber to read every log line.
//! It lives here, among tests that run the gateway only as a child process or not
//! at all, so that its trace-level capture neither slows nor records the many
//! in-process gateways of the other binaries.

// The secrets scenario uses a few of the shared helpers; the api binary uses them all.
#[allow(dead_code)]
#[path = "../common/mod.rs"]
mod common;

mod accounts;
mod alpaca;
mod auth;
mod binary;
mod helpers;
mod load;
mod secrets;
