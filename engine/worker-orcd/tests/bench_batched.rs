//! Batched decode measurement (issue 13 item 5): `orcd_engine::bench::batched` gives every
//! sequence the greedy ids it gets decoded alone (one sequence per forward, logits to the host,
//! argmax here), on both CPU columns, with a tiny synthetic llama (toy vocabulary: no fetched
//! file needed); and `worker-orcd bench --batch` validates its list (typed error, exit 2, one
//! line) and adds a `"batched"` entry per count to `--json` (nothing without the flag).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::process::Command;

use orcd_backends::Column;
use orcd_engine::bench::{batched, batched_n_ctx, seq_prompt};
use orcd_engine::model::{AnyModel, LoadOpts};
use orcd_engine::ops::NoTaps;
use orcd_fixtures::synthetic::{Arch, Size, Spec, SyntheticModel, Vocab, WeightType};
use orcd_gguf::gguf::GgufFile;

const BIN: &str = env!("CARGO_BIN_EXE_worker-orcd");
const N_VOCAB: usize = 300;

fn toy_vocab(n: usize) -> Vocab {
    Vocab::toy(n).unwrap()
}

/// A tiny Q8_0 llama (2 layers, n_embd 64) as GGUF bytes.
fn tiny_bytes() -> Vec<u8> {
    let spec = Spec {
        arch: Arch::from_name("llama").unwrap(),
        size: Size::from_name("tiny").unwrap(),
        ty: WeightType::from_name("q8_0").unwrap(),
        seed: 7,
    };
    let mut out = Vec::new();
    SyntheticModel::new(spec, &toy_vocab(N_VOCAB)).write_to(&mut out).unwrap();
    out
}

/// The tiny model as a file of this process (for the CLI).
fn tiny_file(tag: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(format!("orcd-bench-batched-{tag}-{}.gguf", std::process::id()));
    std::fs::write(&p, tiny_bytes()).unwrap();
    p
}

fn load(f: &GgufFile, col: Column, n_seq: usize, n_ctx: usize) -> Box<dyn AnyModel> {
    col.load(f, &LoadOpts { n_ctx: Some(n_ctx), n_seq: Some(n_seq), ..LoadOpts::default() }).unwrap()
}

/// The first index of the largest value (llama.cpp's greedy choice).
fn host_argmax(row: &[f32]) -> u32 {
    let mut best = 0;
    for (i, &v) in row.iter().enumerate() {
        if v > row[best] {
            best = i;
        }
    }
    best as u32
}

/// Sequence `s` decoded alone on a one-sequence model: its prompt in one forward, then one token
/// per forward, each next id the host argmax of the last logits row.
fn alone(f: &GgufFile, col: Column, s: usize, prompt_tokens: usize, gen_tokens: usize) -> Vec<u32> {
    let mut m = load(f, col, 1, prompt_tokens + s + gen_tokens + 1);
    let p = seq_prompt(N_VOCAB, prompt_tokens + s, s);
    let mut ids = vec![host_argmax(&m.forward_last(&p, &mut NoTaps).unwrap())];
    for _ in 0..gen_tokens {
        let next = *ids.last().unwrap();
        ids.push(host_argmax(&m.forward_last(&[next], &mut NoTaps).unwrap()));
    }
    ids
}

#[test]
fn batched_gives_every_sequence_its_ids_decoded_alone() {
    let f = GgufFile::from_bytes(tiny_bytes()).unwrap();
    let (b, pt, gt) = (4, 5, 6);
    for col in [Column::CPU_EXACT, Column::CPU_FAST] {
        let mut m = load(&f, col, b, batched_n_ctx(b, pt, gt));
        let want: Vec<Vec<u32>> = (0..b).map(|s| alone(&f, col, s, pt, gt)).collect();
        // The sequences differ, so a mix-up of rows would show.
        assert!(want.iter().any(|w| w != &want[0]), "{col}: every sequence decoded the same ids: {want:?}");
        // Twice on the same model: the reset between runs leaves nothing behind.
        for run in 0..2 {
            let got = batched(m.as_mut(), b, pt, gt).unwrap();
            assert_eq!(got.ids, want, "{col} run {run}");
            assert_eq!(got.prefill_tokens, b * pt + b * (b - 1) / 2);
            for s in 0..b {
                assert_eq!(m.n_past_of(s), pt + s + gt, "{col}: sequence {s}'s cached length");
            }
        }
        // A smaller batch on the same (4-sequence) model: the first sequences, same ids.
        let two = batched(m.as_mut(), 2, pt, gt).unwrap();
        assert_eq!(two.ids, want[..2].to_vec(), "{col}: batch of 2");
    }
}

