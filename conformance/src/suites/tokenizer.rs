//! Suite `tokenizer`: llama.cpp's own vocabulary suites (`ggml-vocab-*.gguf` with `.inp`/`.out`
//! pairs, from the llama-cpp-python 0.3.36 source distribution): one case per (vocab, input).
//! Ids must be exactly llama.cpp's (add_special = false, parse_special = false, as its
//! test-tokenizer-0). Reference: the published `.out` files; tolerance: exact.
//!
//! Also the strings cases (`goldens/tokenizer/*.yaml`): strings of our own tokenized by a
//! reference on one tokenizer file — llama.cpp on GGUF vocabularies (`strings-*`), tiktoken on
//! o200k_harmony and HF `tokenizers` on tokenizer.json files (`files-*`, which also carry the
//! reference's decoding). For `files-*` cases three things must hold per string: ids exact,
//! decode(ids) equal to the reference's decoding, and — where the reference round-trips the
//! string — decode(encode(s)) == s; and streaming detokenization equals the whole decode.
//! A case whose file is not fetched is not-run, never passed.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};

use orcd_engine::gguf::GgufFile;
use orcd_engine::tokenizer::{TiktokenEncoding, Tokenizer};

use crate::case::{Backend, Case, CaseKind, Outcome};
use crate::paths;

/// Vocab suites of llama.cpp 0.3.36's models/ folder (listed so that a missing cache still
/// produces one not-run case per vocab instead of nothing).
pub const VOCABS: &[&str] = &[
    "bert-bge",
    "command-r",
    "deepseek-coder",
    "deepseek-llm",
    "falcon",
    "gemma-4",
    "gpt-2",
    "llama-bpe",
    "llama-spm",
    "mpt",
    "phi-3",
    "qwen2",
    "qwen35",
    "refact",
    "starcoder",
];

const SEPARATOR: &str = "\n__ggml_vocab_test__\n";

#[derive(Debug, Clone)]
pub struct TokenizerCase {
    pub vocab: String,
    pub gguf: PathBuf,
    pub text: String,
    pub expected: Vec<u32>,
    /// Set on the stand-in case of a suite whose files exist but could not be read.
    pub unreadable: Option<String>,
}

fn vocab_dir() -> PathBuf {
    paths::cache_dir().join("llama_cpp_python-0.3.36").join("vendor").join("llama.cpp").join("models")
}

fn read_suite(gguf: &std::path::Path) -> Result<Vec<(String, Vec<u32>)>, String> {
    let read = |ext: &str| {
        let p = format!("{}.{ext}", gguf.display());
        std::fs::read_to_string(&p).map_err(|e| format!("{p}: {e}"))
    };
    let (inp, out) = (read("inp")?, read("out")?);
    // As llama.cpp's test-tokenizer-0 reads them: a trailing separator ends the list.
    let mut texts = Vec::new();
    let mut rest = inp.as_str();
    while !rest.is_empty() {
        match rest.find(SEPARATOR) {
            Some(i) => {
                texts.push(rest[..i].to_string());
                rest = &rest[i + SEPARATOR.len()..];
            }
            None => {
                texts.push(rest.to_string());
                rest = "";
            }
        }
    }
    let mut ids = Vec::new();
    for l in out.lines() {
        let row: Result<Vec<u32>, _> = l.split_whitespace().map(str::parse).collect();
        ids.push(row.map_err(|e| format!("{}.out: {e}", gguf.display()))?);
    }
    if texts.len() != ids.len() {
        return Err(format!("{}: {} inputs, {} outputs", gguf.display(), texts.len(), ids.len()));
    }
    Ok(texts.into_iter().zip(ids).collect())
}

