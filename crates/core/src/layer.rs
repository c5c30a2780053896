//! [`Observed`]: the one layer that measures every store call and bounds
//! its time, applied once where stores are opened (opendal's layers, e.g.
//! `layers/timeout` and `layers/metrics`, have this shape).
//!
//! For every call of every store trait it records
//! `sqdata_op_duration_seconds{backend, op}` and, on failure,
//! `sqdata_op_errors_total{backend, op, kind}`; with a timeout, a call that
//! has not answered in time returns [`Error::Timeout`] (retryable, so the
//! hybrid falls back to the files). [`deadline`] is the same timeout for
//! code that is not a store call (the hybrid's primary bound, background
//! flushers).
//!
//! The impls are `#[deny(clippy::missing_trait_methods)]`: a method added
//! to a trait cannot silently take its default here.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};

use crate::asset::{AssetRow, DateRange};
use crate::auth::{AccessEntry, ApiKey, AuthStore, Grant, Refresh, Session, User, UserChange};
use crate::bar::{Bar, BarKey, BarOverview, BarSeries, BarWriteMode, TimeRange};
use crate::code::Code;
use crate::deal::{AggregateQuery, Deal, DealAggregate, DealQuery, Page, RecordOutcome};
use crate::error::{Error, Result};
use crate::ids::{AccountCode, BookId};
use crate::obs::{OP_DURATION, OP_ERRORS};
use crate::position::{ExtremeChange, PositionSnapshot, PriceTick, ReconcileReport};
use crate::quote::Quote;
use crate::registry::{Account, AuditEntry, AuditQuery, ParamVersion, RegistryDump, RegistryStore, Strategy};
use crate::store::{AssetStore, BackendHealth, BarStore, DealStore, HealthCheck, PositionStore, QuoteStore};

/// Runs `fut` for at most `after`; past it, [`Error::Timeout`] naming the
/// backend and the operation (the future is dropped).
pub async fn deadline<T>(
    backend: &'static str,
    op: &'static str,
    after: Duration,
    fut: impl Future<Output = Result<T>>,
) -> Result<T> {
    // Blocking code polled under this deadline (see `inline`) sees it too.
    let at = std::time::Instant::now()
        .checked_add(after)
        .unwrap_or_else(|| std::time::Instant::now() + Duration::from_secs(86_400 * 365));
    let fut = crate::inline::with_deadline(at, fut);
    match tokio::time::timeout(after, fut).await {
        Ok(r) => r,
        Err(_) => Err(Error::Timeout { backend, op, after }),
    }
}

/// A store measured and bounded: see the module docs.
#[derive(Debug)]
pub struct Observed<S: ?Sized> {
    backend: &'static str,
    timeout: Option<Duration>,
    inner: Arc<S>,
}

impl<S: ?Sized> Observed<S> {
    /// Wraps `inner`, labelling its metrics `backend`; calls slower than
    /// `timeout` fail with [`Error::Timeout`].
    pub fn new(backend: &'static str, timeout: Option<Duration>, inner: Arc<S>) -> Observed<S> {
        Observed { backend, timeout, inner }
    }

    /// The wrapped store.
    pub fn inner(&self) -> &Arc<S> {
        &self.inner
    }

    /// The backend label.
    pub fn backend(&self) -> &'static str {
        self.backend
    }

    async fn call<T>(&self, op: &'static str, fut: impl Future<Output = Result<T>>) -> Result<T> {
        let t = Instant::now();
        let r = match self.timeout {
            Some(after) => deadline(self.backend, op, after, fut).await,
            None => fut.await,
        };
        metrics::histogram!(OP_DURATION, "backend" => self.backend, "op" => op).record(t.elapsed().as_secs_f64());
        if let Err(e) = &r {
            metrics::counter!(OP_ERRORS, "backend" => self.backend, "op" => op, "kind" => e.kind()).increment(1);
        }
        r
    }
}

