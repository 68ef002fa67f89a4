//! Fuzz target: `.tiktoken` rank files (base64 token, space, rank per line). The encodings the
//! engine knows (o200k_base, o200k_harmony) fix the number of ranks, so a fuzzed file of a few
//! KB exercises the line parser, base64 decoding, rank order and duplicate checks, and must be a
//! typed error; the full-size encoding's encode/decode is fuzzed by `tok_text` on the real file.
//!
//! Input: the file and a text (`orcd_fuzz::split_file_text`); the text's first byte picks the
//! encoding.
//!
//! The body is `orcd_fuzz::targets::tok_tiktoken::run` (shared with the `all` binary).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| orcd_fuzz::targets::tok_tiktoken::run(data));
