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
//!
//! Which services have a container, and its image, ports and readiness, is
//! `Service::image` (service.rs); this module turns that into a request.

use std::io::{Read, Write};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use testcontainers::core::{IntoContainerPort, ReuseDirective, WaitFor};
use testcontainers::runners::SyncRunner;
use testcontainers::{ContainerRequest, GenericImage, ImageExt};

use crate::service::{Ready, Service};

/// The services a container can provide, in start order.
pub(crate) fn containerized() -> impl Iterator<Item = Service> {
    Service::ALL.into_iter().filter(|s| s.image().is_some())
}

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
pub(crate) fn request(service: Service) -> Option<ContainerRequest<GenericImage>> {
    let image = service.image()?;
    let wait = match image.ready {
        Ready::Stdout(m) => WaitFor::message_on_stdout(m),
        Ready::Stderr(m) => WaitFor::message_on_stderr(m),
        Ready::Seconds(s) => WaitFor::seconds(s),
    };
    let mut r: ContainerRequest<GenericImage> =
        GenericImage::new(image.name, image.tag).with_exposed_port(image.expose.tcp()).with_wait_for(wait).into();
    for (k, v) in image.env {
        r = r.with_env_var(*k, *v);
    }
    for (host, container) in image.ports {
        r = r.with_mapped_port(*host, container.tcp());
    }
    Some(
        r.with_container_name(format!("sqdata-test-{service}"))
            .with_reuse(ReuseDirective::Always)
            .with_label("org.sqdata.test-service", service.as_str()),
    )
}

/// Starts (or finds) the service's container; the caller then waits until
/// the server answers on its host port, as for a local one.
pub(crate) fn start(service: Service) -> Result<()> {
    let Some(req) = request(service) else { bail!("{service} has no container") };
    // A reused container is not removed when the handle drops.
    let c = req.start().with_context(|| format!("starting the {service} container"))?;
    eprintln!("service {service:<15} container {} (testcontainers)", c.id());
    Ok(())
}

/// Removes the service's container, if there is one.
pub(crate) fn stop(service: Service) -> Result<()> {
    let Some(req) = request(service) else { return Ok(()) };
    let c = req.start().with_context(|| format!("finding the {service} container"))?;
    c.rm().with_context(|| format!("removing the {service} container"))?;
    eprintln!("service {service:<15} container removed");
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
        for s in containerized() {
            let r = request(s).unwrap_or_else(|| panic!("{s}"));
            let ports = r.ports().map(|p| p.to_vec()).unwrap_or_default();
            assert!(!ports.is_empty(), "{s}: fixed host ports, so SQDATA_TEST_* stay the same");
        }
        assert!(request(Service::RedisCluster).is_none(), "cluster nodes announce their own addresses: local");
        let names: Vec<_> = containerized().map(Service::as_str).collect();
        assert_eq!(names, ["redis", "mysql", "clickhouse", "s3"]);
    }
}
