//! Hybrid search: a scope's full-text ranks and exact vector ranks fused by reciprocal-rank
//! fusion (RRF; Cormack, Clarke and Büttcher, SIGIR 2009), decided here once for every
//! backend.
//!
//! Each side ranks at most [`HybridOptions::candidates`] records of the scope (and the
//! filters):
//!
//! * the **text** side: records whose text holds at least one word of the query (the
//!   full-text rule of [`crate::fulltext`]), highest sum of the weights of the distinct
//!   query words each holds first, ties by id; rarer words weigh more
//!   ([`word_weights`]: `ln(1 + n / df)`, an inverse document frequency within the scope
//!   and filters); at most [`MAX_WORDS`] words;
//! * the **vector** side: the nearest records by exact L2 distance, ties by id (as
//!   `query`).
//!
//! A record's score is the sum over the sides that ranked it of `weight / (k + rank)`,
//! ranks counted from 1. The result is the `top_k` highest scores, ties by id. A side with
//! nothing to rank (no word in the query or none matching; no embedding stored) adds
//! nothing: the search degrades to the other side, never to an error.

use std::collections::HashMap;

use uuid::Uuid;

use crate::error::{Error, Result};
use crate::record::Record;
use crate::row::{required, Col, Decode, Row, Undecodable};

/// The fusion constant of the RRF paper.
pub const DEFAULT_K: f64 = 60.0;

/// The records each side contributes by default.
pub const DEFAULT_CANDIDATES: usize = 100;

/// The most records one side may contribute.
pub const MAX_CANDIDATES: usize = 10_000;

/// The most distinct words a hybrid search's text may hold (its text side looks each up in
/// the full-text index).
pub const MAX_WORDS: usize = 64;

/// The words of a hybrid search's text ([`query_words`](crate::fulltext::query_words)).
///
/// # Errors
/// [`Error::InvalidInput`] (`text`) for a NUL byte, or more than [`MAX_WORDS`] distinct
/// words.
pub fn text_words(text: &str) -> Result<Vec<String>> {
    let words = crate::fulltext::query_words(text)?;
    if words.len() > MAX_WORDS {
        return Err(Error::invalid(
            "text",
            format!(
                "{} distinct words: a hybrid search ranks at most {MAX_WORDS}",
                words.len()
            ),
        ));
    }
    Ok(words)
}

/// The options of a hybrid search: the fusion constant, a weight per side and how many
/// candidates each side contributes.
///
/// ```
/// use memgpt_core::hybrid::HybridOptions;
/// let options = HybridOptions::new().k(20.0).weights(1.0, 2.0).candidates(50);
/// assert_eq!((options.k, options.text_weight, options.vector_weight), (20.0, 1.0, 2.0));
/// assert_eq!(HybridOptions::default().k, 60.0);
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct HybridOptions {
    /// The fusion constant `k` of `1 / (k + rank)`: larger values flatten the difference
    /// between ranks. Default [`DEFAULT_K`].
    pub k: f64,
    /// The weight of the text side. Default 1; 0 leaves the side out.
    pub text_weight: f64,
    /// The weight of the vector side. Default 1; 0 leaves the side out.
    pub vector_weight: f64,
    /// How many records each side ranks at most (never fewer than the call's `top_k`).
    /// Default [`DEFAULT_CANDIDATES`], at most [`MAX_CANDIDATES`].
    pub candidates: usize,
}

impl Default for HybridOptions {
    fn default() -> Self {
        HybridOptions {
            k: DEFAULT_K,
            text_weight: 1.0,
            vector_weight: 1.0,
            candidates: DEFAULT_CANDIDATES,
        }
    }
}

impl HybridOptions {
    /// The defaults: `k` 60, both weights 1, 100 candidates a side.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the fusion constant.
    #[must_use]
    pub fn k(mut self, k: f64) -> Self {
        self.k = k;
        self
    }

    /// Sets the weights of the text and the vector side.
    #[must_use]
    pub fn weights(mut self, text: f64, vector: f64) -> Self {
        self.text_weight = text;
        self.vector_weight = vector;
        self
    }

    /// Sets how many records each side ranks at most.
    #[must_use]
    pub fn candidates(mut self, n: usize) -> Self {
        self.candidates = n;
        self
    }

    /// Checks the options.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] naming the option: `k` or a weight negative or not finite,
    /// both weights 0 (`weights`), `candidates` 0 or above [`MAX_CANDIDATES`].
    pub fn validate(&self) -> Result<()> {
        for (field, v) in [
            ("k", self.k),
            ("text_weight", self.text_weight),
            ("vector_weight", self.vector_weight),
        ] {
            if !v.is_finite() || v < 0.0 {
                return Err(Error::invalid(
                    field,
                    format!("must be a finite number of at least 0, not {v}"),
                ));
            }
        }
        if self.text_weight == 0.0 && self.vector_weight == 0.0 {
            return Err(Error::invalid("weights", "at least one must be above 0"));
        }
        if self.candidates == 0 || self.candidates > MAX_CANDIDATES {
            return Err(Error::invalid(
                "candidates",
                format!(
                    "must be between 1 and {MAX_CANDIDATES}, not {}",
                    self.candidates
                ),
            ));
        }
        Ok(())
    }

