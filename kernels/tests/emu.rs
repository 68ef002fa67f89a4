//! The kernels' logic run on the host: each `kernels/emu/*_check.cpp` includes `kernels/src/ops.cu`
//! through `kernels/emu/emu.h` (one fiber per CUDA thread, the warp intrinsics and the int8
//! mma emulated), is built with the system C++ compiler (`$CXX`, default `g++`; C++20, x86-64 with
//! F16C) and run; its exit code is the verdict and its output names every failing case. This is
//! how a kernel is checked where no GPU is; the `ops` suite on a card remains the check against
//! the CPU backend.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Build `check` (with `-D` of each of `defines`) and run it.
fn build_and_run(check: &str, defines: &[&str]) -> Result<String, String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let src = root.join("emu").join(format!("{check}.cpp"));
    let exe = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("{check}{}", defines.join("-")));
    let cxx = std::env::var("CXX").unwrap_or_else(|_| "g++".into());
    // -ffp-contract=off: every a·b + c in ops.cu is the two roundings it spells, as NVRTC's
    // __fmul_rn / __fadd_rn; fmaf stays fused.
    let built = Command::new(&cxx)
        .args(["-std=c++20", "-O1", "-mf16c", "-ffp-contract=off"])
        .args(defines.iter().map(|d| format!("-D{d}")))
        .arg("-o")
        .arg(&exe)
        .arg(&src)
        .output()
        .map_err(|e| format!("{cxx}: {e} (the emulator needs a C++20 compiler: set CXX)"))?;
    if !built.status.success() {
        return Err(format!("{cxx} failed on {}:\n{}", src.display(), String::from_utf8_lossy(&built.stderr)));
    }
    let ran = Command::new(&exe).output().map_err(|e| format!("{}: {e}", exe.display()))?;
    let text = String::from_utf8_lossy(&ran.stdout).into_owned();
    if ran.status.success() {
        Ok(text)
    } else {
        Err(text)
    }
}

#[test]
fn the_prefill_gemm_matches_its_abi_on_the_emulator() {
    match build_and_run("mmq_check", &[]) {
        Ok(out) => assert!(out.contains("passed: 0 failure(s)"), "{out}"),
        Err(msg) => panic!("mmq_check:\n{msg}"),
    }
}

/// The same checks with Q8_0 weights in the grouped device layout (`ORCD_CUDA_Q8_GROUPED=1`,
/// kernels/ABI.md): the GEMM and the mat-vecs give the values the ABI's formulas give from the
/// GGUF bytes, so the layout changes no bit.
#[test]
fn the_grouped_q8_0_layout_matches_the_abi_on_the_emulator() {
    match build_and_run("mmq_check", &["Q8_GROUPED"]) {
        Ok(out) => assert!(out.contains("passed: 0 failure(s)"), "{out}"),
        Err(msg) => panic!("mmq_check -DQ8_GROUPED:\n{msg}"),
    }
}

#[test]
fn both_attention_kernels_match_their_abi_on_the_emulator() {
    match build_and_run("attn_check", &[]) {
        Ok(out) => assert!(out.contains("passed: 0 failure(s)"), "{out}"),
        Err(msg) => panic!("attn_check:\n{msg}"),
    }
}

/// The switches that reshape attention's code without changing a value (ORCD_NVRTC_DEFINES: off
/// until a card has timed them, or the A/B of a default — ATT_P1SERIAL, pass 1 a key a thread):
/// the same checks, bit for bit.
#[test]
fn attention_switches_match_the_abi_on_the_emulator() {
    for defines in
        [&["ATT_ROLL2"][..], &["ATT_GENERIC"], &["ATT_P1SERIAL"], &["ATT_P1SERIAL", "ATT_ROLL2"], &["ATT_TILE_SLIM"]]
    {
        match build_and_run("attn_check", defines) {
            Ok(out) => assert!(out.contains("passed: 0 failure(s)"), "{out}"),
            Err(msg) => panic!("attn_check -D{}:\n{msg}", defines.join(" -D")),
        }
    }
}

/// The GEMM with its activation inlined and its stage loop unrolled (`MMQ_FAT`, the A/B of the
/// default since stop 44), over the grouped layout: the same checks, bit for bit (the GLU pair's
/// `mmqg_` among them).
#[test]
fn the_unrolled_gemm_matches_its_abi_on_the_emulator() {
    match build_and_run("mmq_check", &["Q8_GROUPED", "MMQ_FAT"]) {
        Ok(out) => assert!(out.contains("passed: 0 failure(s)"), "{out}"),
        Err(msg) => panic!("mmq_check -DQ8_GROUPED -DMMQ_FAT:\n{msg}"),
    }
}

/// The batched GLU's rounding epilogue (`mv_glu_codes`; the host's `ORCD_CUDA_GLU_CODES`) against
/// `quant_x_q8`, bit for bit, every group counter zero again after the launch (a doubled scale in
/// the group's codes fails all 4 cases).
#[test]
fn the_glu_codes_match_quant_x_q8_on_the_emulator() {
    match build_and_run("codes_check", &[]) {
        Ok(out) => assert!(out.contains("passed: 0 failure(s)"), "{out}"),
        Err(msg) => panic!("codes_check:\n{msg}"),
    }
}
