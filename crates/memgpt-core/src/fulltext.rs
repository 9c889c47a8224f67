//! The full-text rule: how `query_text` cuts a text and a query into words and compares
//! them, the same on every backend (docs/COMPATIBILITY.md, "Full-text search").
//!
//! 1. The text's first [`FULL_TEXT_INDEXED_CHARS`](crate::FULL_TEXT_INDEXED_CHARS) characters
//!    are indexed; the query is read whole.
//! 2. A few letters are spelt out in ASCII ([`LETTER_FOLDS`]: `ß` is `ss`, `æ` `ae`, `œ`
//!    `oe`, `ø` `o`, …).
//! 3. The combining accents U+0300–U+0331 vanish (`e` + U+0301 is `é`).
//! 4. Every character that is not a letter or a digit separates words: white space,
//!    punctuation, symbols, most emoji. `don't` is `don` and `t`, `e-mail` is `e` and `mail`,
//!    `C++` is `c`, `snake_case` is `snake` and `case`, `3.14` is `3` and `14`.
//! 5. Each character of a word is folded: upper case to lower case in every script that has
//!    cases, and Latin letters lose their diacritics (`É`, `é`, `è`, `ê`, `ë` are all `e`).
//!    Other scripts keep theirs (`ή` stays `ή`).
//! 6. A word longer than [`MAX_WORD_CHARS`] characters (after folding) is not indexed.
//!
//! There are no stop words (`to be` finds "To be or not to be"), no stemming (`running`
//! does not find `run`), no prefix matching (`ban` does not find `banana`). A record is
//! found when every word of the query is among the words of its text, anywhere in it (a
//! query word that punctuation cuts in pieces needs each piece, not the pieces side by side).
//!
//! Steps 3 to 5 are SQLite FTS5's `unicode61` tokenizer with `remove_diacritics 2`, whose
//! character tables this module holds (its private `tables`); SQLite applies step 2 in the
//! SQL that feeds its full-text tables, PostgreSQL all of it in `memgpt_text_words`
//! (migration 000007). [`words`] is the reference both are tested against, character by
//! character (memgpt-migrate's test `full_text_rule`).

mod tables;

use crate::error::{Error, Result};

/// Words longer than this many characters (after folding) are not indexed, and a query
/// holding one finds nothing. PostgreSQL holds at most 2,046 bytes in a word of its index;
/// 500 characters take at most 2,000.
pub const MAX_WORD_CHARS: usize = 500;

/// The letters spelt out in ASCII before anything else (step 2 of the rule), upper and
/// lower case. Neither SQLite's nor PostgreSQL's tokenizers fold them: both backends apply
/// this table in SQL.
pub const LETTER_FOLDS: &[(char, &str)] = &[
    ('ß', "ss"),
    ('ẞ', "ss"),
    ('æ', "ae"),
    ('Æ', "ae"),
    ('œ', "oe"),
    ('Œ', "oe"),
    ('ø', "o"),
    ('Ø', "o"),
    ('đ', "d"),
    ('Đ', "d"),
    ('ð', "d"),
    ('Ð', "d"),
    ('ł', "l"),
    ('Ł', "l"),
    ('þ', "th"),
    ('Þ', "th"),
    ('ħ', "h"),
    ('Ħ', "h"),
    ('ı', "i"),
    ('ĳ', "ij"),
    ('Ĳ', "ij"),
    ('ŀ', "l"),
    ('Ŀ', "l"),
    ('ŧ', "t"),
    ('Ŧ', "t"),
];

fn in_ranges(ranges: &[(u32, u32)], c: u32) -> bool {
    let i = ranges.partition_point(|&(_, hi)| hi < c);
    ranges.get(i).is_some_and(|&(lo, _)| lo <= c)
}

