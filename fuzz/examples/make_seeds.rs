//! Writes the seed corpora (`corpus/<target>/`) and the data directory (`data/`) of the fuzz
//! targets from the fixtures: orcd-fixtures' valid and malformed GGUF files, one tensor of every
//! dequantizable type, llama.cpp's vocabulary files cut to their first tokens, tokenizer.json and
//! `.tiktoken` files cut likewise, llama.cpp's chat templates, and request bodies for every
//! server route. Run by `fuzz/make_seeds.sh`; nothing it writes is committed (the cache files are
//! megabytes; the corpora are regenerated).
//!
//! Usage: `make_seeds CACHE_DIR OUT_DIR` (CACHE_DIR: the fixture cache, `~/.cache/orcd`).

use std::path::{Path, PathBuf};

use orcd_fuzz::join_file_text;
use orcd_fuzz::targets::{server, tok_text};
use orcd_gguf::gguf::{GgmlType, GgufFile, GgufValue, GgufWriter};

/// Tokens kept of each vocabulary (enough for every byte and the first merges).
const KEEP: usize = 400;

fn write(dir: &Path, name: &str, bytes: &[u8]) {
    std::fs::create_dir_all(dir).expect("create corpus dir");
    std::fs::write(dir.join(name), bytes).expect("write seed");
}

fn models(cache: &Path) -> PathBuf {
    cache.join("llama_cpp_python-0.3.36/vendor/llama.cpp/models")
}

/// Test texts of a vocabulary (`.inp`: cases separated by `\n__ggml_vocab_test__\n`), short ones.
fn texts(models: &Path, vocab: &str) -> Vec<String> {
    let inp = std::fs::read_to_string(models.join(format!("{vocab}.inp"))).unwrap_or_default();
    let mut v: Vec<String> =
        inp.split("\n__ggml_vocab_test__\n").filter(|s| s.len() < 200).map(str::to_string).collect();
    v.truncate(12);
    if v.is_empty() {
        v.push("Hello world, it's 2025! 3333 🦙 \n\t ".into());
    }
    v
}

/// `f`'s metadata with the token arrays cut to `KEEP` entries and the merges to those within.
fn cut_vocab(f: &GgufFile) -> GgufWriter {
    let mut w = GgufWriter::new();
    let tokens: Vec<String> = f
        .get_array("tokenizer.ggml.tokens")
        .map(|a| a.iter().take(KEEP).filter_map(|v| v.as_str().map(str::to_string)).collect())
        .unwrap_or_default();
    let kept: std::collections::HashSet<&str> = tokens.iter().map(String::as_str).collect();
    for (k, v) in f.metadata() {
        let v = match (k.as_str(), v) {
            ("tokenizer.ggml.merges", GgufValue::Array(t, items)) => {
                let m: Vec<GgufValue> = items
                    .iter()
                    .filter(|m| {
                        m.as_str().is_some_and(|s| {
                            let mut p = s.splitn(2, ' ');
                            let (a, b) = (p.next().unwrap_or(""), p.next().unwrap_or(""));
                            kept.contains(a) && kept.contains(b) && kept.contains(format!("{a}{b}").as_str())
                        })
                    })
                    .take(KEEP)
                    .cloned()
                    .collect();
                GgufValue::Array(*t, m)
            }
            (k, GgufValue::Array(t, items)) if k.starts_with("tokenizer.ggml.") => {
                GgufValue::Array(*t, items.iter().take(KEEP).cloned().collect())
            }
            (k, GgufValue::U32(id)) if k.ends_with("_token_id") && *id as usize >= KEEP => GgufValue::U32(1),
            _ => v.clone(),
        };
        w.set(k, v);
    }
    w
}

