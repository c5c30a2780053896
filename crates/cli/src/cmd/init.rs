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
    jwt_key_file: String,
    jwt_key_written: bool,
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
    // the REST API's token signing key: 64 random bytes, mode 0600, never overwritten
    let key = cfg.api.clone().rooted(&cfg.file.root).jwt_key_file;
    let key_written = !key.exists();
    if key_written {
        sqdata_server::api::secrets::KeyRing::write_new(&key)?;
    }
    let r = Report {
        config_file: path.display().to_string(),
        config_written: written,
        data_dir: cfg.file.root.display().to_string(),
        tier: cfg.tier.to_string(),
        jwt_key_file: key.display().to_string(),
        jwt_key_written: key_written,
    };
    out::emit(ctx.format, &r, || {
        format!(
            "{} {}\ndata folder: {}\ntier: {}\n{} {} (the REST API's signing key, mode 0600)\n\
             next: `sqdata user add <name> --role admin`, then `sqdata serve`",
            if r.config_written { "wrote" } else { "kept existing" },
            r.config_file,
            r.data_dir,
            r.tier,
            if r.jwt_key_written { "wrote" } else { "kept existing" },
            r.jwt_key_file
        )
    })?;
    Ok(ExitCode::SUCCESS)
}
