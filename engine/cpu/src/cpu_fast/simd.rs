//! x86-64 SIMD dot-product kernels (AVX2 + FMA + F16C; a variant with AVX-VNNI), chosen at run
//! time. Each kernel computes `R` weight rows (1 to 4) against one activation row, sharing the
//! activation loads, and is tested against its scalar twin in `dot.rs`:
//! Every kernel is ggml's x86 AVX2 kernel (`ggml-cpu/arch/x86/quants.c`) in structure: the same
//! 8 integer lanes per block (4 adjacent products each), one 8-lane f32 FMA per block with the
//! combined scale, ggml's horizontal sum. The scalar twins in `dot.rs` are written lane by lane,
//! so the SIMD kernels are bit-identical to them (and to llama.cpp's CPU backend).
//!
//! Safety: every kernel is `unsafe` because it reads through raw pointers; the callers in
//! `matmul.rs` pass rows of exactly `a.len()` blocks (checked with `debug_assert!`) and call the
//! module matching [`has_avx2`] / [`has_avxvnni`] / [`has_vnni512`].

use std::sync::OnceLock;

#[cfg(target_arch = "x86_64")]
fn detect() -> (bool, bool, bool) {
    let avx2 = is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") && is_x86_feature_detected!("f16c");
    let vnni = avx2 && is_x86_feature_detected!("avxvnni");
    let vnni512 = avx2
        && is_x86_feature_detected!("avx512f")
        && is_x86_feature_detected!("avx512vl")
        && is_x86_feature_detected!("avx512bw")
        && is_x86_feature_detected!("avx512vnni");
    (avx2, vnni, vnni512)
}

#[cfg(not(target_arch = "x86_64"))]
fn detect() -> (bool, bool, bool) {
    (false, false, false)
}

/// `ORCD_NO_SIMD`: none; `ORCD_NO_AVX512`: not the AVX-512 variant (to compare tiers on one host).
fn features() -> (bool, bool, bool) {
    static F: OnceLock<(bool, bool, bool)> = OnceLock::new();
    *F.get_or_init(|| {
        if std::env::var_os("ORCD_NO_SIMD").is_some() {
            return (false, false, false);
        }
        let (a, v, v512) = detect();
        (a, v, v512 && std::env::var_os("ORCD_NO_AVX512").is_none())
    })
}

/// The f32 lanes of llama.cpp's vector code on this host: 16 where its build takes the AVX-512
/// paths (`__AVX512F__` and `__AVX512DQ__`: softmax, SiLU, `ggml_vec_dot_f16`, tinyBLAS for
/// F16), 8 on AVX2 hosts. `ORCD_NO_AVX512` caps it at 8 (as a `GGML_NATIVE=OFF` AVX2 build);
/// `ORCD_NO_SIMD` does not change it (the scalar code computes the same bits).
pub fn f32_lanes() -> usize {
    static L: OnceLock<usize> = OnceLock::new();
    *L.get_or_init(|| {
        #[cfg(target_arch = "x86_64")]
        let wide = is_x86_feature_detected!("avx512f") && is_x86_feature_detected!("avx512dq");
        #[cfg(not(target_arch = "x86_64"))]
        let wide = false;
        if wide && std::env::var_os("ORCD_NO_AVX512").is_none() {
            16
        } else {
            8
        }
    })
}

/// AVX2, FMA and F16C are present (and `ORCD_NO_SIMD` is not set).
pub fn has_avx2() -> bool {
    features().0
}

/// AVX-VNNI (256-bit `vpdpbusd`, VEX) is present as well.
pub fn has_avxvnni() -> bool {
    features().1
}

/// AVX-512 VNNI with VL and BW (the EVEX `vpdpbusd` on 256-bit registers, and 32 of them: AMD
/// Zen 4 has it without AVX-VNNI).
pub fn has_vnni512() -> bool {
    features().2
}

/// AVX-512 F + VL (32 vector registers for 256-bit code: the 16-lane `half::pv_tiny`).
pub fn has_avx512vl() -> bool {
    static V: OnceLock<bool> = OnceLock::new();
    #[cfg(target_arch = "x86_64")]
    return *V.get_or_init(|| is_x86_feature_detected!("avx512f") && is_x86_feature_detected!("avx512vl"));
    #[cfg(not(target_arch = "x86_64"))]
    return *V.get_or_init(|| false);
}

/// Software prefetch distance of the kernels, bytes ahead in the weight stream
/// (`ORCD_PREFETCH`, default 4096; 0 = off). Decode on the 2-core development VM, 2 threads
/// (docs/perf/NOTES.md): SmolLM2 ~110 tok/s at 512, 150–190 at 4096; gemma-3-270m 56 → 72–77;
/// the Qwen2.5-0.5B-shape Q8_0 file 28 → 32–41 (its DRAM latency wants ~4 KB in flight).
pub fn prefetch_distance() -> usize {
    static P: OnceLock<usize> = OnceLock::new();
    *P.get_or_init(|| std::env::var("ORCD_PREFETCH").ok().and_then(|v| v.parse().ok()).unwrap_or(4096))
}

