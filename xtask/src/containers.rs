//! The test servers as containers, through testcontainers, when a Docker
//! (or Podman) engine answers: Redis, MariaDB, ClickHouse 18.16 and moto's
//! S3 on the same host ports as the locally started servers, so the
//! `SQDATA_TEST_*` variables do not change. The Redis cluster and Sentinel
//! group (whose nodes announce their own addresses) and chdb stay local
//! processes.
//!
//! Containers are started with a reuse directive and a fixed name: they
//! outlive `services up` (the tests run afterwards), a second `up` finds
//! them, and `down` removes them. `SQDATA_SERVICES=local` forces local
//! processes; `SQDATA_SERVICES=docker` fails when no engine answers.

use std::io::{Read, Write};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use testcontainers::core::{IntoContainerPort, ReuseDirective, WaitFor};
use testcontainers::runners::SyncRunner;
use testcontainers::{ContainerRequest, GenericImage, ImageExt};

use crate::services::{CLICKHOUSE_HTTP, CLICKHOUSE_TCP, MYSQL_PORT, REDIS_PORT, S3_PORT};

/// The services a container can provide.
pub(crate) const CONTAINERIZED: [&str; 4] = ["redis", "mysql", "clickhouse", "s3"];

/// Where the engine is, when one answers (and containers are not refused).
pub(crate) fn engine() -> Result<Option<String>> {
    let mode = std::env::var("SQDATA_SERVICES").unwrap_or_default();
    if mode == "local" {
        return Ok(None);
    }
    let found = socket().filter(|s| ping(s));
    match (found, mode.as_str()) {
        (Some(s), _) => Ok(Some(s)),
        (None, "docker") => {
            bail!("SQDATA_SERVICES=docker, but no Docker engine answers (DOCKER_HOST or /var/run/docker.sock)")
        }
        (None, _) => Ok(None),
    }
}

/// The engine's unix socket: `DOCKER_HOST=unix://…`, else the usual paths
/// (Docker, rootless Podman).
fn socket() -> Option<String> {
    if let Ok(h) = std::env::var("DOCKER_HOST") {
        return h.strip_prefix("unix://").map(str::to_owned);
    }
    let mut candidates = vec!["/var/run/docker.sock".to_owned()];
    if let Ok(dir) = std::env::var("XDG_RUNTIME_DIR") {
        candidates.push(format!("{dir}/podman/podman.sock"));
        candidates.push(format!("{dir}/docker.sock"));
    }
    candidates.into_iter().find(|p| std::path::Path::new(p).exists())
}

/// `GET /_ping` on the socket answers `OK` when the engine is up.
fn ping(socket: &str) -> bool {
    let Ok(mut s) = std::os::unix::net::UnixStream::connect(socket) else { return false };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if s.write_all(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n").is_err() {
        return false;
    }
    let mut buf = String::new();
    let _ = s.read_to_string(&mut buf);
    buf.starts_with("HTTP/1.") && buf.contains(" 200 ")
}

/// The container of one service (None: the service is not containerized).
pub(crate) fn request(name: &str) -> Option<ContainerRequest<GenericImage>> {
    let named = |r: ContainerRequest<GenericImage>| {
        r.with_container_name(format!("sqdata-test-{name}"))
            .with_reuse(ReuseDirective::Always)
            .with_label("org.sqdata.test-service", name)
    };
    Some(match name {
        "redis" => named(
            GenericImage::new("redis", "7.2-alpine")
                .with_exposed_port(6379.tcp())
                .with_wait_for(WaitFor::message_on_stdout("Ready to accept connections"))
                .with_mapped_port(REDIS_PORT, 6379.tcp()),
        ),
        "mysql" => named(
            GenericImage::new("mariadb", "11.4")
                .with_exposed_port(3306.tcp())
                .with_wait_for(WaitFor::message_on_stderr("port: 3306"))
                .with_env_var("MARIADB_ALLOW_EMPTY_ROOT_PASSWORD", "1")
                .with_env_var("MARIADB_ROOT_HOST", "%")
                .with_env_var("MARIADB_DATABASE", "test")
                .with_mapped_port(MYSQL_PORT, 3306.tcp()),
        ),
        "clickhouse" => named(
            GenericImage::new("yandex/clickhouse-server", "18.16.1")
                .with_exposed_port(8123.tcp())
                .with_wait_for(WaitFor::seconds(1))
                .with_mapped_port(CLICKHOUSE_HTTP, 8123.tcp())
                .with_mapped_port(CLICKHOUSE_TCP, 9000.tcp()),
        ),
        "s3" => named(
            GenericImage::new("motoserver/moto", "5.2.3")
                .with_exposed_port(5000.tcp())
                .with_wait_for(WaitFor::seconds(1))
                .with_mapped_port(S3_PORT, 5000.tcp()),
        ),
        _ => return None,
    })
}

/// Starts (or finds) the service's container; the caller then waits until
/// the server answers on its host port, as for a local one.
pub(crate) fn start(name: &str) -> Result<()> {
    let Some(req) = request(name) else { bail!("{name} has no container") };
    // A reused container is not removed when the handle drops.
    let c = req.start().with_context(|| format!("starting the {name} container"))?;
    eprintln!("service {name:<15} container {} (testcontainers)", c.id());
    Ok(())
}

/// Removes the service's container, if there is one.
pub(crate) fn stop(name: &str) -> Result<()> {
    let Some(req) = request(name) else { return Ok(()) };
    let c = req.start().with_context(|| format!("finding the {name} container"))?;
    c.rm().with_context(|| format!("removing the {name} container"))?;
    eprintln!("service {name:<15} container removed");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_socket_is_no_engine() {
        assert!(!ping("/nonexistent/docker.sock"));
    }

    #[test]
    fn every_containerized_service_maps_the_local_ports() {
        for name in CONTAINERIZED {
            let r = request(name).unwrap_or_else(|| panic!("{name}"));
            let ports = r.ports().map(|p| p.to_vec()).unwrap_or_default();
            assert!(!ports.is_empty(), "{name}: fixed host ports, so SQDATA_TEST_* stay the same");
        }
        assert!(request("redis-cluster").is_none(), "cluster nodes announce their own addresses: local");
    }
}
