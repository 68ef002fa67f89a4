//! Fuzz target: encode/decode of fuzzed text with the real tokenizers (every vocabulary type and
//! pre-tokenizer family the fixtures hold: llama.cpp's vocab files for SPM, BPE of gpt-2,
//! llama-bpe, qwen2, deepseek-coder, falcon, starcoder, WPM of bert; a tokenizer.json; the
//! o200k_base tiktoken file), loaded once from the data directory (`crate::data_dir`).
//!
//! Input: the first byte picks the tokenizer, the rest is the text (and, read as u16 pairs, the
//! ids decoded). A missing data file is skipped; with none at all the target panics at start, so
//! a run without data cannot pass as fuzzed.

use std::sync::OnceLock;

use orcd_tokenizer::tokenizer::{TiktokenEncoding, Tokenizer};

/// The files the target loads, by name in the data directory.
pub const FILES: &[&str] = &[
    "ggml-vocab-llama-spm.gguf",
    "ggml-vocab-gpt-2.gguf",
    "ggml-vocab-llama-bpe.gguf",
    "ggml-vocab-qwen2.gguf",
    "ggml-vocab-deepseek-coder.gguf",
    "ggml-vocab-falcon.gguf",
    "ggml-vocab-starcoder.gguf",
    "ggml-vocab-bert-bge.gguf",
    "ggml-vocab-phi-3.gguf",
    "anthropic-0.30.0-tokenizer.json",
    "o200k_base.tiktoken",
];

fn load(name: &str) -> Option<Tokenizer> {
    let path = crate::data_dir().join(name);
    let bytes = std::fs::read(&path).ok()?;
    let tok = if name.ends_with(".tiktoken") {
        Tokenizer::from_tiktoken(&bytes, TiktokenEncoding::O200kBase)
    } else if name.ends_with(".json") {
        Tokenizer::from_tokenizer_json(&bytes)
    } else {
        orcd_gguf::gguf::GgufFile::from_bytes(bytes)
            .map_err(|e| e.to_string())
            .and_then(|f| Tokenizer::from_gguf(&f).map_err(|e| e.to_string()))
            .map_err(|e| orcd_tokenizer::tokenizer::TokenizerError::BadFile { file: name.into(), reason: e })
    };
    match tok {
        Ok(t) => Some(t),
        Err(e) => panic!("{}: {e}", path.display()),
    }
}

/// The loaded tokenizers (at least one, else a panic naming the data directory).
pub fn tokenizers() -> &'static [Tokenizer] {
    static TOKS: OnceLock<Vec<Tokenizer>> = OnceLock::new();
    TOKS.get_or_init(|| {
        let v: Vec<Tokenizer> = FILES.iter().filter_map(|n| load(n)).collect();
        assert!(!v.is_empty(), "no tokenizer files in {} (run fuzz/make_seeds.sh)", crate::data_dir().display());
        v
    })
}

pub fn run(data: &[u8]) {
    let toks = tokenizers();
    let Some((&pick, text)) = data.split_first() else { return };
    crate::exercise(&toks[usize::from(pick) % toks.len()], text);
}
