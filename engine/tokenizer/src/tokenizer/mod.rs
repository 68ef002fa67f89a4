//! Tokenizer built from GGUF metadata (`tokenizer.ggml.*`), giving exactly llama.cpp's token ids.
//!
//! Three sources build the same [`Tokenizer`]:
//! - GGUF metadata ([`Tokenizer::from_gguf`]), with llama.cpp's semantics (below);
//! - HF `tokenizers` files, `tokenizer.json` ([`Tokenizer::from_tokenizer_json`], `hf.rs`), with
//!   the `tokenizers` library's semantics (byte-level BPE models);
//! - tiktoken rank files ([`Tokenizer::from_tiktoken`], `tiktoken.rs`): o200k_base and gpt-oss's
//!   o200k_harmony, with tiktoken's semantics.
//!
//! [`Tokenizer::open`] picks the source from the file's content.
//!
//! Supported GGUF vocabularies (`tokenizer.ggml.model`):
//! - `llama`: SentencePiece as llama.cpp runs it — merges by score, byte fallback (`<0xXX>`),
//!   spaces escaped as U+2581, optional space prefix (llama-spm, phi-3, gemma, gemma3...).
//! - `gpt2`: byte-level BPE by merge rank, with the pre-tokenizer named by `tokenizer.ggml.pre`
//!   (see [`supported_pre_tokenizers`]); `gemma4`: BPE on raw UTF-8 with escaped spaces.
//! - `bert`: WordPiece.
//!
//! Encoding follows llama.cpp's pipeline: special tokens are cut out first (user-defined tokens
//! always, control tokens with `parse_special`), then every raw-text fragment goes through the
//! model's tokenizer; BOS/EOS are added with `add_special` only where the vocabulary asks for them
//! (`tokenizer.ggml.add_bos_token` / `add_eos_token`, else the vocabulary type's default).
//!
//! Decoding returns bytes: one token can hold part of a UTF-8 sequence. [`StreamDecoder`] turns
//! a stream of ids into text without ever splitting a character.
//!
//! Invariant: nothing here panics on input. Token ids out of range and texts the vocabulary
//! cannot express are typed errors.

mod bpe;
mod bytes;
mod hash;
mod hf;
mod pre_exprs;
mod pretokenize;
mod regex;
mod special;
mod spm;
mod stream;
mod tiktoken;
mod ucd;
mod unicode;
mod unicode_table;
mod vocab;
mod wpm;

use std::borrow::Cow;

use hash::FastMap;
use orcd_gguf::gguf::{GgufError, GgufFile, GgufValue};
use pretokenize::Step;
use special::{Fragment, SpecialMatcher, SpecialToken};
use vocab::Vocab;

pub use stream::StreamDecoder;
pub use vocab::attr;

/// Why a tokenizer could not be built, or a text or id sequence could not be converted.
#[derive(Debug, thiserror::Error)]
pub enum TokenizerError {
    #[error("tokenizer metadata: {0}")]
    Gguf(#[from] GgufError),
    #[error("tokenizer metadata {key}: {reason}")]
    Metadata { key: String, reason: String },
    #[error("tokenizer model {0:?} is not supported (supported: llama, gpt2, gemma4, bert)")]
    UnsupportedModel(String),
    #[error("unknown pre-tokenizer {0:?} (tokenizer.ggml.pre); supported: {list}", list = supported_pre_tokenizers().join(", "))]
    UnknownPreTokenizer(String),
    #[error("pre-tokenizer {0:?} (tokenizer.ggml.pre) is known to llama.cpp but not implemented here")]
    UnsupportedPreTokenizer(String),
    #[error("token id {id} is out of range (vocabulary size {vocab_size})")]
    TokenOutOfRange { id: u32, vocab_size: usize },
    #[error("byte 0x{0:02X} has no token in this vocabulary (no byte fallback possible)")]
    NoByteToken(u8),
    #[error("the vocabulary has no {0} token, but this operation needs one")]
    MissingSpecialToken(&'static str),
    #[error("text of {len} bytes is too long to tokenize (limit {max})")]
    TextTooLong { len: usize, max: usize },
    /// A tokenizer.json or tiktoken file that is malformed.
    #[error("{file}: {reason}")]
    BadFile { file: String, reason: String },
    /// A tokenizer.json component this engine does not implement (named, never guessed).
    #[error("tokenizer.json: {component} is not supported ({detail})")]
    UnsupportedComponent { component: String, detail: String },
    #[error("{path}: {source}")]
    Io { path: String, source: std::io::Error },
}

/// Longest text [`Tokenizer::encode`] accepts (positions are kept in 32 bits).
pub const MAX_TEXT_BYTES: usize = 1 << 31;

type Result<T, E = TokenizerError> = std::result::Result<T, E>;

/// The tokenizer algorithm family (llama.cpp's `llama_vocab_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VocabType {
    /// SentencePiece (`tokenizer.ggml.model = llama`).
    Spm,
    /// Byte-pair encoding (`gpt2`, `gemma4`).
    Bpe,
    /// WordPiece (`bert`).
    Wpm,
}

#[derive(Debug)]
struct BpeModel {
    merges: bpe::Merges,
    steps: Vec<Step>,
    /// Words are mapped to the GPT-2 byte alphabet before merging (false: raw UTF-8).
    byte_encode: bool,
    /// A word that is itself a token is taken whole, without merging.
    ignore_merges: bool,
    /// gemma4: a word of newlines that is a token is taken whole.
    whole_newline_words: bool,
    /// Only tokens with ids below this are taken whole (tiktoken: the ranked tokens).
    whole_below: u32,
}

/// What HF `tokenizers` and tiktoken do around the model, where it differs from llama.cpp:
/// added tokens matched leftmost-longest, a normalizer, tokens matched after normalization,
/// a prefix space, and the post-processor's special tokens.
#[derive(Debug)]
struct Pipeline {
    /// Added tokens matched on the normalized text (HF `normalized: true`).
    normalized_special: SpecialMatcher,
    normalizer: hf::Normalizer,
    /// HF ByteLevel `add_prefix_space`: a space before each fragment that lacks one.
    prefix_space: bool,
    /// Post-processor ids around the sequence with `add_special`.
    prefix_ids: Vec<u32>,
    suffix_ids: Vec<u32>,
}

#[derive(Debug)]
enum Model {
    Spm,
    Bpe(Box<BpeModel>),
    Wpm { lowercase: bool, strip_accents: bool },
}

/// Options for [`Tokenizer::decode_with`], after llama.cpp's `llama_detokenize`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeOptions {
    /// Render control and unknown tokens as their text (llama.cpp's `unparse_special`).
    pub special: bool,
    /// Drop a leading BOS / trailing EOS where the vocabulary adds them (`remove_special`).
    pub remove_special: bool,
    /// Apply the vocabulary's clean-up of spaces before punctuation and contractions, where the
    /// vocabulary asks for it (HF `clean_up_tokenization_spaces`).
    pub clean_spaces: bool,
}

impl Default for DecodeOptions {
    fn default() -> Self {
        DecodeOptions { special: true, remove_special: false, clean_spaces: true }
    }
}

/// Special token ids (None where the vocabulary has none).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SpecialIds {
    pub bos: Option<u32>,
    pub eos: Option<u32>,
    pub eot: Option<u32>,
    pub eom: Option<u32>,
    pub unk: Option<u32>,
    pub sep: Option<u32>,
    pub pad: Option<u32>,
    pub mask: Option<u32>,
    pub fim_pre: Option<u32>,
    pub fim_suf: Option<u32>,
    pub fim_mid: Option<u32>,
    pub fim_pad: Option<u32>,
    pub fim_rep: Option<u32>,
    pub fim_sep: Option<u32>,
}

