//! The CUDA backend whole — host code and kernels — on the emulated device (`ORCD_CUDA_EMU=1`:
//! kernels/emu's host build of ops.cu, no GPU), through `orcd-gate` and suite `ops` against the
//! CPU backend: the prefill GEMM's cases (`ORCD_CUDA_MMQ=1`: quant_x_q8 + mmq_*, the row map of a
//! mixed batch, the fused ops at 24-40 rows). A wiring error of the backend (an argument out of
//! place, a wrong launch shape) fails these here, before any card sees it. Needs a C++20 compiler
//! (`$CXX`, default g++) on x86-64; the library is cached with the cubins.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::process::Command;

const GATE: &str = env!("CARGO_BIN_EXE_orcd-gate");

fn emulated_ops(filter: &str) -> (String, String) {
    emulated_ops_with(filter, "1")
}

/// `filter`'s `ops` cases on the emulated `cuda-fast` and `cuda` columns with `ORCD_CUDA_MMQ=mmq`.
fn emulated_ops_with(filter: &str, mmq: &str) -> (String, String) {
    emulated_ops_env(filter, mmq != "1", &[("ORCD_CUDA_MMQ", mmq)])
}

/// `filter`'s `ops` cases on the emulated `cuda-fast` column (and `cuda` with `exact`) under `env`.
fn emulated_ops_env(filter: &str, exact: bool, env: &[(&str, &str)]) -> (String, String) {
    let tag: String = env.iter().map(|(k, v)| format!("-{}{v}", k.trim_start_matches("ORCD_CUDA_"))).collect();
    let out =
        std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("cuda-emu-{}{tag}", filter.replace('+', "_")));
    let run = Command::new(GATE)
        .args(["run", "--suite", "ops", "--backend", "cuda-fast", "--filter", filter])
        .args(if exact { &["--backend", "cuda"][..] } else { &[][..] })
        .arg("--out")
        .arg(&out)
        .env("ORCD_CUDA_EMU", "1")
        .envs(env.iter().copied())
        .output()
        .expect("orcd-gate runs");
    let log = String::from_utf8_lossy(&run.stdout).into_owned() + &String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "orcd-gate --filter {filter} on the emulated device:\n{log}");
    let md = std::fs::read_to_string(out.join("report.md")).expect("report.md");
    (log, md)
}

#[test]
fn the_prefill_gemm_passes_ops_on_the_emulated_device() {
    for (filter, cases) in [
        ("m1536-k576-n64", 5),                // one whole 64-row tile: Q4_0, Q4_1, Q5_0, Q5_1, Q8_0
        ("k640-n70", 5),                      // two token tiles, a partial column tile
        ("q8_0-m1536-k512-n40-bias-res", 1),  // matmul_fused: bias and residual in the epilogue
        ("silu-q8_0-m1536-k512-n24", 1),      // matmul_glu: the gate's launch, then the up's
        ("silu-q5_0-m1536-k512-n24", 1),      // the same for gemma-3's Q5_0 gate / up
        ("q4_1-m1536-k512-n33", 1),           // norm_matmul_glu: the norm in quant_x_q8, Q4_1's min
        ("q8_0-m256+64+64-k512-n24-bias", 1), // norm_matmuls: three projections of one rounding
    ] {
        let (log, md) = emulated_ops(filter);
        assert!(log.contains(&format!("{cases} passed, 0 failed, 0 not run")), "{filter}:\n{log}");
        // The report says where these ran, and keeps them out of the gates.
        assert!(md.contains("ran on the emulated CUDA device"), "{filter}: the report does not say so:\n{md}");
    }
}

