//! `https://` brokers: the adapter speaks TLS, trusts the built-in roots, and trusts a
//! private CA only when `broker.ca_file` names it. The broker here is broker-sim
//! behind a TLS proxy whose certificate comes from a CA made at test time.

use std::sync::Arc;
use std::time::Duration;

use brokergraph::broker::generic::{GenericBroker, GenericBrokerConfig};
use brokergraph::broker::transport::{load_roots, Transport};
use brokergraph::broker::{Broker, BrokerError};
use brokergraph::secret::Secret;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio_rustls::rustls::{crypto::ring, ServerConfig};
use tokio_rustls::TlsAcceptor;

use super::support::config;

fn transport(extra_roots: Vec<reqwest::Certificate>) -> Transport {
    Transport {
        connect_timeout: Duration::from_secs(2),
        request_timeout: Duration::from_secs(5),
        extra_roots,
    }
}

/// broker-sim behind a TLS proxy on loopback; returns its `https://localhost:port`
/// URL, the CA's PEM, and the sim (kept alive by the caller).
async fn tls_broker() -> (String, String, broker_sim::SimHandle) {
    let sim = broker_sim::spawn(broker_sim::SimConfig::default())
        .await
        .expect("broker-sim starts");
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let leaf_key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["localhost".to_string()])
        .unwrap()
        .signed_by(&leaf_key, &ca)
        .unwrap();
    let server = ServerConfig::builder_with_provider(Arc::new(ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![CertificateDer::from(leaf.der().to_vec())],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der())),
        )
        .unwrap();
    let acceptor = TlsAcceptor::from(Arc::new(server));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let upstream = sim.addr;
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(socket).await else {
                    return; // the client refused our certificate
                };
                let mut plain = TcpStream::connect(upstream).await.unwrap();
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
            });
        }
    });
    (format!("https://localhost:{port}"), ca.pem(), sim)
}

fn broker(url: &str, roots: Vec<reqwest::Certificate>) -> GenericBroker {
    GenericBroker::new(GenericBrokerConfig {
        base_url: url.to_string(),
        api_key: Secret::new("sim-key"),
        transport: transport(roots),
    })
    .unwrap()
}

#[tokio::test]
async fn a_broker_behind_a_private_ca_is_trusted_only_with_ca_file() {
    let (url, ca_pem, _sim) = tls_broker().await;

    let err = broker(&url, Vec::new()).account().await.unwrap_err();
    assert!(
        matches!(err, BrokerError::Unavailable { .. }),
        "an unknown CA must be refused: {err:?}"
    );

    let dir = std::env::temp_dir().join(format!("brokergraph-ca-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let ca_file = dir.join("ca.pem");
    std::fs::write(&ca_file, ca_pem).unwrap();
    let account = broker(&url, load_roots(&ca_file).unwrap())
        .account()
        .await
        .expect("the account over TLS, with the CA trusted");
    assert!(!account.account_number.is_empty());
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn a_ca_file_that_is_not_pem_is_refused_with_its_path() {
    let path = std::env::temp_dir().join(format!("brokergraph-notpem-{}", uuid::Uuid::new_v4()));
    std::fs::write(&path, "not a certificate").unwrap();
    let err = load_roots(&path).unwrap_err();
    assert!(err.contains(&path.display().to_string()), "{err}");
    let _ = std::fs::remove_file(path);
    assert!(load_roots(std::path::Path::new("/nonexistent/ca.pem")).is_err());
}

/// The first bytes the client sends to an `https://` URL open a TLS handshake (a
/// ClientHello record: 0x16, version 3.x). Without a TLS backend, reqwest refuses
/// such a URL without connecting at all.
#[tokio::test]
async fn an_https_broker_url_is_spoken_to_over_tls() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let first_bytes = tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut head = [0u8; 2];
        socket.read_exact(&mut head).await.unwrap();
        head
    });
    let b = GenericBroker::new(config(
        format!("https://127.0.0.1:{port}"),
        Duration::from_secs(5),
    ))
    .unwrap();
    let err = b.account().await.unwrap_err();
    let head = tokio::time::timeout(Duration::from_secs(10), first_bytes)
        .await
        .unwrap_or_else(|_| panic!("the client never connected: {err:?}"))
        .unwrap();
    assert_eq!(head, [0x16, 0x03], "not a TLS ClientHello");
}