#[async_trait]
#[deny(clippy::missing_trait_methods)]
impl<S: PositionStore + ?Sized> PositionStore for Observed<S> {
    async fn snapshot(&self, book: &BookId) -> Result<PositionSnapshot> {
        self.call("snapshot", self.inner.snapshot(book)).await
    }
    async fn held_days(&self, book: &BookId, codes: &[Code]) -> Result<BTreeMap<Code, Option<u32>>> {
        self.call("held_days", self.inner.held_days(book, codes)).await
    }
    async fn new_held(&self, book: &BookId, codes: &[Code]) -> Result<()> {
        self.call("new_held", self.inner.new_held(book, codes)).await
    }
    async fn mark_sold(&self, book: &BookId, code: Code) -> Result<()> {
        self.call("mark_sold", self.inner.mark_sold(book, code)).await
    }
    async fn del_held_days(&self, book: &BookId, codes: &[Code]) -> Result<()> {
        self.call("del_held_days", self.inner.del_held_days(book, codes)).await
    }
    async fn reconcile(&self, book: &BookId, broker_codes: &[Code]) -> Result<ReconcileReport> {
        self.call("reconcile", self.inner.reconcile(book, broker_codes)).await
    }
    async fn inc_held_days(&self, book: &BookId, today: NaiveDate) -> Result<bool> {
        self.call("inc_held_days", self.inner.inc_held_days(book, today)).await
    }
    async fn update_extremes(&self, book: &BookId, ticks: &[PriceTick]) -> Result<Vec<ExtremeChange>> {
        self.call("update_extremes", self.inner.update_extremes(book, ticks)).await
    }
    async fn replace_book(&self, book: &BookId, snapshot: &PositionSnapshot) -> Result<()> {
        self.call("replace_book", self.inner.replace_book(book, snapshot)).await
    }
    async fn delete_book(&self, book: &BookId) -> Result<()> {
        self.call("delete_book", PositionStore::delete_book(&*self.inner, book)).await
    }
    async fn list_books(&self) -> Result<Vec<BookId>> {
        self.call("list_books", PositionStore::list_books(&*self.inner)).await
    }
    async fn instance(&self) -> Result<Option<String>> {
        self.call("instance", self.inner.instance()).await
    }
}

#[async_trait]
#[deny(clippy::missing_trait_methods)]
impl<S: QuoteStore + ?Sized> QuoteStore for Observed<S> {
    async fn put_quotes(&self, quotes: &[Quote]) -> Result<()> {
        self.call("put_quotes", self.inner.put_quotes(quotes)).await
    }
    async fn get_quotes(&self, codes: &[Code]) -> Result<Vec<Quote>> {
        self.call("get_quotes", self.inner.get_quotes(codes)).await
    }
}

#[async_trait]
#[deny(clippy::missing_trait_methods)]
impl<S: DealStore + ?Sized> DealStore for Observed<S> {
    async fn record_batch(&self, deals: &[Deal]) -> Result<RecordOutcome> {
        self.call("record_batch", self.inner.record_batch(deals)).await
    }
    async fn query(&self, query: &DealQuery) -> Result<Page<Deal>> {
        self.call("query", self.inner.query(query)).await
    }
    async fn aggregate(&self, query: &AggregateQuery) -> Result<Vec<DealAggregate>> {
        self.call("aggregate", self.inner.aggregate(query)).await
    }
    async fn delete_book(&self, book: &BookId) -> Result<u64> {
        self.call("delete_book", DealStore::delete_book(&*self.inner, book)).await
    }
    async fn delete_deals(&self, book: &BookId, ids: &[String]) -> Result<u64> {
        self.call("delete_deals", self.inner.delete_deals(book, ids)).await
    }
    async fn replace_deals(&self, book: &BookId, deals: &[Deal]) -> Result<u64> {
        self.call("replace_deals", self.inner.replace_deals(book, deals)).await
    }
    async fn list_books(&self) -> Result<Vec<BookId>> {
        self.call("list_books", DealStore::list_books(&*self.inner)).await
    }
}

#[async_trait]
#[deny(clippy::missing_trait_methods)]
impl<S: AssetStore + ?Sized> AssetStore for Observed<S> {
    async fn upsert_assets(&self, book: &BookId, rows: &[AssetRow]) -> Result<()> {
        self.call("upsert_assets", self.inner.upsert_assets(book, rows)).await
    }
    async fn delete_assets(&self, book: &BookId, dates: &[NaiveDate]) -> Result<u64> {
        self.call("delete_assets", self.inner.delete_assets(book, dates)).await
    }
    async fn assets(&self, book: &BookId, range: DateRange) -> Result<Vec<AssetRow>> {
        self.call("assets", self.inner.assets(book, range)).await
    }
    async fn delete_book(&self, book: &BookId) -> Result<()> {
        self.call("delete_book", AssetStore::delete_book(&*self.inner, book)).await
    }
    async fn list_books(&self) -> Result<Vec<BookId>> {
        self.call("list_books", AssetStore::list_books(&*self.inner)).await
    }
}