/// The fast numerics' k-quant prefill GEMM (`ORCD_CUDA_MMQ_K=1`: `quant_x_q8k`'s Q8_K codes,
/// `mmq_q4_k`, `mmqg_q4_k`, `mmqm32_q4_k`, …, and Q6_K's with its 16-element halves) on every
/// Q4_K and Q6_K `ops` case of the fast column against the CPU backend: the cases of a sequence
/// of 16+ rows take it (one projection with 17 rows, bias and residual, a GLU pair (Q4_K), the
/// norm fused with a pair, q·k·v in one launch).
#[test]
fn the_k_quant_gemm_passes_ops_on_the_emulated_device() {
    for (filter, cases) in [("q4_k", 47), ("q6_k", 35)] {
        let (log, _) = emulated_ops_env(filter, false, &[("ORCD_CUDA_MMQ_K", "1")]);
        assert!(log.contains(&format!("{cases} passed, 0 failed, 0 not run")), "{filter}:\n{log}");
    }
}

/// Every metric of `filter`'s `ops` cases (report.json of an `emulated_ops_env` run under `env`),
/// by case id.
fn case_metrics(filter: &str, env: &[(&str, &str)]) -> Vec<(String, String)> {
    let (log, _) = emulated_ops_env(filter, true, env);
    assert!(log.contains(", 0 failed, 0 not run"), "{filter} {env:?}:\n{log}");
    let tag: String = env.iter().map(|(k, v)| format!("-{}{v}", k.trim_start_matches("ORCD_CUDA_"))).collect();
    let out =
        std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("cuda-emu-{}{tag}", filter.replace('+', "_")));
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).expect("report.json")).expect("json");
    let mut cases: Vec<(String, String)> = report["cases"]
        .as_array()
        .expect("cases")
        .iter()
        .map(|c| (c["id"].to_string(), c["metrics"].to_string()))
        .collect();
    cases.sort();
    cases
}

/// gemma-3's fused norms give their compositions' bits: `rms_norm_mul_add` (the rms_norm kernel
/// with its residual) and `norm_rope_qk_kv_write` (the rope kernel with its head norms at 256
/// threads and q's pre-scale) against `ORCD_CUDA_FUSE_NORMS=0` (rms_norm_mul + add; rms_norm_mul
/// of each head, rope_qk_kv_write, scale), and `matmul_norm_add` under `ORCD_CUDA_FUSE_POSTNORM=1`
/// (a one-row mat-vec whose last block normalizes the row) against its composition (the mat-vec,
/// then rms_norm_mul_add; off by default): every case's metrics on both columns — NMSE against
/// the CPU to all 17 digits — the same. (A doubled eps in the last block's norm, which NMSE
/// passes, changes 30 of matmul_norm_add's 50.) Likewise a batched decode's attention rounding
/// its output to the o projection's codes (the default) against `quant_x_q8` doing it
/// (`ORCD_CUDA_ATT_CODES=0`; a doubled scale in the attention's fails the 3 fast `attention-oproj`
/// cases outright). And q, k and v of two types in one launch (`matvec8x_`,
/// `ORCD_CUDA_MV_MIXED=1`) against a launch a type; gemma-3's attention input side in one launch
/// (`matvec8h_`, `ORCD_CUDA_FUSE_QKV_NORM=1`: the projections, then the last block's head norms,
/// RoPE, KV store and pre-scale) against norm_matmuls + norm_rope_qk_kv_write (a doubled eps in
/// the last block's head norms, which NMSE passes, changes all 12 of its fused cases). And a
/// batched GLU rounding its output to the down projection's codes (`ORCD_CUDA_GLU_CODES=1`:
/// each 32-column group's last block) against `quant_x_q8` doing it (a doubled scale in the
/// group's codes fails all 6 fast `norm_matmul_glu-down` cases). And a decode batch's q, k, v
/// with RoPE and the KV store in the batched mat-vec's launch (`matvecqr_` / `matvecfr_`, the
/// default) against `matvecq_` / `matvecf_` then `rope_qk_kv_write` (`ORCD_CUDA_BATCH_ROPE=0`; a rotated
/// q's partner written with the pair's first value fails all 16 batched cases). And every RoPE
/// case (152 a run) with a decode row's `matvec8r_` and the `rope` kernel reading their pairs'
/// sin and cos from the forward's `rope_table` (`ORCD_CUDA_ROPE_TAB=1`) against computing them
/// themselves (`matvec8r_` reading a pair's neighbour's entry fails its 16 one-row cases; the
/// `rope` kernel reading it, 120 of the 152). And gemma-3's attention post-norm and residual
/// add folded into the FFN's one-row GLU launch (`matvec8gp_`) and the FFN's into the next
/// layer's q·k·v (`matvec8p_`; both `ORCD_CUDA_FOLD_POSTNORM=1`)
/// against `rms_norm_mul_add` then `norm_matmul_glu` (`=0`).
#[test]
fn the_fused_norms_give_their_compositions_bits_on_the_emulated_device() {
    for (filter, fused_env, composed_env) in [
        ("rms_norm_mul_add", None, Some(("ORCD_CUDA_FUSE_NORMS", "0"))),
        ("norm_rope_qk_kv_write", None, Some(("ORCD_CUDA_FUSE_NORMS", "0"))),
        ("matmul_norm_add", Some(("ORCD_CUDA_FUSE_POSTNORM", "1")), None),
        ("attention-oproj", None, Some(("ORCD_CUDA_ATT_CODES", "0"))),
        ("+q", Some(("ORCD_CUDA_MV_MIXED", "1")), None),
        ("norm_qkv_norm", Some(("ORCD_CUDA_FUSE_QKV_NORM", "1")), None),
        ("glu-down", Some(("ORCD_CUDA_GLU_CODES", "1")), None),
        ("norm_qkv_rope_kv_write", None, Some(("ORCD_CUDA_BATCH_ROPE", "0"))),
        ("rope", Some(("ORCD_CUDA_ROPE_TAB", "1")), None),
        ("norm_add_norm", Some(("ORCD_CUDA_FOLD_POSTNORM", "1")), Some(("ORCD_CUDA_FOLD_POSTNORM", "0"))),
    ] {
        let fused = case_metrics(filter, fused_env.as_slice());
        let composed = case_metrics(filter, composed_env.as_slice());
        assert!(fused.len() >= 6, "{filter}: {} cases", fused.len());
        assert_eq!(fused, composed, "{filter}: the fused launch's values differ from the composition's");
    }
}

