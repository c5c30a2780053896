//! `sqdata init`.

use std::process::ExitCode;

use serde::Serialize;
use sqdata::{Config, DEFAULT_CONFIG_FILE};

use super::Ctx;
use crate::out;

/// Arguments of `init`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Print the default configuration instead of writing it.
    #[arg(long)]
    print: bool,
}

#[derive(Serialize)]
struct Report {
    config_file: String,
    config_written: bool,
    data_dir: String,
    tier: String,
}

pub(crate) fn run(ctx: &Ctx, a: Args) -> anyhow::Result<ExitCode> {
    if a.print {
        print!("{}", Config::default_toml());
        return Ok(ExitCode::SUCCESS);
    }
    let path = ctx.config_path.clone().unwrap_or_else(|| DEFAULT_CONFIG_FILE.into());
    let written = if path.exists() {
        false
    } else {
        std::fs::write(&path, Config::default_toml())?;
        true
    };
    let cfg = ctx.config()?;
    std::fs::create_dir_all(&cfg.file.root)?;
    let r = Report {
        config_file: path.display().to_string(),
        config_written: written,
        data_dir: cfg.file.root.display().to_string(),
        tier: cfg.tier.to_string(),
    };
    out::emit(ctx.format, &r, || {
        format!(
            "{} {}\ndata folder: {}\ntier: {}",
            if r.config_written { "wrote" } else { "kept existing" },
            r.config_file,
            r.data_dir,
            r.tier
        )
    })?;
    Ok(ExitCode::SUCCESS)
}
