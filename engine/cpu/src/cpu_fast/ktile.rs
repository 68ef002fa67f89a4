//! The k-quant GEMM of a batch (prefill, or a server step whose sequences have 8+ rows):
//! llama.cpp's tiled formula ([`super::dot::dot_k_tiled`]) with each group of 4 weight rows
//! unpacked once — codes as bytes, scales as 16-bit vectors, the min / correction terms as
//! one 16-lane vector — and then multiplied with every activation row of the batch.
//!
//! Before this, the row kernels decoded a super-block's 6-bit scales and nibbles again for every
//! activation row (~150 instructions per super-block per (weight row, activation row) pair, most
//! of them unpacking); here that work is done once per weight row and the pair costs 8
//! `maddubs` + 8 `madd` (or `vpdpwssd`) and a share of one 4-row reduction.
//!
//! Invariant: each output is `dot_k_tiled(ty, row, a_t)` bit for bit. The formula's integer
//! totals per super-block (`s1 = Σ sc·(q·y)`, `s2 = Σ m·bsum`) are exact in any summation order
//! (no i16 saturates: codes ≤ 63, |y| ≤ 127, pairs ≤ 16,002), and the f32 steps per super-block —
//! `r = fma(-dmin, s2, s1·d)`, `acc = fma(r, y.d, acc)` — are the same instructions in the same
//! order, lane by lane for the 4 rows. Q6_K's codes are stored unsigned (`q + 32`), its
//! `−32 Σ sc·bsum` added into s1's lanes before their one reduction.

#![allow(clippy::needless_range_loop)] // index loops mirror the block layouts

use super::act::{Q8KBlock, QK_K};
use crate::gguf::GgmlType;

/// Weight rows unpacked and computed together.
pub const ROWS: usize = 4;

/// One weight row's super-block, unpacked.
#[derive(Debug, Clone, Copy)]
#[repr(C, align(32))]
struct SbRow {
    /// Codes 0..64 (Q4_K 0..16, Q5_K 0..32, Q6_K `q + 32`), element order of the block.
    codes: [u8; QK_K],
    /// 16 words per 32-element chunk: the scale of each `maddubs` word (a sub-block's scale).
    scales: [i16; QK_K / 2],
    /// Per bsum (16 elements): the min of its sub-block (Q4_K / Q5_K), or `-32 ×` its scale
    /// (Q6_K: the codes' offset, taken into s1).
    mins: [i16; 16],
}

/// A super-block of the 4 rows, with their f32 super-block scales.
#[derive(Debug, Clone, Copy)]
#[repr(C, align(32))]
struct SbTile {
    rows: [SbRow; ROWS],
    d: [f32; ROWS],
    /// `-dmin` (0 for Q6_K, whose formula has no mins term).
    ndmin: [f32; ROWS],
}

impl Default for SbTile {
    fn default() -> Self {
        let r = SbRow { codes: [0; QK_K], scales: [0; QK_K / 2], mins: [0; 16] };
        SbTile { rows: [r; ROWS], d: [0.0; ROWS], ndmin: [0.0; ROWS] }
    }
}

/// The types this module multiplies.
pub fn supports(ty: GgmlType) -> bool {
    matches!(ty, GgmlType::Q4_K | GgmlType::Q5_K | GgmlType::Q6_K)
}

/// 4 weight rows of `nb` super-blocks, unpacked (reused across groups: no allocation per group).
#[derive(Debug, Default)]
pub struct Tile {
    ty: Option<GgmlType>,
    sb: Vec<SbTile>,
}

fn f16_at(b: &[u8], at: usize) -> f32 {
    crate::quant::f16_to_f32(u16::from_le_bytes([b[at], b[at + 1]]))
}

