//! Fuzz target: the server's request bodies on every route (`/execute`, `/cancel`, `/health`,
//! `/metrics`, `/v1/models`, `/v1/completions`, `/v1/chat/completions`, `/tokenize`,
//! `/detokenize`) and arbitrary methods/paths, through the real router, middleware (API key,
//! correlation id), bounded body reading, field validation (validate.rs), handlers (openai.rs,
//! worker_api.rs), prompt tokenization and chat-template rendering with the qwen2 vocabulary, and
//! the sampler built from the request's parameters, with orcd-server's in-process
//! `fuzzing::Harness` standing in for the engine thread.
//!
//! Input: byte 0 picks the route (or, past the list, "METHOD PATH\n" leads the body); byte 1's
//! bits pick the headers (API key right, wrong or absent on a key-guarded server; a correlation
//! id); the rest is the body. Properties: a well-formed status for every request (400s for bad
//! fields, never a 500 or a panic), and JSON bodies for JSON routes.
//!
//! The body is `orcd_fuzz::targets::server::run` (shared with the `all` binary).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| orcd_fuzz::targets::server::run(data));
