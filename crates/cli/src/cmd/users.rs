//! `sqdata user …` and `sqdata api-key …`: the REST API's users, grants and
//! machine keys, straight in the registry (the first admin comes from
//! here). Every change is audited under `cli:<actor>`; a running server
//! sees it within its one-second principal cache.
//!
//! Passwords are read without echo from the terminal (twice), or one line
//! from stdin with `--password-stdin` (scripts); never from an argument,
//! which other users could read in the process list.

use std::io::BufRead;
use std::process::ExitCode;

use anyhow::{Context, bail};
use chrono::{Duration, Utc};
use serde::Serialize;
use sqdata::{AccountCode, ApiKey, AuthStore, Grant, Right, Role, User, UserChange, UserStatus};
use sqdata_server::api::secrets;

use super::Ctx;
use super::registry::Actor;
use crate::out;

#[derive(Debug, clap::Subcommand)]
pub(crate) enum Users {
    /// Create a user (the first admin: `sqdata user add alice --role admin`).
    Add {
        name: String,
        /// admin, trader or viewer.
        #[arg(long)]
        role: String,
        #[command(flatten)]
        password: PasswordArgs,
        #[command(flatten)]
        actor: Actor,
    },
    /// Every user (never a hash).
    List,
    /// Set a user's password (their sessions end).
    Passwd {
        name: String,
        #[command(flatten)]
        password: PasswordArgs,
        #[command(flatten)]
        actor: Actor,
    },
    /// Disable a user (their sessions and keys stop at the next request).
    Disable {
        name: String,
        #[command(flatten)]
        actor: Actor,
    },
    /// Enable a disabled user.
    Enable {
        name: String,
        #[command(flatten)]
        actor: Actor,
    },
    /// Change a user's role.
    Role {
        name: String,
        /// admin, trader or viewer.
        role: String,
        #[command(flatten)]
        actor: Actor,
    },
    /// Grant `read` or `write` on an account, or `none` to revoke.
    Grant {
        name: String,
        #[arg(long)]
        account: String,
        /// read, write or none.
        #[arg(long)]
        right: String,
        #[command(flatten)]
        actor: Actor,
    },
    /// A user's grants.
    Grants { name: String },
    /// Lift a lockout after failed logins.
    Unlock {
        name: String,
        #[command(flatten)]
        actor: Actor,
    },
}

#[derive(Debug, clap::Subcommand)]
pub(crate) enum ApiKeys {
    /// Create a key for a user; the key is printed once and only its hash is kept.
    Create {
        #[arg(long)]
        user: String,
        /// What it is for.
        #[arg(long, default_value = "")]
        label: String,
        /// Only these accounts (comma-separated), within the user's grants.
        #[arg(long, value_delimiter = ',')]
        accounts: Vec<String>,
        /// Days until it stops working (default: never).
        #[arg(long)]
        expires_days: Option<u32>,
        #[command(flatten)]
        actor: Actor,
    },
    /// Keys (of one user).
    List {
        #[arg(long)]
        user: Option<String>,
    },
    /// Revoke a key (by id).
    Revoke {
        id: String,
        #[command(flatten)]
        actor: Actor,
    },
}

#[derive(Debug, clap::Args)]
pub(crate) struct PasswordArgs {
    /// Read the password from the first line of stdin (no prompt).
    #[arg(long)]
    password_stdin: bool,
}

impl PasswordArgs {
    fn read(&self) -> anyhow::Result<String> {
        let p = if self.password_stdin {
            let mut line = String::new();
            std::io::stdin().lock().read_line(&mut line).context("reading the password from stdin")?;
            line.trim_end_matches(['\r', '\n']).to_string()
        } else {
            let a =
                rpassword::prompt_password("password: ").context("reading the password (or use --password-stdin)")?;
            let b = rpassword::prompt_password("again: ")?;
            if a != b {
                bail!("the two passwords differ");
            }
            a
        };
        secrets::check_password(&p)?;
        Ok(p)
    }
}

fn role(s: &str) -> anyhow::Result<Role> {
    Ok(s.parse::<Role>()?)
}

fn actor(a: &Actor) -> String {
    format!("cli:{}", a.name())
}

async fn store(ctx: &Ctx) -> anyhow::Result<std::sync::Arc<sqdata::Registry>> {
    let c = ctx.config()?;
    sqdata::open_registry(&c).await.context("opening the registry")
}

#[derive(Serialize)]
struct UserRow {
    name: String,
    role: Role,
    status: UserStatus,
    failed_logins: u32,
    locked_until: Option<String>,
    created_at: String,
}

impl From<&User> for UserRow {
    fn from(u: &User) -> UserRow {
        UserRow {
            name: u.name.clone(),
            role: u.role,
            status: u.status,
            failed_logins: u.failed_logins,
            locked_until: u.locked_until.filter(|t| *t > Utc::now()).map(|t| t.to_rfc3339()),
            created_at: u.created_at.to_rfc3339(),
        }
    }
}

fn done(ctx: &Ctx, what: String) -> anyhow::Result<ExitCode> {
    out::emit(ctx.format, &serde_json::json!({ "ok": true, "done": what }), || what.clone())?;
    Ok(ExitCode::SUCCESS)
}

async fn change(ctx: &Ctx, name: &str, c: UserChange, a: &Actor, what: &str) -> anyhow::Result<ExitCode> {
    let s = store(ctx).await?;
    match s.update_user(name, &c, &actor(a)).await? {
        Some(_) => done(ctx, format!("{what} {name}")),
        None => bail!("no user {name:?}"),
    }
}

