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
    let out = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("cuda-emu-{}", filter.replace('+', "_")));
    let run = Command::new(GATE)
        .args(["run", "--suite", "ops", "--backend", "cuda-fast", "--filter", filter, "--out"])
        .arg(&out)
        .env("ORCD_CUDA_EMU", "1")
        .env("ORCD_CUDA_MMQ", "1")
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