/// Each backend launching from a module of its numerics alone (`ORCD_CUDA_ONE_NUMERICS=1`: ops.cu
/// compiled with `MV_ONLY_FAST` for `cuda-fast`, `MV_ONLY_EXACT` for `cuda`, the one-row
/// mat-vecs' other rounding compiled out) gives the shared module's values: every metric of the
/// projections with bias and residual (one row and several, each weight type: the k-quants keep
/// their runtime choice in the fast module), the one-row GLU pairs, q·k·v of one norm and of two
/// types, and the folded post-norm, on both columns. (The fast module's 32-element types taking
/// Q8_K's rounding instead of the codes fails the fast `matmul_fused` cases of those types.)
#[test]
fn a_module_of_one_numerics_gives_the_shared_modules_values_on_the_emulated_device() {
    for filter in ["matmul_fused", "matmul_glu-silu", "norm_add_norm", "+q"] {
        let one = case_metrics(filter, &[("ORCD_CUDA_ONE_NUMERICS", "1")]);
        let shared = case_metrics(filter, &[("ORCD_CUDA_ONE_NUMERICS", "0")]);
        assert!(one.len() >= 6, "{filter}: {} cases", one.len());
        assert_eq!(one, shared, "{filter}: the one-numerics module's values differ from the shared module's");
    }
}

