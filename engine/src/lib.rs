//! orcd-engine: the worker-orcd engine core — the op interface, the KV cache and batch types,
//! model adapters (one decoder graph) and generation, above the leaf crates it re-exports.
//! Backends (orcd-cpu, later CUDA) implement [`ops::Ops`]; orcd-backends is the registry that
//! picks one; the `worker-orcd` crate is the command line.
//!
//! Module map (see docs/ARCHITECTURE.md):
//! - [`gguf`], [`quant`], [`npy`], [`faults`]: re-exported from orcd-gguf (GGUF reader/writer,
//!   block formats, `.npy` interchange, test-only planted bugs).
//! - [`tokenizer`], [`chat`]: re-exported from orcd-tokenizer (tokenizers, chat templates).
//! - [`sampler`]: orcd-sampler, re-exported (llama.cpp's sampler chain).
//! - [`ops`]: the op interface (and the KV, batch and row-group types it speaks);
//!   [`model`]: architectures written once against it, [`model::AnyModel`] the object-safe facade;
//!   [`generate`]: the generation loop; [`testing`]: deterministic inputs for tests and benches.
//!
//! Invariant: dependencies point one way — orcd-gguf ← orcd-tokenizer, orcd-sampler ← this crate
//! ← backends (orcd-cpu) ← orcd-backends ← worker-orcd, orcd-conformance.
//! The re-exports keep `crate::gguf::…`, `orcd_engine::tokenizer::…` etc. the paths they were
//! before the split, and [`Error`] converts every lower crate's error (`?` works across them).

pub mod batcher;
pub mod bench;
pub mod error;
pub mod generate;
pub mod model;
pub mod ops;
pub mod testing;

pub use orcd_gguf::{faults, gguf, npy, quant};
pub use orcd_sampler as sampler;
pub use orcd_tokenizer::{chat, tokenizer};

pub use error::{Error, Result};
