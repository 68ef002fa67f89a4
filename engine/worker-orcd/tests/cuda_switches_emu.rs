//! The CUDA backend's speed switches of issue 13 change no value (docs/perf/GPU.md, thirteenth
//! block): on the emulated device (`ORCD_CUDA_EMU=1`: kernels/emu's host build of the kernels, no
//! GPU), `worker-orcd logits` of a tiny synthetic Q8_0 llama — 6 prompt rows (the batched
//! mat-vec, the per-row attention, a head wider than 16,384 columns on the codes), 1 row (the
//! fused one-row mat-vecs of a decode step) and 20 rows (the prefill GEMM, the tiled attention)
//! — are the same bytes with each switch on as with none, on both numerics. Needs a C++20 compiler (`$CXX`, default g++),
//! as every emulated check.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use orcd_fixtures::synthetic::{Arch, Size, Spec, SyntheticModel, Vocab, WeightType};

const BIN: &str = env!("CARGO_BIN_EXE_worker-orcd");

/// A tiny Q8_0 llama whose head (17,000 columns) is wider than the backend's 16,384, so the
/// fast head takes the activation's codes.
fn tiny_file() -> PathBuf {
    let spec = Spec {
        arch: Arch::from_name("llama").unwrap(),
        size: Size::from_name("tiny").unwrap(),
        ty: WeightType::from_name("q8_0").unwrap(),
        seed: 11,
    };
    let mut bytes = Vec::new();
    SyntheticModel::new(spec, &Vocab::toy(17_000).unwrap()).write_to(&mut bytes).unwrap();
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(format!("orcd-switches-{}.gguf", std::process::id()));
    std::fs::write(&p, bytes).unwrap();
    p
}

/// The logits files' bytes of `tokens` under `env`.
fn run(model: &Path, numerics: &str, tokens: &str, env: &[(&str, &str)]) -> Vec<u8> {
    let tag: String = env.iter().map(|(k, v)| format!("-{k}{v}")).collect();
    let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("switches-{numerics}-{}{tag}.npy", tokens.split(',').count()));
    let logits = Command::new(BIN)
        .args(["logits", "--model", model.to_str().unwrap(), "--tokens", tokens, "--backend", "cuda"])
        .args(["--numerics", numerics, "--out", out.to_str().unwrap()])
        .env("ORCD_CUDA_EMU", "1")
        .envs(env.iter().copied())
        .output()
        .expect("worker-orcd runs");
    assert!(logits.status.success(), "logits {tag}: {}", String::from_utf8_lossy(&logits.stderr));
    std::fs::read(&out).unwrap()
}

#[test]
fn every_speed_switch_gives_the_defaults_bytes_on_the_emulated_device() {
    let model = tiny_file();
    let switches: [(&str, &[(&str, &str)]); 21] = [
        // The grouped Q8_0 layout is the default: its switch now keeps the GGUF layout.
        ("gguf-layout", &[("ORCD_CUDA_Q8_GROUPED", "0")]),
        ("persist", &[("ORCD_CUDA_MVQ_PERSIST", "1")]),
        ("mmq64", &[("ORCD_CUDA_MMQ64", "1")]),
        // The fused q·k·v GEMM is the default: its switch keeps three launches.
        ("qkv-off", &[("ORCD_CUDA_MMQ_QKV", "0")]),
        ("qkv-bm64h", &[("ORCD_CUDA_MMQ64", "2")]),
        // The tensor-core batched mat-vec is the default past 16 rows: on at any batch, and off.
        ("mvt", &[("ORCD_CUDA_MVT", "1")]),
        ("mvt-off", &[("ORCD_CUDA_MVT", "0")]),
        ("mvt-narrow", &[("ORCD_CUDA_MVT", "1"), ("ORCD_CUDA_MVT_NARROW", "1")]),
        // Wide weights (the head) take the tensor-core form from 12 rows by default: off, and
        // every weight counted wide.
        ("mvt-wide-off", &[("ORCD_CUDA_MVT_WIDE", "0")]),
        ("mvt-wide-all", &[("ORCD_CUDA_MVT_WIDE", "1")]),
        // The prefill GEMM's code inlined and unrolled (its default is out of line since stop 44),
        // the tile attention's out of line (the 20-row prefill takes both).
        ("fat-gemm-slim-att", &[("ORCD_NVRTC_DEFINES", "MMQ_FAT+ATT_TILE_SLIM")]),
        // The prefill's GLU pair in one GEMM launch (mmqg_) is the default: two launches.
        ("mmq-pair-off", &[("ORCD_CUDA_MMQ_PAIR", "0")]),
        // The prefill's attention tiles the heaviest first.
        ("att-lpt", &[("ORCD_CUDA_ATT_LPT", "1")]),
        // The one-row attention on every row (no tile): its keys staged (the default), none of
        // them, and the first 3 (the rest read from the cache).
        ("att-stage", &[("ORCD_CUDA_ATT_TILE", "0")]),
        ("att-stage0", &[("ORCD_CUDA_ATT_STAGE", "0"), ("ORCD_CUDA_ATT_TILE", "0")]),
        ("att-stage3", &[("ORCD_CUDA_ATT_STAGE", "3"), ("ORCD_CUDA_ATT_TILE", "0")]),
        // Each backend's kernels from a module of its numerics alone.
        ("one-numerics", &[("ORCD_CUDA_ONE_NUMERICS", "1")]),
        // The activation's loads after the wait are all in flight at once by default: one a trip;
        // rows past 1,024 on the 2-column one-row kernel.
        ("x-serial", &[("ORCD_NVRTC_DEFINES", "X_SERIAL"), ("ORCD_CUDA_MV_LONG_K", "1024")]),
        // The one-row attention's query loaded with pos, its keys' and values' staging one loop.
        ("att-ahead", &[("ORCD_NVRTC_DEFINES", "ATT_AHEAD"), ("ORCD_CUDA_ATT_TILE", "0")]),
        // A launch of at most a block an SM staging in a block's whole shared memory.
        ("att-stage-wide", &[("ORCD_CUDA_ATT_STAGE_WIDE", "1"), ("ORCD_CUDA_ATT_TILE", "0")]),
        (
            "all",
            &[
                ("ORCD_CUDA_Q8_GROUPED", "1"),
                ("ORCD_CUDA_MVQ_PERSIST", "1"),
                ("ORCD_CUDA_PDL_MORE", "quant_x_q8"),
                ("ORCD_CUDA_MMQ64", "1"),
                ("ORCD_CUDA_MMQ_QKV", "1"),
                ("ORCD_CUDA_MVT", "1"),
            ],
        ),
    ];
    for numerics in ["fast", "exact"] {
        // 20 rows: the prefill GEMM (16+ rows of one sequence) and the tiled attention too.
        // 13 rows: the mat-vec's wide-weight rule (12+ rows; 16+ take the GEMM).
        for tokens in [
            "3,14,15,92,65,35",
            "3",
            "3,14,15,92,65,35,89,79,32,38,46,26,43",
            "3,14,15,92,65,35,89,79,32,38,46,26,43,38,32,79,50,28,84,19",
        ] {
            let n = tokens.split(',').count();
            let base = run(&model, numerics, tokens, &[]);
            assert!(base.len() > n * 17_000 * 4, "{numerics}: a logits file of {} bytes", base.len());
            for (tag, env) in switches {
                let got = run(&model, numerics, tokens, env);
                assert!(got == base, "{numerics}, {n} rows, {tag}: the logits differ from the default's");
            }
        }
    }
}