/// The activation's loads after the wait all in flight at once (the default since stop 55: the
/// norm's strides loaded before its sums, a long row's U iterations' parts before their products,
/// the one-row attention's staging eight loads ahead) give the values of the loads one a trip
/// (`ORCD_NVRTC_DEFINES=X_SERIAL`), and rows past 1,024 on the 2-column kernel
/// (`ORCD_CUDA_MV_LONG_K=1024`) those of the default's choice: every metric of the norm-fused
/// projections (q·k·v of one norm, rows of 576–1,024), the 4,864- and 2,048-wide one-row rows
/// (`matvec2l_`, six iterations' parts; `matvec8_` / `matvec2l_`), the `rms_norm` cases and the
/// folded post-norms, on both columns; and the one-row attention (`ORCD_CUDA_ATT_TILE=0`: every
/// row through it, 300 and 512 keys). (A shifted activation part planted in the second
/// iteration's loads ahead fails 22 of the 52 `k4864-n1` runs.)
#[test]
fn the_activations_loads_ahead_give_the_serial_loads_values_on_the_emulated_device() {
    let serial_env = [("ORCD_NVRTC_DEFINES", "X_SERIAL"), ("ORCD_CUDA_MV_LONG_K", "1024")];
    for (filter, extra) in [
        ("norm_matmuls", None),
        ("k4864-n1", None),
        ("k2048-n1", None),
        ("rms_norm", None),
        ("norm_add_norm", None),
        ("kv300", Some(("ORCD_CUDA_ATT_TILE", "0"))),
        ("kv512-n512", Some(("ORCD_CUDA_ATT_TILE", "0"))),
    ] {
        let serial = case_metrics(filter, &[&serial_env[..], extra.as_slice()].concat());
        let default = case_metrics(filter, extra.as_slice());
        assert!(default.len() >= 2, "{filter}: {} cases", default.len());
        assert_eq!(serial, default, "{filter}: X_SERIAL / MV_LONG_K changed a value");
    }
}

/// The one-row attention with its query's loads beside pos's and its keys' and values' staging
/// in one loop (`ORCD_NVRTC_DEFINES=ATT_AHEAD`), and staging up to a block's whole shared memory
/// when a launch has at most a block an SM (`ORCD_CUDA_ATT_STAGE_WIDE=1`) — both off until a card
/// times them — give the default's values: every metric of all 54 `attention-gqa` runs with
/// `ORCD_CUDA_ATT_TILE=0` (every row through it): heads of 48 (the two-call staging), 64, 128
/// and 256, values of 32 beside keys of 64, 5 to 512 keys, one decode row at 300 keys (past the
/// default's staging; staged wide, all 300 keys of a 64-wide head, ~210 / ~105 of a 256-wide one
/// on `cuda-fast` / `cuda`), windows, sinks, softcaps, both columns. (A value chunk stored in its
/// neighbour's place in the one loop fails 35 of the first 50; key 280's row left unstaged fails
/// the 64-wide decode row's two runs under the wide staging alone.)
#[test]
fn the_attentions_loads_ahead_give_the_defaults_values_on_the_emulated_device() {
    let filter = "attention-gqa";
    let tile0 = ("ORCD_CUDA_ATT_TILE", "0");
    let default = case_metrics(filter, &[tile0]);
    assert!(default.len() >= 54, "{filter}: {} cases", default.len());
    let ahead = case_metrics(filter, &[("ORCD_NVRTC_DEFINES", "ATT_AHEAD"), tile0]);
    assert_eq!(ahead, default, "{filter}: ATT_AHEAD changed a value");
    let wide = case_metrics(filter, &[("ORCD_CUDA_ATT_STAGE_WIDE", "1"), tile0]);
    assert_eq!(wide, default, "{filter}: ORCD_CUDA_ATT_STAGE_WIDE changed a value");
}

/// gemma-3's attention input side in one launch (`matvec8h_`, `ORCD_CUDA_FUSE_QKV_NORM=1`) with
/// its last block reading the pairs' angles from the forward's `rope_table`
/// (`ORCD_CUDA_ROPE_TAB=1`) gives the values it computes itself: all 20 cases' metrics equal.
/// (Reading a pair's neighbour's entry changes the 12 fused cases.)
#[test]
fn the_rope_table_gives_the_fused_head_norms_their_values_on_the_emulated_device() {
    let filter = "norm_qkv_norm";
    let own = case_metrics(filter, &[("ORCD_CUDA_FUSE_QKV_NORM", "1")]);
    let tab = case_metrics(filter, &[("ORCD_CUDA_FUSE_QKV_NORM", "1"), ("ORCD_CUDA_ROPE_TAB", "1")]);
    assert!(own.len() >= 20, "{filter}: {} cases", own.len());
    assert_eq!(tab, own, "{filter}: the table's angles changed a value");
}