/// The kernels, generated once per instruction set: `$feat` is the target-feature list and
/// the `$us8` items define `us8(ax, sy)`: Σ of 4 adjacent u8 × i8 products into each i32 lane,
/// and `us8_acc(acc, ax, sy)`: the same added to `acc` (one `vpdpbusd` where VNNI has it).
#[cfg(target_arch = "x86_64")]
macro_rules! kernels {
    ($name:ident, $feat:literal, $($us8:item),+ $(,)?) => {
        pub mod $name {
            #![allow(clippy::missing_safety_doc, clippy::needless_range_loop)]
            use std::arch::x86_64::*;

            use crate::cpu_fast::act::{Q8Block, Q8KBlock};
            use crate::cpu_fast::panel::Q8Codes;


            $($us8)*

            /// Σ of 4 adjacent i8 × i8 products per i32 lane (ggml's sign trick).
            #[inline]
            #[target_feature(enable = $feat)]
            fn i8s(x: __m256i, y: __m256i) -> __m256i {
                us8(_mm256_sign_epi8(x, x), _mm256_sign_epi8(y, x))
            }

            #[inline]
            #[target_feature(enable = $feat)]
            unsafe fn load(p: *const u8) -> __m256i {
                // SAFETY: the caller guarantees 32 readable bytes at `p`.
                unsafe { _mm256_loadu_si256(p as *const __m256i) }
            }

            /// 32 nibbles of 16 bytes: element j < 16 is the low nibble of byte j, j ≥ 16 the high.
            #[inline]
            #[target_feature(enable = $feat)]
            unsafe fn nibbles(p: *const u8) -> __m256i {
                // SAFETY: the caller guarantees 16 readable bytes at `p`.
                let t = unsafe { _mm_loadu_si128(p as *const __m128i) };
                _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(t, 4), t), _mm256_set1_epi8(0x0f))
            }

            /// Spread the 32 bits of the LE u32 at `p` to 32 bytes of 0x00 / 0xff.
            #[inline]
            #[target_feature(enable = $feat)]
            unsafe fn bits(p: *const u8) -> __m256i {
                // SAFETY: the caller guarantees 4 readable bytes at `p`.
                let x = unsafe { (p as *const i32).read_unaligned() };
                let shuf = _mm256_set_epi64x(0x0303030303030303, 0x0202020202020202, 0x0101010101010101, 0);
                let b = _mm256_shuffle_epi8(_mm256_set1_epi32(x), shuf);
                let b = _mm256_or_si256(b, _mm256_set1_epi64x(0x7fbfdfeff7fbfdfe));
                _mm256_cmpeq_epi8(b, _mm256_set1_epi64x(-1))
            }

            /// The f16 at `p`, as f32.
            #[inline]
            #[target_feature(enable = $feat)]
            unsafe fn f16(p: *const u8) -> f32 {
                // SAFETY: the caller guarantees 2 readable bytes at `p`.
                let h = unsafe { (p as *const u16).read_unaligned() };
                _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(i32::from(h))))
            }

            /// The 8 lanes' sum in the panel kernels' order (`hi + lo`, then lanes `0 + 2` and
            /// `1 + 3`, then those two), ggml's `hsum_float_8`.
            #[inline]
            #[target_feature(enable = $feat)]
            pub(crate) fn hsum_ps(x: __m256) -> f32 {
                let r = _mm_add_ps(_mm256_extractf128_ps(x, 1), _mm256_castps256_ps128(x));
                let r = _mm_add_ps(r, _mm_movehl_ps(r, r));
                _mm_cvtss_f32(_mm_add_ss(r, _mm_movehdup_ps(r)))
            }

            /// Shared loop of the symmetric 32-element types: `qx(block_ptr)` gives 32 i8 codes.
            #[inline]
            #[target_feature(enable = $feat)]
            unsafe fn legacy_sym<const R: usize, const TS: usize>(
                w: &[&[u8]; R],
                a: &[Q8Block],
                qx: impl Fn(*const u8) -> __m256i,
                mul: impl Fn(__m256i, __m256i) -> __m256i,
            ) -> [f32; R] {
                let mut acc = [_mm256_setzero_ps(); R];
                let pf = super::prefetch_distance();
                for (ib, y) in a.iter().enumerate() {
                    // SAFETY: `y.qs` has 32 bytes.
                    let qy = unsafe { load(y.qs.as_ptr() as *const u8) };
                    for r in 0..R {
                        // SAFETY: row r holds a.len() blocks of TS bytes.
                        let b = unsafe { w[r].as_ptr().add(ib * TS) };
                        if pf > 0 {
                            // A hint only: prefetching past the end of the row is harmless.
                            _mm_prefetch::<_MM_HINT_T0>(b.wrapping_add(pf) as *const i8);
                        }
                        let d = _mm256_set1_ps(unsafe { f16(b) } * y.d);
                        let q = _mm256_cvtepi32_ps(mul(qx(b), qy));
                        acc[r] = _mm256_fmadd_ps(d, q, acc[r]);
                    }
                }
                acc.map(|v| hsum_ps(v))
            }

            /// Shared loop of the 32-element types with a min (`w = d q + m`, Q8_1 activations).
            #[inline]
            #[target_feature(enable = $feat)]
            unsafe fn legacy_min<const R: usize, const TS: usize>(
                w: &[&[u8]; R],
                a: &[Q8Block],
                qx: impl Fn(*const u8) -> __m256i,
            ) -> [f32; R] {
                let mut acc = [_mm256_setzero_ps(); R];
                let mut summs = [0f32; R];
                let pf = super::prefetch_distance();
                for (ib, y) in a.iter().enumerate() {
                    // SAFETY: `y.qs` has 32 bytes.
                    let qy = unsafe { load(y.qs.as_ptr() as *const u8) };
                    for r in 0..R {
                        // SAFETY: row r holds a.len() blocks of TS bytes.
                        let b = unsafe { w[r].as_ptr().add(ib * TS) };
                        if pf > 0 {
                            // A hint only: prefetching past the end of the row is harmless.
                            _mm_prefetch::<_MM_HINT_T0>(b.wrapping_add(pf) as *const i8);
                        }
                        summs[r] += unsafe { f16(b.add(2)) } * y.s;
                        let d = _mm256_set1_ps(unsafe { f16(b) } * y.d);
                        let q = _mm256_cvtepi32_ps(us8(qx(b), qy));
                        acc[r] = _mm256_fmadd_ps(d, q, acc[r]);
                    }
                }
                std::array::from_fn(|r| hsum_ps(acc[r]) + summs[r])
            }

            #[target_feature(enable = $feat)]
            pub unsafe fn q4_0<const R: usize>(w: &[&[u8]; R], a: &[Q8Block]) -> [f32; R] {
                let qx = |b: *const u8| _mm256_sub_epi8(unsafe { nibbles(b.add(2)) }, _mm256_set1_epi8(8));
                unsafe { legacy_sym::<R, 18>(w, a, qx, |x, y| i8s(x, y)) }
            }

            #[target_feature(enable = $feat)]
            pub unsafe fn q5_0<const R: usize>(w: &[&[u8]; R], a: &[Q8Block]) -> [f32; R] {
                // Where the fifth bit is clear the code is nibble - 16: set the top nibble.
                let qx = |b: *const u8| unsafe {
                    let hi = _mm256_andnot_si256(bits(b.add(2)), _mm256_set1_epi8(0xf0u8 as i8));
                    _mm256_or_si256(nibbles(b.add(6)), hi)
                };
                unsafe { legacy_sym::<R, 22>(w, a, qx, |x, y| i8s(x, y)) }
            }

            #[target_feature(enable = $feat)]
            pub unsafe fn q8_0<const R: usize>(w: &[&[u8]; R], a: &[Q8Block]) -> [f32; R] {
                let qx = |b: *const u8| unsafe { load(b.add(2)) };
                unsafe { legacy_sym::<R, 34>(w, a, qx, |x, y| i8s(x, y)) }
            }

            /// MXFP4 · Q8_0 as ggml's AVX2 `ggml_vec_dot_mxfp4_q8_0` (see `dot::dot_mxfp4`):
            /// codes through the E2M1 table by one byte shuffle, blocks in pairs into two
            /// accumulators (`fma(dy · e8m0_half(e), lanes, acc)`), added and `hsum_float_8`-ed;
            /// an odd last block as `sumf = fma(d, Σ, sumf)`.
            #[target_feature(enable = $feat)]
            pub unsafe fn mxfp4<const R: usize>(w: &[&[u8]; R], a: &[Q8Block]) -> [f32; R] {
                let kv = crate::quant::mxfp4_kvalues();
                // SAFETY: 16 i8 values.
                let values = unsafe { _mm_loadu_si128(kv.as_ptr() as *const __m128i) };
                let m4 = _mm_set1_epi8(0x0f);
                // SAFETY (for the closure's callers): 17 readable bytes at `b`.
                let codes = |b: *const u8| unsafe {
                    let q = _mm_loadu_si128(b.add(1) as *const __m128i);
                    let lo = _mm_shuffle_epi8(values, _mm_and_si128(q, m4));
                    let hi = _mm_shuffle_epi8(values, _mm_and_si128(_mm_srli_epi16(q, 4), m4));
                    _mm256_set_m128i(hi, lo)
                };
                let nb = a.len();
                let mut out = [0f32; R];
                for r in 0..R {
                    let (mut acc1, mut acc2) = (_mm256_setzero_ps(), _mm256_setzero_ps());
                    let mut ib = 0;
                    // SAFETY: row r holds nb blocks of 17 bytes; each y.qs has 32 bytes.
                    unsafe {
                        let lanes = |ib: usize| {
                            let b = w[r].as_ptr().add(ib * 17);
                            let p = i8s(codes(b), load(a[ib].qs.as_ptr() as *const u8));
                            (crate::quant::e8m0_half(*b) * a[ib].d, p)
                        };
                        while ib + 1 < nb {
                            let (d0, p0) = lanes(ib);
                            let (d1, p1) = lanes(ib + 1);
                            acc1 = _mm256_fmadd_ps(_mm256_set1_ps(d0), _mm256_cvtepi32_ps(p0), acc1);
                            acc2 = _mm256_fmadd_ps(_mm256_set1_ps(d1), _mm256_cvtepi32_ps(p1), acc2);
                            ib += 2;
                        }
                        let mut sumf = hsum_ps(_mm256_add_ps(acc1, acc2));
                        if ib < nb {
                            let (d, p) = lanes(ib);
                            sumf = d.mul_add(hsum_i32(p) as f32, sumf);
                        }
                        out[r] = sumf;
                    }
                }
                out
            }

            #[target_feature(enable = $feat)]
            pub unsafe fn q4_1<const R: usize>(w: &[&[u8]; R], a: &[Q8Block]) -> [f32; R] {
                let qx = |b: *const u8| unsafe { nibbles(b.add(4)) };
                unsafe { legacy_min::<R, 20>(w, a, qx) }
            }

            #[target_feature(enable = $feat)]
            pub unsafe fn q5_1<const R: usize>(w: &[&[u8]; R], a: &[Q8Block]) -> [f32; R] {
                let qx = |b: *const u8| unsafe {
                    let hi = _mm256_and_si256(bits(b.add(4)), _mm256_set1_epi8(0x10));
                    _mm256_or_si256(nibbles(b.add(8)), hi)
                };
                unsafe { legacy_min::<R, 24>(w, a, qx) }
            }

            /// Block `b` of a panel (4 rows, layout of `panel.rs`): the rows' f16 scales and
            /// mins as f32 (mins zero but for Q4_1 / Q5_1), and their 32 codes each. `KIND`: 0
            /// Q4_0, 1 Q4_1, 2 Q5_0, 3 Q5_1, 4 Q8_0 stored + 128 (needs `vpdpbusd`: u8 up to
            /// 255), 5 Q8_0 as is (sign trick on the weight), 6 Q8_0 as is with no code −128
            /// (sign trick on the activation).
            #[inline]
            #[target_feature(enable = $feat)]
            unsafe fn panel_block<const KIND: u8>(b: *const u8) -> (__m128, __m128, [__m256i; 4]) {
                let m4 = _mm256_set1_epi8(0x0f);
                let (m_at, h_at, q_at) = match KIND {
                    0 => (0, 0, 8),
                    1 => (8, 0, 16),
                    2 => (0, 8, 24),
                    3 => (8, 16, 32),
                    _ => (0, 0, 8),
                };
                // SAFETY: the caller guarantees a whole block at `b`.
                unsafe {
                    let dw = _mm_cvtph_ps(_mm_loadl_epi64(b as *const __m128i));
                    let mw = if KIND == 1 || KIND == 3 {
                        _mm_cvtph_ps(_mm_loadl_epi64(b.add(m_at) as *const __m128i))
                    } else {
                        _mm_setzero_ps()
                    };
                    let codes: [__m256i; 4] = if KIND >= 4 {
                        std::array::from_fn(|r| load(b.add(q_at + 32 * r)))
                    } else {
                        let v01 = load(b.add(q_at));
                        let v23 = load(b.add(q_at + 32));
                        let mut c = [
                            _mm256_and_si256(v01, m4),
                            _mm256_and_si256(_mm256_srli_epi16(v01, 4), m4),
                            _mm256_and_si256(v23, m4),
                            _mm256_and_si256(_mm256_srli_epi16(v23, 4), m4),
                        ];
                        if KIND == 2 || KIND == 3 {
                            for (r, cr) in c.iter_mut().enumerate() {
                                let h = _mm256_and_si256(bits(b.add(h_at + 4 * r)), _mm256_set1_epi8(0x10));
                                *cr = _mm256_or_si256(*cr, h);
                            }
                        }
                        c
                    };
                    (dw, mw, codes)
                }
            }

            /// Blocks whose scale products [`panel_core`] computes ahead of their integer products
            /// (2 KB of stack with 4 activation rows).
            const SCALE_RUN: usize = 32;

            /// 4 weight rows (block `ib` given by `blk`: scales, mins, codes as
            /// [`panel_block`] returns them; `dw(ib)`: the same scales alone) against `NA`
            /// activation rows (each `a[t]`, all of `nb` blocks). The integer lanes are the row
            /// kernels' (unsigned codes minus `off · Σy` per lane = ggml's signed sums). A block's
            /// codes and scales are unpacked once for all `NA` rows; each (activation row, weight
            /// row) pair gets the same operations in the same order whatever `NA` is, and whether
            /// the codes come from the panel or from an unpacked copy, so the results depend on
            /// neither.
            ///
            /// The scale products `dw[r] · y.d` of a run of [`SCALE_RUN`] blocks are computed and
            /// stored first, then read back by broadcast loads in the products' loop: a store in
            /// that loop, read back at once, held each block's FMAs behind the store-to-load
            /// path (a C replica of this loop on L1-resident data, Zen 4 host, one thread: 1.93 →
            /// 2.20 G pairs/s with the products computed ahead).
            #[inline]
            #[target_feature(enable = $feat)]
            unsafe fn panel_core<const KIND: u8, const NA: usize>(
                nb: usize,
                dw: impl Fn(usize) -> __m128,
                blk: impl Fn(usize) -> (__m128, __m128, [__m256i; 4]),
                a: &[&[Q8Block]; NA],
                gs: *const f32,
            ) -> [[f32; 4]; NA] {
                let mut acc = [[_mm256_setzero_ps(); 4]; NA];
                let mut summs = [_mm_setzero_ps(); NA];
                let ones = _mm256_set1_epi8(1);
                let off: i32 = match KIND {
                    0 => 8,
                    2 => 16,
                    4 => 128,
                    _ => 0,
                };
                // Not zeroed (a memset per call): each run writes what it then reads.
                let mut dsl = std::mem::MaybeUninit::<[[[f32; 4]; NA]; SCALE_RUN]>::uninit();
                let dsp = dsl.as_mut_ptr() as *mut f32;
                let at = |j: usize, t: usize, r: usize| (j * NA + t) * 4 + r;
                let mut ib0 = 0;
                while ib0 < nb {
                    // One activation row (decode streams the weights once): block by block, the
                    // scales not read ahead of the codes (matvec 4864 × 896 Q8_0 from DRAM,
                    // 6 alternating runs: medians 0.096 ms vs 0.111 ms with runs of 32).
                    let run = (if NA == 1 { 1 } else { SCALE_RUN }).min(nb - ib0);
                    for j in 0..run {
                        let d = dw(ib0 + j);
                        if NA % 2 == 0 && !gs.is_null() {
                            // Two rows' 4 products a multiply: [dw ×2] · [d_t ×4, d_t+1 ×4] from
                            // the group scales (dense: no activation block touched here).
                            let d2 = _mm256_set_m128(d, d);
                            for h in 0..NA / 2 {
                                // SAFETY: gs holds nb · NA · 4 floats (the caller's contract);
                                // 8 floats inside dsl (j < SCALE_RUN, 2h + 1 < NA).
                                unsafe {
                                    let y = _mm256_loadu_ps(gs.add(((ib0 + j) * NA + 2 * h) * 4));
                                    _mm256_storeu_ps(dsp.add(at(j, 2 * h, 0)), _mm256_mul_ps(d2, y));
                                }
                            }
                            continue;
                        }
                        for t in 0..NA {
                            // SAFETY: every a[t] has nb blocks (the caller's contract); 4 floats
                            // inside dsl (j < SCALE_RUN, t < NA).
                            unsafe {
                                let y = a[t].get_unchecked(ib0 + j);
                                _mm_storeu_ps(dsp.add(at(j, t, 0)), _mm_mul_ps(d, _mm_set1_ps(y.d)));
                            }
                        }
                    }
                    // Read through memory (else the compiler may turn the loads into shuffles).
                    let dsm = std::hint::black_box(dsp as *const f32);
                    for j in 0..run {
                        let ib = ib0 + j;
                        let (_, mw, codes) = blk(ib);
                        for t in 0..NA {
                            // SAFETY: every a[t] has nb blocks (the caller's contract) of 32 code bytes.
                            let y = unsafe { a[t].get_unchecked(ib) };
                            let qy = unsafe { load(y.qs.as_ptr() as *const u8) };
                            // KIND 6: |y| once for the 4 rows; each pair is then |y| · sign(w, y),
                            // the same products as ggml's |w| · sign(y, w): no w is −128 (the panel
                            // checked), and a y of −128 (a subnormal block scale) has |y| = 128 as
                            // the u8 operand, as ggml's |w| would; pair sums stay within i16.
                            let ay = if KIND == 6 { _mm256_sign_epi8(qy, qy) } else { qy };
                            // −off · Σy per lane, the accumulator the products start from (the same
                            // integers as subtracting it after: i32 sums far from overflow).
                            let negcorr = if off != 0 {
                                _mm256_sub_epi32(
                                    _mm256_setzero_si256(),
                                    _mm256_sll_epi32(us8(ones, qy), _mm_cvtsi32_si128(off.trailing_zeros() as i32)),
                                )
                            } else {
                                _mm256_setzero_si256()
                            };
                            if KIND == 1 || KIND == 3 {
                                summs[t] = _mm_add_ps(summs[t], _mm_mul_ps(mw, _mm_set1_ps(y.s)));
                            }
                            for r in 0..4 {
                                let lanes = match KIND {
                                    5 => i8s(codes[r], qy),
                                    6 => us8(ay, _mm256_sign_epi8(codes[r], qy)),
                                    _ => us8_acc(negcorr, codes[r], qy),
                                };
                                // The scale by a broadcast load: the load ports, not the shuffle
                                // unit the products compete for.
                                // SAFETY: written by this run's first loop.
                                let scale = unsafe { _mm256_broadcast_ss(&*dsm.add(at(j, t, r))) };
                                acc[t][r] = _mm256_fmadd_ps(scale, _mm256_cvtepi32_ps(lanes), acc[t][r]);
                            }
                        }
                    }
                    ib0 += run;
                }
                std::array::from_fn(|t| {
                    let mut sm = [0f32; 4];
                    // SAFETY: 4 floats.
                    unsafe { _mm_storeu_ps(sm.as_mut_ptr(), summs[t]) };
                    std::array::from_fn(|r| {
                        let h = hsum_ps(acc[t][r]);
                        if KIND == 1 || KIND == 3 {
                            h + sm[r]
                        } else {
                            h
                        }
                    })
                })
            }

            /// One panel (`PBS` bytes per block) against `NA` activation rows, unpacking each
            /// block as it goes (one or a few activation rows: decode).
            #[inline]
            #[target_feature(enable = $feat)]
            unsafe fn panel<const PBS: usize, const KIND: u8, const NA: usize>(
                p: *const u8,
                a: &[&[Q8Block]; NA],
                gs: *const f32,
            ) -> [[f32; 4]; NA] {
                let pf = super::prefetch_distance();
                let blk = |ib: usize| {
                    // SAFETY: the panel holds nb blocks of PBS bytes (the caller's contract).
                    unsafe {
                        let b = p.add(ib * PBS);
                        if pf > 0 {
                            let mut off = 0;
                            while off < PBS {
                                _mm_prefetch::<_MM_HINT_T0>(b.wrapping_add(pf + off) as *const i8);
                                off += 64;
                            }
                        }
                        panel_block::<KIND>(b)
                    }
                };
                // SAFETY: as blk, the scales alone.
                let dw = |ib: usize| unsafe { _mm_cvtph_ps(_mm_loadl_epi64(p.add(ib * PBS) as *const __m128i)) };
                // SAFETY: forwarded.
                unsafe { panel_core::<KIND, NA>(a[0].len(), dw, blk, a, gs) }
            }

            /// Bytes of one block of an unpacked panel ([`unpack4`]): 4 scales, 4 mins (f32),
            /// 4 × 32 code bytes.
            pub const UNPACKED_BLOCK: usize = 160;

            #[inline]
            #[target_feature(enable = $feat)]
            unsafe fn unpack_kind<const PBS: usize, const KIND: u8>(p: *const u8, nb: usize, out: *mut u8) {
                for ib in 0..nb {
                    // SAFETY: the caller's contract (nb blocks at p, nb · UNPACKED_BLOCK at out).
                    unsafe {
                        let (dw, mw, codes) = panel_block::<KIND>(p.add(ib * PBS));
                        let o = out.add(ib * UNPACKED_BLOCK);
                        _mm_storeu_ps(o as *mut f32, dw);
                        _mm_storeu_ps(o.add(16) as *mut f32, mw);
                        for (r, c) in codes.iter().enumerate() {
                            _mm256_storeu_si256(o.add(32 + 32 * r) as *mut __m256i, *c);
                        }
                    }
                }
            }

            #[inline]
            #[target_feature(enable = $feat)]
            unsafe fn unpacked<const KIND: u8, const NA: usize>(
                u: *const u8,
                a: &[&[Q8Block]; NA],
                gs: *const f32,
            ) -> [[f32; 4]; NA] {
                let blk = |ib: usize| {
                    // SAFETY: the caller's contract: a[t].len() unpacked blocks at u.
                    unsafe {
                        let o = u.add(ib * UNPACKED_BLOCK);
                        let codes = std::array::from_fn(|r| load(o.add(32 + 32 * r)));
                        (_mm_loadu_ps(o as *const f32), _mm_loadu_ps(o.add(16) as *const f32), codes)
                    }
                };
                // SAFETY: as blk, the scales alone.
                let dw = |ib: usize| unsafe { _mm_loadu_ps(u.add(ib * UNPACKED_BLOCK) as *const f32) };
                // SAFETY: forwarded.
                unsafe { panel_core::<KIND, NA>(a[0].len(), dw, blk, a, gs) }
            }

            /// Unpack `nb` blocks of a panel of `ty` (`q8`: how Q8_0 codes are stored) to
            /// `nb · UNPACKED_BLOCK` bytes at `out`, for [`unpacked4n`]: a batch of many
            /// activation rows then pays the unpacking once, not once per row group.
            ///
            /// # Safety
            /// The CPU has this module's features; `p` points at a whole panel of `nb` blocks,
            /// `out` at `nb · UNPACKED_BLOCK` writable bytes.
            #[target_feature(enable = $feat)]
            pub unsafe fn unpack4(ty: crate::gguf::GgmlType, q8: Q8Codes, p: *const u8, nb: usize, out: *mut u8) {
                use crate::gguf::GgmlType as T;
                // SAFETY: forwarded.
                unsafe {
                    match ty {
                        T::Q4_0 => unpack_kind::<72, 0>(p, nb, out),
                        T::Q4_1 => unpack_kind::<80, 1>(p, nb, out),
                        T::Q5_0 => unpack_kind::<88, 2>(p, nb, out),
                        T::Q5_1 => unpack_kind::<96, 3>(p, nb, out),
                        _ => match q8 {
                            Q8Codes::Biased => unpack_kind::<136, 4>(p, nb, out),
                            Q8Codes::Signed => unpack_kind::<136, 5>(p, nb, out),
                            Q8Codes::SignedNoMin => unpack_kind::<136, 6>(p, nb, out),
                        },
                    }
                }
            }

            /// [`panel4n`] on a panel unpacked by [`unpack4`] (the same results).
            ///
            /// # Safety
            /// The CPU has this module's features; `u` points at `a[t].len()` unpacked blocks of
            /// `ty` (the same `q8`), the same length for every `t`; `gs` is null or points at the
            /// rows' group scales (`nb · NA · 4` floats, see [`panel4n`]).
            #[target_feature(enable = $feat)]
            pub unsafe fn unpacked4n<const NA: usize>(
                ty: crate::gguf::GgmlType,
                q8: Q8Codes,
                u: *const u8,
                a: &[&[Q8Block]; NA],
                gs: *const f32,
            ) -> [[f32; 4]; NA] {
                use crate::gguf::GgmlType as T;
                // SAFETY: forwarded.
                unsafe {
                    match ty {
                        T::Q4_0 => unpacked::<0, NA>(u, a, gs),
                        T::Q4_1 => unpacked::<1, NA>(u, a, gs),
                        T::Q5_0 => unpacked::<2, NA>(u, a, gs),
                        T::Q5_1 => unpacked::<3, NA>(u, a, gs),
                        _ => match q8 {
                            Q8Codes::Biased => unpacked::<4, NA>(u, a, gs),
                            Q8Codes::Signed => unpacked::<5, NA>(u, a, gs),
                            Q8Codes::SignedNoMin => unpacked::<6, NA>(u, a, gs),
                        },
                    }
                }
            }

            /// The panel kernel for `ty` (see `panel.rs`; `q8`: how Q8_0 codes are stored) against
            /// `NA` activation rows at once (the panel's blocks unpacked once for all of them;
            /// each row's results are the same whatever `NA` is). `gs`: null, or the rows'
            /// group scales — per block, each row's `y.d` 4 times (`matmul::group_scales`) — from
            /// which an even `NA` takes two rows' scale products a multiply (the same products).
            ///
            /// # Safety
            /// The CPU has this module's features; `p` points at a whole panel of `a[t].len()`
            /// blocks of `ty`, the same for every `t`; `gs` is null or points at `nb · NA · 4`
            /// floats, the rows' group scales.
            #[target_feature(enable = $feat)]
            pub unsafe fn panel4n<const NA: usize>(
                ty: crate::gguf::GgmlType,
                q8: Q8Codes,
                p: *const u8,
                a: &[&[Q8Block]; NA],
                gs: *const f32,
            ) -> [[f32; 4]; NA] {
                use crate::gguf::GgmlType as T;
                // SAFETY: forwarded.
                unsafe {
                    match ty {
                        T::Q4_0 => panel::<72, 0, NA>(p, a, gs),
                        T::Q4_1 => panel::<80, 1, NA>(p, a, gs),
                        T::Q5_0 => panel::<88, 2, NA>(p, a, gs),
                        T::Q5_1 => panel::<96, 3, NA>(p, a, gs),
                        _ => match q8 {
                            Q8Codes::Biased => panel::<136, 4, NA>(p, a, gs),
                            Q8Codes::Signed => panel::<136, 5, NA>(p, a, gs),
                            Q8Codes::SignedNoMin => panel::<136, 6, NA>(p, a, gs),
                        },
                    }
                }
            }

            /// Bytes of one block of a panel widened by [`unpack_w16`]: the 4 rows'
            /// scales (f32) twice (one 8-lane multiply gives two activation rows' products), then
            /// per row its 16 even-indexed codes and its 16 odd-indexed codes as i16.
            pub const W16_BLOCK: usize = 32 + 4 * 64;

            /// Even and odd bytes of 32 i8 codes, each sign-extended to 16 i16 (word `j`: byte
            /// `2j`, resp. `2j + 1`).
            #[inline]
            #[target_feature(enable = $feat)]
            fn even_odd(x: __m256i) -> (__m256i, __m256i) {
                (_mm256_srai_epi16(_mm256_slli_epi16(x, 8), 8), _mm256_srai_epi16(x, 8))
            }

            /// Bytes of one activation block widened by [`widen_acts_w16`]: its 16 even-indexed
            /// codes, then its 16 odd-indexed codes, as i16.
            pub const W16_ACT: usize = 64;

            /// Widen the codes of `a` (Q8_0 activation blocks) to `a.len() · W16_ACT` bytes at
            /// `codes`, for [`w16_blocks`]: once per matmul instead of once per weight panel.
            ///
            /// # Safety
            /// The CPU has this module's features; `codes` points at `a.len() · W16_ACT`
            /// writable bytes.
            #[target_feature(enable = $feat)]
            pub unsafe fn widen_acts_w16(a: &[Q8Block], codes: *mut u8) {
                for (i, y) in a.iter().enumerate() {
                    // SAFETY: 32 codes in y; W16_ACT bytes at codes + i · W16_ACT (the contract).
                    unsafe {
                        let (e, o) = even_odd(load(y.qs.as_ptr() as *const u8));
                        _mm256_storeu_si256(codes.add(i * W16_ACT) as *mut __m256i, e);
                        _mm256_storeu_si256(codes.add(i * W16_ACT + 32) as *mut __m256i, o);
                    }
                }
            }

            /// Widen `nb` blocks of a Q4_0, Q5_0 or Q8_0 panel (Q8_0: signed codes as in the
            /// file, `Q8Codes::Signed` or `SignedNoMin`) to `nb · W16_BLOCK` bytes at `out`, for
            /// [`w16_blocks`]: the codes as signed values (Q4_0's minus 8, Q5_0's minus 16: the
            /// values ggml's sums are of).
            ///
            /// # Safety
            /// The CPU has this module's features; `p` points at `nb` blocks of a panel of type
            /// `ty` (Q8_0 with signed codes), `out` at `nb · W16_BLOCK` writable bytes.
            #[target_feature(enable = $feat)]
            pub unsafe fn unpack_w16(ty: crate::gguf::GgmlType, p: *const u8, nb: usize, out: *mut u8) {
                use crate::gguf::GgmlType as T;
                // SAFETY: forwarded.
                unsafe {
                    match ty {
                        T::Q4_0 => unpack_w16_kind::<72, 0>(p, nb, out),
                        T::Q5_0 => unpack_w16_kind::<88, 2>(p, nb, out),
                        _ => unpack_w16_kind::<136, 5>(p, nb, out),
                    }
                }
            }

            /// [`unpack_w16`] for one panel layout (`PBS` bytes a block, [`panel_block`]'s `KIND`).
            #[inline]
            #[target_feature(enable = $feat)]
            unsafe fn unpack_w16_kind<const PBS: usize, const KIND: u8>(p: *const u8, nb: usize, out: *mut u8) {
                let off = _mm256_set1_epi8(match KIND {
                    0 => 8,
                    2 => 16,
                    _ => 0,
                });
                for ib in 0..nb {
                    // SAFETY: the caller's contract (PBS bytes a panel block at p, W16_BLOCK at out).
                    unsafe {
                        let (d, _, codes) = panel_block::<KIND>(p.add(ib * PBS));
                        let o = out.add(ib * W16_BLOCK);
                        _mm_storeu_ps(o as *mut f32, d);
                        _mm_storeu_ps(o.add(16) as *mut f32, d);
                        for (r, c) in codes.iter().enumerate() {
                            let (e, od) = even_odd(_mm256_sub_epi8(*c, off));
                            _mm256_storeu_si256(o.add(32 + 64 * r) as *mut __m256i, e);
                            _mm256_storeu_si256(o.add(64 + 64 * r) as *mut __m256i, od);
                        }
                    }
                }
            }

            /// Blocks `ib0..ib1` of a panel widened by [`unpack_w16`] (`u`: block `ib0`)
            /// against `NA` activation rows widened by [`widen_acts_w16`] (`yw[t]`: the codes of
            /// row `t`'s block 0; `ys`: the group's scales, block by block each row's scale 4
            /// times, as `matmul::widen_acts` lays them out), continuing the accumulators in `state`
            /// (lane by lane, as [`panel_core`] keeps them; [`w16_finish`] sums them as it does;
            /// from zero where `ib0` is 0). A row's blocks may so come in chunks that fit L1, each
            /// chunk widened once for all the activation rows, with the same operations in the
            /// same order as in one pass. Generated for every ISA; only the AVX2 tier calls it
            /// (with VNNI a pair is one `vpdpbusd`).
            ///
            /// ggml's integer lanes (lane `k`: Σ of the products of elements `4k..4k + 4`) come
            /// from two `vpmaddwd` on i16 operands, one of the even elements (`4k`, `4k + 2`), one
            /// of the odd, added; then the same scale products and FMAs as [`panel_core`], so the
            /// results are bit-identical to the panel kernels (and to ggml). Without VNNI this
            /// is 2 `vpmaddwd` a pair where the u8 × i8 form needs `vpsignb` + `vpmaddubsw` +
            /// `vpmaddwd`, all on the two pipes the FMA also takes on Zen 4; both operands come
            /// widened (the weights once per matmul and chunk, the activation once per matmul:
            /// in registers, its 3 shifts a block took the pipes of the conversion). Any i8 code,
            /// −128 included (no i16 product sum can saturate `vpmaddwd`).
            ///
            /// # Safety
            /// The CPU has this module's features; `u` points at `ib1 − ib0` widened blocks,
            /// every `yw[t]` at `ib1` widened blocks, `ys` at `ib1 · NA · 4` floats.
            #[inline]
            #[target_feature(enable = $feat)]
            pub unsafe fn w16_blocks<const NA: usize>(
                u: *const u8,
                yw: &[*const u8; NA],
                ys: *const f32,
                ib0: usize,
                ib1: usize,
                state: &mut [[[f32; 8]; 4]; NA],
            ) {
                // From zero at a row's first block (`state` then unread: its old contents are
                // whatever a previous panel left), else continued. SAFETY: 8 floats each.
                let mut acc: [[__m256; 4]; NA] = std::array::from_fn(|t| {
                    std::array::from_fn(|r| {
                        if ib0 == 0 { _mm256_setzero_ps() } else { unsafe { _mm256_loadu_ps(state[t][r].as_ptr()) } }
                    })
                });
                // Not zeroed: each run writes what it then reads (see panel_core).
                let mut dsl = std::mem::MaybeUninit::<[[[f32; 4]; NA]; SCALE_RUN]>::uninit();
                let dsp = dsl.as_mut_ptr() as *mut f32;
                let at = |j: usize, t: usize, r: usize| (j * NA + t) * 4 + r;
                let mut j0 = 0;
                let nb = ib1.saturating_sub(ib0);
                while j0 < nb {
                    let run = SCALE_RUN.min(nb - j0);
                    for j in 0..run {
                        // SAFETY: the caller's contract (nb widened blocks at u; ib1 blocks in
                        // every row); 4 floats inside dsl (j < SCALE_RUN, t < NA).
                        unsafe {
                            let w = u.add((j0 + j) * W16_BLOCK) as *const f32;
                            let y = ys.add((ib0 + j0 + j) * NA * 4);
                            if NA == 2 {
                                // Both rows' 4 products in one: [dw ×2] · [d_0 ×4, d_1 ×4].
                                _mm256_storeu_ps(dsp.add(at(j, 0, 0)), _mm256_mul_ps(_mm256_loadu_ps(w), _mm256_loadu_ps(y)));
                            } else {
                                for t in 0..NA {
                                    let p = _mm_mul_ps(_mm_loadu_ps(w), _mm_loadu_ps(y.add(4 * t)));
                                    _mm_storeu_ps(dsp.add(at(j, t, 0)), p);
                                }
                            }
                        }
                    }
                    let dsm = std::hint::black_box(dsp as *const f32);
                    for j in 0..run {
                        // SAFETY: as above (W16_ACT bytes a block in every row).
                        let (ye, yo): ([__m256i; NA], [__m256i; NA]) = unsafe {
                            let p: [*const u8; NA] = std::array::from_fn(|t| yw[t].add((ib0 + j0 + j) * W16_ACT));
                            (std::array::from_fn(|t| load(p[t])), std::array::from_fn(|t| load(p[t].add(32))))
                        };
                        // SAFETY: W16_BLOCK bytes of this block at u (the caller's contract).
                        let b = unsafe { u.add((j0 + j) * W16_BLOCK + 32) };
                        for r in 0..4 {
                            for t in 0..NA {
                                // SAFETY: inside the block; dsl written by this run's first loop.
                                unsafe {
                                    let we = load(b.add(64 * r));
                                    let wo = load(b.add(64 * r + 32));
                                    let lanes = _mm256_add_epi32(_mm256_madd_epi16(ye[t], we), _mm256_madd_epi16(yo[t], wo));
                                    let scale = _mm256_broadcast_ss(&*dsm.add(at(j, t, r)));
                                    acc[t][r] = _mm256_fmadd_ps(scale, _mm256_cvtepi32_ps(lanes), acc[t][r]);
                                }
                            }
                        }
                    }
                    j0 += run;
                }
                for t in 0..NA {
                    for r in 0..4 {
                        // SAFETY: 8 floats.
                        unsafe { _mm256_storeu_ps(state[t][r].as_mut_ptr(), acc[t][r]) };
                    }
                }
            }

            /// [`w16_blocks`] for `pairs` consecutive pairs of activation rows in one call: pair
            /// `g` is rows `2g`, `2g + 1` (their codes from `yw0`, `row` bytes a row; their group
            /// scales from `ys0`, `nb · 8` floats a pair), its accumulators `state[g]`. Where
            /// `fin` is not null (this chunk ends the rows), each pair's outputs are reduced
            /// ([`w16_finish`]) into `fin[g]` at once, from the accumulators just computed.
            ///
            /// # Safety
            /// As [`w16_blocks`] for every pair; `state` points at `pairs` accumulator sets,
            /// `fin` (if not null) at `pairs` writable outputs.
            #[allow(clippy::too_many_arguments)]
            #[target_feature(enable = $feat)]
            pub unsafe fn w16_pairs(
                u: *const u8,
                yw0: *const u8,
                row: usize,
                ys0: *const f32,
                nb: usize,
                pairs: usize,
                ib0: usize,
                ib1: usize,
                state: *mut [[[f32; 8]; 4]; 2],
                fin: *mut [[f32; 4]; 2],
            ) {
                for g in 0..pairs {
                    let t = 2 * g;
                    // SAFETY: the caller's contract.
                    unsafe {
                        let st = &mut *state.add(g);
                        w16_blocks::<2>(u, &[yw0.add(t * row), yw0.add((t + 1) * row)], ys0.add(t * nb * 4), ib0, ib1, st);
                        if !fin.is_null() {
                            *fin.add(g) = w16_finish(st);
                        }
                    }
                }
            }

            /// The 4 outputs of each activation row from [`w16_blocks`]'s accumulators (the
            /// reduction of [`panel_core`]).
            #[inline]
            #[target_feature(enable = $feat)]
            pub fn w16_finish<const NA: usize>(state: &[[[f32; 8]; 4]; NA]) -> [[f32; 4]; NA] {
                // SAFETY: 8 floats each.
                std::array::from_fn(|t| std::array::from_fn(|r| hsum_ps(unsafe { _mm256_loadu_ps(state[t][r].as_ptr()) })))
            }

            /// Σ_{32 elements} (codes × q8) · scale, into i32 lanes (codes u8 ≤ 63: no saturation).
            #[inline]
            #[target_feature(enable = $feat)]
            fn scaled(q: __m256i, y: __m256i, sc: __m256i) -> __m256i {
                _mm256_madd_epi16(_mm256_maddubs_epi16(q, y), sc)
            }

            /// The 6-bit scales and mins of Q4_K / Q5_K (12 bytes at `p`), as in `scale_min_k4`:
            /// unpacked 4 at a time in 32-bit words (ggml's `utmp` / `kmask` steps), widened to
            /// 16-bit by one instruction.
            #[inline]
            #[target_feature(enable = $feat)]
            unsafe fn k4_scales(p: *const u8) -> ([i16; 8], [i16; 8]) {
                // SAFETY: the caller guarantees 12 readable bytes at `p`.
                let s: [u8; 12] = unsafe { (p as *const [u8; 12]).read_unaligned() };
                let u = |i: usize| u32::from_le_bytes([s[4 * i], s[4 * i + 1], s[4 * i + 2], s[4 * i + 3]]);
                let (k1, k2, k3) = (0x3f3f_3f3fu32, 0x0f0f_0f0fu32, 0x0303_0303u32);
                // Bytes of: scales 0..4, scales 4..8, mins 0..4, mins 4..8.
                let w = [
                    u(0) & k1,
                    (u(2) & k2) | (((u(0) >> 6) & k3) << 4),
                    u(1) & k1,
                    ((u(2) >> 4) & k2) | (((u(1) >> 6) & k3) << 4),
                ];
                let v = _mm256_cvtepu8_epi16(_mm_set_epi32(w[3] as i32, w[2] as i32, w[1] as i32, w[0] as i32));
                let mut out = [0i16; 16];
                // SAFETY: 16 i16.
                unsafe { _mm256_storeu_si256(out.as_mut_ptr() as *mut __m256i, v) };
                (std::array::from_fn(|i| out[i]), std::array::from_fn(|i| out[8 + i]))
            }

            /// The mins term of Q4_K / Q5_K in 4 lanes: `m_{2u} q8s_{2u} + m_{2u+1} q8s_{2u+1}`
            /// with `q8s_v = bsum_{2v} + bsum_{2v+1}` (ggml's `hadd` + `madd`).
            #[inline]
            #[target_feature(enable = $feat)]
            unsafe fn k4_mins(m: &[i16; 8], y: &Q8KBlock) -> __m128 {
                // SAFETY: 16 i16 bsums and 8 i16 mins are readable.
                unsafe {
                    let bs = _mm256_loadu_si256(y.bsums.as_ptr() as *const __m256i);
                    let q8s = _mm_hadd_epi16(_mm256_castsi256_si128(bs), _mm256_extracti128_si256(bs, 1));
                    let mv = _mm_loadu_si128(m.as_ptr() as *const __m128i);
                    _mm_cvtepi32_ps(_mm_madd_epi16(mv, q8s))
                }
            }

            #[inline]
            #[target_feature(enable = $feat)]
            fn hsum4(x: __m128) -> f32 {
                let r = _mm_add_ps(x, _mm_movehl_ps(x, x));
                _mm_cvtss_f32(_mm_add_ss(r, _mm_movehdup_ps(r)))
            }

            /// Q4_K / Q5_K: `hi(b)` gives the fifth bits of chunk j's low / high halves (zero for Q4_K).
            /// `MODE`: 0 = Q4_K vec_dot (mins in 4 lanes), 1 = Q5_K vec_dot (mins as one scalar
            /// FMA per super-block), 2 = llama.cpp's tiled formula (integer totals, see
            /// `dot::dot_k_tiled`).
            #[inline]
            #[target_feature(enable = $feat)]
            unsafe fn k4_like<const R: usize, const TS: usize, const QS: usize, const MODE: u8>(
                w: &[&[u8]; R],
                a: &[Q8KBlock],
                hi: impl Fn(*const u8, usize) -> (__m256i, __m256i),
            ) -> [f32; R] {
                let (mut acc, mut accm) = ([_mm256_setzero_ps(); R], [_mm_setzero_ps(); R]);
                let mut sacc = [0f32; R];
                let m4 = _mm256_set1_epi8(0x0f);
                for (ib, y) in a.iter().enumerate() {
                    let yq = y.qs.as_ptr() as *const u8;
                    for r in 0..R {
                        // SAFETY: row r holds a.len() blocks of TS bytes; y.qs has 256 bytes.
                        unsafe {
                            let b = w[r].as_ptr().add(ib * TS);
                            let pf = super::prefetch_distance();
                            if pf > 0 {
                                // A hint only: prefetching past the end of the row is harmless.
                                for off in (0..TS).step_by(64) {
                                    _mm_prefetch::<_MM_HINT_T0>(b.wrapping_add(pf + off) as *const i8);
                                }
                            }
                            let (sc, m) = k4_scales(b.add(4));
                            let mut sumi = _mm256_setzero_si256();
                            for j in 0..4 {
                                let q = load(b.add(QS + 32 * j));
                                let (hl, hh) = hi(b, j);
                                let lo = _mm256_or_si256(_mm256_and_si256(q, m4), hl);
                                let hi = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(q, 4), m4), hh);
                                let pl = scaled(lo, load(yq.add(64 * j)), _mm256_set1_epi16(sc[2 * j]));
                                let ph = scaled(hi, load(yq.add(64 * j + 32)), _mm256_set1_epi16(sc[2 * j + 1]));
                                sumi = _mm256_add_epi32(sumi, _mm256_add_epi32(pl, ph));
                            }
                            if MODE == 2 {
                                let s2: i32 = (0..8)
                                    .map(|s| i32::from(m[s]) * (i32::from(y.bsums[2 * s]) + i32::from(y.bsums[2 * s + 1])))
                                    .sum();
                                let rr = (-f16(b.add(2))).mul_add(s2 as f32, hsum_i32(sumi) as f32 * f16(b));
                                sacc[r] = rr.mul_add(y.d, sacc[r]);
                                continue;
                            }
                            acc[r] = _mm256_fmadd_ps(_mm256_set1_ps(y.d * f16(b)), _mm256_cvtepi32_ps(sumi), acc[r]);
                            if MODE == 1 {
                                let total: i32 = (0..8)
                                    .map(|s| i32::from(m[s]) * (i32::from(y.bsums[2 * s]) + i32::from(y.bsums[2 * s + 1])))
                                    .sum();
                                sacc[r] = (-y.d * f16(b.add(2))).mul_add(total as f32, sacc[r]);
                            } else {
                                let dmin = _mm_set1_ps(-y.d * f16(b.add(2)));
                                accm[r] = _mm_fmadd_ps(dmin, k4_mins(&m, y), accm[r]);
                            }
                        }
                    }
                }
                std::array::from_fn(|r| match MODE {
                    2 => sacc[r],
                    1 => hsum_ps(acc[r]) + sacc[r],
                    _ => hsum_ps(acc[r]) + hsum4(accm[r]),
                })
            }

            #[inline]
            #[target_feature(enable = $feat)]
            fn hsum_i32(x: __m256i) -> i32 {
                let s = _mm_add_epi32(_mm256_castsi256_si128(x), _mm256_extracti128_si256(x, 1));
                let s = _mm_add_epi32(s, _mm_unpackhi_epi64(s, s));
                _mm_cvtsi128_si32(_mm_add_epi32(s, _mm_shuffle_epi32(s, 0b10_11_00_01)))
            }

            /// `TILED`: llama.cpp's tiled formula (batches ≥ 8) instead of vec_dot's.
            #[target_feature(enable = $feat)]
            pub unsafe fn q4_k<const R: usize, const TILED: bool>(w: &[&[u8]; R], a: &[Q8KBlock]) -> [f32; R] {
                let zero = |_: *const u8, _: usize| (_mm256_setzero_si256(), _mm256_setzero_si256());
                if TILED {
                    unsafe { k4_like::<R, 144, 16, 2>(w, a, zero) }
                } else {
                    unsafe { k4_like::<R, 144, 16, 0>(w, a, zero) }
                }
            }

            #[target_feature(enable = $feat)]
            pub unsafe fn q5_k<const R: usize, const TILED: bool>(w: &[&[u8]; R], a: &[Q8KBlock]) -> [f32; R] {
                let one = _mm256_set1_epi8(1);
                let hi = |b: *const u8, j: usize| {
                    // SAFETY: qh is the 32 bytes at offset 16 of the block.
                    let qh = unsafe { load(b.add(16)) };
                    let bit = |k: i32| {
                        let v = _mm256_and_si256(_mm256_srl_epi16(qh, _mm_cvtsi32_si128(k)), one);
                        _mm256_slli_epi16(v, 4)
                    };
                    (bit(2 * j as i32), bit(2 * j as i32 + 1))
                };
                if TILED {
                    unsafe { k4_like::<R, 176, 48, 2>(w, a, hi) }
                } else {
                    unsafe { k4_like::<R, 176, 48, 1>(w, a, hi) }
                }
            }

            #[target_feature(enable = $feat)]
            pub unsafe fn q6_k<const R: usize, const TILED: bool>(w: &[&[u8]; R], a: &[Q8KBlock]) -> [f32; R] {
                let mut acc = [_mm256_setzero_ps(); R];
                let mut sacc = [0f32; R];
                let (m3, m15) = (_mm256_set1_epi8(3), _mm256_set1_epi8(15));
                for (ib, y) in a.iter().enumerate() {
                    let yq = y.qs.as_ptr() as *const u8;
                    // SAFETY: y.bsums has 16 i16.
                    let q8sums = unsafe { _mm256_loadu_si256(y.bsums.as_ptr() as *const __m256i) };
                    for r in 0..R {
                        // SAFETY: row r holds a.len() blocks of 210 bytes; y.qs has 256 bytes.
                        unsafe {
                            let b = w[r].as_ptr().add(ib * 210);
                            let pf = super::prefetch_distance();
                            if pf > 0 {
                                // A hint only: prefetching past the end of the row is harmless.
                                for off in (0..210).step_by(64) {
                                    _mm_prefetch::<_MM_HINT_T0>(b.wrapping_add(pf + off) as *const i8);
                                }
                            }
                            let sc8 = _mm_loadu_si128(b.add(192) as *const __m128i);
                            let sc16 = _mm256_cvtepi8_epi16(sc8);
                            let sub = _mm256_slli_epi32(_mm256_madd_epi16(q8sums, sc16), 5);
                            let mut sumi = _mm256_setzero_si256();
                            for j in 0..2 {
                                let b1 = load(b.add(64 * j));
                                let b2 = load(b.add(64 * j + 32));
                                let h = load(b.add(128 + 32 * j));
                                let h0 = _mm256_slli_epi16(_mm256_and_si256(h, m3), 4);
                                let h1 = _mm256_slli_epi16(_mm256_and_si256(h, _mm256_set1_epi8(12)), 2);
                                let h2 = _mm256_and_si256(h, _mm256_set1_epi8(48));
                                let h3 = _mm256_srli_epi16(_mm256_and_si256(h, _mm256_set1_epi8(-64)), 2);
                                let q = [
                                    _mm256_or_si256(_mm256_and_si256(b1, m15), h0),
                                    _mm256_or_si256(_mm256_and_si256(b2, m15), h1),
                                    _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(b1, 4), m15), h2),
                                    _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(b2, 4), m15), h3),
                                ];
                                for k in 0..4 {
                                    // Scales s (words 0..8) and s + 1 (words 8..16), by one
                                    // byte shuffle as ggml's `get_scale_shuffle`.
                                    let s = (8 * j + 2 * k) as i8;
                                    let pick = _mm_set_epi64x(
                                        i64::from_ne_bytes([(s + 1) as u8; 8]),
                                        i64::from_ne_bytes([s as u8; 8]),
                                    );
                                    let scv = _mm256_cvtepi8_epi16(_mm_shuffle_epi8(sc8, pick));
                                    let p = scaled(q[k], load(yq.add(128 * j + 32 * k)), scv);
                                    sumi = _mm256_add_epi32(sumi, p);
                                }
                            }
                            let sumi = _mm256_sub_epi32(sumi, sub);
                            if TILED {
                                sacc[r] = (hsum_i32(sumi) as f32 * f16(b.add(208))).mul_add(y.d, sacc[r]);
                                continue;
                            }
                            let d = _mm256_set1_ps(y.d * f16(b.add(208)));
                            acc[r] = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(sumi), acc[r]);
                        }
                    }
                }
                if TILED {
                    return sacc;
                }
                acc.map(|v| hsum_ps(v))
            }

            /// Scale words for chunk `(j, k)` of a 16-scale k-quant (`sc8`: one byte a scale):
            /// scale `8j + 2k` for the chunk's first 16 elements, `8j + 2k + 1` for the next 16
            /// (ggml's `get_scale_shuffle_q3k`), sign-extended to 16 bits.
            #[inline]
            #[target_feature(enable = $feat)]
            fn scales16(sc8: __m128i, s: usize) -> __m256i {
                let (lo, hi) = ([s as u8; 8], [s as u8 + 1; 8]);
                let pick = _mm_set_epi64x(i64::from_ne_bytes(hi), i64::from_ne_bytes(lo));
                _mm256_cvtepi8_epi16(_mm_shuffle_epi8(sc8, pick))
            }

            /// Q2_K as ggml's AVX2 `ggml_vec_dot_q2_K_q8_K` (see `dot::dot_q2_k`): per super-block
            /// the mins lanes FMA'd with `-dy·dmin`, then the scale lanes with `dy·d`. `TILED`:
            /// llama.cpp's tiled formula on the same integer totals (`dot::dot_k_tiled`).
            #[target_feature(enable = $feat)]
            pub unsafe fn q2_k<const R: usize, const TILED: bool>(w: &[&[u8]; R], a: &[Q8KBlock]) -> [f32; R] {
                let mut acc = [_mm256_setzero_ps(); R];
                let mut sacc = [0f32; R];
                let (m3, m4) = (_mm256_set1_epi8(3), _mm_set1_epi8(0x0f));
                for (ib, y) in a.iter().enumerate() {
                    let yq = y.qs.as_ptr() as *const u8;
                    // SAFETY: y.bsums has 16 i16.
                    let bsums = unsafe { _mm256_loadu_si256(y.bsums.as_ptr() as *const __m256i) };
                    for r in 0..R {
                        // SAFETY: row r holds a.len() blocks of 84 bytes; y.qs has 256 bytes.
                        unsafe {
                            let b = w[r].as_ptr().add(ib * 84);
                            let ms = _mm_loadu_si128(b as *const __m128i);
                            let sc8 = _mm_and_si128(ms, m4);
                            let mins = _mm256_cvtepi8_epi16(_mm_and_si128(_mm_srli_epi16(ms, 4), m4));
                            let prod = _mm256_madd_epi16(mins, bsums);
                            let mut sumi = _mm256_setzero_si256();
                            for j in 0..2 {
                                let q2 = load(b.add(16 + 32 * j));
                                for k in 0..4 {
                                    let q = _mm256_and_si256(_mm256_srl_epi16(q2, _mm_cvtsi32_si128(2 * k as i32)), m3);
                                    let p = scaled(q, load(yq.add(128 * j + 32 * k)), scales16(sc8, 8 * j + 2 * k));
                                    sumi = _mm256_add_epi32(sumi, p);
                                }
                            }
                            if TILED {
                                let (s1, s2) = (hsum_i32(sumi), hsum_i32(prod));
                                let rr = (-f16(b.add(82))).mul_add(s2 as f32, s1 as f32 * f16(b.add(80)));
                                sacc[r] = rr.mul_add(y.d, sacc[r]);
                                continue;
                            }
                            let dmin = _mm256_set1_ps(-y.d * f16(b.add(82)));
                            acc[r] = _mm256_fmadd_ps(dmin, _mm256_cvtepi32_ps(prod), acc[r]);
                            let d = _mm256_set1_ps(y.d * f16(b.add(80)));
                            acc[r] = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(sumi), acc[r]);
                        }
                    }
                }
                if TILED {
                    return sacc;
                }
                acc.map(|v| hsum_ps(v))
            }

            /// Q3_K as ggml's AVX2 `ggml_vec_dot_q3_K_q8_K` (see `dot::dot_q3_k`): codes as the
            /// low two bits minus 4 where the `hmask` bit is clear (two `maddubs`, subtracted),
            /// scale lanes FMA'd with `dy·d`. `TILED`: llama.cpp's tiled formula.
            #[target_feature(enable = $feat)]
            pub unsafe fn q3_k<const R: usize, const TILED: bool>(w: &[&[u8]; R], a: &[Q8KBlock]) -> [f32; R] {
                let mut acc = [_mm256_setzero_ps(); R];
                let mut sacc = [0f32; R];
                let m3 = _mm256_set1_epi8(3);
                let (k1, k2) = (0x0303_0303u32, 0x0f0f_0f0fu32);
                for (ib, y) in a.iter().enumerate() {
                    let yq = y.qs.as_ptr() as *const u8;
                    for r in 0..R {
                        // SAFETY: row r holds a.len() blocks of 110 bytes; y.qs has 256 bytes.
                        unsafe {
                            let b = w[r].as_ptr().add(ib * 110);
                            // The 16 six-bit scales (ggml's `aux` / `kmask` steps), minus 32.
                            let s: [u8; 12] = (b.add(96) as *const [u8; 12]).read_unaligned();
                            let u = |i: usize| u32::from_le_bytes([s[4 * i], s[4 * i + 1], s[4 * i + 2], s[4 * i + 3]]);
                            let words = [
                                (u(0) & k2) | ((u(2) & k1) << 4),
                                (u(1) & k2) | (((u(2) >> 2) & k1) << 4),
                                ((u(0) >> 4) & k2) | (((u(2) >> 4) & k1) << 4),
                                ((u(1) >> 4) & k2) | (((u(2) >> 6) & k1) << 4),
                            ];
                            let sc8 = _mm_sub_epi8(
                                _mm_set_epi32(words[3] as i32, words[2] as i32, words[1] as i32, words[0] as i32),
                                _mm_set1_epi8(32),
                            );
                            let hm = load(b);
                            let mut sumi = _mm256_setzero_si256();
                            for j in 0..2 {
                                let qb = load(b.add(32 + 32 * j));
                                for k in 0..4 {
                                    let bit = (4 * j + k) as i32;
                                    let lo = _mm256_and_si256(_mm256_srl_epi16(qb, _mm_cvtsi32_si128(2 * k as i32)), m3);
                                    // 4 where the element's hmask bit is clear, else 0.
                                    let clear = _mm256_andnot_si256(hm, _mm256_set1_epi8((1u8 << bit) as i8));
                                    let h4 = _mm256_slli_epi16(_mm256_srl_epi16(clear, _mm_cvtsi32_si128(bit)), 2);
                                    let yv = load(yq.add(128 * j + 32 * k));
                                    let p16 = _mm256_sub_epi16(_mm256_maddubs_epi16(lo, yv), _mm256_maddubs_epi16(h4, yv));
                                    sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(scales16(sc8, 8 * j + 2 * k), p16));
                                }
                            }
                            let d = f16(b.add(108));
                            if TILED {
                                // dot_k_tiled's formula with Q3_K's dmin of 0.
                                let dmin = 0f32;
                                let rr = (-dmin).mul_add(0.0, hsum_i32(sumi) as f32 * d);
                                sacc[r] = rr.mul_add(y.d, sacc[r]);
                                continue;
                            }
                            acc[r] = _mm256_fmadd_ps(_mm256_set1_ps(y.d * d), _mm256_cvtepi32_ps(sumi), acc[r]);
                        }
                    }
                }
                if TILED {
                    return sacc;
                }
                acc.map(|v| hsum_ps(v))
            }
        }
    };
}

