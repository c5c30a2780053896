//! Users, roles, per-account grants, API keys, sessions and the access log:
//! who may read or change which account through the REST API.
//!
//! The store keeps only what it must: password hashes (Argon2id, computed by
//! the server, never here), API-key and refresh-token hashes (SHA-256 of
//! high-entropy secrets), never a secret itself. Every change of a user,
//! grant, key or session writes its row in the registry's audit trail in the
//! same transaction.

use std::fmt;
use std::str::FromStr;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::ids::AccountCode;

/// A user's role. The effective right on an account is the lesser of the
/// role's and the grant's; admins need no grant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Reads what it is granted.
    Viewer,
    /// Reads and writes what it is granted.
    Trader,
    /// Everything, every account; manages users, grants and keys.
    Admin,
}

impl Role {
    /// Every role, least first.
    pub const ALL: [Role; 3] = [Role::Viewer, Role::Trader, Role::Admin];

    /// The name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Trader => "trader",
            Role::Admin => "admin",
        }
    }

    /// The most a grant can give this role.
    pub const fn ceiling(self) -> Right {
        match self {
            Role::Viewer => Right::Read,
            Role::Trader | Role::Admin => Right::Write,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = Error;
    fn from_str(s: &str) -> Result<Role> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| Error::invalid("role", s, "expected admin, trader or viewer"))
    }
}

/// What a grant allows on one account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Right {
    /// Read it.
    Read,
    /// Read and change it.
    Write,
}

impl Right {
    /// The name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Right::Read => "read",
            Right::Write => "write",
        }
    }
}

impl FromStr for Right {
    type Err = Error;
    fn from_str(s: &str) -> Result<Right> {
        match s {
            "read" => Ok(Right::Read),
            "write" => Ok(Right::Write),
            _ => Err(Error::invalid("right", s, "expected read or write")),
        }
    }
}

/// Whether a user may sign in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UserStatus {
    /// Signs in and acts.
    Active,
    /// Refused everywhere; its sessions and keys stop working.
    Disabled,
}

/// A user name: 3 to 64 of `[A-Za-z0-9_.@-]`, starting with a letter or digit.
pub fn validate_user_name(name: &str) -> Result<()> {
    let ok_len = (3..=64).contains(&name.len());
    let ok_first = name.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric());
    let ok_chars = name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'@' | b'-'));
    if ok_len && ok_first && ok_chars {
        Ok(())
    } else {
        Err(Error::invalid(
            "user",
            name,
            "3 to 64 of letters, digits, '_', '.', '@', '-', starting with a letter or digit",
        ))
    }
}

/// A user as the store keeps it (the password hash included: the server
/// verifies it; nothing ever prints it).
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct User {
    /// The login name.
    pub name: String,
    /// Role.
    pub role: Role,
    /// Status.
    pub status: UserStatus,
    /// Argon2id PHC string.
    #[serde(skip_serializing)]
    pub password_hash: String,
    /// Consecutive failed logins.
    pub failed_logins: u32,
    /// Locked out until then (after too many failures).
    pub locked_until: Option<DateTime<Utc>>,
    /// Tokens issued before this instant are refused (set on a password,
    /// role or status change).
    pub tokens_after: DateTime<Utc>,
    /// Created at.
    pub created_at: DateTime<Utc>,
}

impl fmt::Debug for User {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("User")
            .field("name", &self.name)
            .field("role", &self.role)
            .field("status", &self.status)
            .field("password_hash", &"<redacted>")
            .field("failed_logins", &self.failed_logins)
            .field("locked_until", &self.locked_until)
            .field("tokens_after", &self.tokens_after)
            .finish()
    }
}

/// A change to a user; `None` leaves a field as it is. Any change of
/// password, role or status refuses the tokens issued before it.
#[derive(Clone, Default, PartialEq)]
pub struct UserChange {
    /// New role.
    pub role: Option<Role>,
    /// New status.
    pub status: Option<UserStatus>,
    /// New Argon2id PHC string.
    pub password_hash: Option<String>,
}

impl fmt::Debug for UserChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UserChange")
            .field("role", &self.role)
            .field("status", &self.status)
            .field("password_hash", &self.password_hash.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// A user's right on one account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    /// The user.
    pub user: String,
    /// The account.
    pub account: AccountCode,
    /// What it allows.
    pub right: Right,
}

/// An API key for a machine client. Its secret is shown once at creation;
/// the store keeps a SHA-256 of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApiKey {
    /// Public id (the `sqk_<id>_` part of the key).
    pub id: String,
    /// The user it acts as (its role and grants apply).
    pub user: String,
    /// What it is for.
    pub label: String,
    /// Only these accounts (within the user's grants); `None`: the user's.
    pub accounts: Option<Vec<AccountCode>>,
    /// Created at.
    pub created_at: DateTime<Utc>,
    /// Refused after this.
    pub expires_at: Option<DateTime<Utc>>,
    /// Revoked.
    pub revoked: bool,
}