/// A tokenizer for one GGUF vocabulary. Cheap to share (`&Tokenizer` is `Sync`).
#[derive(Debug)]
pub struct Tokenizer {
    vocab: Vocab,
    model: Model,
    model_name: String,
    pre_name: String,
    special: SpecialMatcher,
    ids: SpecialIds,
    eog: Vec<u32>,
    add_bos: bool,
    add_eos: bool,
    add_space_prefix: bool,
    escape_whitespaces: bool,
    clean_spaces: bool,
    /// `<0xXX>` token of each byte, else the single-character token of the byte.
    byte_tokens: Vec<Option<u32>>,
    /// Rendered text of every token (special tokens rendered), concatenated.
    pieces: Vec<u8>,
    piece_start: Vec<u32>,
    /// tokenizer.json / tiktoken files: their pipeline (None for GGUF).
    pipeline: Option<Box<Pipeline>>,
    /// HF ByteLevel decoder: a special token made only of byte-alphabet characters decodes to
    /// those bytes (as every token does in `tokenizers`).
    bytelevel_specials: bool,
}

/// The `tokenizer.ggml.pre` values this tokenizer implements (for the `gpt2` model).
pub fn supported_pre_tokenizers() -> Vec<&'static str> {
    PRE_TOKENIZERS.iter().flat_map(|(names, _)| names.iter().copied()).collect()
}

/// How llama.cpp's loader sets up one `tokenizer.ggml.pre` value.
#[derive(Debug, Clone, Copy)]
struct PreSettings {
    /// The expressions, applied in order.
    exprs: &'static [&'static str],
    clean_spaces: bool,
    ignore_merges: bool,
    add_bos: bool,
    no_bos: bool,
    /// Raw UTF-8 with spaces escaped as U+2581 instead of the GPT-2 byte alphabet.
    spm_style: bool,
    /// gemma4: a word of newlines that is a token is taken whole; BOS always added.
    gemma4: bool,
}

const fn pre(exprs: &'static [&'static str]) -> PreSettings {
    PreSettings {
        exprs,
        clean_spaces: true,
        ignore_merges: false,
        add_bos: false,
        no_bos: false,
        spm_style: false,
        gemma4: false,
    }
}

const fn noclean(s: PreSettings) -> PreSettings {
    PreSettings { clean_spaces: false, ..s }
}

const fn whole_words(s: PreSettings) -> PreSettings {
    PreSettings { ignore_merges: true, ..s }
}

const fn with_bos(s: PreSettings) -> PreSettings {
    PreSettings { add_bos: true, ..s }
}

const fn no_bos(s: PreSettings) -> PreSettings {
    PreSettings { no_bos: true, ..s }
}

use pre_exprs as x;

/// `tokenizer.ggml.pre` names and their settings, as llama.cpp's vocabulary loader assigns them.
const PRE_TOKENIZERS: &[(&[&str], PreSettings)] = &[
    (&["default"], pre(x::DEFAULT)),
    (
        &["llama3", "llama-v3", "llama-bpe", "falcon3", "falcon-h1", "pixtral", "midm-2.0", "lfm2", "jina-v5-nano"],
        with_bos(whole_words(pre(x::LLAMA3))),
    ),
    (&["minicpm5"], whole_words(pre(x::MINICPM5))),
    (&["deepseek-llm"], noclean(pre(x::DEEPSEEK_LLM))),
    (&["deepseek-coder"], noclean(pre(x::DEEPSEEK_CODER))),
    (&["deepseek-v3", "hunyuan-dense", "hy_v4", "joyai-llm"], noclean(pre(x::DEEPSEEK3_LLM))),
    (&["spark2_5"], noclean(pre(x::SPARK2_5))),
    (&["youtu"], whole_words(noclean(pre(x::YOUTU)))),
    (&["falcon"], pre(x::FALCON)),
    (&["mpt"], pre(x::GPT2)),
    (&["starcoder", "refact", "codeshell", "exaone", "minerva-7b", "mellum2"], pre(x::STARCODER)),
    (
        &[
            "gpt-2",
            "phi-2",
            "jina-es",
            "jina-de",
            "gigachat",
            "jina-v2-es",
            "jina-v2-de",
            "a.x-4.0",
            "mellum",
            "modern-bert",
            "jina-v1-en",
            "jina-v2-code",
            "roberta-bpe",
            "olmo",
            "jais",
            "exaone4",
        ],
        pre(x::GPT2),
    ),
    (&["trillion", "granite-docling"], noclean(pre(x::GPT2))),
    (&["jais-2"], pre(x::JAIS2)),
    (
        &["gemma4", "granite-embed-multi-311m"],
        PreSettings { spm_style: true, gemma4: true, add_bos: true, ..pre(x::GEMMA4) },
    ),
    (&["sarvam-moe"], PreSettings { spm_style: true, ..noclean(pre(x::SARVAM_MOE)) }),
    (&["command-r", "smollm"], noclean(pre(x::STARCODER))),
    (&["qwen2", "deepseek-r1-qwen", "kormo", "f2llmv2", "hunyuan", "solar-open"], noclean(pre(x::STABLELM2))),
    (&["megrez", "stablelm2"], pre(x::STABLELM2)),
    (&["qwen35"], noclean(pre(x::QWEN35))),
    (&["dbrx", "smaug-bpe"], pre(x::DBRX)),
    (&["poro-chat"], noclean(pre(x::PORO))),
    (&["bloom", "gpt3-finnish"], pre(x::PORO)),
    (&["chatglm-bpe"], no_bos(pre(x::CHATGLM4))),
    (&["glm4", "glm5"], whole_words(no_bos(pre(x::CHATGLM4)))),
    (&["viking"], noclean(pre(x::VIKING))),
    (&["tekken"], with_bos(whole_words(noclean(pre(x::TEKKEN))))),
    (&["chameleon"], with_bos(noclean(pre(x::CHAMELEON)))),
    (&["gpt-4o", "llama4", "kanana2", "talkie", "minimax-m2"], noclean(pre(x::GPT4O))),
    (&["granite-embed-multi-97m"], whole_words(noclean(pre(x::GRANITE_EMB_MULTI)))),
    (&["bailingmoe", "bailingmoe2", "llada-moe"], noclean(pre(x::BAILINGMOE))),
    (&["seed-coder"], noclean(pre(x::SEED_CODER))),
    (&["ufakzeka"], noclean(pre(x::UFAKZEKA))),
    (&["grok-2"], noclean(pre(x::GROK_2))),
    (&["laguna"], noclean(pre(x::LAGUNA))),
];

/// Pre-tokenizer names llama.cpp knows that need splitting code not implemented here.
const KNOWN_UNSUPPORTED_PRE: &[&str] =
    &["whitespace", "tiny_aya", "cohere2moe", "superbpe", "kimi-k2", "afmoe", "exaone-moe"];

fn lookup_pre(name: &str) -> Result<PreSettings> {
    if name.is_empty() {
        return Ok(pre(x::DEFAULT));
    }
    for (names, settings) in PRE_TOKENIZERS {
        if names.contains(&name) {
            return Ok(*settings);
        }
    }
    if KNOWN_UNSUPPORTED_PRE.contains(&name) {
        return Err(TokenizerError::UnsupportedPreTokenizer(name.to_string()));
    }
    Err(TokenizerError::UnknownPreTokenizer(name.to_string()))
}

fn compile_steps(name: &str, exprs: &[&str]) -> Result<Vec<Step>> {
    exprs
        .iter()
        .map(|e| {
            Step::from_expression(e).map_err(|reason| TokenizerError::Metadata {
                key: "tokenizer.ggml.pre".into(),
                reason: format!("{name:?}: {reason}"),
            })
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Loading

fn meta_err(key: &str, reason: impl Into<String>) -> TokenizerError {
    TokenizerError::Metadata { key: key.to_string(), reason: reason.into() }
}

fn opt_str<'a>(file: &'a GgufFile, key: &str) -> Result<Option<&'a str>> {
    match file.get(key) {
        None => Ok(None),
        Some(v) => {
            v.as_str().map(Some).ok_or_else(|| meta_err(key, format!("expected a string, found {}", v.type_name())))
        }
    }
}

fn opt_bool(file: &GgufFile, key: &str) -> Result<Option<bool>> {
    match file.get(key) {
        None => Ok(None),
        Some(v) => {
            v.as_bool().map(Some).ok_or_else(|| meta_err(key, format!("expected a bool, found {}", v.type_name())))
        }
    }
}

fn opt_id(file: &GgufFile, key: &str) -> Result<Option<u64>> {
    match file.get(key) {
        None => Ok(None),
        Some(v) => match v.as_i64() {
            Some(x) if x < 0 => Ok(None),
            Some(x) => Ok(Some(x as u64)),
            None => Err(meta_err(key, format!("expected an integer, found {}", v.type_name()))),
        },
    }
}

fn opt_array<'a>(file: &'a GgufFile, key: &str, n_tokens: usize) -> Result<Option<&'a [GgufValue]>> {
    match file.get(key) {
        None => Ok(None),
        Some(v) => {
            let items =
                v.as_array().ok_or_else(|| meta_err(key, format!("expected an array, found {}", v.type_name())))?;
            if items.len() < n_tokens {
                return Err(meta_err(key, format!("{} entries for {} tokens", items.len(), n_tokens)));
            }
            Ok(Some(items))
        }
    }
}