#[cfg(target_arch = "x86_64")]
kernels!(
    avx2,
    "avx2,fma,f16c",
    /// maddubs + madd(1): pairs of u8 × i8 in i16 (codes ≤ 128, activations ≤ 127: no saturation).
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    fn us8(ax: __m256i, sy: __m256i) -> __m256i {
        _mm256_madd_epi16(_mm256_maddubs_epi16(ax, sy), _mm256_set1_epi16(1))
    },
    /// `acc + us8(ax, sy)` (wrapping i32 adds: the same integers as the VNNI forms).
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    fn us8_acc(acc: __m256i, ax: __m256i, sy: __m256i) -> __m256i {
        _mm256_add_epi32(acc, us8(ax, sy))
    }
);

#[cfg(target_arch = "x86_64")]
kernels!(
    vnni,
    "avx2,fma,f16c,avxvnni",
    /// One `vpdpbusd` (the intrinsic is stable since Rust 1.89; the workspace declares 1.85 but
    /// is built with the current stable, and this module is only compiled for x86-64).
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c,avxvnni")]
    #[allow(clippy::incompatible_msrv)]
    fn us8(ax: __m256i, sy: __m256i) -> __m256i {
        _mm256_dpbusd_avx_epi32(_mm256_setzero_si256(), ax, sy)
    },
    /// `acc + us8(ax, sy)` in one `vpdpbusd`.
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c,avxvnni")]
    #[allow(clippy::incompatible_msrv)]
    fn us8_acc(acc: __m256i, ax: __m256i, sy: __m256i) -> __m256i {
        _mm256_dpbusd_avx_epi32(acc, ax, sy)
    }
);