/// The batched tensor-core mat-vec with several row tiles a block (`ORCD_CUDA_MVT_ROWS=n`: a
/// column group's weight fragments loaded once for n tiles of 16 rows; 2 the default) gives a tile a block's
/// values: 24–40 rows (two and three tiles, a partial last one) of a projection with its bias and
/// residual, a GLU pair with the norm, and three projections of one norm, both columns, the GEMM
/// off so the rows take the mat-vec — every metric equal at 2 and 4 tiles a block. (Each block
/// reading its first tile's rows for all of its tiles fails every multi-tile case.)
#[test]
fn several_row_tiles_a_block_give_a_tile_a_blocks_values_on_the_emulated_device() {
    for filter in [
        "matmul_fused-q8_0-m1536-k512-n40",
        "norm_matmul_glu-silu-q8_0-m1536-k512-n33",
        "norm_matmuls-q8_0-m256+64+64-k512-n24",
    ] {
        let one = case_metrics(filter, &[("ORCD_CUDA_MMQ", "0"), ("ORCD_CUDA_MVT_ROWS", "1")]);
        assert!(one.len() == 2, "{filter}: {one:?}");
        for n in ["2", "4"] {
            let wide = case_metrics(filter, &[("ORCD_CUDA_MMQ", "0"), ("ORCD_CUDA_MVT_ROWS", n)]);
            assert_eq!(wide, one, "{filter}: {n} row tiles a block changed a value");
        }
    }
}

/// The mat-vec of 3–15 rows from an activation rounded once (`quant_x_q8` + `matvecq_` /
/// `matvecqg_` on `cuda-fast`, `round_x` + `matvecf_` / `matvecfg_` on `cuda`; the GEMM off so
/// every row takes it), against the CPU backend: a partial column group (m 33), the residual,
/// a GLU pair, three projections with biases, the norm fused, a head-wide output of one row and
/// of five.
#[test]
fn the_batched_mat_vec_passes_ops_on_the_emulated_device() {
    for (filter, cases) in [
        ("matmul-q8_0-m33-k640-n3", 2), // 33 = 8·4 + 1 columns: a partial column group
        ("matmul-q4_0-m33-k640-n3", 2),
        ("matmul-q4_1-m33-k640-n3", 2),
        ("matmul_fused-q8_0-m1536-k512-n9", 2),         // the residual
        ("norm_matmul_glu-silu-q4_1-m1536-k512-n9", 2), // the norm and a GLU pair, Q4_1's min
        ("norm_matmuls-q8_0-m256+64+64-k512-n3", 2),    // q, k, v with biases in one launch
        // Wider than MV_ROUND_ONCE_M (the head): cuda-fast takes the codes at one row too.
        ("norm_matmuls-q8_0-m16448-k256-n1", 2),
        ("norm_matmuls-q8_0-m16448-k256-n5", 2),
    ] {
        let (log, md) = emulated_ops_with(filter, "0");
        assert!(log.contains(&format!("{cases} passed, 0 failed, 0 not run")), "{filter}:\n{log}");
        assert!(md.contains("ran on the emulated CUDA device"), "{filter}: the report does not say so:\n{md}");
    }
}

/// The prefill attention (`attention_tile`, a block per 16 query rows; `ORCD_CUDA_ATT_TILE=2`
/// sends every batch of two or more rows to it) on every `ops` attention case — GQA, windows,
/// softcap, sinks, several sequences, the fused RoPE + KV write cases' causal attention — on
/// both columns, against the CPU backend, in the grid's order (`ORCD_CUDA_ATT_LPT=0`) and with
/// the fast column's tensor-core form off (`ORCD_CUDA_ATT_MMA=0`), so every case takes the tile.
/// (Its bits against `attention`'s: kernels/emu/attn_check.)
#[test]
fn the_tiled_attention_passes_ops_on_the_emulated_device() {
    let (log, md) = emulated_ops_env(
        "attention",
        true,
        &[("ORCD_CUDA_ATT_TILE", "2"), ("ORCD_CUDA_ATT_LPT", "0"), ("ORCD_CUDA_ATT_MMA", "0")],
    );
    // 30 attention cases (with the fused RoPE + KV write ones and the attention → o chains) on
    // each column.
    assert!(log.contains("60 passed, 0 failed, 0 not run"), "{log}");
    assert!(md.contains("ran on the emulated CUDA device"), "the report does not say so:\n{md}");
}

