//! The real binary as an operator runs it: exit codes, stderr, stdout.

use sha2::{Digest, Sha256};

use brokergraph::auth::hash_key;

use crate::helpers::*;

#[test]
fn bad_configs_exit_2_with_one_line_naming_the_key() {
    let out = run(&["check-config", "--listen", "nope"], &[], None);
    assert_config_error(&out, "listen");

    let out = run(
        &["check-config"],
        &[("BROKERGRAPH_GRAPHQL_MAX_PAGE_SIZE", "0")],
        None,
    );
    let line = assert_config_error(&out, "graphql.max_page_size");
    assert!(line.contains("must be between 1 and 500, got 0"), "{line}");

    let file = toml_file("[graphql]\nmax_pagesize = 10\n");
    let out = run(
        &["check-config", "--config", file.to_str().unwrap()],
        &[],
        None,
    );
    let line = assert_config_error(&out, "graphql.max_pagesize");
    assert!(line.contains("unknown field"), "{line}");

    let file = toml_file("[[keys]]\nid = \"desk-1\"\nsha256 = \"abc\"\nscopes = [\"read\"]\n");
    let out = run(&["serve", "--config", file.to_str().unwrap()], &[], None);
    assert_config_error(&out, "keys[0].sha256");
}

#[test]
fn serve_is_the_default_command_and_checks_config_first() {
    let out = run(&["--listen", "127.0.0.1:99999"], &[], None);
    assert_config_error(&out, "listen");
}

#[test]
fn the_broker_key_is_never_printed() {
    let vars = [
        ("BROKERGRAPH_BROKER_URL", "https://broker.test"),
        ("BROKERGRAPH_BROKER_API_KEY", BROKER_KEY),
    ];
    let out = run(&["check-config"], &vars, None);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("[redacted]") && stdout.contains("https://broker.test"),
        "{stdout}"
    );
    assert!(
        stdout.contains("broker.api_key: env BROKERGRAPH_BROKER_API_KEY"),
        "{stdout}"
    );
    assert!(!stdout.contains(BROKER_KEY));

    // In a failing run, and in clap's own errors.
    for args in [
        &[
            "check-config",
            "--broker-api-key",
            BROKER_KEY,
            "--listen",
            "bad",
        ][..],
        &["--broker-api-key", BROKER_KEY, "--no-such-flag"][..],
        &["--broker-api-key", BROKER_KEY, "check-config"][..],
    ] {
        let out = run(args, &[], None);
        assert_ne!(out.status.code(), Some(0));
        assert!(!String::from_utf8_lossy(&out.stderr).contains(BROKER_KEY));
        assert!(!String::from_utf8_lossy(&out.stdout).contains(BROKER_KEY));
    }

    let config = load(&[], &vars).unwrap();
    assert_eq!(config.broker.api_key.as_ref().unwrap().expose(), BROKER_KEY);
    assert!(!format!("{config:?}").contains(BROKER_KEY));
    assert!(!format!("{config:#?}").contains(BROKER_KEY));
    assert!(!format!("{:?}", cli(&["--broker-api-key", BROKER_KEY])).contains(BROKER_KEY));
}

#[test]
fn hash_key_prints_the_sha256() {
    let expected = hex::encode(Sha256::digest(b"mykey"));
    assert_eq!(expected, KEY_HASH);
    assert_eq!(hash_key("mykey"), expected);
    for (args, stdin) in [
        (&["hash-key"][..], Some("mykey\n")),
        (&["hash-key", "mykey"][..], None),
    ] {
        let out = run(args, &[], stdin);
        assert_eq!(out.status.code(), Some(0));
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            format!("{expected}\n")
        );
    }
    assert_ne!(run(&["hash-key"], &[], Some("\n")).status.code(), Some(0));
}

#[test]
fn schema_prints_the_sdl_without_any_config() {
    let out = run(&["schema"], &[("BROKERGRAPH_LISTEN", "not checked")], None);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim_end(),
        brokergraph::graphql::sdl().trim_end()
    );
}

/// A config file names the collector in every build; a build that cannot export
/// says so instead of starting without the traces the operator asked for.
#[cfg(not(feature = "otlp"))]
#[test]
fn otlp_endpoint_without_the_feature_is_refused_with_how_to_build() {
    let vars = [("BROKERGRAPH_LOG_OTLP_ENDPOINT", "http://127.0.0.1:4318")];
    let out = run(&["serve"], &vars, None);
    let line = assert_config_error(&out, "log.otlp_endpoint");
    assert!(line.contains("--features otlp"), "{line}");

    let file = toml_file("[log]\notlp_endpoint = \"http://otel:4318\"\n");
    let out = run(
        &["check-config", "--config", file.to_str().unwrap()],
        &[],
        None,
    );
    let line = assert_config_error(&out, "log.otlp_endpoint");
    assert!(line.contains("--features otlp"), "{line}");
}

/// The container's HEALTHCHECK: exit 0 when `/healthz` on the configured port
/// answers 200 (an address on all interfaces is asked on loopback), 1 otherwise.
#[test]
fn healthcheck_asks_healthz_on_the_configured_port() {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        let (mut socket, _) = listener.accept().unwrap();
        let mut request = [0u8; 1024];
        let n = socket.read(&mut request).unwrap();
        let head = String::from_utf8_lossy(&request[..n]).into_owned();
        let status = match head.starts_with("GET /healthz ") {
            true => "200 OK",
            false => "404 Not Found",
        };
        write!(
            socket,
            "HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
        )
        .unwrap();
        head
    });
    let keys = toml_file(&format!(
        "[[keys]]\nid = \"probe\"\nsha256 = \"{}\"\nscopes = [\"read\"]\n",
        hash_key("probe-key")
    ));
    let all = format!("0.0.0.0:{port}");
    let args = [
        "healthcheck",
        "--listen",
        &all,
        "--config",
        keys.to_str().unwrap(),
    ];
    let out = run(&args, &[], None);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(server.join().unwrap().starts_with("GET /healthz "));

    // Nothing listens there any more.
    let out = run(&args, &[], None);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unhealthy"));
}
