//! Local test servers: `cargo xtask services install|up|down|status|env [--only a,b]`.
//!
//! A Redis, a 3-node Redis cluster, a Sentinel-monitored master/replica,
//! MariaDB, ClickHouse 18.16, an S3-compatible server (moto) and, on
//! request, the chdb-http modern ClickHouse engine, all on 127.0.0.1. `up`
//! waits until each answers, is idempotent (a running service is reused),
//! records what it started under the services folder and prints the
//! `SQDATA_TEST_*` variables the tests read; `down` stops only what `up`
//! started.
//!
//! This module is the front: for each service it picks a container
//! (`containers.rs`, when the service has an image and a Docker engine
//! answers) or a local process (`local.rs`). What differs between services
//! is in `service.rs`.

use std::ffi::OsStr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::ValueEnum;
use clap::builder::{EnumValueParser, PossibleValue, TypedValueParser};

use crate::service::Service;
use crate::util::{base, wait_for};
use crate::{containers, local};

/// `cargo xtask services …`
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    #[command(subcommand)]
    action: Action,
    /// The services to act on, comma-separated [default: all but chdb]
    #[arg(long, global = true, value_name = "a,b", value_delimiter = ',', value_parser = ServiceParser)]
    only: Option<Vec<Service>>,
}

#[derive(Debug, Clone, Copy, clap::Subcommand)]
enum Action {
    /// Install what the services need here (apt, pip; nothing for containers)
    Install,
    /// Install and start them, wait until they answer, print their variables
    Up,
    /// Stop what `up` started (processes and containers); leave the rest alone
    Down,
    /// Whether each answers, and whether xtask started it
    Status,
    /// Print their `SQDATA_TEST_*` variables as `export` lines
    Env,
}

/// `--only` values: a service's name, spaces around it ignored (`"a, b"`).
#[derive(Debug, Clone)]
struct ServiceParser;

impl TypedValueParser for ServiceParser {
    type Value = Service;

    fn parse_ref(&self, cmd: &clap::Command, arg: Option<&clap::Arg>, value: &OsStr) -> Result<Service, clap::Error> {
        let trimmed = value.to_str().map_or(value, |s| OsStr::new(s.trim()));
        EnumValueParser::<Service>::new().parse_ref(cmd, arg, trimmed)
    }

    fn possible_values(&self) -> Option<Box<dyn Iterator<Item = PossibleValue> + '_>> {
        Some(Box::new(Service::value_variants().iter().filter_map(ValueEnum::to_possible_value)))
    }
}

pub(crate) fn main(args: &Args) -> Result<()> {
    let which = args.only.clone().unwrap_or_else(|| Service::DEFAULT.to_vec());
    match args.action {
        Action::Install => install(&which),
        Action::Up => {
            let env = up(&which)?;
            for (k, v) in env {
                println!("export {k}={v}");
            }
            Ok(())
        }
        Action::Down => down(&which),
        Action::Status => status(&which),
        Action::Env => {
            for (k, v) in env_of(&which) {
                println!("export {k}={v}");
            }
            Ok(())
        }
    }
}

/// The Docker engine the containerized services run on, decided once and
/// said once (the choice is always visible in the output).
fn engine() -> Result<Option<String>> {
    static ENGINE: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    if let Some(e) = ENGINE.get() {
        return Ok(e.clone());
    }
    let e = containers::engine()?;
    match &e {
        Some(s) => eprintln!(
            "services: Docker engine at {s}: {} run as containers (testcontainers); the rest as local processes",
            containers::containerized().map(Service::as_str).collect::<Vec<_>>().join(", ")
        ),
        None => eprintln!("services: no Docker engine (or SQDATA_SERVICES=local): every service is a local process"),
    }
    Ok(ENGINE.get_or_init(|| e).clone())
}

/// Whether the service runs (or would run) as a container here.
fn in_container(service: Service) -> Result<bool> {
    Ok(service.image().is_some() && engine()?.is_some())
}

