//! Fuzz target: encode/decode of fuzzed text with the real tokenizers (every vocabulary type and
//! pre-tokenizer family the fixtures hold: llama.cpp's vocab files for SPM, BPE of gpt-2,
//! llama-bpe, qwen2, deepseek-coder, falcon, starcoder, WPM of bert; a tokenizer.json; the
//! o200k_base tiktoken file), loaded once from the data directory (`crate::data_dir`).
//!
//! Input: the first byte picks the tokenizer, the rest is the text (and, read as u16 pairs, the
//! ids decoded). A missing data file is skipped; with none at all the target panics at start, so
//! a run without data cannot pass as fuzzed.
//!
//! The body is `orcd_fuzz::targets::tok_text::run` (shared with the `all` binary).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| orcd_fuzz::targets::tok_text::run(data));
