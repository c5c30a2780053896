//! `sqdata registry …`: accounts, strategies, versioned parameters, audit.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use sqdata::registry::{account_entity, book_entity};
use sqdata::serde_json::{Map, Value};
use sqdata::{Account, AccountCode, AuditQuery, BookId, RegistryStore, RegistryStoreExt, Strategy};

use super::{BookArgs, Ctx};
use crate::out;

/// Who makes a change (recorded in the audit trail).
#[derive(Debug, clap::Args)]
pub(crate) struct Actor {
    /// Your name in the audit trail (default: $SQDATA_ACTOR, else $USER).
    #[arg(long, env = "SQDATA_ACTOR")]
    actor: Option<String>,
}

impl Actor {
    pub(crate) fn name(&self) -> String {
        self.actor.clone().or_else(|| std::env::var("USER").ok()).unwrap_or_else(|| "sqdata-cli".into())
    }
}

#[derive(Debug, clap::Subcommand)]
pub(crate) enum Registry {
    /// Every account.
    Accounts,
    /// Create or replace an account.
    AccountPut {
        #[arg(long)]
        account: String,
        #[arg(long, default_value = "")]
        name: String,
        /// qmt, gm, …
        #[arg(long, default_value = "")]
        broker: String,
        /// Extra facts as a JSON object.
        #[arg(long)]
        meta: Option<String>,
        #[command(flatten)]
        actor: Actor,
    },
    /// Delete an account that has no strategies left.
    AccountDelete {
        #[arg(long)]
        account: String,
        #[command(flatten)]
        actor: Actor,
    },
    /// Strategies (of one account).
    Strategies {
        #[arg(long)]
        account: Option<String>,
    },
    /// Create or replace a strategy (its account must exist).
    StrategyPut {
        #[command(flatten)]
        book: BookArgs,
        /// Its display name.
        #[arg(long, default_value = "")]
        description: String,
        /// Its type (wencai, pwc, …).
        #[arg(long, default_value = "")]
        kind: String,
        /// Not allowed to trade.
        #[arg(long)]
        disabled: bool,
        #[command(flatten)]
        actor: Actor,
    },
    /// Delete a strategy and its parameter history (the audit trail keeps it).
    StrategyDelete {
        #[command(flatten)]
        book: BookArgs,
        #[command(flatten)]
        actor: Actor,
    },
    /// A strategy's parameters: the latest version, or `--version N`.
    Params {
        #[command(flatten)]
        book: BookArgs,
        #[arg(long)]
        version: Option<u32>,
    },
    /// Store a new version of a strategy's parameters.
    ParamsPut {
        #[command(flatten)]
        book: BookArgs,
        /// A JSON file holding one object.
        #[arg(long, conflicts_with = "json")]
        file: Option<PathBuf>,
        /// The object inline.
        #[arg(long)]
        json: Option<String>,
        /// Why.
        #[arg(long, default_value = "")]
        note: String,
        #[command(flatten)]
        actor: Actor,
    },
    /// Every version, oldest first.
    ParamsHistory {
        #[command(flatten)]
        book: BookArgs,
    },
    /// What changed between two versions (default: the one before `--to` and `--to`; `--to` defaults to the latest).
    ParamsDiff {
        #[command(flatten)]
        book: BookArgs,
        #[arg(long)]
        from: Option<u32>,
        #[arg(long)]
        to: Option<u32>,
    },
    /// Store version N's parameters again as the newest version.
    ParamsRollback {
        #[command(flatten)]
        book: BookArgs,
        #[arg(long)]
        to: u32,
        #[command(flatten)]
        actor: Actor,
    },
    /// Register every book that holds data (positions, deals, equity) as a
    /// strategy, creating its account when missing; existing entries are kept.
    SyncBooks {
        #[command(flatten)]
        actor: Actor,
    },
    /// The audit trail, newest first.
    Audit {
        /// Only this account's changes (not its strategies').
        #[arg(long)]
        account: Option<String>,
        /// With --account: only this strategy's changes.
        #[arg(long, requires = "account")]
        book: Option<String>,
        /// Only changes by this actor.
        #[arg(long)]
        by: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
}

fn object(field: &str, text: &str) -> anyhow::Result<Map<String, Value>> {
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(sqdata::Error::invalid(field, text, "must be a JSON object").into()),
        Err(e) => Err(sqdata::Error::invalid(field, text, format!("not JSON: {e}")).into()),
    }
}