pub(crate) async fn users(ctx: &Ctx, cmd: Users) -> anyhow::Result<ExitCode> {
    match cmd {
        Users::Add { name, role: r, password, actor: a } => {
            sqdata::validate_user_name(&name)?;
            let role = role(&r)?;
            let hash = secrets::hash_password(&password.read()?)?;
            let now = Utc::now();
            let user = User {
                name: name.clone(),
                role,
                status: UserStatus::Active,
                password_hash: hash,
                failed_logins: 0,
                locked_until: None,
                tokens_after: now,
                created_at: now,
            };
            store(ctx).await?.create_user(&user, &actor(&a)).await?;
            done(ctx, format!("added {name} ({role})"))
        }
        Users::List => {
            let rows: Vec<UserRow> = store(ctx).await?.users().await?.iter().map(UserRow::from).collect();
            out::emit(ctx.format, &rows, || {
                rows.iter()
                    .map(|u| {
                        let lock = u.locked_until.as_deref().map(|t| format!(" locked until {t}")).unwrap_or_default();
                        format!("{}\t{}\t{:?}{lock}", u.name, u.role, u.status)
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            })?;
            Ok(ExitCode::SUCCESS)
        }
        Users::Passwd { name, password, actor: a } => {
            let hash = secrets::hash_password(&password.read()?)?;
            change(ctx, &name, UserChange { password_hash: Some(hash), ..Default::default() }, &a, "new password for")
                .await
        }
        Users::Disable { name, actor: a } => {
            change(ctx, &name, UserChange { status: Some(UserStatus::Disabled), ..Default::default() }, &a, "disabled")
                .await
        }
        Users::Enable { name, actor: a } => {
            change(ctx, &name, UserChange { status: Some(UserStatus::Active), ..Default::default() }, &a, "enabled")
                .await
        }
        Users::Role { name, role: r, actor: a } => {
            let role = role(&r)?;
            change(ctx, &name, UserChange { role: Some(role), ..Default::default() }, &a, &format!("role {role} for"))
                .await
        }
        Users::Grant { name, account, right, actor: a } => {
            let s = store(ctx).await?;
            let account = AccountCode::new(&account)?;
            if s.user(&name).await?.is_none() {
                bail!("no user {name:?}");
            }
            if right == "none" {
                let had = s.revoke_grant(&name, &account, &actor(&a)).await?;
                return done(ctx, format!("{} {name}'s grant on {account}", if had { "revoked" } else { "no" }));
            }
            let right: Right = right.parse()?;
            s.set_grant(&Grant { user: name.clone(), account: account.clone(), right }, &actor(&a)).await?;
            done(ctx, format!("granted {} on {account} to {name}", right.as_str()))
        }
        Users::Grants { name } => {
            let g = store(ctx).await?.grants(&name).await?;
            out::emit(ctx.format, &g, || {
                g.iter().map(|g| format!("{}\t{}", g.account, g.right.as_str())).collect::<Vec<_>>().join("\n")
            })?;
            Ok(ExitCode::SUCCESS)
        }
        Users::Unlock { name, actor: a } => {
            if !store(ctx).await?.unlock(&name, &actor(&a)).await? {
                bail!("no user {name:?}");
            }
            done(ctx, format!("unlocked {name}"))
        }
    }
}

#[derive(Serialize)]
struct Created {
    id: String,
    user: String,
    /// Shown once.
    key: String,
    expires_at: Option<String>,
}

pub(crate) async fn api_keys(ctx: &Ctx, cmd: ApiKeys) -> anyhow::Result<ExitCode> {
    match cmd {
        ApiKeys::Create { user, label, accounts, expires_days, actor: a } => {
            let s = store(ctx).await?;
            if s.user(&user).await?.is_none() {
                bail!("no user {user:?}");
            }
            let accounts = if accounts.is_empty() {
                None
            } else {
                Some(accounts.iter().map(AccountCode::new).collect::<sqdata::Result<Vec<_>>>()?)
            };
            let (full, id, hash) = secrets::new_api_key()?;
            let key = ApiKey {
                id: id.clone(),
                user: user.clone(),
                label,
                accounts,
                created_at: Utc::now(),
                expires_at: expires_days.map(|d| Utc::now() + Duration::days(i64::from(d))),
                revoked: false,
            };
            s.create_api_key(&key, &hash, &actor(&a)).await?;
            let c = Created { id, user, key: full, expires_at: key.expires_at.map(|t| t.to_rfc3339()) };
            out::emit(ctx.format, &c, || {
                format!("key {} for {} (shown once; send it as `X-Api-Key`):\n{}", c.id, c.user, c.key)
            })?;
            Ok(ExitCode::SUCCESS)
        }
        ApiKeys::List { user } => {
            let keys = store(ctx).await?.api_keys(user.as_deref()).await?;
            out::emit(ctx.format, &keys, || {
                keys.iter()
                    .map(|k| {
                        let state = if k.revoked {
                            "revoked".to_string()
                        } else {
                            k.expires_at.map(|t| format!("until {}", t.to_rfc3339())).unwrap_or_else(|| "active".into())
                        };
                        format!("{}\t{}\t{}\t{state}", k.id, k.user, k.label)
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            })?;
            Ok(ExitCode::SUCCESS)
        }
        ApiKeys::Revoke { id, actor: a } => {
            if !store(ctx).await?.revoke_api_key(&id, &actor(&a)).await? {
                bail!("no key {id:?}");
            }
            done(ctx, format!("revoked key {id}"))
        }
    }
}
