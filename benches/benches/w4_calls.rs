//! `cargo xtask profile`: the instructions each W4 call costs on the client, through the
//! library and by hand on the drivers (`raw`), counted by callgrind (wall time on a 2-core
//! machine is noise; instruction counts repeat within a fraction of a percent). The library's own
//! cost is the difference.
//!
//! ```text
//! cargo bench -p memgpt-benches --bench w4_calls -- [--pg-url URL] [--agents N] [--calls N] [--out DIR] [CASE …]
//! ```
//!
//! The parent loads a W4 table natively (`--agents` x 1,000 messages, default 20), then for
//! each case and variant runs itself under `valgrind --tool=callgrind`, collecting only
//! inside `measured` (after three warm-up calls: statements prepared, pool warm), and
//! prints instructions per call. The same calls as the suite's W4 (`memgpt_benches::w4`).
//! `--out DIR` keeps callgrind's files (`callgrind_annotate --inclusive=yes FILE`).
#![allow(missing_docs)]

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, ensure, Context, Result};
use memgpt_benches::raw::Raw;
use memgpt_benches::target::{pg_store, sqlite_store, Database, Env, Store};
use memgpt_benches::w4::{self, Loaded};
use uuid::Uuid;

const CHILD: &str = "--child";

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some(CHILD) {
        return child(&args[1..]);
    }
    let mut env = Env {
        pg_admin: None,
        quick: true,
        pgbouncer: None,
        replica: None,
    };
    let (mut agents, mut calls, mut cases) = (20usize, 20usize, Vec::new());
    let mut keep: Option<PathBuf> = None;
    let mut it = args.into_iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--pg-url" => env.pg_admin = Some(it.next().context("--pg-url takes a URL")?),
            "--agents" => agents = it.next().context("--agents takes a number")?.parse()?,
            "--calls" => calls = it.next().context("--calls takes a number")?.parse()?,
            "--out" => keep = Some(it.next().context("--out takes a folder")?.into()),
            "--bench" => {}
            c if w4::CASES.contains(&c) => cases.push(c.to_owned()),
            other => bail!("unknown argument {other:?}; cases: {:?}", w4::CASES),
        }
    }
    if cases.is_empty() {
        cases = w4::CASES.iter().map(|c| (*c).to_owned()).collect();
    }
    ensure!(
        agents >= 10 && agents % 10 == 0,
        "--agents: a multiple of 10"
    );
    ensure!(calls > 0, "--calls: at least 1");
    let dir = tempfile::tempdir()?;
    // Where callgrind's files go: kept with `--out` (for callgrind_annotate).
    let out = keep.unwrap_or_else(|| dir.path().to_path_buf());
    std::fs::create_dir_all(&out)?;
    println!("instructions per W4 call on the client (callgrind), {agents} x 1,000 messages:\n");
    println!(
        "{:<10} {:<16} {:>14} {:>14} {:>7}",
        "backend", "case", "library", "raw", "ratio"
    );
    for backend in env.backends() {
        let fresh = env.fresh(backend, "w4_calls")?;
        let loaded = w4::load(&fresh, agents)?;
        if let Store::Sqlite(s) = &fresh.store {
            s.optimize()?;
        }
        let data = out.join(format!("{}.txt", backend.name()));
        std::fs::write(&data, write_loaded(&loaded))?;
        for case in &cases {
            let count = |variant| count(backend, &fresh.location, &data, case, variant, calls);
            let (library, raw) = (count("library")?, count("raw")?);
            println!(
                "{:<10} {:<16} {:>14} {:>14} {:>6.2}x",
                backend.name(),
                case,
                library,
                raw,
                library as f64 / raw.max(1) as f64
            );
        }
    }
    Ok(())
}

/// Instructions per call of `variant` (library or raw) on `case`, from a callgrind run of
/// this program as a child.
fn count(
    backend: Database,
    location: &str,
    data: &Path,
    case: &str,
    variant: &str,
    calls: usize,
) -> Result<u64> {
    let out = data.with_extension(format!("{case}.{variant}.callgrind"));
    let status = Command::new("valgrind")
        .arg("--tool=callgrind")
        .arg(format!("--callgrind-out-file={}", out.display()))
        .arg("--collect-atstart=no")
        .arg("--toggle-collect=*w4_calls*measured*")
        .arg(std::env::current_exe()?)
        .args([CHILD, backend.name(), location])
        .arg(data)
        .args([case, variant, &calls.to_string()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .context("valgrind (Debian package valgrind) is needed")?;
    ensure!(status.success(), "callgrind run of {case} {variant} failed");
    let text = std::fs::read_to_string(&out)?;
    let total: u64 = text
        .lines()
        .find_map(|l| {
            l.strip_prefix("totals:")
                .or_else(|| l.strip_prefix("summary:"))
        })
        .and_then(|v| v.split_whitespace().next())
        .context("no totals in callgrind's output")?
        .parse()?;
    Ok(total / calls as u64)
}

/// The child: opens the loaded table, warms up, and runs `calls` calls in [`measured`].
fn child(args: &[String]) -> Result<()> {
    let [backend, location, data, case, variant, calls] = args else {
        bail!("child arguments: backend location data case variant calls");
    };
    let calls: usize = calls.parse()?;
    let loaded = read_loaded(Path::new(data))?;
    let backend = match backend.as_str() {
        "sqlite" => Database::Sqlite,
        _ => Database::Postgres,
    };
    let store = match backend {
        Database::Sqlite => Store::Sqlite(sqlite_store(&PathBuf::from(location))?),
        Database::Postgres => Store::Pg(pg_store(location)?),
    };
    let mut raw = Raw::open(backend, location)?;
    let mut one = |i: usize| -> Result<()> {
        let call = loaded.call(i * 7 + 3);
        match variant.as_str() {
            "library" => w4::library(&store, case, &call),
            _ => w4::raw(&mut raw, case, &call),
        }
    };
    for i in 0..3 {
        one(i)?;
    }
    measured(calls, &mut one)
}

/// The calls callgrind counts.
#[inline(never)]
fn measured(calls: usize, one: &mut dyn FnMut(usize) -> Result<()>) -> Result<()> {
    for i in 0..calls {
        one(3 + i)?;
    }
    Ok(())
}

fn write_loaded(l: &Loaded) -> String {
    let mut s = format!("{}\n{}\n", l.hour.0.to_rfc3339(), l.hour.1.to_rfc3339());
    for ((u, a), id) in l.tenants.iter().zip(&l.ids) {
        s.push_str(&format!("{u} {a} {id}\n"));
    }
    s
}

fn read_loaded(path: &Path) -> Result<Loaded> {
    let text = std::fs::read_to_string(path)?;
    let mut lines = text.lines();
    let mut time = || -> Result<chrono::DateTime<chrono::Utc>> {
        let l = lines.next().context("a time")?;
        Ok(chrono::DateTime::parse_from_rfc3339(l)?.to_utc())
    };
    let hour = (time()?, time()?);
    let (mut tenants, mut ids) = (Vec::new(), Vec::new());
    for l in text.lines().skip(2) {
        let v: Vec<Uuid> = l
            .split(' ')
            .map(Uuid::parse_str)
            .collect::<Result<_, _>>()?;
        ensure!(v.len() == 3, "a line of three uuids");
        tenants.push((v[0], v[1]));
        ids.push(v[2]);
    }
    Ok(Loaded { tenants, ids, hour })
}
