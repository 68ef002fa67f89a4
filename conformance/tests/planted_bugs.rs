//! Planted bugs (issue 4): each fault of `orcd_engine::faults`, planted in turn, must make the
//! `models` suite fail and name the op where it first appears. Needs the fetched real models;
//! without them these tests fail with the fetch command (a missing model is never a pass). The
//! `ops` suite's planted bug (`FastRopeNeox`) needs nothing fetched.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use orcd_conformance::case::{run_case, Backend, Outcome};
use orcd_conformance::discover::load_case_file;
use orcd_conformance::paths;
use orcd_engine::faults::{set, Fault};

/// Faults are process-wide: run the cases one after another.
static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn run_with(fault: Fault, case_file: &str) -> String {
    let _g = LOCK.lock().unwrap_or_else(|p| p.into_inner());
    let case = load_case_file(&paths::goldens_dir().join("models").join(case_file)).expect("parses").expect("a case");
    if let Some(reason) = case.not_run_reason(Backend::Cpu) {
        panic!("cannot run the planted-bug check: {reason}");
    }
    set(Fault::None);
    assert!(
        matches!(run_case(&case, Backend::Cpu).outcome, Outcome::Pass { .. }),
        "{case_file} must pass before a fault is planted"
    );
    set(fault);
    let r = run_case(&case, Backend::Cpu);
    set(Fault::None);
    match r.outcome {
        Outcome::Fail { message } => message,
        o => panic!("{fault:?} was not caught: {o:?}"),
    }
}

fn assert_first_op(msg: &str, op: &str) {
    let line =
        msg.lines().find(|l| l.contains("first divergent op")).unwrap_or_else(|| panic!("no localisation in: {msg}"));
    let at = line.find("first divergent op: ").map(|i| &line[i + 20..]).unwrap_or("");
    assert!(at.starts_with(op), "expected the first divergent op to be {op}, got: {line}\n{msg}");
}

const LLAMA_SHORT: &str = "llama-smollm2-135m-q4_1-exact-short.yaml";
const GEMMA3_SHORT: &str = "gemma3-270m-q4_k_m-exact-short.yaml";

#[test]
fn rope_pairing_swapped_is_caught_at_the_first_attention() {
    assert_first_op(&run_with(Fault::RopePairing, LLAMA_SHORT), "blk.0.attn_out in the batch pass");
    assert_first_op(&run_with(Fault::RopePairing, GEMMA3_SHORT), "blk.0.attn_out in the batch pass");
}

#[test]
fn wrong_norm_epsilon_is_caught_at_the_first_norm() {
    assert_first_op(&run_with(Fault::NormEps, LLAMA_SHORT), "blk.0.attn_norm in the batch pass");
}

#[test]
fn transposed_weight_is_caught_where_it_is_used() {
    assert_first_op(&run_with(Fault::TransposeWq, LLAMA_SHORT), "blk.0.attn_out in the batch pass");
}

#[test]
fn kv_position_shift_is_caught_in_the_decode_pass() {
    assert_first_op(&run_with(Fault::KvPosShift, LLAMA_SHORT), "blk.0.attn_out in the kv-cache decode pass");
}

#[test]
fn dropped_qkv_bias_is_caught_at_the_first_attention() {
    assert_first_op(
        &run_with(Fault::DropQkvBias, "qwen2-synth-tiny-f32-short.yaml"),
        "blk.0.attn_out in the batch pass",
    );
}

#[test]
fn wrong_mxfp4_value_table_is_caught_at_the_first_expert_ffn() {
    // The router (F32) still matches; the experts (MXFP4) are the first op to read the table.
    assert_first_op(
        &run_with(Fault::Mxfp4Table, "gpt-oss-synth-tiny-f32-short.yaml"),
        "blk.0.ffn_out in the batch pass",
    );
}

/// Runs every case of suite `ops` on `cpu-fast` with `fault` planted (`Fault::None`: untampered).
fn ops_suite_on_cpu_fast(fault: Fault) -> Vec<(orcd_conformance::Case, Outcome)> {
    ops_suite_on(Backend::CpuFast, fault)
}

