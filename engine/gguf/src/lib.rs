//! orcd-gguf: the lowest layer of the engine — GGUF files, ggml's quant block formats, `.npy`
//! interchange and the test-only fault switches. It depends on nothing of ours; every other crate
//! of the workspace reads files through it.
//!
//! Module map (see docs/ARCHITECTURE.md):
//! - [`gguf`]: GGUF reader (mmap, bounds-checked, [`gguf::Limits`]) and writer; ggml type table.
//! - [`quant`]: block formats, dequantize / quantize, scalar reference path, bit-exact with gguf-py.
//! - [`npy`]: `.npy` interchange for goldens, `worker-orcd tensor --out` and `logits --out`.
//! - [`faults`]: test-only planted bugs (cargo feature `faults`); the switches live here, in the
//!   lowest crate, so that every crate above reads the same process-wide state.
//!
//! Invariants:
//! - Untrusted bytes never panic, never allocate unbounded memory and never read outside the
//!   file: every count, length, offset and dims product is checked before use, and failures are
//!   typed errors ([`gguf::GgufError`], [`quant::QuantError`], [`npy::NpyError`]) that name the
//!   byte offset, field or tensor.
//! - Without the `faults` feature, [`faults::active`] is the constant `false`.

pub mod faults;
pub mod gguf;
pub mod npy;
pub mod quant;