/// One case per (vocab, input) when the suites are fetched; one not-run case per vocab otherwise
/// (and one failing case when a fetched suite cannot be read).
pub fn cases() -> Vec<Case> {
    let dir = vocab_dir();
    let mut out = Vec::new();
    for v in VOCABS {
        let gguf = dir.join(format!("ggml-vocab-{v}.gguf"));
        let suite = if gguf.exists() { read_suite(&gguf) } else { Err(String::new()) };
        let unreadable = suite.as_ref().err().filter(|e| !e.is_empty()).cloned();
        match suite {
            Ok(items) => {
                for (i, (text, expected)) in items.into_iter().enumerate() {
                    out.push(Case {
                        suite: "tokenizer".into(),
                        name: format!("{v}-{i:02}"),
                        source: PathBuf::from(format!("{}.inp case {i}", gguf.display())),
                        backends: vec![Backend::Cpu],
                        kind: CaseKind::Tokenizer(Box::new(TokenizerCase {
                            vocab: v.to_string(),
                            gguf: gguf.clone(),
                            text,
                            expected,
                            unreadable: None,
                        })),
                    });
                }
            }
            Err(_) => out.push(Case {
                suite: "tokenizer".into(),
                name: format!("{v}-suite"),
                source: gguf.clone(),
                backends: vec![Backend::Cpu],
                kind: CaseKind::Tokenizer(Box::new(TokenizerCase {
                    vocab: v.to_string(),
                    gguf,
                    text: String::new(),
                    expected: Vec::new(),
                    unreadable,
                })),
            }),
        }
    }
    out
}

pub fn not_run_reason(c: &TokenizerCase) -> Option<String> {
    (!c.gguf.exists()).then(|| format!("vocab suite {} not fetched (run `{}`)", c.gguf.display(), paths::FETCH_COMMAND))
}

type Loaded = Arc<Result<Tokenizer, String>>;

fn tokenizer(path: &std::path::Path) -> Loaded {
    load(path, None, None)
}

/// A tokenizer per (file, format, encoding), loaded once per process.
fn load(path: &std::path::Path, format: Option<&str>, encoding: Option<&str>) -> Loaded {
    type Key = (PathBuf, Option<String>, Option<String>);
    static CACHE: OnceLock<Mutex<HashMap<Key, Loaded>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    let key = (path.to_path_buf(), format.map(str::to_string), encoding.map(str::to_string));
    let mut g = cache.lock().unwrap_or_else(|p| p.into_inner());
    g.entry(key)
        .or_insert_with(|| {
            let read = || std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()));
            Arc::new(match format.unwrap_or("gguf") {
                "gguf" => GgufFile::open(path)
                    .map_err(|e| e.to_string())
                    .and_then(|f| Tokenizer::from_gguf(&f).map_err(|e| e.to_string())),
                "tokenizer.json" => read().and_then(|b| Tokenizer::from_tokenizer_json(&b).map_err(|e| e.to_string())),
                "tiktoken" => match encoding.and_then(TiktokenEncoding::from_name) {
                    Some(enc) => read().and_then(|b| Tokenizer::from_tiktoken(&b, enc).map_err(|e| e.to_string())),
                    None => Err(format!("unknown tiktoken encoding {encoding:?}")),
                },
                other => Err(format!("unknown tokenizer file format {other:?}")),
            })
        })
        .clone()
}

/// The checks of a `files-*` string beyond its ids: decoding as the reference decodes, round trip,
/// streaming. Returns the first problem.
fn check_decoding(t: &Tokenizer, item: &StringItem) -> Option<String> {
    let show = |s: &str| format!("{:?}", s.chars().take(60).collect::<String>());
    let whole = match t.decode_to_string(&item.ids) {
        Ok(s) => s,
        Err(e) => return Some(format!("{}: decode failed: {e}", show(&item.text))),
    };
    if let Some(reference) = &item.decoded {
        if &whole != reference {
            return Some(format!(
                "{}: decode(ids) = {}, reference {}",
                show(&item.text),
                show(&whole),
                show(reference)
            ));
        }
        // Round trip where the reference itself gives the string back.
        if reference == &item.text {
            match t.encode(&item.text, item.add_special, item.parse_special).and_then(|ids| t.decode_to_string(&ids)) {
                Ok(back) if back == item.text => {}
                Ok(back) => return Some(format!("{}: decode(encode(s)) = {}", show(&item.text), show(&back))),
                Err(e) => return Some(format!("{}: round trip failed: {e}", show(&item.text))),
            }
        }
    }
    let mut stream = t.stream_decoder(true);
    let mut streamed = String::new();
    for &id in &item.ids {
        match stream.push(t, id) {
            Ok(s) => streamed.push_str(&s),
            Err(e) => return Some(format!("{}: streaming failed: {e}", show(&item.text))),
        }
    }
    streamed.push_str(&stream.finish());
    (streamed != whole)
        .then(|| format!("{}: streamed {} != whole decode {}", show(&item.text), show(&streamed), show(&whole)))
}

