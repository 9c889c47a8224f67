#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod filter;
mod index;

pub use index::{MemoryIndex, MAX_SAMPLES};
/// The rig-core this crate implements (pinned: `=0.40.0`).
pub use rig;
