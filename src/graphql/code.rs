//! The codes a client reads in `extensions.code` (docs/api.md, "Errors"). Clients
//! branch on these strings (retry, re-authenticate, fix the input), so they are a
//! contract: one enum, so a typo cannot ship a code no client knows, and every place
//! that refuses a request (resolvers, query limits, the HTTP layer) names one of them.

use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum ErrorCode {
    Unauthenticated,
    Forbidden,
    /// A malformed argument, cursor or request (not JSON, no `query`): the client's
    /// mistake.
    BadUserInput,
    /// The document does not parse. Apollo's code, which Apollo's tools look for.
    GraphqlParseFailed,
    /// The document does not validate against the schema (unknown field, wrong
    /// variable type...). Apollo's code.
    GraphqlValidationFailed,
    /// Automatic persisted queries: the hash is not known (yet); the client resends
    /// with the query (Apollo's protocol).
    PersistedQueryNotFound,
    /// A persisted-query hash sent to a gateway with them off: the client should
    /// send the query text (Apollo's protocol).
    PersistedQueryNotSupported,
    /// Allow-list mode: the operation is not in `persisted_queries.allow_list`.
    PersistedQueryNotInList,
    QueryTooComplex,
    /// Comes with `retryAfterSeconds`.
    RateLimited,
    /// The request body did not arrive within `server.body_read_timeout_ms` (HTTP
    /// 408): worth retrying, unlike `BAD_USER_INPUT`.
    RequestTimeout,
    BrokerUnavailable,
    OutcomeUnknown,
    IdempotencyKeyInUse,
    BrokerError,
    /// The account's OAuth authorization at the broker is gone (a refused refresh):
    /// no retry helps until an operator authorizes it again. Other accounts work.
    BrokerReauthRequired,
    /// A bug; the client learns nothing more, the log has the detail.
    InternalError,
}

impl ErrorCode {
    pub(crate) const fn as_str(self) -> &'static str {
        match self {
            ErrorCode::Unauthenticated => "UNAUTHENTICATED",
            ErrorCode::Forbidden => "FORBIDDEN",
            ErrorCode::BadUserInput => "BAD_USER_INPUT",
            ErrorCode::GraphqlParseFailed => "GRAPHQL_PARSE_FAILED",
            ErrorCode::GraphqlValidationFailed => "GRAPHQL_VALIDATION_FAILED",
            ErrorCode::PersistedQueryNotFound => "PERSISTED_QUERY_NOT_FOUND",
            ErrorCode::PersistedQueryNotSupported => "PERSISTED_QUERY_NOT_SUPPORTED",
            ErrorCode::PersistedQueryNotInList => "PERSISTED_QUERY_NOT_IN_LIST",
            ErrorCode::QueryTooComplex => "QUERY_TOO_COMPLEX",
            ErrorCode::RateLimited => "RATE_LIMITED",
            ErrorCode::RequestTimeout => "REQUEST_TIMEOUT",
            ErrorCode::BrokerUnavailable => "BROKER_UNAVAILABLE",
            ErrorCode::OutcomeUnknown => "OUTCOME_UNKNOWN",
            ErrorCode::IdempotencyKeyInUse => "IDEMPOTENCY_KEY_IN_USE",
            ErrorCode::BrokerError => "BROKER_ERROR",
            ErrorCode::BrokerReauthRequired => "BROKER_REAUTH_REQUIRED",
            ErrorCode::InternalError => "INTERNAL_ERROR",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::ErrorCode::{self, *};

    /// The strings clients match on today; a changed one breaks them.
    const DOCUMENTED: [(ErrorCode, &str); 17] = [
        (Unauthenticated, "UNAUTHENTICATED"),
        (Forbidden, "FORBIDDEN"),
        (BadUserInput, "BAD_USER_INPUT"),
        (GraphqlParseFailed, "GRAPHQL_PARSE_FAILED"),
        (GraphqlValidationFailed, "GRAPHQL_VALIDATION_FAILED"),
        (PersistedQueryNotFound, "PERSISTED_QUERY_NOT_FOUND"),
        (PersistedQueryNotSupported, "PERSISTED_QUERY_NOT_SUPPORTED"),
        (PersistedQueryNotInList, "PERSISTED_QUERY_NOT_IN_LIST"),
        (QueryTooComplex, "QUERY_TOO_COMPLEX"),
        (RateLimited, "RATE_LIMITED"),
        (RequestTimeout, "REQUEST_TIMEOUT"),
        (BrokerUnavailable, "BROKER_UNAVAILABLE"),
        (OutcomeUnknown, "OUTCOME_UNKNOWN"),
        (IdempotencyKeyInUse, "IDEMPOTENCY_KEY_IN_USE"),
        (BrokerError, "BROKER_ERROR"),
        (BrokerReauthRequired, "BROKER_REAUTH_REQUIRED"),
        (InternalError, "INTERNAL_ERROR"),
    ];

    #[test]
    fn every_code_reaches_the_wire_as_its_documented_string() {
        for (code, text) in DOCUMENTED {
            assert_eq!(code.as_str(), text);
            assert_eq!(code.to_string(), text);
            let err = crate::graphql::limits::coded("m".into(), code);
            let json = serde_json::to_value(&err).unwrap();
            assert_eq!(json["extensions"]["code"], text, "{code:?}");
        }
    }
}