#[test]
fn batched_refuses_what_the_model_cannot_hold() {
    let f = GgufFile::from_bytes(tiny_bytes()).unwrap();
    let mut m = load(&f, Column::CPU_FAST, 2, batched_n_ctx(2, 4, 3));
    assert!(batched(m.as_mut(), 3, 4, 3).is_err(), "3 sequences on a 2-sequence cache");
    assert!(batched(m.as_mut(), 0, 4, 3).is_err(), "no sequence");
    assert!(batched(m.as_mut(), 2, 4, 4).is_err(), "one position past the context");
    assert!(batched(m.as_mut(), 2, 0, 3).is_err(), "an empty prompt");
    assert!(batched(m.as_mut(), 2, 4, 3).is_ok());
}

fn run(args: &[&str]) -> std::process::Output {
    Command::new(BIN).arg("bench").args(args).output().expect("runs")
}

#[test]
fn bad_batch_lists_are_one_line_errors_with_exit_2() {
    // The list is checked before the model is opened: the error names --batch, not the file.
    for bad in ["0", "1,,4", "257", "4,x", "", "-3"] {
        let arg = format!("--batch={bad}");
        let out = run(&["--model", "/nonexistent/model.gguf", &arg]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{bad:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{bad:?}: {err}");
        assert!(err.starts_with("error: --batch"), "{bad:?}: {err}");
    }
    let m = tiny_file("ctx");
    let out = run(&[
        "--model",
        m.to_str().unwrap(),
        "--backend",
        "cpu",
        "--prompt-tokens",
        "8",
        "--gen-tokens",
        "4",
        "--batch",
        "1,16",
        "--ctx",
        "20",
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.starts_with("error: --ctx 20 is smaller than") && err.contains("= 27"), "{err}");
    let _ = std::fs::remove_file(m);
}

#[test]
fn json_adds_one_batched_entry_per_count_and_nothing_without_the_flag() {
    let m = tiny_file("json");
    let common = [
        "--model",
        m.to_str().unwrap(),
        "--backend",
        "cpu",
        "--prompt-tokens",
        "6",
        "--gen-tokens",
        "3",
        "--repeats",
        "1",
        "--json",
    ];
    let parse = |out: std::process::Output| -> serde_json::Value {
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let text = String::from_utf8(out.stdout).unwrap();
        assert_eq!(text.lines().count(), 1, "{text}");
        serde_json::from_str(&text).unwrap()
    };
    let plain = parse(run(&common));
    assert!(plain.get("batched").is_none(), "{plain}");
    let mut args = common.to_vec();
    args.extend(["--batch", "1,3"]);
    let o = parse(run(&args));
    for k in
        ["backend", "numerics", "model", "prompt_tokens", "gen_tokens", "prefill_tok_s", "decode_tok_s", "kv_bytes"]
    {
        assert!(o.get(k).is_some(), "{k} missing: {o}");
    }
    let rows = o["batched"].as_array().unwrap();
    assert_eq!(rows.iter().map(|r| r["batch"].as_u64().unwrap()).collect::<Vec<_>>(), [1, 3]);
    for r in rows {
        assert_eq!((r["prompt_tokens"].as_u64(), r["gen_tokens"].as_u64()), (Some(6), Some(3)), "{r}");
        let (tg, step, pp) =
            (r["decode_tok_s"].as_f64().unwrap(), r["step_ms"].as_f64().unwrap(), r["prefill_tok_s"].as_f64().unwrap());
        assert!(tg > 0.0 && step > 0.0 && pp > 0.0, "{r}");
        // One repeat: aggregate tok/s = batch sequences per step time.
        let b = r["batch"].as_f64().unwrap();
        assert!((tg - 1000.0 * b / step).abs() <= 1e-6 * tg, "{r}");
    }
    let _ = std::fs::remove_file(m);
}
