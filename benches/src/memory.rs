//! W7: `insert_many` of 1,000,000 messages handed over as an iterator, in a child process
//! whose peak resident set (the kernel's `VmHWM`) is the figure, beside its two parts: the
//! memory the process allocated (`RssAnon`) and the pages of files it mapped (`RssFile`:
//! SQLite's memory map, the kernel's page cache), each the highest a sampler saw.

use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use memgpt_core::{Message, Scope, StorageConnector, TableType};

use crate::data::{messages, tenants};
use crate::report::Report;
use crate::target::{pg_store, sqlite_store, Database, Env};

/// The argument that makes the bench binary the W7 child.
pub const CHILD: &str = "--w7-child";

/// A field of `/proc/self/status` in KiB (`VmHWM`, `RssAnon`, `RssFile`).
fn status_kib(status: &str, field: &str) -> Result<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .with_context(|| format!("no {field} in /proc/self/status"))
}

/// This process's peak resident set, in KiB.
pub fn peak_rss_kib() -> Result<u64> {
    status_kib(&std::fs::read_to_string("/proc/self/status")?, "VmHWM")
}

/// The highest `RssAnon` and `RssFile` (KiB) seen while `work` runs, read every
/// millisecond by a thread of its own and once more at the end (the kernel keeps a peak of
/// the sum only).
fn sampled<T>(work: impl FnOnce() -> Result<T>) -> Result<(T, u64, u64)> {
    let read = || -> Result<(u64, u64)> {
        let status = std::fs::read_to_string("/proc/self/status")?;
        Ok((
            status_kib(&status, "RssAnon")?,
            status_kib(&status, "RssFile")?,
        ))
    };
    let done = Arc::new(AtomicBool::new(false));
    let sampler = std::thread::spawn({
        let done = Arc::clone(&done);
        move || -> Result<(u64, u64)> {
            let mut peak = read()?;
            while !done.load(Ordering::Relaxed) {
                let (anon, file) = read()?;
                peak = (peak.0.max(anon), peak.1.max(file));
                std::thread::sleep(Duration::from_millis(1));
            }
            Ok(peak)
        }
    });
    let out = work();
    done.store(true, Ordering::Relaxed);
    let (anon, file) = sampler
        .join()
        .map_err(|_| anyhow::anyhow!("the RSS sampler panicked"))??;
    let last = read()?;
    Ok((out?, anon.max(last.0), file.max(last.1)))
}

/// The child: `--w7-child sqlite|postgres|sqlite-mmap-off LOCATION N`; prints
/// `peak_rss_kib K`, `peak_anon_kib K` and `peak_file_kib K`.
pub fn child(args: &[String]) -> Result<()> {
    let [kind, location, n] = args else {
        bail!("usage: {CHILD} sqlite|sqlite-mmap-off|postgres LOCATION N");
    };
    let n: usize = n.parse()?;
    let (u, a) = tenants(1, 1)[0];
    let lazy = messages(vec![(u, a)], n);
    let (written, anon, file) = sampled(|| match kind.as_str() {
        "postgres" => pg_store(location)?
            .connector::<Message>(TableType::RecallMemory, Scope::agent(u, a))?
            .insert_many(lazy, false)
            .map_err(Into::into),
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
                .insert_many(lazy, false)
                .map_err(Into::into)
        }
        other => bail!("unknown backend {other}"),
    })?;
    anyhow::ensure!(written == n as u64, "wrote {written} of {n}");
    println!("peak_rss_kib {}", peak_rss_kib()?);
    println!("peak_anon_kib {anon}");
    println!("peak_file_kib {file}");
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
        for (printed, metric) in [
            ("peak_rss_kib ", "peak_rss_mb"),
            ("peak_anon_kib ", "peak_anon_mb"),
            ("peak_file_kib ", "peak_file_mb"),
        ] {
            let kib: u64 = stdout
                .lines()
                .find_map(|l| l.strip_prefix(printed))
                .and_then(|v| v.trim().parse().ok())
                .with_context(|| format!("the W7 child printed no {printed}"))?;
            report.add(
                "W7",
                case,
                backend.name(),
                "optimized",
                n as u64,
                metric,
                kib as f64 / 1024.0,
            );
        }
    }
    Ok(())
}
