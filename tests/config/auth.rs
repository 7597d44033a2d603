//! Gateway API keys: bearer parsing, hash comparison, scopes, anonymous mode.

use brokergraph::auth::{hash_key, AuthError, Authenticator};
use brokergraph::config::{GatewayKeyConfig, Scope};

fn key(id: &str, secret: &str, scopes: &[Scope]) -> GatewayKeyConfig {
    GatewayKeyConfig {
        id: id.into(),
        sha256: hash_key(secret),
        scopes: scopes.to_vec(),
        account: "default".into(),
    }
}

#[test]
fn authenticator_checks_bearer_keys_and_scopes() {
    let auth = Authenticator::new(&[
        key("reader", "read-key-123", &[Scope::Read]),
        key("trader", "trade-key-456", &[Scope::Read, Scope::Trade]),
    ]);
    assert!(auth.keys_configured());
    let reader = auth.authenticate(Some("Bearer read-key-123")).unwrap();
    assert_eq!(reader.key_id, "reader");
    assert!(reader.has(Scope::Read) && !reader.has(Scope::Trade));
    let trader = auth.authenticate(Some("bearer trade-key-456")).unwrap();
    assert!(trader.has(Scope::Trade));
    for header in [
        None,
        Some(""),
        Some("Bearer"),
        Some("Basic read-key-123"),
        Some("read-key-123"),
        Some("Bearer wrong"),
    ] {
        assert_eq!(
            auth.authenticate(header),
            Err(AuthError::Unauthenticated),
            "{header:?}"
        );
    }
    assert!(!format!("{auth:?}").contains("read-key-123"));
}

#[test]
fn without_keys_everyone_is_anonymous_with_every_scope() {
    let auth = Authenticator::new(&[]);
    assert!(!auth.keys_configured());
    for header in [None, Some("Bearer whatever")] {
        let p = auth.authenticate(header).unwrap();
        assert!(p.has(Scope::Read) && p.has(Scope::Trade));
    }
}
