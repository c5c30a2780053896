//! The test services `cargo xtask services` knows, as one enum, and what is
//! particular to each: its name, ports, `SQDATA_TEST_*` variables, readiness
//! probe, container image (when it has one) and install step. The local
//! processes (`local.rs`) and the containers (`containers.rs`) both read
//! this; neither knows the other.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use anyhow::anyhow;

use crate::util::{base, http_get, port_open, redis_cli, redis_ping};

/// Debian's only ClickHouse.
const CLICKHOUSE_APT: &str = "18.16.1+ds-7.3+b2";
const MOTO: &str = "moto[server,s3]==5.2.5";
const CHDB: &str = "chdb==4.4.0";

pub(crate) const REDIS_PORT: u16 = 6379;
pub(crate) const CLUSTER_PORTS: [u16; 3] = [7101, 7102, 7103];
pub(crate) const SENTINEL_MASTER_PORT: u16 = 7111;
pub(crate) const SENTINEL_REPLICA_PORT: u16 = 7112;
pub(crate) const SENTINEL_PORT: u16 = 7113;
pub(crate) const CLICKHOUSE_HTTP: u16 = 18123;
pub(crate) const CLICKHOUSE_TCP: u16 = 19000;
pub(crate) const S3_PORT: u16 = 19100;
pub(crate) const CHDB_PORT: u16 = 18124;
pub(crate) const MYSQL_PORT: u16 = 3306;

/// One test server (or group of servers) on 127.0.0.1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, clap::ValueEnum)]
pub(crate) enum Service {
    /// The machine's Redis (one started when none answers).
    #[value(name = "redis")]
    Redis,
    /// A 3-node Redis cluster.
    #[value(name = "redis-cluster")]
    RedisCluster,
    /// A Sentinel-monitored Redis master and replica.
    #[value(name = "redis-sentinel")]
    RedisSentinel,
    /// The machine's MariaDB (one started when none answers).
    #[value(name = "mysql")]
    Mysql,
    /// ClickHouse 18.16, the one Debian ships.
    #[value(name = "clickhouse")]
    Clickhouse,
    /// An S3-compatible server (moto).
    #[value(name = "s3")]
    S3,
    /// The chdb-http modern ClickHouse engine (on request).
    #[value(name = "chdb")]
    Chdb,
}

/// How a service's software gets onto the machine (when it runs locally).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Install {
    /// Debian packages, unless one of the `present` programs is already on
    /// the PATH; the `fallback` packages when these cannot be installed.
    Apt { present: &'static [&'static str], packages: Vec<String>, fallback: Option<&'static [&'static str]> },
    /// A virtualenv `venv-<name>` under the services folder with the pinned
    /// `package`, taken as installed when `bin/<bin>` exists in it.
    Venv { name: &'static str, package: &'static str, bin: &'static str },
}

/// A service's container: the image, the container port it exposes, the
/// host ports mapped to container ports (the local servers' ports, so the
/// `SQDATA_TEST_*` variables do not change), when it is ready, its environment.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Image {
    pub(crate) name: &'static str,
    pub(crate) tag: &'static str,
    pub(crate) expose: u16,
    /// (host, container)
    pub(crate) ports: &'static [(u16, u16)],
    pub(crate) ready: Ready,
    pub(crate) env: &'static [(&'static str, &'static str)],
}

