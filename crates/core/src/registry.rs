//! The relational domain: accounts, the strategies (books) inside them,
//! versioned strategy parameters and the audit trail of every change.
//!
//! MySQL holds it in the full tier and SQLite in the embedded default; both
//! run the same code (`sqdata-sql`). Every change writes its audit row in the
//! same transaction, so the trail never misses a change that happened.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::ids::{AccountCode, BookId};

/// Largest serialized `meta` or `params` object, in bytes.
pub const MAX_DOCUMENT_BYTES: usize = 64 * 1024;
/// Most audit rows one query returns.
pub const MAX_AUDIT_LIMIT: u32 = 10_000;

/// A broker account.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Account {
    /// The broker's account id.
    pub id: AccountCode,
    /// A display name.
    #[serde(default)]
    pub name: String,
    /// The broker or gateway (`qmt`, `gm`, …).
    #[serde(default)]
    pub broker: String,
    /// Anything else, as a JSON object.
    #[serde(default)]
    pub meta: Map<String, Value>,
}

/// One strategy: a book inside an account.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Strategy {
    /// The account and the book's name.
    pub book: BookId,
    /// What it does (its display name).
    #[serde(default)]
    pub description: String,
    /// Its type (`wencai`, `pwc`, `grid`, …), free text.
    #[serde(default)]
    pub kind: String,
    /// Whether it may trade.
    #[serde(default = "yes")]
    pub enabled: bool,
}

fn yes() -> bool {
    true
}

/// One stored version of a strategy's parameters. Versions count from 1 and
/// are never rewritten: a rollback stores the old parameters as a new version.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ParamVersion {
    /// The strategy.
    pub book: BookId,
    /// 1, 2, 3, … per book.
    pub version: u32,
    /// The parameters, a JSON object.
    pub params: Map<String, Value>,
    /// Who stored it.
    pub actor: String,
    /// Why.
    pub note: String,
    /// When (millisecond precision).
    pub created_at: DateTime<Utc>,
}

/// One change, as recorded in the audit trail.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// Increasing with time within one store.
    pub id: i64,
    /// When (millisecond precision).
    pub at: DateTime<Utc>,
    /// Who.
    pub actor: String,
    /// `account.upsert`, `account.delete`, `strategy.upsert`,
    /// `strategy.delete`, `params.put`, `params.rollback`.
    pub action: String,
    /// `account:<id>` or `book:<account>/<book>`.
    pub entity: String,
    /// The new state (or the version written), as JSON.
    pub detail: Value,
}

/// Which audit rows to return, newest first.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// Only this entity (`account:<id>` or `book:<account>/<book>`).
    #[serde(default)]
    pub entity: Option<String>,
    /// Only changes by this actor.
    #[serde(default)]
    pub actor: Option<String>,
    /// Only changes at or after this time.
    #[serde(default)]
    pub since: Option<DateTime<Utc>>,
    /// At most this many rows (1..=[`MAX_AUDIT_LIMIT`]).
    #[serde(default = "default_limit")]
    pub limit: u32,
}

fn default_limit() -> u32 {
    100
}

impl Default for AuditQuery {
    fn default() -> Self {
        AuditQuery { entity: None, actor: None, since: None, limit: default_limit() }
    }
}

impl AuditQuery {
    /// Rejects a limit of 0 or over [`MAX_AUDIT_LIMIT`].
    pub fn validate(&self) -> Result<()> {
        if self.limit == 0 || self.limit > MAX_AUDIT_LIMIT {
            return Err(Error::invalid("limit", self.limit, format!("must be 1 to {MAX_AUDIT_LIMIT}")));
        }
        Ok(())
    }
}

/// The whole registry, for a backup: every account, strategy, parameter
/// version and audit row (each list in key order, audit oldest first).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistryDump {
    /// Accounts by id.
    pub accounts: Vec<Account>,
    /// Strategies by (account, book).
    pub strategies: Vec<Strategy>,
    /// Parameter versions by (account, book, version).
    pub params: Vec<ParamVersion>,
    /// The audit trail, oldest first.
    pub audit: Vec<AuditEntry>,
}

