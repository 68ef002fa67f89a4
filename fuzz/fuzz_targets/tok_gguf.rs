//! Fuzz target: a tokenizer built from a fuzzed GGUF file's `tokenizer.ggml.*` metadata (every
//! vocabulary type: SPM, BPE with each pre-tokenizer, WPM, UGM...), then encode/decode of fuzzed
//! text with it.
//!
//! Input: a GGUF file and a text, split by `orcd_fuzz::split_file_text`. Seeds (make_seeds.sh)
//! are the real llama.cpp vocabularies cut down to their first few hundred tokens, so mutations
//! start from every tokenizer model the engine supports.
//!
//! The body is `orcd_fuzz::targets::tok_gguf::run` (shared with the `all` binary).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| orcd_fuzz::targets::tok_gguf::run(data));