#[cfg(target_arch = "x86_64")]
kernels!(
    vnni512,
    "avx2,fma,f16c,avx512f,avx512vl,avx512bw,avx512vnni",
    /// One EVEX `vpdpbusd` (AVX-512 VNNI + VL): the same integer sums as the other variants, and
    /// the kernels may keep their accumulators in all 32 vector registers.
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c,avx512f,avx512vl,avx512bw,avx512vnni")]
    fn us8(ax: __m256i, sy: __m256i) -> __m256i {
        _mm256_dpbusd_epi32(_mm256_setzero_si256(), ax, sy)
    },
    /// `acc + us8(ax, sy)` in one `vpdpbusd`.
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c,avx512f,avx512vl,avx512bw,avx512vnni")]
    fn us8_acc(acc: __m256i, ax: __m256i, sy: __m256i) -> __m256i {
        _mm256_dpbusd_epi32(acc, ax, sy)
    }
);

/// F16 helpers of the attention (AVX2 + F16C), bit-identical twins of
/// [`super::attn::dot_tiny_ref`], [`super::attn::dot_vec_ref`] and [`super::attn::axpy_f16_ref`].
#[cfg(target_arch = "x86_64")]
pub mod half {
    use std::arch::x86_64::*;

    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn cvt8(p: *const u16) -> __m256 {
        // SAFETY: the caller guarantees 8 readable u16 at `p`.
        unsafe { _mm256_cvtph_ps(_mm_loadu_si128(p as *const __m128i)) }
    }

