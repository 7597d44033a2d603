use std::time::Duration;

/// Every way a broker call can fail, in terms the layers above can act on: whether
/// to retry, whether a submit may have happened, which code the client sees.
#[derive(Debug, Clone, thiserror::Error)]
pub enum BrokerError {
    /// The broker refused our credentials (401/403). An operator problem, not the user's.
    #[error("the broker refused the gateway's credentials")]
    Unauthorized,
    #[error("not found at the broker")]
    NotFound,
    /// The broker understood the request and said no (4xx with its error envelope).
    /// `code` is the broker's snake_case code, `field` the input field it blames.
    #[error("rejected by the broker: {message}")]
    Rejected {
        status: u16,
        code: String,
        message: String,
        field: Option<String>,
    },
    /// 429. `retry_after` is what the broker asked us to wait, when it said.
    #[error("rate limited by the broker")]
    RateLimited { retry_after: Option<Duration> },
    /// 5xx, or the connection failed or was reset. For a submit this means the
    /// outcome is unknown: the broker may have acted before failing.
    #[error("broker unavailable: {reason}")]
    Unavailable { status: Option<u16>, reason: String },
    /// No answer within the request timeout. For a submit, outcome unknown.
    #[error("the broker did not answer in time")]
    Timeout,
    /// Not sent: the circuit breaker is open because the broker has been failing.
    /// Nothing reached the broker, so a mutation's outcome is known: it did not happen.
    #[error("the broker is failing; not calling it for a moment (circuit open)")]
    CircuitOpen,
    /// The broker answered 2xx with a body we could not read. The body is logged
    /// (redacted) by the adapter, not carried here, so it cannot leak to a client.
    #[error("could not decode the broker's response: {0}")]
    Decode(String),
    /// The account's OAuth authorization is gone (the token endpoint refused the
    /// refresh token or the client: `invalid_grant`, `invalid_client`). Nothing was
    /// sent; nothing will work for this account until it is authorized again.
    #[error("the broker account must be authorized again")]
    ReauthRequired,
    /// No access token could be had (the token endpoint failed, hung or answered
    /// garbage). Nothing was sent to the broker, so a mutation did not happen.
    #[error("no access token for the broker: {0}")]
    TokenUnavailable(String),
}

impl BrokerError {
    /// True when a request that changes state may or may not have taken effect.
    pub fn outcome_unknown(&self) -> bool {
        matches!(
            self,
            BrokerError::Unavailable { .. } | BrokerError::Timeout | BrokerError::Decode(_)
        )
    }
}