/// The same with the tiles the heaviest first (the default: `attention_tile_lpt`, the grid's
/// dimensions swapped) — the 512-row case among them, whose tiles need the shared-memory opt-in
/// the emulated device checks as the driver does; the tensor-core form off so the fast column
/// takes the tile too.
#[test]
fn the_longest_first_tiled_attention_passes_ops_on_the_emulated_device() {
    let (log, _) = emulated_ops_env("attention", true, &[("ORCD_CUDA_ATT_TILE", "2"), ("ORCD_CUDA_ATT_MMA", "0")]);
    assert!(log.contains("60 passed, 0 failed, 0 not run"), "{log}");
}

/// The fast numerics' tensor-core prefill attention (the default; `ORCD_CUDA_ATT_MMA=2` its
/// 2-warp blocks: `attention_mma`,
/// `attention`'s two passes and F16 weights with q·k and w·v in f16 mma, f32 sums) on every `ops`
/// attention case of the fast column against the CPU backend, at suite `ops`'s attention
/// threshold (test-backend-ops's NMSE 5e-4): the one-sequence batches of an F16 cache with heads
/// of 64, 128 or 256 (two blocks a head; the default since stop 48, `ORCD_CUDA_ATT_MMA256=0` the tile) take it (`ORCD_CUDA_ATT_TILE=2`: from two rows), the others the tile or the row.
/// Blocks of 4 warps (`=1`, the default) and of 2 (`=2`).
#[test]
fn the_tensor_core_attention_passes_ops_on_the_emulated_device() {
    for mode in ["1", "2"] {
        let (log, _) = emulated_ops_env(
            "attention",
            false,
            &[("ORCD_CUDA_ATT_TILE", "2"), ("ORCD_CUDA_ATT_MMA", mode), ("ORCD_CUDA_ATT_MMA256", "1")],
        );
        assert!(log.contains("30 passed, 0 failed, 0 not run"), "ORCD_CUDA_ATT_MMA={mode}:\n{log}");
    }
}

/// The fast numerics' attention split over the keys (`ORCD_CUDA_ATT_SPLIT`: `attention_split` +
/// `attention_combine`, f32, for every row) on every `ops` attention case against the CPU
/// backend: 4 splits, and 64 (most of them empty at these lengths).
#[test]
fn the_split_attention_passes_ops_on_the_emulated_device() {
    for split in ["4", "64"] {
        let (log, _) = emulated_ops_env("attention", false, &[("ORCD_CUDA_ATT_SPLIT", split)]);
        assert!(log.contains("30 passed, 0 failed, 0 not run"), "ORCD_CUDA_ATT_SPLIT={split}:\n{log}");
    }
}

/// The passed count of a run with no failures and nothing left out (`orcd-gate`'s summary line).
fn all_passed(log: &str) -> usize {
    let line = log.lines().find(|l| l.starts_with("orcd-gate:") && l.contains(" passed, ")).unwrap_or("");
    assert!(line.contains(", 0 failed, 0 not run"), "{log}");
    line.trim_start_matches("orcd-gate: ").split(' ').next().and_then(|n| n.parse().ok()).unwrap_or(0)
}