    /// 16 lanes held as (lanes 0..8, lanes 8..16) → ggml's 16-lane reduction.
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    fn reduce16(lo: __m256, hi: __m256) -> f32 {
        let a = _mm256_add_ps(hi, lo);
        let r = _mm_add_ps(_mm256_extractf128_ps(a, 1), _mm256_castps256_ps128(a));
        let r = _mm_add_ps(r, _mm_movehl_ps(r, r));
        _mm_cvtss_f32(_mm_add_ss(r, _mm_movehdup_ps(r)))
    }

    /// 8 lanes as sgemm's and softmax's `hsum` (`hsum_float_8`'s order).
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    fn hsum8(a: __m256) -> f32 {
        let r = _mm_add_ps(_mm256_extractf128_ps(a, 1), _mm256_castps256_ps128(a));
        let r = _mm_add_ps(r, _mm_movehl_ps(r, r));
        _mm_cvtss_f32(_mm_add_ss(r, _mm_movehdup_ps(r)))
    }

    /// `GGML_F32x8_REDUCE`'s last step: halves added, then two `hadd`s.
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    fn reduce8_hadd(a: __m256) -> f32 {
        let t0 = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
        let t1 = _mm_hadd_ps(t0, t0);
        _mm_cvtss_f32(_mm_hadd_ps(t1, t1))
    }

