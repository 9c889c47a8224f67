//! A deterministic local embedding model for the tests and the example: each word adds to
//! the dimensions its letters hash to, then the vector is normalized; texts that share
//! words are near. No network.

use rig::embeddings::{Embedding, EmbeddingError, EmbeddingModel};

/// The toy model, of `dims` dimensions.
#[derive(Debug, Clone)]
pub struct Toy {
    pub dims: usize,
}

/// The toy embedding of `text`.
pub fn embed(text: &str, dims: usize) -> Vec<f64> {
    let mut v = vec![0.0f64; dims.max(1)];
    for word in text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| w.len() > 2)
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
    let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt();
    if norm > 0.0 {
        v.iter_mut().for_each(|x| *x /= norm);
    }
    v
}

impl EmbeddingModel for Toy {
    const MAX_DOCUMENTS: usize = 64;
    type Client = ();

    fn make(_: &(), _: impl Into<String>, dims: Option<usize>) -> Self {
        Toy {
            dims: dims.unwrap_or(32),
        }
    }

    fn ndims(&self) -> usize {
        self.dims
    }

    async fn embed_texts(
        &self,
        texts: impl IntoIterator<Item = String> + Send,
    ) -> Result<Vec<Embedding>, EmbeddingError> {
        Ok(texts
            .into_iter()
            .map(|document| Embedding {
                vec: embed(&document, self.dims),
                document,
            })
            .collect())
    }
}
