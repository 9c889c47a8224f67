//! `memgpt-store migrate [--database-url URL] [--embedding-dim N] [--drop-data]
//! up|down|status|redo|revert [N]`.

use crate::{anyhow, bail, Result};
use memgpt_core::DatabaseUrl;
use memgpt_migrate::{Command, Options};
use memgpt_sqlite::SqliteConfig;

const USAGE: &str =
    "usage: memgpt-store migrate [--database-url URL] [--embedding-dim N] [--drop-data] up|down|status|redo|revert [N]";

pub fn run(args: &[String]) -> Result<()> {
    let mut url: Option<String> = None;
    let mut command: Option<Command> = None;
    let mut options = Options::default();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = |flag: &str| -> Result<String> {
            it.next()
                .cloned()
                .ok_or_else(|| anyhow!("{flag} needs a value\n{USAGE}"))
        };
        match a.as_str() {
            "--database-url" => url = Some(value("--database-url")?),
            "--embedding-dim" => {
                let v = value("--embedding-dim")?;
                options.embedding_dim = Some(
                    v.parse()
                        .map_err(|_| anyhow!("--embedding-dim {v:?}: expected a number"))?,
                );
            }
            "--drop-data" => options.drop_data = true,
            other if other.starts_with("--database-url=") => {
                url = Some(other["--database-url=".len()..].to_owned())
            }
            other if other.starts_with("--") => bail!("unknown option {other:?}\n{USAGE}"),
            n if matches!(command, Some(Command::Revert(_))) && n.parse::<usize>().is_ok() => {
                command = Some(Command::Revert(n.parse()?));
            }
            other => command = Some(other.parse().map_err(|e| anyhow!("{e}\n{USAGE}"))?),
        }
    }
    let Some(command) = command else {
        bail!("{USAGE}");
    };
    if options.embedding_dim.is_none() {
        if let Ok(v) = std::env::var("MEMGPT_EMBEDDING_DIM") {
            options.embedding_dim = Some(
                v.parse()
                    .map_err(|_| anyhow!("MEMGPT_EMBEDDING_DIM={v:?}: expected a number"))?,
            );
        }
    }
    let url = match url.or_else(|| std::env::var("MEMGPT_DATABASE_URL").ok()) {
        Some(u) => DatabaseUrl::new(u),
        None => {
            let cfg = SqliteConfig::from_env()?;
            DatabaseUrl::new(cfg.path.to_string_lossy().into_owned())
        }
    };
    println!("migrating {}", url.redacted());
    let report = memgpt_migrate::run_url_with(&url, command, &options, &|line| {
        println!("{line}");
    })?;
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
