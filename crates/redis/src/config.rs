//! Configuration of the Redis backend.

use serde::{Deserialize, Serialize};
use sqdata_core::{Error, Result};

/// How to reach Redis. Exactly one of standalone (`url`), Sentinel
/// (`sentinels` + `sentinel_master`) or Cluster (`cluster`) is used: Cluster
/// when `cluster` is non-empty, else Sentinel when `sentinels` is non-empty,
/// else `url`.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RedisConfig {
    /// Standalone server, `redis://[user:password@]host:port/db`.
    pub url: String,
    /// Cluster seed nodes.
    pub cluster: Vec<String>,
    /// Sentinel nodes.
    pub sentinels: Vec<String>,
    /// The master name Sentinel monitors.
    pub sentinel_master: String,
    /// Key prefix; every key starts with it (several installations or tests
    /// can share one server). No glob characters (`*?[]\\`: `SCAN MATCH`
    /// would expand them into other prefixes' keys), no braces (hash tags),
    /// no whitespace or control characters.
    pub prefix: String,
    /// Connect timeout, ms.
    pub connect_timeout_ms: u64,
    /// Timeout of one command, ms.
    pub response_timeout_ms: u64,
    /// Replicas that must acknowledge each write (WAIT) before it is
    /// acknowledged to the caller; with Sentinel, 1 makes a failover lose
    /// no acknowledged write. 0 = do not wait. Ignored in Cluster mode.
    pub replica_acks: u32,
    /// How long a write waits for replica acknowledgements, ms.
    pub replica_ack_timeout_ms: u64,
    /// Quote lifetime, ms.
    pub quote_ttl_ms: u64,
    /// Session/token lifetime, seconds.
    pub session_ttl_s: u64,
}

impl Default for RedisConfig {
    fn default() -> Self {
        RedisConfig {
            url: "redis://127.0.0.1:6379/0".into(),
            cluster: Vec::new(),
            sentinels: Vec::new(),
            sentinel_master: "mymaster".into(),
            prefix: "sq".into(),
            connect_timeout_ms: 1000,
            response_timeout_ms: 1000,
            replica_acks: 0,
            replica_ack_timeout_ms: 200,
            quote_ttl_ms: 5000,
            session_ttl_s: 86_400,
        }
    }
}

/// `redis://user:secret@host` → `redis://user:***@host`.
pub(crate) fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s + 3 => {
            let cred = &url[s + 3..at];
            match cred.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..s + 3], &url[at..]),
                None => format!("{}***{}", &url[..s + 3], &url[at..]),
            }
        }
        _ => url.to_owned(),
    }
}

impl std::fmt::Debug for RedisConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisConfig")
            .field("url", &redact(&self.url))
            .field("cluster", &self.cluster.iter().map(|u| redact(u)).collect::<Vec<_>>())
            .field("sentinels", &self.sentinels.iter().map(|u| redact(u)).collect::<Vec<_>>())
            .field("sentinel_master", &self.sentinel_master)
            .field("prefix", &self.prefix)
            .field("connect_timeout_ms", &self.connect_timeout_ms)
            .field("response_timeout_ms", &self.response_timeout_ms)
            .field("replica_acks", &self.replica_acks)
            .field("quote_ttl_ms", &self.quote_ttl_ms)
            .field("session_ttl_s", &self.session_ttl_s)
            .finish()
    }
}

/// Which topology the config selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// One server.
    Standalone,
    /// A Sentinel-monitored master.
    Sentinel,
    /// Redis Cluster.
    Cluster,
}

impl RedisConfig {
    /// The longest one store call may take (connect, answer, replica
    /// acknowledgement, one retry after a failover): the bound the
    /// facade's `Observed` layer puts on every call.
    pub fn op_timeout(&self) -> std::time::Duration {
        // Saturating: the three come from a config file and may be huge.
        std::time::Duration::from_millis(
            self.connect_timeout_ms
                .saturating_add(self.response_timeout_ms)
                .saturating_add(self.replica_ack_timeout_ms)
                .saturating_mul(2),
        )
    }

