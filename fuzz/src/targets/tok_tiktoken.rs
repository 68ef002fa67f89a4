//! Fuzz target: `.tiktoken` rank files (base64 token, space, rank per line). The encodings the
//! engine knows (o200k_base, o200k_harmony) fix the number of ranks, so a fuzzed file of a few
//! KB exercises the line parser, base64 decoding, rank order and duplicate checks, and must be a
//! typed error; the full-size encoding's encode/decode is fuzzed by `tok_text` on the real file.
//!
//! Input: the file and a text (`orcd_fuzz::split_file_text`); the text's first byte picks the
//! encoding.

use orcd_tokenizer::tokenizer::{FileKind, TiktokenEncoding, Tokenizer};

pub fn run(data: &[u8]) {
    let (file, text) = crate::split_file_text(data);
    let _ = FileKind::sniff(file);
    let enc = match text.first() {
        Some(b) if b & 1 == 1 => TiktokenEncoding::O200kHarmony,
        _ => TiktokenEncoding::O200kBase,
    };
    match Tokenizer::from_tiktoken(file, enc) {
        Ok(tok) => crate::exercise(&tok, text),
        Err(e) => assert!(!e.to_string().is_empty()),
    }
}
