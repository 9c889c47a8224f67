//! `cargo xtask bench`: every workload of docs/BENCHMARKS.md (W1–W8) on SQLite, and on
//! PostgreSQL with `--pg-url URL` (which `cargo xtask bench --pg` passes for the throwaway
//! server; S1, the scale-out routes of docs/SCALING.md, with `--pgbouncer-url` and `--replica-url` too), each beside its naive baseline and, for loads, the database's own bulk loader,
//! in the same run. Ends with one table of every figure; `--json PATH` writes them.
//!
//! ```text
//! cargo bench -p memgpt-benches --bench suite -- [--quick] [--pg-url URL] [--pgbouncer-url URL] [--replica-url URL] [--json PATH] [W1 … S1]
//! ```

use std::time::Instant;

use anyhow::{bail, Context, Result};
use memgpt_benches::report::Report;
use memgpt_benches::target::{Database, Env};
use memgpt_benches::{concurrency, loads, memory, reads, retention, scale, targets, w8};

type Workload = fn(&Env, Database, &mut Report) -> Result<()>;

const WORKLOADS: [(&str, Workload); 10] = [
    ("W1", loads::w1),
    ("W2", loads::w2),
    ("W3", loads::w3),
    ("W4", reads::w4),
    ("W5", reads::w5),
    ("W6", concurrency::w6),
    ("W6R", retention::w6_prune),
    ("W7", memory::w7),
    ("W8", w8::w8),
    ("S1", scale::s1),
];

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some(memory::CHILD) {
        return memory::child(&args[1..]);
    }
    let mut env = Env {
        pg_admin: None,
        quick: false,
        pgbouncer: None,
        replica: None,
    };
    let mut json = None;
    let mut only: Vec<String> = Vec::new();
    let mut it = args.into_iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--quick" => env.quick = true,
            "--pg-url" => env.pg_admin = Some(it.next().context("--pg-url takes a URL")?),
            "--json" => json = Some(it.next().context("--json takes a path")?),
            "--pgbouncer-url" => {
                env.pgbouncer = Some(it.next().context("--pgbouncer-url takes a URL")?)
            }
            "--replica-url" => env.replica = Some(it.next().context("--replica-url takes a URL")?),
            // What cargo bench passes to every bench binary.
            "--bench" => {}
            w if w.starts_with('W') || w.starts_with('S') => only.push(w.to_owned()),
            other => bail!("unknown argument {other:?}; usage: [--quick] [--pg-url URL] [--pgbouncer-url URL] [--replica-url URL] [--json PATH] [W1 … W8 W6R S1]"),
        }
    }
    let start = Instant::now();
    let mut report = Report::default();
    let mut failed: Vec<String> = Vec::new();
    for backend in env.backends() {
        for (name, run) in WORKLOADS {
            if !only.is_empty() && !only.iter().any(|w| w == name) {
                continue;
            }
            eprintln!("== {name} on {} ==", backend.name());
            // A failed workload is reported at the end; the others still run.
            if let Err(e) = run(&env, backend, &mut report) {
                eprintln!("{name} on {} failed: {e:#}", backend.name());
                failed.push(format!("{name} on {}: {e:#}", backend.name()));
            }
        }
    }
    println!(
        "\n== memgpt-store: every figure of this run ({}, {:.0} s) ==\n",
        if env.quick { "--quick" } else { "full size" },
        start.elapsed().as_secs_f64()
    );
    println!("{}", report.table());
    println!("== the targets of docs/BENCHMARKS.md, on this run ==\n");
    println!("{}", targets::table(&report));
    println!(
        "W4's ratios to raw are wall-clock; instructions per W4 call, library beside raw, \
         exact: `cargo xtask profile [--pg]` (docs/BENCHMARKS.md, \"The library's own cost \
         per W4 call\")\n"
    );
    if let Some(path) = json {
        std::fs::write(&path, report.json()).with_context(|| format!("writing {path}"))?;
        println!("figures written to {path}");
    }
    if !failed.is_empty() {
        bail!("failed workloads:\n{}", failed.join("\n"));
    }
    Ok(())
}
