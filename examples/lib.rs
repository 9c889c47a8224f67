//! Short programs for the common jobs of memgpt-store, run with `cargo run --example NAME`:
//!
//! * `chat_history` — keep an agent's chat history and page through it;
//! * `passages_search` — load a document's passages and search them by vector and text;
//! * `by_url` — the same code on SQLite or PostgreSQL, picked by `MEMGPT_DATABASE_URL`;
//! * `axum_memory` — an axum service storing and searching an agent's memory through the
//!   async facade.
//!
//! This library holds what they share: a toy embedding, so that they run without a model.

/// Words too common to tell texts apart.
const STOP: &[&str] = &[
    "a", "an", "and", "at", "before", "every", "for", "how", "in", "it", "long", "of", "the",
    "then", "to", "until",
];

/// A deterministic toy embedding of `dim` floats: each word but the most common adds to
/// the dimensions its letters hash to, then the vector is normalized. Texts sharing words
/// are near.
pub fn embed(text: &str, dim: usize) -> Vec<f32> {
    let mut v = vec![0.0f32; dim.max(1)];
    for word in text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty() && !STOP.contains(&w.to_lowercase().as_str()))
    {
        let h = word
            .to_lowercase()
            .bytes()
            .fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
                (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
            });
        let len = v.len() as u64;
        v[(h % len) as usize] += 1.0;
        v[((h >> 32) % len) as usize] += 0.5;
    }
    let norm = v
        .iter()
        .map(|x| x * x)
        .sum::<f32>()
        .sqrt()
        .max(f32::MIN_POSITIVE);
    v.iter().map(|x| x / norm).collect()
}