impl RegistryDump {
    /// Every row valid, every strategy's account and every version's
    /// strategy present, versions 1, 2, 3, … per book.
    pub fn validate(&self) -> Result<()> {
        let accounts: std::collections::BTreeSet<&AccountCode> = self.accounts.iter().map(|a| &a.id).collect();
        for a in &self.accounts {
            a.validate()?;
        }
        let mut books = std::collections::BTreeMap::new();
        for s in &self.strategies {
            s.validate()?;
            if !accounts.contains(&s.book.account) {
                return Err(Error::invalid("account", &s.book.account, format!("strategy {} has no account", s.book)));
            }
            books.insert(&s.book, 0u32);
        }
        for p in &self.params {
            validate_document("params", &p.params)?;
            let Some(last) = books.get_mut(&p.book) else {
                return Err(Error::invalid("book", &p.book, "parameters of a strategy that is not in the dump"));
            };
            if p.version != *last + 1 {
                return Err(Error::invalid("version", p.version, format!("{} versions must run 1, 2, 3, …", p.book)));
            }
            *last = p.version;
        }
        Ok(())
    }
}

/// One difference between two parameter documents.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ParamChange {
    /// The key path, `trail.back` for nested objects.
    pub path: String,
    /// The value before (absent: added).
    pub before: Option<Value>,
    /// The value after (absent: removed).
    pub after: Option<Value>,
}

/// What changed from `before` to `after`, by key path in key order; nested
/// objects are compared key by key, anything else as a whole value.
pub fn diff_params(before: &Map<String, Value>, after: &Map<String, Value>) -> Vec<ParamChange> {
    fn walk(prefix: &str, a: &Map<String, Value>, b: &Map<String, Value>, out: &mut Vec<ParamChange>) {
        let keys: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
        for k in keys {
            let path = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
            match (a.get(k), b.get(k)) {
                (Some(Value::Object(x)), Some(Value::Object(y))) => walk(&path, x, y, out),
                (x, y) if x == y => {}
                (x, y) => out.push(ParamChange { path, before: x.cloned(), after: y.cloned() }),
            }
        }
    }
    let mut out = Vec::new();
    walk("", before, after, &mut out);
    out
}

/// The audit entity of an account.
pub fn account_entity(id: &AccountCode) -> String {
    format!("account:{id}")
}

/// The audit entity of a book.
pub fn book_entity(book: &BookId) -> String {
    format!("book:{book}")
}

fn check_text(field: &str, s: &str, max: usize) -> Result<()> {
    if s.len() > max {
        return Err(Error::invalid(field, s, format!("at most {max} bytes")));
    }
    if s.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
        return Err(Error::invalid(field, s, "control characters are not allowed"));
    }
    Ok(())
}

/// Who makes a change: 1 to 64 printable characters.
pub fn validate_actor(actor: &str) -> Result<()> {
    if actor.trim().is_empty() {
        return Err(Error::invalid("actor", actor, "must not be empty"));
    }
    check_text("actor", actor, 64)
}

/// A JSON object small enough to store, with no non-finite numbers.
pub fn validate_document(field: &str, doc: &Map<String, Value>) -> Result<()> {
    let text = serde_json::to_string(doc).map_err(|e| Error::invalid(field, "<object>", e.to_string()))?;
    if text.len() > MAX_DOCUMENT_BYTES {
        return Err(Error::invalid(
            field,
            format!("{} bytes", text.len()),
            format!("at most {MAX_DOCUMENT_BYTES} bytes"),
        ));
    }
    Ok(())
}

impl Account {
    /// Checks the free-text fields and the meta object.
    pub fn validate(&self) -> Result<()> {
        check_text("name", &self.name, 128)?;
        check_text("broker", &self.broker, 64)?;
        validate_document("meta", &self.meta)
    }
}

impl Strategy {
    /// Checks the description and the type.
    pub fn validate(&self) -> Result<()> {
        check_text("description", &self.description, 4096)?;
        check_text("kind", &self.kind, 64)
    }
}

/// Accounts, strategies, versioned parameters and the audit trail.
///
/// Every mutation takes the actor making it and is transactional: the change
/// and its audit row land together or not at all. "Not found" is `None` (or
/// `false` for a delete), never an error.
#[async_trait]
pub trait RegistryStore: Send + Sync + std::fmt::Debug {
    /// Creates or replaces an account.
    async fn upsert_account(&self, account: &Account, actor: &str) -> Result<()>;
    /// One account.
    async fn account(&self, id: &AccountCode) -> Result<Option<Account>>;
    /// Every account, by id.
    async fn accounts(&self) -> Result<Vec<Account>>;
    /// Deletes an account that has no strategies left (an account with
    /// strategies is refused, naming the field `account`).
    async fn delete_account(&self, id: &AccountCode, actor: &str) -> Result<bool>;

