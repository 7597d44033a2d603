//! Durations are `Duration` in the typed config but whole numbers in the TOML file
//! and the environment, with the unit in the key (`cache.account_ttl_ms`), so an
//! operator never has to guess it. These read such a number; `render` writes it
//! back the same way.

use std::time::Duration;

use serde::{Deserialize, Deserializer};

/// A `*_ms` key. Milliseconds so that tests (and very fast brokers) can use
/// sub-second values.
pub(crate) fn millis<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    u64::deserialize(d).map(Duration::from_millis)
}

/// A `*_secs` key, for durations no one sets below a second.
pub(crate) fn secs<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    u64::deserialize(d).map(Duration::from_secs)
}