/// A tokenizer.json cut to its first `KEEP` vocabulary entries and the merges within them.
fn cut_json(bytes: &[u8]) -> Option<Vec<u8>> {
    let mut j: serde_json::Value = serde_json::from_slice(bytes).ok()?;
    let model = j.get_mut("model")?;
    let vocab = model.get_mut("vocab")?.as_object_mut()?;
    let mut entries: Vec<(String, serde_json::Value)> = vocab.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    entries.sort_by_key(|(_, v)| v.as_u64().unwrap_or(u64::MAX));
    entries.truncate(KEEP);
    let kept: std::collections::HashSet<String> = entries.iter().map(|e| e.0.clone()).collect();
    *vocab = entries.into_iter().collect();
    if let Some(serde_json::Value::Array(merges)) = model.get_mut("merges") {
        let pair = |m: &serde_json::Value| -> Option<(String, String)> {
            match m {
                serde_json::Value::String(s) => {
                    let mut p = s.splitn(2, ' ');
                    Some((p.next()?.to_string(), p.next()?.to_string()))
                }
                serde_json::Value::Array(a) => {
                    Some((a.first()?.as_str()?.to_string(), a.get(1)?.as_str()?.to_string()))
                }
                _ => None,
            }
        };
        merges.retain(|m| {
            pair(m).is_some_and(|(a, b)| kept.contains(&a) && kept.contains(&b) && kept.contains(&format!("{a}{b}")))
        });
        merges.truncate(KEEP);
    }
    if let Some(serde_json::Value::Array(added)) = j.get_mut("added_tokens") {
        added.truncate(8);
    }
    serde_json::to_vec(&j).ok()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (cache, out) = match &args[..] {
        [_, c, o] => (PathBuf::from(c), PathBuf::from(o)),
        _ => panic!("usage: make_seeds CACHE_DIR OUT_DIR"),
    };
    let models = models(&cache);
    let corpus = out.join("corpus");
    let data = out.join("data");
    std::fs::create_dir_all(&data).expect("data dir");

    // Data: the real tokenizer files tok_text and server load.
    let mut files: Vec<&str> = tok_text::FILES.to_vec();
    files.push(server::VOCAB);
    for name in files {
        let src = [models.join(name), cache.join("tokenizers").join(name)].into_iter().find(|p| p.is_file());
        match src {
            Some(p) => {
                std::fs::copy(&p, data.join(name)).expect("copy data file");
            }
            None => eprintln!("missing {name} (python3 fixtures/fetch.py)"),
        }
    }

    // gguf_inspect: valid fixtures (two alignments) and the malformed corpus.
    let dir = corpus.join("gguf_inspect");
    write(&dir, "valid", &orcd_fixtures::valid::valid_fixture(1).to_bytes().0);
    write(&dir, "valid_aligned64", &orcd_fixtures::valid::valid_fixture_aligned(2, 64).to_bytes().0);
    for c in orcd_fixtures::malformed::corpus() {
        write(&dir, c.name, &c.bytes);
    }

    // dequant: one file with two blocks of every dequantizable type, and raw blocks per type.
    let dir = corpus.join("dequant");
    let mut w = GgufWriter::new();
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    for ty in GgmlType::all().filter(|&t| orcd_gguf::quant::can_dequantize(t)) {
        let n = 2 * ty.block_size() as u64;
        let values: Vec<f32> = (0..n).map(|i| ((i as f32) * 0.37).sin()).collect();
        let bytes = match orcd_gguf::quant::quantize(ty, &values) {
            Ok(b) => b,
            // K-quants have no quantizer here: random blocks with small (finite) scales.
            Err(_) => (0..2 * ty.type_size()).map(|i| if i % 8 == 0 { 0x10 } else { next() as u8 }).collect(),
        };
        let mut raw = vec![ty.id() as u8];
        raw.extend_from_slice(&bytes);
        write(&dir, &format!("raw_{}", ty.name()), &raw);
        w.add_tensor(&format!("t.{}", ty.name()), ty, &[ty.block_size() as u64, 2], bytes).expect("tensor");
    }
    write(&dir, "all_types.gguf", &w.to_bytes().0);

    // tok_gguf: every llama.cpp vocabulary, cut, with its test texts.
    let dir = corpus.join("tok_gguf");
    let mut vocabs: Vec<String> = std::fs::read_dir(&models)
        .map(|d| d.filter_map(|e| e.ok()?.file_name().into_string().ok()).filter(|n| n.ends_with(".gguf")).collect())
        .unwrap_or_default();
    vocabs.sort();
    for v in &vocabs {
        let Ok(f) = GgufFile::open(&models.join(v)) else { continue };
        let bytes = cut_vocab(&f).to_bytes().0;
        for (i, t) in texts(&models, v).iter().take(3).enumerate() {
            write(&dir, &format!("{v}.{i}"), &join_file_text(&bytes, t.as_bytes()));
        }
    }

    // tok_json: the cache's tokenizer.json files, cut.
    let dir = corpus.join("tok_json");
    let sample = texts(&models, "ggml-vocab-llama-bpe.gguf");
    for name in
        ["anthropic-0.30.0-tokenizer.json", "anthropic-0.30.0-variant-tokenizer.json", "deepseek-v4-tokenizer.json"]
    {
        let Ok(b) = std::fs::read(cache.join("tokenizers").join(name)) else { continue };
        let Some(cut) = cut_json(&b) else { continue };
        for (i, t) in sample.iter().take(3).enumerate() {
            write(&dir, &format!("{name}.{i}"), &join_file_text(&cut, t.as_bytes()));
        }
    }

    // tok_tiktoken: the head of o200k_base.tiktoken.
    let dir = corpus.join("tok_tiktoken");
    if let Ok(b) = std::fs::read(cache.join("tokenizers/o200k_base.tiktoken")) {
        let head: Vec<u8> = b.split_inclusive(|&c| c == b'\n').take(KEEP).flatten().copied().collect();
        write(&dir, "o200k_head.0", &join_file_text(&head, b"\0Hello world"));
        write(&dir, "o200k_head.1", &join_file_text(&head, b"\x01<|endoftext|> 12345"));
    }

    // tok_text: each loaded tokenizer with each vocabulary's test texts.
    let dir = corpus.join("tok_text");
    for (k, name) in tok_text::FILES.iter().enumerate() {
        let mut ts = texts(&models, name);
        if ts.len() <= 1 {
            ts = texts(&models, "ggml-vocab-llama-bpe.gguf");
        }
        for (i, t) in ts.iter().enumerate() {
            let mut s = vec![k as u8];
            s.extend_from_slice(t.as_bytes());
            write(&dir, &format!("{k}.{i}"), &s);
        }
    }

    // chat_template: llama.cpp's template collection, each with two flag bytes.
    let dir = corpus.join("chat_template");
    if let Ok(d) = std::fs::read_dir(models.join("templates")) {
        for e in d.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if !name.ends_with(".jinja") {
                continue;
            }
            let Ok(t) = std::fs::read(e.path()) else { continue };
            for flags in [1u8, 2] {
                let mut s = vec![flags];
                s.extend_from_slice(&t);
                write(&dir, &format!("{name}.{flags}"), &s);
            }
        }
    }

    // server: bodies for every route.
    let dir = corpus.join("server");
    let route = |m: &str, p: &str| server::ROUTES.iter().position(|r| r.0 == m && r.1 == p).expect("route") as u8;
    let bodies: &[(&str, &str, u8, &str)] = &[
        (
            "POST",
            "/execute",
            0,
            r#"{"job_id":"j1","prompt":"Hello","max_tokens":2,"temperature":0.7,"top_k":40,"top_p":0.9,"min_p":0.05,"repetition_penalty":1.1,"stop":["\n"],"seed":7}"#,
        ),
        ("POST", "/execute", 1, r#"{"prompt":"Hi"}"#),
        ("POST", "/cancel", 0, r#"{"job_id":"j1"}"#),
        ("GET", "/health", 0, ""),
        ("GET", "/metrics", 3, ""),
        ("GET", "/v1/models", 0, ""),
        (
            "POST",
            "/v1/completions",
            0,
            r#"{"model":"fuzz","prompt":"Once upon","max_tokens":3,"logprobs":2,"stop":"x","seed":1,"frequency_penalty":0.5,"presence_penalty":0.1}"#,
        ),
        (
            "POST",
            "/v1/completions",
            4,
            r#"{"prompt":[[1,2,3]],"stream":true,"stream_options":{"include_usage":true},"ignore_eos":true,"top_k":-1,"n":1,"echo":false}"#,
        ),
        (
            "POST",
            "/v1/chat/completions",
            0,
            r#"{"messages":[{"role":"system","content":"Be brief."},{"role":"user","content":[{"type":"text","text":"Hi"}]}],"max_completion_tokens":2,"logprobs":true,"top_logprobs":3}"#,
        ),
        (
            "POST",
            "/v1/chat/completions",
            0,
            r#"{"messages":[{"role":"user","content":"Hi"}],"stream":true,"temperature":0}"#,
        ),
        (
            "POST",
            "/tokenize",
            0,
            r#"{"prompt":"Hello <|im_start|>","add_special_tokens":false,"return_token_strs":true}"#,
        ),
        ("POST", "/tokenize", 0, r#"{"messages":[{"role":"user","content":"Hi"}]}"#),
        ("POST", "/detokenize", 0, r#"{"tokens":[9707,1879,0]}"#),
    ];
    for (i, (m, p, flags, body)) in bodies.iter().enumerate() {
        let mut s = vec![route(m, p), *flags];
        s.extend_from_slice(body.as_bytes());
        write(&dir, &format!("route{i}"), &s);
    }
    let mut raw = vec![0xff, 0];
    raw.extend_from_slice(b"PUT /v1/completions?x=1\n{}");
    write(&dir, "raw_method", &raw);
    eprintln!("seeds written under {}", corpus.display());
}
