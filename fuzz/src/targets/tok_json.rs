//! Fuzz target: a tokenizer built from a fuzzed `tokenizer.json` (HF tokenizers: BPE model,
//! normalizers, ByteLevel/Split pre-tokenizers with their regexes, post-processor, added tokens;
//! anything else must be a typed `UnsupportedComponent`), then encode/decode of fuzzed text.
//!
//! Input: the JSON file and a text, split by `orcd_fuzz::split_file_text`. Seeds (make_seeds.sh)
//! are small tokenizer.json files with the shapes of the real ones in the fixture cache.

use orcd_tokenizer::tokenizer::{FileKind, Tokenizer};

pub fn run(data: &[u8]) {
    let (file, text) = crate::split_file_text(data);
    let _ = FileKind::sniff(file);
    match Tokenizer::from_tokenizer_json(file) {
        Ok(tok) => crate::exercise(&tok, text),
        Err(e) => assert!(!e.to_string().is_empty()),
    }
}
