//! Activation quantization for the `fast` numerics: ggml's `Q8_0` / `Q8_1` (32-element blocks, for
//! the legacy weight types) and `Q8_K` (256-element blocks, for the k-quants).
//!
//! The rounding is the one llama.cpp's CPU backend applies on x86 (`ggml-cpu/arch/x86/quants.c`):
//! - `quantize_row_q8_0` / `quantize_row_q8_1` (AVX2 build): `amax = max |x|`, `d = amax / 127`,
//!   `id = 127 / amax` (0 when `amax` is 0), `q = round_half_even(x * id)` saturated to i8; the
//!   block keeps `d` as f16, and Q8_1 also `s = f16(d * Σq)` (with the unrounded `d`).
//! - `quantize_row_q8_K` (the reference on every arch): `max` = the element of largest magnitude
//!   (first one on ties), `iscale = -127 / max`, `q = min(127, round_half_even(iscale * x))`,
//!   `d = 1 / iscale` kept as f32, plus the sums of each 16 quants (`bsums`).
//!
//! In memory the blocks keep their scales as f32 (the f16 values converted exactly), so the dot
//! kernels do not convert per block. [`quantize_q8`] and [`quantize_q8k`] are the scalar
//! reference; the `_fast` variants are their AVX2 twins (`q8_block_avx2`, `q8k_block_avx2`),
//! bit-identical (tested on edge blocks: NaN, infinities, ties of magnitude, subnormals): the
//! same products, no FMA contraction, and the rounding instructions are exact.

use half::f16;

/// Elements of a Q8_0 / Q8_1 block.
pub const QK8: usize = 32;
/// Elements of a Q8_K block.
pub const QK_K: usize = 256;

/// A Q8_0 / Q8_1 activation block: `x ≈ d * qs`; `s = f16(d * Σ qs)` (used with Q4_1 / Q5_1).
#[derive(Debug, Clone, Copy, PartialEq)]
#[repr(C, align(8))]
pub struct Q8Block {
    /// The f16 scale, as f32.
    pub d: f32,
    /// The f16 `d * Σ qs`, as f32.
    pub s: f32,
    pub qs: [i8; QK8],
}

impl Default for Q8Block {
    fn default() -> Self {
        Q8Block { d: 0.0, s: 0.0, qs: [0; QK8] }
    }
}

/// A Q8_K activation block: `x ≈ d * qs`, `bsums[i] = Σ qs[16 i..16 i + 16]`.
#[derive(Debug, Clone, Copy, PartialEq)]
#[repr(C, align(8))]
pub struct Q8KBlock {
    pub d: f32,
    pub qs: [i8; QK_K],
    pub bsums: [i16; QK_K / 16],
}

impl Default for Q8KBlock {
    fn default() -> Self {
        Q8KBlock { d: 0.0, qs: [0; QK_K], bsums: [0; QK_K / 16] }
    }
}

#[inline]
fn f16_round(x: f32) -> f32 {
    f16::from_f32(x).to_f32()
}

#[inline(always)]
fn q8_block(x: &[f32], y: &mut Q8Block) {
    let mut amax = 0f32;
    for &v in x {
        amax = amax.max(v.abs());
    }
    let d = amax / 127.0;
    let id = if amax != 0.0 { 127.0 / amax } else { 0.0 };
    let mut sum = 0i32;
    for (q, &v) in y.qs.iter_mut().zip(x) {
        let r = (v * id).round_ties_even().clamp(-128.0, 127.0) as i32;
        sum += r;
        *q = r as i8;
    }
    y.d = f16_round(d);
    y.s = f16_round(d * sum as f32);
}

#[inline(always)]
fn q8k_block(x: &[f32], y: &mut Q8KBlock) {
    let (mut max, mut amax) = (0f32, 0f32);
    for &v in x {
        if v.abs() > amax {
            amax = v.abs();
            max = v;
        }
    }
    if amax == 0.0 {
        *y = Q8KBlock::default();
        return;
    }
    let iscale = -127.0 / max;
    for (q, &v) in y.qs.iter_mut().zip(x) {
        *q = (iscale * v).round_ties_even().min(127.0) as i8;
    }
    for (s, qs) in y.bsums.iter_mut().zip(y.qs.chunks_exact(16)) {
        *s = qs.iter().map(|&q| i16::from(q)).sum();
    }
    y.d = 1.0 / iscale;
}

/// Quantize `x` (a whole number of 32-element blocks) to Q8_0/Q8_1 blocks — scalar reference.
pub fn quantize_q8(x: &[f32], out: &mut [Q8Block]) {
    for (xb, y) in x.chunks_exact(QK8).zip(out.iter_mut()) {
        q8_block(xb, y);
    }
}

