//! The REST API as a user sets it up: `sqdata init` writes the signing key
//! (0600), the first admin and a key come from the CLI, `sqdata serve`
//! answers them, and CLI changes reach the running server.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{ok_json, sqdata};
use serde_json::{Value, json};

fn with_stdin(cwd: &Path, args: &[&str], input: &str) -> std::process::Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_sqdata"))
        .args(args)
        .current_dir(cwd)
        .env_remove("SQDATA_CONFIG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    c.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    c.wait_with_output().unwrap()
}

/// One HTTP/1.0 request: (status, JSON body).
fn http(port: u16, method: &str, path: &str, headers: &[(&str, &str)], body: Option<Value>) -> (u16, Value) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let mut req = format!(
        "{method} {path} HTTP/1.0\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(&body);
    s.write_all(req.as_bytes()).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let (head, body) = out.split_once("\r\n\r\n").unwrap();
    (head.split_whitespace().nth(1).unwrap().parse().unwrap(), serde_json::from_str(body).unwrap_or(Value::Null))
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

#[test]
fn the_first_admin_and_keys_come_from_the_cli_and_the_server_honours_them() {
    let tmp = tempfile::tempdir().unwrap();
    let cwd = tmp.path();
    let r = ok_json(cwd, &["init"]);
    assert_eq!(r["jwt_key_written"], true);
    let key_file = cwd.join(r["jwt_key_file"].as_str().unwrap());
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&key_file).unwrap().permissions().mode() & 0o777, 0o600);
    let first = std::fs::read(&key_file).unwrap();
    assert_eq!(ok_json(cwd, &["init"])["jwt_key_written"], false);
    assert_eq!(std::fs::read(&key_file).unwrap(), first, "never overwritten");

    // a short password is refused, naming it
    let o = with_stdin(cwd, &["user", "add", "root", "--role", "admin", "--password-stdin"], "short\n");
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("password"));
    let o = with_stdin(
        cwd,
        &["user", "add", "root", "--role", "admin", "--password-stdin", "--format", "json"],
        "a long admin passphrase\n",
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o =
        with_stdin(cwd, &["user", "add", "ops", "--role", "trader", "--password-stdin"], "a long trader passphrase\n");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    ok_json(cwd, &["registry", "account-put", "--account", "55009728", "--actor", "root"]);
    ok_json(cwd, &["user", "grant", "ops", "--account", "55009728", "--right", "write"]);
    let users = ok_json(cwd, &["user", "list"]);
    assert_eq!(users.as_array().unwrap().len(), 2);
    assert!(!users.to_string().contains("argon2"), "no hash listed");
    let k = ok_json(cwd, &["api-key", "create", "--user", "ops", "--label", "bot"]);
    let key = k["key"].as_str().unwrap().to_string();
    assert_eq!(ok_json(cwd, &["api-key", "list"]).as_array().unwrap().len(), 1);

    // a plain-HTTP bind on a public address refuses to start
    let o = sqdata(cwd, &["serve", "--listen", "0.0.0.0:0"]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("plain HTTP"), "{}", String::from_utf8_lossy(&o.stderr));

    // a key from the environment shorter than 32 bytes refuses to start
    let o = Command::new(env!("CARGO_BIN_EXE_sqdata"))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .current_dir(cwd)
        .env_remove("SQDATA_CONFIG")
        .env("SQDATA_JWT_KEY", "AAAAAAAAAAAAAAAAAAAAAA==")
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("32"), "{}", String::from_utf8_lossy(&o.stderr));

    let port = free_port();
    let mut srv = Command::new(env!("CARGO_BIN_EXE_sqdata"))
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .current_dir(cwd)
        .env_remove("SQDATA_CONFIG")
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(started.elapsed() < Duration::from_secs(30), "serve did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    let (st, v) = http(
        port,
        "POST",
        "/api/v1/auth/login",
        &[],
        Some(json!({ "user": "root", "password": "a long admin passphrase" })),
    );
    assert_eq!(st, 200, "{v}");
    let token = format!("Bearer {}", v["data"]["access_token"].as_str().unwrap());
    let (st, v) = http(port, "GET", "/api/v1/users", &[("Authorization", &token)], None);
    assert_eq!((st, v["data"].as_array().map(Vec::len)), (200, Some(2)), "{v}");
    let (st, v) = http(port, "GET", "/api/v1/auth/me", &[("X-Api-Key", &key)], None);
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["data"]["accounts"][0]["account"], "55009728");
    // the CLI disables the key's user: the running server refuses it within its 1 s cache
    ok_json(cwd, &["user", "disable", "ops"]);
    let started = Instant::now();
    loop {
        let (st, _) = http(port, "GET", "/api/v1/auth/me", &[("X-Api-Key", &key)], None);
        if st == 401 {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(3), "still {st} after 3 s");
        std::thread::sleep(Duration::from_millis(100));
    }
    // and a lockout made by failed logins is lifted by `user unlock`
    for _ in 0..5 {
        http(port, "POST", "/api/v1/auth/login", &[], Some(json!({ "user": "root", "password": "wrong password!!" })));
    }
    let (st, _) = http(
        port,
        "POST",
        "/api/v1/auth/login",
        &[],
        Some(json!({ "user": "root", "password": "a long admin passphrase" })),
    );
    assert_eq!(st, 401, "locked");
    ok_json(cwd, &["user", "unlock", "root"]);
    let (st, _) = http(
        port,
        "POST",
        "/api/v1/auth/login",
        &[],
        Some(json!({ "user": "root", "password": "a long admin passphrase" })),
    );
    assert_eq!(st, 200);
    let _ = srv.kill();
    let _ = srv.wait();
}