pub fn run(c: &TokenizerCase) -> Outcome {
    if let Some(e) = &c.unreadable {
        return Outcome::Fail { message: format!("vocab suite unreadable: {e}") };
    }
    let t = tokenizer(&c.gguf);
    let t = match t.as_ref() {
        Ok(t) => t,
        Err(e) => return Outcome::Fail { message: format!("tokenizer of {}: {e}", c.vocab) },
    };
    match t.encode(&c.text, false, false) {
        Ok(ids) if ids == c.expected => Outcome::Pass { detail: format!("{} ids equal llama.cpp's", ids.len()) },
        Ok(ids) => {
            let at = ids.iter().zip(&c.expected).position(|(a, b)| a != b).unwrap_or(ids.len().min(c.expected.len()));
            Outcome::Fail {
                message: format!(
                    "ids differ from llama.cpp's (metric: exact) at index {at}: got {:?}, expected {:?}\n  text: {:?}",
                    &ids[at..(at + 6).min(ids.len())],
                    &c.expected[at..(at + 6).min(c.expected.len())],
                    c.text.chars().take(120).collect::<String>()
                ),
            }
        }
        Err(e) => Outcome::Fail { message: format!("encode failed: {e}") },
    }
}

/// Strings of our own tokenized by llama.cpp (llama-cpp-python) on one vocabulary
/// (goldens/recorders/record_tokenizer_strings.py), every add_special × parse_special combination.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct StringsCaseFile {
    pub name: String,
    /// Vocabulary file, relative to the fetch cache.
    pub file: String,
    /// `gguf` (default), `tokenizer.json` or `tiktoken`.
    #[serde(default)]
    pub format: Option<String>,
    /// tiktoken: the encoding built on the rank file (`o200k_harmony`, `o200k_base`).
    #[serde(default)]
    pub encoding: Option<String>,
    pub cases: Vec<StringItem>,
}

#[derive(Debug, Clone, serde::Deserialize)]
pub struct StringItem {
    pub text: String,
    pub add_special: bool,
    pub parse_special: bool,
    pub ids: Vec<u32>,
    /// The reference's decoding of `ids` (special tokens kept), where recorded.
    #[serde(default)]
    pub decoded: Option<String>,
}

pub fn strings_not_run_reason(c: &StringsCaseFile) -> Option<String> {
    let p = paths::external(&c.file);
    (!p.exists()).then(|| format!("vocabulary {} not fetched (run `{}`)", p.display(), paths::FETCH_COMMAND))
}

pub fn run_strings(c: &StringsCaseFile) -> Outcome {
    let t = load(&paths::external(&c.file), c.format.as_deref(), c.encoding.as_deref());
    let reference = match c.format.as_deref() {
        Some("tiktoken") => "tiktoken",
        Some("tokenizer.json") => "HF tokenizers",
        _ => "llama.cpp",
    };
    let full_checks = c.format.is_some();
    let t = match t.as_ref() {
        Ok(t) => t,
        Err(e) => return Outcome::Fail { message: format!("tokenizer of {}: {e}", c.file) },
    };
    let mut bad = Vec::new();
    for item in &c.cases {
        match t.encode(&item.text, item.add_special, item.parse_special) {
            Ok(ids) if ids == item.ids => {
                if full_checks {
                    bad.extend(check_decoding(t, item));
                }
            }
            Ok(ids) => {
                let at = ids.iter().zip(&item.ids).position(|(a, b)| a != b).unwrap_or(ids.len().min(item.ids.len()));
                bad.push(format!(
                    "{:?} (add_special {}, parse_special {}): first difference at index {at}: got {:?}, {reference} {:?}",
                    item.text.chars().take(60).collect::<String>(),
                    item.add_special,
                    item.parse_special,
                    &ids[at..(at + 8).min(ids.len())],
                    &item.ids[at..(at + 8).min(item.ids.len())]
                ))
            }
            Err(e) => bad.push(format!("{:?}: encode failed: {e}", item.text.chars().take(60).collect::<String>())),
        }
    }
    if bad.is_empty() {
        let extra = if full_checks { ", decodings, round trips and streaming" } else { "" };
        Outcome::Pass { detail: format!("{} strings × flags equal {reference}'s ids{extra}", c.cases.len()) }
    } else {
        let n = bad.len();
        bad.truncate(6);
        Outcome::Fail {
            message: format!(
                "{n} of {} differ from {reference} (metric: exact ids, exact decoding):\n    {}",
                c.cases.len(),
                bad.join("\n    ")
            ),
        }
    }
}