    /// tinyBLAS<8> order (`k.len()` a multiple of 8): [`super::super::attn::dot_tiny_ref`] with
    /// 8 lanes.
    ///
    /// # Safety
    /// The CPU must support AVX2, FMA and F16C.
    #[target_feature(enable = "avx2,fma,f16c")]
    pub fn dot_tiny8(k: &[u16], q: &[f32]) -> f32 {
        let n = k.len().min(q.len()) / 8 * 8;
        let mut a = _mm256_setzero_ps();
        let mut i = 0;
        while i < n {
            // SAFETY: i + 8 <= n elements of both slices.
            unsafe { a = _mm256_fmadd_ps(cvt8(k.as_ptr().add(i)), _mm256_loadu_ps(q.as_ptr().add(i)), a) };
            i += 8;
        }
        hsum8(a)
    }

    /// `ggml_vec_dot_f16` order of the AVX2 build (`k.len()` a multiple of 32): 4 accumulators
    /// of 8 lanes, `(0+2) + (1+3)`, then the hadds ([`super::super::attn::dot_vec_ref`], 8).
    ///
    /// # Safety
    /// The CPU must support AVX2, FMA and F16C.
    #[target_feature(enable = "avx2,fma,f16c")]
    pub fn dot_vec8(k: &[u16], q: &[f32]) -> f32 {
        let n = k.len().min(q.len()) / 32 * 32;
        let mut s = [_mm256_setzero_ps(); 4];
        let mut i = 0;
        while i < n {
            for (j, sj) in s.iter_mut().enumerate() {
                // SAFETY: i + 32 <= n elements of both slices.
                unsafe {
                    let e = i + 8 * j;
                    *sj = _mm256_fmadd_ps(cvt8(k.as_ptr().add(e)), _mm256_loadu_ps(q.as_ptr().add(e)), *sj);
                }
            }
            i += 32;
        }
        let x = _mm256_add_ps(_mm256_add_ps(s[0], s[2]), _mm256_add_ps(s[1], s[3]));
        reduce8_hadd(x) as f64 as f32
    }

    /// `ggml_v_expf` of ggml's AVX2 + FMA build on 8 values, as its vector code computes it
    /// (bit-identical to [`super::super::attn::ggml_expf_avx2`]).
    ///
    /// # Safety
    /// The CPU must support AVX2, FMA and F16C.
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    pub fn expf8_avx2(x: __m256) -> __m256 {
        let c = |b: u32| _mm256_set1_ps(f32::from_bits(b));
        let r = c(0x4b40_0000);
        let z = _mm256_fmadd_ps(x, c(0x3fb8_aa3b), r);
        let n = _mm256_sub_ps(z, r);
        let b = _mm256_fnmadd_ps(n, c(0x35bf_be8e), _mm256_fnmadd_ps(n, c(0x3f31_7200), x));
        let e = _mm256_slli_epi32::<23>(_mm256_castps_si256(z));
        let k = _mm256_castsi256_ps(_mm256_add_epi32(e, _mm256_castps_si256(_mm256_set1_ps(1.0))));
        let absn = _mm256_andnot_ps(_mm256_set1_ps(-0.0), n);
        let cm = _mm256_cmp_ps::<_CMP_GT_OQ>(absn, _mm256_set1_ps(126.0));
        let u = _mm256_mul_ps(b, b);
        let j = _mm256_fmadd_ps(
            _mm256_fmadd_ps(
                _mm256_fmadd_ps(c(0x3c07_2010), b, c(0x3d2b_9f17)),
                u,
                _mm256_fmadd_ps(c(0x3e2a_af33), b, c(0x3eff_fedb)),
            ),
            u,
            _mm256_mul_ps(c(0x3f7f_fff6), b),
        );
        if _mm256_movemask_ps(cm) == 0 {
            return _mm256_fmadd_ps(j, k, k);
        }
        let g = _mm256_and_si256(
            _mm256_castps_si256(_mm256_cmp_ps::<_CMP_LE_OQ>(n, _mm256_setzero_ps())),
            _mm256_set1_epi32(0x8200_0000u32 as i32),
        );
        let s1 = _mm256_castsi256_ps(_mm256_add_epi32(g, _mm256_set1_epi32(0x7f00_0000)));
        let s2 = _mm256_castsi256_ps(_mm256_sub_epi32(e, g));
        let d = _mm256_cmp_ps::<_CMP_GT_OQ>(absn, _mm256_set1_ps(192.0));
        _mm256_or_ps(
            _mm256_and_ps(d, _mm256_mul_ps(s1, s1)),
            _mm256_andnot_ps(
                d,
                _mm256_or_ps(
                    _mm256_and_ps(cm, _mm256_mul_ps(_mm256_fmadd_ps(s2, j, s2), s1)),
                    _mm256_andnot_ps(cm, _mm256_fmadd_ps(k, j, k)),
                ),
            ),
        )
    }

