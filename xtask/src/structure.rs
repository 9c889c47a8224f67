//! The shape rules of the published crates, checked by `cargo xtask tidy`: no source file
//! above [`MAX_FILE_LINES`] lines, no function above [`MAX_FN_LINES`], and no cycle among a
//! crate's top-level modules (a module that uses another is never used back by it, through
//! any chain: `crate::a` in `b.rs` and `crate::b` in `a.rs` is a cycle; a module's own
//! submodules count as the module). Paths are read from the code, not its comments or
//! string literals; a module reached only through method calls is not seen.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

/// The published crates' folders (each of [`crate::package::PUBLISHED`]).
const CRATES: &[&str] = &[
    "crates/memgpt-core",
    "crates/memgpt-pg",
    "crates/memgpt-sqlite",
    "crates/memgpt-migrate",
    "crates/memgpt-cli",
    "crates/memgpt-rig",
];

/// The most lines of a source file.
const MAX_FILE_LINES: usize = 450;
/// The most lines of a function, from its signature to its closing brace.
const MAX_FN_LINES: usize = 70;

/// Checks every published crate; the error lists every breach.
pub fn check() -> Result<()> {
    let mut breaches = Vec::new();
    for krate in CRATES {
        let src = crate::root().join(krate).join("src");
        let files = sources(&src)?;
        let root = ["lib.rs", "main.rs"].map(|f| src.join(f));
        let root = root
            .iter()
            .find(|p| p.exists())
            .map(std::fs::read_to_string);
        let reexported = reexports(&code(&root.transpose()?.unwrap_or_default()));
        let mut uses = BTreeMap::new();
        for path in &files {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            let shown = path.strip_prefix(crate::root()).unwrap_or(path).display();
            let lines = text.lines().count();
            if lines > MAX_FILE_LINES {
                breaches.push(format!("{shown}: {lines} lines (at most {MAX_FILE_LINES})"));
            }
            let code = code(&text);
            for (at, len) in functions(&code) {
                match len {
                    Some(len) if len <= MAX_FN_LINES => {}
                    Some(len) => breaches.push(format!(
                        "{shown}:{at}: a function of {len} lines (at most {MAX_FN_LINES})"
                    )),
                    None => breaches.push(format!("{shown}:{at}: a function that never closes")),
                }
            }
            let Some((module, depth)) = place(&src, path) else {
                continue;
            };
            let named = used_names(&code, depth).into_iter();
            let modules = named.filter_map(|n| match reexported.get(&n) {
                Some(m) => Some(m.clone()),
                None => n.starts_with(|c: char| c.is_ascii_lowercase()).then_some(n),
            });
            let entry: &mut BTreeSet<String> = uses.entry(module.clone()).or_default();
            entry.extend(modules.filter(|m| *m != module));
        }
        if let Some(cycle) = find_cycle(&uses) {
            breaches.push(format!(
                "{krate}: modules in a cycle: {}",
                cycle.join(" -> ")
            ));
        }
    }
    if breaches.is_empty() {
        return Ok(());
    }
    bail!(
        "the published crates break their shape rules:\n  {}",
        breaches.join("\n  ")
    )
}

/// Every `.rs` file under `dir`, sorted.
fn sources(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(d) = pending.pop() {
        for entry in std::fs::read_dir(&d).with_context(|| format!("listing {}", d.display()))? {
            let path = entry?.path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                found.push(path);
            }
        }
    }
    found.sort();
    Ok(found)
}

/// The top-level module a file belongs to and the file's depth below the crate root (1 for
/// `a.rs` and `a/mod.rs`, 2 for `a/b.rs`); `None` for the crate root.
fn place(src: &Path, path: &Path) -> Option<(String, usize)> {
    let rel = path.strip_prefix(src).ok()?;
    let parts: Vec<&str> = rel.iter().filter_map(|c| c.to_str()).collect();
    let name = parts.first()?.trim_end_matches(".rs");
    if matches!(name, "lib" | "main") {
        return None;
    }
    let depth = parts.len() - usize::from(parts.last() == Some(&"mod.rs"));
    Some((name.to_owned(), depth))
}

