//! Backends implement the ops of [`crate::ops::Ops`]. `cpu` is the readable reference.
pub mod cpu;
pub mod cpu_fast;
pub mod kv;

#[cfg(test)]
mod gpt_oss_tests;
#[cfg(test)]
mod longrope_tests;