impl Tile {
    /// Unpack `rows` (each `nb` blocks of `ty`, one of [`supports`]).
    pub fn unpack(&mut self, ty: GgmlType, rows: &[&[u8]; ROWS]) {
        let ts = ty.type_size();
        let nb = rows[0].len() / ts;
        self.ty = Some(ty);
        self.sb.resize(nb, SbTile::default());
        for (ib, tile) in self.sb.iter_mut().enumerate() {
            for (r, row) in rows.iter().enumerate() {
                let b = &row[ib * ts..(ib + 1) * ts];
                let out = &mut tile.rows[r];
                match ty {
                    GgmlType::Q6_K => {
                        unpack_q6k(b, out);
                        tile.d[r] = f16_at(b, 208);
                        tile.ndmin[r] = 0.0;
                    }
                    _ => {
                        unpack_k4(ty == GgmlType::Q5_K, b, out);
                        tile.d[r] = f16_at(b, 0);
                        tile.ndmin[r] = -f16_at(b, 2);
                    }
                }
            }
        }
    }

    /// The 4 rows' outputs against one activation row (`a`: its `nb` Q8_K blocks).
    pub fn dot(&self, isa: super::matmul::Isa, a: &[Q8KBlock]) -> [f32; ROWS] {
        let [v] = self.dot_n(isa, [a]);
        v
    }

    /// The 4 rows' outputs against `NA` activation rows at once (the same values as one at a
    /// time). AVX2 has 16 vector registers: it takes two rows a pass.
    pub fn dot_n<const NA: usize>(&self, isa: super::matmul::Isa, a: [&[Q8KBlock]; NA]) -> [[f32; ROWS]; NA] {
        assert!(a.iter().all(|a| a.len() == self.sb.len()), "activation rows of another length");
        let q6 = self.ty == Some(GgmlType::Q6_K);
        #[cfg(target_arch = "x86_64")]
        {
            use super::matmul::Isa;
            // SAFETY: the CPU has the module's features (Isa::detect); every `a[t]` has one
            // block per unpacked super-block (asserted).
            match isa {
                Isa::Vnni512 => return unsafe { x86::vnni512::dot(&self.sb, a, q6) },
                Isa::Vnni => return unsafe { x86::vnni::dot(&self.sb, a, q6) },
                Isa::Avx2 => return unsafe { x86::avx2::dot(&self.sb, a, q6) },
                Isa::Scalar => {}
            }
        }
        let _ = isa;
        a.map(|a| dot_scalar(&self.sb, a, q6))
    }
}

/// Q4_K / Q5_K: codes (low nibbles of chunk `c`'s 32 bytes, then their high nibbles; the fifth
/// bit of Q5_K from bit `2c` / `2c + 1` of `qh`), the 6-bit scales and mins.
fn unpack_k4(five: bool, b: &[u8], out: &mut SbRow) {
    let mut s = [0u8; 12];
    s.copy_from_slice(&b[4..16]);
    let (sc, m) = crate::quant::scale_min_k4(&s);
    let (qh, qs): (&[u8], &[u8]) = if five { (&b[16..48], &b[48..176]) } else { (&[], &b[16..144]) };
    for c in 0..4 {
        let (lo, hi) = out.codes[64 * c..64 * c + 64].split_at_mut(32);
        for i in 0..32 {
            let q = qs[32 * c + i];
            lo[i] = q & 15;
            hi[i] = q >> 4;
        }
        if five {
            for i in 0..32 {
                lo[i] |= ((qh[i] >> (2 * c)) & 1) << 4;
                hi[i] |= ((qh[i] >> (2 * c + 1)) & 1) << 4;
            }
        }
    }
    for j in 0..8 {
        out.scales[16 * j..16 * j + 16].fill(i16::from(sc[j]));
    }
    for i in 0..16 {
        out.mins[i] = i16::from(m[i / 2]);
    }
}