/// The code of a source file: its comments, and the insides of its string and character
/// literals, blanked (lines kept), and everything from a `#[cfg(test)]` module on cut.
fn code(text: &str) -> String {
    let text = match text
        .match_indices("#[cfg(test)]")
        .find(|(at, m)| text[at + m.len()..].trim_start().starts_with("mod "))
    {
        Some((at, _)) => &text[..at],
        None => text,
    };
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let blank = |c: char| if c == '\n' { '\n' } else { ' ' };
    let mut i = 0;
    while i < chars.len() {
        let (c, next) = (chars[i], chars.get(i + 1).copied());
        let end = if c == '/' && next == Some('/') {
            chars[i..]
                .iter()
                .position(|&c| c == '\n')
                .map_or(chars.len(), |k| i + k)
        } else if c == '/' && next == Some('*') {
            block_comment_end(&chars, i)
        } else if c == '"' || (c == 'r' && matches!(next, Some('"' | '#'))) {
            match string_end(&chars, i) {
                Some(end) => {
                    out.extend(&chars[i..=i]);
                    out.extend(chars[i + 1..end - 1].iter().map(|&c| blank(c)));
                    out.push(chars[end - 1]);
                    i = end;
                    continue;
                }
                None => {
                    out.push(c);
                    i += 1;
                    continue;
                }
            }
        } else if c == '\'' && next == Some('\\') {
            let close = chars
                .get(i + 3..)
                .and_then(|r| r.iter().position(|&c| c == '\''));
            close.map_or(i + 1, |k| i + 3 + k + 1)
        } else if c == '\'' && chars.get(i + 2) == Some(&'\'') {
            i + 3
        } else {
            out.push(c);
            i += 1;
            continue;
        };
        out.extend(chars[i..end].iter().map(|&c| blank(c)));
        i = end;
    }
    out
}

/// Where a block comment starting at `i` ends (nested comments counted).
fn block_comment_end(chars: &[char], mut i: usize) -> usize {
    let mut depth = 0;
    while i + 1 < chars.len() {
        match (chars[i], chars[i + 1]) {
            ('/', '*') => {
                depth += 1;
                i += 2;
            }
            ('*', '/') => {
                depth -= 1;
                i += 2;
                if depth == 0 {
                    return i;
                }
            }
            _ => i += 1,
        }
    }
    chars.len()
}

/// Where a string literal starting at `i` (`"…"`, or raw `r#"…"#`) ends, past its closing
/// quote; `None` when `r` starts no raw string (an identifier).
fn string_end(chars: &[char], i: usize) -> Option<usize> {
    if chars[i] == '"' {
        let mut k = i + 1;
        while k < chars.len() {
            match chars[k] {
                '\\' => k += 2,
                '"' => return Some(k + 1),
                _ => k += 1,
            }
        }
        return Some(chars.len());
    }
    if i > 0 && (chars[i - 1].is_alphanumeric() || chars[i - 1] == '_') {
        return None;
    }
    let hashes = chars[i + 1..].iter().take_while(|&&c| c == '#').count();
    if chars.get(i + 1 + hashes) != Some(&'"') {
        return None;
    }
    let closing: Vec<char> = std::iter::once('"')
        .chain(std::iter::repeat_n('#', hashes))
        .collect();
    let from = i + 2 + hashes;
    let at = chars[from..]
        .windows(closing.len())
        .position(|w| w == closing.as_slice());
    Some(at.map_or(chars.len(), |k| from + k + closing.len()))
}

/// Each function of `code` with a body: the line (1-based) of its `fn` and its length in
/// lines, `None` when its braces never close. A line whose code starts with `fn` (after
/// visibility, `const`, `async`, `unsafe`, `extern "…"`) starts one; a `;` before its `{`
/// makes it a declaration.
fn functions(code: &str) -> Vec<(usize, Option<usize>)> {
    let lines: Vec<&str> = code.lines().collect();
    let starts = lines.iter().enumerate().filter(|(_, l)| starts_fn(l));
    let mut found = Vec::new();
    for (i, _) in starts {
        let (mut depth, mut opened) = (0usize, false);
        let mut end = None;
        'lines: for (k, line) in lines[i..].iter().enumerate() {
            for c in line.chars() {
                match c {
                    ';' if !opened => break 'lines,
                    '{' => {
                        depth += 1;
                        opened = true;
                    }
                    '}' if opened => {
                        depth -= 1;
                        if depth == 0 {
                            end = Some(k + 1);
                            break 'lines;
                        }
                    }
                    _ => {}
                }
            }
        }
        if opened || end.is_some() {
            found.push((i + 1, end));
        }
    }
    found
}