/// What one character of the text is under the rule.
enum Piece {
    /// Spelt out in ASCII letters (step 2).
    Spelt(&'static str),
    /// Vanishes (step 3).
    Dropped,
    /// Separates words (step 4).
    Separator,
    /// Part of a word, folded (step 5).
    Letter(char),
}

fn piece(c: char) -> Piece {
    if c.is_ascii() {
        return match c {
            'a'..='z' | '0'..='9' => Piece::Letter(c),
            'A'..='Z' => Piece::Letter(c.to_ascii_lowercase()),
            _ => Piece::Separator,
        };
    }
    if let Some((_, s)) = LETTER_FOLDS.iter().find(|(l, _)| *l == c) {
        return Piece::Spelt(s);
    }
    let code = u32::from(c);
    if in_ranges(tables::DROPPED, code) {
        return Piece::Dropped;
    }
    if in_ranges(tables::SEPARATORS, code) {
        return Piece::Separator;
    }
    let folded = tables::FOLDS
        .binary_search_by_key(&code, |&(from, _)| from)
        .ok()
        .and_then(|i| char::from_u32(tables::FOLDS[i].1));
    Piece::Letter(folded.unwrap_or(c))
}

/// Calls `f` with each word of `text`, folded, in order, whatever its length.
fn each_word(text: &str, mut f: impl FnMut(String)) {
    let mut word = String::new();
    for c in text.chars() {
        match piece(c) {
            Piece::Spelt(s) => word.push_str(s),
            Piece::Dropped => {}
            Piece::Separator => {
                if !word.is_empty() {
                    f(std::mem::take(&mut word));
                }
            }
            Piece::Letter(l) => word.push(l),
        }
    }
    if !word.is_empty() {
        f(word);
    }
}

/// The words a text is indexed under, folded, in the order they occur (repeats included):
/// steps 2 to 6 of the rule. The caller cuts the text to the indexed prefix first.
///
/// ```
/// use memgpt_core::fulltext::words;
/// assert_eq!(words("To be, or NOT to be?"), ["to", "be", "or", "not", "to", "be"]);
/// assert_eq!(words("Crème brûlée — Straße"), ["creme", "brulee", "strasse"]);
/// assert_eq!(words("don't e-mail C++ 3.14"), ["don", "t", "e", "mail", "c", "3", "14"]);
/// ```
pub fn words(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    each_word(text, |w| {
        if w.chars().count() <= MAX_WORD_CHARS {
            out.push(w);
        }
    });
    out
}

/// The words of a full-text query, folded, each once, in order of first occurrence. Empty
/// when the query holds no word, or a word longer than [`MAX_WORD_CHARS`] (which no text is
/// indexed under): such a query finds nothing.
///
/// ```
/// use memgpt_core::fulltext::query_words;
/// assert_eq!(query_words("Café au lait, café!")?, ["cafe", "au", "lait"]);
/// assert!(query_words("?! 🚀")?.is_empty());
/// # Ok::<(), memgpt_core::Error>(())
/// ```
///
/// # Errors
/// [`Error::InvalidInput`] when the query holds a NUL byte.
pub fn query_words(query: &str) -> Result<Vec<String>> {
    if query.contains('\0') {
        return Err(Error::invalid("query", "contains a NUL byte"));
    }
    let mut out: Vec<String> = Vec::new();
    let mut too_long = false;
    each_word(query, |w| {
        if w.chars().count() > MAX_WORD_CHARS {
            too_long = true;
        } else if !out.contains(&w) {
            out.push(w);
        }
    });
    if too_long {
        out.clear();
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tables_are_sorted(ranges: &[(u32, u32)]) -> bool {
        ranges.iter().all(|(lo, hi)| lo <= hi) && ranges.windows(2).all(|w| w[0].1 < w[1].0)
    }

    #[test]
    fn the_tables_are_sorted_and_disjoint() {
        assert!(tables_are_sorted(tables::SEPARATORS));
        assert!(tables_are_sorted(tables::DROPPED));
        assert!(tables::FOLDS.windows(2).all(|w| w[0].0 < w[1].0));
        for &(from, _) in tables::FOLDS {
            assert!(!in_ranges(tables::SEPARATORS, from), "{from:#x}");
            assert!(!in_ranges(tables::DROPPED, from), "{from:#x}");
        }
        for (l, s) in LETTER_FOLDS {
            assert!(!in_ranges(tables::SEPARATORS, u32::from(*l)), "{l}");
            assert!(s.chars().all(|c| c.is_ascii_lowercase()), "{l}");
        }
    }

    /// A folded word folds to itself and stays one word: a backend may fold a query word
    /// that the rule has folded already (SQLite's tokenizer does).
    #[test]
    fn folding_is_idempotent_for_every_code_point() {
        for c in (1..=0x10_FFFF).filter_map(char::from_u32) {
            let once = words(&c.to_string());
            let joined = once.concat();
            let twice = words(&joined);
            assert_eq!(twice, once, "U+{:04X}", u32::from(c));
        }
    }

    #[test]
    fn the_rule_by_example() {
        assert_eq!(words("ÉCOLE été"), ["ecole", "ete"]);
        assert_eq!(words("re\u{301}sume\u{301}"), ["resume"]);
        assert_eq!(
            words("ÆSIR Œuvre SØSTER STRAẞE"),
            ["aesir", "oeuvre", "soster", "strasse"]
        );
        assert_eq!(words("ΑΘΉΝΑ Привет"), ["αθήνα", "привет"]);
        assert_eq!(
            words("see https://example.com/a?b=1"),
            ["see", "https", "example", "com", "a", "b", "1"]
        );
        assert_eq!(
            words("snake_case camelCase"),
            ["snake", "case", "camelcase"]
        );
        assert_eq!(words("🚀 launch"), ["launch"]);
        // Characters SQLite's tables do not know (assigned after them) count as letters.
        assert_eq!(words("🤖 robot"), ["🤖", "robot"]);
        let long = "x".repeat(MAX_WORD_CHARS + 1);
        assert_eq!(words(&format!("a {long} b")), ["a", "b"]);
        assert_eq!(words(&"ß".repeat(250)), ["ss".repeat(250)]);
        assert!(words(&"ß".repeat(251)).is_empty());
    }

    #[test]
    fn queries() {
        assert_eq!(
            query_words("to be or not to be").unwrap(),
            ["to", "be", "or", "not"]
        );
        assert!(query_words("").unwrap().is_empty());
        assert!(query_words("--- ...").unwrap().is_empty());
        let long = "y".repeat(MAX_WORD_CHARS + 1);
        assert!(query_words(&format!("start {long}")).unwrap().is_empty());
        assert_eq!(
            query_words(&"x".repeat(MAX_WORD_CHARS)).unwrap(),
            ["x".repeat(MAX_WORD_CHARS)]
        );
        assert!(matches!(
            query_words("a\0b"),
            Err(Error::InvalidInput { .. })
        ));
    }
}