fn ascii_lower(s: &str) -> String {
    s.to_ascii_lowercase()
}

/// `strtol(text.substr(3, 2), 16)`: the byte value of a `<0xXX>` token text.
fn byte_of_token_text(text: &str) -> u8 {
    let digits = text.as_bytes().get(3..).unwrap_or(&[]);
    let mut v: u32 = 0;
    for &c in digits.iter().take(2) {
        match (c as char).to_digit(16) {
            Some(d) => v = v * 16 + d,
            None => break,
        }
    }
    v as u8
}

impl Tokenizer {
    /// Build the tokenizer of a GGUF file from its `tokenizer.ggml.*` metadata.
    pub fn from_gguf(file: &GgufFile) -> Result<Tokenizer> {
        let model_name = file.get_str("tokenizer.ggml.model")?.to_string();
        let mut pre_name = opt_str(file, "tokenizer.ggml.pre")?.unwrap_or("").to_string();

        let vocab_type = match model_name.as_str() {
            "llama" => VocabType::Spm,
            "gpt2" => VocabType::Bpe,
            "gemma4" => {
                pre_name = "gemma4".into();
                VocabType::Bpe
            }
            "bert" => VocabType::Wpm,
            _ => return Err(TokenizerError::UnsupportedModel(model_name)),
        };

        // Token texts, scores, types.
        let tokens_key = "tokenizer.ggml.tokens";
        let raw_tokens = file.get_array(tokens_key)?;
        let n = raw_tokens.len();
        if n == 0 || n > (u32::MAX as usize) / 2 {
            return Err(meta_err(tokens_key, format!("{n} tokens")));
        }
        let mut texts: Vec<Box<str>> = Vec::with_capacity(n);
        for (i, v) in raw_tokens.iter().enumerate() {
            let s = v.as_str().ok_or_else(|| meta_err(tokens_key, format!("entry {i} is {}", v.type_name())))?;
            texts.push(if s.is_empty() { format!("[EMPTY_{i}]").into() } else { s.into() });
        }
        let scores: Vec<f32> = match opt_array(file, "tokenizer.ggml.scores", n)? {
            None => vec![0.0; n],
            Some(items) => items[..n]
                .iter()
                .map(|v| v.as_f64().map(|x| x as f32).or_else(|| v.as_i64().map(|x| x as f32)))
                .collect::<Option<Vec<f32>>>()
                .ok_or_else(|| meta_err("tokenizer.ggml.scores", "expected numbers"))?,
        };
        let mut attrs: Vec<u16> = match opt_array(file, "tokenizer.ggml.token_type", n)? {
            None => vec![attr::NORMAL; n],
            Some(items) => items[..n]
                .iter()
                .map(|v| v.as_i64().map(attr::from_token_type))
                .collect::<Option<Vec<u16>>>()
                .ok_or_else(|| meta_err("tokenizer.ggml.token_type", "expected integers"))?,
        };

        // Per-type defaults (llama.cpp's vocabulary loader).
        let mut ids = SpecialIds::default();
        let mut add_eos = false;
        let mut pre_settings = None;
        let (mut add_bos, mut add_space_prefix, escape_whitespaces, clean_spaces) = match vocab_type {
            VocabType::Spm => {
                ids.bos = Some(1);
                ids.eos = Some(2);
                ids.unk = Some(0);
                (true, true, true, false)
            }
            VocabType::Wpm => {
                ids.bos = Some(101);
                ids.unk = Some(100);
                ids.sep = Some(102);
                ids.pad = Some(0);
                ids.mask = Some(103);
                (true, false, true, true)
            }
            VocabType::Bpe => {
                if model_name == "gpt2" {
                    ids.bos = Some(11);
                    ids.eos = Some(11);
                }
                let s = lookup_pre(&pre_name)?;
                if s.no_bos {
                    ids.bos = None;
                }
                pre_settings = Some(s);
                (s.add_bos, false, s.spm_style, s.clean_spaces)
            }
        };
        if let Some(v) = opt_bool(file, "tokenizer.ggml.add_space_prefix")? {
            add_space_prefix = v;
        }

        let vocab = Vocab::new(texts, scores, std::mem::take(&mut attrs));
        if vocab.distinct_texts() != n {
            // llama.cpp refuses such a vocabulary too (its text → id map must be one-to-one).
            return Err(meta_err(tokens_key, "two tokens have the same text"));
        }
        let mut attrs = vocab.attrs.clone();

        // Special ids: defaults outside the vocabulary are dropped; file values inside it win.
        type Slot = fn(&mut SpecialIds) -> &mut Option<u32>;
        let id_keys: [(&str, Slot); 17] = [
            ("tokenizer.ggml.bos_token_id", |s| &mut s.bos),
            ("tokenizer.ggml.eos_token_id", |s| &mut s.eos),
            ("tokenizer.ggml.eot_token_id", |s| &mut s.eot),
            ("tokenizer.ggml.eom_token_id", |s| &mut s.eom),
            ("tokenizer.ggml.unknown_token_id", |s| &mut s.unk),
            ("tokenizer.ggml.seperator_token_id", |s| &mut s.sep),
            ("tokenizer.ggml.padding_token_id", |s| &mut s.pad),
            ("tokenizer.ggml.mask_token_id", |s| &mut s.mask),
            ("tokenizer.ggml.fim_pre_token_id", |s| &mut s.fim_pre),
            ("tokenizer.ggml.fim_suf_token_id", |s| &mut s.fim_suf),
            ("tokenizer.ggml.fim_mid_token_id", |s| &mut s.fim_mid),
            ("tokenizer.ggml.fim_pad_token_id", |s| &mut s.fim_pad),
            ("tokenizer.ggml.fim_rep_token_id", |s| &mut s.fim_rep),
            ("tokenizer.ggml.fim_sep_token_id", |s| &mut s.fim_sep),
            ("tokenizer.ggml.prefix_token_id", |s| &mut s.fim_pre),
            ("tokenizer.ggml.suffix_token_id", |s| &mut s.fim_suf),
            ("tokenizer.ggml.middle_token_id", |s| &mut s.fim_mid),
        ];
        for (key, field) in id_keys {
            let slot = field(&mut ids);
            if slot.is_some_and(|id| id as usize >= n) {
                *slot = None;
            }
            if let Some(v) = opt_id(file, key)? {
                if (v as usize) < n {
                    *slot = Some(v as u32);
                }
            }
        }

        if let Some(v) = opt_bool(file, "tokenizer.ggml.add_bos_token")? {
            add_bos = v;
        }
        if let Some(v) = opt_bool(file, "tokenizer.ggml.add_eos_token")? {
            add_eos = v;
        }
        if pre_settings.is_some_and(|s| s.gemma4) {
            add_bos = true;
        }

        let mut lowercase = true;
        if let Some(v) = opt_bool(file, "tokenizer.ggml.normalizer.lowercase")? {
            lowercase = v;
        }
        let mut strip_accents = lowercase;
        if let Some(v) = opt_bool(file, "tokenizer.ggml.normalizer.strip_accents")? {
            strip_accents = v;
        }

        // Special tokens found by their text (llama.cpp takes whichever its hash map yields first;
        // we take the first name of the list that the vocabulary has).
        let by_text = |names: &[&str]| -> Option<u32> { names.iter().find_map(|t| vocab.get(t)) };
        let detect = |slot: &mut Option<u32>, names: &[&str], attrs: &mut Vec<u16>| {
            if slot.is_none() {
                if let Some(id) = by_text(names) {
                    *slot = Some(id);
                    attrs[id as usize] |= attr::CONTROL;
                }
            }
        };
        detect(
            &mut ids.eot,
            &[
                "<|eot_id|>",
                "<|im_end|>",
                "<|end|>",
                "<end_of_turn>",
                "<|endoftext|>",
                "<|end_of_text|>",
                "<EOT>",
                "_<EOT>",
                "[EOT]",
                "<\u{FF5C}end\u{2581}of\u{2581}sentence\u{FF5C}>",
                "<end_of_utterance>",
            ],
            &mut attrs,
        );
        detect(&mut ids.eom, &["<|eom_id|>"], &mut attrs);
        detect(
            &mut ids.fim_pre,
            &[
                "<|fim_prefix|>",
                "<fim-prefix>",
                "<fim_prefix>",
                "<\u{FF5C}fim\u{2581}begin\u{FF5C}>",
                "<PRE>",
                "\u{2581}<PRE>",
                "<|code_prefix|>",
                "<|prefix|>",
            ],
            &mut attrs,
        );
        detect(
            &mut ids.fim_suf,
            &[
                "<|fim_suffix|>",
                "<fim-suffix>",
                "<fim_suffix>",
                "<\u{FF5C}fim\u{2581}hole\u{FF5C}>",
                "<SUF>",
                "\u{2581}<SUF>",
                "<|code_suffix|>",
                "<|suffix|>",
            ],
            &mut attrs,
        );
        detect(
            &mut ids.fim_mid,
            &[
                "<|fim_middle|>",
                "<fim-middle>",
                "<fim_middle>",
                "<\u{FF5C}fim\u{2581}end\u{FF5C}>",
                "<MID>",
                "\u{2581}<MID>",
                "<|code_middle|>",
                "<|middle|>",
            ],
            &mut attrs,
        );
        detect(&mut ids.fim_pad, &["<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "[PAD]"], &mut attrs);
        detect(&mut ids.fim_rep, &["<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>", "<reponame>"], &mut attrs);
        detect(&mut ids.fim_sep, &["<|file_sep|>"], &mut attrs);

        // Control tokens named "unused..." are unused.
        for (id, a) in attrs.iter_mut().enumerate() {
            if *a & attr::CONTROL != 0 && vocab.texts[id].contains("unused") {
                *a |= attr::UNUSED;
            }
        }

        // End-of-generation tokens.
        let mut eog: Vec<u32> = Vec::new();
        eog.extend(ids.fim_pad);
        eog.extend(ids.fim_rep);
        eog.extend(ids.fim_sep);
        const EOG_TEXTS: &[&str] = &[
            "<|eot_id|>",
            "<|im_end|>",
            "<|end|>",
            "<|return|>",
            "<|call|>",
            "<|flush|>",
            "<|calls|>",
            "<end_of_turn>",
            "<|endoftext|>",
            "</s>",
            "<|eom_id|>",
            "<EOT>",
            "_<EOT>",
            "[EOT]",
            "[EOS]",
            "<|end_of_text|>",
            "<end_of_utterance>",
            "<eos>",
            "<turn|>",
            "<|tool_response>",
            "<\u{FF5C}end\u{2581}of\u{2581}sentence\u{FF5C}>",
            "[e~[",
        ];
        for text in EOG_TEXTS {
            if let Some(id) = vocab.get(text) {
                eog.push(id);
                attrs[id as usize] |= attr::CONTROL;
            }
        }
        for name in ["<|channel|>", "<|message|>", "<|start|>", "<|constrain|>"] {
            if let Some(id) = vocab.get(name) {
                attrs[id as usize] = attr::USER_DEFINED;
            }
        }
        eog.extend(ids.eos);
        eog.extend(ids.eot);
        eog.extend(ids.eom);
        eog.sort_unstable();
        eog.dedup();
        let eog_has = |eog: &[u32], t: &str| eog.iter().copied().find(|&id| vocab.text(id) == Some(t));
        if let Some(end) = eog_has(&eog, "<|end|>") {
            let has_return = eog_has(&eog, "<|return|>").is_some();
            let has_call = eog_has(&eog, "<|call|>").is_some() || eog_has(&eog, "<|calls|>").is_some();
            let has_flush = eog_has(&eog, "<|flush|>").is_some();
            if has_call && (has_return || has_flush) {
                eog.retain(|&id| id != end);
                attrs[end as usize] = attr::USER_DEFINED;
            }
        }
        if let Some(s) = eog_has(&eog, "</s>") {
            if eog_has(&eog, "<|tool_response>").is_some() || eog_has(&eog, "<|plamo:eos|>").is_some() {
                eog.retain(|&id| id != s);
                attrs[s as usize] = attr::NORMAL;
            }
        }

        // Which tokens are cut out of the text before tokenizing.
        let special_mask = attr::CONTROL | attr::USER_DEFINED | attr::UNKNOWN;
        let special_ids: Vec<u32> = (0..n as u32).filter(|&id| attrs[id as usize] & special_mask != 0).collect();

        // Per-model strip attributes (llama.cpp sets them by model / pre-tokenizer name).
        let general_name = ascii_lower(opt_str(file, "general.name")?.unwrap_or(""));
        let general_arch = opt_str(file, "general.architecture")?.unwrap_or("").to_string();
        let raw_pre = opt_str(file, "tokenizer.ggml.pre")?.unwrap_or("").to_string();
        let set = |attrs: &mut Vec<u16>, text: &str, bit: u16, on: bool| {
            if let Some(id) = vocab.get(text) {
                let a = &mut attrs[id as usize];
                *a = if on { *a | bit } else { *a & !bit };
            }
        };
        if ["jina-v2-de", "jina-v2-es", "jina-v2-code"].iter().any(|p| raw_pre.contains(p))
            || ["nomic-bert-moe", "jina-bert-v3"].iter().any(|a| general_arch.contains(a))
        {
            set(&mut attrs, "<mask>", attr::LSTRIP, true);
        } else if general_name.contains("phi-3") || general_name.contains("phi3") {
            for &id in &special_ids {
                attrs[id as usize] |= attr::RSTRIP;
            }
            set(&mut attrs, "</s>", attr::RSTRIP, true);
            for t in ["<unk>", "<s>", "<|endoftext|>"] {
                set(&mut attrs, t, attr::RSTRIP, false);
            }
        } else if general_name.contains("modern-bert") {
            set(&mut attrs, "[MASK]", attr::LSTRIP, true);
        }

        let special = SpecialMatcher::new(
            special_ids
                .iter()
                .map(|&id| {
                    let a = attrs[id as usize];
                    SpecialToken {
                        id,
                        text: vocab.texts[id as usize].as_bytes(),
                        needs_parse_special: a & (attr::CONTROL | attr::UNKNOWN) != 0,
                        lstrip: a & attr::LSTRIP != 0,
                        rstrip: a & attr::RSTRIP != 0,
                    }
                })
                .collect(),
        );

        let model = match vocab_type {
            VocabType::Spm => Model::Spm,
            VocabType::Wpm => Model::Wpm { lowercase, strip_accents },
            VocabType::Bpe => {
                let s = pre_settings.unwrap_or(pre(x::DEFAULT));
                let steps = compile_steps(&pre_name, s.exprs)?;
                let merges_key = "tokenizer.ggml.merges";
                let raw = file.get_array(merges_key)?;
                let mut lines = Vec::with_capacity(raw.len());
                for (i, v) in raw.iter().enumerate() {
                    lines.push(
                        v.as_str().ok_or_else(|| meta_err(merges_key, format!("entry {i} is {}", v.type_name())))?,
                    );
                }
                let merges = bpe::Merges::new(&vocab, lines);
                Model::Bpe(Box::new(BpeModel {
                    merges,
                    steps,
                    byte_encode: !s.spm_style,
                    ignore_merges: s.ignore_merges,
                    whole_newline_words: s.gemma4,
                    whole_below: u32::MAX,
                }))
            }
        };

        let mut vocab = vocab;
        vocab.attrs = attrs;

        let mut byte_tokens = Vec::with_capacity(256);
        for b in 0..=255u8 {
            let single = if b < 0x80 { vocab.get(std::str::from_utf8(&[b]).unwrap_or("")) } else { None };
            byte_tokens.push(vocab.hex_byte_token(b).or(single));
        }

        let mut t = Tokenizer {
            vocab,
            model,
            model_name,
            pre_name,
            special,
            ids,
            eog,
            add_bos,
            add_eos,
            add_space_prefix,
            escape_whitespaces,
            clean_spaces,
            byte_tokens,
            pieces: Vec::new(),
            piece_start: Vec::new(),
            pipeline: None,
            bytelevel_specials: false,
        };
        t.build_pieces();
        Ok(t)
    }

    fn build_pieces(&mut self) {
        let mut pieces = Vec::with_capacity(self.vocab.len() * 6);
        let mut starts = Vec::with_capacity(self.vocab.len() + 1);
        for id in 0..self.vocab.len() as u32 {
            starts.push(pieces.len() as u32);
            self.render(id, &mut pieces);
        }
        starts.push(pieces.len() as u32);
        self.pieces = pieces;
        self.piece_start = starts;
    }

    /// The text of a token as llama.cpp renders it with `special = true`.
    fn render(&self, id: u32, out: &mut Vec<u8>) {
        let a = self.vocab.attr(id);
        let text = self.vocab.text(id).unwrap_or("");
        if self.bytelevel_specials {
            // HF's ByteLevel decoder: a token whose characters all belong to the byte alphabet
            // gives those bytes, any other token its own text (unused ids: nothing).
            if a != attr::UNDEFINED {
                match text.chars().map(bytes::char_to_byte).collect::<Option<Vec<u8>>>() {
                    Some(b) => out.extend_from_slice(&b),
                    None => out.extend_from_slice(text.as_bytes()),
                }
            }
        } else if a & (attr::UNKNOWN | attr::CONTROL | attr::USER_DEFINED) != 0 {
            out.extend_from_slice(text.as_bytes());
        } else if a & attr::NORMAL != 0 {
            match &self.model {
                Model::Bpe(_) if !self.escape_whitespaces => {
                    for c in text.chars() {
                        match bytes::char_to_byte(c) {
                            Some(b) => out.push(b),
                            None => {
                                out.extend_from_slice(b"[UNK_BYTE_0x");
                                let mut buf = [0u8; 4];
                                for b in c.encode_utf8(&mut buf).bytes() {
                                    out.extend_from_slice(format!("{b:02x}").as_bytes());
                                }
                                out.extend_from_slice(text.as_bytes());
                                out.push(b']');
                            }
                        }
                    }
                }
                _ => out.extend_from_slice(text.replace('\u{2581}', " ").as_bytes()),
            }
        } else if a & attr::BYTE != 0 {
            out.push(byte_of_token_text(text));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// tokenizer.json and tiktoken files

/// How a file's BPE merges are given.
pub(crate) enum MergeSpec {
    /// (left, right) in rank order (tokenizer.json).
    Pairs(Vec<(String, String)>),
    /// tiktoken: by the rank of the concatenation, for ids below this.
    ByConcat(u32),
}

/// An added (special or user) token of a tokenizer.json or tiktoken file.
#[derive(Debug, Clone)]
pub(crate) struct Added {
    pub id: u32,
    pub text: String,
    /// What is matched in the text when it differs from `text` (HF: the normalized content of a
    /// `normalized` token).
    pub pattern: Option<String>,
    /// Matched only with `parse_special`; a control token.
    pub special: bool,
    /// Matched on the normalized text rather than the raw text.
    pub normalized: bool,
    pub lstrip: bool,
    pub rstrip: bool,
}

/// Everything a tokenizer.json or tiktoken file defines, in this module's terms.
pub(crate) struct Parts {
    pub model_name: String,
    pub pre_name: String,
    /// Token texts by id (model tokens in the GPT-2 byte alphabet; "" for unused ids).
    pub texts: Vec<Box<str>>,
    pub attrs: Vec<u16>,
    pub merges: MergeSpec,
    pub steps: Vec<Step>,
    pub ignore_merges: bool,
    pub whole_below: u32,
    pub added: Vec<Added>,
    pub normalizer: hf::Normalizer,
    pub prefix_space: bool,
    pub prefix_ids: Vec<u32>,
    pub suffix_ids: Vec<u32>,
    pub bos: Option<u32>,
    pub eos: Option<u32>,
}

/// What kind of tokenizer file a path holds (by content).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    Gguf,
    TokenizerJson,
    Tiktoken,
}

impl FileKind {
    /// Recognise a file by its first bytes: GGUF magic, a JSON object, or base64-and-rank lines.
    pub fn sniff(head: &[u8]) -> Option<FileKind> {
        if head.starts_with(b"GGUF") {
            return Some(FileKind::Gguf);
        }
        let trimmed = head.iter().position(|b| !b.is_ascii_whitespace()).map_or(&[][..], |i| &head[i..]);
        if trimmed.first() == Some(&b'{') {
            return Some(FileKind::TokenizerJson);
        }
        let line = head.split(|&b| b == b'\n').next().unwrap_or(&[]);
        let mut parts = line.split(|&b| b == b' ');
        match (parts.next(), parts.next(), parts.next()) {
            (Some(t), Some(r), None)
                if !t.is_empty()
                    && t.iter().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'='))
                    && !r.is_empty()
                    && r.iter().all(u8::is_ascii_digit) =>
            {
                Some(FileKind::Tiktoken)
            }
            _ => None,
        }
    }
}

pub use tiktoken::{Encoding as TiktokenEncoding, O200K_PATTERN};

impl Tokenizer {
    /// Build a tokenizer from a tokenizer.json (HF `tokenizers`) file's bytes.
    pub fn from_tokenizer_json(data: &[u8]) -> Result<Tokenizer> {
        Self::from_parts(hf::parts(data)?)
    }

    /// Build a tiktoken encoding from a `.tiktoken` rank file's bytes.
    pub fn from_tiktoken(data: &[u8], encoding: TiktokenEncoding) -> Result<Tokenizer> {
        Self::from_parts(tiktoken::parts(data, encoding)?)
    }

    /// Open any supported tokenizer file, recognised by content: a GGUF file (its
    /// `tokenizer.ggml.*` metadata), a tokenizer.json, or a `.tiktoken` rank file, whose encoding
    /// is named by the file name (`o200k_harmony` when the name says so, else `o200k_base`).
    pub fn open(path: &std::path::Path) -> Result<Tokenizer> {
        let io = |e| TokenizerError::Io { path: path.display().to_string(), source: e };
        let mut head = [0u8; 256];
        let n = {
            use std::io::Read;
            let mut f = std::fs::File::open(path).map_err(io)?;
            let mut n = 0;
            while n < head.len() {
                match f.read(&mut head[n..]).map_err(io)? {
                    0 => break,
                    k => n += k,
                }
            }
            n
        };
        let name = path.file_name().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        match FileKind::sniff(&head[..n]) {
            Some(FileKind::Gguf) => {
                let f = GgufFile::open(path)?;
                Tokenizer::from_gguf(&f)
            }
            Some(FileKind::TokenizerJson) => Tokenizer::from_tokenizer_json(&std::fs::read(path).map_err(io)?),
            Some(FileKind::Tiktoken) => {
                let enc =
                    if name.contains("harmony") { TiktokenEncoding::O200kHarmony } else { TiktokenEncoding::O200kBase };
                Tokenizer::from_tiktoken(&std::fs::read(path).map_err(io)?, enc)
            }
            None => Err(TokenizerError::BadFile {
                file: path.display().to_string(),
                reason: "not a GGUF file, a tokenizer.json or a .tiktoken rank file".into(),
            }),
        }
    }

    fn from_parts(p: Parts) -> Result<Tokenizer> {
        let n = p.texts.len();
        if n == 0 || n > (u32::MAX as usize) / 2 || p.attrs.len() != n {
            return Err(TokenizerError::BadFile { file: p.pre_name, reason: format!("{n} tokens") });
        }
        let vocab = Vocab::new(p.texts, vec![0.0; n], p.attrs);
        let merges = match p.merges {
            MergeSpec::Pairs(pairs) => {
                bpe::Merges::from_pairs(&vocab, pairs.iter().map(|(l, r)| (l.as_str(), r.as_str())))
            }
            MergeSpec::ByConcat(k) => bpe::Merges::by_concatenation(&vocab, k),
        };
        let matcher = |normalized: bool| {
            SpecialMatcher::new(
                p.added
                    .iter()
                    .filter(|a| a.normalized == normalized)
                    .map(|a| SpecialToken {
                        id: a.id,
                        text: a.pattern.as_deref().unwrap_or(&a.text).as_bytes(),
                        needs_parse_special: a.special,
                        lstrip: a.lstrip,
                        rstrip: a.rstrip,
                    })
                    .collect(),
            )
        };
        let special = matcher(false);
        let normalized_special = matcher(true);
        let mut eog: Vec<u32> = Vec::new();
        for t in ["<|endoftext|>", "<|return|>", "<|call|>", "<|end|>", "<|eot_id|>", "<|im_end|>"] {
            eog.extend(vocab.get(t));
        }
        eog.extend(p.eos);
        if vocab.get("<|return|>").is_some() && vocab.get("<|call|>").is_some() {
            // gpt-oss: <|end|> closes a message, not the generation (as llama.cpp decides).
            if let Some(end) = vocab.get("<|end|>") {
                eog.retain(|&id| id != end);
            }
        }
        eog.sort_unstable();
        eog.dedup();
        let mut byte_tokens = Vec::with_capacity(256);
        for b in 0..=255u8 {
            byte_tokens.push(if b < 0x80 { vocab.get(std::str::from_utf8(&[b]).unwrap_or("")) } else { None });
        }
        let mut t = Tokenizer {
            vocab,
            model: Model::Bpe(Box::new(BpeModel {
                merges,
                steps: p.steps,
                byte_encode: true,
                ignore_merges: p.ignore_merges,
                whole_newline_words: false,
                whole_below: p.whole_below,
            })),
            model_name: p.model_name,
            pre_name: p.pre_name,
            special,
            ids: SpecialIds { bos: p.bos, eos: p.eos, ..SpecialIds::default() },
            eog,
            add_bos: false,
            add_eos: false,
            add_space_prefix: false,
            escape_whitespaces: false,
            clean_spaces: false,
            byte_tokens,
            pieces: Vec::new(),
            piece_start: Vec::new(),
            pipeline: Some(Box::new(Pipeline {
                normalized_special,
                normalizer: p.normalizer,
                prefix_space: p.prefix_space,
                prefix_ids: p.prefix_ids,
                suffix_ids: p.suffix_ids,
            })),
            bytelevel_specials: true,
        };
        t.build_pieces();
        Ok(t)
    }
}

// ---------------------------------------------------------------------------------------------
// Encoding

/// Per-call caches and buffers.
#[derive(Default)]
struct EncodeState {
    bpe: bpe::Scratch,
    spm: spm::Scratch,
    word_cache: FastMap<Box<str>, (u32, u32)>,
    cached_ids: Vec<u32>,
    buf: String,
}

impl Tokenizer {
    /// Tokenize `text`. `add_special`: add BOS/EOS where the vocabulary asks for them.
    /// `parse_special`: cut control tokens (e.g. `<|im_start|>`) out of the text as tokens.
    pub fn encode(&self, text: &str, add_special: bool, parse_special: bool) -> Result<Vec<u32>> {
        if text.len() > MAX_TEXT_BYTES {
            return Err(TokenizerError::TextTooLong { len: text.len(), max: MAX_TEXT_BYTES });
        }
        if let (Some(p), Model::Bpe(m)) = (&self.pipeline, &self.model) {
            return self.encode_pipeline(p, m, text, add_special, parse_special);
        }
        let mut out = Vec::with_capacity(text.len() / 3 + 2);
        let mut st = EncodeState::default();
        let fragments = self.special.split(text.as_bytes(), parse_special);
        let frag_text = |r: &std::ops::Range<usize>| text.get(r.clone()).unwrap_or("");

        match &self.model {
            Model::Spm => {
                if add_special && self.add_bos {
                    out.push(self.ids.bos.ok_or(TokenizerError::MissingSpecialToken("BOS"))?);
                }
                let mut prev_special = true;
                for f in &fragments {
                    match f {
                        Fragment::Text(r) => {
                            st.buf.clear();
                            if self.add_space_prefix && prev_special {
                                st.buf.push('\u{2581}');
                            }
                            escape_spaces(frag_text(r), &mut st.buf);
                            let text = std::mem::take(&mut st.buf);
                            self.encode_spm(&text, &mut st, &mut out)?;
                            st.buf = text;
                            prev_special = false;
                        }
                        Fragment::Token(id) => {
                            out.push(*id);
                            prev_special = true;
                        }
                    }
                }
                if add_special && self.add_eos {
                    out.push(self.ids.eos.ok_or(TokenizerError::MissingSpecialToken("EOS"))?);
                }
            }
            Model::Bpe(m) => {
                if add_special && self.add_bos {
                    out.push(self.ids.bos.ok_or(TokenizerError::MissingSpecialToken("BOS"))?);
                }
                for f in &fragments {
                    match f {
                        Fragment::Text(r) => {
                            let raw = frag_text(r);
                            let text: Cow<'_, str> = if self.escape_whitespaces {
                                let mut s = String::with_capacity(raw.len() + 8);
                                escape_spaces(raw, &mut s);
                                Cow::Owned(s)
                            } else {
                                Cow::Borrowed(raw)
                            };
                            for w in pretokenize::split(&text, &m.steps) {
                                let word = text.get(w).unwrap_or("");
                                self.encode_bpe_word(m, word, &mut st, &mut out);
                            }
                        }
                        Fragment::Token(id) => out.push(*id),
                    }
                }
                if add_special && self.add_eos {
                    out.push(self.ids.eos.ok_or(TokenizerError::MissingSpecialToken("EOS"))?);
                }
            }
            Model::Wpm { lowercase, strip_accents } => {
                if add_special {
                    out.push(self.ids.bos.ok_or(TokenizerError::MissingSpecialToken("BOS"))?);
                }
                for f in &fragments {
                    match f {
                        Fragment::Text(r) => {
                            for word in wpm::words(frag_text(r), *lowercase, *strip_accents) {
                                if !wpm::encode_word(&self.vocab, &word, &mut out) {
                                    out.push(self.ids.unk.ok_or(TokenizerError::MissingSpecialToken("unknown"))?);
                                }
                            }
                        }
                        Fragment::Token(id) => out.push(*id),
                    }
                }
                if add_special {
                    out.push(self.ids.sep.ok_or(TokenizerError::MissingSpecialToken("SEP"))?);
                }
            }
        }
        Ok(out)
    }

    /// Encoding of tokenizer.json and tiktoken files: added tokens (leftmost-longest) on the raw
    /// text, then per fragment the normalizer, added tokens on the normalized text, the prefix
    /// space, the pre-tokenizer and BPE; the post-processor's tokens with `add_special`.
    fn encode_pipeline(
        &self,
        p: &Pipeline,
        m: &BpeModel,
        text: &str,
        add_special: bool,
        parse_special: bool,
    ) -> Result<Vec<u32>> {
        let mut out = Vec::with_capacity(text.len() / 3 + 2);
        let mut st = EncodeState::default();
        if add_special {
            out.extend_from_slice(&p.prefix_ids);
        }
        for f in self.special.split_leftmost(text.as_bytes(), parse_special) {
            let r = match f {
                Fragment::Token(id) => {
                    out.push(id);
                    continue;
                }
                Fragment::Text(r) => r,
            };
            let normalized = p.normalizer.apply(text.get(r).unwrap_or(""));
            for g in p.normalized_special.split_leftmost(normalized.as_bytes(), parse_special) {
                let r = match g {
                    Fragment::Token(id) => {
                        out.push(id);
                        continue;
                    }
                    Fragment::Text(r) => r,
                };
                let piece = normalized.get(r).unwrap_or("");
                let piece: Cow<'_, str> = if p.prefix_space && !piece.starts_with(' ') {
                    Cow::Owned(format!(" {piece}"))
                } else {
                    Cow::Borrowed(piece)
                };
                for w in pretokenize::split(&piece, &m.steps) {
                    let word = piece.get(w).unwrap_or("");
                    self.encode_bpe_word(m, word, &mut st, &mut out);
                }
            }
        }
        if add_special {
            out.extend_from_slice(&p.suffix_ids);
        }
        Ok(out)
    }

