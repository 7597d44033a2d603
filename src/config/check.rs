//! What every section's validation shares. A failure is `(dotted key, message)`
//! rather than a `ConfigError`, because only the loader knows which layer set the
//! key; messages echo the bad value, except secrets and URLs (they may carry
//! credentials).

use std::net::SocketAddr;

use serde::{Deserialize, Deserializer};

pub(crate) type Check = Result<(), (String, String)>;

pub(crate) fn fail(key: impl Into<String>, message: impl Into<String>) -> Check {
    Err((key.into(), message.into()))
}

/// Refuses the first zero among `values` (counts, sizes, durations): a zero there
/// would not mean "off" but a cache that keeps nothing or a timeout that always
/// fires.
pub(crate) fn positive<T: Default + PartialEq>(values: &[(&str, T)]) -> Check {
    for (key, value) in values {
        if *value == T::default() {
            fail(*key, "must be greater than 0, got 0")?;
        }
    }
    Ok(())
}

/// `listen` with a message that says what is expected (a hostname is not accepted:
/// resolving it would make the loopback check meaningless).
pub(crate) fn socket_addr<'de, D: Deserializer<'de>>(d: D) -> Result<SocketAddr, D::Error> {
    let raw = String::deserialize(d)?;
    raw.trim().parse().map_err(|_| {
        serde::de::Error::custom(format!(
            "must be an IP address and port such as 127.0.0.1:8080 or [::1]:8080, got {raw:?}"
        ))
    })
}
