//! worker-orcd: the command line of DESIGN §6 (`inspect`, `tensor`, `tokenize`, `detokenize`,
//! `logits`, `generate`, `bench`), one module per subcommand under [`cli`]. Models are loaded on a
//! column of the one backend registry (orcd-backends).
//!
//! Invariant: every error is one `error: ...` line on stderr and exit code 2, never a panic.

// The engine's modules under the paths this code has always used (`crate::gguf`, …).
pub(crate) use orcd_engine::{chat, generate, gguf, model, npy, ops, sampler, tokenizer, Error, Result};

pub mod cli;