    fn encode_spm(&self, text: &str, st: &mut EncodeState, out: &mut Vec<u32>) -> Result<()> {
        let mut missing = None;
        spm::encode(&self.vocab, text, &mut st.spm, |token, piece| match token {
            Some(id) => out.push(id),
            None => {
                for &b in piece.as_bytes() {
                    match self.byte_tokens[b as usize] {
                        Some(id) => out.push(id),
                        None => missing = missing.or(Some(b)),
                    }
                }
            }
        });
        match missing {
            Some(b) => Err(TokenizerError::NoByteToken(b)),
            None => Ok(()),
        }
    }

    fn encode_bpe_word(&self, m: &BpeModel, word: &str, st: &mut EncodeState, out: &mut Vec<u32>) {
        if word.is_empty() {
            return;
        }
        if let Some(&(s, e)) = st.word_cache.get(word) {
            out.extend_from_slice(&st.cached_ids[s as usize..e as usize]);
            return;
        }
        let start = st.cached_ids.len();
        let encoded: &str = if m.byte_encode {
            st.buf.clear();
            bytes::encode_into(word.as_bytes(), &mut st.buf);
            &st.buf
        } else {
            word
        };
        let whole = (m.ignore_merges || (m.whole_newline_words && word.bytes().all(|b| b == b'\n')))
            .then(|| self.vocab.get(encoded))
            .flatten()
            .filter(|&id| id < m.whole_below);
        match whole {
            Some(id) => st.cached_ids.push(id),
            None => {
                let ids = &mut st.cached_ids;
                let vocab = &self.vocab;
                let byte_tokens = &self.byte_tokens;
                bpe::encode_word(&m.merges, vocab, encoded, &mut st.bpe, |token, text| match token {
                    Some(id) => ids.push(id),
                    None => {
                        for &b in text.as_bytes() {
                            let id = if m.byte_encode {
                                if b < 0x80 {
                                    std::str::from_utf8(&[b]).ok().and_then(|s| vocab.get(s))
                                } else {
                                    None
                                }
                            } else {
                                byte_tokens[b as usize]
                            };
                            // llama.cpp silently skips bytes without a token.
                            ids.extend(id);
                        }
                    }
                });
            }
        }
        let end = st.cached_ids.len();
        out.extend_from_slice(&st.cached_ids[start..end]);
        // Bound the cache: it only pays off for repeated words.
        if st.word_cache.len() < 1 << 16 {
            st.word_cache.insert(word.into(), (start as u32, end as u32));
        } else {
            st.cached_ids.truncate(start);
        }
    }
}

