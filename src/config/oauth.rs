//! `[oauth]`: how the gateway keeps the access tokens of OAuth accounts
//! (`[accounts.oauth]`) fresh.

use std::time::Duration;

use serde::Deserialize;

use super::check::{positive, Check};
use super::duration;

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OAuthSettings {
    /// Refresh this long before an access token expires, so no request waits on a
    /// refresh and none is sent with a token about to expire. For tokens that live
    /// less than twice as long, halfway through their life.
    #[serde(rename = "refresh_before_ms", deserialize_with = "duration::millis")]
    pub refresh_before: Duration,
}

impl Default for OAuthSettings {
    fn default() -> Self {
        OAuthSettings {
            refresh_before: Duration::from_millis(60_000),
        }
    }
}

impl OAuthSettings {
    pub(crate) fn validate(&self) -> Check {
        positive(&[("oauth.refresh_before_ms", self.refresh_before)])
    }
}