#[async_trait]
#[deny(clippy::missing_trait_methods)]
impl<S: BarStore + ?Sized> BarStore for Observed<S> {
    async fn save_bars(&self, series: &BarSeries, mode: BarWriteMode) -> Result<u64> {
        self.call("save_bars", self.inner.save_bars(series, mode)).await
    }
    async fn save_bars_batch(&self, series: &[BarSeries], mode: BarWriteMode) -> Result<u64> {
        self.call("save_bars_batch", self.inner.save_bars_batch(series, mode)).await
    }
    async fn load_bars(&self, key: &BarKey, range: TimeRange) -> Result<Vec<Bar>> {
        self.call("load_bars", self.inner.load_bars(key, range)).await
    }
    async fn load_bars_batch(&self, keys: &[BarKey], range: TimeRange) -> Result<Vec<BarSeries>> {
        self.call("load_bars_batch", self.inner.load_bars_batch(keys, range)).await
    }
    async fn overview(&self) -> Result<Vec<BarOverview>> {
        self.call("overview", self.inner.overview()).await
    }
    async fn delete_bars(&self, key: &BarKey, range: TimeRange) -> Result<u64> {
        self.call("delete_bars", self.inner.delete_bars(key, range)).await
    }
}

#[async_trait]
#[deny(clippy::missing_trait_methods)]
impl<S: HealthCheck + ?Sized> HealthCheck for Observed<S> {
    async fn health(&self) -> BackendHealth {
        // Never fails and has its own latency figure; bounded all the same.
        let t = Instant::now();
        let h = match self.timeout {
            Some(after) => match tokio::time::timeout(after, self.inner.health()).await {
                Ok(h) => h,
                Err(_) => BackendHealth {
                    backend: self.backend.to_string(),
                    up: false,
                    latency: after,
                    details: BTreeMap::new(),
                    error: Some(format!("no answer within {after:?}")),
                },
            },
            None => self.inner.health().await,
        };
        metrics::histogram!(OP_DURATION, "backend" => self.backend, "op" => "health").record(t.elapsed().as_secs_f64());
        h
    }
}

#[async_trait]
#[deny(clippy::missing_trait_methods)]
impl<S: RegistryStore + ?Sized> RegistryStore for Observed<S> {
    async fn upsert_account(&self, account: &Account, actor: &str) -> Result<()> {
        self.call("upsert_account", self.inner.upsert_account(account, actor)).await
    }
    async fn account(&self, id: &AccountCode) -> Result<Option<Account>> {
        self.call("account", self.inner.account(id)).await
    }
    async fn accounts(&self) -> Result<Vec<Account>> {
        self.call("accounts", self.inner.accounts()).await
    }
    async fn delete_account(&self, id: &AccountCode, actor: &str) -> Result<bool> {
        self.call("delete_account", self.inner.delete_account(id, actor)).await
    }
    async fn upsert_strategy(&self, strategy: &Strategy, actor: &str) -> Result<()> {
        self.call("upsert_strategy", self.inner.upsert_strategy(strategy, actor)).await
    }
    async fn strategy(&self, book: &BookId) -> Result<Option<Strategy>> {
        self.call("strategy", self.inner.strategy(book)).await
    }
    async fn strategies(&self, account: Option<&AccountCode>) -> Result<Vec<Strategy>> {
        self.call("strategies", self.inner.strategies(account)).await
    }
    async fn delete_strategy(&self, book: &BookId, actor: &str) -> Result<bool> {
        self.call("delete_strategy", self.inner.delete_strategy(book, actor)).await
    }
    async fn put_params(
        &self,
        book: &BookId,
        params: &serde_json::Map<String, serde_json::Value>,
        actor: &str,
        note: &str,
    ) -> Result<ParamVersion> {
        self.call("put_params", self.inner.put_params(book, params, actor, note)).await
    }
    async fn put_params_if(
        &self,
        book: &BookId,
        params: &serde_json::Map<String, serde_json::Value>,
        actor: &str,
        note: &str,
        expected: u32,
    ) -> Result<ParamVersion> {
        self.call("put_params_if", self.inner.put_params_if(book, params, actor, note, expected)).await
    }
    async fn params(&self, book: &BookId, version: Option<u32>) -> Result<Option<ParamVersion>> {
        self.call("params", self.inner.params(book, version)).await
    }
    async fn param_history(&self, book: &BookId) -> Result<Vec<ParamVersion>> {
        self.call("param_history", self.inner.param_history(book)).await
    }
    async fn rollback_params(&self, book: &BookId, to: u32, actor: &str) -> Result<ParamVersion> {
        self.call("rollback_params", self.inner.rollback_params(book, to, actor)).await
    }
    async fn audit(&self, query: &AuditQuery) -> Result<Vec<AuditEntry>> {
        self.call("audit", self.inner.audit(query)).await
    }
    async fn dump(&self) -> Result<RegistryDump> {
        self.call("dump", self.inner.dump()).await
    }
    async fn restore_dump(&self, dump: &RegistryDump, actor: &str) -> Result<()> {
        self.call("restore_dump", self.inner.restore_dump(dump, actor)).await
    }
}

