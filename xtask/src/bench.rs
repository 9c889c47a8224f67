//! `cargo xtask bench [--pg] [FILTER]`: the criterion suite of `benches/`.

use anyhow::Result;

use crate::{cargo, pg};

pub fn run(args: &[String]) -> Result<()> {
    let with_pg = args.iter().any(|a| a == "--pg");
    let rest: Vec<&str> = args
        .iter()
        .filter(|a| *a != "--pg")
        .map(String::as_str)
        .collect();
    let mut envs = Vec::new();
    let _guard = if with_pg {
        let (g, url) = pg::Guard::start()?;
        envs.push(("MEMGPT_BENCH_PG_URL", url));
        Some(g)
    } else {
        None
    };
    let mut cmd = vec![
        "bench",
        "-p",
        "memgpt-benches",
        "--bench",
        "workloads",
        "--",
    ];
    cmd.extend(rest);
    cargo(&cmd, &envs)
}
