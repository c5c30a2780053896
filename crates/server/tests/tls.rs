//! HTTPS from `[api] tls_cert_file`/`tls_key_file`: a client that trusts
//! the certificate gets its answer; plain HTTP to the TLS port gets none.

use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::rustls;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_https_with_the_configured_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
    let (cert_pem, key_pem) = (cert.cert.pem(), cert.signing_key.serialize_pem());
    std::fs::write(dir.path().join("c.pem"), &cert_pem).unwrap();
    std::fs::write(dir.path().join("k.pem"), &key_pem).unwrap();
    let tls = sqdata_server::listen::tls_config(&dir.path().join("c.pem"), &dir.path().join("k.pem")).unwrap();
    assert!(sqdata_server::listen::tls_config(&dir.path().join("k.pem"), &dir.path().join("c.pem")).is_err());

    let mut c = sqdata::Config::default();
    c.file.root = dir.path().to_path_buf();
    let opened = sqdata::open_all(&c).unwrap();
    let listener = sqdata_server::bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let state = Arc::new(sqdata_server::AppState::new(opened, sqdata_server::prometheus(), addr, &c.api));
    let app = sqdata_server::router(state);
    tokio::spawn(sqdata_server::listen::serve_tls(listener, app, Default::default(), tls, std::future::pending()));

    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert.cert.der().clone()).unwrap();
    let client = rustls::ClientConfig::builder().with_root_certificates(roots).with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(client));
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let mut s = connector.connect(name, tcp).await.unwrap();
    s.write_all(b"GET /healthz HTTP/1.0\r\nHost: localhost\r\n\r\n").await.unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out).await;
    let out = String::from_utf8_lossy(&out);
    assert!(out.starts_with("HTTP/1.0 200") || out.starts_with("HTTP/1.1 200"), "{out}");

    // plain HTTP to the TLS port: no answer
    let mut p = tokio::net::TcpStream::connect(addr).await.unwrap();
    p.write_all(b"GET /healthz HTTP/1.0\r\nHost: x\r\n\r\n").await.unwrap();
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(std::time::Duration::from_secs(15), p.read_to_end(&mut buf)).await;
    assert!(!String::from_utf8_lossy(&buf).contains("200"), "plain HTTP was answered");
}
