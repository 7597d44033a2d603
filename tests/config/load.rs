//! Configuration layering and validation. These tests pass an env map to
//! `Config::load_from` instead of mutating the process environment, so they cannot
//! race each other or the other tests of this binary.

use std::time::Duration;

use brokergraph::config::{self, Config, Scope};

use crate::helpers::{assert_config_error, cli, env, load, run, toml_file, KEY_HASH};

#[test]
fn precedence_is_defaults_file_env_flag() {
    let file = toml_file(
        "listen = \"127.0.0.2:1000\"\n[graphql]\nmax_page_size = 300\n\
         [broker]\nurl = \"http://file.test\"\napi_key = \"k\"\n",
    );
    let f = file.to_str().unwrap();
    let defaults = load(&[], &[]).unwrap();
    assert_eq!(defaults, Config::default());
    assert_eq!(defaults.listen.to_string(), "127.0.0.1:8080");

    let from_file = load(&["--config", f], &[]).unwrap();
    assert_eq!(from_file.listen.to_string(), "127.0.0.2:1000");
    assert_eq!(from_file.graphql.max_page_size, 300);
    assert_eq!(from_file.broker.url.as_deref(), Some("http://file.test"));

    let vars = [
        ("BROKERGRAPH_LISTEN", "127.0.0.3:2000"),
        ("BROKERGRAPH_GRAPHQL_MAX_PAGE_SIZE", "200"),
        ("BROKERGRAPH_BROKER_URL", "http://env.test"),
    ];
    let from_env = load(&["--config", f], &vars).unwrap();
    assert_eq!(from_env.listen.to_string(), "127.0.0.3:2000");
    assert_eq!(from_env.graphql.max_page_size, 200);
    assert_eq!(from_env.broker.url.as_deref(), Some("http://env.test"));

    let flags = [
        "--config",
        f,
        "--listen",
        "127.0.0.4:3000",
        "--broker-url",
        "http://flag.test",
    ];
    let from_flag = load(&flags, &vars).unwrap();
    assert_eq!(from_flag.listen.to_string(), "127.0.0.4:3000");
    assert_eq!(from_flag.broker.url.as_deref(), Some("http://flag.test"));
    assert_eq!(
        from_flag.graphql.max_page_size, 200,
        "no flag: env still wins"
    );
    assert_eq!(
        from_flag.paper,
        Config::default().paper,
        "untouched keys keep defaults"
    );
}

#[test]
fn the_config_file_can_come_from_the_environment() {
    let file = toml_file("[server]\ngraphiql = false\n");
    let config = load(&[], &[("BROKERGRAPH_CONFIG", file.to_str().unwrap())]).unwrap();
    assert_eq!(config.server.graphiql, Some(false));
}