/// Whether a line of code starts a function item.
fn starts_fn(line: &str) -> bool {
    let mut rest = line.trim_start();
    loop {
        let before = rest;
        if let Some(r) = rest.strip_prefix("pub(") {
            rest = r.split_once(')').map_or(r, |(_, r)| r).trim_start();
        }
        for q in ["pub ", "const ", "async ", "unsafe ", "default "] {
            rest = rest.strip_prefix(q).unwrap_or(rest);
        }
        if let Some(r) = rest.strip_prefix("extern ") {
            rest = r.trim_start();
            if let Some(r) = rest.strip_prefix('"') {
                rest = r.split_once('"').map_or(r, |(_, r)| r).trim_start();
            }
        }
        if rest == before {
            return rest.starts_with("fn ");
        }
    }
}

/// The names a file of `depth` reaches at the crate root: through `crate::`, or through as
/// many `super::` as it is deep (a module, or an item the crate root re-exports).
fn used_names(code: &str, depth: usize) -> BTreeSet<String> {
    let mut used = BTreeSet::new();
    let root = "super::".repeat(depth);
    for prefix in ["crate::", root.as_str()] {
        for (at, _) in code.match_indices(prefix) {
            let before = code[..at].chars().next_back();
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
                continue;
            }
            let after = &code[at + prefix.len()..];
            if after.starts_with("super::") {
                continue;
            }
            match after.strip_prefix('{') {
                Some(group) => used.extend(group_heads(group)),
                None => used.extend(ident(after)),
            }
        }
    }
    used
}

/// The first name of each path of a `{a::B, c}` group (up to its closing brace).
fn group_heads(group: &str) -> Vec<String> {
    let mut depth = 0usize;
    let mut heads = Vec::new();
    let mut start = true;
    for (i, c) in group.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => break,
            '}' => depth -= 1,
            ',' if depth == 0 => start = true,
            c if start && !c.is_whitespace() => {
                heads.extend(ident(&group[i..]));
                start = false;
            }
            _ => {}
        }
    }
    heads
}

/// The identifier at the start of `s`.
fn ident(s: &str) -> Option<String> {
    let end = s
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(s.len());
    (end > 0).then(|| s[..end].to_owned())
}

/// The names the crate root re-exports from its own modules (`pub use m::{A, b::C as D};`),
/// each with the top-level module it comes from.
fn reexports(root: &str) -> BTreeMap<String, String> {
    let mut found = BTreeMap::new();
    for item in root.split(';') {
        let Some(at) = item.find("use ").filter(|&at| item[..at].contains("pub")) else {
            continue;
        };
        let path = item[at + "use ".len()..].trim();
        let path = path
            .trim_start_matches("self::")
            .trim_start_matches("crate::");
        let Some((module, rest)) = path.split_once("::") else {
            continue;
        };
        let leaves = rest.replace(['{', '}'], ",");
        for leaf in leaves.split(',').map(str::trim).filter(|l| !l.is_empty()) {
            let name = match leaf.split_once(" as ") {
                Some((_, alias)) => alias.trim(),
                None => leaf.rsplit("::").next().unwrap_or(leaf),
            };
            if !name.is_empty() && name != "*" && name != "self" {
                found.insert(name.to_owned(), module.trim().to_owned());
            }
        }
    }
    found
}

