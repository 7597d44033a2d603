//! Built-in defaults: the lowest config layer, and what a fresh clone runs with
//! (loopback, embedded paper broker, GraphiQL on because loopback).

use std::net::SocketAddr;

use super::{
    BrokerSettings, CacheSettings, Config, GraphqlSettings, IdempotencySettings, LogFormat,
    LogSettings, PaperSettings, ServerSettings, ThrottleSettings,
};

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            broker: BrokerSettings::default(),
            keys: Vec::new(),
            server: ServerSettings::default(),
            graphql: GraphqlSettings::default(),
            idempotency: IdempotencySettings::default(),
            cache: CacheSettings::default(),
            throttle: ThrottleSettings::default(),
            paper: PaperSettings::default(),
            log: LogSettings::default(),
            limits: Default::default(),
            rate_limit: Default::default(),
            audit: Default::default(),
            persisted_queries: Default::default(),
            redis: Default::default(),
        }
    }
}

impl Default for BrokerSettings {
    fn default() -> Self {
        BrokerSettings {
            kind: super::BrokerKind::Generic,
            url: None,
            api_key: None,
            key_id: None,
            secret: None,
            connect_timeout_ms: 2_000,
            request_timeout_ms: 10_000,
            ca_file: None,
        }
    }
}

impl Default for ServerSettings {
    fn default() -> Self {
        ServerSettings {
            body_limit_bytes: 1024 * 1024,
            request_timeout_ms: 30_000,
            graphiql: None,
            introspection: None,
            cors_origins: Vec::new(),
        }
    }
}

impl Default for GraphqlSettings {
    fn default() -> Self {
        GraphqlSettings {
            default_page_size: 50,
            max_page_size: 500,
        }
    }
}

impl Default for IdempotencySettings {
    fn default() -> Self {
        IdempotencySettings {
            ttl_secs: 86_400,
            max_entries: 1_000_000,
            wait_ms: 5_000,
            lease_ms: 60_000,
            resend_deadline_ms: 15_000,
        }
    }
}

impl Default for PaperSettings {
    fn default() -> Self {
        PaperSettings {
            seed: 42,
            cash: "1000000.00".to_string(),
            instruments: 2_000,
            positions: 25,
        }
    }
}

impl Default for LogSettings {
    fn default() -> Self {
        LogSettings {
            format: LogFormat::Text,
            filter: "info,brokergraph=info".to_string(),
            otlp_endpoint: None,
            otlp_service_name: "brokergraph".to_string(),
        }
    }
}
