//! Embedding vectors.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The largest embedding MemGPT 0.3.x stores (`MAX_EMBEDDING_DIM`): its PostgreSQL columns
/// are `vector(4096)`, each embedding zero-padded to that length.
pub const MAX_EMBEDDING_DIM: usize = 4096;

/// An embedding vector of 1 to [`MAX_EMBEDDING_DIM`] finite `f32` components.
///
/// It holds the true vector (its length is MemGPT's `embedding_dim`); backends pad it to
/// 4096 where MemGPT's schema requires.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "Vec<f32>", into = "Vec<f32>")]
pub struct Embedding(Vec<f32>);

impl Embedding {
    /// Validates and wraps a vector.
    pub fn new(values: Vec<f32>) -> Result<Self> {
        if values.is_empty() {
            return Err(Error::invalid("embedding", "is empty"));
        }
        if values.len() > MAX_EMBEDDING_DIM {
            return Err(Error::invalid(
                "embedding",
                format!(
                    "has {} dimensions, more than the maximum {MAX_EMBEDDING_DIM}",
                    values.len()
                ),
            ));
        }
        if let Some(i) = values.iter().position(|v| !v.is_finite()) {
            return Err(Error::invalid(
                "embedding",
                format!(
                    "component {i} is {} (NaN and infinity are not stored)",
                    values[i]
                ),
            ));
        }
        Ok(Embedding(values))
    }

    /// Rebuilds an embedding from MemGPT's zero-padded storage: the first `dim` components
    /// of `padded`. Without a `dim`, trailing zeros are taken as padding.
    pub fn from_padded(mut padded: Vec<f32>, dim: Option<usize>) -> Result<Self> {
        let dim = match dim {
            Some(d) if d <= padded.len() => d,
            Some(d) => {
                return Err(Error::invalid(
                    "embedding_dim",
                    format!(
                        "{d} exceeds the stored vector's {} components",
                        padded.len()
                    ),
                ))
            }
            None => padded.iter().rposition(|v| *v != 0.0).map_or(1, |i| i + 1),
        };
        padded.truncate(dim);
        Embedding::new(padded)
    }

    /// The components.
    pub fn as_slice(&self) -> &[f32] {
        &self.0
    }

    /// The number of dimensions (MemGPT's `embedding_dim`).
    pub fn dim(&self) -> usize {
        self.0.len()
    }

    /// The vector zero-padded to `len` components (at least its own length).
    pub fn padded(&self, len: usize) -> Vec<f32> {
        let mut v = self.0.clone();
        if v.len() < len {
            v.resize(len, 0.0);
        }
        v
    }

    /// Squared L2 distance to `other`, treating missing components as zero (as MemGPT's
    /// zero padding does).
    pub fn l2_squared(a: &[f32], b: &[f32]) -> f64 {
        let n = a.len().max(b.len());
        let mut sum = 0.0f64;
        for i in 0..n {
            let x = f64::from(a.get(i).copied().unwrap_or(0.0));
            let y = f64::from(b.get(i).copied().unwrap_or(0.0));
            sum += (x - y) * (x - y);
        }
        sum
    }
}

impl TryFrom<Vec<f32>> for Embedding {
    type Error = Error;
    fn try_from(v: Vec<f32>) -> Result<Self> {
        Embedding::new(v)
    }
}

impl From<Embedding> for Vec<f32> {
    fn from(e: Embedding) -> Self {
        e.0
    }
}