fn escape_spaces(text: &str, out: &mut String) {
    for c in text.chars() {
        out.push(if c == ' ' { '\u{2581}' } else { c });
    }
}

// ---------------------------------------------------------------------------------------------
// Decoding and queries

impl Tokenizer {
    /// Number of tokens in the vocabulary.
    pub fn vocab_size(&self) -> usize {
        self.vocab.len()
    }

    pub fn vocab_type(&self) -> VocabType {
        match self.model {
            Model::Spm => VocabType::Spm,
            Model::Bpe(_) => VocabType::Bpe,
            Model::Wpm { .. } => VocabType::Wpm,
        }
    }

    /// `tokenizer.ggml.model`.
    pub fn model_name(&self) -> &str {
        &self.model_name
    }

    /// The pre-tokenizer in effect (`tokenizer.ggml.pre`; empty for SentencePiece/WordPiece).
    pub fn pre_tokenizer(&self) -> &str {
        &self.pre_name
    }

    pub fn bos(&self) -> Option<u32> {
        self.ids.bos
    }

    pub fn eos(&self) -> Option<u32> {
        self.ids.eos
    }

    pub fn eot(&self) -> Option<u32> {
        self.ids.eot
    }

    pub fn special_ids(&self) -> &SpecialIds {
        &self.ids
    }

