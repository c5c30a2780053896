//! Connections for the three topologies behind one interface, created
//! lazily (a Redis that is down at start-up is retried on the next call, not
//! given up on), with timeouts and typed errors.

use std::time::Duration;

use parking_lot::Mutex;
use redis::aio::{ConnectionManager, ConnectionManagerConfig, MultiplexedConnection};
use redis::cluster_async::ClusterConnection;
use redis::sentinel::{SentinelClient, SentinelServerType};
use redis::{AsyncConnectionConfig, Client, Cmd, FromRedisValue, Pipeline, RedisError, Value};
use sqdata_core::{Error, Result};

use crate::config::{Mode, RedisConfig};

pub(crate) const BACKEND: &str = "redis";

type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;

/// Maps a driver error to the store's error. Connection and I/O failures and
/// timeouts are retryable; so are the server's transient refusals
/// (READONLY after a failover, LOADING, CLUSTERDOWN, TRYAGAIN, MASTERDOWN).
pub(crate) fn map_err(e: RedisError) -> Error {
    let msg = e.to_string();
    if e.is_timeout() {
        return Error::Unavailable {
            backend: BACKEND,
            message: format!("timed out: {msg}"),
            source: Some(Box::new(e)),
        };
    }
    // While a master is down (before Sentinel promotes a replica) Sentinel
    // names no valid master: the outage is transient.
    let sentinel_outage = matches!(
        e.kind(),
        redis::ErrorKind::MasterNameNotFoundBySentinel | redis::ErrorKind::NoValidReplicasFoundBySentinel
    );
    if e.is_io_error() || e.is_connection_refusal() || e.is_connection_dropped() || sentinel_outage {
        return Error::Unavailable { backend: BACKEND, message: msg, source: Some(Box::new(e)) };
    }
    let transient =
        matches!(e.code(), Some("READONLY" | "LOADING" | "MASTERDOWN" | "CLUSTERDOWN" | "TRYAGAIN" | "BUSY"))
            || e.is_cluster_error();
    Error::Backend { backend: BACKEND, message: msg, retryable: transient, source: Some(Box::new(e)) }
}

/// Whether the command cannot have run (safe to resend after moving to a new master).
fn not_sent(e: &RedisError) -> bool {
    e.is_connection_refusal() || matches!(e.code(), Some("READONLY" | "LOADING" | "MASTERDOWN"))
}

/// Whether the connection should be dropped and re-resolved.
fn stale(e: &RedisError) -> bool {
    e.is_io_error() || e.is_connection_dropped() || not_sent(e) || e.is_timeout()
}

enum Req<'a> {
    Cmd(&'a Cmd),
    Pipe(&'a Pipeline),
    Node(&'a Cmd, String, u16),
}

#[derive(Clone)]
enum Conn {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
    Sentinel(MultiplexedConnection),
}

/// A lazily created connection of the configured topology.
pub(crate) struct Redis {
    cfg: RedisConfig,
    mode: Mode,
    conn: Mutex<Option<Conn>>,
    creating: tokio::sync::Mutex<()>,
    sentinel: tokio::sync::Mutex<Option<SentinelClient>>,
    /// Blocking connections for reads made in place (`sqdata_core::inline`).
    blocking: Mutex<Vec<redis::Connection>>,
}

/// Blocking connections kept for reads in place (one per caller thread
/// reading at the same moment; more are opened and closed as needed).
const BLOCKING_POOL: usize = 4;

impl std::fmt::Debug for Redis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Redis").field("mode", &self.mode).field("cfg", &self.cfg).finish_non_exhaustive()
    }
}

/// A compiled Lua script: its source and SHA1.
#[derive(Debug)]
pub(crate) struct Lua {
    code: String,
    sha: String,
}

impl Lua {
    pub(crate) fn new(code: String) -> Lua {
        let sha = redis::Script::new(&code).get_hash().to_owned();
        Lua { code, sha }
    }

    /// `EVALSHA sha` (or `EVAL code`) with its keys and arguments.
    fn cmd(&self, by_sha: bool, keys: &[String], args: &[String]) -> Cmd {
        let mut c = if by_sha { redis::cmd("EVALSHA") } else { redis::cmd("EVAL") };
        c.arg(if by_sha { self.sha.as_str() } else { self.code.as_str() }).arg(keys.len()).arg(keys).arg(args);
        c
    }
}