/// Quantize `x` (a whole number of 256-element blocks) to Q8_K blocks — scalar reference.
pub fn quantize_q8k(x: &[f32], out: &mut [Q8KBlock]) {
    for (xb, y) in x.chunks_exact(QK_K).zip(out.iter_mut()) {
        q8k_block(xb, y);
    }
}

/// The largest `|x|` of `x` (whole 8-float chunks) by `max_ps`, NaNs losing (`max_ps(a, b)`
/// returns `b` when either is NaN, and the running max is `b`); 0 when all are NaN or zero.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma,f16c")]
fn amax_avx2(x: &[f32]) -> f32 {
    use std::arch::x86_64::*;
    let sign = _mm256_set1_ps(-0.0);
    let mut m = _mm256_setzero_ps();
    for c in x.chunks_exact(8) {
        // SAFETY: 8 floats.
        m = _mm256_max_ps(_mm256_andnot_ps(sign, unsafe { _mm256_loadu_ps(c.as_ptr()) }), m);
    }
    let m4 = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
    let m2 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
    _mm_cvtss_f32(_mm_max_ss(m2, _mm_movehdup_ps(m2)))
}

/// [`q8_block`] in AVX2 + F16C, as ggml's x86 `quantize_row_q8_1` computes it: the largest
/// magnitude by `max_ps` (a NaN element loses, as in `f32::max`), `x · id` rounded half to even
/// by `round_ps`, clamped to [-128, 127], the code sum in exact integers, `d` and `s` rounded to
/// F16 by `cvtps_ph` (nearest even, as `half`); a NaN element's code is 0. The same values as the
/// scalar block (tested, edge blocks included).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma,f16c")]
fn q8_block_avx2(x: &[f32], y: &mut Q8Block) {
    use std::arch::x86_64::*;
    debug_assert!(x.len() == QK8);
    // SAFETY: x holds 32 floats (chunks_exact in the caller); y.qs holds 32 bytes.
    unsafe {
        let p = x.as_ptr();
        let v: [__m256; 4] = std::array::from_fn(|i| _mm256_loadu_ps(p.add(8 * i)));
        let amax = amax_avx2(x);
        let d = amax / 127.0;
        let id = if amax != 0.0 { 127.0 / amax } else { 0.0 };
        let idv = _mm256_set1_ps(id);
        let (lo, hi) = (_mm256_set1_ps(-128.0), _mm256_set1_ps(127.0));
        let q: [__m256i; 4] = std::array::from_fn(|i| {
            let r = _mm256_round_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(_mm256_mul_ps(v[i], idv));
            // A NaN element's code is 0, as the scalar `NaN as i32`.
            let r = _mm256_and_ps(r, _mm256_cmp_ps::<_CMP_ORD_Q>(r, r));
            _mm256_cvtps_epi32(_mm256_min_ps(_mm256_max_ps(r, lo), hi))
        });
        let s4 = _mm256_add_epi32(_mm256_add_epi32(q[0], q[1]), _mm256_add_epi32(q[2], q[3]));
        let s2 = _mm_add_epi32(_mm256_castsi256_si128(s4), _mm256_extracti128_si256(s4, 1));
        let s1 = _mm_add_epi32(s2, _mm_shuffle_epi32(s2, 0b01_00_11_10));
        let sum = _mm_cvtsi128_si32(_mm_add_epi32(s1, _mm_shuffle_epi32(s1, 0b10_11_00_01)));
        // i32 → i16 → i8 with saturation (values are already in range), then undo the lane
        // interleaving of the two packs.
        let w01 = _mm256_packs_epi32(q[0], q[1]);
        let w23 = _mm256_packs_epi32(q[2], q[3]);
        let b = _mm256_packs_epi16(w01, w23);
        let b = _mm256_permutevar8x32_epi32(b, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
        _mm256_storeu_si256(y.qs.as_mut_ptr() as *mut __m256i, b);
        let h = |f: f32| _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtps_ph::<{ _MM_FROUND_TO_NEAREST_INT }>(_mm_set_ss(f))));
        y.d = h(d);
        y.s = h(d * sum as f32);
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma,f16c")]
fn quantize_q8_avx2(x: &[f32], out: &mut [Q8Block]) {
    for (xb, y) in x.chunks_exact(QK8).zip(out.iter_mut()) {
        q8_block_avx2(xb, y);
    }
}

/// [`q8k_block`] in AVX2: the largest magnitude by `max_ps` (a NaN loses, as in the scalar `>`),
/// then the first element of that magnitude by compare masks (the scalar's "first one on
/// ties"), `iscale · x` rounded half to even, `min(127)` by `min_ps` (a NaN becomes 127, as
/// `f32::min`) and saturated to i8 as `as i8`, the bsums of the stored codes in exact integers.
/// The same values as the scalar block (tested, edge blocks included).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma,f16c")]
fn q8k_block_avx2(x: &[f32], y: &mut Q8KBlock) {
    use std::arch::x86_64::*;
    debug_assert!(x.len() == QK_K);
    // SAFETY: x holds 256 floats (chunks_exact in the caller); y.qs 256 bytes.
    unsafe {
        let p = x.as_ptr();
        let sign = _mm256_set1_ps(-0.0);
        let amax = amax_avx2(x);
        if amax == 0.0 {
            *y = Q8KBlock::default();
            return;
        }
        let av = _mm256_set1_ps(amax);
        let mut first = 0;
        for i in 0..QK_K / 8 {
            let eq = _mm256_movemask_ps(_mm256_cmp_ps::<_CMP_EQ_OQ>(
                _mm256_andnot_ps(sign, _mm256_loadu_ps(p.add(8 * i))),
                av,
            ));
            if eq != 0 {
                first = 8 * i + eq.trailing_zeros() as usize;
                break;
            }
        }
        let iscale = -127.0 / x[first];
        let iv = _mm256_set1_ps(iscale);
        let (lo, hi) = (_mm256_set1_ps(-128.0), _mm256_set1_ps(127.0));
        let q = y.qs.as_mut_ptr();
        for c in 0..QK_K / 32 {
            let v: [__m256i; 4] = std::array::from_fn(|i| {
                let r = _mm256_round_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(_mm256_mul_ps(
                    _mm256_loadu_ps(p.add(32 * c + 8 * i)),
                    iv,
                ));
                // min_ps(r, 127) is 127 where r is NaN (f32::min); max_ps then saturates as `as i8`.
                _mm256_cvtps_epi32(_mm256_max_ps(_mm256_min_ps(r, hi), lo))
            });
            let w01 = _mm256_packs_epi32(v[0], v[1]);
            let w23 = _mm256_packs_epi32(v[2], v[3]);
            let b = _mm256_packs_epi16(w01, w23);
            let b = _mm256_permutevar8x32_epi32(b, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
            _mm256_storeu_si256(q.add(32 * c) as *mut __m256i, b);
            // Σ of each 16 codes: pairs by maddubs (1 × code), then i32 lanes of 4, then 4 lanes.
            let s4 = _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_set1_epi8(1), b), _mm256_set1_epi16(1));
            let mut l = [0i32; 8];
            _mm256_storeu_si256(l.as_mut_ptr() as *mut __m256i, s4);
            y.bsums[2 * c] = (l[0] + l[1] + l[2] + l[3]) as i16;
            y.bsums[2 * c + 1] = (l[4] + l[5] + l[6] + l[7]) as i16;
        }
        y.d = 1.0 / iscale;
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma,f16c")]
fn quantize_q8k_avx2(x: &[f32], out: &mut [Q8KBlock]) {
    for (xb, y) in x.chunks_exact(QK_K).zip(out.iter_mut()) {
        q8k_block_avx2(xb, y);
    }
}

/// [`quantize_q8`] compiled for AVX2 when the CPU has it (same results).
pub fn quantize_q8_fast(x: &[f32], out: &mut [Q8Block]) {
    #[cfg(target_arch = "x86_64")]
    if super::simd::has_avx2() {
        // SAFETY: the CPU supports the features the function is compiled for.
        return unsafe { quantize_q8_avx2(x, out) };
    }
    quantize_q8(x, out)
}

/// [`quantize_q8k`] compiled for AVX2 when the CPU has it (same results).
pub fn quantize_q8k_fast(x: &[f32], out: &mut [Q8KBlock]) {
    #[cfg(target_arch = "x86_64")]
    if super::simd::has_avx2() {
        // SAFETY: the CPU supports the features the function is compiled for.
        return unsafe { quantize_q8k_avx2(x, out) };
    }
    quantize_q8k(x, out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    fn signal(n: usize, seed: u32) -> Vec<f32> {
        let mut s = seed.wrapping_mul(2654435761).wrapping_add(1);
        (0..n)
            .map(|i| {
                s ^= s << 13;
                s ^= s >> 17;
                s ^= s << 5;
                let u = (s >> 8) as f32 / (1u32 << 24) as f32 - 0.5;
                u * (1.0 + (i % 7) as f32) * if i % 97 == 0 { 40.0 } else { 1.0 }
            })
            .collect()
    }

    #[test]
    fn q8_matches_ggml_rounding() {
        // Ties round to even (x * id = 2.5 -> 2), as _mm256_round_ps(_MM_ROUND_NEAREST).
        let mut x = [0f32; 32];
        x[0] = 127.0;
        x[1] = 2.5;
        x[2] = -3.5;
        x[3] = 0.5;
        let mut y = [Q8Block::default()];
        quantize_q8(&x, &mut y);
        assert_eq!(&y[0].qs[..4], &[127, 2, -4, 0]);
        assert_eq!(y[0].d, 1.0);
        assert_eq!(y[0].s, 125.0);
        // All-zero block: zero scale, zero codes.
        quantize_q8(&[0.0; 32], &mut y);
        assert_eq!(y[0], Q8Block::default());
    }

    #[test]
    fn q8k_matches_ggml_reference() {
        let mut x = [0f32; 256];
        x[5] = -2.0; // largest magnitude, negative: iscale = -127 / -2 = 63.5
        x[6] = 1.0; // 63.5 rounds to even: 64
        x[7] = 2.0; // same magnitude later: the first one wins
        let mut y = [Q8KBlock::default()];
        quantize_q8k(&x, &mut y);
        assert_eq!(&y[0].qs[5..8], &[-127, 64, 127]);
        assert_eq!(y[0].bsums[0], 64);
        assert_eq!(y[0].d, 1.0 / 63.5);
    }

    #[rstest]
    fn fast_variants_are_bit_identical(#[values(0, 1, 2, 3, 4, 5, 6, 7)] seed: u32) {
        let mut x = signal(1024, seed);
        // Edge blocks: all zeros, halfway ties, a NaN among values, ±127 exactly, a lone -max.
        x[..32].fill(0.0);
        for (i, v) in x[32..64].iter_mut().enumerate() {
            *v = (i as f32 - 16.0) * 0.5;
        }
        x[70] = f32::NAN;
        x[96] = -3.0e4;
        x[97] = 3.0e4;
        x[130] = -1.0e-30;
        let (mut a, mut b) = (vec![Q8Block::default(); 32], vec![Q8Block::default(); 32]);
        quantize_q8(&x, &mut a);
        quantize_q8_fast(&x, &mut b);
        assert_eq!(a, b);
        let (mut a, mut b) = (vec![Q8KBlock::default(); 4], vec![Q8KBlock::default(); 4]);
        quantize_q8k(&x, &mut a);
        quantize_q8k_fast(&x, &mut b);
        assert_eq!(a, b);
    }

    /// Q8_K blocks at the edges of the scalar reference's rules: the first of equal magnitudes
    /// (either sign) is `max`, NaNs never are (and their codes are 127), all-NaN and all-zero
    /// blocks, an infinite element, subnormals, codes at ±127 and the bsums of full blocks.
    #[rstest]
    #[case::ties_neg_first(&[(9, -5.0), (200, 5.0), (3, 4.999)])]
    #[case::ties_pos_first(&[(9, 5.0), (200, -5.0), (255, 5.0)])]
    #[case::nan_and_max_later(&[(0, f32::NAN), (1, f32::NAN), (250, -0.75)])]
    #[case::infinity(&[(17, f32::INFINITY), (18, -2.0), (19, f32::NAN)])]
    #[case::subnormal(&[(40, 1.0e-40), (41, -3.0e-41), (100, 2.0e-45)])]
    #[case::zeros(&[])]
    fn q8k_fast_edge_blocks(#[case] set: &[(usize, f32)], #[values(false, true)] noise: bool) {
        let mut x = if noise { signal(256, 11).iter().map(|v| v * 1e-3).collect() } else { vec![0f32; 256] };
        for &(i, v) in set {
            x[i] = v;
        }
        let (mut a, mut b) = ([Q8KBlock::default()], [Q8KBlock::default()]);
        quantize_q8k(&x, &mut a);
        quantize_q8k_fast(&x, &mut b);
        assert_eq!(a[0].qs, b[0].qs);
        assert_eq!(a[0].bsums, b[0].bsums);
        assert_eq!(a[0].d.to_bits(), b[0].d.to_bits());
        let all_nan = [f32::NAN; 256];
        quantize_q8k(&all_nan, &mut a);
        quantize_q8k_fast(&all_nan, &mut b);
        assert_eq!(a, b);
    }

    #[test]
    fn q8_error_within_half_step() {
        let x = signal(256, 3);
        let mut y = vec![Q8Block::default(); 8];
        quantize_q8(&x, &mut y);
        for (xb, b) in x.chunks(32).zip(&y) {
            for (v, q) in xb.iter().zip(b.qs) {
                assert!((v - b.d * f32::from(q)).abs() <= 0.51 * b.d + 1e-3 * v.abs(), "{v} {q} {}", b.d);
            }
        }
    }
}