    /// Whether `encode(.., add_special = true, ..)` prepends BOS / appends EOS.
    pub fn add_bos(&self) -> bool {
        self.add_bos
    }

    pub fn add_eos(&self) -> bool {
        self.add_eos
    }

    /// Whether the vocabulary's decoding cleans up spaces (HF `clean_up_tokenization_spaces`).
    pub fn clean_spaces(&self) -> bool {
        self.clean_spaces
    }

    /// All end-of-generation tokens, ascending.
    pub fn eog_ids(&self) -> &[u32] {
        &self.eog
    }

    /// Whether `id` ends generation (EOS, EOT, `<|im_end|>`, ...).
    pub fn is_eog(&self, id: u32) -> bool {
        self.eog.binary_search(&id).is_ok()
    }

    fn check(&self, id: u32) -> Result<()> {
        if (id as usize) < self.vocab.len() {
            Ok(())
        } else {
            Err(TokenizerError::TokenOutOfRange { id, vocab_size: self.vocab.len() })
        }
    }

    /// The token's text as stored in the vocabulary.
    pub fn token_text(&self, id: u32) -> Result<&str> {
        self.check(id)?;
        Ok(self.vocab.text(id).unwrap_or(""))
    }

    /// The token's attribute bits (see [`attr`]).
    pub fn token_attr(&self, id: u32) -> Result<u16> {
        self.check(id)?;
        Ok(self.vocab.attr(id))
    }

