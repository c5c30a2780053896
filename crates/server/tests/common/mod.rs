#![allow(dead_code)]

use std::sync::Arc;

use sqdata_server::AppState;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Serves `opened` on a free port; returns the address.
pub async fn start(opened: sqdata::Opened) -> std::net::SocketAddr {
    let prometheus = sqdata_server::prometheus();
    let listener = sqdata_server::bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let state = Arc::new(AppState::new(opened, prometheus, addr, &sqdata::ApiConfig::default()));
    state.refresh().await;
    let _prober = sqdata_server::spawn_prober(&state, std::time::Duration::from_millis(100));
    tokio::spawn(sqdata_server::serve(listener, state, std::future::pending()));
    addr
}

/// GET over a plain socket: (status, body).
pub async fn get(addr: std::net::SocketAddr, path: &str) -> (u16, String) {
    get_with(addr, path, "X-None: 1").await
}

/// GET with one extra header line.
pub async fn get_with(addr: std::net::SocketAddr, path: &str, header: &str) -> (u16, String) {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: x\r\n{header}\r\n\r\n").as_bytes()).await.unwrap();
    let mut buf = String::new();
    s.read_to_string(&mut buf).await.unwrap();
    let (head, body) = buf.split_once("\r\n\r\n").unwrap();
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    (status, body.to_string())
}
