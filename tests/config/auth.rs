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

#[tokio::test]
async fn authenticator_checks_bearer_keys_and_scopes() {
    let auth = Authenticator::new(&[
        key("reader", "read-key-123", &[Scope::Read]),
        key("trader", "trade-key-456", &[Scope::Read, Scope::Trade]),
    ]);
    assert!(auth.keys_configured());
    let reader = auth
        .authenticate(Some("Bearer read-key-123"))
        .await
        .unwrap();
    assert_eq!(reader.key_id, "reader");
    assert!(reader.has(Scope::Read) && !reader.has(Scope::Trade));
    let trader = auth
        .authenticate(Some("bearer trade-key-456"))
        .await
        .unwrap();
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
            auth.authenticate(header).await,
            Err(AuthError::Unauthenticated),
            "{header:?}"
        );
    }
    assert!(!format!("{auth:?}").contains("read-key-123"));
}

#[tokio::test]
async fn without_keys_everyone_is_anonymous_with_every_scope() {
    let auth = Authenticator::new(&[]);
    assert!(!auth.keys_configured());
    for header in [None, Some("Bearer whatever")] {
        let p = auth.authenticate(header).await.unwrap();
        assert!(p.has(Scope::Read) && p.has(Scope::Trade));
    }
}

/// `[auth.jwt]` is checked at load: what it needs, what it refuses, and that it
/// counts as authentication (a public address, no `*` origin, no `default`).
#[test]
fn jwt_sessions_are_checked_at_load() {
    use crate::helpers::{load, toml_file};
    let jwt = "[auth.jwt]\njwks_url = \"https://idp.example/jwks.json\"\n\
               issuer = \"https://idp.example\"\naudience = \"brokergraph\"\n";
    let ok = toml_file(&format!("listen = \"0.0.0.0:8080\"\n{jwt}"));
    let config =
        load(&["--config", ok.to_str().unwrap()], &[]).expect("JWT alone may listen publicly");
    let settings = config.auth.jwt.unwrap();
    assert_eq!(settings.account_claim, "brokergraph_account");
    assert_eq!(settings.scope_claim, "scope");
    assert_eq!(settings.leeway.as_secs(), 30);
    for (extra, key) in [
        ("[server]\ncors_origins = [\"*\"]\n", "server.cors_origins"),
        ("", "auth.jwt.hs256_secret"),
        ("", "auth.jwt.issuer"),
        ("", "auth.jwt.jwks_url"),
    ] {
        let body = match key {
            "auth.jwt.hs256_secret" => format!("{jwt}hs256_secret = \"short\"\n"),
            "auth.jwt.issuer" => jwt.replace("issuer = \"https://idp.example\"", "issuer = \" \""),
            "auth.jwt.jwks_url" => format!("{jwt}jwks_file = \"/etc/jwks.json\"\n"),
            _ => format!("{extra}{jwt}"),
        };
        let file = toml_file(&body);
        let err = load(&["--config", file.to_str().unwrap()], &[]).unwrap_err();
        assert!(err.to_string().contains(key), "{key}: {err}");
        assert!(
            !err.to_string().contains("short"),
            "a secret is never echoed: {err}"
        );
    }
    // The env sets it too, like any other setting.
    let config = load(
        &[],
        &[
            (
                "BROKERGRAPH_AUTH_JWT_JWKS_URL",
                "https://idp.example/jwks.json",
            ),
            ("BROKERGRAPH_AUTH_JWT_ISSUER", "https://idp.example"),
            ("BROKERGRAPH_AUTH_JWT_AUDIENCE", "brokergraph"),
        ],
    )
    .unwrap();
    assert_eq!(config.auth.jwt.unwrap().audience, "brokergraph");
}

/// `admin.token` turns the admin API on; it must be long, and linked accounts need
/// the token store's key.
#[test]
fn the_admin_token_is_checked_at_load() {
    use crate::helpers::load;
    const TOKEN: &str = "admin-token-0123456789abcdef0123456789";
    const STORE_KEY: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
    let short = load(&[], &[("BROKERGRAPH_ADMIN_TOKEN", "tiny-admin")]).unwrap_err();
    assert!(short.to_string().contains("admin.token"), "{short}");
    assert!(
        !short.to_string().contains("tiny-admin"),
        "never echoed: {short}"
    );
    let keyless = load(&[], &[("BROKERGRAPH_ADMIN_TOKEN", TOKEN)]).unwrap_err();
    assert!(keyless.to_string().contains("token_store.key"), "{keyless}");
    let config = load(
        &[],
        &[
            ("BROKERGRAPH_ADMIN_TOKEN", TOKEN),
            ("BROKERGRAPH_STORE_KEY", STORE_KEY),
        ],
    )
    .unwrap();
    assert!(config.admin.token.is_some());
}
