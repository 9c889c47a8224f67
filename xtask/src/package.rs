//! The published crates are ready to publish: `cargo package --list` of each holds its
//! README and, for `memgpt-migrate`, every migration; nothing from outside the crate; and
//! cargo has no warning about the manifest (description, documentation, …).

use anyhow::{bail, Context, Result};

use crate::root;

/// The crates a user depends on or installs.
pub const PUBLISHED: &[&str] = &[
    "memgpt-core",
    "memgpt-sqlite",
    "memgpt-pg",
    "memgpt-migrate",
    "memgpt-cli",
];

/// Checks the file list of every published crate.
pub fn check() -> Result<()> {
    let migrations = files_under(&root().join("migrations"))?;
    for krate in PUBLISHED {
        eprintln!("$ cargo package --list --allow-dirty -p {krate}");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
        let out = std::process::Command::new(cargo)
            .args(["package", "--list", "--allow-dirty", "-p", krate])
            .current_dir(root())
            .output()?;
        let stderr = String::from_utf8_lossy(&out.stderr);
        if !out.status.success() || stderr.contains("warning") {
            bail!("cargo package --list -p {krate}: {stderr}");
        }
        let listed: Vec<&str> = std::str::from_utf8(&out.stdout)?.lines().collect();
        if !listed.contains(&"README.md") {
            bail!("{krate}'s package has no README.md");
        }
        if let Some(outside) = listed.iter().find(|f| f.contains("..")) {
            bail!("{krate}'s package holds {outside}, from outside the crate");
        }
        if *krate == "memgpt-migrate" {
            for m in &migrations {
                let want = format!("migrations/{m}");
                if !listed.contains(&want.as_str()) {
                    bail!("memgpt-migrate's package lacks {want}");
                }
            }
        }
    }
    Ok(())
}

/// Every file under `dir`, as a `/`-separated path relative to it.
fn files_under(dir: &std::path::Path) -> Result<Vec<String>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).with_context(|| d.display().to_string())? {
            let path = e?.path();
            if path.is_dir() {
                stack.push(path);
            } else if let Ok(rel) = path.strip_prefix(dir) {
                out.push(rel.to_string_lossy().replace('\\', "/"));
            }
        }
    }
    if out.is_empty() {
        bail!("no migration under {}", dir.display());
    }
    Ok(out)
}