#[test]
fn env_values_are_typed_and_empty_means_unset() {
    let config = load(
        &[],
        &[
            ("BROKERGRAPH_SERVER_GRAPHIQL", "false"),
            ("BROKERGRAPH_IDEMPOTENCY_MAX_ENTRIES", "1_000"),
            ("BROKERGRAPH_LOG_FORMAT", "json"),
            ("BROKERGRAPH_BROKER_URL", ""),
            ("BROKERGRAPH_SOMETHING_ELSE", "ignored"),
        ],
    )
    .unwrap();
    assert_eq!(config.server.graphiql, Some(false));
    assert_eq!(config.idempotency.max_entries, 1000);
    assert_eq!(config.log.format, config::LogFormat::Json);
    assert_eq!(config.broker.url, None);
    let err = load(&[], &[("BROKERGRAPH_SERVER_BODY_LIMIT_BYTES", "lots")]).unwrap_err();
    assert_eq!(err.key(), Some("server.body_limit_bytes"));
    assert!(
        err.to_string()
            .contains("env BROKERGRAPH_SERVER_BODY_LIMIT_BYTES"),
        "{err}"
    );
}
#[test]
fn other_invalid_values_name_their_key() {
    let cases: &[(&[(&str, &str)], &str)] = &[
        (
            &[("BROKERGRAPH_GRAPHQL_DEFAULT_PAGE_SIZE", "501")],
            "graphql.default_page_size",
        ),
        (
            &[("BROKERGRAPH_GRAPHQL_MAX_PAGE_SIZE", "20")],
            "graphql.default_page_size",
        ),
        (
            &[
                ("BROKERGRAPH_BROKER_URL", "ftp://x.test"),
                ("BROKERGRAPH_BROKER_API_KEY", "k"),
            ],
            "broker.url",
        ),
        (
            &[
                ("BROKERGRAPH_BROKER_URL", "http://x.test/v1"),
                ("BROKERGRAPH_BROKER_API_KEY", "k"),
            ],
            "broker.url",
        ),
        (
            &[("BROKERGRAPH_BROKER_URL", "http://x.test")],
            "broker.api_key",
        ),
        (&[("BROKERGRAPH_BROKER_API_KEY", "k")], "broker.url"),
        (&[("BROKERGRAPH_LOG_FORMAT", "xml")], "log.format"),
        (
            &[("BROKERGRAPH_BROKER_CA_FILE", "/nonexistent/ca.pem")],
            "broker.ca_file",
        ),
        (&[("BROKERGRAPH_LOG_FILTER", "=[nope")], "log.filter"),
        (&[("BROKERGRAPH_PAPER_CASH", "-5")], "paper.cash"),
        (
            &[("BROKERGRAPH_PAPER_POSITIONS", "3000")],
            "paper.positions",
        ),
        (
            &[("BROKERGRAPH_SERVER_REQUEST_TIMEOUT_MS", "0")],
            "server.request_timeout_ms",
        ),
        (
            &[("BROKERGRAPH_SERVER_HEADER_READ_TIMEOUT_MS", "0")],
            "server.header_read_timeout_ms",
        ),
        (
            &[("BROKERGRAPH_SERVER_MAX_CONNECTIONS", "0")],
            "server.max_connections",
        ),
        (&[("BROKERGRAPH_KEYS", "x")], "keys"),
    ];
    for (vars, key) in cases {
        let err = load(&[], vars).unwrap_err();
        assert_eq!(err.key(), Some(*key), "{vars:?}: {err}");
        assert!(!err.to_string().contains('\n'));
    }
    let bad_scope = toml_file(&format!(
        "[[keys]]\nid = \"a\"\nsha256 = \"{KEY_HASH}\"\nscopes = [\"admin\"]\n"
    ));
    let err = load(&["--config", bad_scope.to_str().unwrap()], &[]).unwrap_err();
    assert_eq!(err.key(), Some("keys[0].scopes[0]"), "{err}");
}

#[test]
fn a_public_listen_address_needs_keys() {
    let err = load(&["--listen", "0.0.0.0:8080"], &[]).unwrap_err();
    assert_eq!(err.key(), Some("listen"));
    assert!(err.to_string().contains("keys are required"), "{err}");
    let out = run(
        &["check-config"],
        &[("BROKERGRAPH_LISTEN", "[::]:8080")],
        None,
    );
    assert_config_error(&out, "listen");

    let keyed = toml_file(&format!(
        "[[keys]]\nid = \"desk-1\"\nsha256 = \"{}\"\nscopes = [\"read\", \"trade\"]\n",
        KEY_HASH.to_uppercase()
    ));
    let config = load(
        &[
            "--config",
            keyed.to_str().unwrap(),
            "--listen",
            "0.0.0.0:8080",
        ],
        &[],
    )
    .unwrap();
    assert_eq!(config.keys[0].sha256, KEY_HASH, "normalized to lowercase");
    assert_eq!(config.keys[0].scopes, vec![Scope::Read, Scope::Trade]);
    assert!(load(&["--listen", "[::1]:8080"], &[]).is_ok());
}
/// Durations are `Duration`s in code but keep their unit in the key, in the file,
/// the environment and `check-config` alike.
#[test]
fn durations_keep_their_unit_in_the_key() {
    let file = toml_file("[cache]\naccount_ttl_ms = 1500\n[idempotency]\nttl_secs = 90\n");
    let f = file.to_str().unwrap();
    let vars = [("BROKERGRAPH_THROTTLE_WINDOW_SECS", "3")];
    let (config, origins) = Config::load_with_origins(&cli(&["--config", f]), &env(&vars)).unwrap();
    assert_eq!(config.cache.account_ttl, Duration::from_millis(1500));
    assert_eq!(config.idempotency.ttl, Duration::from_secs(90));
    assert_eq!(config.throttle.window, Duration::from_secs(3));
    let toml = config::to_redacted_toml(&config, &origins);
    for line in ["account_ttl_ms = 1500", "ttl_secs = 90", "window_secs = 3"] {
        assert!(toml.lines().any(|l| l == line), "{line} in {toml}");
    }
}

#[test]
fn the_docs_table_matches_the_code() {
    let docs = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/docs/configuration.md"
    ))
    .expect("docs/configuration.md exists");
    assert!(
        docs.contains(&config::reference_table()),
        "regenerate the table:\n{}",
        config::reference_table()
    );
}