/// Present while a container `up` started for the service exists.
fn container_marker(service: Service) -> PathBuf {
    service.dir().join("container")
}

fn install(which: &[Service]) -> Result<()> {
    std::fs::create_dir_all(base())?;
    // Containerized services need nothing installed on the machine.
    let mut here = Vec::new();
    for &s in which {
        if !in_container(s)? {
            here.push(s);
        }
    }
    local::install(&here)
}

fn start(service: Service) -> Result<()> {
    if local::stale(service) {
        eprintln!("service {service:<15} runs in a deleted folder; restarting it");
        down(&[service])?;
    }
    if in_container(service)? && !service.answering() {
        containers::start(service)?;
        std::fs::create_dir_all(service.dir())?;
        std::fs::write(container_marker(service), "testcontainers\n")?;
        return wait_for(service.as_str(), Duration::from_secs(180), || service.answering());
    }
    local::start(service)
}

/// Starts the services and returns the variables the tests read.
pub(crate) fn up(which: &[Service]) -> Result<Vec<(String, String)>> {
    install(which)?;
    for &s in which {
        let t = Instant::now();
        start(s).with_context(|| format!("service {s}"))?;
        eprintln!("service {s:<15} ready ({:.1}s)", t.elapsed().as_secs_f64());
    }
    let env = env_of(which);
    // The env file accumulates: `up --only x` must not forget the others.
    let path = base().join("env");
    let mut all: std::collections::BTreeMap<String, String> = std::fs::read_to_string(&path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_once('=').map(|(k, v)| (k.to_owned(), v.to_owned())))
        .collect();
    all.extend(env.iter().cloned());
    std::fs::write(&path, all.iter().map(|(k, v)| format!("{k}={v}\n")).collect::<String>())?;
    Ok(env)
}

/// The `SQDATA_TEST_*` variables of the given services.
pub(crate) fn env_of(which: &[Service]) -> Vec<(String, String)> {
    which.iter().flat_map(|s| s.env()).map(|(k, v)| (k.to_owned(), v)).collect()
}

fn down(which: &[Service]) -> Result<()> {
    for &s in which {
        if container_marker(s).exists() {
            containers::stop(s)?;
            let _ = std::fs::remove_file(container_marker(s));
            continue;
        }
        local::stop(s)?;
    }
    Ok(())
}

fn status(which: &[Service]) -> Result<()> {
    for &s in which {
        let up = s.answering();
        let ours = if container_marker(s).exists() {
            "(container started by xtask)"
        } else if local::started(s) {
            "(started by xtask)"
        } else {
            ""
        };
        println!("{s:<15} {:<5} {ours}", if up { "up" } else { "down" });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        services: Args,
    }

    fn parse(args: &[&str]) -> Result<Args, clap::Error> {
        Cli::try_parse_from(std::iter::once("services").chain(args.iter().copied())).map(|c| c.services)
    }

    #[test]
    fn only_takes_a_comma_separated_list_before_or_after_the_action() {
        let a = parse(&["env", "--only", "redis,mysql"]).unwrap();
        assert_eq!(a.only, Some(vec![Service::Redis, Service::Mysql]));
        let a = parse(&["--only", "s3, chdb", "status"]).unwrap();
        assert_eq!(a.only, Some(vec![Service::S3, Service::Chdb]));
        assert!(matches!(a.action, Action::Status));
        assert_eq!(parse(&["up"]).unwrap().only, None);
        assert!(parse(&["env", "--only", "redis,bogus"]).is_err());
        assert!(parse(&["bogus"]).is_err());
    }

    #[test]
    fn env_lists_each_services_variables_in_the_order_asked() {
        let env = env_of(&[Service::Redis, Service::Mysql]);
        assert_eq!(
            env,
            [
                ("SQDATA_TEST_REDIS_URL".to_owned(), "redis://127.0.0.1:6379/0".to_owned()),
                ("SQDATA_TEST_MYSQL_URL".to_owned(), "mysql://root@127.0.0.1:3306/test".to_owned()),
            ]
        );
    }
}
