//! orcd-engine: the worker-orcd inference engine — the op interface, backends, model adapters,
//! generation and the `worker-orcd` command line, above the leaf crates it re-exports.
//!
//! Module map (see docs/ARCHITECTURE.md):
//! - [`gguf`], [`quant`], [`npy`], [`faults`]: re-exported from orcd-gguf (GGUF reader/writer,
//!   block formats, `.npy` interchange, test-only planted bugs).
//! - [`tokenizer`], [`chat`]: re-exported from orcd-tokenizer (tokenizers, chat templates).
//! - [`sampler`]: orcd-sampler, re-exported (llama.cpp's sampler chain).
//! - [`ops`]: the op interface; [`backend`]: its CPU implementations; [`model`]: architectures
//!   written once against it; [`generate`]: the generation loop.
//! - [`cli`]: the `worker-orcd` command line (DESIGN §6).
//!
//! Invariant: dependencies point one way — orcd-gguf ← orcd-tokenizer, orcd-sampler ← this crate.
//! The re-exports keep `crate::gguf::…`, `orcd_engine::tokenizer::…` etc. the paths they were
//! before the split, and [`Error`] converts every lower crate's error (`?` works across them).

pub mod backend;
pub mod cli;
pub mod error;
pub mod generate;
pub mod model;
pub mod ops;

pub use orcd_gguf::{faults, gguf, npy, quant};
pub use orcd_sampler as sampler;
pub use orcd_tokenizer::{chat, tokenizer};

pub use error::{Error, Result};
