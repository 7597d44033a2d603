//! Credentials that change while the gateway runs: OAuth 2.0 access tokens. The
//! adapters know only this trait; where tokens come from (the token endpoint, the
//! token store, other replicas) is `tokens`, a layer above that hands one in.

use async_trait::async_trait;

use crate::broker::BrokerError;
use crate::secret::Secret;

/// The bearer token to send now, and the way to say the broker refused it.
#[async_trait]
pub trait BearerSource: Send + Sync + 'static {
    /// A token the caller may send: the current one, or a fresh one when it is
    /// about to expire. `BrokerError::ReauthRequired` when the account must be
    /// authorized again; `Unavailable` when the token endpoint cannot be reached.
    async fn bearer(&self) -> Result<Secret, BrokerError>;

    /// The broker answered 401 to `used`: the next `bearer` must not return it.
    /// Forgetting only that token (not whatever is current by now) makes a burst of
    /// 401s to one token cost one refresh.
    fn invalidate(&self, used: &Secret);
}

/// `Authorization: Bearer <token>`, marked sensitive so no debug output shows it.
pub(crate) fn header(token: &Secret) -> Option<reqwest::header::HeaderValue> {
    let mut value =
        reqwest::header::HeaderValue::try_from(format!("Bearer {}", token.expose())).ok()?;
    value.set_sensitive(true);
    Some(value)
}
