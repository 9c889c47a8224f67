//! The locale of the tests whose server speaks German (`crates/memgpt-pg/tests/translated.rs`:
//! errors are classified by SQLSTATE, never by English text), generated when missing.

use anyhow::{bail, Context, Result};
use std::process::Command;

use memgpt_testing::cluster::as_root;

/// The locale, as `/etc/locale.gen` names it; `memgpt_testing::TRANSLATED_MESSAGES`.
const LOCALE: &str = "de_DE.UTF-8";

/// Generates [`LOCALE`] unless `locale -a` lists it (as root; else says how).
pub fn ensure() -> Result<()> {
    if installed() {
        return Ok(());
    }
    if !as_root() {
        bail!(
            "the locale {LOCALE} is missing (the tests of translated server messages need \
             it): `sudo apt-get install locales && echo '{LOCALE} UTF-8' | sudo tee -a \
             /etc/locale.gen && sudo locale-gen`"
        );
    }
    eprintln!("generating the locale {LOCALE}");
    if Command::new("locale-gen").arg("--help").output().is_err() {
        crate::apt_install(&["locales"])?;
    }
    let wanted = format!("{LOCALE} UTF-8");
    let listed = std::fs::read_to_string("/etc/locale.gen").unwrap_or_default();
    if !listed.lines().any(|l| l.trim() == wanted) {
        std::fs::write("/etc/locale.gen", format!("{listed}\n{wanted}\n"))
            .context("writing /etc/locale.gen")?;
    }
    let ok = Command::new("locale-gen")
        .status()
        .context("running locale-gen")?
        .success();
    if !ok || !installed() {
        bail!("locale-gen did not generate {LOCALE}");
    }
    Ok(())
}

/// Whether `locale -a` lists [`LOCALE`] (as `de_DE.utf8`).
fn installed() -> bool {
    Command::new("locale")
        .arg("-a")
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .any(|l| l.eq_ignore_ascii_case("de_DE.utf8") || l == LOCALE)
        })
        .unwrap_or(false)
}
