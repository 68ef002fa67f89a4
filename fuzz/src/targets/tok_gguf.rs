//! Fuzz target: a tokenizer built from a fuzzed GGUF file's `tokenizer.ggml.*` metadata (every
//! vocabulary type: SPM, BPE with each pre-tokenizer, WPM, UGM...), then encode/decode of fuzzed
//! text with it.
//!
//! Input: a GGUF file and a text, split by `orcd_fuzz::split_file_text`. Seeds (make_seeds.sh)
//! are the real llama.cpp vocabularies cut down to their first few hundred tokens, so mutations
//! start from every tokenizer model the engine supports.

use orcd_gguf::gguf::GgufFile;
use orcd_tokenizer::tokenizer::Tokenizer;

pub fn run(data: &[u8]) {
    let (file, text) = crate::split_file_text(data);
    let Ok(f) = GgufFile::from_bytes(file.to_vec()) else { return };
    match Tokenizer::from_gguf(&f) {
        Ok(tok) => crate::exercise(&tok, text),
        Err(e) => assert!(!e.to_string().is_empty()),
    }
}
