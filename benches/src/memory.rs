//! W7: `insert_many` of 1,000,000 messages handed over as an iterator, in a child process
//! whose peak resident set (the kernel's `VmHWM`) is the figure.

use std::process::Command;

use anyhow::{bail, Context, Result};
use memgpt_core::{Message, Scope, StorageConnector, TableType};

use crate::data::{messages, tenants};
use crate::report::Report;
use crate::target::{pg_store, sqlite_store, Database, Env};

/// The argument that makes the bench binary the W7 child.
pub const CHILD: &str = "--w7-child";

/// This process's peak resident set, in KiB.
pub fn peak_rss_kib() -> Result<u64> {
    std::fs::read_to_string("/proc/self/status")?
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .context("no VmHWM in /proc/self/status")
}

/// The child: `--w7-child sqlite|postgres|sqlite-mmap-off LOCATION N`; prints
/// `peak_rss_kib K`.
pub fn child(args: &[String]) -> Result<()> {
    let [kind, location, n] = args else {
        bail!("usage: {CHILD} sqlite|sqlite-mmap-off|postgres LOCATION N");
    };
    let n: usize = n.parse()?;
    let (u, a) = tenants(1, 1)[0];
    let lazy = messages(vec![(u, a)], n);
    let written = match kind.as_str() {
        "postgres" => pg_store(location)?
            .connector::<Message>(TableType::RecallMemory, Scope::agent(u, a))?
            .insert_many(lazy, false)?,
        "sqlite" | "sqlite-mmap-off" => {
            let store = if kind == "sqlite" {
                sqlite_store(std::path::Path::new(location))?
            } else {
                let mut config = memgpt_sqlite::SqliteConfig::new(location);
                config.mmap_size = 0;
                memgpt_sqlite::SqliteStore::open(config)?
            };
            store
                .connector::<Message>(TableType::RecallMemory, Scope::agent(u, a))?
                .insert_many(lazy, false)?
        }
        other => bail!("unknown backend {other}"),
    };
    anyhow::ensure!(written == n as u64, "wrote {written} of {n}");
    println!("peak_rss_kib {}", peak_rss_kib()?);
    Ok(())
}

/// W7 on `backend`.
pub fn w7(env: &Env, backend: Database, report: &mut Report) -> Result<()> {
    let n = env.size(1_000_000, 100_000);
    let cases: &[(&str, &str)] = match backend {
        Database::Sqlite => &[("all", "sqlite"), ("mmap_off", "sqlite-mmap-off")],
        Database::Postgres => &[("all", "postgres")],
    };
    for (case, kind) in cases {
        eprintln!(
            "W7 {case} {}: {n} messages from an iterator, in a child process",
            backend.name()
        );
        let fresh = env.fresh(backend, "w7")?;
        let dir = tempfile::tempdir()?;
        let location = match backend {
            Database::Sqlite => dir.path().join("w7.db").display().to_string(),
            Database::Postgres => fresh.location.clone(),
        };
        drop(fresh.store);
        let out = Command::new(std::env::current_exe()?)
            .arg(CHILD)
            .args([*kind, location.as_str(), &n.to_string()])
            .output()?;
        if !out.status.success() {
            bail!("W7 child failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        let stdout = String::from_utf8_lossy(&out.stdout);
        let kib: u64 = stdout
            .lines()
            .find_map(|l| l.strip_prefix("peak_rss_kib "))
            .and_then(|v| v.trim().parse().ok())
            .context("the W7 child printed no peak RSS")?;
        report.add(
            "W7",
            case,
            backend.name(),
            "optimized",
            n as u64,
            "peak_rss_mb",
            kib as f64 / 1024.0,
        );
    }
    Ok(())
}