#[async_trait]
#[deny(clippy::missing_trait_methods)]
impl<S: AuthStore + ?Sized> AuthStore for Observed<S> {
    async fn create_user(&self, user: &User, actor: &str) -> Result<()> {
        self.call("create_user", self.inner.create_user(user, actor)).await
    }
    async fn user(&self, name: &str) -> Result<Option<User>> {
        self.call("user", self.inner.user(name)).await
    }
    async fn users(&self) -> Result<Vec<User>> {
        self.call("users", self.inner.users()).await
    }
    async fn update_user(&self, name: &str, change: &UserChange, actor: &str) -> Result<Option<User>> {
        self.call("update_user", self.inner.update_user(name, change, actor)).await
    }
    async fn login_failed(&self, name: &str, max_failures: u32, lock_until: DateTime<Utc>) -> Result<Option<User>> {
        self.call("login_failed", self.inner.login_failed(name, max_failures, lock_until)).await
    }
    async fn login_succeeded(&self, name: &str) -> Result<()> {
        self.call("login_succeeded", self.inner.login_succeeded(name)).await
    }
    async fn unlock(&self, name: &str, actor: &str) -> Result<bool> {
        self.call("unlock", self.inner.unlock(name, actor)).await
    }
    async fn set_grant(&self, grant: &Grant, actor: &str) -> Result<()> {
        self.call("set_grant", self.inner.set_grant(grant, actor)).await
    }
    async fn revoke_grant(&self, user: &str, account: &AccountCode, actor: &str) -> Result<bool> {
        self.call("revoke_grant", self.inner.revoke_grant(user, account, actor)).await
    }
    async fn grants(&self, user: &str) -> Result<Vec<Grant>> {
        self.call("grants", self.inner.grants(user)).await
    }
    async fn create_api_key(&self, key: &ApiKey, secret_hash: &str, actor: &str) -> Result<()> {
        self.call("create_api_key", self.inner.create_api_key(key, secret_hash, actor)).await
    }
    async fn api_key(&self, id: &str) -> Result<Option<(ApiKey, String)>> {
        self.call("api_key", self.inner.api_key(id)).await
    }
    async fn api_keys(&self, user: Option<&str>) -> Result<Vec<ApiKey>> {
        self.call("api_keys", self.inner.api_keys(user)).await
    }
    async fn revoke_api_key(&self, id: &str, actor: &str) -> Result<bool> {
        self.call("revoke_api_key", self.inner.revoke_api_key(id, actor)).await
    }
    async fn create_session(&self, session: &Session, refresh_hash: &str) -> Result<()> {
        self.call("create_session", self.inner.create_session(session, refresh_hash)).await
    }
    async fn session(&self, id: &str) -> Result<Option<Session>> {
        self.call("session", self.inner.session(id)).await
    }
    async fn refresh(
        &self,
        session_id: &str,
        presented_hash: &str,
        new_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Refresh> {
        self.call("refresh", self.inner.refresh(session_id, presented_hash, new_hash, now)).await
    }
    async fn revoke_session(&self, id: &str, actor: &str) -> Result<bool> {
        self.call("revoke_session", self.inner.revoke_session(id, actor)).await
    }
    async fn log_access(&self, entries: &[AccessEntry]) -> Result<()> {
        self.call("log_access", self.inner.log_access(entries)).await
    }
    async fn access_log(&self, limit: u32) -> Result<Vec<AccessEntry>> {
        self.call("access_log", self.inner.access_log(limit)).await
    }
    async fn audit_event(&self, actor: &str, action: &str, entity: &str, detail: serde_json::Value) -> Result<()> {
        self.call("audit_event", self.inner.audit_event(actor, action, entity, detail)).await
    }
}
