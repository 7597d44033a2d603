//! The GraphQL layer's error, and the one place where every failure becomes an
//! `extensions.code` (docs/api.md, "Errors").

use async_graphql::ErrorExtensions;

use super::ErrorCode;
use crate::broker::BrokerError;
use crate::orders::OrderError;

/// Deliberately not `Display`: async-graphql converts anything `Display` into an
/// error without a code, so a `?` that skipped this mapping would compile. Without
/// `Display`, the only way into a GraphQL error is `From<GatewayError>` below.
/// Resolvers return `Result<T, GatewayError>`.
#[derive(Debug, Clone)]
pub enum GatewayError {
    BadUserInput(String),
    /// Beyond a limit of the gateway or the broker; the message names it.
    TooComplex(String),
    Forbidden(&'static str),
    Broker(BrokerError),
    IdempotencyKeyInUse,
    OutcomeUnknown,
    /// A bug: the detail is logged, the client sees only the code.
    Internal(String),
}

impl From<OrderError> for GatewayError {
    fn from(err: OrderError) -> Self {
        match err {
            OrderError::Broker(e) => GatewayError::Broker(e),
            OrderError::InUse => GatewayError::IdempotencyKeyInUse,
            OrderError::OutcomeUnknown => GatewayError::OutcomeUnknown,
            OrderError::Store(e) => GatewayError::Broker(BrokerError::Unavailable {
                status: None,
                reason: e.to_string(),
            }),
            OrderError::Corrupt(detail) => GatewayError::Internal(detail),
        }
    }
}

impl From<BrokerError> for GatewayError {
    fn from(err: BrokerError) -> Self {
        GatewayError::Broker(err)
    }
}

/// Only framework plumbing (a missing `ctx.data`) produces these inside a resolver.
impl From<async_graphql::Error> for GatewayError {
    fn from(err: async_graphql::Error) -> Self {
        GatewayError::Internal(err.message)
    }
}

impl GatewayError {
    pub fn message(&self) -> String {
        match self {
            GatewayError::BadUserInput(msg) | GatewayError::TooComplex(msg) => msg.clone(),
            GatewayError::Forbidden(scope) => format!("this operation needs the `{scope}` scope"),
            GatewayError::Broker(BrokerError::Unauthorized) => {
                "the broker refused the gateway's credentials; an operator must check broker.api_key".into()
            }
            GatewayError::Broker(BrokerError::Rejected { message, .. }) => {
                format!("the broker rejected the request: {message}")
            }
            GatewayError::Broker(BrokerError::Decode(_)) => {
                "the broker's answer could not be read".into()
            }
            GatewayError::Broker(BrokerError::ReauthRequired) => {
                "the broker refused this account's OAuth authorization; an operator must authorize it again".into()
            }
            GatewayError::Broker(other) => other.to_string(),
            GatewayError::IdempotencyKeyInUse => {
                "the same idempotency key is still being processed; retry shortly".into()
            }
            GatewayError::OutcomeUnknown => "the order was sent but its outcome could not be learned; retry with the same idempotency key".into(),
            GatewayError::Internal(_) => "internal error".into(),
        }
    }

    /// The only mapping of a failure to its code: the readiness probe and the audit
    /// log use it too, so they can never disagree with what the client was told.
    pub(crate) fn code(&self) -> ErrorCode {
        match self {
            GatewayError::BadUserInput(_) => ErrorCode::BadUserInput,
            GatewayError::TooComplex(_) => ErrorCode::QueryTooComplex,
            GatewayError::Forbidden(_) => ErrorCode::Forbidden,
            GatewayError::IdempotencyKeyInUse => ErrorCode::IdempotencyKeyInUse,
            GatewayError::OutcomeUnknown => ErrorCode::OutcomeUnknown,
            GatewayError::Internal(_) => ErrorCode::InternalError,
            GatewayError::Broker(e) => match e {
                BrokerError::RateLimited { .. } => ErrorCode::RateLimited,
                BrokerError::Unavailable { .. }
                | BrokerError::Timeout
                | BrokerError::CircuitOpen
                | BrokerError::TokenUnavailable(_) => ErrorCode::BrokerUnavailable,
                BrokerError::ReauthRequired => ErrorCode::BrokerReauthRequired,
                BrokerError::Unauthorized
                | BrokerError::NotFound
                | BrokerError::Rejected { .. }
                | BrokerError::Decode(_) => ErrorCode::BrokerError,
            },
        }
    }
}

impl From<GatewayError> for async_graphql::Error {
    fn from(err: GatewayError) -> Self {
        if let GatewayError::Internal(detail) = &err {
            tracing::error!(detail = %detail, "internal error");
        }
        async_graphql::Error::new(err.message()).extend_with(|_, ext| {
            ext.set("code", err.code().as_str());
            if let GatewayError::Broker(BrokerError::RateLimited { retry_after }) = &err {
                let secs = retry_after.map(|d| d.as_secs().max(1)).unwrap_or(1);
                ext.set("retryAfterSeconds", secs);
            }
        })
    }
}

pub type GqlResult<T> = Result<T, GatewayError>;