/// Runs every case of suite `ops` on `backend` with `fault` planted.
fn ops_suite_on(backend: Backend, fault: Fault) -> Vec<(orcd_conformance::Case, Outcome)> {
    let _g = LOCK.lock().unwrap_or_else(|p| p.into_inner());
    set(fault);
    let cases = orcd_conformance::suites::ops::cases();
    let out: Vec<_> = cases
        .into_iter()
        .map(|c| {
            let o = run_case(&c, backend).outcome;
            (c, o)
        })
        .collect();
    set(Fault::None);
    assert!(out.len() > 100, "the ops suite has {} cases", out.len());
    out
}

/// The rope cases of NeoX style: `rope` and the fused `rope_qk`, `rope_qk_kv_write`,
/// `norm_qkv_rope_kv_write`, `norm_rope_qk_kv_write` and `norm_qkv_norm_rope_kv_write`.
fn is_neox_rope(name: &str) -> bool {
    name.starts_with("rope-neox-")
        || name.starts_with("rope_qk-neox-")
        || name.starts_with("rope_qk_kv_write-neox-")
        || name.starts_with("norm_qkv_rope_kv_write-neox-")
        || name.starts_with("norm_rope_qk_kv_write-neox-")
        || name.starts_with("norm_qkv_norm_rope_kv_write-neox-")
        || name.starts_with("norm_add_norm_qkv_norm_rope_kv_write-neox-")
}

#[test]
fn ops_suite_passes_untampered_on_cpu_fast() {
    let bad: Vec<String> = ops_suite_on_cpu_fast(Fault::None)
        .into_iter()
        .filter(|(_, o)| !matches!(o, Outcome::Pass { .. }))
        .map(|(c, o)| format!("{}: {o:?}", c.name))
        .collect();
    assert!(bad.is_empty(), "{} ops cases did not pass untampered:\n{}", bad.len(), bad.join("\n"));
}

#[test]
fn fast_rope_neox_fault_is_caught_by_the_neox_rope_cases_only() {
    let results = ops_suite_on_cpu_fast(Fault::FastRopeNeox);
    let (mut neox, mut normal) = (0, 0);
    for (c, o) in &results {
        if is_neox_rope(&c.name) {
            neox += 1;
            let Outcome::Fail { message } = o else {
                panic!("{}: the planted NeoX RoPE bug was not caught: {o:?}", c.name)
            };
            // The message names the op and its shape (the case name), the column and the metric.
            assert!(message.contains(&format!("{} on cpu-fast", c.name)), "{message}");
            assert!(message.contains("rope") && message.contains("NMSE"), "{message}");
            assert!(message.contains("rerun: cargo nextest run"), "{message}");
            if neox == 1 {
                eprintln!("first NeoX rope failure:\n{message}");
            }
        } else {
            normal += usize::from(
                c.name.starts_with("rope-norm-")
                    || c.name.starts_with("rope_qk-norm-")
                    || c.name.starts_with("rope_qk_kv_write-norm-")
                    || c.name.starts_with("norm_qkv_rope_kv_write-norm-")
                    || c.name.starts_with("norm_rope_qk_kv_write-norm-")
                    || c.name.starts_with("norm_qkv_norm_rope_kv_write-norm-")
                    || c.name.starts_with("norm_add_norm_qkv_norm_rope_kv_write-norm-"),
            );
            assert!(matches!(o, Outcome::Pass { .. }), "{}: affected by a NeoX-only RoPE bug: {o:?}", c.name);
        }
    }
    assert!(neox >= 10 && normal == neox, "{neox} NeoX and {normal} normal rope cases");
}