/// When a container counts as started.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Ready {
    Stdout(&'static str),
    Stderr(&'static str),
    Seconds(u64),
}

impl Service {
    /// Every service `up` knows, in start order. `chdb` only on request.
    pub(crate) const ALL: [Service; 7] = [
        Service::Redis,
        Service::RedisCluster,
        Service::RedisSentinel,
        Service::Mysql,
        Service::Clickhouse,
        Service::S3,
        Service::Chdb,
    ];

    /// What `services` acts on without `--only`: all but chdb.
    pub(crate) const DEFAULT: [Service; 6] = [
        Service::Redis,
        Service::RedisCluster,
        Service::RedisSentinel,
        Service::Mysql,
        Service::Clickhouse,
        Service::S3,
    ];

    /// The services `ci` and `test` start: the default ones, and chdb (the
    /// modern ClickHouse engine) when its shim is present beside the project.
    pub(crate) fn default_set() -> Vec<Service> {
        let mut v = Service::DEFAULT.to_vec();
        if chdb_http_script().is_some() {
            v.push(Service::Chdb);
        }
        v
    }

    /// The name on the command line, in messages and as its folder's name.
    pub(crate) const fn as_str(self) -> &'static str {
        match self {
            Service::Redis => "redis",
            Service::RedisCluster => "redis-cluster",
            Service::RedisSentinel => "redis-sentinel",
            Service::Mysql => "mysql",
            Service::Clickhouse => "clickhouse",
            Service::S3 => "s3",
            Service::Chdb => "chdb",
        }
    }

    /// Its folder under the services folder (logs, data, pid file, marker).
    pub(crate) fn dir(self) -> PathBuf {
        base().join(self.as_str())
    }

    /// The host ports it listens on.
    pub(crate) fn ports(self) -> &'static [u16] {
        match self {
            Service::Redis => &[REDIS_PORT],
            Service::RedisCluster => &CLUSTER_PORTS,
            Service::RedisSentinel => &[SENTINEL_MASTER_PORT, SENTINEL_REPLICA_PORT, SENTINEL_PORT],
            Service::Mysql => &[MYSQL_PORT],
            Service::Clickhouse => &[CLICKHOUSE_HTTP, CLICKHOUSE_TCP],
            Service::S3 => &[S3_PORT],
            Service::Chdb => &[CHDB_PORT],
        }
    }

    /// The `SQDATA_TEST_*` variables the tests read to reach it.
    pub(crate) fn env(self) -> Vec<(&'static str, String)> {
        match self {
            Service::Redis => vec![("SQDATA_TEST_REDIS_URL", format!("redis://127.0.0.1:{REDIS_PORT}/0"))],
            Service::RedisCluster => vec![(
                "SQDATA_TEST_REDIS_CLUSTER_URLS",
                CLUSTER_PORTS.iter().map(|p| format!("redis://127.0.0.1:{p}")).collect::<Vec<_>>().join(","),
            )],
            Service::RedisSentinel => vec![
                ("SQDATA_TEST_REDIS_SENTINEL_URL", format!("redis://127.0.0.1:{SENTINEL_PORT}")),
                ("SQDATA_TEST_REDIS_SENTINEL_MASTER", "mymaster".to_owned()),
            ],
            Service::Mysql => vec![("SQDATA_TEST_MYSQL_URL", format!("mysql://root@127.0.0.1:{MYSQL_PORT}/test"))],
            Service::Clickhouse => vec![("SQDATA_TEST_CLICKHOUSE_URL", format!("http://127.0.0.1:{CLICKHOUSE_HTTP}"))],
            Service::S3 => vec![
                ("SQDATA_TEST_S3_URL", format!("http://127.0.0.1:{S3_PORT}")),
                ("SQDATA_TEST_S3_ACCESS_KEY", "sqdata-test".to_owned()),
                ("SQDATA_TEST_S3_SECRET_KEY", "sqdata-test-secret".to_owned()),
            ],
            Service::Chdb => vec![("SQDATA_TEST_CHDB_URL", format!("http://127.0.0.1:{CHDB_PORT}"))],
        }
    }

    /// Whether the service answers on its port (whoever started it).
    pub(crate) fn answering(self) -> bool {
        match self {
            Service::Redis => redis_ping(REDIS_PORT),
            Service::RedisCluster => {
                redis_cli(CLUSTER_PORTS[0], &["cluster", "info"]).is_some_and(|s| s.contains("cluster_state:ok"))
            }
            Service::RedisSentinel => redis_ping(SENTINEL_PORT),
            Service::Mysql => port_open(MYSQL_PORT),
            Service::Clickhouse => http_get(CLICKHOUSE_HTTP, "/ping").is_some_and(|r| r.contains("Ok.")),
            Service::S3 => port_open(S3_PORT) && http_get(S3_PORT, "/").is_some(),
            Service::Chdb => http_get(CHDB_PORT, "/ping").is_some_and(|r| r.contains("Ok")),
        }
    }

    /// Its container, when it can run as one. The Redis cluster and Sentinel
    /// group (whose nodes announce their own addresses) and chdb cannot.
    pub(crate) fn image(self) -> Option<Image> {
        match self {
            Service::Redis => Some(Image {
                name: "redis",
                tag: "7.2-alpine",
                expose: 6379,
                ports: &[(REDIS_PORT, 6379)],
                ready: Ready::Stdout("Ready to accept connections"),
                env: &[],
            }),
            Service::Mysql => Some(Image {
                name: "mariadb",
                tag: "11.4",
                expose: 3306,
                ports: &[(MYSQL_PORT, 3306)],
                ready: Ready::Stderr("port: 3306"),
                env: &[
                    ("MARIADB_ALLOW_EMPTY_ROOT_PASSWORD", "1"),
                    ("MARIADB_ROOT_HOST", "%"),
                    ("MARIADB_DATABASE", "test"),
                ],
            }),
            Service::Clickhouse => Some(Image {
                name: "yandex/clickhouse-server",
                tag: "18.16.1",
                expose: 8123,
                ports: &[(CLICKHOUSE_HTTP, 8123), (CLICKHOUSE_TCP, 9000)],
                ready: Ready::Seconds(1),
                env: &[],
            }),
            Service::S3 => Some(Image {
                name: "motoserver/moto",
                tag: "5.2.3",
                expose: 5000,
                ports: &[(S3_PORT, 5000)],
                ready: Ready::Seconds(1),
                env: &[],
            }),
            Service::RedisCluster | Service::RedisSentinel | Service::Chdb => None,
        }
    }

    /// What installing it locally takes (pinned versions, the normal
    /// package clients).
    pub(crate) fn install(self) -> Install {
        match self {
            Service::Redis | Service::RedisCluster | Service::RedisSentinel => Install::Apt {
                present: &["redis-server"],
                packages: vec!["redis-server".into(), "redis-tools".into()],
                fallback: None,
            },
            Service::Mysql => Install::Apt {
                present: &["mariadbd", "mysqld"],
                packages: vec!["mariadb-server".into(), "mariadb-client".into()],
                fallback: None,
            },
            Service::Clickhouse => Install::Apt {
                present: &["clickhouse-server"],
                packages: ["clickhouse-server", "clickhouse-client", "clickhouse-common"]
                    .map(|p| format!("{p}={CLICKHOUSE_APT}"))
                    .to_vec(),
                fallback: Some(&["clickhouse-server", "clickhouse-client"]),
            },
            Service::S3 => Install::Venv { name: "moto", package: MOTO, bin: "moto_server" },
            Service::Chdb => Install::Venv { name: "chdb", package: CHDB, bin: "python" },
        }
    }
}