/// A login session: access tokens name it (`sid`); its refresh token is
/// rotated on every use; it ends 24 h after login whatever happens.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Session {
    /// Public id.
    pub id: String,
    /// The user.
    pub user: String,
    /// Login time.
    pub created_at: DateTime<Utc>,
    /// Absolute end.
    pub expires_at: DateTime<Utc>,
    /// Ended (logout, reuse of a rotated refresh token, an admin).
    pub revoked: bool,
}

/// What presenting a refresh token did.
#[derive(Debug, Clone, PartialEq)]
pub enum Refresh {
    /// It was the current token: replaced by the new one.
    Rotated(Session),
    /// It had already been rotated away: someone replays it. The session is
    /// revoked (and audited) so neither holder can go on.
    Reused(Session),
    /// No such session, it is revoked or expired, or the token is not one of
    /// its tokens.
    Invalid,
}

/// One API request, for the access log (reads; writes go to the audit trail).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AccessEntry {
    /// When.
    pub at: DateTime<Utc>,
    /// `user:<name>`, `key:<id>` or `anonymous`.
    pub principal: String,
    /// HTTP method.
    pub method: String,
    /// The route template (`/api/v1/accounts/{account}/positions`).
    pub route: String,
    /// The account it touched, if any.
    pub account: Option<String>,
    /// The HTTP status.
    pub status: u16,
    /// The client address.
    pub ip: String,
}

/// Users, grants, keys, sessions and the access log. Implemented by
/// `sqdata-sql` on SQLite and MySQL; every change is audited in the same
/// transaction under `actor`.
#[async_trait]
pub trait AuthStore: Send + Sync + fmt::Debug {
    /// Creates a user; an existing name is `InvalidInput` naming `user`.
    async fn create_user(&self, user: &User, actor: &str) -> Result<()>;
    /// A user by name.
    async fn user(&self, name: &str) -> Result<Option<User>>;
    /// Every user, by name.
    async fn users(&self) -> Result<Vec<User>>;
    /// Changes a user; returns it as it is now (`None`: no such user). A
    /// password, role or status change moves `tokens_after` to now and
    /// revokes the user's sessions.
    async fn update_user(&self, name: &str, change: &UserChange, actor: &str) -> Result<Option<User>>;
    /// A failed login: counts it and, at `max_failures` in a row, locks the
    /// user until `lock_until` (audited). Returns the user as it is now.
    async fn login_failed(&self, name: &str, max_failures: u32, lock_until: DateTime<Utc>) -> Result<Option<User>>;
    /// A successful login: the failure count goes back to 0.
    async fn login_succeeded(&self, name: &str) -> Result<()>;
    /// Lifts a lockout; returns whether the user exists.
    async fn unlock(&self, name: &str, actor: &str) -> Result<bool>;

    /// Sets a user's right on an account (replacing an earlier grant).
    async fn set_grant(&self, grant: &Grant, actor: &str) -> Result<()>;
    /// Removes a user's grant on an account; returns whether there was one.
    async fn revoke_grant(&self, user: &str, account: &AccountCode, actor: &str) -> Result<bool>;
    /// A user's grants, by account.
    async fn grants(&self, user: &str) -> Result<Vec<Grant>>;

    /// Stores a new key with the SHA-256 (hex) of its secret.
    async fn create_api_key(&self, key: &ApiKey, secret_hash: &str, actor: &str) -> Result<()>;
    /// A key and the hash of its secret.
    async fn api_key(&self, id: &str) -> Result<Option<(ApiKey, String)>>;
    /// Keys, of one user or all.
    async fn api_keys(&self, user: Option<&str>) -> Result<Vec<ApiKey>>;
    /// Revokes a key; returns whether it existed.
    async fn revoke_api_key(&self, id: &str, actor: &str) -> Result<bool>;

    /// Starts a session whose current refresh token hashes to `refresh_hash`.
    async fn create_session(&self, session: &Session, refresh_hash: &str) -> Result<()>;
    /// A session.
    async fn session(&self, id: &str) -> Result<Option<Session>>;
    /// Presents a refresh token (its hash): rotated to `new_hash` if current,
    /// the session revoked if it was rotated away before (reuse), else invalid.
    /// Atomic: two concurrent presentations of one token rotate once.
    async fn refresh(
        &self,
        session_id: &str,
        presented_hash: &str,
        new_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Refresh>;
    /// Ends a session; returns whether it was open.
    async fn revoke_session(&self, id: &str, actor: &str) -> Result<bool>;

    /// Appends access-log rows (one transaction).
    async fn log_access(&self, entries: &[AccessEntry]) -> Result<()>;
    /// The newest access-log rows, at most `limit`.
    async fn access_log(&self, limit: u32) -> Result<Vec<AccessEntry>>;
    /// An audit row for an event that changes nothing stored here (a login,
    /// a failed login, a write through the API about to be made).
    async fn audit_event(&self, actor: &str, action: &str, entity: &str, detail: serde_json::Value) -> Result<()>;
}