/// A cycle of the module graph, as the path that closes it, if there is one.
fn find_cycle(uses: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    /// Depth-first from `m`: `state` 1 on the current path, 2 done.
    fn visit(
        m: &str,
        uses: &BTreeMap<String, BTreeSet<String>>,
        state: &mut BTreeMap<String, u8>,
        path: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        state.insert(m.to_owned(), 1);
        path.push(m.to_owned());
        for next in uses.get(m).into_iter().flatten() {
            match state.get(next.as_str()).copied().unwrap_or(0) {
                1 => {
                    let from = path.iter().position(|p| p == next).unwrap_or(0);
                    let mut cycle = path[from..].to_vec();
                    cycle.push(next.clone());
                    return Some(cycle);
                }
                0 if uses.contains_key(next) => {
                    if let Some(c) = visit(next, uses, state, path) {
                        return Some(c);
                    }
                }
                _ => {}
            }
        }
        path.pop();
        state.insert(m.to_owned(), 2);
        None
    }
    let mut state = BTreeMap::new();
    for m in uses.keys() {
        if state.get(m.as_str()).copied().unwrap_or(0) == 0 {
            if let Some(c) = visit(m, uses, &mut state, &mut Vec::new()) {
                return Some(c);
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graph(edges: &[(&str, &[&str])]) -> BTreeMap<String, BTreeSet<String>> {
        edges
            .iter()
            .map(|(m, to)| (m.to_string(), to.iter().map(|t| t.to_string()).collect()))
            .collect()
    }

    fn names(code_text: &str, depth: usize) -> Vec<String> {
        used_names(&code(code_text), depth).into_iter().collect()
    }

    #[test]
    fn a_chain_back_to_a_module_is_a_cycle() {
        let g = graph(&[("a", &["b"]), ("b", &["c"]), ("c", &["a"]), ("d", &["a"])]);
        let cycle = ["a", "b", "c", "a"].map(String::from).to_vec();
        assert_eq!(find_cycle(&g), Some(cycle));
        let dag = graph(&[("a", &["b", "c"]), ("b", &["c"]), ("c", &[])]);
        assert_eq!(find_cycle(&dag), None);
    }

    #[test]
    fn uses_are_read_from_paths_and_groups_of_the_code_only() {
        let text = "use crate::{\n    a::X,\n    b,\n    c::{D, E},\n};\n// crate::commented\n\
                    /* crate::block */ fn f() { crate::d::g(); crate::Error::x(); }\n\
                    const S: &str = \"crate::quoted\";\n#[cfg(test)]\nmod tests { use crate::e; }";
        assert_eq!(names(text, 1), ["Error", "a", "b", "c", "d"]);
        // A `#[cfg(test)]` item that is not the tests module ends nothing.
        assert_eq!(
            names("#[cfg(test)]\nconst X: u8 = 1;\nuse crate::a;", 1),
            ["a"]
        );
    }

    #[test]
    fn super_reaches_the_root_from_as_deep_as_the_file_is() {
        let text = "use super::a;\nuse super::super::b;\nuse super::super::super::c;";
        assert_eq!(names(text, 1), ["a"]);
        assert_eq!(names(text, 2), ["b"]);
    }

    #[test]
    fn the_root_re_exports_map_names_to_their_modules() {
        let root = "pub use error::{Error, Result};\n#[doc(hidden)]\npub use scope::Scope;\n\
                    pub(crate) use self::record::{stored::Stored as Kept, Message};\n\
                    pub use chrono;\nuse table::Hidden;";
        let found = reexports(&code(root));
        let expected = [
            ("Error", "error"),
            ("Kept", "record"),
            ("Message", "record"),
            ("Result", "error"),
            ("Scope", "scope"),
        ];
        let expected = expected.map(|(n, m)| (n.to_owned(), m.to_owned()));
        assert_eq!(found, BTreeMap::from(expected));
    }

    #[test]
    fn a_function_is_measured_from_its_signature_to_its_closing_brace() {
        let mut text = String::from(
            "    pub(in crate::a) unsafe extern \"C\" fn long(\n        x: u8,\n    ) -> u8 {\n",
        );
        for _ in 0..MAX_FN_LINES - 3 {
            text.push_str("        let c = '{'; // }\n");
        }
        text.push_str("    } // end\n    fn declared(&self);\n    fn one() -> u8 { 1 }\n");
        assert_eq!(
            functions(&code(&text)),
            [(1, Some(MAX_FN_LINES + 1)), (MAX_FN_LINES + 3, Some(1))]
        );
        assert_eq!(functions(&code("fn open() {\n    {\n")), [(1, None)]);
    }

    #[test]
    fn every_published_crate_is_checked() {
        for krate in crate::package::PUBLISHED {
            assert!(
                CRATES.contains(&format!("crates/{krate}").as_str()),
                "{krate}"
            );
        }
    }
}
