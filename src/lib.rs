pub mod broker;
pub mod config;
pub mod domain;
pub mod graphql;
pub mod secret;
pub mod server;
