//! The tokenizer against llama.cpp's own vocabulary suites.
//!
//! Every `ggml-vocab-*.gguf` of the pinned llama.cpp source (fetched by `python3 fixtures/fetch.py`)
//! that ships `.inp`/`.out` pairs is one test here. The ids must match exactly (tokenized with
//! add_special = false, parse_special = false, as llama.cpp's test-tokenizer-0 does), and
//! decode(encode(s)) must give s back, except where the vocabulary's decoding is lossy by design
//! (WordPiece normalises; the HF space clean-up of some BPE vocabularies is reported separately).
//!
//! Beyond the suites, `tests/data/tokenizer_llamacpp/*.tsv` hold llama.cpp's own output for a few
//! hundred more texts per model (random and adversarial texts, special tokens, all four
//! add_special/parse_special combinations, detokenized text), recorded by `record.sh` there from
//! the same pinned llama.cpp; the `golden_*` tests replay them.
//!
//! Missing fixtures fail the tests, unless ORCD_ALLOW_MISSING_FIXTURES=1, where each test prints
//! NOT RUN instead.
//!
//! Speed is a criterion benchmark: `cargo bench -p orcd-tokenizer --bench tokenizer`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use orcd_gguf::gguf::GgufFile;
use orcd_tokenizer::tokenizer::{DecodeOptions, StreamDecoder, Tokenizer, TokenizerError, VocabType};

const SEPARATOR: &str = "\n__ggml_vocab_test__\n";

fn cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("ORCD_CACHE") {
        return PathBuf::from(dir);
    }
    let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_default();
    home.join(".cache").join("orcd")
}

fn suites_dir() -> PathBuf {
    cache_dir().join("llama_cpp_python-0.3.36").join("vendor").join("llama.cpp").join("models")
}

/// The fixture path, or None (after printing NOT RUN) when it is missing and that is allowed.
fn fixture(path: &Path) -> Option<PathBuf> {
    if path.exists() {
        return Some(path.to_path_buf());
    }
    if std::env::var("ORCD_ALLOW_MISSING_FIXTURES").as_deref() == Ok("1") {
        eprintln!("NOT RUN: {} is missing (run python3 fixtures/fetch.py)", path.display());
        return None;
    }
    panic!("{} is missing: run python3 fixtures/fetch.py (or set ORCD_ALLOW_MISSING_FIXTURES=1)", path.display());
}

/// Cases of a suite, read the way llama.cpp's test-tokenizer-0 reads them.
fn read_suite(gguf: &Path) -> Vec<(String, Vec<u32>)> {
    let inp = std::fs::read_to_string(format!("{}.inp", gguf.display())).expect("read .inp");
    let out = std::fs::read_to_string(format!("{}.out", gguf.display())).expect("read .out");
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
    let ids: Vec<Vec<u32>> =
        out.lines().map(|l| l.split_whitespace().map(|t| t.parse().expect("id in .out")).collect()).collect();
    assert_eq!(texts.len(), ids.len(), "{}: .inp and .out disagree on the number of cases", gguf.display());
    texts.into_iter().zip(ids).collect()
}