    /// tinyBLAS<16> order (`k.len()` a multiple of 16).
    ///
    /// # Safety
    /// The CPU must support AVX2, FMA and F16C.
    #[target_feature(enable = "avx2,fma,f16c")]
    pub fn dot_tiny(k: &[u16], q: &[f32]) -> f32 {
        let n = k.len().min(q.len()) / 16 * 16;
        let (mut a0, mut a1) = (_mm256_setzero_ps(), _mm256_setzero_ps());
        let mut i = 0;
        while i < n {
            // SAFETY: i + 16 <= n elements of both slices.
            unsafe {
                a0 = _mm256_fmadd_ps(cvt8(k.as_ptr().add(i)), _mm256_loadu_ps(q.as_ptr().add(i)), a0);
                a1 = _mm256_fmadd_ps(cvt8(k.as_ptr().add(i + 8)), _mm256_loadu_ps(q.as_ptr().add(i + 8)), a1);
            }
            i += 16;
        }
        reduce16(a0, a1)
    }

    /// [`dot_tiny`] (`W16`) or [`dot_tiny8`] of one K row against 4 queries, the row converted
    /// once: the same bits as 4 calls (each query's lanes get the same FMAs in the same order).
    ///
    /// # Safety
    /// The CPU must support AVX2, FMA and F16C.
    #[target_feature(enable = "avx2,fma,f16c")]
    pub fn dot_tiny4<const W16: bool>(k: &[u16], q: [&[f32]; 4]) -> [f32; 4] {
        let n = q.iter().fold(k.len(), |m, x| m.min(x.len()));
        let kp = k.as_ptr();
        if W16 {
            let n = n / 16 * 16;
            let mut a = [[_mm256_setzero_ps(); 2]; 4];
            let mut i = 0;
            while i < n {
                // SAFETY: i + 16 <= n elements of k and of every q[u].
                unsafe {
                    let (k0, k1) = (cvt8(kp.add(i)), cvt8(kp.add(i + 8)));
                    for (au, qu) in a.iter_mut().zip(q) {
                        au[0] = _mm256_fmadd_ps(k0, _mm256_loadu_ps(qu.as_ptr().add(i)), au[0]);
                        au[1] = _mm256_fmadd_ps(k1, _mm256_loadu_ps(qu.as_ptr().add(i + 8)), au[1]);
                    }
                }
                i += 16;
            }
            a.map(|au| reduce16(au[0], au[1]))
        } else {
            let n = n / 8 * 8;
            let mut a = [_mm256_setzero_ps(); 4];
            let mut i = 0;
            while i < n {
                // SAFETY: i + 8 <= n elements of k and of every q[u].
                unsafe {
                    let k0 = cvt8(kp.add(i));
                    for (au, qu) in a.iter_mut().zip(q) {
                        *au = _mm256_fmadd_ps(k0, _mm256_loadu_ps(qu.as_ptr().add(i)), *au);
                    }
                }
                i += 8;
            }
            a.map(|x| hsum8(x))
        }
    }

    /// `ggml_vec_dot_f16` order (`k.len()` a multiple of 64).
    ///
    /// # Safety
    /// The CPU must support AVX2, FMA and F16C.
    #[target_feature(enable = "avx2,fma,f16c")]
    pub fn dot_vec(k: &[u16], q: &[f32]) -> f32 {
        let n = k.len().min(q.len()) / 64 * 64;
        let mut s = [_mm256_setzero_ps(); 8]; // accumulator j = (s[2j], s[2j + 1])
        let mut i = 0;
        while i < n {
            for (h, sh) in s.iter_mut().enumerate() {
                // SAFETY: i + 64 <= n elements of both slices.
                unsafe {
                    let e = i + 8 * h;
                    *sh = _mm256_fmadd_ps(cvt8(k.as_ptr().add(e)), _mm256_loadu_ps(q.as_ptr().add(e)), *sh);
                }
            }
            i += 64;
        }
        let lo = _mm256_add_ps(_mm256_add_ps(s[0], s[4]), _mm256_add_ps(s[2], s[6]));
        let hi = _mm256_add_ps(_mm256_add_ps(s[1], s[5]), _mm256_add_ps(s[3], s[7]));
        reduce16(lo, hi) as f64 as f32
    }

    /// `ggml_v_expf` on 8 values, bit-identical to [`super::super::attn::ggml_expf`]: the
    /// polynomial in FMAs, `scalef` as a multiply by `2^n` where `2^n` is a normal float
    /// (`-126 <= n <= 127`, one rounding as `scalef`); other lanes (|x| beyond ~87) through the
    /// scalar function.
    ///
    /// # Safety
    /// The CPU must support AVX2, FMA and F16C.
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    pub fn expf8(x: __m256) -> __m256 {
        let c = |b: u32| _mm256_set1_ps(f32::from_bits(b));
        let r = c(0x4b40_0000);
        let z = _mm256_fmadd_ps(x, c(0x3fb8_aa3b), r);
        let n = _mm256_sub_ps(z, r);
        let b = _mm256_fnmadd_ps(n, c(0x35bf_be8e), _mm256_fnmadd_ps(n, c(0x3f31_7200), x));
        let u = _mm256_mul_ps(b, b);
        let j = _mm256_fmadd_ps(
            _mm256_fmadd_ps(
                _mm256_fmadd_ps(c(0x3c07_2010), b, c(0x3d2b_9f17)),
                u,
                _mm256_fmadd_ps(c(0x3e2a_af33), b, c(0x3eff_fedb)),
            ),
            u,
            _mm256_fmadd_ps(c(0x3f7f_fff6), b, _mm256_set1_ps(1.0)),
        );
        let ok = _mm256_and_ps(
            _mm256_cmp_ps::<_CMP_GE_OQ>(n, _mm256_set1_ps(-126.0)),
            _mm256_cmp_ps::<_CMP_LE_OQ>(n, _mm256_set1_ps(127.0)),
        );
        let ni = _mm256_cvtps_epi32(n);
        let p2 = _mm256_castsi256_ps(_mm256_slli_epi32::<23>(_mm256_add_epi32(ni, _mm256_set1_epi32(127))));
        let res = _mm256_mul_ps(j, p2);
        if _mm256_movemask_ps(ok) == 0xff {
            return res;
        }
        let (mut xs, mut rs) = ([0f32; 8], [0f32; 8]);
        // SAFETY: 8 floats each.
        unsafe {
            _mm256_storeu_ps(xs.as_mut_ptr(), x);
            _mm256_storeu_ps(rs.as_mut_ptr(), res);
        }
        let m = _mm256_movemask_ps(ok);
        for l in 0..8 {
            if m & (1 << l) == 0 {
                rs[l] = super::super::attn::ggml_expf(xs[l]);
            }
        }
        // SAFETY: 8 floats.
        unsafe { _mm256_loadu_ps(rs.as_ptr()) }
    }

    /// `super::super::attn::softmax_ref` (bit-identical) on ggml's tier: `W16` 16 lanes (chunks
    /// of 16 summed by `GGML_F32x16_REDUCE`, the AVX-512 `ggml_v_expf`), else 8 (chunks of 8,
    /// two `hadd`s, the AVX2 `ggml_v_expf`).
    ///
    /// # Safety
    /// The CPU must support AVX2, FMA and F16C.
    #[target_feature(enable = "avx2,fma,f16c")]
    pub fn softmax<const W16: bool>(w: &mut [f32]) {
        let ch_len = if W16 { 16 } else { 8 };
        let max = w.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
        let (maxv, ninf, zero) = (_mm256_set1_ps(max), _mm256_set1_ps(f32::NEG_INFINITY), _mm256_setzero_ps());
        let mut sum = 0f64;
        let mut tmp = [f32::NEG_INFINITY; 16];
        for ch in w.chunks_mut(ch_len) {
            let full = ch.len() == ch_len;
            let src: &mut [f32] = if full {
                ch
            } else {
                tmp = [f32::NEG_INFINITY; 16];
                tmp[..ch.len()].copy_from_slice(ch);
                &mut tmp
            };
            let mut e = [zero; 2];
            for (h, eh) in e.iter_mut().take(ch_len / 8).enumerate() {
                // SAFETY: ch_len floats in `src`.
                let x = unsafe { _mm256_loadu_ps(src.as_ptr().add(8 * h)) };
                let masked = _mm256_cmp_ps::<_CMP_EQ_OQ>(x, ninf);
                let d = _mm256_blendv_ps(_mm256_sub_ps(x, maxv), zero, masked);
                let ex = if W16 { expf8(d) } else { expf8_avx2(d) };
                *eh = _mm256_blendv_ps(ex, zero, masked);
                // SAFETY: as above.
                unsafe { _mm256_storeu_ps(src.as_mut_ptr().add(8 * h), *eh) };
            }
            sum += f64::from(if W16 { reduce16(e[0], e[1]) } else { hsum8(e[0]) });
            if !full {
                let n = ch.len();
                ch.copy_from_slice(&tmp[..n]);
            }
        }
        let inv = _mm256_set1_ps((1.0 / sum) as f32);
        let mut chunks = w.chunks_exact_mut(8);
        for c8 in &mut chunks {
            // SAFETY: 8 floats.
            unsafe { _mm256_storeu_ps(c8.as_mut_ptr(), _mm256_mul_ps(_mm256_loadu_ps(c8.as_ptr()), inv)) };
        }
        let invs = (1.0 / sum) as f32;
        for x in chunks.into_remainder() {
            *x *= invs;
        }
    }

    /// `out = gelu(g) · u` through ggml's F16 table (the scalar `super::super::gelu`, bit for
    /// bit): `g` rounded to F16 (`vcvtps2ph`, round to nearest even, as `half`), the table
    /// entry gathered, 0 at or below -10, `g` at or above 10 (NaN: the table, as the scalar).
    ///
    /// # Safety
    /// The CPU must support AVX2, FMA and F16C; `table` has 65,537 entries (the gather reads
    /// 32 bits at entry `h`, the last one padding).
    #[target_feature(enable = "avx2,fma,f16c")]
    pub unsafe fn gelu_mul_row(g: &[f32], u: &[f32], table: &[u16], out: &mut [f32]) {
        debug_assert!(table.len() > usize::from(u16::MAX));
        let n = g.len().min(u.len()).min(out.len());
        let whole = n / 8 * 8;
        let (lo, hi) = (_mm256_set1_ps(-10.0), _mm256_set1_ps(10.0));
        let mask = _mm256_set1_epi32(0xffff);
        let mut i = 0;
        while i < whole {
            // SAFETY: i + 8 <= whole <= n elements of each slice; entry h + 1 exists (padding).
            unsafe {
                let x = _mm256_loadu_ps(g.as_ptr().add(i));
                let h = _mm256_cvtepu16_epi32(_mm256_cvtps_ph::<_MM_FROUND_TO_NEAREST_INT>(x));
                let t = _mm256_and_si256(_mm256_i32gather_epi32::<2>(table.as_ptr() as *const i32, h), mask);
                let t = _mm256_packus_epi32(t, t);
                let t = _mm256_permute4x64_epi64::<0b10_00>(t);
                let v = _mm256_cvtph_ps(_mm256_castsi256_si128(t));
                let v = _mm256_blendv_ps(v, x, _mm256_cmp_ps::<_CMP_GE_OQ>(x, hi));
                let v = _mm256_andnot_ps(_mm256_cmp_ps::<_CMP_LE_OQ>(x, lo), v);
                _mm256_storeu_ps(out.as_mut_ptr().add(i), _mm256_mul_ps(v, _mm256_loadu_ps(u.as_ptr().add(i))));
            }
            i += 8;
        }
        for j in whole..n {
            out[j] = super::super::gelu(g[j], table) * u[j];
        }
    }

