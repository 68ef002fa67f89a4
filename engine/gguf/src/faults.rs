//! Test-only fault injection: plants known bugs so the conformance harness can prove it catches
//! them and names the op where they first appear (issue 4, "planted bugs").
//!
//! Invariant: without the `faults` cargo feature (never enabled for release builds or the
//! binaries), [`active`] is the constant `false` and nothing here can change a result. With the
//! feature, faults are set only by calling [`set`] (tests do; nothing reads the environment).

/// A planted bug.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Fault {
    None = 0,
    /// RoPE pairing swapped (normal ↔ NeoX).
    RopePairing = 1,
    /// q/k/v biases ignored.
    DropQkvBias = 2,
    /// `blk.0.attn_q.weight` read transposed (a wrong stride).
    TransposeWq = 3,
    /// RMSNorm epsilon taken as 1e-2 instead of the file's value.
    NormEps = 4,
    /// Positions of decode steps shifted back by one (KV position bookkeeping off by one).
    KvPosShift = 5,
    /// MXFP4 codes mapped through a wrong value table (plain integers 0..7 instead of E2M1's
    /// doubled 0, 1, 2, 3, 4, 6, 8, 12), in dequantization and in the fast dot product.
    Mxfp4Table = 6,
    /// The fast CPU backend's NeoX RoPE turned the wrong way (sin negated), only for
    /// `RopeStyle::Neox` and only in `CpuFast::rope`: the `ops` suite must catch it in its NeoX
    /// rope cases and nowhere else.
    FastRopeNeox = 7,
    /// The CUDA backend's RoPE launched with normal pairing for `RopeStyle::Neox` (the kernel's
    /// style flag dropped), both numerics: the `ops` suite must catch it in the NeoX rope cases of
    /// the `cuda` columns and nowhere else.
    CudaRopeNeox = 8,
    /// Not a bug but a measuring stick: every output of the fast CPU backend's quantized matmul
    /// moved by one ulp (its last bit flipped). The `models` fast cases under it show the KL that
    /// a computation differing from llama.cpp's only in rounding reaches (the fast tier's floor:
    /// docs/perf/GPU.md, "cuda-fast against the llama.cpp goldens").
    FastMatmulUlp = 9,
}

#[cfg(feature = "faults")]
static ACTIVE: std::sync::atomic::AtomicU8 = std::sync::atomic::AtomicU8::new(0);

/// Plant `f` (process-wide) — only with the `faults` feature.
#[cfg(feature = "faults")]
pub fn set(f: Fault) {
    ACTIVE.store(f as u8, std::sync::atomic::Ordering::SeqCst);
}

/// Whether `f` is planted.
#[inline]
pub fn active(f: Fault) -> bool {
    #[cfg(feature = "faults")]
    {
        ACTIVE.load(std::sync::atomic::Ordering::SeqCst) == f as u8
    }
    #[cfg(not(feature = "faults"))]
    {
        let _ = f;
        false
    }
}