/// The CUDA twin of the test above: a NeoX-only RoPE bug planted in the CUDA backend fails the
/// NeoX rope cases of both cuda columns, naming op, shape and column, and nothing else. Needs a
/// CUDA device: without one it says so and checks that every cuda case is reported not run.
#[test]
fn cuda_rope_neox_fault_is_caught_by_the_neox_rope_cases_only() {
    for backend in [Backend::Cuda, Backend::CudaFast] {
        let col = backend.column();
        if let Some(reason) = col.unavailable() {
            eprintln!("not run on {col}: {reason}");
            let results = ops_suite_on(backend, Fault::None);
            assert!(results.iter().all(|(_, o)| matches!(o, Outcome::NotRun { .. })));
            continue;
        }
        let results = ops_suite_on(backend, Fault::CudaRopeNeox);
        let mut neox = 0;
        for (c, o) in &results {
            if is_neox_rope(&c.name) {
                neox += 1;
                let Outcome::Fail { message } = o else {
                    panic!("{}: the planted CUDA NeoX RoPE bug was not caught on {col}: {o:?}", c.name)
                };
                assert!(message.contains(&format!("{} on {col}", c.name)) && message.contains("NMSE"), "{message}");
            } else {
                assert!(
                    matches!(o, Outcome::Pass { .. }),
                    "{} on {col}: affected by a NeoX-only RoPE bug: {o:?}",
                    c.name
                );
            }
        }
        assert!(neox >= 10, "{neox} NeoX rope cases on {col}");
    }
}

// ---------------------------------------------------------------------------------------------
// The fast tier's floor (docs/perf/GPU.md, "cuda-fast against the llama.cpp goldens"): not a
// planted bug but a measuring stick. One ulp moved in every quantized matmul output of the fast
// CPU path (bit-identical with llama.cpp without it) is the smallest change a second
// implementation of the same numerics makes; the KL it reaches against the llama.cpp goldens is
// what a CUDA column, which sums in another order, can be expected to reach.
// ---------------------------------------------------------------------------------------------

fn fast_case_kl(case_file: &str, fault: Fault) -> f64 {
    let _g = LOCK.lock().unwrap_or_else(|p| p.into_inner());
    let case = load_case_file(&paths::goldens_dir().join("models").join(case_file)).expect("parses").expect("a case");
    if let Some(reason) = case.not_run_reason(Backend::CpuFast) {
        panic!("cannot measure the fast tier's floor: {reason}");
    }
    set(fault);
    let r = run_case(&case, Backend::CpuFast);
    set(Fault::None);
    *r.metrics.get("mean_kl").unwrap_or_else(|| panic!("{case_file}: no mean_kl in {:?}", r.outcome))
}

#[test]
fn one_ulp_in_the_fast_matmuls_puts_gemma3_long_over_its_kl_threshold() {
    // Untampered the fast path is llama.cpp's bits on AVX-512 hosts (mean KL 8.9e-11 on the
    // AMD EPYC AVX-512F/VNNI host); one ulp per matmul output takes gemma-3's long prompt past
    // the 5e-3 bar of issue 4, which only a bit-identical computation meets there. Measured on
    // that host: 5.58e-3 (cuda-fast on the H200: 5.78e-3).
    let case = "gemma3-270m-q4_k_m-fast-long.yaml";
    let clean = fast_case_kl(case, Fault::None);
    let ulp = fast_case_kl(case, Fault::FastMatmulUlp);
    eprintln!("{case}: mean KL {clean:.3e} untampered, {ulp:.3e} with one ulp per matmul output");
    assert!(ulp > 5.0e-3, "one ulp per matmul output stays under the 5e-3 bar ({ulp:.3e}): revisit GPU.md's floor");
}

/// The HTTP server runs the same model code: a planted RoPE pairing bug changes the greedy text
/// that `/v1/chat/completions` streams, and suite `server` fails on it.
#[test]
fn rope_pairing_swapped_is_caught_through_the_server() {
    let _g = LOCK.lock().unwrap_or_else(|p| p.into_inner());
    let case = load_case_file(&paths::goldens_dir().join("server/smollm2-capital-chat.yaml"))
        .expect("parses")
        .expect("a case");
    if let Some(reason) = case.not_run_reason(Backend::CpuFast) {
        panic!("cannot run the planted-bug check: {reason}");
    }
    set(Fault::None);
    assert!(matches!(run_case(&case, Backend::CpuFast).outcome, Outcome::Pass { .. }), "must pass before the fault");
    set(Fault::RopePairing);
    let r = run_case(&case, Backend::CpuFast);
    set(Fault::None);
    match r.outcome {
        Outcome::Fail { message } => assert!(message.contains("text differs"), "{message}"),
        o => panic!("RopePairing was not caught through the server: {o:?}"),
    }
}