    pub fn token_score(&self, id: u32) -> Result<f32> {
        self.check(id)?;
        Ok(self.vocab.scores.get(id as usize).copied().unwrap_or(0.0))
    }

    /// Control (or unknown) token: not rendered by default when streaming generated text.
    pub fn is_control(&self, id: u32) -> bool {
        self.vocab.attr(id) & (attr::CONTROL | attr::UNKNOWN) != 0
    }

    /// The id of the token whose text is exactly `text`.
    pub fn token_id(&self, text: &str) -> Option<u32> {
        self.vocab.get(text)
    }

    /// The bytes a token stands for, control tokens rendered as their text (llama.cpp's
    /// `token_to_piece` with `special = true`). May be a partial UTF-8 sequence.
    pub fn token_to_piece(&self, id: u32) -> Result<&[u8]> {
        self.check(id)?;
        let s = self.piece_start.get(id as usize).copied().unwrap_or(0) as usize;
        let e = self.piece_start.get(id as usize + 1).copied().unwrap_or(0) as usize;
        Ok(self.pieces.get(s..e).unwrap_or(&[]))
    }

    /// As [`Tokenizer::token_to_piece`]; with `special = false`, control and unknown tokens give
    /// nothing.
    pub fn token_to_piece_with(&self, id: u32, special: bool) -> Result<&[u8]> {
        let piece = self.token_to_piece(id)?;
        if !special && self.is_control(id) {
            return Ok(&[]);
        }
        Ok(piece)
    }

    /// Detokenize as llama.cpp's `common_detokenize(.., special = true)`: pieces concatenated,
    /// the space prefix of the first token removed where the vocabulary adds one, and the
    /// vocabulary's space clean-up applied.
    pub fn decode(&self, ids: &[u32]) -> Result<Vec<u8>> {
        self.decode_with(ids, DecodeOptions::default())
    }

    /// [`Tokenizer::decode`] as (lossy) text.
    pub fn decode_to_string(&self, ids: &[u32]) -> Result<String> {
        let bytes = self.decode(ids)?;
        Ok(match String::from_utf8(bytes) {
            Ok(s) => s,
            Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
        })
    }

