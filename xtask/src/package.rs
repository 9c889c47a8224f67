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
    "memgpt-rig",
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

/// The workspace's `rust-version` is true: no locked dependency needs a newer Rust
/// (`cargo metadata --locked` gives each package's `rust_version`).
pub fn rust_version() -> Result<()> {
    let manifest = std::fs::read_to_string(root().join("Cargo.toml"))?;
    let ours = manifest
        .lines()
        .find_map(|l| l.trim().strip_prefix("rust-version = "))
        .map(|v| v.trim_matches('"').to_owned())
        .context("the workspace's Cargo.toml declares no rust-version")?;
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let out = std::process::Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--locked"])
        .current_dir(root())
        .output()?;
    if !out.status.success() {
        bail!(
            "cargo metadata --locked: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let needs = newer_than(std::str::from_utf8(&out.stdout)?, &ours)?;
    if !needs.is_empty() {
        bail!(
            "rust-version = \"{ours}\" in Cargo.toml, but locked dependencies need more: {}",
            needs.join(", ")
        );
    }
    Ok(())
}

/// `major.minor[.patch]` as three numbers (`1.95` is `1.95.0`), for comparing.
fn version(v: &str) -> Result<[u64; 3]> {
    let mut out = [0; 3];
    for (i, part) in v.split('.').enumerate() {
        let slot = out
            .get_mut(i)
            .with_context(|| format!("version {v:?} has more than three parts"))?;
        *slot = part.parse().with_context(|| format!("version {v:?}"))?;
    }
    Ok(out)
}

/// The packages of `cargo metadata`'s JSON whose `rust_version` is newer than `ours`, as
/// `id needs version` (a package's `id` comes before its `rust_version`; neither key occurs
/// inside its dependencies or targets).
fn newer_than(metadata: &str, ours: &str) -> Result<Vec<String>> {
    let ours = version(ours)?;
    let mut needs = Vec::new();
    let mut id = "";
    let mut rest = metadata;
    loop {
        let next_id = rest.find("\"id\":\"");
        let next_rv = rest.find("\"rust_version\":\"");
        let (at, is_id) = match (next_id, next_rv) {
            (Some(i), Some(r)) if i < r => (i, true),
            (_, Some(r)) => (r, false),
            (Some(i), None) => (i, true),
            (None, None) => break,
        };
        let start = at + if is_id { 6 } else { 16 };
        let len = rest[start..].find('"').context("unterminated string")?;
        let value = &rest[start..start + len];
        if is_id {
            id = value;
        } else if version(value)? > ours {
            needs.push(format!("{id} needs {value}"));
        }
        rest = &rest[start + len..];
    }
    Ok(needs)
}

#[cfg(test)]
mod tests {
    /// Tidy's check passes: the declared `rust-version` covers the lockfile.
    #[test]
    fn rust_version_covers_every_locked_dependency() {
        if let Err(e) = super::rust_version() {
            panic!("{e:#}");
        }
    }

    #[test]
    fn newer_rust_versions_are_found_by_package() {
        let json = r#"{"packages":[{"name":"a","id":"reg#a@1.0.0","dependencies":[{"name":"b"}],"rust_version":"1.89"},{"name":"b","id":"reg#b@0.13.0","rust_version":"1.95"},{"name":"c","id":"reg#c@2.0.0","rust_version":null}]}"#;
        assert_eq!(
            super::newer_than(json, "1.89").unwrap(),
            ["reg#b@0.13.0 needs 1.95"]
        );
        assert!(super::newer_than(json, "1.95.0").unwrap().is_empty());
        assert!(super::newer_than(json, "1.95").unwrap().is_empty());
        let patch = r#"{"id":"reg#d@1.0.0","rust_version":"1.95.0"}"#;
        assert!(super::newer_than(patch, "1.95").unwrap().is_empty());
        assert_eq!(
            super::newer_than(patch, "1.94").unwrap(),
            ["reg#d@1.0.0 needs 1.95.0"]
        );
    }
}
