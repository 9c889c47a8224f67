//! `cargo xtask migrate [--database-url URL] up|down|status|redo`.

use anyhow::{anyhow, bail, Result};
use memgpt_core::{DatabaseUrl, SqliteConfig};
use memgpt_migrate::Command;

pub fn run(args: &[String]) -> Result<()> {
    let mut url: Option<String> = None;
    let mut command: Option<Command> = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--database-url" => {
                url = Some(
                    it.next()
                        .ok_or_else(|| anyhow!("--database-url needs a value"))?
                        .clone(),
                )
            }
            other if other.starts_with("--database-url=") => {
                url = Some(other["--database-url=".len()..].to_owned())
            }
            other => command = Some(other.parse().map_err(|e| anyhow!("{e}"))?),
        }
    }
    let Some(command) = command else {
        bail!("usage: cargo xtask migrate [--database-url URL] up|down|status|redo");
    };
    let url = match url.or_else(|| std::env::var("MEMGPT_DATABASE_URL").ok()) {
        Some(u) => DatabaseUrl::new(u),
        None => {
            let cfg = SqliteConfig::from_env()?;
            DatabaseUrl::new(cfg.path.to_string_lossy().into_owned())
        }
    };
    println!("migrating {}", url.redacted());
    let report = memgpt_migrate::run_url(&url, command)?;
    for m in &report.reverted {
        println!("reverted {m}");
    }
    for m in &report.applied {
        println!("applied  {m}");
    }
    for s in &report.status {
        println!("[{}] {}", if s.applied { "x" } else { " " }, s.name);
    }
    Ok(())
}
