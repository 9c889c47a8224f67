// A build script fails by panicking, with the reason.
#![allow(clippy::expect_used)]

//! Generates `conformance_tests!` from the checks: one `#[test]` per
//! `pub fn NAME<B: Subject>` of `src/checks.rs`.

use std::fmt::Write as _;

fn main() {
    println!("cargo::rerun-if-changed=src/checks.rs");
    let src = std::fs::read_to_string("src/checks.rs").expect("read src/checks.rs");
    let names: Vec<&str> = src
        .lines()
        .filter_map(|l| l.strip_prefix("pub fn "))
        .filter_map(|l| l.split_once("<B: Subject>").map(|(name, _)| name.trim()))
        .collect();
    assert!(!names.is_empty(), "no checks found in src/checks.rs");
    let mut tests = String::new();
    for name in &names {
        let _ = write!(
            tests,
            "#[test] fn {name}() {{ let backend = $factory; $crate::checks::{name}(&backend); }}\n        "
        );
    }
    let out = format!(
        "/// Expands to one `#[test]` per check of [`checks`], each on a fresh backend made\n\
         /// by `$factory` (an expression evaluated anew in each test).\n\
         #[macro_export]\n\
         macro_rules! conformance_tests {{\n    ($factory:expr) => {{\n        {tests}\n    }};\n}}\n\n\
         /// The names of the checks, in source order.\n\
         pub const CHECKS: &[&str] = &{names:?};\n"
    );
    let path = std::path::Path::new(&std::env::var("OUT_DIR").expect("OUT_DIR"))
        .join("conformance_tests.rs");
    std::fs::write(path, out).expect("write the generated tests");
}