    /// How many records each side ranks for a call of `top_k`.
    pub fn per_side(&self, top_k: usize) -> usize {
        self.candidates.max(top_k)
    }
}

/// One row of [`FullText::text_frequencies`](crate::backend::FullText::text_frequencies):
/// how many records hold the query's word of index `word` (`-1`: any word of the query).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WordCount {
    /// The word's index among the query's words; `-1` for any of them.
    pub word: i64,
    /// How many records of the scope and filters hold it.
    pub n: u64,
}

/// `SELECT word, n`.
impl Decode for WordCount {
    fn decode(row: &impl Row) -> Result<Self, Undecodable> {
        let (word, n) = (Col::new(0, "word"), Col::new(1, "n"));
        Ok(WordCount {
            word: required(word, row.int(word)?)?,
            n: u64::try_from(required(n, row.int(n)?)?).unwrap_or_default(),
        })
    }
}

/// The weight of each of `words` words on the text side, from the counts of
/// [`FullText::text_frequencies`](crate::backend::FullText::text_frequencies): a word held by
/// `df` of the `n` records holding any query word weighs `ln(1 + n / df)` (the rarer, the
/// heavier: "the" counts for little beside a name), in millionths, rounded, so that a
/// record's score — the sum of its words' weights — is an integer, the same on every
/// backend whatever order the database adds in. `None` for a word no record holds.
///
/// ```
/// use memgpt_core::hybrid::{word_weights, WordCount};
/// let counts = [
///     WordCount { word: -1, n: 4 },
///     WordCount { word: 0, n: 3 },
///     WordCount { word: 1, n: 1 },
/// ];
/// // ln(1 + 4/3), ln(1 + 4/1); the third word is held by no record.
/// assert_eq!(word_weights(&counts, 3), [Some(847_298), Some(1_609_438), None]);
/// ```
pub fn word_weights(counts: &[WordCount], words: usize) -> Vec<Option<i64>> {
    let any = counts.iter().find(|c| c.word == -1).map_or(0, |c| c.n);
    let mut weights = vec![None; words];
    for c in counts {
        let held = usize::try_from(c.word)
            .ok()
            .and_then(|i| weights.get_mut(i));
        if let (Some(w), true) = (held, c.n > 0 && any > 0) {
            // At most ln(1 + 2^64) * 1e6 < 4.5e7: far inside i64, and the sum of 64 too.
            *w = Some(((any as f64 / c.n as f64).ln_1p() * 1e6).round() as i64);
        }
    }
    weights
}

/// Fuses the two sides' rankings (each best first) by RRF; returns the `top_k` records of
/// the highest scores, ties by id.
///
/// ```
/// use memgpt_core::hybrid::{fuse, HybridOptions};
/// use memgpt_core::{Message, Record, Role};
/// use memgpt_core::uuid::Uuid;
/// let (user, agent) = (Uuid::from_u128(1), Uuid::from_u128(2));
/// let m = |id: u128| Message::builder(user, agent, Role::User).id(Uuid::from_u128(id)).build();
/// // 3 is second on both sides: 2/62 beats 1/61 + 0 for 1 and 2.
/// let fused = fuse(vec![m(1)?, m(3)?], vec![m(2)?, m(3)?], &HybridOptions::new(), 2);
/// let ids: Vec<u128> = fused.iter().map(|r| r.id().as_u128()).collect();
/// assert_eq!(ids, [3, 1]);
/// # Ok::<(), memgpt_core::Error>(())
/// ```
pub fn fuse<R: Record>(
    by_text: Vec<R>,
    by_vector: Vec<R>,
    options: &HybridOptions,
    top_k: usize,
) -> Vec<R> {
    let mut scored: HashMap<Uuid, (f64, R)> = HashMap::new();
    for (weight, side) in [
        (options.text_weight, by_text),
        (options.vector_weight, by_vector),
    ] {
        for (i, record) in side.into_iter().enumerate() {
            let score = weight / (options.k + (i + 1) as f64);
            scored
                .entry(record.id())
                .and_modify(|(s, _)| *s += score)
                .or_insert((score, record));
        }
    }
    let mut fused: Vec<(f64, R)> = scored.into_values().collect();
    fused.sort_by(|(a, ra), (b, rb)| b.total_cmp(a).then_with(|| ra.id().cmp(&rb.id())));
    fused.into_iter().take(top_k).map(|(_, r)| r).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_out_of_range_are_named() {
        let bad = [
            (HybridOptions::new().k(-1.0), "k"),
            (HybridOptions::new().k(f64::NAN), "k"),
            (
                HybridOptions::new().weights(f64::INFINITY, 1.0),
                "text_weight",
            ),
            (HybridOptions::new().weights(1.0, -0.5), "vector_weight"),
            (HybridOptions::new().weights(0.0, 0.0), "weights"),
            (HybridOptions::new().candidates(0), "candidates"),
            (
                HybridOptions::new().candidates(MAX_CANDIDATES + 1),
                "candidates",
            ),
        ];
        for (options, name) in bad {
            let e = options.validate().unwrap_err();
            assert!(
                matches!(&e, Error::InvalidInput { field, .. } if field == name),
                "{e:?}"
            );
        }
        HybridOptions::new()
            .k(0.0)
            .weights(0.0, 1.0)
            .candidates(MAX_CANDIDATES)
            .validate()
            .unwrap();
    }
}
