//! orcd-cpu: the CPU backends, implementing `orcd_engine::ops::Ops`. `cpu` is the readable
//! reference (numerics `exact`); `cpu_fast` computes as llama.cpp's CPU backend (numerics
//! `fast`); `kv` holds what both share below the ops (the in-place KV cache, the batch).
//!
//! Invariants: backends implement ops and never an architecture; no result depends on the
//! thread count; the fast path's SIMD kernels are bit-identical to its scalar reference.

// The engine's modules under the paths this code has always used (`crate::ops`, …).
pub(crate) use orcd_engine::{faults, gguf, ops, quant, Error, Result};

pub mod arena;
pub mod cpu;
pub mod cpu_fast;
pub mod kv;
pub mod pages;

#[cfg(test)]
mod gpt_oss_tests;
#[cfg(test)]
mod longrope_tests;
