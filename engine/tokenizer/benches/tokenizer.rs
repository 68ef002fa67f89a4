//! Encode throughput on 1 MB of mixed text (issue 3): the qwen2 vocabulary (byte-level BPE,
//! ggml-vocab-qwen2.gguf), gemma3's (SentencePiece, 262,144 tokens, from the real model),
//! gpt-oss's o200k_harmony (tiktoken rank file, full-Unicode o200k expression) and the DeepSeek-V4
//! tokenizer.json (Split expressions + byte-level BPE, 128k merges).
//! Text: llama.cpp's own vocab-suite inputs repeated to 1 MB (code, whitespace runs, CJK, emoji,
//! accents), and 1 MB of random words over several scripts (nearly every word unique, so no cache
//! helps). Target: under one second per MB on one core.
//!
//! Run: `cargo bench -p orcd-tokenizer --bench tokenizer` (needs `python3 fixtures/fetch.py`; a
//! vocabulary that is not fetched is reported "not run" and benchmarked by nobody).

#![allow(clippy::unwrap_used, clippy::expect_used, missing_debug_implementations)]

use std::hint::black_box;
use std::path::PathBuf;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use orcd_gguf::gguf::GgufFile;
use orcd_tokenizer::tokenizer::{TiktokenEncoding, Tokenizer};

fn cache() -> PathBuf {
    std::env::var_os("ORCD_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/orcd"))
}

fn models_dir() -> PathBuf {
    cache().join("llama_cpp_python-0.3.36/vendor/llama.cpp/models")
}

/// 1 MB of the vocab suites' inputs, concatenated and repeated.
fn mixed_text() -> Option<String> {
    let mut seed = String::new();
    for e in std::fs::read_dir(models_dir()).ok()? {
        let p = e.ok()?.path();
        if p.extension().is_some_and(|x| x == "inp") {
            seed.push_str(&std::fs::read_to_string(&p).ok()?.replace("\n__ggml_vocab_test__\n", "\n"));
        }
    }
    if seed.is_empty() {
        return None;
    }
    let mut out = String::with_capacity(1 << 20);
    while out.len() < 1 << 20 {
        out.push_str(&seed);
    }
    let mut cut = 1 << 20;
    while !out.is_char_boundary(cut) {
        cut -= 1;
    }
    out.truncate(cut);
    Some(out)
}

/// About 1 MB of random words over several scripts (nearly every word unique: no cache help).
fn random_text() -> String {
    const POOL: &[&str] = &[
        "abcdefghijklmnopqrstuvwxyz",
        "ABCDEFGHIJKLMNOPQRSTUVWXYZ",
        "0123456789",
        "éèàùçäöüßñ",
        "абвгдежзийклмнопрстуфхцчшщыэюя",
        "我想在工作天的一是不了人我在有他这为之大来以个中上们",
        "कखगघचछजझटठडढणतथदधनपफबभमयरलवशषसह",
        ".,;:!?'\"()[]{}<>-_=+*/\\|@#$%^&~`",
        "🦙🚀😁✅🌫",
    ];
    let pools: Vec<Vec<char>> = POOL.iter().map(|p| p.chars().collect()).collect();
    let mut state: u64 = 0x2545_F491_4F6C_DD1D;
    let mut next = |n: usize| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state % n as u64) as usize
    };
    let mut out = String::new();
    while out.len() < 1 << 20 {
        let pool = &pools[[0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8][next(12)]];
        for _ in 0..1 + next(10) {
            out.push(pool[next(pool.len())]);
        }
        out.push_str([" ", " ", " ", " ", "  ", "\n", "\t", ""][next(8)]);
    }
    out
}

fn bench(c: &mut Criterion) {
    let Some(text) = mixed_text() else {
        eprintln!("not run: vocab suites missing (run python3 fixtures/fetch.py)");
        return;
    };
    let random = random_text();
    let vocabs = [
        ("qwen2", models_dir().join("ggml-vocab-qwen2.gguf")),
        ("gemma3", cache().join("models/gemma-3-270m-q4_k_m.gguf")),
        ("o200k_harmony", cache().join("tokenizers/o200k_base.tiktoken")),
        ("deepseek-v4", cache().join("tokenizers/deepseek-v4-tokenizer.json")),
    ];
    let mut g = c.benchmark_group("encode_1mb");
    g.sample_size(10);
    g.throughput(Throughput::Bytes(text.len() as u64));
    for (name, path) in vocabs {
        if !path.exists() {
            eprintln!("not run: {name}: {} missing (run python3 fixtures/fetch.py)", path.display());
            continue;
        }
        let t = match name {
            "o200k_harmony" => {
                Tokenizer::from_tiktoken(&std::fs::read(&path).unwrap(), TiktokenEncoding::O200kHarmony).unwrap()
            }
            "deepseek-v4" => Tokenizer::from_tokenizer_json(&std::fs::read(&path).unwrap()).unwrap(),
            _ => Tokenizer::from_gguf(&GgufFile::open(&path).unwrap()).unwrap(),
        };
        g.bench_function(format!("{name}/suite-text"), |b| {
            b.iter(|| t.encode(black_box(&text), false, false).unwrap())
        });
        g.bench_function(format!("{name}/random-words"), |b| {
            b.iter(|| t.encode(black_box(&random), false, false).unwrap())
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