/// Q6_K: codes `q + 32` (element `128c + 32k + i`: nibble `k / 2` of `ql[64c + 32(k % 2) + i]`,
/// bits `2k` of `qh[32c + i]`), the 16 signed scales.
fn unpack_q6k(b: &[u8], out: &mut SbRow) {
    let (ql, qh, sc) = (&b[0..128], &b[128..192], &b[192..208]);
    for c in 0..2 {
        for k in 0..4 {
            let dst = &mut out.codes[128 * c + 32 * k..128 * c + 32 * k + 32];
            for i in 0..32 {
                let lo = (ql[64 * c + 32 * (k % 2) + i] >> (4 * (k / 2))) & 15;
                let hi = (qh[32 * c + i] >> (2 * k)) & 3;
                dst[i] = lo | (hi << 4);
            }
        }
    }
    for j in 0..8 {
        out.scales[16 * j..16 * j + 8].fill(i16::from(sc[2 * j] as i8));
        out.scales[16 * j + 8..16 * j + 16].fill(i16::from(sc[2 * j + 1] as i8));
    }
    for i in 0..16 {
        // |-32 sc| <= 4096: an i16, and `-32 sc · bsum` pairs stay well inside an i32.
        out.mins[i] = -32 * i16::from(sc[i] as i8);
    }
}