    /// Creates or replaces a strategy; its account must exist.
    async fn upsert_strategy(&self, strategy: &Strategy, actor: &str) -> Result<()>;
    /// One strategy.
    async fn strategy(&self, book: &BookId) -> Result<Option<Strategy>>;
    /// Strategies, by account and book; all accounts when `account` is `None`.
    async fn strategies(&self, account: Option<&AccountCode>) -> Result<Vec<Strategy>>;
    /// Deletes a strategy and its parameter history (the audit trail keeps it).
    async fn delete_strategy(&self, book: &BookId, actor: &str) -> Result<bool>;

    /// Stores a new version of a strategy's parameters (the strategy must
    /// exist). Concurrent writers get distinct, consecutive versions.
    async fn put_params(
        &self,
        book: &BookId,
        params: &Map<String, Value>,
        actor: &str,
        note: &str,
    ) -> Result<ParamVersion>;
    /// As [`put_params`](RegistryStore::put_params), only if the latest
    /// version is still `expected` (0: none yet); otherwise
    /// [`Error::Conflict`] and nothing stored. Atomic against concurrent
    /// writers (an `If-Match` that cannot lose updates).
    async fn put_params_if(
        &self,
        book: &BookId,
        params: &Map<String, Value>,
        actor: &str,
        note: &str,
        expected: u32,
    ) -> Result<ParamVersion>;
    /// The latest version, or the given one.
    async fn params(&self, book: &BookId, version: Option<u32>) -> Result<Option<ParamVersion>>;
    /// Every version, oldest first.
    async fn param_history(&self, book: &BookId) -> Result<Vec<ParamVersion>>;
    /// Stores version `to`'s parameters again as the newest version. A
    /// version that does not exist is refused, naming the field `version`.
    async fn rollback_params(&self, book: &BookId, to: u32, actor: &str) -> Result<ParamVersion>;

    /// The audit trail, newest first.
    async fn audit(&self, query: &AuditQuery) -> Result<Vec<AuditEntry>>;

    /// Everything, for a backup.
    async fn dump(&self) -> Result<RegistryDump>;
    /// Makes the registry exactly `dump` (a restore) in one transaction, then
    /// appends a `registry.restore` audit row by `actor`.
    async fn restore_dump(&self, dump: &RegistryDump, actor: &str) -> Result<()>;
}

/// Compositions of [`RegistryStore`] calls (object_store's `ObjectStoreExt`
/// idea): every registry gets them, no implementor writes them.
#[async_trait]
pub trait RegistryStoreExt: RegistryStore {
    /// Creates the book's account (blank names) and strategy (enabled, with
    /// `description`) when missing; what exists is kept. Returns (account
    /// added, strategy added).
    async fn ensure_book(&self, book: &BookId, description: &str, actor: &str) -> Result<(bool, bool)> {
        let account = self.account(&book.account).await?.is_none();
        if account {
            let a = Account { id: book.account.clone(), name: String::new(), broker: String::new(), meta: Map::new() };
            self.upsert_account(&a, actor).await?;
        }
        let strategy = self.strategy(book).await?.is_none();
        if strategy {
            let s =
                Strategy { book: book.clone(), description: description.into(), kind: String::new(), enabled: true };
            self.upsert_strategy(&s, actor).await?;
        }
        Ok((account, strategy))
    }
}

impl<T: RegistryStore + ?Sized> RegistryStoreExt for T {}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn diff_names_nested_paths_and_kinds_of_change() {
        let a =
            obj(serde_json::json!({"stop": 0.05, "trail": {"from": 1.1, "back": 0.02}, "old": true, "list": [1, 2]}));
        let b =
            obj(serde_json::json!({"stop": 0.04, "trail": {"from": 1.1, "back": 0.03}, "new": "x", "list": [1, 2]}));
        let d = diff_params(&a, &b);
        let paths: Vec<&str> = d.iter().map(|c| c.path.as_str()).collect();
        assert_eq!(paths, ["new", "old", "stop", "trail.back"]);
        assert_eq!((d[0].before.clone(), d[0].after.clone()), (None, Some(serde_json::json!("x"))));
        assert_eq!((d[1].before.clone(), d[1].after.clone()), (Some(serde_json::json!(true)), None));
        assert!(diff_params(&a, &a).is_empty());
    }

    #[test]
    fn dump_validation_names_the_field() {
        let b = BookId::new("a1", "b1").unwrap();
        let s = Strategy { book: b.clone(), description: String::new(), kind: String::new(), enabled: true };
        let d = RegistryDump { strategies: vec![s], ..Default::default() };
        assert!(matches!(d.validate(), Err(Error::InvalidInput { field, .. }) if field == "account"));
    }
}