    /// The topology in use.
    pub fn mode(&self) -> Mode {
        if !self.cluster.is_empty() {
            Mode::Cluster
        } else if !self.sentinels.is_empty() {
            Mode::Sentinel
        } else {
            Mode::Standalone
        }
    }

    /// Checks the values.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::Config(format!("redis: {m}")));
        check_prefix(&self.prefix).map_err(|why| Error::Config(format!("redis.prefix {:?}: {why}", self.prefix)))?;
        if self.mode() == Mode::Sentinel && self.sentinel_master.is_empty() {
            return bad("sentinel_master must be set with sentinels".into());
        }
        if self.quote_ttl_ms == 0 || self.session_ttl_s == 0 {
            return bad("quote_ttl_ms and session_ttl_s must be positive".into());
        }
        if self.response_timeout_ms == 0 || self.connect_timeout_ms == 0 {
            return bad("timeouts must be positive".into());
        }
        Ok(())
    }
}

/// A prefix is matched with `SCAN MATCH <prefix>:*` (listing books,
/// purging), so a glob character in it would reach other prefixes' keys — a
/// purge of `s*` deletes every installation's `sq…` keys. Braces would move
/// the cluster hash tag; whitespace and control characters break the keys'
/// printing and the CLI's arguments.
fn check_prefix(p: &str) -> std::result::Result<(), &'static str> {
    if p.is_empty() {
        return Err("must not be empty");
    }
    if p.contains(['*', '?', '[', ']', '\\']) {
        return Err("must not contain SCAN MATCH glob characters * ? [ ] \\");
    }
    if p.contains(['{', '}']) {
        return Err("must not contain braces (they delimit the cluster hash tag)");
    }
    if p.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("must not contain whitespace or control characters");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_passwords() {
        let c = RedisConfig { url: "redis://app:s3cret@host:6379/0".into(), ..Default::default() };
        let d = format!("{c:?}");
        assert!(!d.contains("s3cret") && d.contains("app:***@host"), "{d}");
        assert_eq!(redact("redis://:pw@h:1"), "redis://:***@h:1");
        assert_eq!(redact("redis://h:1"), "redis://h:1");
    }

    #[test]
    fn mode_selection() {
        assert_eq!(RedisConfig::default().mode(), Mode::Standalone);
        let c = RedisConfig { sentinels: vec!["redis://h:26379".into()], ..Default::default() };
        assert_eq!(c.mode(), Mode::Sentinel);
        let c = RedisConfig { cluster: vec!["redis://h:7000".into()], ..c };
        assert_eq!(c.mode(), Mode::Cluster);
        assert!(RedisConfig { prefix: "a{b".into(), ..Default::default() }.validate().is_err());
    }

    #[test]
    fn prefix_rejects_glob_characters_naming_the_field() {
        for p in ["s*", "sq?", "sq[ab]", "a]", "sq\\*", "a{b", "a}", "", "a b", "a\tb", "a\nb", "a\u{0}b", "a\u{3000}b"]
        {
            let e = RedisConfig { prefix: p.into(), ..Default::default() }.validate().unwrap_err();
            assert!(matches!(e, Error::Config(_)), "{p:?}: {e:?}");
            assert!(e.to_string().contains("redis.prefix"), "{p:?}: {e}");
        }
        for p in ["sq", "sqtest1f", "prod:sq", "sq-2_b.c", "银河"] {
            RedisConfig { prefix: p.into(), ..Default::default() }.validate().unwrap();
        }
    }

    #[test]
    fn op_timeout_saturates() {
        let c = RedisConfig {
            connect_timeout_ms: u64::MAX,
            response_timeout_ms: u64::MAX,
            replica_ack_timeout_ms: u64::MAX,
            ..Default::default()
        };
        c.validate().unwrap();
        assert_eq!(c.op_timeout(), std::time::Duration::from_millis(u64::MAX));
    }
}
