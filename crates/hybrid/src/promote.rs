//! Promotion of accounts to a later rollout stage, shared by `sqdata
//! rollout promote` and `POST /api/v1/ops/rollout/promote`: the server is
//! first checked against the files for those accounts (the durable
//! domains); only when they are equal (or the caller forces it) are the
//! books adopted — the server holds them whole, so it may serve them — and
//! the stage set. Going back to `files` needs no check.

use serde::Serialize;
use sqdata_core::{BookId, Domain, Result};

use crate::config::Stage;
use crate::hybrid::Hybrid;
use crate::rollout::{RolloutState, effective_stages};
use crate::verify::{VerifyOptions, VerifyReport};

/// What a promotion did.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Promotion {
    /// The stage was set.
    Promoted {
        /// The stage before (the lowest of the accounts').
        from: Stage,
        /// The stage now.
        to: Stage,
        /// The check made first (none when going back to the files).
        check: Option<VerifyReport>,
        /// The rollout state written.
        state: RolloutState,
    },
    /// Nothing changed: the server differs from the files.
    Differs {
        /// The check, with the differences.
        check: VerifyReport,
    },
}

impl Hybrid {
    /// The stage `accounts` are at (the lowest of them; `None`: everyone).
    pub fn current_stage(&self, accounts: Option<&[String]>) -> Result<Stage> {
        let stages = effective_stages(self.config())?;
        Ok(match accounts {
            Some(list) => list.iter().map(|a| stages.get(a).or(stages.get("*")).copied()).min().flatten(),
            None => stages.values().copied().min(),
        }
        .unwrap_or_default())
    }

    /// Compares the server with the files for `accounts` (no repair).
    pub async fn check_accounts(&self, accounts: Option<&[String]>) -> Result<VerifyReport> {
        let opts = VerifyOptions {
            accounts: accounts.map(<[String]>::to_vec),
            domains: Domain::DURABLE.to_vec(),
            ..VerifyOptions::default()
        };
        self.verify(&opts).await
    }

    /// Promotes `accounts` (`None`: everyone) to `to` (default: the next
    /// stage), after the check unless `force`.
    pub async fn promote(&self, accounts: Option<&[String]>, to: Option<Stage>, force: bool) -> Result<Promotion> {
        let from = self.current_stage(accounts)?;
        let next = to.unwrap_or_else(|| from.next());
        let mut check = None;
        if next != Stage::Files {
            let rep = self.check_accounts(accounts).await?;
            if rep.total_differences() > 0 && !force {
                return Ok(Promotion::Differs { check: rep });
            }
            self.adopt_accounts(accounts).await?;
            check = Some(rep);
        }
        let state = self.set_stage(accounts, next)?;
        Ok(Promotion::Promoted { from, to: next, check, state })
    }

    /// Adopts every book of `accounts` (`None`: everyone, and the domains
    /// without books) in the durable domains: the server holds them whole.
    pub async fn adopt_accounts(&self, accounts: Option<&[String]>) -> Result<()> {
        for &d in self.active_domains() {
            if !d.durable() {
                continue;
            }
            if !d.per_book() {
                if accounts.is_none() {
                    self.adopt(d, None)?;
                }
                continue;
            }
            let books: Vec<BookId> = self
                .secondary()
                .books(d)
                .await?
                .into_iter()
                .filter(|b| accounts.is_none_or(|a| a.iter().any(|x| x == b.account.as_str())))
                .collect();
            self.adopt(d, Some(&books))?;
        }
        Ok(())
    }
}