fn load(path: &Path) -> Tokenizer {
    let file = GgufFile::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    Tokenizer::from_gguf(&file).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn show(t: &Tokenizer, ids: &[u32]) -> String {
    ids.iter()
        .map(|&id| format!("{id}:{:?}", String::from_utf8_lossy(t.token_to_piece(id).unwrap_or(b"?"))))
        .collect::<Vec<_>>()
        .join(" ")
}

fn run_suite(name: &str) {
    let Some(path) = fixture(&suites_dir().join(format!("ggml-vocab-{name}.gguf"))) else { return };
    let t = load(&path);
    let cases = read_suite(&path);
    let total = cases.len();
    let mut ids_ok = 0;
    let mut round_ok = 0;
    let mut round_cleanup = 0;
    let mut failures = Vec::new();
    let lossless = t.vocab_type() != VocabType::Wpm;
    for (i, (text, expected)) in cases.iter().enumerate() {
        let got = t.encode(text, false, false).unwrap_or_else(|e| panic!("{name} case {i}: {e}"));
        if &got == expected {
            ids_ok += 1;
        } else {
            failures.push(format!(
                "case {i} {text:?}\n    expected {}\n    got      {}",
                show(&t, expected),
                show(&t, &got)
            ));
        }
        if lossless {
            let back = t.decode(&got).expect("decode");
            if back == text.as_bytes() {
                round_ok += 1;
            } else {
                let raw =
                    t.decode_with(&got, DecodeOptions { clean_spaces: false, ..Default::default() }).expect("decode");
                if t.clean_spaces() && raw == text.as_bytes() {
                    round_cleanup += 1;
                } else {
                    failures
                        .push(format!("case {i} {text:?}: decode(encode(s)) = {:?}", String::from_utf8_lossy(&back)));
                }
            }
        }
    }
    let round = if lossless {
        format!("roundtrip {round_ok}/{total} exact, {round_cleanup} equal up to the vocabulary's space clean-up")
    } else {
        "roundtrip n/a (WordPiece normalises)".to_string()
    };
    eprintln!(
        "vocab {name:<15} model {:<6} pre {:<15} ids {ids_ok}/{total}, {round}",
        t.model_name(),
        t.pre_tokenizer()
    );
    assert!(failures.is_empty(), "{name}: {} failure(s):\n{}", failures.len(), failures.join("\n"));
}

macro_rules! suites {
    ($($test:ident => $name:literal),* $(,)?) => {
        $(
            #[test]
            fn $test() {
                run_suite($name);
            }
        )*
        const SUITES: &[&str] = &[$($name),*];
    };
}

suites! {
    bert_bge => "bert-bge",
    command_r => "command-r",
    deepseek_coder => "deepseek-coder",
    deepseek_llm => "deepseek-llm",
    falcon => "falcon",
    gemma_4 => "gemma-4",
    gpt_2 => "gpt-2",
    llama_bpe => "llama-bpe",
    llama_spm => "llama-spm",
    mpt => "mpt",
    phi_3 => "phi-3",
    qwen2 => "qwen2",
    qwen35 => "qwen35",
    refact => "refact",
    starcoder => "starcoder",
}

fn from_hex(h: &str) -> Vec<u8> {
    (0..h.len() / 2).map(|i| u8::from_str_radix(&h[2 * i..2 * i + 2], 16).expect("hex")).collect()
}

/// Replay a llama.cpp golden (see the module docs) against the model it was recorded from.
fn run_golden(name: &str, model_path: PathBuf) {
    let Some(path) = fixture(&model_path) else { return };
    let t = load(&path);
    let golden =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/tokenizer_llamacpp").join(format!("{name}.tsv"));
    let text = std::fs::read_to_string(&golden).expect("read golden");
    let mut failures = Vec::new();
    let mut cases = 0;
    for line in text.lines() {
        if let Some(meta) = line.strip_prefix("# meta ") {
            let field = |k: &str| meta.split(' ').find_map(|kv| kv.strip_prefix(&format!("{k}="))).expect(k);
            let id = |v: Option<u32>| v.map_or(-1, |x| x as i64).to_string();
            assert_eq!(field("n_vocab"), t.vocab_size().to_string(), "{name}: n_vocab");
            assert_eq!(field("bos"), id(t.bos()), "{name}: bos");
            assert_eq!(field("eos"), id(t.eos()), "{name}: eos");
            assert_eq!(field("add_bos"), (t.add_bos() as u8).to_string(), "{name}: add_bos");
            assert_eq!(field("add_eos"), (t.add_eos() as u8).to_string(), "{name}: add_eos");
            let eog: Vec<u32> = field("eog").split(',').filter(|s| !s.is_empty()).map(|s| s.parse().unwrap()).collect();
            assert_eq!(eog, t.eog_ids(), "{name}: end-of-generation tokens");
            continue;
        }
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        let cols: Vec<&str> = line.split('\t').collect();
        assert_eq!(cols.len(), 4, "{name}: bad line {line:?}");
        let (add, parse) = (cols[0].as_bytes()[0] == b'1', cols[0].as_bytes()[1] == b'1');
        let input = String::from_utf8(from_hex(cols[1])).expect("utf-8 text");
        let expected: Vec<u32> = cols[2].split(' ').filter(|s| !s.is_empty()).map(|s| s.parse().unwrap()).collect();
        let detok = from_hex(cols[3]);
        cases += 1;
        let got = t.encode(&input, add, parse).unwrap();
        if got != expected {
            failures.push(format!(
                "{input:?} add_special={add} parse_special={parse}\n    expected {}\n    got      {}",
                show(&t, &expected),
                show(&t, &got)
            ));
            continue;
        }
        let back = t.decode(&got).unwrap();
        if back != detok {
            failures.push(format!(
                "{input:?}: decode gives {:?}, llama.cpp {:?}",
                String::from_utf8_lossy(&back),
                String::from_utf8_lossy(&detok)
            ));
        }
    }
    eprintln!(
        "golden {name:<20} {}/{cases} cases identical to llama.cpp (ids and detokenized text)",
        cases - failures.len()
    );
    assert!(cases > 0, "{name}: empty golden");
    assert!(failures.is_empty(), "{name}: {} failure(s):\n{}", failures.len(), failures.join("\n"));
}

macro_rules! goldens {
    ($($test:ident => $name:literal : $path:expr),* $(,)?) => {
        $(
            #[test]
            fn $test() {
                run_golden($name, $path);
            }
        )*
    };
}

goldens! {
    golden_gemma3 => "gemma-3-270m": cache_dir().join("models/gemma-3-270m-q4_k_m.gguf"),
    golden_smollm2 => "smollm2-135m": cache_dir().join("models/SmolLM2-135M-Instruct.Q4_1.gguf"),
    golden_qwen2 => "vocab-qwen2": suites_dir().join("ggml-vocab-qwen2.gguf"),
    golden_llama_spm => "vocab-llama-spm": suites_dir().join("ggml-vocab-llama-spm.gguf"),
    golden_phi_3 => "vocab-phi-3": suites_dir().join("ggml-vocab-phi-3.gguf"),
    golden_llama_bpe => "vocab-llama-bpe": suites_dir().join("ggml-vocab-llama-bpe.gguf"),
    golden_gemma_4 => "vocab-gemma-4": suites_dir().join("ggml-vocab-gemma-4.gguf"),
    golden_deepseek_llm => "vocab-deepseek-llm": suites_dir().join("ggml-vocab-deepseek-llm.gguf"),
    golden_bert_bge => "vocab-bert-bge": suites_dir().join("ggml-vocab-bert-bge.gguf"),
}

/// Every suite llama.cpp ships is one of the tests above (none is skipped silently).
#[test]
fn every_shipped_suite_is_tested() {
    let dir = suites_dir();
    let Some(dir) = fixture(&dir) else { return };
    let mut shipped = Vec::new();
    for entry in std::fs::read_dir(&dir).expect("read suites dir") {
        let name = entry.expect("dir entry").file_name().to_string_lossy().into_owned();
        if let Some(vocab) = name.strip_prefix("ggml-vocab-").and_then(|n| n.strip_suffix(".gguf.inp")) {
            shipped.push(vocab.to_string());
        }
    }
    shipped.sort();
    let untested: Vec<_> = shipped.iter().filter(|s| !SUITES.contains(&s.as_str())).collect();
    assert!(untested.is_empty(), "suites without a test: {untested:?}");
    assert!(!shipped.is_empty(), "{} holds no suites", dir.display());
}

/// Vocabularies without suites still load (or are refused with a clear reason).
#[test]
fn vocabularies_without_suites() {
    let Some(dir) = fixture(&suites_dir()) else { return };
    for name in ["aquila", "baichuan", "gpt-neox", "nomic-bert-moe"] {
        let path = dir.join(format!("ggml-vocab-{name}.gguf"));
        if !path.exists() {
            continue;
        }
        let file = GgufFile::open(&path).expect("open");
        match Tokenizer::from_gguf(&file) {
            Ok(t) => {
                let ids = t.encode("Hello world", false, false).expect("encode");
                assert!(!ids.is_empty());
                eprintln!("vocab {name:<15} loads ({} tokens, {:?})", t.vocab_size(), t.vocab_type());
            }
            Err(TokenizerError::UnsupportedModel(m)) => eprintln!("vocab {name:<15} not supported: model {m:?}"),
            Err(e) => panic!("{name}: {e}"),
        }
    }
}

fn model(name: &str) -> Option<Tokenizer> {
    fixture(&cache_dir().join("models").join(name)).map(|p| load(&p))
}

#[test]
fn special_tokens_and_bos_rules() {
    let Some(dir) = fixture(&suites_dir()) else { return };
    let qwen = load(&dir.join("ggml-vocab-qwen2.gguf"));
    // qwen2 asks for no BOS: add_special adds nothing.
    assert!(!qwen.add_bos());
    assert_eq!(qwen.encode("Hi", true, false).unwrap(), qwen.encode("Hi", false, false).unwrap());
    // Control tokens are text unless parse_special.
    let im_start = qwen.token_id("<|im_start|>").unwrap();
    let im_end = qwen.token_id("<|im_end|>").unwrap();
    let chat = "<|im_start|>user\nHi<|im_end|>";
    let parsed = qwen.encode(chat, false, true).unwrap();
    assert_eq!(parsed.first(), Some(&im_start));
    assert_eq!(parsed.last(), Some(&im_end));
    assert!(!qwen.encode(chat, false, false).unwrap().contains(&im_start));
    assert!(qwen.is_eog(im_end));
    assert!(qwen.is_eog(qwen.token_id("<|endoftext|>").unwrap()));
    assert!(!qwen.is_eog(im_start));
    assert_eq!(qwen.decode(&parsed).unwrap(), chat.as_bytes());

    let spm = load(&dir.join("ggml-vocab-llama-spm.gguf"));
    assert!(spm.add_bos());
    let ids = spm.encode("Hello", true, false).unwrap();
    assert_eq!(ids[0], 1);
    // As llama.cpp: removing the BOS keeps the space prefix of the next token.
    assert_eq!(spm.decode_with(&ids, DecodeOptions { remove_special: true, ..Default::default() }).unwrap(), b" Hello");
    assert_eq!(spm.decode(&ids[1..]).unwrap(), b"Hello");
    assert!(spm.is_eog(2));
    // "<s>" in the text is text unless parse_special.
    assert_ne!(spm.encode("<s>", false, false).unwrap(), vec![1]);
    assert_eq!(spm.encode("<s>", false, true).unwrap(), vec![1]);

    // Out-of-range ids are errors, never panics.
    let n = qwen.vocab_size() as u32;
    assert!(matches!(qwen.decode(&[0, n]), Err(TokenizerError::TokenOutOfRange { .. })));
    assert!(qwen.token_to_piece(u32::MAX).is_err());
    assert!(StreamDecoder::new(true).push(&qwen, n + 5).is_err());
}

#[test]
fn stream_decoder_never_splits_characters() {
    let Some(dir) = fixture(&suites_dir()) else { return };
    for vocab in ["llama-spm", "qwen2", "gpt-2"] {
        let t = load(&dir.join(format!("ggml-vocab-{vocab}.gguf")));
        let text = "Emoji 🦙🚀 and 我想在apple工作 ok";
        let ids = t.encode(text, false, false).unwrap();
        let mut d = t.stream_decoder(false);
        let mut out = String::new();
        for &id in &ids {
            let chunk = d.push(&t, id).unwrap();
            assert!(!chunk.contains('\u{FFFD}'), "{vocab}: partial character emitted");
            out.push_str(&chunk);
        }
        out.push_str(&d.finish());
        let expected = if t.vocab_type() == VocabType::Spm { format!(" {text}") } else { text.to_string() };
        assert_eq!(out, expected, "{vocab}");
    }
}

#[test]
fn real_models() {
    if let Some(smol) = model("SmolLM2-135M-Instruct.Q4_1.gguf") {
        assert_eq!(smol.pre_tokenizer(), "smollm");
        assert!(!smol.add_bos());
        let ids = smol.encode("<|im_start|>user\nWhat is 2+2?<|im_end|>", true, true).unwrap();
        assert_eq!(ids.first(), smol.token_id("<|im_start|>").as_ref());
        assert!(smol.is_eog(smol.token_id("<|im_end|>").unwrap()));
        eprintln!("SmolLM2: {ids:?}");
    }
    if let Some(gemma) = model("gemma-3-270m-q4_k_m.gguf") {
        assert_eq!(gemma.vocab_type(), VocabType::Spm);
        assert!(gemma.add_bos());
        let text = "<start_of_turn>user\nHello  world\n\n\nfoo<end_of_turn>";
        let ids = gemma.encode(text, true, true).unwrap();
        assert_eq!(ids[0], gemma.bos().unwrap());
        assert_eq!(ids[1], gemma.token_id("<start_of_turn>").unwrap());
        assert!(gemma.is_eog(gemma.token_id("<end_of_turn>").unwrap()));
        assert_eq!(gemma.decode_with(&ids[1..], DecodeOptions::default()).unwrap(), text.as_bytes());
        eprintln!("gemma3: {ids:?}");
    }
}
