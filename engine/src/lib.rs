//! orcd-engine: the worker-orcd inference engine.
//!
//! Module map (see docs/ARCHITECTURE.md):
//! - [`gguf`]: GGUF reader (mmap, bounds-checked) and writer; ggml type table.
//! - [`quant`]: block formats, dequantize / quantize, scalar reference path.
//! - [`npy`]: `.npy` interchange for goldens and the `tensor` command.
//! - [`tokenizer`]: tokenizer from GGUF metadata (SentencePiece, byte-level BPE, WordPiece), llama.cpp ids.
//! - [`sampler`]: crate orcd-sampler, re-exported (llama.cpp's sampler chain).
//! - [`cli`]: the `worker-orcd` command line (DESIGN §6).

pub mod backend;
pub mod chat;
pub mod cli;
pub mod error;
pub mod faults;
pub mod generate;
pub mod gguf;
pub mod model;
pub mod npy;
pub mod ops;
pub mod quant;
pub mod tokenizer;

pub use orcd_sampler as sampler;

pub use error::{Error, Result};