    /// `super::super::swiglu_row_ref` (bit-identical): ggml's vector SiLU on whole chunks of its
    /// tier's width (`W16`: 16 lanes and the AVX-512 `ggml_v_expf`, else 8 and the AVX2 one),
    /// the scalar SiLU on the rest.
    ///
    /// # Safety
    /// The CPU must support AVX2, FMA and F16C.
    #[target_feature(enable = "avx2,fma,f16c")]
    pub fn swiglu_row<const W16: bool>(g: &[f32], u: &[f32], out: &mut [f32]) {
        let n = g.len().min(u.len()).min(out.len());
        let whole = if W16 { n / 16 * 16 } else { n / 8 * 8 };
        let (zero, one) = (_mm256_setzero_ps(), _mm256_set1_ps(1.0));
        let mut i = 0;
        while i < whole {
            // SAFETY: i + 8 <= whole <= n elements of each slice.
            unsafe {
                let x = _mm256_loadu_ps(g.as_ptr().add(i));
                let m = _mm256_sub_ps(zero, x);
                let e = if W16 { expf8(m) } else { expf8_avx2(m) };
                let v = _mm256_mul_ps(_mm256_div_ps(x, _mm256_add_ps(one, e)), _mm256_loadu_ps(u.as_ptr().add(i)));
                _mm256_storeu_ps(out.as_mut_ptr().add(i), v);
            }
            i += 8;
        }
        for j in whole..n {
            let x = g[j];
            out[j] = x / (1.0 + (-x).exp()) * u[j];
        }
    }

    /// `x[i] = f32(f16(x[i]))` (round to nearest even, `vcvtps2ph` as `half` uses it): the
    /// values ggml sees after storing to F16.
    ///
    /// # Safety
    /// The CPU must support AVX2, FMA and F16C.
    #[target_feature(enable = "avx2,fma,f16c")]
    pub fn round_f16(x: &mut [f32]) {
        let mut chunks = x.chunks_exact_mut(8);
        for c in &mut chunks {
            // SAFETY: 8 floats.
            unsafe {
                let v = _mm256_loadu_ps(c.as_ptr());
                let h = _mm256_cvtps_ph::<_MM_FROUND_TO_NEAREST_INT>(v);
                _mm256_storeu_ps(c.as_mut_ptr(), _mm256_cvtph_ps(h));
            }
        }
        for v in chunks.into_remainder() {
            *v = crate::quant::f16_to_f32(crate::quant::f32_to_f16(*v));
        }
    }

    /// `V·p` of a batch row as tinyBLAS<W> (`W` 16 or 8) computes it: lane `l` of output `d`
    /// sums `p[j] · V[j][d]` over `j ≡ l (mod W)` in increasing `j` (entries with `p[j] == 0`
    /// skipped, as the lanes path of `attn.rs` does), then the lanes reduced by
    /// `reduce_lanes`'s tree. The lanes stay in registers, 8 outputs at a time; the same bits
    /// as `axpy_f16` into lanes followed by `reduce_lanes` (tested). Row `j` of the F16 V
    /// starts at `v + j * stride`; `kinds` is [`pv_kinds`] of `p`. (A copy of V converted to
    /// f32 once per batch measured slower: 1.05 vs 0.66 ms for gemma-3's layer.)
    ///
    /// # Safety
    /// The CPU must support AVX2, FMA and F16C, and with `W = 16` AVX-512 F + VL (the 16 lanes
    /// need more than 16 vector registers); `v` holds `p.len()` rows of 8 values as described.
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn pv_chunk<const W: usize, const ACC: usize>(
        p: &[f32],
        kinds: &[u8],
        v: *const u16,
        stride: usize,
    ) -> __m256 {
        // Lane L = j mod (W · ACC) of accumulator L / W; block b (W consecutive j) falls in
        // accumulator b mod ACC. One accumulator's W lanes at a time stay in registers.
        let mut parts = [[_mm256_setzero_ps(); W]; ACC];
        for (g, part) in parts.iter_mut().enumerate() {
            let mut acc = [_mm256_setzero_ps(); W];
            for (b, &kind) in kinds.iter().enumerate().skip(g).step_by(ACC) {
                let j0 = b * W;
                match kind {
                    PV_ZERO => {}
                    PV_FULL => {
                        for (l, a) in acc.iter_mut().enumerate() {
                            // SAFETY: a full block: rows j0..j0 + W exist (the caller).
                            let x = unsafe { cvt8(v.add((j0 + l) * stride)) };
                            *a = _mm256_fmadd_ps(_mm256_set1_ps(p[j0 + l]), x, *a);
                        }
                    }
                    _ => {
                        // A constant trip count: the lanes stay in registers.
                        for (l, a) in acc.iter_mut().enumerate() {
                            let pj = p.get(j0 + l).copied().unwrap_or(0.0);
                            if pj != 0.0 {
                                // SAFETY: row j0 + l < p.len() exists (the caller).
                                let x = unsafe { cvt8(v.add((j0 + l) * stride)) };
                                *a = _mm256_fmadd_ps(_mm256_set1_ps(pj), x, *a);
                            }
                        }
                    }
                }
            }
            *part = acc;
        }
        // One row (ACC = 4): `ggml_vec_dot_f16`'s accumulators folded (0 + 2) + (1 + 3).
        let x: [__m256; W] = if ACC == 4 {
            std::array::from_fn(|l| {
                _mm256_add_ps(_mm256_add_ps(parts[0][l], parts[2][l]), _mm256_add_ps(parts[1][l], parts[3][l]))
            })
        } else {
            parts[0]
        };
        if W == 16 {
            // 16 -> 8 -> 4 lanes, then (0 + 2) + (1 + 3).
            let a: [__m256; 8] = std::array::from_fn(|i| _mm256_add_ps(x[i], x[i + 8]));
            let b: [__m256; 4] = std::array::from_fn(|i| _mm256_add_ps(a[i], a[i + 4]));
            _mm256_add_ps(_mm256_add_ps(b[0], b[2]), _mm256_add_ps(b[1], b[3]))
        } else {
            // 8 -> 4 lanes, then tinyBLAS's hsum (0 + 2) + (1 + 3) for a batch,
            // `GGML_F32x8_REDUCE`'s hadds (0 + 1) + (2 + 3) for one row.
            let t: [__m256; 4] = std::array::from_fn(|i| _mm256_add_ps(x[i], x[i + 4]));
            if ACC == 4 {
                _mm256_add_ps(_mm256_add_ps(t[0], t[1]), _mm256_add_ps(t[2], t[3]))
            } else {
                _mm256_add_ps(_mm256_add_ps(t[0], t[2]), _mm256_add_ps(t[1], t[3]))
            }
        }
    }

    /// Blocks of `W` probabilities all zero (skipped), all non-zero and whole (no test per
    /// entry), or neither.
    const PV_ZERO: u8 = 0;
    const PV_FULL: u8 = 1;
    const PV_MIXED: u8 = 2;

    fn pv_kinds<const W: usize>(p: &[f32]) -> Vec<u8> {
        p.chunks(W)
            .map(|c| {
                if c.iter().all(|&x| x == 0.0) {
                    PV_ZERO
                } else if c.len() == W && c.iter().all(|&x| x != 0.0) {
                    PV_FULL
                } else {
                    PV_MIXED
                }
            })
            .collect()
    }

    #[target_feature(enable = "avx2,fma,f16c,avx512f,avx512vl")]
    unsafe fn pv16<const ACC: usize>(p: &[f32], v: &[u16], stride: usize, out: &mut [f32]) {
        let kinds = pv_kinds::<16>(p);
        for (c, o) in out.chunks_exact_mut(8).enumerate() {
            // SAFETY: the caller's contract (rows of `stride`, vd = out.len() values each).
            unsafe { _mm256_storeu_ps(o.as_mut_ptr(), pv_chunk::<16, ACC>(p, &kinds, v.as_ptr().add(8 * c), stride)) };
        }
    }

    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn pv8<const ACC: usize>(p: &[f32], v: &[u16], stride: usize, out: &mut [f32]) {
        let kinds = pv_kinds::<8>(p);
        for (c, o) in out.chunks_exact_mut(8).enumerate() {
            // SAFETY: as in `pv16`.
            unsafe { _mm256_storeu_ps(o.as_mut_ptr(), pv_chunk::<8, ACC>(p, &kinds, v.as_ptr().add(8 * c), stride)) };
        }
    }

    /// See [`pv_chunk`]: `out` (`vd` values) = V·p over `p.len()` rows of `v`, 16 lanes
    /// (`W16`) or 8, as a batch row (`ONE_ROW` false: tinyBLAS) or a single row (4
    /// accumulators of those lanes: `ggml_vec_dot_f16`).
    ///
    /// # Safety
    /// As [`pv_chunk`]; `out.len() % 8 == 0`, `v.len() >= (p.len() - 1) * stride + out.len()`.
    pub unsafe fn pv_tiny<const W16: bool, const ONE_ROW: bool>(p: &[f32], v: &[u16], stride: usize, out: &mut [f32]) {
        debug_assert!(out.len().is_multiple_of(8));
        debug_assert!(p.is_empty() || v.len() >= (p.len() - 1) * stride + out.len());
        // SAFETY: forwarded.
        unsafe {
            match (W16, ONE_ROW) {
                (true, false) => pv16::<1>(p, v, stride, out),
                (true, true) => pv16::<4>(p, v, stride, out),
                (false, false) => pv8::<1>(p, v, stride, out),
                (false, true) => pv8::<4>(p, v, stride, out),
            }
        }
    }

    /// `[a, b, c, d]` (rows) to columns: element k of the four.
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    fn transpose4(a: __m128, b: __m128, c: __m128, d: __m128) -> [__m128; 4] {
        let (t0, t1) = (_mm_unpacklo_ps(a, b), _mm_unpacklo_ps(c, d));
        let (t2, t3) = (_mm_unpackhi_ps(a, b), _mm_unpackhi_ps(c, d));
        [_mm_movelh_ps(t0, t1), _mm_movehl_ps(t1, t0), _mm_movelh_ps(t2, t3), _mm_movehl_ps(t3, t2)]
    }

    /// ggml's `rms_norm` sums of 8 rows of `n` values: each row's `Σ f64(x · x)` (the square
    /// in f32, widened, added in f64 one element after another), a lane per row. The rows'
    /// additions interleave but each keeps its own order: the same bits as the scalar loop,
    /// and 8 rows cost about what one did (one f64 add chain is latency-bound).
    ///
    /// # Safety
    /// The CPU must support AVX2, FMA and F16C.
    #[target_feature(enable = "avx2,fma,f16c")]
    pub fn sumsq8(rows: [&[f32]; 8]) -> [f64; 8] {
        let n = rows.iter().map(|r| r.len()).min().unwrap_or(0);
        let (mut lo, mut hi) = (_mm256_setzero_pd(), _mm256_setzero_pd());
        let mut i = 0;
        while i + 4 <= n {
            // SAFETY: i + 4 <= n values of every row.
            let sq: [__m128; 8] = std::array::from_fn(|r| {
                let x = unsafe { _mm_loadu_ps(rows[r].as_ptr().add(i)) };
                _mm_mul_ps(x, x)
            });
            let a = transpose4(sq[0], sq[1], sq[2], sq[3]);
            let b = transpose4(sq[4], sq[5], sq[6], sq[7]);
            for k in 0..4 {
                lo = _mm256_add_pd(lo, _mm256_cvtps_pd(a[k]));
                hi = _mm256_add_pd(hi, _mm256_cvtps_pd(b[k]));
            }
            i += 4;
        }
        let mut out = [0f64; 8];
        // SAFETY: 8 doubles.
        unsafe {
            _mm256_storeu_pd(out.as_mut_ptr(), lo);
            _mm256_storeu_pd(out.as_mut_ptr().add(4), hi);
        }
        for (o, r) in out.iter_mut().zip(rows) {
            for &v in &r[i..n] {
                *o += f64::from(v * v);
            }
        }
        out
    }

    /// `y[i] = fma(a, f16(v[i]), y[i])` — element-wise.
    ///
    /// # Safety
    /// The CPU must support AVX2, FMA and F16C.
    #[target_feature(enable = "avx2,fma,f16c")]
    pub fn axpy_f16(y: &mut [f32], a: f32, v: &[u16]) {
        let n = y.len().min(v.len());
        let av = _mm256_set1_ps(a);
        let mut i = 0;
        while i + 8 <= n {
            // SAFETY: i + 8 <= n elements of both slices.
            unsafe {
                let p = y.as_mut_ptr().add(i);
                _mm256_storeu_ps(p, _mm256_fmadd_ps(av, cvt8(v.as_ptr().add(i)), _mm256_loadu_ps(p)));
            }
            i += 8;
        }
        while i < n {
            y[i] = a.mul_add(crate::quant::f16_to_f32(v[i]), y[i]);
            i += 1;
        }
    }
}
