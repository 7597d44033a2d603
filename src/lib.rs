pub mod broker;
pub mod domain;
pub mod secret;