/// The formula, element by element (the reference the SIMD variants equal; `Isa::Scalar`).
fn dot_scalar(sb: &[SbTile], a: &[Q8KBlock], q6: bool) -> [f32; ROWS] {
    let mut acc = [0f32; ROWS];
    for (t, y) in sb.iter().zip(a) {
        for r in 0..ROWS {
            let w = &t.rows[r];
            let mut s1 = 0i32;
            for (e, (&q, &v)) in w.codes.iter().zip(&y.qs).enumerate() {
                // The word of element e is e / 2 within its chunk: scales[16 (e / 32) + (e % 32) / 2].
                s1 = s1.wrapping_add(i32::from(w.scales[e / 2]) * i32::from(q) * i32::from(v));
            }
            let e: i32 = w.mins.iter().zip(&y.bsums).map(|(&m, &b)| i32::from(m) * i32::from(b)).sum();
            let (s1, s2) = if q6 { (s1.wrapping_add(e), 0) } else { (s1, e) };
            let rr = t.ndmin[r].mul_add(s2 as f32, s1 as f32 * t.d[r]);
            acc[r] = rr.mul_add(y.d, acc[r]);
        }
    }
    acc
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    /// The kernel for one instruction set: `$madd(acc, p, s)` adds the products of 16-bit
    /// pairs `p · s` into `acc`'s i32 lanes (`madd` + `add`, or one `vpdpwssd`).
    macro_rules! ktile {
        ($name:ident, $feat:literal, $madd:item) => {
            pub mod $name {
                use std::arch::x86_64::*;

                use super::super::{SbTile, ROWS};
                use crate::cpu_fast::act::Q8KBlock;

                $madd

                /// 4 i32 vectors to their 4 totals.
                #[inline]
                #[target_feature(enable = $feat)]
                fn reduce4(v: [__m256i; 4]) -> __m128i {
                    let h01 = _mm256_hadd_epi32(v[0], v[1]);
                    let h23 = _mm256_hadd_epi32(v[2], v[3]);
                    let h = _mm256_hadd_epi32(h01, h23);
                    _mm_add_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1))
                }

                /// The 4 rows against `NA` activation rows: each weight chunk and its scales
                /// are loaded once for all of them; every (weight row, activation row) pair gets
                /// the same operations whatever `NA` is.
                ///
                /// # Safety
                /// The CPU has this module's features; `a[t].len() == sb.len()` for every `t`.
                #[target_feature(enable = $feat)]
                pub unsafe fn dot<const NA: usize>(sb: &[SbTile], a: [&[Q8KBlock]; NA], q6: bool) -> [[f32; ROWS]; NA] {
                    let mut acc = [_mm_setzero_ps(); NA];
                    for (ib, t) in sb.iter().enumerate() {
                        // SAFETY: every pointer below is inside `t` or a block of `a[u]`
                        // (fixed-size arrays; ib < a[u].len() by the contract).
                        unsafe {
                            let ys: [&Q8KBlock; NA] = std::array::from_fn(|u| a[u].get_unchecked(ib));
                            let mut s1 = [[_mm256_setzero_si256(); ROWS]; NA];
                            // Chunk by chunk: each chunk's activation bytes loaded once for
                            // the 4 rows, and the 4 · NA accumulator chains all advanced (row
                            // by row, the chains of one row wait on vpdpwssd's latency).
                            for j in 0..8 {
                                let yj: [__m256i; NA] = std::array::from_fn(|u| {
                                    _mm256_loadu_si256((ys[u].qs.as_ptr() as *const __m256i).add(j))
                                });
                                for r in 0..ROWS {
                                    let w = &t.rows[r];
                                    let cj = _mm256_load_si256((w.codes.as_ptr() as *const __m256i).add(j));
                                    let sj = _mm256_load_si256((w.scales.as_ptr() as *const __m256i).add(j));
                                    for u in 0..NA {
                                        s1[u][r] = madd(s1[u][r], _mm256_maddubs_epi16(cj, yj[u]), sj);
                                    }
                                }
                            }
                            let d = _mm_load_ps(t.d.as_ptr());
                            let ndmin = _mm_load_ps(t.ndmin.as_ptr());
                            for u in 0..NA {
                                let bs = _mm256_loadu_si256(ys[u].bsums.as_ptr() as *const __m256i);
                                let mins = |r: usize| _mm256_load_si256(t.rows[r].mins.as_ptr() as *const __m256i);
                                let (s1, s2) = if q6 {
                                    // Q6_K's `mins` are `-32 sc`: the correction joins s1's lanes.
                                    let s1: [__m256i; ROWS] = std::array::from_fn(|r| madd(s1[u][r], mins(r), bs));
                                    (reduce4(s1), _mm_setzero_si128())
                                } else {
                                    let e: [__m256i; ROWS] = std::array::from_fn(|r| _mm256_madd_epi16(mins(r), bs));
                                    (reduce4(s1[u]), reduce4(e))
                                };
                                let rr = _mm_fmadd_ps(ndmin, _mm_cvtepi32_ps(s2), _mm_mul_ps(_mm_cvtepi32_ps(s1), d));
                                acc[u] = _mm_fmadd_ps(rr, _mm_set1_ps(ys[u].d), acc[u]);
                            }
                        }
                    }
                    std::array::from_fn(|u| {
                        let mut out = [0f32; ROWS];
                        // SAFETY: 4 floats.
                        unsafe { _mm_storeu_ps(out.as_mut_ptr(), acc[u]) };
                        out
                    })
                }
            }
        };
    }

    ktile!(
        avx2,
        "avx2,fma,f16c",
        #[inline]
        #[target_feature(enable = "avx2,fma,f16c")]
        fn madd(acc: __m256i, p: __m256i, s: __m256i) -> __m256i {
            _mm256_add_epi32(acc, _mm256_madd_epi16(p, s))
        }
    );

    ktile!(
        vnni,
        "avx2,fma,f16c,avxvnni",
        #[inline]
        #[target_feature(enable = "avx2,fma,f16c,avxvnni")]
        #[allow(clippy::incompatible_msrv)]
        fn madd(acc: __m256i, p: __m256i, s: __m256i) -> __m256i {
            _mm256_dpwssd_avx_epi32(acc, p, s)
        }
    );

    ktile!(
        vnni512,
        "avx2,fma,f16c,avx512f,avx512vl,avx512bw,avx512vnni",
        /// One EVEX `vpdpwssd` in inline assembly: LLVM rewrites the intrinsic's chain into
        /// `vpmaddwd` + `vpaddd` (two instructions; 140 of 156 in this kernel were split).
        #[inline]
        #[target_feature(enable = "avx2,fma,f16c,avx512f,avx512vl,avx512bw,avx512vnni")]
        fn madd(acc: __m256i, p: __m256i, s: __m256i) -> __m256i {
            let mut acc = acc;
            // SAFETY: register-only instruction of AVX-512 VNNI + VL (this function's features).
            unsafe {
                std::arch::asm!(
                    "vpdpwssd {a:y}, {p:y}, {s:y}",
                    a = inout(zmm_reg) acc,
                    p = in(zmm_reg) p,
                    s = in(zmm_reg) s,
                    options(pure, nomem, nostack, preserves_flags)
                )
            };
            acc
        }
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu_fast::act::quantize_q8k;
    use crate::cpu_fast::dot::dot_k_tiled;
    use crate::cpu_fast::matmul::Isa;
    use rstest::rstest;

    fn rng(seed: u64) -> impl FnMut() -> u64 {
        let mut s = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
        move || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            s
        }
    }

    /// Random blocks; the f16 fields get small normal values (`extreme`: codes and scales at
    /// their largest, to reach the widest integer sums).
    fn blocks(ty: GgmlType, nb: usize, seed: u64, extreme: bool) -> Vec<u8> {
        let ts = ty.type_size();
        let mut r = rng(seed);
        let fill = if extreme { 0xff } else { 0 };
        let mut b: Vec<u8> = (0..nb * ts).map(|_| if extreme { fill } else { (r() >> 40) as u8 }).collect();
        let f16s: &[usize] = if ty == GgmlType::Q6_K { &[208] } else { &[0, 2] };
        for blk in b.chunks_exact_mut(ts) {
            if extreme && ty == GgmlType::Q6_K {
                // Scales -128 (i8): the largest magnitude.
                blk[192..208].fill(0x80);
            }
            for &at in f16s {
                let v = half::f16::from_f32(0.001 + (r() % 1000) as f32 / 20_000.0);
                blk[at..at + 2].copy_from_slice(&v.to_bits().to_le_bytes());
            }
        }
        b
    }

    fn isas() -> Vec<Isa> {
        let s = crate::cpu_fast::simd::has_avx2;
        let mut v = vec![Isa::Scalar];
        if s() {
            v.push(Isa::Avx2);
        }
        if crate::cpu_fast::simd::has_avxvnni() {
            v.push(Isa::Vnni);
        }
        if crate::cpu_fast::simd::has_vnni512() {
            v.push(Isa::Vnni512);
        }
        v
    }

    /// Every ISA's tile product equals `dot_k_tiled` (the scalar formula, itself checked against
    /// the dequantized product in `dot.rs` and against llama.cpp through the `models` suite).
    #[rstest]
    #[case::q4_k(GgmlType::Q4_K)]
    #[case::q5_k(GgmlType::Q5_K)]
    #[case::q6_k(GgmlType::Q6_K)]
    fn tile_equals_the_tiled_formula(
        #[case] ty: GgmlType,
        #[values(1, 3, 8)] nb: usize,
        #[values(0, 1)] seed: u64,
        #[values(false, true)] extreme: bool,
    ) {
        let ts = ty.type_size();
        let w = blocks(ty, ROWS * nb, seed, extreme);
        let rows: [&[u8]; ROWS] = std::array::from_fn(|r| &w[r * nb * ts..(r + 1) * nb * ts]);
        let mut tile = Tile::default();
        tile.unpack(ty, &rows);
        let mut r = rng(seed + 7);
        for row in 0..3 {
            let x: Vec<f32> = (0..nb * QK_K)
                .map(|i| {
                    if extreme && row == 0 {
                        if i % 3 == 0 {
                            -1.0
                        } else {
                            1.0
                        }
                    } else {
                        (r() % 2001) as f32 / 1000.0 - 1.0
                    }
                })
                .collect();
            let mut a = vec![Q8KBlock::default(); nb];
            quantize_q8k(&x, &mut a);
            let want: [f32; ROWS] = std::array::from_fn(|i| dot_k_tiled(ty, rows[i], &a));
            for isa in isas() {
                let got = tile.dot(isa, &a);
                assert_eq!(got.map(f32::to_bits), want.map(f32::to_bits), "{isa:?} {ty} nb {nb} seed {seed} row {row}");
                // Several activation rows at once: each the same as alone.
                let [g0, g1] = tile.dot_n(isa, [&a[..], &a[..]]);
                let [h0, _, _, h3] = tile.dot_n(isa, [&a[..], &a[..], &a[..], &a[..]]);
                for g in [g0, g1, h0, h3] {
                    assert_eq!(g.map(f32::to_bits), want.map(f32::to_bits), "{isa:?} {ty} nb {nb} row {row}: batched");
                }
            }
        }
    }
}