    /// Detokenize with explicit options (llama.cpp's `llama_detokenize`).
    pub fn decode_with(&self, ids: &[u32], opts: DecodeOptions) -> Result<Vec<u8>> {
        for &id in ids {
            self.check(id)?;
        }
        let mut ids = ids;
        let mut strip_space = self.add_space_prefix;
        if opts.remove_special && self.add_bos {
            if let (Some(&first), Some(bos)) = (ids.first(), self.ids.bos) {
                if first == bos {
                    strip_space = false;
                    ids = &ids[1..];
                }
            }
        }
        if opts.remove_special && self.add_eos {
            if let (Some(&last), Some(eos)) = (ids.last(), self.ids.eos) {
                if last == eos {
                    ids = &ids[..ids.len() - 1];
                }
            }
        }
        let mut out = Vec::with_capacity(ids.len() * 4);
        for &id in ids {
            let mut piece = self.token_to_piece_with(id, opts.special)?;
            if strip_space {
                piece = piece.strip_prefix(b" ").unwrap_or(piece);
            }
            strip_space = false;
            out.extend_from_slice(piece);
        }
        if opts.clean_spaces && self.clean_spaces {
            out = clean_up_spaces(&out);
        }
        Ok(out)
    }

    /// A streaming detokenizer for this vocabulary.
    pub fn stream_decoder(&self, special: bool) -> StreamDecoder {
        StreamDecoder::new(special)
    }
}

/// llama.cpp's three clean-up passes over detokenized text (HF `clean_up_tokenization`):
/// drop a space before `? ! . ,`; turn ` ' ` into `'`; drop the space before `'s 'm 're 've`.
fn clean_up_spaces(text: &[u8]) -> Vec<u8> {
    if text.is_empty() {
        return Vec::new();
    }
    // Pass 1.
    let mut a = Vec::with_capacity(text.len());
    a.push(text[0]);
    for i in 1..text.len() {
        let x = text[i];
        if text[i - 1] == b' ' && matches!(x, b'?' | b'!' | b'.' | b',') {
            a.pop();
        }
        a.push(x);
    }
    // Pass 2: the space after a lone apostrophe is consumed (and no longer counts as a space for
    // the next character).
    let mut src = a;
    let mut b = Vec::with_capacity(src.len());
    if let Some(&first) = src.first() {
        b.push(first);
    }
    let mut i = 1;
    while i < src.len() {
        let x = src[i];
        if x == b'\'' && i + 1 < src.len() && src[i - 1] == b' ' && src[i + 1] == b' ' {
            b.pop();
            i += 1;
            src[i] = 0;
        }
        b.push(x);
        i += 1;
    }
    // Pass 3.
    let mut c = Vec::with_capacity(b.len());
    if let Some(&first) = b.first() {
        c.push(first);
    }
    for i in 1..b.len() {
        let x = b[i];
        if b[i - 1] == b' ' && x == b'\'' && i + 1 < b.len() {
            let x1 = b[i + 1];
            let x2 = b.get(i + 2).copied();
            let two = i + 2 < b.len() && matches!((x1, x2), (b'r', Some(b'e')) | (b'v', Some(b'e')));
            if matches!(x1, b's' | b'm') || two {
                c.pop();
            }
        }
        c.push(x);
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_up_passes() {
        assert_eq!(clean_up_spaces(b"Hello , world !"), b"Hello, world!");
        assert_eq!(clean_up_spaces(b"a ' b"), b"a'b");
        assert_eq!(
            clean_up_spaces(b"it 's I 'm we 're they 've I 'll he 'd don 't"),
            b"it's I'm we're they've I 'll he 'd don 't"
        );
        assert_eq!(clean_up_spaces(b"a ' ' b"), b"a'' b");
        assert_eq!(clean_up_spaces(b""), b"");
    }

    #[test]
    fn token_byte_values() {
        assert_eq!(byte_of_token_text("<0x0A>"), 0x0A);
        assert_eq!(byte_of_token_text("<0xFF>"), 0xFF);
        assert_eq!(byte_of_token_text("<0x"), 0);
    }

    use orcd_gguf::gguf::{string_array, GgufWriter, ValueType};

    /// A toy SentencePiece vocabulary: specials, byte tokens, a few pieces.
    fn toy(extra: &[(&str, GgufValue)]) -> std::result::Result<Tokenizer, TokenizerError> {
        let mut tokens: Vec<String> = vec!["<unk>".into(), "<s>".into(), "</s>".into()];
        let mut types = vec![2, 3, 3];
        for b in 0..=255u8 {
            tokens.push(format!("<0x{b:02X}>"));
            types.push(6);
        }
        for p in ["\u{2581}", "a", "b", "\u{2581}a", "\u{2581}ab", "ab", "<|x|>"] {
            tokens.push(p.into());
            types.push(if p == "<|x|>" { 4 } else { 1 });
        }
        let n = tokens.len();
        let mut w = GgufWriter::new();
        w.set("tokenizer.ggml.model", GgufValue::String("llama".into()));
        w.set("tokenizer.ggml.tokens", string_array(&tokens));
        w.set(
            "tokenizer.ggml.scores",
            GgufValue::Array(ValueType::F32, (0..n).map(|i| GgufValue::F32(i as f32)).collect()),
        );
        w.set(
            "tokenizer.ggml.token_type",
            GgufValue::Array(ValueType::I32, types.into_iter().map(GgufValue::I32).collect()),
        );
        for (k, v) in extra {
            w.set(k, v.clone());
        }
        let file = GgufFile::from_bytes(w.to_bytes().0).map_err(TokenizerError::from)?;
        Tokenizer::from_gguf(&file)
    }

    #[test]
    fn toy_vocabulary() {
        let t = toy(&[]).unwrap();
        let id = |s: &str| t.token_id(s).unwrap();
        assert_eq!(t.encode("ab", false, false).unwrap(), vec![id("\u{2581}ab")]);
        assert_eq!(t.encode("ab", true, false).unwrap(), vec![1, id("\u{2581}ab")]);
        // Byte fallback for characters without a piece.
        assert_eq!(t.encode("é", false, false).unwrap(), vec![id("\u{2581}"), id("<0xC3>"), id("<0xA9>")]);
        // User-defined tokens are cut out even without parse_special; a space prefix follows them.
        assert_eq!(t.encode("a<|x|>a", false, false).unwrap(), vec![id("\u{2581}a"), id("<|x|>"), id("\u{2581}a")]);
        assert_eq!(t.decode(&t.encode("é ab", false, false).unwrap()).unwrap(), "é ab".as_bytes());
        assert!(t.is_eog(2) && !t.is_eog(1));
        assert!(t.encode(&"a".repeat(10_000), false, false).is_ok());
    }

    #[test]
    fn bad_metadata_is_an_error() {
        let unknown_model = toy(&[("tokenizer.ggml.model", GgufValue::String("rwkv".into()))]);
        assert!(matches!(unknown_model, Err(TokenizerError::UnsupportedModel(_))));
        let bad_type = toy(&[("tokenizer.ggml.add_bos_token", GgufValue::U32(1))]);
        assert!(matches!(bad_type, Err(TokenizerError::Metadata { .. })));
        let short_scores =
            toy(&[("tokenizer.ggml.scores", GgufValue::Array(ValueType::F32, vec![GgufValue::F32(0.0)]))]);
        assert!(matches!(short_scores, Err(TokenizerError::Metadata { .. })));
        let dup = toy(&[("tokenizer.ggml.tokens", string_array(&["a", "a"]))]);
        assert!(dup.is_err());
        let gpt2_unknown_pre = toy(&[
            ("tokenizer.ggml.model", GgufValue::String("gpt2".into())),
            ("tokenizer.ggml.pre", GgufValue::String("no-such-pre".into())),
        ]);
        assert!(matches!(gpt2_unknown_pre, Err(TokenizerError::UnknownPreTokenizer(_))));
    }

    #[test]
    fn tokenizer_is_shareable() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Tokenizer>();
    }

    #[test]
    fn pre_tokenizer_names() {
        assert!(lookup_pre("qwen2").is_ok());
        assert!(lookup_pre("").is_ok());
        assert!(matches!(lookup_pre("superbpe"), Err(TokenizerError::UnsupportedPreTokenizer(_))));
        for (names, s) in PRE_TOKENIZERS {
            assert!(compile_steps(names[0], s.exprs).is_ok(), "{names:?}");
        }
        assert!(matches!(lookup_pre("no-such"), Err(TokenizerError::UnknownPreTokenizer(_))));
    }
}
