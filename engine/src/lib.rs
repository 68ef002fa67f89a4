//! orcd-engine: the worker-orcd inference engine.
//!
//! Module map (see docs/ARCHITECTURE.md):
//! - [`gguf`], [`quant`], [`npy`], [`faults`]: crate orcd-gguf, re-exported (GGUF reader/writer,
//!   block formats, `.npy` interchange, test-only planted bugs).
//! - [`tokenizer`]: tokenizer from GGUF metadata (SentencePiece, byte-level BPE, WordPiece), llama.cpp ids.
//! - [`sampler`]: crate orcd-sampler, re-exported (llama.cpp's sampler chain).
//! - [`cli`]: the `worker-orcd` command line (DESIGN §6).

pub mod backend;
pub mod chat;
pub mod cli;
pub mod error;
pub mod generate;
pub mod model;
pub mod ops;
pub mod tokenizer;

pub use orcd_gguf::{faults, gguf, npy, quant};
pub use orcd_sampler as sampler;

pub use error::{Error, Result};