fn json_line(v: &impl serde::Serialize) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

pub(crate) async fn run(ctx: &Ctx, r: Registry) -> anyhow::Result<ExitCode> {
    let c = ctx.config()?;
    let reg = sqdata::open_registry(&c).await.context("opening the registry")?;
    let f = ctx.format;
    match r {
        Registry::Accounts => {
            let list = reg.accounts().await?;
            out::emit(f, &list, || {
                list.iter()
                    .map(|a| format!("{:<20} {:<8} {}  {}", a.id, a.broker, a.name, json_line(&a.meta)))
                    .collect::<Vec<_>>()
                    .join("\n")
            })?;
        }
        Registry::AccountPut { account, name, broker, meta, actor } => {
            let meta = meta.map(|m| object("meta", &m)).transpose()?.unwrap_or_default();
            let a = Account { id: AccountCode::new(&account)?, name, broker, meta };
            reg.upsert_account(&a, &actor.name()).await?;
            out::emit(f, &a, || format!("account {} stored", a.id))?;
        }
        Registry::AccountDelete { account, actor } => {
            let deleted = reg.delete_account(&AccountCode::new(&account)?, &actor.name()).await?;
            out::emit(f, &serde_json::json!({ "deleted": deleted }), || {
                if deleted { format!("account {account} deleted") } else { format!("no account {account}") }
            })?;
        }
        Registry::Strategies { account } => {
            let acc = account.map(AccountCode::new).transpose()?;
            let list = reg.strategies(acc.as_ref()).await?;
            out::emit(f, &list, || {
                list.iter()
                    .map(|s| {
                        format!(
                            "{:<40} {:<8} {}",
                            s.book,
                            if s.enabled { "enabled" } else { "disabled" },
                            s.description
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            })?;
        }
        Registry::StrategyPut { book, description, kind, disabled, actor } => {
            let s = Strategy { book: book.id()?, description, kind, enabled: !disabled };
            reg.upsert_strategy(&s, &actor.name()).await?;
            out::emit(f, &s, || format!("strategy {} stored", s.book))?;
        }
        Registry::StrategyDelete { book, actor } => {
            let id = book.id()?;
            let deleted = reg.delete_strategy(&id, &actor.name()).await?;
            out::emit(f, &serde_json::json!({ "deleted": deleted }), || {
                if deleted { format!("strategy {id} deleted") } else { format!("no strategy {id}") }
            })?;
        }
        Registry::Params { book, version } => {
            let id = book.id()?;
            let Some(p) = reg.params(&id, version).await? else {
                let what = version.map(|v| format!("version {v}")).unwrap_or_else(|| "parameters".into());
                out::emit(f, &Value::Null, || format!("{id} has no {what}"))?;
                return Ok(ExitCode::from(5));
            };
            out::emit(f, &p, || {
                format!(
                    "{} v{} by {} at {} {}\n{}",
                    p.book,
                    p.version,
                    p.actor,
                    p.created_at.format("%Y-%m-%d %H:%M:%S%.3f UTC"),
                    p.note,
                    serde_json::to_string_pretty(&p.params).unwrap_or_default()
                )
            })?;
        }
        Registry::ParamsPut { book, file, json, note, actor } => {
            let text = match (file, json) {
                (Some(p), _) => std::fs::read_to_string(&p).with_context(|| format!("reading {}", p.display()))?,
                (None, Some(j)) => j,
                (None, None) => anyhow::bail!("give the parameters with --file or --json"),
            };
            let params = object("params", &text)?;
            let v = reg.put_params(&book.id()?, &params, &actor.name(), &note).await?;
            out::emit(f, &v, || format!("{} v{} stored", v.book, v.version))?;
        }
        Registry::ParamsHistory { book } => {
            let h = reg.param_history(&book.id()?).await?;
            out::emit(f, &h, || {
                h.iter()
                    .map(|p| {
                        format!(
                            "v{:<4} {}  {:<12} {}  {}",
                            p.version,
                            p.created_at.format("%Y-%m-%d %H:%M:%S"),
                            p.actor,
                            p.note,
                            json_line(&p.params)
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            })?;
        }
        Registry::ParamsDiff { book, from, to } => {
            let id = book.id()?;
            let missing = |v: Option<u32>| {
                sqdata::Error::invalid(
                    "version",
                    v.map_or("latest".into(), |v| v.to_string()),
                    format!("{id} has no such version"),
                )
            };
            let after = reg.params(&id, to).await?.ok_or_else(|| missing(to))?;
            let from = from.unwrap_or(after.version.saturating_sub(1));
            let before = reg.params(&id, Some(from)).await?.ok_or_else(|| missing(Some(from)))?;
            let changes = sqdata::diff_params(&before.params, &after.params);
            let v = serde_json::json!({ "book": id, "from": before.version, "to": after.version, "changes": changes });
            out::emit(f, &v, || {
                let mut s = format!("{id} v{} → v{}: {} changes", before.version, after.version, changes.len());
                for c in &changes {
                    let show = |x: &Option<Value>| x.as_ref().map_or("(absent)".to_string(), |v| v.to_string());
                    s += &format!("\n  {}: {} → {}", c.path, show(&c.before), show(&c.after));
                }
                s
            })?;
        }
        Registry::ParamsRollback { book, to, actor } => {
            let v = reg.rollback_params(&book.id()?, to, &actor.name()).await?;
            out::emit(f, &v, || format!("{} v{} stored (the parameters of v{to})", v.book, v.version))?;
        }
        Registry::SyncBooks { actor } => {
            let stores = sqdata::open(&c)?;
            let mut books = std::collections::BTreeSet::new();
            books.extend(stores.positions.list_books().await?);
            books.extend(stores.deals.list_books().await?);
            books.extend(stores.assets.list_books().await?);
            let (mut accounts, mut strategies) = (Vec::new(), Vec::new());
            let who = actor.name();
            for b in &books {
                let (account, strategy) = reg.ensure_book(b, "registered from the stores", &who).await?;
                if account {
                    accounts.push(b.account.to_string());
                }
                if strategy {
                    strategies.push(b.to_string());
                }
            }
            let v =
                serde_json::json!({ "books": books.len(), "accounts_added": accounts, "strategies_added": strategies });
            out::emit(f, &v, || {
                format!(
                    "{} books; added {} accounts, {} strategies{}",
                    books.len(),
                    accounts.len(),
                    strategies.len(),
                    strategies.iter().map(|s| format!("\n  {s}")).collect::<String>()
                )
            })?;
        }
        Registry::Audit { account, book, by, limit } => {
            let entity = match (&account, &book) {
                (Some(a), Some(b)) => Some(book_entity(&BookId::new(a, b)?)),
                (Some(a), None) => Some(account_entity(&AccountCode::new(a)?)),
                _ => None,
            };
            let q = AuditQuery { entity, actor: by, since: None, limit };
            let rows = reg.audit(&q).await?;
            out::emit(f, &rows, || {
                rows.iter()
                    .map(|r| {
                        format!(
                            "{} {:<12} {:<16} {:<40} {}",
                            r.at.format("%Y-%m-%d %H:%M:%S"),
                            r.actor,
                            r.action,
                            r.entity,
                            json_line(&r.detail)
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            })?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