/// Q8_0 weights in their GGUF layout on the device (`ORCD_CUDA_Q8_GROUPED=0`; the default regroups
/// each row by four blocks and builds the kernels with `Q8_GROUPED`), on every Q8_0 `ops` case of
/// both columns: the single-row mat-vecs (1, 2, 8 columns a block, the GLU pair, q·k·v with RoPE
/// and the KV write), the batched ones, the head's, the GEMM (`ORCD_CUDA_MMQ` on), expert ids and
/// `get_rows`. (The kernels' bits against formulas from the GGUF bytes, both layouts:
/// kernels/tests/emu.rs.)
#[test]
fn the_gguf_q8_0_layout_passes_ops_on_the_emulated_device() {
    let (log, md) = emulated_ops_env("q8_0", true, &[("ORCD_CUDA_Q8_GROUPED", "0")]);
    assert!(all_passed(&log) >= 80, "fewer Q8_0 cases than expected:\n{log}");
    assert!(md.contains("ran on the emulated CUDA device"), "the report does not say so:\n{md}");
}

/// The batched codes mat-vec on a persistent grid (`ORCD_CUDA_MVQ_PERSIST=1`: `matvecqp_` /
/// `matvecqpg_` on one block an SM of the emulated 132, each taking flat blocks in turn; the
/// GEMM off so every row takes the mat-vec) against the CPU backend: wide outputs (1,536 and
/// 16,448 columns: many blocks a block), a GLU pair with Q4_1's min, the residual, three
/// projections with biases.
#[test]
fn the_persistent_batched_mat_vec_passes_ops_on_the_emulated_device() {
    for filter in [
        "matmul_fused-q8_0-m1536-k512-n9",
        "norm_matmul_glu-silu-q4_1-m1536-k512-n9",
        "norm_matmul_glu-silu-q8_0-m1536-k512-n9",
        "norm_matmuls-q8_0-m256+64+64-k512-n3",
        "norm_matmuls-q8_0-m16448-k256-n5",
    ] {
        let (log, _) = emulated_ops_env(filter, false, &[("ORCD_CUDA_MMQ", "0"), ("ORCD_CUDA_MVQ_PERSIST", "1")]);
        assert_eq!(all_passed(&log), 1, "{filter}:\n{log}");
    }
}

/// The prefill GEMM on 64-row tiles (`ORCD_CUDA_MMQ64=1`: `mmqh32_`, 64 × 32; `=2`: `mmqh_`,
/// 64 × 64, where the grid allows) against the CPU backend: whole and partial tiles, Q4_1's min
/// with the norm, a GLU pair, bias and residual, three projections.
#[test]
fn the_64_row_gemm_tiles_pass_ops_on_the_emulated_device() {
    for mode in ["1", "2"] {
        for (filter, cases) in [
            ("m1536-k576-n64", 5),
            ("k640-n70", 5),
            ("q8_0-m1536-k512-n40-bias-res", 1),
            ("silu-q8_0-m1536-k512-n24", 1),
            ("q4_1-m1536-k512-n33", 1),
            ("q8_0-m256+64+64-k512-n24-bias", 1),
        ] {
            let (log, _) = emulated_ops_env(filter, false, &[("ORCD_CUDA_MMQ", "1"), ("ORCD_CUDA_MMQ64", mode)]);
            assert_eq!(all_passed(&log), cases, "MMQ64={mode} {filter}:\n{log}");
        }
    }
}

/// A norm's q, k and v through the prefill GEMM in one launch (`ORCD_CUDA_MMQ_QKV=1`:
/// `mmqm32_`, and `mmqmh32_` with `ORCD_CUDA_MMQ64=1`) against the CPU backend, with biases.
#[test]
fn the_fused_qkv_gemm_passes_ops_on_the_emulated_device() {
    for mode in ["0", "1"] {
        let env = [("ORCD_CUDA_MMQ", "1"), ("ORCD_CUDA_MMQ_QKV", "1"), ("ORCD_CUDA_MMQ64", mode)];
        let (log, _) = emulated_ops_env("norm_matmuls-q", false, &env);
        // Q8_0, Q4_1 and Q4_K's 8 cases each; of them the 24-row ones take the GEMM (Q4_K has none).
        assert!(all_passed(&log) >= 24, "MMQ64={mode}:\n{log}");
    }
}