impl Redis {
    pub(crate) fn new(cfg: RedisConfig) -> Redis {
        Redis {
            mode: cfg.mode(),
            cfg,
            conn: Mutex::new(None),
            creating: tokio::sync::Mutex::new(()),
            sentinel: tokio::sync::Mutex::new(None),
            blocking: Mutex::new(Vec::new()),
        }
    }

    pub(crate) fn mode(&self) -> Mode {
        self.mode
    }

    fn conn_config(&self) -> AsyncConnectionConfig {
        AsyncConnectionConfig::new()
            .set_connection_timeout(Some(Duration::from_millis(self.cfg.connect_timeout_ms)))
            .set_response_timeout(Some(Duration::from_millis(self.cfg.response_timeout_ms)))
    }

    async fn create(&self) -> std::result::Result<Conn, RedisError> {
        let ct = Duration::from_millis(self.cfg.connect_timeout_ms);
        let rt = Duration::from_millis(self.cfg.response_timeout_ms);
        match self.mode {
            Mode::Standalone => {
                let client = Client::open(self.cfg.url.as_str())?;
                let mc = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(ct))
                    .set_response_timeout(Some(rt))
                    .set_number_of_retries(2)
                    .set_max_delay(Duration::from_millis(500));
                Ok(Conn::Single(ConnectionManager::new_with_config(client, mc).await?))
            }
            Mode::Cluster => {
                let client = redis::cluster::ClusterClient::builder(self.cfg.cluster.clone())
                    .connection_timeout(ct)
                    .response_timeout(rt)
                    .retries(3)
                    .min_retry_wait(20)
                    .max_retry_wait(500)
                    .build()?;
                Ok(Conn::Cluster(client.get_async_connection().await?))
            }
            Mode::Sentinel => {
                let mut guard = self.sentinel.lock().await;
                if guard.is_none() {
                    *guard = Some(SentinelClient::build(
                        self.cfg.sentinels.clone(),
                        self.cfg.sentinel_master.clone(),
                        None,
                        SentinelServerType::Master,
                    )?);
                }
                let sc =
                    guard.as_mut().ok_or_else(|| RedisError::from((redis::ErrorKind::Client, "no sentinel client")))?;
                Ok(Conn::Sentinel(sc.get_async_connection_with_config(&self.conn_config()).await?))
            }
        }
    }

    async fn get(&self) -> Result<Conn> {
        if let Some(c) = self.conn.lock().clone() {
            return Ok(c);
        }
        let _g = self.creating.lock().await;
        if let Some(c) = self.conn.lock().clone() {
            return Ok(c);
        }
        // Bounded by the driver's connection timeout; the whole call by the
        // Observed layer's (`RedisConfig::op_timeout`).
        let create: BoxFuture<'_, std::result::Result<Conn, RedisError>> = Box::pin(self.create());
        let c = create.await.map_err(map_err)?;
        *self.conn.lock() = Some(c.clone());
        Ok(c)
    }

    fn invalidate(&self) {
        // The connection manager and the cluster connection reconnect by
        // themselves; a Sentinel connection must ask Sentinel for the master.
        if self.mode == Mode::Sentinel {
            *self.conn.lock() = None;
        }
    }

    /// Boxed: the driver's futures are deep enough to exceed the compiler's
    /// type-layout recursion limit in every crate that awaits them.
    fn exec<'a>(&'a self, c: Conn, req: &'a Req<'a>) -> BoxFuture<'a, std::result::Result<Value, RedisError>> {
        Box::pin(self.exec_inner(c, req))
    }

    async fn exec_inner(&self, c: Conn, req: &Req<'_>) -> std::result::Result<Value, RedisError> {
        match (c, req) {
            (Conn::Single(mut m), Req::Cmd(cmd)) => cmd.query_async(&mut m).await,
            (Conn::Cluster(mut m), Req::Cmd(cmd)) => cmd.query_async(&mut m).await,
            (Conn::Sentinel(mut m), Req::Cmd(cmd)) => cmd.query_async(&mut m).await,
            (Conn::Single(mut m), Req::Pipe(p)) => p.query_async(&mut m).await,
            (Conn::Cluster(mut m), Req::Pipe(p)) => p.query_async(&mut m).await,
            (Conn::Sentinel(mut m), Req::Pipe(p)) => p.query_async(&mut m).await,
            (Conn::Cluster(mut m), Req::Node(cmd, host, port)) => {
                m.route_command(
                    (*cmd).clone(),
                    redis::cluster_routing::RoutingInfo::SingleNode(
                        redis::cluster_routing::SingleNodeRoutingInfo::ByAddress { host: host.clone(), port: *port },
                    ),
                )
                .await
            }
            (_, Req::Node(..)) => Err(RedisError::from((redis::ErrorKind::Client, "node routing needs cluster mode"))),
        }
    }

    async fn run<T: FromRedisValue>(&self, op: &'static str, req: Req<'_>) -> Result<T> {
        let attempt = async {
            let mut last = None;
            for _ in 0..2 {
                let c = self.get().await?;
                match self.exec(c, &req).await {
                    Ok(v) => {
                        return redis::from_redis_value(v).map_err(|e| Error::Backend {
                            backend: BACKEND,
                            message: format!("{op}: unexpected reply: {e}"),
                            retryable: false,
                            source: None,
                        });
                    }
                    Err(e) => {
                        let retry = self.mode == Mode::Sentinel && not_sent(&e);
                        if stale(&e) {
                            self.invalidate();
                        }
                        if !retry {
                            return Err(map_err(e));
                        }
                        last = Some(e);
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                }
            }
            Err(map_err(last.unwrap_or_else(|| RedisError::from((redis::ErrorKind::Client, "retries exhausted")))))
        };
        attempt.await
    }

    /// One command.
    pub(crate) async fn cmd<T: FromRedisValue>(&self, op: &'static str, cmd: &Cmd) -> Result<T> {
        self.run(op, Req::Cmd(cmd)).await
    }

    /// A pipeline (one round trip; in Cluster mode all keys must share a slot).
    pub(crate) async fn pipe<T: FromRedisValue>(&self, op: &'static str, pipe: &Pipeline) -> Result<T> {
        self.run(op, Req::Pipe(pipe)).await
    }

    fn waits(&self) -> bool {
        self.cfg.replica_acks > 0 && self.mode != Mode::Cluster
    }

    /// Runs a script (EVALSHA, falling back to EVAL when the server does not
    /// have it cached). A write script with `replica_acks` set is followed by
    /// WAIT in the same round trip; too few acknowledgements is a retryable
    /// error (the write happened on the master; every script is idempotent).
    pub(crate) async fn eval<T: FromRedisValue>(
        &self,
        op: &'static str,
        lua: &Lua,
        keys: &[String],
        args: &[String],
        write: bool,
    ) -> Result<T> {
        if !write && self.mode == Mode::Standalone && sqdata_core::inline::allowed() {
            return self.eval_in_place(op, lua, keys, args);
        }
        match self.eval_once(op, lua, keys, args, write, true).await {
            Err(Error::Backend { message, .. }) if message.to_ascii_uppercase().contains("NOSCRIPT") => {
                self.eval_once(op, lua, keys, args, write, false).await
            }
            other => other,
        }
    }

    /// A read-only script on a blocking connection, on the calling thread
    /// (see `sqdata_core::inline`): one loopback round trip, no hop to the
    /// connection task and back. Bounded by the response timeout and by the
    /// deadline being polled; a pooled connection that turns out dead (the
    /// server restarted) is replaced once — safe, the script only reads.
    fn eval_in_place<T: FromRedisValue>(
        &self,
        op: &'static str,
        lua: &Lua,
        keys: &[String],
        args: &[String],
    ) -> Result<T> {
        let by_sha = |sha: bool| lua.cmd(sha, keys, args);
        let mut retried = false;
        loop {
            let pooled = self.blocking.lock().pop();
            let reused = pooled.is_some();
            let mut con = match pooled {
                Some(c) => c,
                None => self.connect_blocking().map_err(map_err)?,
            };
            let limit = self.blocking_timeout();
            if limit.is_zero() {
                return Err(Error::Timeout { backend: BACKEND, op, after: Duration::ZERO });
            }
            let r =
                con.set_read_timeout(Some(limit)).and_then(|()| con.set_write_timeout(Some(limit))).and_then(|()| {
                    match by_sha(true).query::<Value>(&mut con) {
                        Err(e) if e.code() == Some("NOSCRIPT") => by_sha(false).query::<Value>(&mut con),
                        other => other,
                    }
                });
            match r {
                Ok(v) => {
                    let mut pool = self.blocking.lock();
                    if pool.len() < BLOCKING_POOL {
                        pool.push(con);
                    }
                    return redis::from_redis_value(v).map_err(|e| Error::Backend {
                        backend: BACKEND,
                        message: format!("{op}: unexpected reply: {e}"),
                        retryable: false,
                        source: None,
                    });
                }
                Err(e) if reused && !retried && (e.is_io_error() || e.is_connection_dropped()) && !e.is_timeout() => {
                    // the server restarted (or closed idle connections): every
                    // pooled connection is as dead as this one
                    self.blocking.lock().clear();
                    retried = true;
                }
                Err(e) => return Err(map_err(e)),
            }
        }
    }

    fn blocking_timeout(&self) -> Duration {
        let rt = Duration::from_millis(self.cfg.response_timeout_ms);
        sqdata_core::inline::remaining().map_or(rt, |left| left.min(rt))
    }

    fn connect_blocking(&self) -> std::result::Result<redis::Connection, RedisError> {
        let ct = Duration::from_millis(self.cfg.connect_timeout_ms).min(self.blocking_timeout());
        if ct.is_zero() {
            return Err(RedisError::from((redis::ErrorKind::Io, "deadline passed before connecting")));
        }
        Client::open(self.cfg.url.as_str())?.get_connection_with_timeout(ct)
    }

    async fn eval_once<T: FromRedisValue>(
        &self,
        op: &'static str,
        lua: &Lua,
        keys: &[String],
        args: &[String],
        write: bool,
        by_sha: bool,
    ) -> Result<T> {
        let c = lua.cmd(by_sha, keys, args);
        if !(write && self.waits()) {
            return self.cmd(op, &c).await;
        }
        let mut p = redis::pipe();
        p.add_command(c).cmd("WAIT").arg(self.cfg.replica_acks).arg(self.cfg.replica_ack_timeout_ms);
        let (v, acks): (T, i64) = self.pipe(op, &p).await?;
        if acks < i64::from(self.cfg.replica_acks) {
            return Err(Error::Backend {
                backend: BACKEND,
                message: format!("{op}: {acks} of {} replicas acknowledged the write", self.cfg.replica_acks),
                retryable: true,
                source: None,
            });
        }
        Ok(v)
    }

    async fn scan_node(&self, op: &'static str, pattern: &str, node: Option<(String, u16)>) -> Result<Vec<String>> {
        let mut out = Vec::new();
        let mut cursor: u64 = 0;
        loop {
            let mut c = redis::cmd("SCAN");
            c.arg(cursor).arg("MATCH").arg(pattern).arg("COUNT").arg(1000);
            let (next, keys): (u64, Vec<String>) = match &node {
                None => self.cmd(op, &c).await?,
                Some((host, port)) => self.run(op, Req::Node(&c, host.clone(), *port)).await?,
            };
            out.extend(keys);
            cursor = next;
            if cursor == 0 {
                return Ok(out);
            }
        }
    }

    /// Keys matching `pattern` on every primary (SCAN, never KEYS).
    pub(crate) async fn scan_match(&self, op: &'static str, pattern: &str) -> Result<Vec<String>> {
        if self.mode != Mode::Cluster {
            return self.scan_node(op, pattern, None).await;
        }
        let slots: Value = self.cmd(op, redis::cmd("CLUSTER").arg("SLOTS")).await?;
        let mut masters: Vec<(String, u16)> = Vec::new();
        if let Value::Array(ranges) = slots {
            for r in ranges {
                if let Value::Array(parts) = r
                    && let Some(Value::Array(node)) = parts.get(2)
                {
                    let host = node.first().and_then(|v| redis::from_redis_value::<String>(v.clone()).ok());
                    let port = node.get(1).and_then(|v| redis::from_redis_value::<u16>(v.clone()).ok());
                    if let (Some(h), Some(p)) = (host, port)
                        && !masters.contains(&(h.clone(), p))
                    {
                        masters.push((h, p));
                    }
                }
            }
        }
        let mut all = Vec::new();
        for m in masters {
            all.extend(self.scan_node(op, pattern, Some(m)).await?);
        }
        Ok(all)
    }
}