impl fmt::Display for Service {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `pad`, so `{:<15}` lines the names up.
        f.pad(self.as_str())
    }
}

impl FromStr for Service {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> anyhow::Result<Self> {
        Service::ALL
            .into_iter()
            .find(|a| a.as_str() == s.trim())
            .ok_or_else(|| anyhow!("unknown service {s:?}; known: {:?}", Service::ALL.map(Service::as_str)))
    }
}

/// The chdb-http shim shipped beside the project (`shared/tools/chdb-http`
/// in this folder or any folder above it, or `/work/shared`), or wherever
/// `SQDATA_CHDB_HTTP` points.
pub(crate) fn chdb_http_script() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("SQDATA_CHDB_HTTP") {
        return Some(PathBuf::from(p));
    }
    let rel = Path::new("shared/tools/chdb-http/chdb_http.py");
    let root = crate::project_root();
    root.ancestors().map(|a| a.join(rel)).chain([Path::new("/work").join(rel)]).find(|p| p.exists())
}

#[cfg(test)]
mod tests {
    use clap::ValueEnum;

    use super::*;

    #[test]
    fn names_are_the_command_line_spellings() {
        assert_eq!(Service::value_variants(), Service::ALL);
        for s in Service::ALL {
            let pv = s.to_possible_value().expect("no skipped variants");
            assert_eq!(pv.get_name(), s.as_str());
            assert_eq!(s.as_str().parse::<Service>().unwrap(), s);
            assert_eq!(<Service as ValueEnum>::from_str(s.as_str(), false).unwrap(), s);
        }
        assert_eq!(" mysql".parse::<Service>().unwrap(), Service::Mysql);
        assert!("bogus".parse::<Service>().is_err());
        assert_eq!(format!("[{:<8}]", Service::S3), "[s3      ]");
    }

    #[test]
    fn ports_are_distinct_and_containers_use_them() {
        let mut seen = std::collections::BTreeSet::new();
        for s in Service::ALL {
            for p in s.ports() {
                assert!(seen.insert(*p), "{s}: port {p} taken twice");
            }
            if let Some(img) = s.image() {
                for (host, _) in img.ports {
                    assert!(s.ports().contains(host), "{s}: container maps {host}, not one of its ports");
                }
            }
        }
    }

    #[test]
    fn every_service_has_test_variables() {
        for s in Service::ALL {
            assert!(s.env().iter().all(|(k, _)| k.starts_with("SQDATA_TEST_")), "{s}");
            assert!(!s.env().is_empty(), "{s}");
        }
        assert_eq!(Service::DEFAULT.to_vec(), Service::ALL[..6].to_vec());
    }
}
