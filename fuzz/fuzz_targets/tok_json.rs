//! Fuzz target: a tokenizer built from a fuzzed `tokenizer.json` (HF tokenizers: BPE model,
//! normalizers, ByteLevel/Split pre-tokenizers with their regexes, post-processor, added tokens;
//! anything else must be a typed `UnsupportedComponent`), then encode/decode of fuzzed text.
//!
//! Input: the JSON file and a text, split by `orcd_fuzz::split_file_text`. Seeds (make_seeds.sh)
//! are small tokenizer.json files with the shapes of the real ones in the fixture cache.
//!
//! The body is `orcd_fuzz::targets::tok_json::run` (shared with the `all` binary).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| orcd_fuzz::targets::tok_json::run(data));
